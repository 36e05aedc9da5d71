"""``--precision`` and ``--compile`` on the verbs that train (train, run, reproduce): they reach
the trainers, in this process and in the runner's workers, and a bad value names the choices."""

import json

import pytest

from smithing.cli import main
from smithing.compiled import current_compile
from smithing.precision import current_precision


def _train(capsys, *extra):
    argv = ["train", "--dataset", "digits", "--hidden", "16", "--epochs", "2", "--json"]
    assert main([*argv, *extra]) == 0
    out = json.loads(capsys.readouterr().out)
    return {k: out[k] for k in ("train_loss", "valid_loss", "test_loss", "test_error")}


def test_train_precision_bf16_changes_the_run(capsys):
    fp32 = _train(capsys)
    again = _train(capsys, "--precision", "fp32")
    bf16 = _train(capsys, "--precision", "bf16")
    assert fp32 == again  # the default is fp32, bitwise
    assert bf16["train_loss"] != fp32["train_loss"]
    assert bf16["train_loss"] == pytest.approx(fp32["train_loss"], abs=0.02)


@pytest.mark.parametrize("verb", [["train"], ["run", "activations"], ["reproduce", "x"]])
def test_bad_precision_names_the_choices(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([*verb, "--precision", "fp16"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "fp16" in err and "fp32" in err and "bf16" in err and "tf32" in err


def test_run_hands_precision_and_compile_to_the_trainers(tmp_path, monkeypatch):
    import smithing.experiment.mlp as mlp

    seen = []
    real = mlp.train_group

    def spy(*a, **kw):
        seen.append((current_precision(), current_compile()))
        return real(*a, **kw)

    monkeypatch.setattr(mlp, "train_group", spy)
    monkeypatch.setenv("SMITHING_COMPILE_BACKEND", "aot_eager")
    argv = ["run", "activations", "--variants", "relu", "--seeds", "2", "--set", "epochs=1"]
    argv += ["--out", str(tmp_path), "--json", "--precision", "bf16", "--compile"]
    assert main(argv) == 0
    assert seen and all(s == ("bf16", True) for s in seen)
    assert current_precision() == "fp32" and current_compile() is False  # restored after

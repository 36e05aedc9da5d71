import json
import subprocess
import sys

import pytest

from smithing.cli import main


def _run(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "smithing.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_and_list(capsys):
    assert main([]) == 0
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("digits", "activations", "glorot_uniform", "adam", "cosine", "relu"):
        assert word in out
    # the pruning methods, and the initializers' torch / Keras aliases
    assert "pruning methods" in out
    for word in ("magnitude", "obd", "obs", "xavier_uniform"):
        assert word in out


def test_list_rows_name_the_aliases():
    from smithing import registries

    tables = dict(registries.all_registries())
    inits = dict(tables["initializers"])
    assert "xavier_uniform" in inits["glorot_uniform"] and "kaiming_normal" in inits["he_normal"]
    assert "xavier_uniform" not in inits  # an alias is not a row of its own
    assert set(dict(tables["pruning methods"])) == {"magnitude", "obd", "obs"}


def test_train_json_digits():
    r = _run("train", "--dataset", "digits", "--hidden", "100", "--epochs", "20", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in (
        "test_error",
        "valid_error",
        "epochs_run",
        "status",
        "seconds",
        "best_epoch",
        "stopped_early",
    ):
        assert key in out
    assert out["status"] == "done" and out["epochs_run"] == 20
    assert out["test_error"] < 0.05


def test_train_with_regularization(capsys):
    rc = main(
        [
            "train",
            "--epochs",
            "2",
            "--l2",
            "1e-4",
            "--l1",
            "1e-5",
            "--max-norm",
            "3",
            "--dropout",
            "0.2",
            "0.5",
            "--dropconnect",
            "0.3",
            "--json",
            "--quiet",
        ]
    )
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["status"] == "done"


def test_train_with_options(capsys):
    rc = main(
        [
            "train",
            "--epochs",
            "3",
            "--optimizer",
            "nesterov",
            "--lr",
            "0.1",
            "--momentum",
            "0.9",
            "--schedule",
            "cosine",
            "--early-stopping-patience",
            "5",
            "--init",
            "lsuv",
            "--json",
            "--quiet",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stopped_early"] is False and out["best_epoch"] >= 1


@pytest.mark.parametrize(
    "args,match",
    [
        (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["train", "--lr", "-1"], "--lr"),
        (["train", "--optimizer", "adamm"], "did you mean 'adam'"),
        (["train", "--init", "glorot"], "unknown initializer"),
        (["train", "--device", "cuda:0"], "cuda"),
        (["run", "nosuchstudy"], "unknown study"),
        (["train", "--schedule", "cosin"], "did you mean 'cosine'"),
        (["run", "activations", "--set", "schedule=cosin"], "did you mean 'cosine'"),
        (["run", "activations", "--set", "optimizer=adamm"], "did you mean 'adam'"),
        (["run", "activations", "--set", "dropout_mode=invertd"], "dropout_mode"),
        (["run", "vanishing-gradients", "--set", "schedule=cosin"], "did you mean 'cosine'"),
        (["status", "--out", "/nonexistent/dir"], "no results store"),
        (["report", "--out", "/nonexistent/dir"], "no results store"),
    ],
)
def test_bad_arguments_one_line_exit_2(args, match, capsys, tmp_path):
    import torch

    if "cuda:0" in args and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    if args[0] == "run":
        args = [*args, "--out", str(tmp_path / "out"), "--quiet"]
    with pytest.raises(SystemExit) as e:
        sys.exit(main(args))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert match in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    # configurations are checked once, before any training: nothing was stored
    assert not (tmp_path / "out").exists()


def test_missing_data_offline_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SMITHING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMITHING_OFFLINE", "1")
    assert main(["train", "--dataset", "mnist", "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "mnist" in err and "Traceback" not in err


def test_run_json_and_export(tmp_path):
    r = _run(
        "run", "activations", "--seeds", "2", "--out", str(tmp_path), "--json", "--set", "epochs=2"
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["study"] == "activations"
    assert out["variants"]["relu"]["runs"] == 2
    assert main(["export", "--out", str(tmp_path), "--format", "csv"]) == 0
    assert (tmp_path / "export" / "runs.csv").exists()
    assert main(["report", "--out", str(tmp_path)]) == 0


def test_datasets_command(capsys):
    assert main(["datasets", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {d["name"]: d for d in out["datasets"]}
    assert names["digits"]["state"] == "built in (no download)"
    assert "mnist" in names

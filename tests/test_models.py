"""Trained models as files: save, load, describe; train --save; a saved stack as the
initialization of a later network."""

from __future__ import annotations

import json

import pytest
import torch

import smithing
from smithing.cli import main
from smithing.nn import MLP


def test_mlp_round_trip(tmp_path):
    torch.manual_seed(0)
    m = MLP(12, [7, 5], 3, "tanh", dropout=0.1)
    path = smithing.save_model(m, tmp_path / "m.safetensors", config={"lr": 0.1}, metrics={"e": 1})
    back = smithing.load_model(path)
    assert type(back) is MLP and back.describe() == m.describe()
    for (k, a), (k2, b) in zip(m.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.randn(4, 12)
    m.eval(), back.eval()
    assert torch.equal(m(x), back(x))
    desc = smithing.describe_model(path)
    assert desc["kind"] == "mlp" and desc["config"] == {"lr": 0.1} and desc["metrics"] == {"e": 1}
    assert desc["versions"]["smithing"] == smithing.__version__
    side = json.loads((tmp_path / "m.safetensors.json").read_text())
    assert side == desc


def test_bad_model_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        smithing.load_model(tmp_path / "nope.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a model at all" * 10)
    with pytest.raises(ValueError, match="not a smithing model file"):
        smithing.load_model(tmp_path / "junk.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not a smithing model"):
        smithing.load_model(tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="cannot be saved"):
        smithing.save_model(torch.nn.Linear(2, 2), tmp_path / "lin.safetensors")


def _stack():
    from smithing.pretrain.stack import StackSpec, pretrain_stack

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(64, 16, generator=g) > 0.5).float()
    spec = StackSpec("dbn", [16, 8, 6], {"epochs": 2, "batch_size": 16, "lr": 0.1})
    return pretrain_stack(spec, x, generator=g)


def test_stack_round_trip_and_init_from_file(tmp_path):
    stack = _stack()
    path = smithing.save_model(stack, tmp_path / "dbn.safetensors")
    assert smithing.describe_model(path)["kind"] == "stack"
    back = smithing.load_model(path)
    for (W, b), (W2, b2) in zip(stack.encoders(), back.encoders()):
        assert torch.equal(W, W2) and torch.equal(b, b2)
    import importlib

    importlib.import_module("smithing.experiment")  # registers the "file" source
    from smithing import init

    net = MLP(16, [8, 6], 3, "sigmoid")
    init.apply(net, "pretrained", source="file", path=str(path))
    for layer, (W, b) in zip(net.linears[:2], stack.encoders()):
        assert torch.equal(layer.weight.detach(), W) and torch.equal(layer.bias.detach(), b)


def test_train_save_then_init_from_it(tmp_path, capsys):
    path = tmp_path / "net.safetensors"
    argv = ["train", "--epochs", "2", "--hidden", "16", "--quiet", "--json", "--save", str(path)]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["saved"] == str(path)
    model = smithing.load_model(path)
    desc = smithing.describe_model(path)
    assert desc["config"]["hidden"] == [16] and desc["metrics"]["test_error"] == pytest.approx(
        summary["test_error"]
    )
    from smithing.data import load
    from smithing.train import evaluate

    data = load("digits")
    _, err = evaluate(model, data.test)
    assert err == pytest.approx(summary["test_error"], abs=1e-12)
    # the saved network's hidden layer initializes a new one
    argv2 = [
        "train",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--quiet",
        "--json",
        "--init",
        "pretrained",
        "--init-option",
        "source=file",
        "--init-option",
        f"path={path}",
    ]
    assert main(argv2) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "done"


def test_run_save_models_keeps_the_dbn_stack_and_the_mlp(tmp_path):
    """``smithing run dbn --save-models``: the pretrained stack and the fine-tuned MLP of each
    run as files; the stack initializes a later network."""
    tiny = {
        "hidden": [20, 12],
        "n_train": 300,
        "pretrain_epochs": 1,
        "epochs": 1,
        "n_samples": 2,
        "sample_steps": 2,
    }
    argv = ["run", "dbn", "--seeds", "1", "--variants", "dbn-pretrained", "--quiet",
            "--out", str(tmp_path), "--save-models"]  # fmt: skip
    for k, v in tiny.items():
        argv += ["--set", f"{k}={json.dumps(v)}"]
    assert main(argv) == 0
    files = sorted(p.name for p in (tmp_path / "models" / "dbn").glob("*.safetensors"))
    assert len(files) == 2 and any(".stack." in f for f in files), files
    stack_file = next(p for p in (tmp_path / "models" / "dbn").glob("*.stack.safetensors"))
    assert smithing.describe_model(stack_file)["kind"] == "stack"
    mlp = smithing.load_model(next((tmp_path / "models" / "dbn").glob("*.mlp.safetensors")))
    assert isinstance(mlp, MLP)
    net = MLP(64, [20, 12], 10, "sigmoid")
    import importlib

    importlib.import_module("smithing.experiment")
    from smithing import init

    init.apply(net, "pretrained", source="file", path=str(stack_file))
    enc = smithing.load_model(stack_file).encoders()
    assert torch.equal(net.linears[0].weight.detach(), enc[0][0])

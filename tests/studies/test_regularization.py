"""The regularization study, and the MLP's DropConnect option it uses."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from smithing.experiment.mlp import MLPConfig, train_group
from smithing.experiment.store import Store
from smithing.nn import MLP
from smithing.nn.dropconnect import DropConnectLinear
from smithing.studies import regularization as R
from studytools import run_study


# --------------------------------------------------------------------------- MLP(dropconnect=)
def _mlp(seed=0, **kw):
    torch.manual_seed(seed)
    return MLP(12, [16, 8], 5, "tanh", **kw)


def test_dropconnect_mlp_layers_and_shapes():
    model = _mlp(dropconnect=0.5)
    lins = model.linears
    assert len(lins) == 3
    assert all(isinstance(m, DropConnectLinear) and isinstance(m, nn.Linear) for m in lins[:2])
    assert type(lins[2]) is nn.Linear
    assert lins[0].activation == "tanh" and lins[0].p == 0.5
    x = torch.randn(7, 12)
    assert model(x).shape == (7, 5)  # training: masks
    model.eval()
    assert model(x).shape == (7, 5)  # inference: moment matching
    hs = model.hidden_activations(x)
    assert [h.shape for h in hs] == [(7, 16), (7, 8)]
    # the same parameter names as the plain MLP: state dicts move between the two
    assert list(model.state_dict()) == list(_mlp().state_dict())
    _mlp().load_state_dict(model.state_dict())


def test_dropconnect_zero_is_the_plain_mlp():
    plain, zero = _mlp(seed=3), _mlp(seed=3, dropconnect=0.0)
    assert repr(plain) == repr(zero)
    a, b = plain.state_dict(), zero.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(4, 12)
    assert torch.equal(plain(x), zero(x))


def test_dropconnect_mlp_training_draws_masks_and_inference_is_mean_field():
    model = _mlp(dropconnect=0.5, dropconnect_options={"inference": "mean"})
    x = torch.randn(6, 12)
    torch.manual_seed(0)
    assert not torch.equal(model(x), model(x))  # fresh masks each call
    model.eval()
    lin0, lin1, out = model.linears
    h = torch.tanh(0.5 * (x @ lin0.weight.T + lin0.bias))  # a(E[u]), E[u] = (1-p)(Wv + b)
    h = torch.tanh(0.5 * (h @ lin1.weight.T + lin1.bias))
    torch.testing.assert_close(model(x), h @ out.weight.T + out.bias)


def test_dropconnect_layers_are_found_by_the_initializers():
    from smithing import init

    model = _mlp(dropconnect=0.5)
    before = model.linears[0].weight.clone()
    init.apply(model, "glorot_uniform", generator=torch.Generator().manual_seed(0))
    assert not torch.equal(before, model.linears[0].weight)


def test_dropconnect_bad_probability():
    with pytest.raises(ValueError, match="dropconnect=1.0 is invalid"):
        MLP(4, [3], 2, dropconnect=1.0)


def test_dropconnect_trains_as_a_batched_ensemble():
    cfgs = [
        MLPConfig(hidden=(8,), dropconnect=0.5, epochs=2, n_train=64, batch_size=16, seed=s)
        for s in (0, 1)
    ]
    assert cfgs[0].group_key() == cfgs[1].group_key()
    assert cfgs[0].group_key() != MLPConfig(hidden=(8,), epochs=2).group_key()
    out = train_group(cfgs)
    assert len(out) == 2
    for model, hist in out:
        assert isinstance(model.linears[0], DropConnectLinear)
        assert hist.status == "done" and hist.epochs_run == 2
        assert math.isfinite(hist.final["test_error"])
    w0, w1 = (m.linears[0].weight for m, _ in out)
    assert not torch.equal(w0, w1)


# --------------------------------------------------------------------------- study pieces
def test_weight_histograms_counts():
    w = torch.tensor([0.0, 1e-8, -2e-4, 0.05, -0.3, 50.0])
    h = R.weight_histograms(w)
    assert h["n"] == 6 and h["zeros"] == 1
    assert sum(h["log_counts"]) == 5  # zeros left out; 1e-8 and 50 clipped into end bins
    assert h["log_counts"][0] == 1 and h["log_counts"][-1] == 1
    assert sum(h["w_counts"]) == 6
    assert h["small_fraction"] == pytest.approx(3 / 6)
    assert h["rms"] == pytest.approx(float(w.double().square().mean().sqrt()))


def test_model_averaging_exact_for_softmax_layer():
    res = R.averaging_data(n_units=4, epochs=1)
    assert res["softmax"]["gap"] < 1e-5  # dropped units feed the softmax: exact
    assert res["softmax"]["n_subnetworks"] == 16
    assert res["hidden"]["gap"] > 1e-4  # a ReLU layer in between: an approximation
    assert len(res["hidden"]["single_errors"]) == 1000


def test_study_smoke(tmp_path, monkeypatch):
    monkeypatch.setattr(R.averaging, "AVERAGING", {"n_units": 3, "epochs": 1})
    overrides = {"epochs": 2, "hidden": [16, 16], "n_train": 100}
    summary = run_study(
        "regularization", seeds=1, out=str(tmp_path), quiet=True, overrides=overrides
    )
    assert len(summary["variants"]) == 8
    assert all(v["done"] == 1 for v in summary["variants"].values())
    with Store(tmp_path) as store:
        assert store.counts("regularization") == {"done": 8}
        res = store.results("regularization")
    for r in res.runs:
        assert len(r.extra["w1"]["log_counts"]) == len(R.LOG_EDGES) - 1
        assert r.extra["w1"]["n"] == 64 * 16
        assert all("train_error" in e for e in r.epochs)
    (dc,) = res.of("DropConnect")
    assert dc.config["dropconnect"] == 0.5
    assert dc.extra["inference"]["final"] == "gaussian"
    assert set(dc.extra["final_mean_inference"]) >= {"test_error", "train_error"}
    (l1,) = res.of("L1")
    assert l1.config["l1"] == R.L1
    folder = tmp_path / "report" / "regularization"
    for name in ("gap.png", "curves.png", "weights.png", "averaging.png"):
        assert (folder / name).stat().st_size > 5000
    page = (tmp_path / "report" / "regularization.html").read_text()
    for r in res.runs:  # our measured test error of every variant is in its table row
        row = f"<td>{r.variant}</td>"
        assert row in page, r.variant
        after = page.split(row, 1)[1].split("</tr>", 1)[0]
        assert f"{100 * r.final['test_error']:.2f} ± 0.00" in after, (r.variant, after)
    assert np.isfinite(summary["variants"]["none"]["test_error_mean"])

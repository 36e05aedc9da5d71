"""The vanishing-gradients study: its run kind, its measurements and a smoke run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from smithing.experiment import RunRecord, StudyResults
from smithing.nn import MLP
from smithing.studies import vanishing_gradients as vg


def _quick(name: str) -> dict:
    (v,) = [v for v in vg.variants("quick") if v.name == name]
    assert v.kind == vg.KIND
    return {**v.config, "dataset": "digits", "seed": 0}


@pytest.fixture(scope="module")
def init_runs():
    """One-epoch runs of the quick networks on 128 examples (their init diagnostics matter)."""
    out = {}
    for name in ("sigmoid-small", "relu-he"):
        cfg = {**_quick(name), "epochs": 1, "epochs_factor": 1, "n_train": 128}
        out[name] = vg.run(cfg, 0, "cpu")
    return out


def test_quick_network_is_deep():
    cfg = _quick("sigmoid-small")
    assert len(cfg["hidden"]) >= 6 and cfg["epochs_factor"] == vg.LONG


def test_sigmoid_small_init_vanishes(init_runs):
    res = init_runs["sigmoid-small"]
    norms = res.extra["init"]["grad_norm"]
    assert len(norms) == len(_quick("sigmoid-small")["hidden"]) + 1
    assert norms[0] / norms[-1] < 1e-2
    assert res.extra["grad_ratio_init"] == pytest.approx(norms[0] / norms[-1])
    # the gradient shrinks monotonically towards the input
    assert all(a < b for a, b in zip(norms, norms[1:]))


def test_relu_he_init_keeps_gradients_comparable(init_runs):
    ratio = init_runs["relu-he"].extra["grad_ratio_init"]
    assert 0.1 < ratio < 10


def test_run_records_per_layer_diagnostics_every_epoch(init_runs):
    res = init_runs["relu-he"]
    assert res.status == "done" and len(res.epochs) == 1
    rec = res.epochs[0]
    n_lin = len(_quick("relu-he")["hidden"]) + 1
    for layer in range(1, n_lin + 1):
        assert rec[f"grad_norm_{layer}"] > 0
    for layer in range(1, n_lin):
        assert f"act_mean_{layer}" in rec and 0 <= rec[f"zero_{layer}"] <= 1
    total = math.sqrt(sum(rec[f"grad_norm_{i}"] ** 2 for i in range(1, n_lin + 1)))
    assert rec["grad_norm_total"] == pytest.approx(total)
    hists = res.extra["trained"]["act_hist"]
    assert len(hists) == n_lin - 1
    assert len(hists[0]["edges"]) == len(hists[0]["counts"]) + 1 == vg.BINS + 1
    assert len(res.extra["init"]["log_grad_hist"][0]) == len(vg.LOG_GRAD_EDGES) - 1
    assert 0 < len(res.extra["step_loss"]) <= vg.STEP_LOSSES


def test_diagnose_matches_autograd():
    torch.manual_seed(0)
    model = MLP(5, [4, 3], 2, "tanh")
    x, y = torch.randn(7, 5), torch.randint(0, 2, (7,))
    d = vg.diagnose(model, x, y)
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, [lin.weight for lin in model.linears])
    assert d["grad_norm"] == pytest.approx([float(g.norm()) for g in grads], rel=1e-6)
    h1 = torch.tanh(model.linears[0](x))
    h1 = h1.detach()
    assert d["act_mean"][0] == pytest.approx(float(h1.mean()), abs=1e-6)
    assert d["act_std"][0] == pytest.approx(float(h1.std(correction=0)), abs=1e-6)


def _record(variant, curve, status="done"):
    eps = [{"epoch": i + 1, "valid_error": v} for i, v in enumerate(curve)]
    return RunRecord(variant, 0, {}, status, {}, eps, {}, 0.0)


def test_catch_up_epoch():
    runs = [
        _record("tanh-glorot", [0.5, 0.1]),
        _record("relu-he", [0.4, 0.2]),
        _record("sigmoid-small", [0.9, 0.9, 0.5, 0.19, 0.1]),
    ]
    info = vg.catch_up(StudyResults("vanishing-gradients", runs), good=("tanh-glorot", "relu-he"))
    assert info["target"] == pytest.approx(0.2) and info["epoch"] == 4
    runs[-1] = _record("sigmoid-small", [0.9] * 5)
    info = vg.catch_up(StudyResults("vanishing-gradients", runs), good=("tanh-glorot", "relu-he"))
    assert info["epoch"] is None and info["slow_epochs"] == 5


def test_smoke_study(tmp_path):
    from smithing.experiment.store import Store
    from studytools import run_study

    summary = run_study(
        "vanishing-gradients",
        seeds=1,
        out=str(tmp_path),
        quiet=True,
        overrides={"epochs": 1, "n_train": 96},
    )
    v = summary["variants"]
    assert v["relu-N01-noclip"]["diverged"] == 1
    assert v["relu-N01-clip"]["done"] == 1
    assert all(x["failed"] == 0 for x in v.values())
    with Store(tmp_path) as store:
        res = store.results("vanishing-gradients")
    (slow,) = res.of("sigmoid-small")
    assert len(slow.epochs) == vg.LONG  # epochs x epochs_factor
    report = Path(tmp_path) / "report"
    page = (report / "vanishing-gradients.html").read_text()
    assert "class='err'" not in page
    for name in (
        "activations.png",
        "grad_norm_init.png",
        "grad_norm_epochs.png",
        "activations_epochs.png",
        "activation_histograms.png",
        "grad_histograms.png",
        "curves.png",
        "wait_longer.png",
        "exploding.png",
    ):
        assert (report / "vanishing-gradients" / name).stat().st_size > 0, name

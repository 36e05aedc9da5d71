import math

import pytest
import torch

from smithing.nn import MLP
from smithing.studies import early_stopping as es
from smithing.studies.early_stopping import noisy_labels, run_trace, weight_norm


def test_weight_norm_is_the_l2_norm_of_all_weight_matrices():
    torch.manual_seed(0)
    m = MLP(5, [7, 3], 2, "relu")
    ref = torch.linalg.vector_norm(torch.cat([lin.weight.flatten() for lin in m.linears]))
    assert weight_norm(m) == pytest.approx(ref.item(), rel=1e-6)


def test_noisy_labels():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (20000,), generator=g)
    y0 = y.clone()
    assert torch.equal(noisy_labels(y, 10, 0.0, torch.Generator().manual_seed(1)), y)
    z = noisy_labels(y, 10, 0.2, torch.Generator().manual_seed(1))
    assert torch.equal(y, y0)  # input not mutated
    changed = (z != y).double().mean().item()
    assert changed == pytest.approx(0.2 * 9 / 10, abs=0.01)
    z2 = noisy_labels(y, 10, 0.2, torch.Generator().manual_seed(1))
    assert torch.equal(z, z2)
    full = noisy_labels(y, 10, 1.0, torch.Generator().manual_seed(2))
    counts = torch.bincount(full, minlength=10).double() / len(y)
    assert torch.allclose(counts, torch.full((10,), 0.1, dtype=torch.float64), atol=0.01)
    with pytest.raises(ValueError, match="label_noise"):
        noisy_labels(y, 10, 1.5)


def test_run_trace_rejects_penalties():
    cfg = dict(es.BASE["quick"], l2=1e-3, seed=0)
    with pytest.raises(ValueError, match="l2"):
        run_trace(cfg, 0)


def test_study_smoke(tmp_path, monkeypatch):
    from PIL import Image

    from smithing.experiment.store import Store
    from studytools import run_study

    monkeypatch.setitem(es.PATIENCE, "quick", 3)
    overrides = {"epochs": 25, "hidden": [64, 64], "n_train": 100, "lr": 0.1}
    run_study("early-stopping", seeds=2, out=str(tmp_path), quiet=True, overrides=overrides)
    with Store(tmp_path) as st:
        res = st.results("early-stopping")
    full, stopped = res.of(es.FULL), res.of(es.STOPPED)
    assert len(full) == len(stopped) == 2
    assert all(r.status == "done" for r in full + stopped)
    for r in full:
        assert r.extra["best_epoch"] == r.extra["epochs_run"] == 25
        assert r.final["weight_norm"] == pytest.approx(r.epochs[-1]["weight_norm"], rel=1e-12)
        assert r.extra["weight_norm_init"] > 0
    assert any(r.extra["stop_reason"] == "patience" for r in stopped)
    for r, f in zip(stopped, full):
        best, run = r.extra["best_epoch"], r.extra["epochs_run"]
        losses = [e["valid_loss"] for e in r.epochs]
        assert best == 1 + losses.index(min(losses))  # the recorded best
        assert best <= run
        if r.extra["stop_reason"] == "patience":
            # EarlyStopping stops `patience` epochs after the best one
            assert best < run and run == best + 3
        # the restored weights are the best epoch's: same norm, same validation loss
        assert r.final["weight_norm"] == pytest.approx(r.epochs[best - 1]["weight_norm"], rel=1e-9)
        assert r.final["valid_loss"] == pytest.approx(r.epochs[best - 1]["valid_loss"], rel=1e-5)
        # same seed: the stopped run is the full run up to its stop (bitwise on the CPU)
        for a, b in zip(r.epochs, f.epochs):
            assert a["train_loss"] == b["train_loss"] and a["weight_norm"] == b["weight_norm"]
    rep = tmp_path / "report" / "early-stopping"
    for name in ("curves.png", "final.png"):
        assert Image.open(rep / name).size[0] > 100
    page = (tmp_path / "report" / "early-stopping.html").read_text()
    assert "class='err'" not in page and "curves.png" in page
    rows = es.STUDY.table(res).rows
    assert [r[0] for r in rows] == [es.STOPPED, es.FULL]
    assert all(math.isfinite(x) for x in (full[0].final["test_error"],))

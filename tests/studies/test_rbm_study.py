"""The ``rbm`` study: a smoke run into tmp_path, AIS against the exact log Z, config checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from smithing.experiment.store import Store
from smithing.plots import tile
from smithing.studies import rbm as S
from studytools import run_study

TINY = {
    "n_hidden": 8,
    "epochs": 2,
    "n_train": 300,
    "monitor_size": 200,
    "ais_betas": 200,
    "ais_runs": 20,
    "n_samples": 3,
    "sample_steps": [1, 5],
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls gain nothing from threads, and oversubscribed cores stall them badly."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_smoke_run_writes_store_figures_and_table(tmp_path):
    summary = run_study("rbm", seeds=1, out=str(tmp_path), quiet=True, overrides=TINY)
    assert set(summary["variants"]) == {"cd-1", "cd-10", "pcd-1"}
    with Store(tmp_path) as store:
        assert store.counts("rbm") == {"done": 3}
        res = store.results("rbm")
    for r in res.runs:
        assert len(r.epochs) == 2
        assert {"recon_error", "pseudo_likelihood", "free_energy_gap"} <= set(r.epochs[0])
        f = r.final
        assert f["test_log_prob"] < 0 and math.isfinite(f["exact_log_z"])
        assert f["log_z_lo"] <= f["log_z"] <= f["log_z_hi"]
        assert np.asarray(r.extra["W"]).shape == (64, 8)
        assert np.asarray(r.extra["samples"]).shape == (2, 3, 64)
    report = tmp_path / "report"
    for name in ("curves.png", "loglik.png", "filters.png", "samples.png"):
        assert (report / "rbm" / name).stat().st_size > 1000, name
    page = (report / "rbm.html").read_text()
    assert "test log p, AIS" in page and "-86.34" in page and "class='err'" not in page


def test_ais_agrees_with_exact_log_z():
    """A trained 64-10 RBM: the exact log Z lies in AIS's +-3 std interval, error < 0.05 nats."""
    cfg = {**TINY, "n_hidden": 10, "epochs": 5, "ais_betas": 1000, "ais_runs": 100}
    res = S.run({**cfg, "dataset": "digits"}, seed=1)
    f = res.final
    assert res.status == "done"
    assert f["ais_covers_exact"]
    assert abs(f["ais_error"]) < 0.05
    assert f["test_log_prob_exact"] == pytest.approx(f["test_log_prob"], abs=0.05)
    assert f["test_log_prob_lo"] <= f["test_log_prob_exact"] <= f["test_log_prob_hi"]


def test_same_seed_same_run():
    a = S.run({**TINY, "epochs": 1}, seed=3)
    b = S.run({**TINY, "epochs": 1}, seed=3)
    assert a.final == b.final and a.extra["W"] == b.extra["W"]


def test_binary_splits_are_fixed_binary_draws():
    a, shape = S.binary_splits("digits", binarize="stochastic", seed=0)
    b, _ = S.binary_splits("digits", binarize="stochastic", seed=0)
    t, _ = S.binary_splits("digits", binarize="threshold")
    assert shape == (8, 8)
    for split in ("train", "valid", "test"):
        assert torch.equal(a[split], b[split])
        assert set(a[split].unique().tolist()) <= {0.0, 1.0}
        assert set(t[split].unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a["train"], t["train"])


def test_config_errors_name_the_parameter():
    with pytest.raises(ValueError, match="config.*n_hiden.*keys among"):
        S.resolve_config({"n_hiden": 3})
    with pytest.raises(ValueError, match="method='gibbs'.*'cd' or 'pcd'"):
        S.resolve_config({"method": "gibbs"})
    with pytest.raises(ValueError, match="ais_betas"):
        S.resolve_config({"ais_betas": 1})


def test_tile_layout():
    imgs = np.arange(5 * 4, dtype=float).reshape(5, 4)  # five 2x2 images
    out = tile(imgs, (2, 2), 3, symmetric=True)
    assert out.shape == (2 * 3 + 1, 3 * 3 + 1)
    assert out.min() >= 0 and out.max() <= 1
    assert out[1, 1] == pytest.approx(0.5)  # first image's 0 is grey


def test_k_per_epoch_is_rbm_m_s_ceil_schedule():
    """``k_step = 10``: k = min(k, ceil(epoch / 10)) for 1-based epochs; None: k fixed."""
    cfg = S.resolve_config({"k": 25, "k_step": 10, "epochs": 250})
    ks = S.k_per_epoch(cfg)
    assert len(ks) == 250 and ks[:10] == [1] * 10 and ks[10] == 2 and ks[239] == 24
    assert ks[240:] == [25] * 10 and sum(ks) == 10 * sum(range(1, 26))
    assert S.k_per_epoch(S.resolve_config({"k": 3})) == 3
    assert S.k_per_epoch(S.resolve_config({"k": 2, "k_step": 1, "epochs": 4})) == [1, 2, 2, 2]
    with pytest.raises(ValueError, match="k_step"):
        S.resolve_config({"k_step": 0})
    with pytest.raises(ValueError, match="binarize"):
        S.resolve_config({"binarize": "fresh"})


def test_the_code_lineage_variant_is_the_paper_recipe_with_the_schedule():
    (v,) = [v for v in S.variants("paper") if v.name == "cd-25-schedule"]
    (fixed,) = [v for v in S.variants("paper") if v.name == "cd-25"]
    differ = {k for k in v.config if v.config[k] != fixed.config[k]}
    assert differ == {"k_step", "epochs", "binarize"}
    assert (v.config["k_step"], v.config["epochs"], v.config["binarize"]) == (10, 250, "resample")
    assert "cd-25-schedule" not in {x.name for x in S.variants("quick")}


def test_the_decay_diagnostic_differs_from_the_code_lineage_variant_by_its_decay_only():
    by_name = {v.name: v for v in S.variants("paper")}
    v, base = by_name["cd-25-schedule-decay"], by_name["cd-25-schedule"]
    assert {k for k in v.config if v.config[k] != base.config[k]} == {"lr_decay"}
    assert (base.config["lr_decay"], v.config["lr_decay"]) == (None, "linear")


def test_train_probabilities_are_the_grey_source_of_the_binarized_data():
    """The grey inputs of a dataset, as probabilities (``mnist-binarized`` maps to its source
    ``mnist``; the embedded digits are their own source)."""
    p = S.train_probabilities("digits", n_train=50)
    assert p.shape == (50, 64) and float(p.min()) >= 0 and float(p.max()) <= 1
    assert not bool(((p == 0) | (p == 1)).all())  # grey, not binary


def test_a_resampled_run_trains_on_fresh_draws_and_scores_the_fixed_test_set():
    """binarize='resample': the training sees new binary draws of the grey digits each epoch
    (another model than the 'stochastic' run's), scored by AIS as before, k per epoch
    recorded."""
    cfg = {**TINY, "epochs": 2, "k": 2, "k_step": 1}
    a = S.run({**cfg, "binarize": "resample"}, seed=0)
    b = S.run({**cfg, "binarize": "stochastic"}, seed=0)
    assert a.status == b.status == "done"
    assert [r["k"] for r in a.epochs] == [1, 2]
    assert a.final["test_log_prob"] != b.final["test_log_prob"]
    assert a.final["ais_covers_exact"] and b.final["ais_covers_exact"]

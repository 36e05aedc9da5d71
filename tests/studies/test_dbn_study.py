"""The ``dbn`` study: a smoke run into tmp_path, the two variants, config checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smithing.experiment.store import Store
from smithing.studies import dbn as S
from studytools import run_study

TINY = {
    "hidden": [16, 12],
    "n_train": 300,
    "pretrain_epochs": 2,
    "epochs": 3,
    "batch_size": 32,
    "n_filters": 9,
    "n_samples": 4,
    "sample_steps": 5,
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls gain nothing from threads, and oversubscribed cores stall them badly."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_smoke_run_writes_store_figures_and_table(tmp_path):
    summary = run_study("dbn", seeds=2, out=str(tmp_path), quiet=True, overrides=TINY)
    assert set(summary["variants"]) == {"dbn-pretrained", "no-pretraining"}
    for v in summary["variants"].values():
        assert v["done"] == 2 and 0 <= v["test_error_mean"] <= 1
    with Store(tmp_path) as store:
        res = store.results("dbn")
    for r in res.runs:
        assert 1 <= len(r.epochs) <= 3 and "valid_error" in r.epochs[0]
        assert np.asarray(r.extra["filters_finetuned"]).shape == (9, 64)
        pretrained = r.variant == "dbn-pretrained"
        assert ("samples" in r.extra) == pretrained
        if pretrained:
            assert len(r.extra["pretrain"]) == 2
            assert len(r.extra["pretrain"][0]["recon_error"]) == 2
            assert np.asarray(r.extra["samples"]).shape == (4, 64)
    report = tmp_path / "report"
    for name in ("curves.png", "final.png", "pretraining.png", "filters.png", "samples.png"):
        assert (report / "dbn" / name).stat().st_size > 1000, name
    page = (report / "dbn.html").read_text()
    assert "test_error" in page and "1.34" in page and "class='err'" not in page


def test_pretrained_net_starts_from_the_rbm_weights():
    """With no fine-tuning steps taken (lr tiny, 1 epoch) the first layer is the RBM's W.T."""
    res = S.run({**TINY, "epochs": 1, "lr": 1e-12}, seed=0)
    pre = np.asarray(res.extra["filters_pretrained"])
    post = np.asarray(res.extra["filters_finetuned"])
    assert np.allclose(pre, post, atol=1e-4)
    rnd = S.run({**TINY, "epochs": 1, "lr": 1e-12, "pretrain": False}, seed=0)
    bound = 4 * np.sqrt(6 / (64 + 16))  # Glorot uniform x 4 (sigmoid)
    w = np.asarray(rnd.extra["filters_finetuned"])
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.5 * bound


def test_config_errors_name_the_parameter():
    with pytest.raises(ValueError, match="config.*hiden.*keys among"):
        S.resolve_config({"hiden": [3]})
    with pytest.raises(ValueError, match="hidden=\\[\\].*non-empty"):
        S.resolve_config({"hidden": []})

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


def test_paper_scale_is_hinton_salakhutdinovs_recipe():
    """The paper scale sets the code's pretraining recipe (RECIPES 1b); quick keeps its own."""
    paper = {v.name: v.config for v in S.variants("paper")}
    quick = {v.name: v.config for v in S.variants("quick")}
    for cfg in paper.values():
        S.resolve_config(cfg)
        assert cfg["hidden"] == [500, 500, 2000]
        assert (cfg["pretrain_epochs"], cfg["pretrain_batch_size"], cfg["pretrain_lr"]) == (
            50,
            100,
            0.1,
        )
        assert cfg["pretrain_weight_decay"] == 2e-4 and cfg["pretrain_momentum"] == "hinton"
        assert (cfg["pretrain_k"], cfg["pretrain_method"], cfg["propagate"]) == (1, "cd", "probs")
        assert cfg["init_std"] == 0.1 and cfg["visible_bias"] == "zero"
        assert cfg["negative_visible"] == "mean"
        assert cfg["output_init"] == "randn" and cfg["output_init_std"] == 0.1
        assert (cfg["optimizer"], cfg["lr"], cfg["batch_size"], cfg["epochs"]) == (
            "sgd",
            0.1,
            10,
            200,
        )
    for cfg in quick.values():  # the tour's settings: the guide's defaults
        assert cfg["init_std"] == 0.01 and cfg["visible_bias"] == "logit"
        assert cfg["negative_visible"] == "sample" and cfg["output_init"] == "zeros"
        assert (cfg["optimizer"], cfg["lr"], cfg["epochs"]) == ("momentum", 0.05, 40)
    from smithing.experiment import REPRODUCTIONS

    rep = REPRODUCTIONS.get("dbn")
    assert rep.departures == S.DEPARTURES
    assert all(d in S.REFERENCES for d in S.DEPARTURES)
    assert any("conjugate gradients" in d for d in rep.departures)
    assert not any("0.01^2" in d or "logit" in d for d in rep.departures)


def test_recipe_options_reach_the_rbms_and_the_output_layer(monkeypatch):
    """init_std, zero visible biases and visible means in the negative phase reach train_rbm;
    output_init="randn" starts the softmax weights and biases at N(0, std^2)."""
    import smithing.pretrain.dbn as D

    seen = []
    orig = D.train_rbm

    def spy(rbm, x, **kw):
        W, b = rbm.W.detach(), rbm.b.detach()
        seen.append((float(W.std()), float(b.abs().max()), kw["negative_visible"]))
        return orig(rbm, x, **kw)

    monkeypatch.setattr(D, "train_rbm", spy)
    cfg = {
        **TINY,
        "hidden": [60, 50],
        "epochs": 1,
        "lr": 1e-12,
        "init_std": 0.1,
        "visible_bias": "zero",
        "negative_visible": "mean",
        "output_init": "randn",
        "output_init_std": 0.5,
    }
    res = S.run(cfg, seed=0)
    assert len(seen) == 2
    for std, b, neg in seen:
        assert abs(std - 0.1) < 0.01 and b == 0.0 and neg == "mean"
    out = res.model["mlp"].linears[-1]
    w = out.weight.detach()
    assert 0.4 < float(w.std()) < 0.6 and float(out.bias.detach().abs().max()) > 0
    seen.clear()
    S.run(TINY, seed=0)  # the defaults: guide's init, logit visible biases, sampled visibles
    for std, _b, neg in seen:
        assert abs(std - 0.01) < 0.002 and neg == "sample"
    assert seen[0][1] > 0  # b = logit(mean pixel)


def test_new_config_keys_are_checked():
    with pytest.raises(ValueError, match="visible_bias"):
        S.resolve_config({"visible_bias": "mean"})
    with pytest.raises(ValueError, match="negative_visible"):
        S.resolve_config({"negative_visible": "probs"})
    with pytest.raises(ValueError, match="output_init"):
        S.resolve_config({"output_init": "gaussian"})
    with pytest.raises(ValueError, match="init_std"):
        S.resolve_config({"init_std": 0})

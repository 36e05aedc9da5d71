"""Smoke runs of the denoising-autoencoder studies (tiny settings) and their helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from smithing.experiment.store import Store
from smithing.studies import STUDIES
from smithing.studies import autoencoder as ae_study
from smithing.studies import function_space as fs_study
from smithing.studies import larochelle as lr_study
from smithing.studies import pretraining_depth as pd_study
from smithing.studies import sda as sda_study
from studytools import run_study


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls gain nothing from threads, and oversubscribed cores stall them badly."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _check_outputs(tmp_path: Path, name: str, figures: list[str]) -> list:
    report = tmp_path / "report"
    assert (report / f"{name}.html").is_file()
    for f in figures:
        assert (report / name / f).is_file(), f
    with Store(tmp_path) as store:
        results = store.results(name, "quick")
    assert results.runs and all(r.status == "done" for r in results.runs), [
        (r.variant, r.message) for r in results.runs
    ]
    return results.runs


def test_studies_registered_and_paper_configs_valid():
    from smithing.experiment.mlp import MLPConfig

    for name in ("autoencoder", "sda", "pretraining-depth", "function-space", "larochelle"):
        study = STUDIES.get(name)
        assert study.references and study.in_tour
        for scale in ("quick", "paper"):
            for v, _ in study.expand(scale, seeds=1):
                if v.kind == "mlp":
                    MLPConfig.from_dict(v.config)  # every key is a valid MLP field


def test_autoencoder_study_smoke(tmp_path):
    summary = run_study(
        "autoencoder",
        seeds=1,
        out=str(tmp_path),
        quiet=True,
        overrides={"epochs": 2, "n_hidden": 16, "n_train": 200},
    )
    assert set(summary["variants"]) == {"corruption 0%", "corruption 30%"}
    runs = _check_outputs(
        tmp_path,
        "autoencoder",
        ["filters.png", "reconstructions.png", "denoising.png", "curves.png"],
    )
    r = runs[0]
    assert len(r.epochs) == 2 and np.shape(r.extra["filters"]) == (16, 64)
    assert np.shape(r.extra["recon_corrupted"]) == (ae_study.N_EXAMPLES, 64)
    assert {"train_recon", "test_recon", "test_denoise"} <= set(r.final)


def test_sda_study_smoke(tmp_path, monkeypatch):
    quick = {
        **sda_study.SETUP["quick"],
        "hidden": [16, 16, 16],
        "pretrain": {"epochs": 1, "lr": 0.1, "batch_size": 50},
        "finetune": {"lr": 0.1, "batch_size": 50, "epochs": 3, "early_stopping_patience": 2},
    }
    monkeypatch.setitem(sda_study.SETUP, "quick", quick)
    run_study("sda", seeds=1, out=str(tmp_path), quiet=True)
    runs = _check_outputs(tmp_path, "sda", ["curves.png", "final.png"])
    pre = next(r for r in runs if r.variant.startswith("SdA"))
    rates = [lo["rate"] for lo in pre.config["init_options"]["layer_options"]]
    assert rates == [0.1, 0.2, 0.3] and pre.config["init"] == "pretrained"


def test_sda_paper_scale_is_the_theano_tutorials_recipe():
    """SdA.py's recipe at paper scale (RECIPES 2); the quick scale keeps PyTorch's output init."""
    from smithing.experiment import REPRODUCTIONS

    paper = {v.name: v.config for v in sda_study.variants("paper")}
    pre = paper["SdA-3 (pretrained)"]
    assert pre["hidden"] == [1000, 1000, 1000] and pre["activation"] == "sigmoid"
    assert (pre["optimizer"], pre["lr"], pre["batch_size"], pre["epochs"]) == ("sgd", 0.1, 1, 1000)
    assert pre["early_stopping_monitor"] == "valid_error"
    opts = pre["init_options"]
    assert opts["source"] == "sda" and opts["rest"] == "zeros"
    assert opts["stack_options"] == {"tied": True, "loss": "cross_entropy"}
    for layer, rate in zip(opts["layer_options"], (0.1, 0.2, 0.3), strict=True):
        assert layer == {
            "epochs": 15,
            "lr": 0.001,
            "batch_size": 1,
            "optimizer": "sgd",
            "corruption": "masking",
            "rate": rate,
        }
    quick = sda_study.sda_init_options("quick")
    assert "rest" not in quick and "stack_options" not in quick
    rep = REPRODUCTIONS.get("sda")
    assert rep.departures == sda_study.DEPARTURES
    assert all(d in sda_study.REFERENCES for d in sda_study.DEPARTURES)
    assert any("0.995" in d for d in rep.departures)
    assert not any("default init" in d for d in rep.departures)


def test_sda_output_layer_rest_zeros_starts_at_zero():
    """init_options["rest"] = "zeros" (paper scale) zeroes the output layer after pretraining."""
    from smithing.experiment.mlp import MLPConfig, build_model, load_data

    layers = [{"epochs": 1, "lr": 0.1, "batch_size": 50, "rate": r} for r in (0.1, 0.2)]
    cfg = MLPConfig(
        hidden=(8, 8),
        activation="sigmoid",
        n_train=100,
        init="pretrained",
        init_options={"source": "sda", "layer_options": layers, "rest": "zeros"},
    )
    model = build_model(cfg, load_data(cfg, "cpu"))
    out = model.linears[-1]
    assert float(out.weight.detach().abs().max()) == 0.0 == float(out.bias.detach().abs().max())
    assert float(model.linears[0].weight.detach().abs().max()) > 0


def test_pretraining_depth_study_smoke(tmp_path, monkeypatch):
    quick = {
        **pd_study.SETUP["quick"],
        "depths": (1, 2),
        "width": 16,
        "dbn": {"epochs": 1, "batch_size": 50},
        "sda": {"epochs": 1, "batch_size": 50},
        "finetune": {"optimizer": "momentum", "lr": 0.1, "batch_size": 50, "epochs": 2},
    }
    monkeypatch.setitem(pd_study.SETUP, "quick", quick)
    run_study("pretraining-depth", seeds=2, out=str(tmp_path), quiet=True)
    runs = _check_outputs(
        tmp_path, "pretraining-depth", ["depth_box.png", "train_vs_test.png", "curves.png"]
    )
    assert len(runs) == 2 * 3 * 2
    assert {pd_study.parse(r.variant) for r in runs} == {
        (d, m) for d in (1, 2) for m in pd_study.METHODS
    }
    assert pd_study.parse(pd_study.variant_name(3, "sda")) == (3, "sda")


def test_function_space_study_smoke(tmp_path, monkeypatch):
    quick = {
        **fs_study.SETUP["quick"],
        "n_nets": 3,
        "hidden": [16, 16],
        "n_probe": 20,
        "pretrain_options": {"epochs": 1, "batch_size": 50},
        "epochs": 3,
        "batch_size": 50,
    }
    monkeypatch.setitem(fs_study.SETUP, "quick", quick)
    run_study("function-space", out=str(tmp_path), quiet=True)
    runs = _check_outputs(tmp_path, "function-space", ["tsne.png", "curves.png"])
    arr = fs_study._decode(runs[0].extra["functions"], runs[0].extra["shape"])
    assert arr.shape == (4, 3, 20 * 10)  # (epochs + 1, nets, probes x classes)
    np.testing.assert_allclose(arr.reshape(4, 3, 20, 10).sum(-1), 1.0, atol=5e-3)  # softmax


def test_larochelle_study_smoke(tmp_path, monkeypatch):
    quick = {
        **lr_study.SETUP["quick"],
        "sizes": {"n_train": 60, "n_valid": 30, "n_test": 60},
        "hidden": [16, 16, 16],
        "dbn": {"epochs": 1, "batch_size": 30},
        "sda": {"epochs": 1, "batch_size": 30},
        "finetune": {
            "optimizer": "momentum",
            "lr": 0.05,
            "batch_size": 30,
            "epochs": 2,
            "patience": 1,
        },
    }
    monkeypatch.setitem(lr_study.SETUP, "quick", quick)
    monkeypatch.setattr(lr_study, "QUICK_TASKS", ("rectangles",))
    run_study("larochelle", out=str(tmp_path), quiet=True)
    runs = _check_outputs(tmp_path, "larochelle", ["errors.png"])
    assert sorted(r.variant for r in runs) == [f"rectangles / {m}" for m in sorted(lr_study.MODELS)]
    assert all(r.extra["n_train"] == 60 and r.extra["n_test"] == 60 for r in runs)
    sda = next(r for r in runs if r.variant.endswith("SdA-3"))
    assert sda.config["pretrain"]["rate"] == lr_study.SDA_RATE["rectangles"]


def test_larochelle_quick_scale_needs_no_download():
    tasks = {v.config["dataset"] for v in lr_study.variants("quick")}
    assert tasks == {"rectangles", "convex"}
    assert {v.config["dataset"] for v in lr_study.variants("paper")} == set(lr_study.TASKS)


def test_helpers():
    tiles = ae_study.tile_images(np.arange(2 * 4).reshape(2, 4), (2, 2), cols=2)
    assert tiles.shape == (2, 5) and np.isnan(tiles[:, 2]).all()
    np.testing.assert_allclose(tiles[:, :2], [[0, 1 / 3], [2 / 3, 1]])  # each image to [0, 1]
    g = np.random.default_rng(0)
    a = g.normal(0, 0.01, (1, 6, 30))
    b = g.normal(0, 0.01, (1, 6, 30)) + 5  # a far-away family
    purity = fs_study.family_purity([("a", None, a), ("b", None, b)], k=3)
    assert purity == {"a": 1.0, "b": 1.0}
    y = fs_study.embed(np.concatenate([a[0], b[0]]).astype(np.float64))
    assert y.shape == (12, 2) and np.isfinite(y).all()


def test_function_space_run_projects_functions():
    cfg = {
        **fs_study.SETUP["quick"],
        "dataset": "digits",
        "activation": "sigmoid",
        "pretraining": "sda",
        "n_nets": 2,
        "hidden": [8],
        "n_probe": 10,
        "project_dim": 7,
        "pretrain_options": {"epochs": 1, "batch_size": 100},
        "epochs": 1,
        "batch_size": 100,
    }
    res = fs_study.run(cfg, 0, "cpu")
    assert res.status == "done" and res.extra["shape"] == [2, 2, 7]
    assert len(res.extra["test_errors"]) == 2 and len(res.epochs) == 1

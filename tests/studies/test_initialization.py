"""The initialization study: variants, deep linear runs, signal variances and a smoke run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from smithing import init as sinit
from smithing.experiment.mlp import MLPConfig, build_model, load_data
from smithing.studies import initialization as ini
from smithing.train import signal_variances


def _mlp_variants(scale="quick"):
    return [v for v in ini.variants(scale) if v.kind == "mlp"]


def _cfg(v, **kw) -> MLPConfig:
    return MLPConfig.from_dict({**v.config, "dataset": "digits", "seed": 0, **kw})


def test_every_initializer_is_compared_and_batched_together():
    mlps = _mlp_variants()
    used = {v.config["init"] for v in mlps}
    # left out: identity (square recurrent matrices), pretrained (the pretraining studies) and
    # the constant rules zeros / ones / constant (no symmetry breaking: nothing to compare)
    left_out = {"identity", "pretrained", "zeros", "ones", "constant"}
    assert used == set(sinit.names()) - left_out
    # one ensemble: the MLP variants differ only in per-member fields
    assert len({_cfg(v).group_key() for v in mlps}) == 1
    assert {v.config["activation"] for v in mlps} == {"tanh"}
    paper = _mlp_variants("paper")
    assert _cfg(paper[0]).hidden == (1000,) * 5 and _cfg(paper[0]).batch_size == 10


def test_standard_is_glorot_bengio_standard_init():
    (v,) = [v for v in _mlp_variants() if v.name == "standard"]
    w = torch.empty(2000, 400)
    gen = torch.Generator().manual_seed(0)
    sinit.initialize(w, v.config["init"], generator=gen, **v.config["init_options"])
    bound = 1 / math.sqrt(400)  # U(-1/sqrt(n_in), 1/sqrt(n_in))
    assert float(w.abs().max()) <= bound * (1 + 1e-6)
    assert float(w.var()) == pytest.approx(bound**2 / 3, rel=0.02)


def test_deep_linear_orthogonal_product_is_an_isometry():
    g = torch.Generator().manual_seed(0)
    ws = ini.deep_linear_weights(8, 16, "orthogonal", generator=g)
    prod = torch.linalg.multi_dot(ws[::-1]).double()
    sv = torch.linalg.svdvals(prod)
    assert torch.allclose(sv, torch.ones_like(sv), atol=1e-4)
    with pytest.raises(ValueError, match="linear_init="):
        ini.deep_linear_weights(2, 4, "xavier")
    with pytest.raises(ValueError, match="depth="):
        ini.deep_linear_weights(0, 4, "gaussian")


def test_deep_linear_depth_one_exact_answer():
    # whitened inputs: the gradient of ||W - A||^2 / 2 is W - A, so lr 1 lands on A in one step
    res = ini.deep_linear_run({"linear_init": "gaussian", "depth": 1, "width": 8, "epochs": 50}, 0)
    assert res.final["epochs_to_threshold"] == 1.0 and res.final["lr"] == 1.0
    assert res.final["reached"] and res.final["final_rel_loss"] < 1e-6


def test_deep_linear_orthogonal_learns_where_gaussian_stalls():
    cfg = {"depth": 8, "width": 16, "epochs": 300}
    orth = ini.deep_linear_run({**cfg, "linear_init": "orthogonal"}, 0)
    gauss = ini.deep_linear_run({**cfg, "linear_init": "gaussian"}, 0)
    assert orth.final["reached"] and orth.final["epochs_to_threshold"] < 150
    assert not gauss.final["reached"]
    sv = torch.tensor(gauss.extra["singular_values"])
    assert float(sv.max() / sv.min()) > 1e4  # the product of Gaussian factors is ill-conditioned


def test_fixed_scale_init_shrinks_the_signal_fan_rules_keep_it():
    by_name = {v.name: v for v in _mlp_variants()}
    ratios = {}
    for name in ("normal", "uniform", "lecun_normal", "glorot_uniform", "orthogonal", "lsuv"):
        cfg = _cfg(by_name[name])
        data = load_data(cfg, "cpu")
        model = build_model(cfg, data)
        s = signal_variances(model, data.train.x[:256], data.train.y[:256])
        ratios[name] = s["act_var"][-1] / s["act_var"][0]
    assert ratios["normal"] < 1e-6 and ratios["uniform"] < 1e-3
    for name in ("lecun_normal", "glorot_uniform", "orthogonal", "lsuv"):
        assert 0.2 < ratios[name] < 5, (name, ratios[name])


def test_smoke_study(tmp_path):
    from smithing.experiment.store import Store
    from studytools import run_study

    summary = run_study(
        "initialization",
        seeds=1,
        out=str(tmp_path),
        quiet=True,
        overrides={"epochs": 1, "n_train": 96, "hidden": [16, 16]},
    )
    assert all(x["failed"] == 0 for x in summary["variants"].values())
    with Store(tmp_path) as store:
        res = store.results("initialization")
    (d1,) = res.of("linear-orthogonal-d1")
    assert d1.final["reached"]  # depth 1, lr 1: one step
    table = ini.STUDY.table(res)
    assert [r[0] for r in table.rows] == list(ini.INITS)
    report = Path(tmp_path) / "report"
    assert "class='err'" not in (report / "initialization.html").read_text()
    for name in ("curves.png", "final.png", "variance.png", "deep_linear.png"):
        assert (report / "initialization" / name).stat().st_size > 0, name

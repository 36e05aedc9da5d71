"""CUDA checks (run with `pytest -m gpu` on a machine with a GPU; skipped without one)."""

import pytest
import torch

from smithing.data import load
from smithing.nn import MLP
from smithing.train import fit, seed_everything
from smithing.train.ensemble import fit_ensemble

pytestmark = pytest.mark.gpu


def _models(seeds, device):
    out = []
    for s in seeds:
        seed_everything(s)
        out.append(MLP(64, [32], 10, "relu").to(device))
    return out


def test_fit_on_cuda_matches_cpu_closely():
    data = load("digits")
    (a,) = _models([0], "cpu")
    (b,) = _models([0], "cuda")
    ha = fit(a, data, epochs=3, lr=0.05, optimizer="momentum", seed=0)
    hb = fit(b, data, epochs=3, lr=0.05, optimizer="momentum", seed=0, device="cuda")
    assert hb.status == "done"
    assert hb.final["test_error"] == pytest.approx(ha.final["test_error"], abs=0.02)


def test_ensemble_on_cuda_equals_members_alone():
    data = load("digits", device="cuda")
    seeds, lrs = [0, 1, 2], [0.02, 0.05, 0.1]
    members = _models(seeds, "cuda")
    hs = fit_ensemble(members, data, seeds=seeds, lrs=lrs, epochs=3, optimizer="adam")
    for m, s, lr, h in zip(members, seeds, lrs, hs):
        (alone,) = _models([s], "cuda")
        h1 = fit(alone, data, epochs=3, lr=lr, optimizer="adam", seed=s)
        for p, q in zip(alone.parameters(), m.parameters()):
            torch.testing.assert_close(p, q, atol=1e-4, rtol=1e-3)
        assert h1.final["test_error"] == pytest.approx(h.final["test_error"], abs=0.01)

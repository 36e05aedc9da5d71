"""CUDA checks (run with `pytest -m gpu` on a machine with a GPU; skipped without one)."""

import math

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


def test_train_rbm_moves_everything_to_cuda_and_restores_there(tmp_path):
    """device="cuda" moves the RBM, the data and the validation data; a finished run's
    checkpoint restores the parameters, the chains and the sparsity mean on the GPU."""
    from smithing.checkpoint import Checkpointer
    from smithing.pretrain.rbm import BernoulliRBM, train_rbm
    from smithing.pretrain.rbm.sampling import PersistentChains

    data = torch.bernoulli(torch.full((64, 16), 0.5), generator=torch.Generator().manual_seed(0))

    def run():
        rbm = BernoulliRBM(16, 8, generator=torch.Generator().manual_seed(1)).to("cuda")
        chains = PersistentChains.init(rbm, 16, generator=torch.Generator("cuda").manual_seed(3))
        h = train_rbm(rbm, data, epochs=3, batch_size=16, method="pcd", chains=chains,
                      valid_data=data[:8], sparsity_target=0.1, sparsity_cost=0.1,
                      device="cuda", generator=torch.Generator("cuda").manual_seed(2),
                      checkpoint=Checkpointer(tmp_path / "r.ckpt", min_interval_s=0))  # fmt: skip
        return rbm, chains, h

    rbm, chains, h = run()
    assert rbm.W.device.type == chains.v.device.type == "cuda" and h.status == "done"
    assert len(h["free_energy_valid"]) == 3 and all(map(math.isfinite, h["recon_error"]))
    again, chains2, h2 = run()  # finished: restored from the checkpoint, nothing trained
    assert torch.equal(again.W, rbm.W) and torch.equal(chains2.v, chains.v)
    assert chains2.v.device.type == "cuda" and h2.epochs == h.epochs

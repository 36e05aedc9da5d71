"""train_rbm's k per epoch and its fresh binarization of every mini-batch (copies of
Salakhutdinov's ``rbm.m``: ``CD = ceil(epoch / 10)``, ``data > rand``): epoch ``e`` runs
``k[e]`` Gibbs sweeps, each use of a batch is a new Bernoulli draw of its probabilities, both
survive a resume bitwise, and bad values are refused."""

from __future__ import annotations

import pytest
import torch

from checkpoint_tools import CrashAfterSave, Interrupted
from smithing.checkpoint import Checkpointer, CheckpointError
from smithing.pretrain.rbm import BernoulliRBM, GaussianBernoulliRBM, train_rbm
from tensortools import same_parameters

D = torch.float64


def rbm(seed=1, nv=6, nh=4):
    return BernoulliRBM(
        nv, nh, init_std=0.3, dtype=D, generator=torch.Generator().manual_seed(seed)
    )


def binary(n=12, nv=6, seed=0):
    return torch.bernoulli(
        torch.full((n, nv), 0.4, dtype=D), generator=torch.Generator().manual_seed(seed)
    )


KW = dict(batch_size=4, lr=0.1, momentum=0.0, monitor_size=5)


def test_epoch_e_runs_k_e_sweeps():
    """k = [1, 3] is one epoch of CD-1 then one of CD-3, on the same generator (momentum 0:
    nothing else carries over between the two calls)."""
    data = binary()
    a, ga = rbm(), torch.Generator().manual_seed(7)
    h = train_rbm(a, data, epochs=2, k=[1, 3], generator=ga, **KW)
    b, gb = rbm(), torch.Generator().manual_seed(7)
    train_rbm(b, data, epochs=1, k=1, generator=gb, **KW)
    train_rbm(b, data, epochs=1, k=3, generator=gb, **KW)
    assert same_parameters(a, b)
    assert h["k"] == [1, 3]
    c = rbm()
    train_rbm(c, data, epochs=2, k=[1, 1], generator=torch.Generator().manual_seed(7), **KW)
    assert not same_parameters(a, c)


def test_a_constant_sequence_is_the_int():
    data = binary()
    a, b = rbm(), rbm()
    ha = train_rbm(a, data, epochs=3, k=[2, 2, 2], generator=torch.Generator().manual_seed(3), **KW)
    hb = train_rbm(b, data, epochs=3, k=2, generator=torch.Generator().manual_seed(3), **KW)
    assert same_parameters(a, b)
    assert "k" in ha.epochs[0] and "k" not in hb.epochs[0]  # only a schedule is recorded


@pytest.mark.parametrize(
    "k, match",
    [(0, "k"), ([1, 2], "len"), ([1, 0, 2], "k"), (True, "k"), ("3", "k"), ([1, 2.0, 3], "k")],
)
def test_bad_k_is_refused(k, match):
    with pytest.raises(ValueError, match=match):
        train_rbm(rbm(), binary(), epochs=3, k=k, **KW)


def test_each_use_of_a_batch_is_a_fresh_binarization():
    """One example of probabilities 0.5 in one batch: its positive-phase states are binary,
    differ from epoch to epoch, and their mean is near 0.5; without the flag the positive
    phase sees the probabilities themselves."""
    p = torch.full((1, 400), 0.5, dtype=D)
    m = BernoulliRBM(400, 3, init_std=0.01, dtype=D, generator=torch.Generator().manual_seed(0))
    firsts = []
    orig = m.hidden_probs

    def spy(v):
        firsts.append(v.clone())
        return orig(v)

    m.hidden_probs = spy  # an instance attribute: train_rbm wraps rbm.hidden_probs
    train_rbm(m, p, epochs=4, batch_size=1, lr=1e-3, k=1, binarize_batches=True,
              generator=torch.Generator().manual_seed(1), monitor_size=1)  # fmt: skip
    # two calls a batch with CD-1: the positive phase, then the negative phase
    positives = firsts[0::2]
    assert len(positives) == 4
    for v in positives:
        assert bool(((v == 0) | (v == 1)).all())
        assert 0.4 < float(v.mean()) < 0.6
    assert all(not torch.equal(positives[i], positives[i + 1]) for i in range(3))
    firsts.clear()
    train_rbm(m, p, epochs=1, batch_size=1, lr=1e-3, k=1,
              generator=torch.Generator().manual_seed(1), monitor_size=1)  # fmt: skip
    assert torch.equal(firsts[0], p)


def test_binarize_batches_needs_probabilities_and_bernoulli_visibles():
    with pytest.raises(ValueError, match="data"):
        train_rbm(rbm(), binary() * 2, epochs=1, binarize_batches=True, **KW)
    g = GaussianBernoulliRBM(6, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="binarize_batches"):
        train_rbm(g, torch.rand(12, 6), epochs=1, binarize_batches=True, **KW)


def _run(path=None, cp=None):
    probs = torch.rand(12, 6, dtype=D, generator=torch.Generator().manual_seed(5))
    m = rbm()
    h = train_rbm(m, probs, epochs=4, k=[1, 2, 2, 3], binarize_batches=True, batch_size=4,
                  lr=0.1, momentum="hinton", monitor_size=5,
                  generator=torch.Generator().manual_seed(9), checkpoint=cp)  # fmt: skip
    return m, h


def _timeless(h):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in h.epochs]


@pytest.mark.parametrize("crash_at", [1, 4])
def test_a_scheduled_resampled_run_resumes_bitwise(tmp_path, crash_at):
    ref_m, ref_h = _run()
    path = tmp_path / "c.safetensors"
    with pytest.raises(Interrupted):
        _run(cp=CrashAfterSave(path, crash_at, min_interval_s=0, every_batches=1))
    m, h = _run(cp=Checkpointer(path, min_interval_s=0))
    assert same_parameters(m, ref_m)
    assert _timeless(h) == _timeless(ref_h)


def test_the_schedule_and_the_binarization_are_in_the_signature(tmp_path):
    path = tmp_path / "c.safetensors"
    with pytest.raises(Interrupted):
        _run(cp=CrashAfterSave(path, 2, min_interval_s=0, every_batches=1))
    probs = torch.rand(12, 6, dtype=D, generator=torch.Generator().manual_seed(5))
    with pytest.raises(CheckpointError):
        train_rbm(rbm(), probs, epochs=4, k=[1, 2, 2, 4], binarize_batches=True, batch_size=4,
                  lr=0.1, momentum="hinton", monitor_size=5,
                  generator=torch.Generator().manual_seed(9),
                  checkpoint=Checkpointer(path, min_interval_s=0))  # fmt: skip
    with pytest.raises(CheckpointError):
        train_rbm(rbm(), probs, epochs=4, k=[1, 2, 2, 3], batch_size=4,
                  lr=0.1, momentum="hinton", monitor_size=5,
                  generator=torch.Generator().manual_seed(9),
                  checkpoint=Checkpointer(path, min_interval_s=0))  # fmt: skip

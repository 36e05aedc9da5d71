"""Defining properties of the pretraining tricks, each checked so that breaking it fails.

Each test's docstring names the one-line source mutation it was verified to catch.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from smithing.pretrain.autoencoder import DenoisingAutoencoder, train_autoencoder
from smithing.pretrain.rbm import BernoulliRBM, train_rbm

D = torch.float64


def _dae_reference_step(W, b, c, data, *, rate, lr, seed, target):
    """One float64 SGD step of the tied masking DAE, batch = all of ``data``.

    Draw order of ``train_autoencoder``: the batch permutation, then the masking uniforms.
    ``target="clean"`` reconstructs x, ``"corrupted"`` reconstructs x~ (the broken trick).
    """
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(data.shape[0], generator=g)
    x = data[perm]
    u = torch.rand(x.shape, generator=g, dtype=D)
    x_tilde = torch.where(u < rate, torch.zeros_like(x), x)
    W, b, c = (t.clone().requires_grad_(True) for t in (W, b, c))
    h = torch.sigmoid(x_tilde @ W.T + b)
    a = h @ W + c
    y = x if target == "clean" else x_tilde
    loss = (F.softplus(a) - y * a).sum(1).mean()
    gW, gb, gc = torch.autograd.grad(loss, (W, b, c))
    return W.detach() - lr * gW, b.detach() - lr * gb, c.detach() - lr * gc


def test_dae_reconstructs_the_clean_input_from_the_corrupted_one():
    """DAE: the loss target is the CLEAN x while the encoder sees x~ (Vincent et al. 2008).

    Catches: ``model.loss(xb, x_tilde, ...)`` -> ``model.loss(x_tilde, x_tilde, ...)`` in
    ``train_autoencoder`` (target = corrupted input), and a corruption that is never applied
    (``model.loss(xb, xb, ...)``).
    """
    gd = torch.Generator().manual_seed(0)
    data = torch.bernoulli(torch.full((8, 6), 0.5, dtype=D), generator=gd)
    model = DenoisingAutoencoder(6, 4, dtype=D, generator=torch.Generator().manual_seed(1))
    W0, b0, c0 = (t.detach().clone() for t in (model.W, model.b, model.c))
    kw = dict(rate=0.5, lr=0.5, seed=2)
    clean = _dae_reference_step(W0, b0, c0, data, target="clean", **kw)
    wrong = _dae_reference_step(W0, b0, c0, data, target="corrupted", **kw)
    assert not torch.allclose(clean[0], wrong[0], atol=1e-6)  # the test can tell them apart
    train_autoencoder(
        model,
        data,
        epochs=1,
        lr=0.5,
        batch_size=8,
        corruption="masking",
        rate=0.5,
        generator=torch.Generator().manual_seed(2),
    )
    for got, want in zip((model.W, model.b, model.c), clean):
        torch.testing.assert_close(got.detach(), want, rtol=1e-12, atol=1e-12)


def test_dae_inference_is_not_corrupted():
    """DAE: corruption is a training device only; ``forward`` reconstructs the clean input.

    Catches: ``forward`` encoding a corrupted input (e.g. ``self.encode(corrupt(x))``), which
    makes it random and unequal to ``g(f(x))``.
    """
    model = DenoisingAutoencoder(5, 3, dtype=D, generator=torch.Generator().manual_seed(3))
    x = torch.rand(7, 5, generator=torch.Generator().manual_seed(4), dtype=D)
    want = torch.sigmoid(torch.sigmoid(x @ model.W.T + model.b) @ model.W + model.c)
    torch.testing.assert_close(model(x), want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


def _cd_reference(W, b, c, data, *, k, lr, seed):
    """One float64 CD-k update, batch = all of ``data``, in ``train_rbm``'s draw order."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(data.shape[0], generator=g)
    v0 = data[perm]
    ph0 = torch.sigmoid(v0 @ W + c)
    h = torch.bernoulli(ph0, generator=g)
    v = torch.bernoulli(torch.sigmoid(h @ W.T + b), generator=g)
    for _ in range(k - 1):  # sweeps 2..k
        h = torch.bernoulli(torch.sigmoid(v @ W + c), generator=g)
        v = torch.bernoulli(torch.sigmoid(h @ W.T + b), generator=g)
    phk = torch.sigmoid(v @ W + c)
    n = v0.shape[0]
    dW = (v0.T @ ph0 - v.T @ phk) / n
    db = (v0 - v).mean(0)
    dc = (ph0 - phk).mean(0)
    return W + lr * dW, b + lr * db, c + lr * dc


@pytest.mark.parametrize("k", [1, 3])
def test_cd_k_runs_k_gibbs_sweeps(k):
    """CD-k: the negative phase is k full Gibbs sweeps from the data (Hinton 2002).

    Compared with a float64 transcription under a shared generator, k = 1 and k = 3.
    Catches: ``for step in range(k)`` -> ``for step in range(1)`` in ``train_rbm``
    (one sweep whatever k), and an off-by-one ``range(k + 1)``.
    """
    data = torch.bernoulli(
        torch.full((6, 5), 0.5, dtype=D), generator=torch.Generator().manual_seed(5)
    )
    rbm = BernoulliRBM(5, 4, init_std=1.5, dtype=D, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        rbm.b.normal_(0, 0.5, generator=torch.Generator().manual_seed(7))
        rbm.c.normal_(0, 0.5, generator=torch.Generator().manual_seed(8))
    W0, b0, c0 = (t.detach().clone() for t in (rbm.W, rbm.b, rbm.c))
    want = _cd_reference(W0, b0, c0, data, k=k, lr=0.3, seed=9)
    other = _cd_reference(W0, b0, c0, data, k=4 - k, lr=0.3, seed=9)  # k=1 <-> k=3
    assert not torch.allclose(want[0], other[0], atol=1e-6)  # the sweeps matter here
    train_rbm(
        rbm, data, epochs=1, batch_size=6, lr=0.3, k=k, generator=torch.Generator().manual_seed(9)
    )
    for got, ref in zip((rbm.W, rbm.b, rbm.c), want):
        torch.testing.assert_close(got.detach(), ref, rtol=1e-12, atol=1e-12)

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


def test_cd_k_negative_visible_mean_uses_the_last_sweeps_probabilities():
    """CD-k with ``negative_visible="mean"``: the negative statistics use ``E[v | h_k]``.

    Catches: ``v_neg = mean if negative_visible == "mean" else v`` -> ``v_neg = v``.
    """
    data = torch.bernoulli(
        torch.full((6, 5), 0.5, dtype=D), generator=torch.Generator().manual_seed(5)
    )
    rbm = BernoulliRBM(5, 4, init_std=1.5, dtype=D, generator=torch.Generator().manual_seed(6))
    W, b, c = (t.detach().clone() for t in (rbm.W, rbm.b, rbm.c))
    g = torch.Generator().manual_seed(9)
    v0 = data[torch.randperm(6, generator=g)]
    ph0 = torch.sigmoid(v0 @ W + c)
    v = v0
    for _ in range(2):
        h = torch.bernoulli(torch.sigmoid(v @ W + c), generator=g) if _ else None
        h = torch.bernoulli(ph0, generator=g) if h is None else h
        mean = torch.sigmoid(h @ W.T + b)
        v = torch.bernoulli(mean, generator=g)
    phk = torch.sigmoid(mean @ W + c)
    want = W + 0.3 * (v0.T @ ph0 - mean.T @ phk) / 6
    train_rbm(
        rbm,
        data,
        epochs=1,
        batch_size=6,
        lr=0.3,
        k=2,
        negative_visible="mean",
        generator=torch.Generator().manual_seed(9),
    )
    torch.testing.assert_close(rbm.W.detach(), want, rtol=1e-12, atol=1e-12)


def test_pcd_k_sweeps_continue_the_chains_across_batches():
    """PCD-k (Tieleman 2008): each update runs k sweeps of the SAME persistent chains, which
    carry over to the next batch; float64 transcription, k = 3, two batches.

    Catches: ``v = chains.v`` -> ``v = v0`` (chains restarted at the data each batch) and
    ``for _ in range(k)`` -> ``range(1)`` in the PCD branch of ``train_rbm``.
    """
    from smithing.pretrain.rbm import PersistentChains

    data = torch.bernoulli(
        torch.full((8, 5), 0.5, dtype=D), generator=torch.Generator().manual_seed(20)
    )
    rbm = BernoulliRBM(5, 3, init_std=1.5, dtype=D, generator=torch.Generator().manual_seed(21))
    W, b, c = (t.detach().clone() for t in (rbm.W, rbm.b, rbm.c))
    g = torch.Generator().manual_seed(22)
    chains = PersistentChains.init(rbm, 3, generator=g)
    vc = chains.v.clone()
    gr = torch.Generator().manual_seed(22)
    PersistentChains.init(rbm, 3, generator=gr)  # the same draws for the reference
    perm = torch.randperm(8, generator=gr)
    for start in (0, 4):
        v0 = data[perm[start : start + 4]]
        ph0 = torch.sigmoid(v0 @ W + c)
        torch.bernoulli(ph0, generator=gr)  # the trainer's first reconstruction draw
        for _ in range(3):
            h = torch.bernoulli(torch.sigmoid(vc @ W + c), generator=gr)
            vc = torch.bernoulli(torch.sigmoid(h @ W.T + b), generator=gr)
        phk = torch.sigmoid(vc @ W + c)
        W = W + 0.2 * (v0.T @ ph0 / 4 - vc.T @ phk / 3)
        b = b + 0.2 * (v0.mean(0) - vc.mean(0))
        c = c + 0.2 * (ph0.mean(0) - phk.mean(0))
    train_rbm(
        rbm, data, epochs=1, batch_size=4, lr=0.2, method="pcd", k=3, chains=chains, generator=g
    )
    torch.testing.assert_close(chains.v, vc, rtol=0, atol=0)
    for got, ref in zip((rbm.W, rbm.b, rbm.c), (W, b, c)):
        torch.testing.assert_close(got.detach(), ref, rtol=1e-12, atol=1e-12)


def test_gaussian_rbm_cd_samples_real_valued_visibles():
    """Gaussian-Bernoulli RBM CD-1: the negative visibles are drawn from N(b + W h, sigma^2)
    and every statistic divides v by sigma^2 (Cho et al. 2011); float64 transcription with
    sigma^2 = e^0.5 != 1.

    Catches: the Gaussian branch of ``_draw_visible`` returning ``mean`` (no visible noise),
    and ``visible_drive`` / the expectations forgetting the 1 / sigma^2.
    """
    from smithing.pretrain.rbm import GaussianBernoulliRBM

    data = torch.randn(6, 4, generator=torch.Generator().manual_seed(30), dtype=D)
    rbm = GaussianBernoulliRBM(
        4, 3, log_var_init=0.5, init_std=0.8, dtype=D, generator=torch.Generator().manual_seed(31)
    )
    W, b, c = (t.detach().clone() for t in (rbm.W, rbm.b, rbm.c))
    var = torch.exp(rbm.log_var.detach())
    g = torch.Generator().manual_seed(32)
    v0 = data[torch.randperm(6, generator=g)]
    ph0 = torch.sigmoid((v0 / var) @ W + c)
    h = torch.bernoulli(ph0, generator=g)
    mean = h @ W.T + b
    v = mean + var.sqrt() * torch.randn(mean.shape, generator=g, dtype=D)
    phk = torch.sigmoid((v / var) @ W + c)
    lr = 0.1
    want = (
        W + lr * ((v0 / var).T @ ph0 - (v / var).T @ phk) / 6,
        b + lr * (((v0 - b) / var).mean(0) - ((v - b) / var).mean(0)),
        c + lr * (ph0.mean(0) - phk.mean(0)),
    )
    train_rbm(rbm, data, epochs=1, batch_size=6, lr=lr, generator=torch.Generator().manual_seed(32))
    for got, ref in zip((rbm.W, rbm.b, rbm.c), want):
        torch.testing.assert_close(got.detach(), ref, rtol=1e-12, atol=1e-12)


def test_dae_emphasis_weights_alpha_on_the_corrupted_components():
    """Emphasized DAE (Vincent et al. 2010, Sec. 4.4): alpha weighs the loss on the CORRUPTED
    components, beta on the others; float64 transcription of one SGD step.

    Catches: ``torch.where(mask, alpha, beta)`` -> ``torch.where(mask, beta, alpha)``.
    """
    gd = torch.Generator().manual_seed(40)
    data = torch.bernoulli(torch.full((8, 6), 0.5, dtype=D), generator=gd)
    model = DenoisingAutoencoder(6, 4, dtype=D, generator=torch.Generator().manual_seed(41))
    W, b, c = (t.detach().clone().requires_grad_(True) for t in (model.W, model.b, model.c))
    g = torch.Generator().manual_seed(42)
    x = data[torch.randperm(8, generator=g)]
    mask = torch.rand(x.shape, generator=g, dtype=D) < 0.4
    x_tilde = torch.where(mask, torch.zeros_like(x), x)
    a = torch.sigmoid(x_tilde @ W.T + b) @ W + c
    weights = torch.where(mask, 3.0, 0.25).to(D)
    loss = ((F.softplus(a) - x * a) * weights).sum(1).mean()
    grads = torch.autograd.grad(loss, (W, b, c))
    train_autoencoder(
        model,
        data,
        epochs=1,
        lr=0.5,
        batch_size=8,
        rate=0.4,
        emphasis=(3.0, 0.25),
        generator=torch.Generator().manual_seed(42),
    )
    for got, p, gr in zip((model.W, model.b, model.c), (W, b, c), grads):
        torch.testing.assert_close(got.detach(), p.detach() - 0.5 * gr, rtol=1e-12, atol=1e-12)


def test_contractive_penalty_is_taken_at_the_clean_input():
    """Contractive DAE (Rifai et al. 2011): the penalty is ||J_f(x)||_F^2 at the CLEAN x, the
    Jacobian computed by float64 autograd (``torch.func.jacrev``) in the reference step.

    Catches: ``hc, ac = (h, a) if x_tilde is x else _encode(x, ...)`` -> ``hc, ac = (h, a)``
    (penalty at the corrupted input) and a penalty that drops the square of s'(a).
    """
    gd = torch.Generator().manual_seed(50)
    data = torch.bernoulli(torch.full((8, 5), 0.5, dtype=D), generator=gd)
    model = DenoisingAutoencoder(5, 3, dtype=D, generator=torch.Generator().manual_seed(51))
    W, b, c = (t.detach().clone().requires_grad_(True) for t in (model.W, model.b, model.c))
    g = torch.Generator().manual_seed(52)
    x = data[torch.randperm(8, generator=g)]
    mask = torch.rand(x.shape, generator=g, dtype=D) < 0.5
    x_tilde = torch.where(mask, torch.zeros_like(x), x)
    a = torch.sigmoid(x_tilde @ W.T + b) @ W + c
    jac = torch.func.vmap(torch.func.jacrev(lambda xi: torch.sigmoid(W @ xi + b)))(x)  # (8, 3, 5)
    lam = 0.7
    loss = (F.softplus(a) - x * a).sum(1).mean() + lam * jac.square().sum((1, 2)).mean()
    grads = torch.autograd.grad(loss, (W, b, c))
    train_autoencoder(
        model,
        data,
        epochs=1,
        lr=0.5,
        batch_size=8,
        rate=0.5,
        contractive=lam,
        generator=torch.Generator().manual_seed(52),
    )
    for got, p, gr in zip((model.W, model.b, model.c), (W, b, c), grads):
        torch.testing.assert_close(got.detach(), p.detach() - 0.5 * gr, rtol=1e-12, atol=1e-12)


def _onehot_draw(p, g):
    u = torch.rand(p[..., :1].shape, generator=g, dtype=p.dtype)
    cdf = p.cumsum(-1)
    idx = (cdf < u * cdf[..., -1:]).sum(-1, keepdim=True).clamp_max(p.shape[-1] - 1)
    return torch.zeros_like(p).scatter_(-1, idx, 1.0)


@pytest.mark.parametrize("negative_visible", ["sample", "mean"])
def test_class_rbm_generative_gradient_runs_k_joint_gibbs_sweeps(negative_visible):
    """Classification RBM, generative CD-k: k block-Gibbs sweeps (x, y) -> h -> (x', y') of the
    joint chain, the negatives the sampled states or their means; float64 transcription, k = 3.

    Catches: ``for step in range(k)`` -> ``range(1)`` in ``hybrid._negative_phase`` and
    ``xn, yn = (xm, ym) if negative_visible == "mean" else (x, y)`` -> ``xn, yn = (x, y)``.
    """
    from smithing.pretrain.hybrid import generative_gradient

    gp = torch.Generator().manual_seed(60)
    W, b, c = (torch.randn(s, generator=gp, dtype=D) for s in ((5, 4), (5,), (4,)))
    U, d = torch.randn(3, 4, generator=gp, dtype=D) * 1.5, torch.randn(3, generator=gp, dtype=D)
    W = W * 1.5
    x = torch.bernoulli(torch.full((6, 5), 0.5, dtype=D), generator=gp)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    got, _ = generative_gradient(
        x, y, W, b, c, U, d, k=3, negative_visible=negative_visible,
        generator=torch.Generator().manual_seed(61),
    )  # fmt: skip
    g = torch.Generator().manual_seed(61)
    yo = F.one_hot(y, 3).to(D)
    ph0 = torch.sigmoid(x @ W + yo @ U + c)
    xs, ys, ph = x, yo, ph0
    for _ in range(3):
        h = torch.bernoulli(ph, generator=g)
        xm, ym = torch.sigmoid(h @ W.T + b), torch.softmax(h @ U.T + d, -1)
        xs, ys = torch.bernoulli(xm, generator=g), _onehot_draw(ym, g)
        ph = torch.sigmoid(xs @ W + ys @ U + c)
    xn, yn = (xm, ym) if negative_visible == "mean" else (xs, ys)
    phn = torch.sigmoid(xn @ W + yn @ U + c)
    want = {
        "W": (x.T @ ph0 - xn.T @ phn) / 6,
        "b": x.mean(0) - xn.mean(0),
        "c": ph0.mean(0) - phn.mean(0),
        "U": (yo.T @ ph0 - yn.T @ phn) / 6,
        "d": yo.mean(0) - yn.mean(0),
    }
    for name, ref in want.items():
        torch.testing.assert_close(got[name], ref, rtol=1e-12, atol=1e-12)


def _class_rbm_step(**options):
    """The parameters of a fresh float64 ClassRBM after ONE training step (same seeds)."""
    from smithing.pretrain.hybrid import ClassRBM, train_class_rbm

    gd = torch.Generator().manual_seed(70)
    x = torch.bernoulli(torch.full((6, 5), 0.5, dtype=D), generator=gd)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    xu = torch.bernoulli(torch.full((6, 5), 0.5, dtype=D), generator=gd)
    model = ClassRBM(5, 4, 3, init_scale=0.8, dtype=D, generator=torch.Generator().manual_seed(71))
    with torch.no_grad():  # non-zero biases, so that a decay on them would show
        for bias in (model.b, model.c, model.d):
            bias.uniform_(-1, 1, generator=gd)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_class_rbm(
        model, x, y, x_unlabeled=xu, epochs=1, batch_size=6, steps_per_epoch=1, lr=0.1,
        generator=torch.Generator().manual_seed(72), **options,
    )  # fmt: skip
    return {n: p.detach() - before[n] for n, p in model.named_parameters()}, before


def test_class_rbm_semi_supervised_term_is_weighted_by_beta():
    """Semi-supervised classification RBM (Larochelle & Bengio 2008, Sec. 5): the update is
    ``g_labeled + beta g_unlabeled``; with the same draws it is affine in beta and moves with it.

    Catches: ``grad[nm] + cfg.beta * gu[nm]`` -> ``grad[nm] + gu[nm]`` in ``_layer_gradient``.
    """
    d0, _ = _class_rbm_step(beta=0.0)
    d1, _ = _class_rbm_step(beta=0.5)
    d2, _ = _class_rbm_step(beta=1.0)
    assert not torch.allclose(d1["W"], d0["W"], atol=1e-8)
    for n in d0:
        torch.testing.assert_close(d2[n] - d1[n], d1[n] - d0[n], rtol=1e-9, atol=1e-12)


def test_class_rbm_weight_decay_is_l2_on_w_and_u_only():
    """Classification RBM weight decay: an L2 penalty on W and U (not the biases); with the
    same draws the step changes by exactly ``-lr wd theta`` on W and U and not at all elsewhere.

    Catches: deleting ``grad["U"] = grad["U"] - cfg.weight_decay * U`` (or the W line) in
    ``_layer_gradient``, and a decay applied to the biases.
    """
    d0, before = _class_rbm_step(weight_decay=0.0)
    d1, _ = _class_rbm_step(weight_decay=0.3)
    for n in d0:
        want = -0.1 * 0.3 * before[n] if n in ("W", "U") else torch.zeros_like(before[n])
        torch.testing.assert_close(d1[n] - d0[n], want, rtol=1e-9, atol=1e-12)


def test_rbm_hinton_momentum_is_half_for_five_epochs_then_nine_tenths():
    """Hinton's guide, Sec. 9: momentum 0.5 for the first 5 epochs, 0.9 afterwards.

    Catches: ``0.5 if epoch < 5 else 0.9`` -> ``0.5 if epoch < 4 else 0.9``.
    """
    data = torch.bernoulli(
        torch.full((4, 3), 0.5, dtype=D), generator=torch.Generator().manual_seed(80)
    )
    rbm = BernoulliRBM(3, 2, dtype=D, generator=torch.Generator().manual_seed(81))
    h = train_rbm(
        rbm, data, epochs=7, batch_size=4, momentum="hinton", monitor_size=4,
        generator=torch.Generator().manual_seed(82),
    )  # fmt: skip
    assert h["momentum"] == [0.5] * 5 + [0.9] * 2


def test_persistent_chains_init_from_data_starts_at_training_examples():
    """PersistentChains.init(data=...): the fantasy particles start at random training
    examples (rows of ``data``), not at random states.

    Catches: ``if data is None:`` -> ``if True:`` in ``PersistentChains.init`` (data ignored).
    """
    from smithing.pretrain.rbm import PersistentChains

    data = torch.rand(10, 4, generator=torch.Generator().manual_seed(90), dtype=D)
    rbm = BernoulliRBM(4, 2, dtype=D, generator=torch.Generator().manual_seed(91))
    chains = PersistentChains.init(rbm, 6, data=data, generator=torch.Generator().manual_seed(92))
    assert chains.v.shape == (6, 4) and chains.updates == 0
    for row in chains.v:
        assert (data == row).all(1).any()  # each chain is one of the examples
    chains.v[0, 0] = -1.0
    assert (data >= 0).all()  # a copy: the data is not aliased


def test_dbn_sample_down_pass_samples_intermediate_layers():
    """DBN generation (Hinton et al. 2006): Gibbs sampling in the top RBM, then a down pass that
    SAMPLES every intermediate layer from p(h_i | h_{i+1}) and returns E[v | h_1] at the
    bottom; float64 transcription with a shared generator, three RBMs.

    Catches: ``h = mean if (i == 0 or down == "probs") else sample_bernoulli(...)`` ->
    ``h = mean`` (no sampling on the way down) or dropping ``i == 0`` (a sampled bottom).
    """
    from smithing.pretrain.dbn import DBN
    from smithing.pretrain.rbm import sample

    dbn = DBN([5, 4, 3, 2], dtype=D, generator=torch.Generator().manual_seed(100))
    with torch.no_grad():
        for r in dbn.rbms:
            r.W.mul_(150.0)  # init_std 0.01 -> 1.5: visible means far from 1/2
    got = dbn.sample(6, steps=3, generator=torch.Generator().manual_seed(101))
    g = torch.Generator().manual_seed(101)
    top = sample(dbn.rbms[2], 6, 3, generator=g, return_mean=False)
    h1 = torch.bernoulli(dbn.rbms[1].visible_mean(top), generator=g)
    want = dbn.rbms[0].visible_mean(h1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)

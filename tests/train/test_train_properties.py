"""Defining properties of the training tricks (early stopping, clipping in ``fit``, the
optimizers' options), each checked so that breaking it fails.

Each test's docstring names the one-line source mutation it was verified to catch.
"""

from __future__ import annotations

import pytest
import torch

from smithing import optim
from smithing.data.base import Dataset, Split
from smithing.nn import MLP
from smithing.train import EarlyStopping, fit, seed_everything

D = torch.float64


def test_early_stopping_improvement_must_beat_best_by_min_delta():
    """EarlyStopping: an epoch improves only when it beats the best by more than min_delta.

    Catches: ``improved = v < self.best - self.min_delta`` -> ``improved = v < self.best``.
    """
    es = EarlyStopping(patience=1, min_delta=0.1)
    assert es.update(1, 1.0) == (True, False)
    assert es.update(2, 0.95) == (False, True)  # better, but by less than min_delta
    assert es.best_epoch == 1
    es = EarlyStopping(patience=1, min_delta=0.1)
    es.update(1, 1.0)
    assert es.update(2, 0.85) == (True, False)  # beats it by more than min_delta
    assert es.best_epoch == 2


def test_early_stopping_mode_max_treats_larger_as_better():
    """EarlyStopping(mode="max"): a larger value is an improvement, a smaller one is not.

    Catches: ``v = self.sign * float(value)`` -> ``v = float(value)`` (mode ignored).
    """
    es = EarlyStopping(monitor="valid_error", mode="max", patience=1)
    assert es.update(1, 0.5)[0]
    assert es.update(2, 0.6)[0]
    improved, stop = es.update(3, 0.55)
    assert not improved and stop and es.best_epoch == 2


def _tiny_data(n=12, d=4, k=3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    y = torch.randint(k, (n,), generator=g)
    split = Split(x, y)
    return Dataset("tiny", split, split, split, n_classes=k, input_shape=(d,))


def test_fit_clip_norm_clips_the_global_gradient_norm():
    """fit(clip_norm=c): g <- g c / ||g|| with ||g|| the norm of ALL gradients concatenated
    (Pascanu et al. 2013), so one SGD step of lr moves the parameters by exactly lr c along -g.

    Catches: ``_clip(model, clip_norm)`` -> ``pass`` in ``fit`` (clipping not applied), and
    ``clip_grads_with_norm_`` replaced by per-tensor ``clip_grad_norm_([p], c)`` (each tensor
    clipped separately: the step would be sqrt(4) c long).
    """
    data = _tiny_data()
    seed_everything(1)
    model = MLP(4, [5], 3, "tanh")
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(data.train.x), data.train.y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    gnorm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    c = 1e-3
    assert gnorm > 100 * c  # clipping is active
    fit(model, data, epochs=1, lr=1.0, batch_size=12, clip_norm=c, final_eval=False)
    steps = [p.detach() - b for p, b in zip(model.parameters(), before)]
    step_norm = torch.sqrt(sum((s.double() ** 2).sum() for s in steps))
    assert step_norm.item() == pytest.approx(c, rel=1e-4)
    for s, g in zip(steps, grads):
        torch.testing.assert_close(s.double(), -c * g.double() / gnorm, rtol=1e-3, atol=1e-7)


def _quadratic():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(4, 4, generator=g, dtype=D)
    a = q @ q.T + torch.eye(4, dtype=D)
    b = torch.randn(4, generator=g, dtype=D)
    x0 = torch.randn(4, generator=g, dtype=D)
    return a, b, x0


def _run(name, lr, steps=3, **options):
    a, b, x0 = _quadratic()
    x = x0.clone().requires_grad_(True)
    opt = optim.make(name, [x], lr, **options)
    for _ in range(steps):
        opt.zero_grad()
        x.grad = a @ x.detach() - b
        opt.step()
    return x.detach(), (a, b, x0)


def test_momentum_with_dampening_and_weight_decay_matches_its_update_rule():
    """Momentum (PyTorch form): g = dx + wd x; b = g at step 1, then mu b + (1 - damp) g;
    x -= lr b; 3 steps against a float64 transcription.

    Catches: dropping ``dampening=`` or ``weight_decay=`` from ``optim.momentum``'s
    ``torch.optim.SGD`` call, and ``momentum=0.0`` (the buffer ignored).
    """
    lr, mu, damp, wd = 0.05, 0.9, 0.3, 0.1
    got, (a, b, x) = _run("momentum", lr, momentum=mu, dampening=damp, weight_decay=wd)
    buf = None
    for _ in range(3):
        g = a @ x - b + wd * x
        buf = g if buf is None else mu * buf + (1 - damp) * g
        x = x - lr * buf
    torch.testing.assert_close(got, x, rtol=1e-14, atol=1e-14)


def test_nesterov_with_weight_decay_matches_its_update_rule():
    """Nesterov (PyTorch's look-ahead form): g = dx + wd x; b = mu b + g; x -= lr (g + mu b);
    3 steps against a float64 transcription.

    Catches: ``weight_decay=`` dropped from ``optim.nesterov``, and ``nesterov=False``.
    """
    lr, mu, wd = 0.05, 0.8, 0.1
    got, (a, b, x) = _run("nesterov", lr, momentum=mu, weight_decay=wd)
    buf = torch.zeros_like(x)
    for _ in range(3):
        g = a @ x - b + wd * x
        buf = mu * buf + g
        x = x - lr * (g + mu * buf)
    torch.testing.assert_close(got, x, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_with_betas_amsgrad_and_weight_decay_matches_algorithm_1(amsgrad):
    """Adam (Kingma & Ba Alg. 1; AMSGrad: the running max of v): 3 steps, non-default betas,
    eps and weight decay, against a float64 transcription; the raw gradients shrink (5, 0.2,
    0.1 times a fixed vector) so that v decreases and AMSGrad's max differs from v.

    Catches: ``betas=tuple(betas)`` or ``amsgrad=amsgrad`` dropped from ``optim.adam``'s
    ``torch.optim.Adam`` call (default betas / plain Adam instead).
    """
    lr, (b1, b2), eps, wd = 0.1, (0.7, 0.8), 1e-3, 0.05
    _, _, x0 = _quadratic()
    direction = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=D)
    raw = [5.0 * direction, 0.2 * direction, 0.1 * direction]
    p = x0.clone().requires_grad_(True)
    opt = optim.make("adam", [p], lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=amsgrad)
    for r in raw:
        opt.zero_grad()
        p.grad = r.clone()
        opt.step()
    x = x0.clone()
    m = v = vmax = torch.zeros_like(x)
    for t, r in enumerate(raw, start=1):
        g = r + wd * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = torch.maximum(vmax, v)
        vv = vmax if amsgrad else v
        x = x - lr * (m / (1 - b1**t)) / (torch.sqrt(vv / (1 - b2**t)) + eps)
    assert not torch.equal(vmax, v)  # AMSGrad matters on this sequence
    torch.testing.assert_close(p.detach(), x, rtol=1e-13, atol=1e-13)

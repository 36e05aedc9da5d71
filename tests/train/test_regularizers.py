"""The regularizer protocol: every object of smithing.regularize through ``fit`` (against a
float64 hand-written loop applying the formula) and through ``fit_ensemble`` (per-member
strengths against separate ``fit`` runs)."""

from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

from smithing.data import load
from smithing.data.base import Split
from smithing.nn import MLP
from smithing.regularize import MaxNorm, Penalty, PruneMask
from smithing.train import fit, seed_everything
from smithing.train.ensemble import fit_ensemble

D = torch.float64
N = 200
LR, L2, L1, WD, C = 0.1, 2.0, 0.5, 0.05, 0.4


@pytest.fixture(scope="module")
def digits():
    return load("digits").subset(N)


@pytest.fixture(scope="module")
def digits64(digits):
    def f64(s):
        return Split(s.x.to(D), s.y)

    return replace(digits, train=f64(digits.train), valid=f64(digits.valid), test=f64(digits.test))


def _model(seed=0, dtype=torch.float32):
    seed_everything(seed)
    return MLP(64, [16], 10, "tanh").to(dtype)


def _mask(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        n: torch.rand(p.shape, generator=g) > 0.3
        for n, p in model.named_parameters()
        if p.ndim == 2
    }


def _is_weight(name, w):
    return w.ndim >= 2  # the objects' default: biases are neither penalized nor constrained


def _rows_max_norm(w, c):
    return w * (c / torch.linalg.vector_norm(w, dim=1, keepdim=True)).clamp(max=1.0)


# what one SGD step does to each parameter (w, its gradient g) under each regularizer
def _plain(name, w, g, mask):
    return w - LR * g


def _l2(name, w, g, mask):
    return w - LR * (g + L2 / N * w) if _is_weight(name, w) else w - LR * g  # dC/dw += lam/n w


def _l1(name, w, g, mask):
    if not _is_weight(name, w):
        return w - LR * g
    return w - LR * (g + L1 / N * torch.sign(w))  # subgradient (lam/n) sgn(w)


def _elastic(name, w, g, mask):
    if not _is_weight(name, w):
        return w - LR * g
    return w - LR * (g + L1 / N * torch.sign(w) + L2 / N * w)


def _decoupled(name, w, g, mask):
    if not _is_weight(name, w):
        return w - LR * g
    return (1 - LR * WD) * w - LR * g  # SGDW: decay then step, both from w


def _proximal(name, w, g, mask):
    v = w - LR * g
    if not _is_weight(name, w):
        return v
    return torch.sign(v) * (v.abs() - LR * L1 / N).clamp(min=0)  # soft threshold lr lam/n


def _max_norm(name, w, g, mask):
    v = w - LR * g
    return _rows_max_norm(v, C) if _is_weight(name, w) else v  # w_j min(1, c/||w_j||)


def _pruned(name, w, g, mask):
    v = w - LR * g
    return v * mask[name] if name in mask else v


def _l2_and_max_norm(name, w, g, mask):
    v = _l2(name, w, g, mask)
    return _rows_max_norm(v, C) if _is_weight(name, w) else v


CASES = {
    "l2": (lambda m: Penalty(l2=L2, n=N), _l2),
    "l1": (lambda m: Penalty(l1=L1, n=N), _l1),
    "elastic net": (lambda m: Penalty(l1=L1, l2=L2, n=N), _elastic),
    "decoupled decay": (lambda m: Penalty(weight_decay=WD), _decoupled),
    "proximal l1": (lambda m: Penalty(l1=L1, n=N, proximal=True), _proximal),
    "max-norm": (lambda m: MaxNorm(c=C), _max_norm),
    "prune mask": (lambda m: PruneMask(_mask(m)), _pruned),
    "list": (lambda m: [Penalty(l2=L2, n=N), MaxNorm(c=C)], _l2_and_max_norm),
    "none": (lambda m: None, _plain),
}


def _hand_loop(model, data, update, mask, *, epochs, batch_size, seed):
    """SGD written out: fit's data order, the loss's gradient, then the formula."""
    gen = torch.Generator().manual_seed(seed)
    x, y = data.train.x, data.train.y
    named = list(model.named_parameters())
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            grads = torch.autograd.grad(loss, [w for _, w in named])
            with torch.no_grad():
                for (name, w), g in zip(named, grads):
                    w.copy_(update(name, w, g, mask))


@pytest.mark.parametrize("case", list(CASES))
def test_fit_applies_each_regularizer_as_its_formula(digits64, case):
    make, update = CASES[case]
    model = _model(dtype=D)
    ref = _model(dtype=D)
    mask = _mask(model)
    kw = dict(epochs=2, batch_size=25, seed=3)
    fit(model, digits64, lr=LR, optimizer="sgd", regularizer=make(model), final_eval=False, **kw)
    _hand_loop(ref, digits64, update, mask, **kw)
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-12, msg=name)
    if case != "none":  # the regularizer did something
        plain = _model(dtype=D)
        fit(plain, digits64, lr=LR, regularizer=None, final_eval=False, **kw)
        assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), plain.parameters()))
    if case == "prune mask":
        for name, m in mask.items():
            assert bool((dict(model.named_parameters())[name][~m] == 0).all())


def test_decoupled_decay_with_adam_is_adamw(digits64):
    """Penalty(weight_decay) before Adam's step = torch.optim.AdamW (biases decayed too)."""
    a, b = _model(dtype=D), _model(dtype=D)
    kw = dict(epochs=2, lr=0.01, batch_size=25, seed=1, final_eval=False)
    decay = Penalty(weight_decay=0.3, include_biases=True)
    fit(a, digits64, optimizer="adam", regularizer=decay, **kw)
    fit(b, digits64, optimizer="adamw", optimizer_options={"weight_decay": 0.3}, **kw)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-13)


def test_an_object_without_the_protocol_is_refused(digits):
    with pytest.raises(ValueError, match=r"regularizer=.* is invalid: expected an object with"):
        fit(_model(), digits, epochs=1, regularizer=object())
    with pytest.raises(ValueError, match=r"regularizer=.* is invalid: expected an object with"):
        fit_ensemble(
            [_model(0), _model(1)], digits, seeds=[0, 1], lrs=[0.1, 0.1], regularizer=[object()]
        )


# ------------------------------------------------------------------ ensembles
SEEDS, LRS = [0, 1, 2], [0.05, 0.1, 0.2]


def _tensor(values):
    return torch.tensor(values, dtype=torch.float32)


def _masks_of(seeds):
    return [_mask(_model(s), seed=s) for s in seeds]


ENSEMBLE_CASES = {
    # name: (per-member regularizer for fit_ensemble, member m's own for fit, optimizer)
    "l2 per member": (
        lambda: Penalty(l2=_tensor([0.0, 1.0, 5.0]), n=N),
        lambda m: Penalty(l2=[0.0, 1.0, 5.0][m], n=N),
        "momentum",
    ),
    "l2 shared": (lambda: Penalty(l2=3.0, n=N), lambda m: Penalty(l2=3.0, n=N), "sgd"),
    "elastic net": (
        lambda: Penalty(l1=_tensor([0.5, 0.0, 2.0]), l2=_tensor([1.0, 2.0, 0.0]), n=N),
        lambda m: Penalty(l1=[0.5, 0.0, 2.0][m], l2=[1.0, 2.0, 0.0][m], n=N),
        "sgd",
    ),
    "proximal l1": (
        lambda: Penalty(l1=_tensor([1.0, 5.0, 20.0]), n=N, proximal=True),
        lambda m: Penalty(l1=[1.0, 5.0, 20.0][m], n=N, proximal=True),
        "sgd",
    ),
    "decoupled decay": (
        lambda: Penalty(weight_decay=_tensor([0.0, 0.1, 1.0])),
        lambda m: Penalty(weight_decay=[0.0, 0.1, 1.0][m]),
        "adam",
    ),
    "max-norm": (
        lambda: MaxNorm(c=_tensor([3.0, 1.0, 0.5])),
        lambda m: MaxNorm(c=[3.0, 1.0, 0.5][m]),
        "momentum",
    ),
    "shared prune mask": (
        lambda: PruneMask(_masks_of([0])[0]),
        lambda m: PruneMask(_masks_of([0])[0]),
        "momentum",
    ),
    "per-member prune masks": (
        lambda: PruneMask(
            {k: torch.stack([ms[k] for ms in _masks_of(SEEDS)]) for k in _masks_of([0])[0]}
        ),
        lambda m: PruneMask(_masks_of(SEEDS)[m]),
        "sgd",
    ),
    "list": (
        lambda: (Penalty(l2=_tensor([0.0, 1.0, 5.0]), n=N), MaxNorm(c=_tensor([3.0, 1.0, 0.5]))),
        lambda m: [Penalty(l2=[0.0, 1.0, 5.0][m], n=N), MaxNorm(c=[3.0, 1.0, 0.5][m])],
        "sgd",
    ),
}


@pytest.mark.parametrize("case", list(ENSEMBLE_CASES))
def test_fit_ensemble_regularizer_equals_separate_fits(digits, case):
    stacked_reg, own_reg, optimizer = ENSEMBLE_CASES[case]
    lrs = [lr / 10 for lr in LRS] if optimizer == "adam" else LRS
    kw = dict(epochs=3, batch_size=32, optimizer=optimizer)
    solo = []
    for m, (s, lr) in enumerate(zip(SEEDS, lrs)):
        model = _model(s)
        h = fit(model, digits, lr=lr, seed=s, regularizer=own_reg(m), **kw)
        solo.append((model, h))
    members = [_model(s) for s in SEEDS]
    hs = fit_ensemble(members, digits, seeds=SEEDS, lrs=lrs, regularizer=stacked_reg(), **kw)
    for (model, h), member, he in zip(solo, members, hs):
        for p, q in zip(model.parameters(), member.parameters()):
            torch.testing.assert_close(q, p, atol=2e-5, rtol=1e-4)
        assert he.curve("train_loss") == pytest.approx(h.curve("train_loss"), rel=1e-4)
    if "prune" in case:
        masks = _masks_of(SEEDS) if "per-member" in case else [_masks_of([0])[0]] * len(SEEDS)
        for member, mask in zip(members, masks):
            for name, keep in mask.items():
                assert bool((dict(member.named_parameters())[name][~keep] == 0).all())

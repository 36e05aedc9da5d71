"""Bitwise answers for the fan-scaled and orthogonal rules of ``smithing.init.rules``.

Written for the mutation score of ``smithing.init.rules`` (issue 15): each rule is compared with
torch's built-in on the same generator state, or with its formula transcribed here (float64),
and every message is matched in full.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from smithing import init
from smithing.init.structured import _signs
from tensortools import gen

D = torch.float64
SHAPE = (4, 3, 2, 2)  # a conv weight: fan_in = 3 * 4 = 12, fan_out = 4 * 4 = 16


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_he_rules_are_kaimings_bitwise(mode):
    for ours, theirs in [
        ("he_normal", nn.init.kaiming_normal_),
        ("he_uniform", nn.init.kaiming_uniform_),
    ]:
        w = init.initialize(torch.empty(SHAPE, dtype=D), ours, generator=gen(1), mode=mode)
        ref = theirs(torch.empty(SHAPE, dtype=D), mode=mode, nonlinearity="relu", generator=gen(1))
        assert torch.equal(w, ref), (ours, mode)
    # the default mode is fan_in
    w = init.initialize(torch.empty(SHAPE, dtype=D), "he_normal", generator=gen(2))
    ref = nn.init.kaiming_normal_(
        torch.empty(SHAPE, dtype=D), nonlinearity="relu", generator=gen(2)
    )
    assert torch.equal(w, ref)


@pytest.mark.parametrize(("mode", "fan"), [("fan_in", 12), ("fan_out", 16)])
def test_lecun_rules_and_explicit_gains_are_the_formula(mode, fan):
    g = 1.5
    w = init.initialize(
        torch.empty(SHAPE, dtype=D), "lecun_normal", generator=gen(3), gain=g, mode=mode
    )
    ref = torch.empty(SHAPE, dtype=D).normal_(0.0, g / math.sqrt(fan), generator=gen(3))
    assert torch.equal(w, ref)  # std = gain / sqrt(fan)
    w = init.initialize(
        torch.empty(SHAPE, dtype=D), "lecun_uniform", generator=gen(4), gain=g, mode=mode
    )
    b = math.sqrt(3.0) * (g / math.sqrt(fan))  # Var U(-b, b) = b^2 / 3 = gain^2 / fan
    ref = torch.empty(SHAPE, dtype=D).uniform_(-b, b, generator=gen(4))
    assert torch.equal(w, ref)
    assert float(w.abs().max()) <= b


def test_the_fan_mode_is_checked():
    for rule in ("he_normal", "he_uniform", "lecun_normal", "lecun_uniform"):
        with pytest.raises(ValueError) as info:
            init.initialize(torch.empty(4, 3), rule, mode="fan_avg")
        assert str(info.value) == "mode='fan_avg' is invalid: expected 'fan_in' or 'fan_out'"


def _orthogonal_by_formula(shape, gain, seed):
    rows = shape[0]
    cols = math.prod(shape[1:])
    a = torch.randn(rows, cols, generator=gen(seed), dtype=D)
    u, _, vh = torch.linalg.svd(a, full_matrices=False)
    if rows >= cols:  # W = g U diag(sgn V[0, :])
        d = torch.tensor([1.0 if v >= 0 else -1.0 for v in vh[:, 0].tolist()], dtype=D)
        q = u * d
    else:  # W = g diag(sgn U[0, :]) V^T
        d = torch.tensor([1.0 if v >= 0 else -1.0 for v in u[0, :].tolist()], dtype=D)
        q = d[:, None] * vh
    return (gain * q).reshape(shape)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (3, 2, 2)])
def test_orthogonal_is_its_formula(shape):
    w = init.initialize(torch.empty(shape, dtype=D), "orthogonal", generator=gen(5), gain=2.0)
    assert torch.equal(w, _orthogonal_by_formula(shape, 2.0, 5))


def test_signs_take_zero_as_plus_one():
    s = _signs(torch.tensor([-2.0, -0.0, 0.0, 3.0], dtype=D))
    assert s.dtype == D and torch.equal(s, torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=D))


def test_constant_values():
    assert torch.equal(
        init.initialize(torch.empty(2, 2), "constant", value=2), torch.full((2, 2), 2.0)
    )
    assert torch.equal(
        init.initialize(torch.empty(2), "constant", value=-0.5), torch.full((2,), -0.5)
    )
    for bad in (True, "1", float("inf"), float("-inf"), float("nan"), None):
        with pytest.raises(ValueError) as info:
            init.initialize(torch.empty(2, 2), "constant", value=bad)
        assert str(info.value) == f"value={bad!r} is invalid: expected a finite number"


# --- the fixed-scale and structured rules: defaults, dtypes, messages (issue 15's mutation score)


def test_fixed_scale_defaults_are_torchs_draws_bitwise():
    w = init.initialize(torch.empty(5, 4, dtype=D), "uniform", generator=gen(6))
    assert torch.equal(w, torch.empty(5, 4, dtype=D).uniform_(-0.05, 0.05, generator=gen(6)))
    w = init.initialize(torch.empty(5, 4, dtype=D), "normal", generator=gen(7))
    assert torch.equal(w, torch.empty(5, 4, dtype=D).normal_(0.0, 0.01, generator=gen(7)))
    w = init.initialize(torch.empty(5, 4, dtype=D), "normal", generator=gen(7), sigma=0.3)
    assert torch.equal(w, torch.empty(5, 4, dtype=D).normal_(0.0, 0.3, generator=gen(7)))
    assert torch.equal(init.initialize(torch.ones(2, 3), "constant"), torch.zeros(2, 3))


@pytest.mark.parametrize("g", [0.5, 2.0])
def test_glorot_rules_take_the_gain_bitwise(g):
    for ours, theirs in [
        ("glorot_normal", nn.init.xavier_normal_),
        ("glorot_uniform", nn.init.xavier_uniform_),
    ]:
        w = init.initialize(torch.empty(SHAPE, dtype=D), ours, generator=gen(8), gain=g)
        ref = theirs(torch.empty(SHAPE, dtype=D), gain=g, generator=gen(8))
        assert torch.equal(w, ref), (ours, g)


def _identity_by_formula(shape, scale, noise, seed, dtype=D):
    eye = torch.eye(*shape, dtype=dtype) * scale
    if noise > 0:
        eye = eye + noise * torch.randn(shape, generator=gen(seed), dtype=dtype)
    return eye


@pytest.mark.parametrize("shape", [(3, 3), (3, 5), (5, 3)])
def test_identity_is_scale_times_eye_plus_float64_noise(shape):
    w = init.initialize(torch.empty(shape, dtype=D), "identity", generator=gen(9))
    assert torch.equal(w, torch.eye(*shape, dtype=D))  # defaults: scale 1, no noise
    w = init.initialize(
        torch.empty(shape, dtype=D), "identity", generator=gen(9), scale=0.5, noise=0.01
    )
    assert torch.equal(w, _identity_by_formula(shape, 0.5, 0.01, 9))


def test_identity_without_noise_draws_nothing():
    g = gen(10)
    init.initialize(torch.empty(4, 4), "identity", generator=g, noise=0.0)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=gen(10)))


def _sparse_by_formula(shape, k, sigma, seed, dtype=D):
    out, fan_in = shape
    g = gen(seed)
    keys = torch.rand(out, fan_in, generator=g)
    idx = keys.argsort(dim=1)[:, :k]
    vals = torch.randn(out, k, generator=g, dtype=dtype) * sigma
    return torch.zeros(shape, dtype=dtype).scatter_(1, idx, vals)


@pytest.mark.parametrize(("k", "sigma"), [(15, 1.0), (3, 2.5), (1, 0.5)])
def test_sparse_is_k_normal_weights_per_unit_in_the_weights_dtype(k, sigma):
    shape = (4, 20)
    kw = {} if k == 15 else {"k": k, "sigma": sigma}  # the first row: the defaults
    w = init.initialize(torch.empty(shape, dtype=D), "sparse", generator=gen(11), **kw)
    assert torch.equal(w, _sparse_by_formula(shape, k, sigma, 11))
    assert ((w != 0).sum(dim=1) == k).all()


@pytest.mark.parametrize(
    ("rule", "shape", "params", "message"),
    [
        ("uniform", (2, 2), {"a": 0.0}, "a=0.0 is invalid: expected a positive half-width"),
        ("uniform", (2, 2), {"a": -1.0}, "a=-1.0 is invalid: expected a positive half-width"),
        ("normal", (2, 2), {"sigma": 0.0},
         "sigma=0.0 is invalid: expected a positive standard deviation"),
        ("identity", (2, 2, 2), {},
         "weight=(2, 2, 2) is invalid: expected a 2-D weight for the identity init"),
        ("identity", (2, 2), {"noise": -0.1},
         "noise=-0.1 is invalid: expected a non-negative standard deviation"),
        ("sparse", (6,), {},
         "weight=(6,) is invalid: expected a 2-D weight for the sparse init"),
        ("sparse", (2, 6), {"k": 0}, "k=0 is invalid: expected a positive int"),
        ("sparse", (2, 6), {"k": 2.0}, "k=2.0 is invalid: expected a positive int"),
        ("sparse", (2, 6), {"k": -3}, "k=-3 is invalid: expected a positive int"),
        ("sparse", (2, 6), {"sigma": 0.0},
         "sigma=0.0 is invalid: expected a positive standard deviation"),
    ],
)  # fmt: skip
def test_invalid_rule_parameters_have_exact_messages(rule, shape, params, message):
    with pytest.raises(ValueError) as info:
        init.initialize(torch.empty(shape), rule, generator=gen(), **params)
    assert str(info.value) == message

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

D = torch.float64
SHAPE = (4, 3, 2, 2)  # a conv weight: fan_in = 3 * 4 = 12, fan_out = 4 * 4 = 16


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


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

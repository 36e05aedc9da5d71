"""Exact answers for gradient clipping on tiny gradients, the non-finite modes, and the invalid
inputs with their full messages.

Written for the mutation score of ``smithing.train.clipping`` (issue 15): gradients like
``(3, 4)`` have hand-computed norms, and every report field is checked.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from smithing.train.clipping import (
    ClipReport,
    NonFiniteGradientError,
    clip_grad_norm,
    clip_grad_norm_per_member,
    clip_grad_value,
)
from smithing.train.diagnostics import NonFiniteGradientWarning
from warning_site import assert_points_at

D = torch.float64
NAN, INF = float("nan"), float("inf")


def p(*grad, dtype=D):
    """A parameter whose gradient is ``grad``."""
    g = torch.tensor(grad, dtype=dtype)
    t = torch.zeros_like(g, requires_grad=True)
    t.grad = g.clone()
    return t


def stacked(rows, dtype=torch.float32):
    """A stacked parameter (members, k) whose gradient is ``rows``."""
    g = torch.tensor(rows, dtype=dtype)
    t = torch.zeros_like(g, requires_grad=True)
    t.grad = g.clone()
    return t


# ---------------------------------------------------------------- reports and errors
def test_report_defaults_and_error_fields():
    r = ClipReport(1.0, True)
    assert (r.nonfinite_layers, r.nonfinite_members, r.skipped, r.finite) == ([], [], False, True)
    assert not ClipReport(NAN, False, ["w"]).finite
    e = NonFiniteGradientError("msg", ["a"])
    assert (str(e), e.names, e.members) == ("msg", ["a"], [])
    assert NonFiniteGradientError("m", ["a"], [2]).members == [2]


# ---------------------------------------------------------------- clip_grad_norm
def test_clip_grad_norm_exact():
    w = p(3.0, 4.0)
    r = clip_grad_norm([w], 1.0)
    assert (r.total_norm, r.clipped, r.finite, r.skipped) == (5.0, True, True, False)
    torch.testing.assert_close(w.grad, torch.tensor([3.0, 4.0], dtype=D) / (5.0 + 1e-6))
    # below the radius: untouched, not clipped
    w = p(3.0, 4.0)
    r = clip_grad_norm([w], 5.5)
    assert (r.total_norm, r.clipped) == (5.0, False)
    assert torch.equal(w.grad, torch.tensor([3.0, 4.0], dtype=D))
    # exactly at the radius: torch's 1e-6 makes it a (tiny) clip
    w = p(3.0, 4.0)
    assert clip_grad_norm([w], 5.0).clipped
    # over two tensors, the max norm
    a, b = p(1.0, -2.0), p(-6.0)
    r = clip_grad_norm([a, b], 3.0, norm_type=math.inf)
    assert r.total_norm == 6.0 and r.clipped
    torch.testing.assert_close(b.grad, torch.tensor([-6.0 * 3.0 / (6.0 + 1e-6)], dtype=D))
    torch.testing.assert_close(a.grad, torch.tensor([1.0, -2.0], dtype=D) * 3.0 / (6.0 + 1e-6))


def test_clip_grad_norm_input_forms():
    # a single tensor, a dict, (name, tensor) pairs, a module; params without gradients ignored
    assert clip_grad_norm(p(3.0, 4.0), 10.0).total_norm == 5.0
    no_grad = torch.zeros(2, requires_grad=True)
    assert clip_grad_norm({"a": p(3.0, 4.0), "b": no_grad}, 10.0).total_norm == 5.0
    assert clip_grad_norm([("a", p(6.0)), ("b", p(8.0))], 100.0).total_norm == 10.0
    assert clip_grad_norm([no_grad], 1.0) == ClipReport(0.0, False)
    assert clip_grad_norm([], 1.0) == ClipReport(0.0, False)
    lin = torch.nn.Linear(2, 1)
    assert clip_grad_norm(lin, 1.0) == ClipReport(0.0, False)  # no gradients yet
    with pytest.raises(NonFiniteGradientError) as info:  # integer names become strings
        clip_grad_norm([(0, p(NAN))], 1.0)
    assert info.value.names == ["0"]


def test_names_in_the_messages():
    bad = [p(1.0), p(NAN), p(INF, 0.0)]
    with pytest.raises(NonFiniteGradientError) as info:
        clip_grad_norm(bad, 1.0)
    assert str(info.value) == "non-finite gradient (NaN or inf) in param1, param2"
    assert info.value.names == ["param1", "param2"] and info.value.members == []
    with pytest.raises(NonFiniteGradientError) as info:
        clip_grad_norm(bad, 1.0, names=("x", "y", "z"))
    assert str(info.value) == "non-finite gradient (NaN or inf) in y, z"


def test_nonfinite_modes_of_clip_grad_norm():
    params = {"a": p(1.0, 2.0), "b": p(INF)}
    with pytest.warns(NonFiniteGradientWarning) as record:
        r = clip_grad_norm(params, 1.0, on_nonfinite="warn")
    assert str(record[0].message) == (
        "non-finite gradient (NaN or inf) in b; gradients left unclipped"
    )
    assert_points_at(record[0], __file__, "clipping.py")
    assert r.total_norm == INF and r.clipped is False and r.nonfinite_layers == ["b"]
    assert not r.skipped
    assert torch.equal(params["a"].grad, torch.tensor([1.0, 2.0], dtype=D))  # unclipped
    r = clip_grad_norm(params, 1.0, on_nonfinite="skip")
    assert (r.total_norm, r.clipped, r.nonfinite_layers, r.skipped) == (INF, False, ["b"], True)
    assert params["a"].grad is None and params["b"].grad is None


def test_overflow_is_recomputed_in_float64():
    q = p(1.8e38, 2.4e38, dtype=torch.float32)  # finite, but the float32 norm overflows
    r = clip_grad_norm([q], 1.0)
    assert r.total_norm == pytest.approx(3e38, rel=1e-6) and r.clipped and r.finite
    torch.testing.assert_close(q.grad, torch.tensor([0.6, 0.8]))


# ---------------------------------------------------------------- clip_grad_value
def test_clip_grad_value_exact():
    a, b = p(3.0, -4.0), p(0.5)
    r = clip_grad_value([a, b], 1.0)
    assert r.total_norm == pytest.approx(math.sqrt(25.25), rel=1e-7) and r.clipped is True
    assert torch.equal(a.grad, torch.tensor([1.0, -1.0], dtype=D))
    assert torch.equal(b.grad, torch.tensor([0.5], dtype=D))
    c = p(1.0, -1.0)
    r = clip_grad_value([c], 1.0)  # at the bound: nothing beyond it
    assert (r.total_norm, r.clipped) == (pytest.approx(math.sqrt(2.0)), False)
    assert clip_grad_value([torch.zeros(2, requires_grad=True)], 1.0) == ClipReport(0.0, False)


def test_nonfinite_modes_of_clip_grad_value():
    params = {"a": p(3.0, 4.0), "b": p(NAN)}
    with pytest.raises(NonFiniteGradientError) as info:
        clip_grad_value(params, 1.0)
    assert str(info.value) == "non-finite gradient (NaN or inf) in b"
    with pytest.warns(NonFiniteGradientWarning) as record:
        r = clip_grad_value(params, 1.0, on_nonfinite="warn")
    assert_points_at(record[0], __file__, "clipping.py")
    assert r.clipped is False and r.nonfinite_layers == ["b"] and math.isnan(r.total_norm)
    assert torch.equal(params["a"].grad, torch.tensor([3.0, 4.0], dtype=D))
    r = clip_grad_value(params, 1.0, on_nonfinite="skip")
    assert r.skipped and params["a"].grad is None
    # only the 2-norm overflows (every element finite): clamped as usual
    q = p(3e38, 3e38, dtype=torch.float32)
    r = clip_grad_value([q], 1.0)
    assert r.total_norm == INF and r.clipped and r.finite
    assert torch.equal(q.grad, torch.ones(2))


# ---------------------------------------------------------------- per member
def test_per_member_exact():
    a = stacked([[3.0, 4.0], [0.3, 0.4]])
    b = stacked([[0.0], [0.0]])
    r = clip_grad_norm_per_member([a, b], 1.0)
    torch.testing.assert_close(r.total_norm, torch.tensor([5.0, 0.5]))
    assert r.clipped.tolist() == [True, False]
    assert (r.nonfinite_layers, r.nonfinite_members, r.skipped) == ([], [], False)
    torch.testing.assert_close(a.grad, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))
    # a radius per member, the max norm
    a = stacked([[3.0, -4.0], [-0.3, 0.4]])
    r = clip_grad_norm_per_member({"a": a}, torch.tensor([2.0, 0.1]), norm_type=math.inf)
    torch.testing.assert_close(r.total_norm, torch.tensor([4.0, 0.4]))
    torch.testing.assert_close(a.grad, torch.tensor([[1.5, -2.0], [-0.075, 0.1]]))
    # a 0-d radius is one for all; float64 gradients stay float64
    a = stacked([[3.0, 4.0], [6.0, 8.0]], dtype=D)
    r = clip_grad_norm_per_member([a], torch.tensor(5.0))
    assert a.grad.dtype == D and r.clipped.tolist() == [True, True]
    coef = torch.tensor([[5.0 / (5.0 + 1e-6)], [5.0 / (10.0 + 1e-6)]], dtype=D)
    expected = torch.tensor([[3.0, 4.0], [6.0, 8.0]], dtype=D) * coef
    torch.testing.assert_close(a.grad, expected, rtol=1e-6, atol=0)
    empty = clip_grad_norm_per_member([torch.zeros(2, 3, requires_grad=True)], 1.0)
    assert empty.total_norm.shape == (0,) and empty.clipped.dtype == torch.bool
    assert empty.clipped.shape == (0,)


def test_per_member_overflow_is_recomputed_in_float64():
    a = stacked([[1.8e38, 2.4e38], [3.0, 4.0]])
    r = clip_grad_norm_per_member([a], 1.0)
    assert r.nonfinite_members == [] and r.nonfinite_layers == [] and r.finite
    assert r.total_norm[0].item() == pytest.approx(3e38, rel=1e-6)
    assert r.total_norm[1].item() == pytest.approx(5.0)
    assert r.clipped.tolist() == [True, True]
    torch.testing.assert_close(a.grad, torch.tensor([[0.6, 0.8], [0.6, 0.8]]))


def test_per_member_nonfinite_modes():
    def make():
        return {
            "a": stacked([[3.0, 4.0], [NAN, 1.0], [0.3, 0.4]]),
            "b": stacked([[0.0], [1.0], [0.0]]),
        }

    params = make()
    with pytest.raises(NonFiniteGradientError) as info:
        clip_grad_norm_per_member(params, 1.0)
    assert str(info.value) == "non-finite gradient (NaN or inf) in member(s) [1], parameter(s) a"
    assert info.value.names == ["a"] and info.value.members == [1]
    assert torch.equal(params["b"].grad, torch.tensor([[0.0], [1.0], [0.0]]))  # untouched

    params = make()
    with pytest.warns(NonFiniteGradientWarning) as record:
        r = clip_grad_norm_per_member(params, 1.0, on_nonfinite="warn")
    assert str(record[0].message) == (
        "non-finite gradient (NaN or inf) in member(s) [1], parameter(s) a; those members are "
        "left unclipped"
    )
    assert_points_at(record[0], __file__, "clipping.py")
    assert r.clipped.tolist() == [True, False, False] and not r.skipped
    assert r.nonfinite_members == [1] and r.nonfinite_layers == ["a"]
    torch.testing.assert_close(params["a"].grad[0], torch.tensor([0.6, 0.8]))
    assert torch.equal(params["b"].grad[1], torch.tensor([1.0]))  # the bad member: untouched
    torch.testing.assert_close(params["a"].grad[2], torch.tensor([0.3, 0.4]))

    params = make()
    r = clip_grad_norm_per_member(params, 1.0, on_nonfinite="skip")
    assert r.skipped and r.clipped.tolist() == [True, False, False]
    assert torch.equal(params["a"].grad[1], torch.zeros(2))  # NaN filled with 0
    assert torch.equal(params["b"].grad[1], torch.zeros(1))
    torch.testing.assert_close(params["a"].grad[0], torch.tensor([0.6, 0.8]))
    torch.testing.assert_close(params["a"].grad[2], torch.tensor([0.3, 0.4]))
    assert math.isnan(r.total_norm[1].item())


def test_per_member_skip_without_a_bad_member_changes_nothing_else():
    a = stacked([[3.0, 4.0], [0.3, 0.4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = clip_grad_norm_per_member([a], 1.0, on_nonfinite="skip")
    assert not r.skipped and r.nonfinite_members == []
    torch.testing.assert_close(a.grad, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))


# ---------------------------------------------------------------- invalid inputs, as a table
_G = p(1.0, 2.0)
ERROR_INPUTS = [
    (lambda: clip_grad_norm([_G], 0), "max_norm=0 is invalid: expected a positive number"),
    (lambda: clip_grad_norm([_G], -1.0), "max_norm=-1.0 is invalid: expected a positive number"),
    (
        lambda: clip_grad_norm([_G], 1.0, on_nonfinite="zero"),
        "on_nonfinite='zero' is invalid: expected 'raise', 'skip' or 'warn'",
    ),
    (lambda: clip_grad_value([_G], 0.0), "clip_value=0.0 is invalid: expected a positive number"),
    (
        lambda: clip_grad_value([_G], 1.0, on_nonfinite="ignore"),
        "on_nonfinite='ignore' is invalid: expected 'raise', 'skip' or 'warn'",
    ),
    (
        lambda: clip_grad_norm_per_member([_G], 1.0, on_nonfinite="nan"),
        "on_nonfinite='nan' is invalid: expected 'raise', 'skip' or 'warn'",
    ),
    (
        lambda: clip_grad_norm(torch.nn.Linear(1, 1), 1.0, names=["w"]),
        "names=['w'] is invalid: expected None when a module is given (its names are used)",
    ),
    (
        lambda: clip_grad_norm([("a", _G)], 1.0, names=["w"]),
        "names=['w'] is invalid: expected None when (name, tensor) pairs are given",
    ),
    (
        lambda: clip_grad_norm({"a": _G}, 1.0, names=["w"]),
        "names=['w'] is invalid: expected None when (name, tensor) pairs are given",
    ),
    (
        lambda: clip_grad_norm([_G, _G], 1.0, names=["w"]),
        "names='1 names' is invalid: expected one name per parameter (2)",
    ),
    (
        lambda: clip_grad_norm_per_member([stacked([[1.0], [2.0]]), stacked([1.0, 2.0, 3.0])], 1.0),
        "param1=(3,) is invalid: expected a gradient with a leading members axis of size 2",
    ),
    (
        lambda: clip_grad_norm_per_member([stacked([[1.0], [2.0]])], torch.ones(3)),
        "max_norm=(3,) is invalid: expected a float or a (2,) tensor",
    ),
    (
        lambda: clip_grad_norm_per_member([stacked([[1.0], [2.0]])], torch.tensor([1.0, 0.0])),
        "max_norm=tensor([1., 0.]) is invalid: expected positive values",
    ),
    (
        lambda: clip_grad_norm_per_member([stacked([[1.0], [2.0]])], 0.0),
        "max_norm=0.0 is invalid: expected a positive number",
    ),
]


@pytest.mark.parametrize("call,message", ERROR_INPUTS, ids=[m[:40] for _, m in ERROR_INPUTS])
def test_invalid_inputs_raise_their_messages(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_a_0d_gradient_has_no_members_axis():
    g = torch.zeros((), requires_grad=True)
    g.grad = torch.tensor(1.0)
    with pytest.raises(ValueError) as info:
        clip_grad_norm_per_member({"m": stacked([[1.0], [2.0]]), "s": g}, 1.0)
    assert str(info.value) == (
        "s=() is invalid: expected a gradient with a leading members axis of size 2"
    )


# ---------------------------------------------------------------- edges (found by mutmut)
def test_a_norm_of_exactly_the_radius_minus_torchs_epsilon_is_not_clipped():
    # g <- g * min(1, c / (||g|| + 1e-6)): with c = ||g|| + 1e-6 the factor is exactly 1
    w = p(1.0)
    r = clip_grad_norm([w], 1.0 + 1e-6)
    assert r.clipped is False and torch.equal(w.grad, torch.tensor([1.0], dtype=D))
    a = stacked([[1.0], [3.0]])
    c = torch.tensor([1.0, 3.0]) + 1e-6  # float32, as the per-member norms
    r = clip_grad_norm_per_member([a], c)
    assert r.clipped.tolist() == [False, False]
    assert torch.equal(a.grad, torch.tensor([[1.0], [3.0]]))


def test_overflow_recomputation_keeps_the_norm_type():
    q = p(2e38, 2e38, dtype=torch.float32)  # the float32 1-norm overflows
    r = clip_grad_norm([q], 1.0, norm_type=1.0)
    assert r.total_norm == pytest.approx(4e38, rel=1e-6) and r.finite
    torch.testing.assert_close(q.grad, torch.tensor([0.5, 0.5]))
    a = stacked([[2e38, 2e38], [1.0, 3.0]])
    b = stacked([[2e38], [0.0]])
    r = clip_grad_norm_per_member([a, b], 1.0, norm_type=1.0)
    assert r.total_norm[0].item() == pytest.approx(6e38, rel=1e-6)
    assert r.total_norm[1].item() == pytest.approx(4.0)
    torch.testing.assert_close(a.grad[0], torch.tensor([1 / 3, 1 / 3]))
    torch.testing.assert_close(b.grad[0], torch.tensor([1 / 3]))
    # a single member that only overflows is recomputed too
    solo = stacked([[2e38, 2e38]])
    r = clip_grad_norm_per_member([solo], 1.0, norm_type=1.0)
    assert r.total_norm[0].item() == pytest.approx(4e38, rel=1e-6) and r.clipped.tolist() == [True]
    torch.testing.assert_close(solo.grad, torch.tensor([[0.5, 0.5]]))


def test_per_member_norm_type_combines_several_parameters():
    a = stacked([[3.0, -1.0], [0.5, 0.0]])
    b = stacked([[-2.0], [0.0]])
    r = clip_grad_norm_per_member([a, b], 10.0, norm_type=math.inf)
    torch.testing.assert_close(r.total_norm, torch.tensor([3.0, 0.5]))
    r = clip_grad_norm_per_member([a, b], 10.0, norm_type=1.0)
    torch.testing.assert_close(r.total_norm, torch.tensor([6.0, 0.5]))


def test_per_member_coefficient_is_c_over_norm_plus_epsilon():
    a = stacked([[3.0, 4.0]], dtype=D)
    clip_grad_norm_per_member([a], 1.0)
    expected = torch.tensor([[3.0, 4.0]], dtype=D) / (5.0 + 1e-6)
    torch.testing.assert_close(a.grad, expected, rtol=1e-7, atol=0)  # float32 coefficient


def test_per_member_one_value_per_member():
    a = stacked([3.0, 0.5])  # a stacked scalar parameter: (members,)
    r = clip_grad_norm_per_member([a], 1.0)
    torch.testing.assert_close(r.total_norm, torch.tensor([3.0, 0.5]))
    torch.testing.assert_close(a.grad, torch.tensor([3.0 / (3.0 + 1e-6), 0.5]))


def test_a_bad_member_does_not_change_the_others_norms():
    clean = {"a": stacked([[3.0, 4.0], [0.1, 0.2]]), "b": stacked([[1.0], [0.3]])}
    ref = clip_grad_norm_per_member(clean, 1.0)
    bad = {
        "a": stacked([[3.0, 4.0], [NAN, 0.0], [0.1, 0.2]]),
        "b": stacked([[1.0], [0.0], [0.3]]),
    }
    r = clip_grad_norm_per_member(bad, 1.0, on_nonfinite="skip")
    assert r.total_norm.dtype == ref.total_norm.dtype
    assert torch.equal(r.total_norm[[0, 2]], ref.total_norm)
    for k in clean:
        assert torch.equal(bad[k].grad[[0, 2]], clean[k].grad)


def test_names_reach_the_messages_of_every_function():
    with pytest.raises(NonFiniteGradientError) as info:
        clip_grad_value([p(1.0), p(NAN)], 1.0, names=["w", "v"])
    assert str(info.value) == "non-finite gradient (NaN or inf) in v"
    with pytest.raises(ValueError) as info:
        clip_grad_value([p(1.0), p(2.0)], 1.0, names=["w"])
    assert str(info.value) == "names='1 names' is invalid: expected one name per parameter (2)"
    grads = [stacked([[1.0], [NAN]]), stacked([[INF], [2.0]])]
    with pytest.raises(NonFiniteGradientError) as info:
        clip_grad_norm_per_member(grads, 1.0, names=["w", "v"])
    assert str(info.value) == (
        "non-finite gradient (NaN or inf) in member(s) [0, 1], parameter(s) w, v"
    )
    assert info.value.names == ["w", "v"] and info.value.members == [0, 1]


def test_per_member_norms_of_float64_gradients_are_float64():
    """As clip_grad_norm takes the norm in the gradients' dtype, the per-member version takes
    float64 norms (and radii) for float64 gradients: each member is clipped as clip_grad_norm
    clips it alone, to the last bits; float32 gradients keep float32 norms."""
    g = torch.Generator().manual_seed(8)
    w = torch.zeros(3, 4, 5, dtype=torch.float64, requires_grad=True)
    w.grad = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    radii = torch.tensor([0.1, 0.7, 100.0], dtype=torch.float64)
    alone = [w.grad[m].clone() for m in range(3)]
    report = clip_grad_norm_per_member([w], radii)
    assert report.total_norm.dtype == torch.float64
    for m in range(3):
        p = torch.zeros(4, 5, dtype=torch.float64, requires_grad=True)
        p.grad = alone[m]
        single = clip_grad_norm([p], float(radii[m]))
        assert float(report.total_norm[m]) == single.total_norm
        torch.testing.assert_close(w.grad[m], p.grad, rtol=1e-15, atol=0)
    w32 = torch.zeros(2, 3, requires_grad=True)
    w32.grad = torch.ones(2, 3)
    assert clip_grad_norm_per_member([w32], 1.0).total_norm.dtype == torch.float32

"""Exact answers on tiny problems for the weight penalties, and their invalid inputs as a table.

Written for the mutation score of ``smithing.regularize.penalties`` (issue 15): every value
below is computed by hand (float64), every message is matched in full.
"""

import pytest
import torch

from smithing.regularize.penalties import (
    Penalty,
    decay_,
    elastic_net_penalty,
    is_bias,
    l1_penalty,
    l2_penalty,
    per_member,
    select,
    soft_threshold_,
)

D = torch.float64


def t(*values):
    return torch.tensor(values, dtype=D)


def _shape_msg(name, got, members):
    return (
        f"{name}={got} is invalid: expected a float, a 0-d tensor, or (with members_axis=True) a "
        f"tensor of shape ({members},) matching the leading members axis"
    )


# ---------------------------------------------------------------- per_member
def test_per_member_float_takes_the_dtype_of_like():
    out = per_member(0.5, torch.ones(2, 3, dtype=D), False)
    assert out.dtype == D and out.ndim == 0 and float(out) == 0.5


def test_per_member_tensor_is_cast_and_reshaped():
    like = torch.ones(3, 4, 5, dtype=D)
    v = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float32)
    out = per_member(v, like, True)
    assert out.dtype == D and out.shape == (3, 1, 1)
    assert torch.equal(out.reshape(-1), t(1.0, 2.0, 3.0))
    zero_d = per_member(torch.tensor(2.0), like, False)
    assert zero_d.dtype == D and zero_d.shape == ()
    shaped = torch.ones(3, 1, 1, dtype=D)
    assert per_member(shaped, like, True) is shaped  # already (members, 1, ..., 1)
    # a 1-D `like` is one value per member: (members,) stays (members,)
    assert per_member(t(1.0, 2.0), torch.ones(2, dtype=D), True).shape == (2,)


def test_per_member_shaped_tensor_needs_members_axis_and_matching_members():
    like = torch.ones(3, 4, dtype=D)
    with pytest.raises(ValueError) as info:
        per_member(torch.ones(3, 1, dtype=D), like, False)
    assert str(info.value) == _shape_msg("value", "(3, 1)", 3)
    with pytest.raises(ValueError) as info:
        per_member(torch.ones(2, 1, dtype=D), like, True)
    assert str(info.value) == _shape_msg("value", "(2, 1)", 3)
    with pytest.raises(ValueError) as info:  # not all trailing sizes 1
        per_member(torch.ones(3, 4, dtype=D), like, True)
    assert str(info.value) == _shape_msg("value", "(3, 4)", 3)


@pytest.mark.parametrize(
    "value,like,members_axis,message",
    [
        (torch.ones(3), torch.ones(3, 2), False, _shape_msg("value", "(3,)", 3)),
        (torch.ones(2), torch.ones(3, 2), True, _shape_msg("value", "(2,)", 3)),
        (torch.ones(2), torch.tensor(1.0), True, _shape_msg("value", "(2,)", "?")),
        (torch.ones(3, 2), torch.ones(3, 2, 2), True, _shape_msg("value", "(3, 2)", 3)),
    ],
)
def test_per_member_refuses_other_shapes(value, like, members_axis, message):
    with pytest.raises(ValueError) as info:
        per_member(value, like, members_axis)
    assert str(info.value) == message


# ---------------------------------------------------------------- the pure penalties
def test_l2_exact_over_several_tensors():
    # 0.3/(2*3) * (1 + 4 + 9 + 16) = 1.5
    val = l2_penalty([t(1.0, 2.0), t(3.0, 4.0)], 0.3, 3)
    assert val.dtype == D and torch.allclose(val, torch.tensor(1.5, dtype=D), rtol=0, atol=1e-15)
    # a tuple of tensors; default n = 1: 0.5/2 * (1 + 9) = 2.5
    assert torch.allclose(l2_penalty((t(1.0), t(-3.0)), 0.5), torch.tensor(2.5, dtype=D))
    assert float(l2_penalty(t(2.0), 1.0)) == 2.0  # n defaults to 1: 1/2 * 4


def test_l1_exact_over_several_tensors_and_default_n():
    # 0.4/2 * (1 + 2 + 3 + 4) = 2.0
    val = l1_penalty([t(1.0, -2.0), t(-3.0, 4.0)], 0.4, 2)
    assert torch.allclose(val, torch.tensor(2.0, dtype=D), rtol=0, atol=1e-15)
    assert float(l1_penalty(t(-2.0, 1.0), 1.0)) == 3.0  # n defaults to 1


def test_penalties_per_member_exact():
    w = t(1.0, 2.0, 3.0, 4.0).reshape(2, 2)  # member 0: (1, 2), member 1: (3, 4)
    lam = t(1.0, 2.0)
    n = t(1.0, 2.0)
    # l2: member 0: 1/2 * 5 = 2.5; member 1: 2/4 * 25 = 12.5
    assert torch.equal(l2_penalty(w, lam, n, members_axis=True), t(2.5, 12.5))
    # l1: member 0: 1/1 * 3 = 3; member 1: 2/2 * 7 = 7
    assert torch.equal(l1_penalty(w, lam, n, members_axis=True), t(3.0, 7.0))
    # elastic net with the members axis: the two summed per member
    assert torch.equal(elastic_net_penalty(w, lam, lam, n, members_axis=True), t(5.5, 19.5))
    # two stacked tensors: member sums of both
    assert torch.equal(l1_penalty([w, w], 1.0, members_axis=True), t(6.0, 14.0))


def test_elastic_net_exact():
    # l1: 0.2/2 * 3 = 0.3; l2: 0.4/4 * 5 = 0.5
    val = elastic_net_penalty(t(1.0, -2.0), 0.2, 0.4, 2)
    assert torch.allclose(val, torch.tensor(0.8, dtype=D), rtol=0, atol=1e-15)
    assert float(elastic_net_penalty(t(1.0, -2.0), 1.0, 1.0)) == 3.0 + 2.5  # n defaults to 1


def test_zero_strength_and_unit_n_are_accepted():
    assert float(l2_penalty(t(1.0), 0.0, 1)) == 0.0
    assert float(l1_penalty(t(1.0), torch.zeros((), dtype=D), 1)) == 0.0
    assert float(l2_penalty(t(2.0), 1.0, 0.5)) == 4.0  # 1/(2*0.5) * 4
    assert float(l2_penalty(t(2.0), 1.0, torch.tensor(0.5))) == 4.0


# ---------------------------------------------------------------- in-place steps
def test_soft_threshold_in_place_and_per_member():
    w = t(-0.3, 0.05, 1.0)
    out = soft_threshold_(w, 0.1)
    assert out is w
    assert torch.allclose(w, t(-0.2, 0.0, 0.9), rtol=0, atol=1e-15)
    same = t(-0.3, 0.0, 2.0)
    soft_threshold_(same, 0.0)  # threshold 0 is allowed and changes nothing
    assert torch.equal(same, t(-0.3, 0.0, 2.0))
    wm = t(1.0, -1.0, 1.0, -1.0).reshape(2, 2)
    soft_threshold_(wm, t(0.25, 0.5), members_axis=True)
    assert torch.equal(wm, t(0.75, -0.75, 0.5, -0.5).reshape(2, 2))


def test_decay_in_place_and_per_member():
    w = t(2.0, -4.0)
    assert decay_(w, 0.25) is w
    assert torch.equal(w, t(1.5, -3.0))
    wm = t(2.0, 2.0, 4.0, 4.0).reshape(2, 2)
    decay_(wm, t(0.5, 0.25), members_axis=True)
    assert torch.equal(wm, t(1.0, 1.0, 3.0, 3.0).reshape(2, 2))


# ---------------------------------------------------------------- selection
def test_is_bias():
    assert is_bias("fc.bias", torch.ones(2, 3))  # by name, whatever the shape
    assert is_bias("hbias", torch.ones(2, 3))  # the name's end
    assert not is_bias("hbias.weight", torch.ones(2, 3))  # only the last component counts
    assert not is_bias("bias.w.weight", torch.ones(2, 3))
    assert is_bias("fc.weight", torch.ones(3))  # one dimension
    assert is_bias("fc.weight", torch.ones(()))
    assert not is_bias("fc.weight", torch.ones(3, 4))
    assert is_bias("fc.weight", torch.ones(3, 4), members_axis=True)  # one dim per member
    assert not is_bias("fc.weight", torch.ones(3, 4, 5), members_axis=True)


def test_select_prefixes_are_whole_components():
    params = {"2.weight": torch.ones(2, 2), "20.weight": torch.ones(2, 2), "3.w": torch.ones(2, 2)}
    assert [n for n, _ in select(params, exclude=("2",))] == ["20.weight", "3.w"]
    assert [n for n, _ in select(params, exclude=("2.weight", "3.w"))] == ["20.weight"]
    assert [n for n, _ in select(params, exclude=("*0.weight",))] == ["2.weight", "3.w"]
    assert [n for n, _ in select(params, exclude=("2.Weight",))] == list(params)  # case matters
    stacked = {"w": torch.ones(3, 4), "v": torch.ones(3, 4, 5)}
    assert [n for n, _ in select(stacked, members_axis=True)] == ["v"]
    assert [n for n, _ in select(stacked, members_axis=True, include_biases=True)] == ["w", "v"]
    assert [n for n, _ in select(stacked)] == ["w", "v"]


# ---------------------------------------------------------------- Penalty
def test_penalty_exact_value_and_parts():
    params = {"w": t(1.0, -2.0).reshape(1, 2), "b": t(10.0)}
    # l2: 0.5/(2*2) * 5 = 0.625; l1: 0.2/2 * 3 = 0.3
    val = Penalty(l2=0.5, l1=0.2, n=2).penalty(params)
    assert torch.allclose(val, torch.tensor(0.925, dtype=D), rtol=0, atol=1e-15)
    assert torch.allclose(
        Penalty(l1=0.2, n=2).penalty(params), torch.tensor(0.3, dtype=D), rtol=0, atol=1e-15
    )
    assert float(Penalty(l2=0.5, l1=0.2, n=2, proximal=True).penalty(params)) == 0.625
    with_bias = Penalty(l1=1.0, include_biases=True).penalty(params)
    assert float(with_bias) == 13.0
    assert float(Penalty(l1=1.0, exclude=("w",), include_biases=True).penalty(params)) == 10.0


@pytest.mark.parametrize(
    "pen",
    [
        Penalty(),
        Penalty(l1=1.0, proximal=True),
        Penalty(weight_decay=0.1),
        Penalty(l2=1.0, exclude=("w",)),  # nothing selected
        Penalty(l2=torch.zeros(2), l1=torch.zeros(2)),
    ],
)
def test_penalty_without_an_in_loss_term_is_the_float_zero(pen):
    val = pen.penalty({"w": torch.ones(2, 2, dtype=D), "b": torch.ones(2, dtype=D)})
    assert isinstance(val, float) and val == 0.0


def test_active():
    assert not Penalty().active
    assert not Penalty(l2=torch.zeros(3)).active
    assert Penalty(l2=0.1).active and Penalty(l1=0.1).active and Penalty(weight_decay=0.1).active
    assert Penalty(l2=torch.tensor([0.0, 1.0])).active


def test_params_pass_the_members_axis():
    stacked = {"w": torch.ones(3, 4), "v": torch.ones(3, 4, 5)}
    assert [n for n, _ in Penalty(members_axis=True).params(stacked)] == ["v"]
    assert [n for n, _ in Penalty().params(stacked)] == ["w", "v"]
    both = Penalty(members_axis=True, include_biases=True, exclude=("v",))
    assert [n for n, _ in both.params(stacked)] == ["w"]


def test_exclude_list_becomes_a_tuple():
    pen = Penalty(exclude=["a", "b"])
    assert pen.exclude == ("a", "b")
    hash(pen)


def test_before_step_decays_exactly_the_selected_weights():
    params = {"w": t(2.0, 4.0).reshape(1, 2), "b": t(2.0)}
    Penalty(weight_decay=0.5).before_step(params, 0.5)  # factor 0.25
    assert torch.equal(params["w"], t(1.5, 3.0).reshape(1, 2))
    assert torch.equal(params["b"], t(2.0))
    unchanged = {"w": t(2.0, 4.0).reshape(1, 2)}
    Penalty(l2=1.0, l1=1.0).before_step(unchanged, 0.5)  # no decoupled decay: nothing
    assert torch.equal(unchanged["w"], t(2.0, 4.0).reshape(1, 2))


def test_after_step_thresholds_exactly_lr_l1_over_n():
    params = {"w": t(1.0, -0.5, 0.1).reshape(1, 3), "b": t(1.0)}
    Penalty(l1=0.8, n=4, proximal=True).after_step(params, 0.5)  # 0.5 * 0.8 / 4 = 0.1
    assert torch.allclose(params["w"], t(0.9, -0.4, 0.0).reshape(1, 3), rtol=0, atol=1e-15)
    assert torch.equal(params["b"], t(1.0))
    unchanged = {"w": t(1.0, -0.5).reshape(1, 2)}
    Penalty(l1=0.8, weight_decay=0.5).after_step(unchanged, 0.5)  # not proximal: nothing
    assert torch.equal(unchanged["w"], t(1.0, -0.5).reshape(1, 2))


def test_step_orders_decay_optimizer_threshold_and_takes_a_callable():
    w = t(1.0).reshape(1, 1)
    seen = []

    def optimizer():  # a bare callable stands for optimizer.step()
        seen.append(float(w))
        w.add_(1.0)

    pen = Penalty(weight_decay=0.5, l1=0.1, proximal=True)
    pen.step(optimizer, {"w": w}, 1.0)  # 1 -> 0.5 (decay) -> 1.5 (step) -> 1.4 (threshold)
    assert seen == [0.5]
    assert torch.allclose(w, t(1.4).reshape(1, 1), rtol=0, atol=1e-15)


def test_step_per_member_with_per_member_learning_rates():
    w = t(1.0, 1.0, 1.0, 1.0).reshape(2, 2, 1)
    lr = t(0.5, 1.0)
    pen = Penalty(weight_decay=t(0.5, 0.25), l1=t(0.2, 0.4), n=t(1.0, 2.0), proximal=True)
    pen = pen.for_members(2)
    pen.step(lambda: None, {"w": w}, lr)
    # member 0: 1 * (1 - 0.25) = 0.75, then - 0.5 * 0.2 / 1 = 0.65
    # member 1: 1 * (1 - 0.25) = 0.75, then - 1.0 * 0.4 / 2 = 0.55
    assert torch.allclose(w, t(0.65, 0.65, 0.55, 0.55).reshape(2, 2, 1), rtol=0, atol=1e-15)


def test_for_members():
    pen = Penalty(l2=0.1)
    stacked = pen.for_members(3)
    assert stacked.members_axis and not pen.members_axis and stacked.l2 == 0.1
    assert stacked.for_members(3) is stacked
    Penalty(l2=torch.tensor([0.1])).for_members(3)  # one value for all members
    Penalty(n=torch.ones(3), weight_decay=torch.ones(3)).for_members(3)


# ---------------------------------------------------------------- invalid inputs, as a table
_MEMBER = "a float or a tensor of shape (3,), one value per member"
_S = {"w": torch.ones(3, 4, 5)}
ERROR_INPUTS = [
    (lambda: l2_penalty([], 1.0), "weights=[] is invalid: expected at least one tensor"),
    (lambda: l1_penalty([], 1.0), "weights=[] is invalid: expected at least one tensor"),
    (lambda: l2_penalty(t(1.0), -1.0), "lam=-1.0 is invalid: expected a non-negative number"),
    (lambda: l1_penalty(t(1.0), -0.5), "lam=-0.5 is invalid: expected a non-negative number"),
    (
        lambda: l2_penalty(t(1.0), torch.tensor([1.0, -1.0])),
        "lam=tensor([ 1., -1.]) is invalid: expected non-negative strengths",
    ),
    (lambda: l2_penalty(t(1.0), 1.0, 0), "n=0 is invalid: expected a positive training-set size"),
    (lambda: l1_penalty(t(1.0), 1.0, -2), "n=-2 is invalid: expected a positive training-set size"),
    (
        lambda: l2_penalty(t(1.0), 1.0, torch.tensor([1.0, 0.0])),
        "n=tensor([1., 0.]) is invalid: expected a positive training-set size",
    ),
    (lambda: l2_penalty(torch.ones(3, 2), torch.ones(2), 1), _shape_msg("lam", "(2,)", 3)),
    (lambda: l1_penalty(torch.ones(3, 2), torch.ones(2), 1), _shape_msg("lam", "(2,)", 3)),
    (lambda: l2_penalty(torch.ones(3, 2), 1.0, torch.ones(2)), _shape_msg("n", "(2,)", 3)),
    (lambda: l1_penalty(torch.ones(3, 2), 1.0, torch.ones(2)), _shape_msg("n", "(2,)", 3)),
    (
        lambda: soft_threshold_(t(1.0), -0.1),
        "thresh=-0.1 is invalid: expected a non-negative threshold",
    ),
    (lambda: soft_threshold_(torch.ones(3, 2), torch.ones(2)), _shape_msg("thresh", "(2,)", 3)),
    (lambda: decay_(torch.ones(3, 2), torch.ones(2)), _shape_msg("factor", "(2,)", 3)),
    (lambda: Penalty(l2=-1.0), "l2=-1.0 is invalid: expected a non-negative number"),
    (lambda: Penalty(l1=-1.0), "l1=-1.0 is invalid: expected a non-negative number"),
    (
        lambda: Penalty(weight_decay=-1.0),
        "weight_decay=-1.0 is invalid: expected a non-negative number",
    ),
    (lambda: Penalty(n=0), "n=0 is invalid: expected a positive training-set size"),
    (
        lambda: Penalty(exclude="w"),
        "exclude='w' is invalid: expected a tuple of names or patterns (not a single string)",
    ),
    (lambda: Penalty(l2=torch.ones(2)).for_members(3), f"l2=(2,) is invalid: expected {_MEMBER}"),
    (lambda: Penalty(l1=torch.ones(4)).for_members(3), f"l1=(4,) is invalid: expected {_MEMBER}"),
    (lambda: Penalty(n=torch.ones(2)).for_members(3), f"n=(2,) is invalid: expected {_MEMBER}"),
    (
        lambda: Penalty(weight_decay=torch.ones(3, 1)).for_members(3),
        f"weight_decay=(3, 1) is invalid: expected {_MEMBER}",
    ),
    (
        lambda: Penalty(weight_decay=1.0, members_axis=True).apply_before_step(_S, torch.ones(2)),
        _shape_msg("lr", "(2,)", 3),
    ),
    (
        lambda: Penalty(weight_decay=torch.ones(2), members_axis=True).apply_before_step(_S, 1.0),
        _shape_msg("weight_decay", "(2,)", 3),
    ),
    (
        lambda: Penalty(l1=1.0, proximal=True, members_axis=True).apply_after_step(
            _S, torch.ones(2)
        ),
        _shape_msg("lr", "(2,)", 3),
    ),
    (
        lambda: Penalty(l1=torch.ones(2), proximal=True, members_axis=True).apply_after_step(
            _S, 1.0
        ),
        _shape_msg("l1", "(2,)", 3),
    ),
    (
        lambda: Penalty(l1=1.0, n=torch.ones(2), proximal=True, members_axis=True).apply_after_step(
            _S, 1.0
        ),
        _shape_msg("n", "(2,)", 3),
    ),
]


@pytest.mark.parametrize("call,message", ERROR_INPUTS, ids=[m[:40] for _, m in ERROR_INPUTS])
def test_invalid_inputs_raise_their_messages(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_per_member_puts_the_strength_on_the_weights_device():
    like = torch.empty(3, 2, device="meta")
    assert per_member(0.5, like, False).device.type == "meta"
    assert per_member(torch.ones(3), like, True).device.type == "meta"


def test_zero_strength_steps_do_not_write_the_weights():
    # "all parts with strength 0 are skipped": the tensors are not even written
    w = torch.ones(2, 2)
    before = w._version
    Penalty(l2=1.0, proximal=True).after_step({"w": w}, 0.1)  # l1 = 0
    Penalty(l2=1.0, l1=torch.zeros(2), proximal=True, members_axis=True).after_step({"w": w}, 0.1)
    Penalty(l1=1.0).before_step({"w": w}, 0.1)  # weight_decay = 0
    Penalty(weight_decay=torch.zeros(2), members_axis=True).before_step({"w": w}, 0.1)
    assert w._version == before
    Penalty(weight_decay=0.1).before_step({"w": w}, 0.1)  # and a nonzero one does
    assert w._version > before


def test_in_place_steps_default_to_one_model_not_an_ensemble():
    """``soft_threshold_`` and ``decay_`` take ``members_axis=False`` by default: a
    ``(members,)`` strength is then refused, not applied per leading row."""
    from smithing.regularize.penalties import decay_, soft_threshold_

    w = torch.arange(9.0).reshape(3, 3)
    per_row = torch.tensor([0.1, 0.2, 0.3])
    for fn, name in ((soft_threshold_, "thresh"), (decay_, "factor")):
        with pytest.raises(ValueError) as info:
            fn(w.clone(), per_row)
        assert str(info.value) == (
            f"{name}=(3,) is invalid: expected a float, a 0-d tensor, or (with "
            "members_axis=True) a tensor of shape (3,) matching the leading members axis"
        )

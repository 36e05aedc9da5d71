"""Exact answers for ``smithing.init.resolve``: gain resolution, parameter checks, stacked
``initialize``, ``select_layers``, the bias policy and ``apply``'s arguments.

Written for the mutation score of ``smithing.init.resolve`` (issue 15): every message of an
invalid input is matched in full, and each resolved argument is compared with torch's built-in
on the same generator state.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from smithing import init
from smithing.init.registry import INITIALIZERS
from smithing.init.resolve import _GAINS, _check_params, _resolve_gain
from smithing.nn import MLP
from tensortools import gen

D = torch.float64
SPEC = INITIALIZERS.get


def message(fn, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    return str(info.value)


class Net(nn.Module):
    """Linear(3, 4) -> Conv1d(4, 2, 1) -> Linear(2, 5, bias=False) -> LayerNorm without weight."""

    def __init__(self, activation=None):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.conv = nn.Conv1d(4, 2, 1)
        self.out = nn.Linear(2, 5, bias=False)
        self.norm = nn.LayerNorm(5, elementwise_affine=False)  # weight is None
        if activation is not None:
            self.activation = activation


# ----------------------------------------------------------------------------- gain


def test_resolved_gains():
    assert _resolve_gain(SPEC("uniform"), None, "tanh") == 1.0  # a rule without a gain
    assert _resolve_gain(SPEC("he_normal"), None, "tanh") == math.sqrt(2.0)  # its paper's
    assert _resolve_gain(SPEC("he_normal"), "paper", "tanh") == math.sqrt(2.0)
    assert _resolve_gain(SPEC("glorot_uniform"), "auto", "tanh") == 5.0 / 3.0
    assert _resolve_gain(SPEC("glorot_uniform"), "auto", "relu") == math.sqrt(2.0)
    g = _resolve_gain(SPEC("glorot_uniform"), 2, None)
    assert g == 2.0 and type(g) is float
    assert _resolve_gain(SPEC("glorot_uniform"), 1e-9, None) == 1e-9


def test_gain_messages():
    glorot = SPEC("glorot_uniform")
    assert message(_resolve_gain, SPEC("uniform"), 2.0, None) == (
        "gain=2.0 is invalid: expected None: 'uniform' does not use a gain"
    )
    assert message(_resolve_gain, SPEC("zeros"), "paper", None) == (
        "gain='paper' is invalid: expected None: 'zeros' does not use a gain"
    )
    assert message(_resolve_gain, glorot, "auto", None) == (
        "gain='auto' is invalid: expected an activation to take the gain from: pass "
        "activation= (or a model with an 'activation' attribute, such as an MLP)"
    )
    assert message(_resolve_gain, glorot, "theano", "sigmoid") == (
        "gain='theano' is invalid: expected None or 'paper' (the paper's rule), 'auto' (the "
        "activation's gain) or a positive number; the Theano tutorial's rule is gain=4 for "
        "sigmoid layers (1 otherwise)"
    )
    assert _GAINS == (
        "None or 'paper' (the paper's rule), 'auto' (the activation's gain) or a positive number"
    )
    for bad in (0, 0.0, -1.5, math.inf, -math.inf, math.nan, True, False, "relu", [1.0]):
        assert message(_resolve_gain, glorot, bad, None) == (
            f"gain={bad!r} is invalid: expected {_GAINS}"
        ), bad


def test_initialize_reaches_the_rule_with_the_resolved_gain():
    w = init.initialize(torch.empty(5, 4, dtype=D), "glorot_uniform", generator=gen(1), gain=2.5)
    assert torch.equal(w, nn.init.xavier_uniform_(torch.empty(5, 4, dtype=D), 2.5, gen(1)))
    w = init.initialize(
        torch.empty(5, 4, dtype=D),
        "glorot_normal",
        generator=gen(2),
        gain="auto",
        activation="tanh",
    )
    assert torch.equal(w, nn.init.xavier_normal_(torch.empty(5, 4, dtype=D), 5 / 3, gen(2)))
    # activation= is ignored without gain="auto" (the paper's rule stays)
    w = init.initialize(
        torch.empty(5, 4, dtype=D), "glorot_normal", generator=gen(3), activation="relu"
    )
    assert torch.equal(w, nn.init.xavier_normal_(torch.empty(5, 4, dtype=D), 1.0, gen(3)))


def test_initialize_validates_the_activation_name():
    assert message(
        init.initialize, torch.empty(2, 2), "glorot_uniform", activation="swish"
    ).startswith("unknown activation 'swish'; valid: ")


# ----------------------------------------------------------------------------- parameters


def test_parameter_messages():
    w = torch.empty(3, 3)
    assert message(init.initialize, w, "uniform", b=0.1) == (
        "b=0.1 is invalid: expected a parameter of 'uniform' (its parameters: a)"
    )
    assert message(init.initialize, w, "identity", sigma=1.0) == (
        "sigma=1.0 is invalid: expected a parameter of 'identity' (its parameters: scale, noise)"
    )
    assert message(init.initialize, w, "zeros", value=1.0) == (
        "value=1.0 is invalid: expected a parameter of 'zeros' (its parameters: none)"
    )
    assert message(init.initialize, w, "he_normal", a=1) == (
        "a=1 is invalid: expected a parameter of 'he_normal' (its parameters: mode)"
    )
    # a model rule's: the keywords apply passes itself are not listed
    assert message(_check_params, SPEC("lsuv"), {"source": 1}) == (
        "source=1 is invalid: expected a parameter of 'lsuv' "
        "(its parameters: data, tol, max_iter, pre_init)"
    )
    assert message(init.apply, MLP(2, (2,), 2), "lsuv", steps=3) == (
        "steps=3 is invalid: expected a parameter of 'lsuv' "
        "(its parameters: data, tol, max_iter, pre_init)"
    )
    _check_params(SPEC("lsuv"), {"data": 1, "tol": 2, "max_iter": 3, "pre_init": 4})
    _check_params(SPEC("pretrained"), {"anything": 1})  # it forwards **params to its source


def test_a_model_rule_needs_a_model():
    assert message(init.initialize, torch.empty(2, 2), "lsuv") == (
        "initializer 'lsuv' needs a model: use smithing.init.apply(model, 'lsuv', ...)"
    )
    assert message(init.initialize, torch.empty(2, 2), "pretrained", source=[]) == (
        "initializer 'pretrained' needs a model: use smithing.init.apply(model, 'pretrained', ...)"
    )


# ----------------------------------------------------------------------------- stacked


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 4, 3, 2)])
def test_stacked_initializes_each_member_in_turn(shape):
    w = init.initialize(
        torch.empty(shape, dtype=D), "he_uniform", generator=gen(4), stacked=True, mode="fan_out"
    )
    g, ref = gen(4), torch.empty(shape, dtype=D)
    for member in ref:
        nn.init.kaiming_uniform_(member, mode="fan_out", nonlinearity="relu", generator=g)
    assert torch.equal(w, ref)
    # orthogonal per member: each member is orthogonal, the stack as a whole is not
    w = init.initialize(torch.empty(3, 4, 4, dtype=D), "orthogonal", generator=gen(5), stacked=True)
    for m in w:
        assert torch.allclose(m @ m.T, torch.eye(4, dtype=D))
    w = init.initialize(
        torch.empty(3, 4, 4, dtype=D), "glorot_uniform", generator=gen(6), gain=3.0, stacked=True
    )
    g, ref = gen(6), torch.empty(3, 4, 4, dtype=D)
    for member in ref:
        nn.init.xavier_uniform_(member, 3.0, g)
    assert torch.equal(w, ref)


def test_stacked_needs_a_members_axis():
    assert message(init.initialize, torch.empty(4, 3), "glorot_uniform", stacked=True) == (
        "weight=(4, 3) is invalid: expected a (members, out, in, ...) tensor when stacked=True"
    )
    # without stacked=True a 3-d weight is one conv weight (fan_in = 3 * 2)
    w = init.initialize(torch.empty(4, 3, 2, dtype=D), "glorot_uniform", generator=gen(7))
    assert torch.equal(w, nn.init.xavier_uniform_(torch.empty(4, 3, 2, dtype=D), 1.0, gen(7)))


# ----------------------------------------------------------------------------- layers


def test_select_layers():
    net = Net()
    assert init.select_layers(net) == [("fc", net.fc), ("out", net.out)]  # nn.Linear default
    assert init.select_layers(net, nn.Conv1d) == [("conv", net.conv)]  # one type
    assert init.select_layers(net, (nn.Conv1d, nn.Linear)) == [
        ("fc", net.fc),
        ("conv", net.conv),
        ("out", net.out),
    ]
    # a predicate gets (name, module); modules without a tensor weight are never selected
    assert init.select_layers(net, lambda n, m: n != "fc") == [
        ("conv", net.conv),
        ("out", net.out),
    ]
    assert init.select_layers(net, lambda n, m: isinstance(m, nn.Linear)) == [
        ("fc", net.fc),
        ("out", net.out),
    ]


def test_select_layers_messages():
    net = Net()
    allowed = "a tuple of module types or a predicate (name, module) -> bool"
    bad = (nn.Linear, 3)
    assert message(init.select_layers, net, bad) == f"layers={bad!r} is invalid: expected {allowed}"
    assert message(init.select_layers, net, 3) == f"layers=3 is invalid: expected {allowed}"
    assert message(init.select_layers, net, "Linear") == (
        f"layers='Linear' is invalid: expected {allowed}"
    )
    assert message(init.select_layers, net, (nn.LayerNorm,)) == (
        f"layers={(nn.LayerNorm,)!r} is invalid: it matches no module with a weight in Net"
    )
    assert message(init.select_layers, net, nn.Conv2d) == (
        f"layers={(nn.Conv2d,)!r} is invalid: it matches no module with a weight in Net"
    )


# ----------------------------------------------------------------------------- bias


def test_bias_policies():
    net = Net()
    init.apply(net, "zeros", bias=0.5)
    assert torch.equal(net.fc.bias, torch.full((4,), 0.5))
    assert net.out.bias is None  # a layer without bias is skipped
    before = net.conv.bias.clone()  # not selected: never touched
    init.apply(net, "ones", bias="keep")
    assert torch.equal(net.fc.bias, torch.full((4,), 0.5)) and torch.equal(
        net.fc.weight, torch.ones(4, 3)
    )
    init.apply(net, "zeros", bias="zero")
    assert torch.equal(net.fc.bias, torch.zeros(4))
    init.apply(net, "zeros", bias=-2)
    assert torch.equal(net.fc.bias, torch.full((4,), -2.0))
    init.apply(net, "zeros")  # default: zero
    assert torch.equal(net.fc.bias, torch.zeros(4))
    assert torch.equal(net.conv.bias, before)
    init.apply(net, "ones", layers=nn.Conv1d, bias=1)
    assert torch.equal(net.conv.bias, torch.ones(2))


def test_a_layer_without_a_bias_attribute():
    emb = nn.Sequential(nn.Embedding(5, 3))  # a weight and no bias attribute at all
    assert not hasattr(emb[0], "bias")
    init.apply(emb, "uniform", layers=nn.Embedding, generator=gen(13), bias=2.0)
    assert torch.equal(emb[0].weight, torch.empty(5, 3).uniform_(-0.05, 0.05, generator=gen(13)))


def test_bias_messages():
    for bad in ("random", "zeros", None, True, math.inf, math.nan, -math.inf, [0.0]):
        assert message(init.apply, Net(), "zeros", bias=bad) == (
            f"bias={bad!r} is invalid: expected a number, 'zero' or 'keep'"
        ), bad


# ----------------------------------------------------------------------------- apply


def test_apply_passes_its_arguments_to_each_layer():
    net = Net()
    assert init.apply(net, "uniform", generator=gen(8), a=0.3) is net
    g = gen(8)
    assert torch.equal(net.fc.weight, torch.empty(4, 3).uniform_(-0.3, 0.3, generator=g))
    assert torch.equal(net.out.weight, torch.empty(5, 2).uniform_(-0.3, 0.3, generator=g))
    net = Net()
    init.apply(net, "glorot_normal", generator=gen(9), gain=0.5, layers=(nn.Conv1d,))
    assert torch.equal(net.conv.weight, nn.init.xavier_normal_(torch.empty(2, 4, 1), 0.5, gen(9)))


def test_auto_gain_from_the_model_activation():
    for act, gain in [("tanh", 5 / 3), ("relu", math.sqrt(2.0)), ("sigmoid", 1.0)]:
        net = Net(activation=act)
        init.apply(net, "glorot_uniform", generator=gen(10), gain="auto")
        g = gen(10)
        assert torch.equal(net.fc.weight, nn.init.xavier_uniform_(torch.empty(4, 3), gain, g)), act
        assert torch.equal(net.out.weight, nn.init.xavier_uniform_(torch.empty(5, 2), gain, g))
    # an explicit activation= wins over the model's
    net = Net(activation="relu")
    init.apply(net, "glorot_uniform", generator=gen(11), gain="auto", activation="tanh")
    assert torch.equal(net.fc.weight, nn.init.xavier_uniform_(torch.empty(4, 3), 5 / 3, gen(11)))
    # an MLP's activation attribute
    mlp = MLP(3, (4,), 2, "tanh")
    init.apply(mlp, "glorot_uniform", generator=gen(12), gain="auto")
    first = init.select_layers(mlp)[0][1]
    assert torch.equal(first.weight, nn.init.xavier_uniform_(torch.empty(4, 3), 5 / 3, gen(12)))


def test_a_model_activation_that_is_not_a_registered_name_is_ignored():
    auto = (
        "gain='auto' is invalid: expected an activation to take the gain from: pass "
        "activation= (or a model with an 'activation' attribute, such as an MLP)"
    )
    for act in (None, nn.Tanh(), "swish"):
        assert message(init.apply, Net(activation=act), "glorot_uniform", gain="auto") == auto
    # ... but an explicit one is checked, for a model rule too
    for rule in ("glorot_uniform", "lsuv"):
        assert message(init.apply, Net(), rule, activation="swish").startswith(
            "unknown activation 'swish'; valid: "
        )


# ----------------------------------------------------------------------------- registry


def test_fans():
    assert init.fans(torch.empty(4, 3)) == (3, 4)
    assert init.fans(torch.empty(4, 3, 2, 5)) == (30, 40)  # (in, out) x receptive field 10
    assert init.fans(torch.empty(4, 3, 1)) == (3, 4)
    assert message(init.fans, torch.empty(5)) == (
        "weight=(5,) is invalid: expected a tensor with at least 2 dimensions"
    )
    assert message(init.fans, torch.tensor(1.0)) == (
        "weight=() is invalid: expected a tensor with at least 2 dimensions"
    )


def test_the_registries():
    assert init.names() == INITIALIZERS.names()
    assert init.names()[:3] == ["uniform", "normal", "glorot_uniform"]
    assert {"lsuv", "pretrained", "orthogonal", "sparse"} <= set(init.names())
    assert message(INITIALIZERS.get, "nope").startswith("unknown initializer 'nope'; valid: ")
    assert message(init.PRETRAINED.get, "nope").startswith("unknown pretrained source 'nope'")
    he = SPEC("he_normal")
    assert (he.name, he.model_level, he.uses_gain, he.paper_gain) == (
        "he_normal",
        False,
        True,
        math.sqrt(2.0),
    )
    assert he.description == INITIALIZERS.entry("he_normal").description != ""
    assert he.description == "He et al. 2015, N(0, gain^2/fan_in), gain sqrt 2 (the rule for ReLU)"


def test_register_records_the_rule(monkeypatch):
    from smithing._registry import Registry
    from smithing.init import registry as R

    fresh: Registry = Registry("initializer")
    monkeypatch.setattr(R, "INITIALIZERS", fresh)

    def rule(w, *, generator, gain):
        """First line.

        More.
        """

    assert R._register("plain")(rule) is rule
    assert R._register("model", model_level=True, uses_gain=True, paper_gain=2.5)(rule) is rule
    assert R._register("told", description="Told.")(rule) is rule
    assert fresh.get("plain") == R.Initializer("plain", rule, False, False, 1.0, "First line.")
    assert fresh.get("model") == R.Initializer("model", rule, True, True, 2.5, "First line.")
    assert fresh.get("told") == R.Initializer("told", rule, False, False, 1.0, "Told.")
    assert [fresh.entry(n).description for n in ("plain", "told")] == ["First line.", "Told."]

    def undocumented(w, *, generator, gain):
        pass

    # an undocumented rule gets an empty description (an IndexError before the fix)
    assert R._register("bare")(undocumented) is undocumented
    assert fresh.get("bare").description == ""

"""Exact answers for ``smithing.init.pretrained``: the ``"pretrained"`` rule copies ``(W, b)``
pairs, applies the bias policy and ``rest`` to the layers it does not cover, forwards its
arguments to a source, and says exactly what is wrong with a bad source.

Written for the mutation score of ``smithing.init.pretrained`` (issue 15); no pretraining runs
here (the ``dbn`` / ``sda`` sources are tested in tests/pretrain/test_pretrained_init.py).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from smithing import init
from smithing._registry import Registry, unknown_name_message
from smithing.init import pretrained as P
from tensortools import gen

D = torch.float64


def message(fn, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def net(bias_last=True):
    """Linear(3, 4) -> Tanh -> Linear(4, 2) -> Linear(2, 5): three selected layers "0", "2", "3"."""
    return nn.Sequential(
        nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), nn.Linear(2, 5, bias=bias_last)
    ).to(D)


def pairs(*shapes, bias=True):
    g = gen(99)
    return [
        (
            torch.randn(o, i, generator=g, dtype=D),
            torch.randn(o, generator=g, dtype=D) if bias else None,
        )
        for o, i in shapes
    ]


@pytest.fixture
def sources(monkeypatch):
    """An empty registry of sources in place of the process's own."""
    registry: Registry = Registry("pretrained source")
    monkeypatch.setattr(P, "PRETRAINED", registry)
    return registry


# ----------------------------------------------------------------------------- copying


def test_pairs_are_copied_in_order_and_rest_is_left_alone():
    model = net()
    third = model[3].weight.clone(), model[3].bias.clone()
    src = pairs((4, 3), (2, 4))
    assert init.apply(model, "pretrained", source=src) is model
    for layer, (W, b) in zip((model[0], model[2]), src, strict=True):
        assert torch.equal(layer.weight, W) and torch.equal(layer.bias, b)
    assert torch.equal(model[3].weight, third[0]) and torch.equal(model[3].bias, third[1])


def test_rest_gets_its_rule_with_generator_gain_activation_and_bias():
    model = net()
    src = pairs((4, 3))
    init.apply(
        model,
        "pretrained",
        source=src,
        rest="glorot_uniform",
        generator=gen(1),
        gain="auto",
        activation="tanh",
        bias=0.25,
    )
    assert torch.equal(model[0].weight, src[0][0]) and torch.equal(model[0].bias, src[0][1])
    g = gen(1)
    for layer, shape in ((model[2], (2, 4)), (model[3], (5, 2))):
        ref = nn.init.xavier_uniform_(torch.empty(shape, dtype=D), 5 / 3, g)
        assert torch.equal(layer.weight, ref)
        assert torch.equal(layer.bias, torch.full((shape[0],), 0.25, dtype=D))
    # a number as gain, the paper's by default, and bias "keep"
    model = net()
    kept = model[3].bias.clone()
    init.apply(model, "pretrained", source=pairs((4, 3), (2, 4)), rest="he_normal", bias="keep")
    assert torch.equal(model[3].bias, kept)
    model = net()
    init.apply(
        model,
        "pretrained",
        source=pairs((4, 3), (2, 4)),
        rest="glorot_normal",
        generator=gen(2),
        gain=3.0,
    )
    assert torch.equal(
        model[3].weight, nn.init.xavier_normal_(torch.empty(5, 2, dtype=D), 3.0, gen(2))
    )


def test_a_pair_without_b_gets_the_bias_policy():
    model = net(bias_last=False)
    src = pairs((4, 3), (2, 4), (5, 2), bias=False)
    init.apply(model, "pretrained", source=src, bias=-1.5)
    assert torch.equal(model[0].bias, torch.full((4,), -1.5, dtype=D))
    assert torch.equal(model[2].bias, torch.full((2,), -1.5, dtype=D))
    assert model[3].bias is None and torch.equal(model[3].weight, src[2][0])
    init.apply(model, "pretrained", source=src)  # default: zero
    assert torch.equal(model[0].bias, torch.zeros(4, dtype=D))
    model[0].bias.data.fill_(7.0)
    init.apply(model, "pretrained", source=[list(p) for p in src], bias="keep")  # lists are pairs
    assert torch.equal(model[0].bias, torch.full((4,), 7.0, dtype=D))


# ----------------------------------------------------------------------------- sources


def test_a_callable_source_gets_model_layers_generator_and_params():
    model, g, seen = net(), gen(3), {}

    def source(m, selected, *, generator, **params):
        seen.update(model=m, selected=selected, generator=generator, params=params)
        return pairs((4, 3))

    init.apply(model, "pretrained", source=source, generator=g, depth=2, kind="x")
    assert seen["model"] is model and seen["generator"] is g
    assert seen["selected"] == init.select_layers(model)
    assert seen["params"] == {"depth": 2, "kind": "x"}
    assert torch.equal(model[0].weight, pairs((4, 3))[0][0])


def test_a_source_that_returns_none_has_written_the_weights():
    model = net()
    before = [p.clone() for p in model.parameters()]

    def source(m, selected, *, generator):
        return None

    init.apply(model, "pretrained", source=source, rest="zeros", bias=3.0)  # rest not applied
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_registered_sources(sources):
    calls = []

    def stack(m, selected, *, generator, width):
        calls.append(width)
        return pairs((4, 3))

    P.register_pretrained("stack", stack, description="a test stack")
    assert sources.names() == ["stack"]
    assert sources.entry("stack").description == "a test stack"
    assert sources.get("stack") is stack
    model = net()
    init.apply(model, "pretrained", source="stack", width=7)
    assert calls == [7] and torch.equal(model[0].weight, pairs((4, 3))[0][0])
    assert init.PRETRAINED is not sources  # the fixture replaced the module's registry only

    def documented(m, selected, *, generator):
        """Its first line.

        More."""

    P.register_pretrained("documented", documented)  # no description: the docstring's
    assert sources.entry("documented").description == "Its first line."


def test_source_messages_without_registered_sources(sources):
    assert message(init.apply, net(), "pretrained") == (
        "source=None is invalid: expected a registered pretraining source (none registered "
        "yet: `import smithing.experiment` registers 'dbn' and 'sda'), a callable or a list "
        "of (W, b) pairs"
    )
    tail = (
        ". The stack sources 'dbn' and 'sda' are registered by the experiment layer: "
        "`import smithing.experiment` first (smithing.experiment.pretrained), or pass "
        "source=stack.encoders() of a smithing.pretrain.stack.pretrain_stack(...)"
    )
    assert message(init.apply, net(), "pretrained", source="dbn") == (
        "unknown pretrained source 'dbn'; valid: " + tail
    )
    P.register_pretrained("sda", lambda *a, **k: None)
    P.register_pretrained("dbn2", lambda *a, **k: None)
    assert message(init.apply, net(), "pretrained") == (
        "source=None is invalid: expected a registered pretraining source (sda, dbn2), a "
        "callable or a list of (W, b) pairs"
    )
    assert message(init.apply, net(), "pretrained", source="dbn") == (
        unknown_name_message("pretrained source", "dbn", ["dbn2", "sda"]) + tail
    )
    assert message(init.apply, net(), "pretrained", source="dbn").startswith(
        "unknown pretrained source 'dbn'; valid: dbn2, sda (did you mean"
    )


def test_pair_messages():
    src = pairs((4, 3), (2, 4))
    assert message(init.apply, net(), "pretrained", source=src, depth=2, alpha=1) == (
        "['alpha', 'depth'] are invalid: parameters are only passed to a callable or "
        "registered source"
    )
    assert message(
        init.apply, net(), "pretrained", source=pairs((4, 3), (2, 4), (5, 2), (1, 5))
    ) == ("source has 4 (W, b) pairs but the model has only 3 selected layers (0, 2, 3)")
    W, b = src[0]
    assert message(init.apply, net(), "pretrained", source=[W]) == (
        "source[0]='Tensor' is invalid: expected a (W, b) pair"
    )
    assert message(init.apply, net(), "pretrained", source=[(W, b), (W, b, b)]) == (
        "source[1]='tuple' is invalid: expected a (W, b) pair"
    )
    assert message(init.apply, net(), "pretrained", source=[(W, b), (W,)]) == (
        "source[1]='tuple' is invalid: expected a (W, b) pair"
    )
    assert message(init.apply, net(), "pretrained", source=[(W, b), (W.T, b)]) == (
        "pretrained W 1 has shape (3, 4) but layer '2' has weight shape (2, 4)"
    )
    assert message(init.apply, net(), "pretrained", source=[(W.T.contiguous(), b)]) == (
        "pretrained W 0 has shape (3, 4) but layer '0' has weight shape (4, 3) "
        "(pass W.T: W must be (out_features, in_features))"
    )
    W3 = torch.zeros(5, 2, dtype=D)
    assert (
        message(
            init.apply,
            net(bias_last=False),
            "pretrained",
            source=[*src, (W3, torch.zeros(5, dtype=D))],
        )
        == "pretrained b 2 given but layer '3' has no bias"
    )
    assert message(init.apply, net(), "pretrained", source=[src[0], (src[1][0], b)]) == (
        "pretrained b 1 has shape (4,) but layer '2' has bias shape (2,)"
    )
    emb = nn.Sequential(nn.Embedding(4, 3)).to(D)  # a weight and no bias attribute at all
    W = torch.ones(4, 3, dtype=D)
    assert message(
        init.apply, emb, "pretrained", layers=nn.Embedding, source=[(W, torch.zeros(4, dtype=D))]
    ) == ("pretrained b 0 given but layer '0' has no bias")
    init.apply(emb, "pretrained", layers=nn.Embedding, source=[(W, None)], bias=5.0)
    assert torch.equal(emb[0].weight, W)

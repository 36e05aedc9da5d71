"""StackSpec's checks with their full messages and its accepted edges, and what each layer kind
builds from a spec (written for stack_spec.py's mutants): the DBN's ``init_visible_bias`` goes
to the pretrainer and not to the RBM, members and the SdA's code activation reach the layer."""

from __future__ import annotations

import pytest
import torch

from smithing.pretrain.stack import STACK_KINDS, StackSpec

D = torch.float64
SIZES = "expected at least two positive ints [n_inputs, n_hidden_1, ...]"
INVALID = [
    (dict(kind="dbn", sizes=[4]), f"sizes=[4] is invalid: {SIZES}"),
    (dict(kind="dbn", sizes=[4, 0]), f"sizes=[4, 0] is invalid: {SIZES}"),
    (dict(kind="dbn", sizes=[4, -2]), f"sizes=[4, -2] is invalid: {SIZES}"),
    (dict(kind="dbn", sizes=[4, 2.0]), f"sizes=[4, 2.0] is invalid: {SIZES}"),
    (dict(kind="dbn", sizes=[4, True]), f"sizes=[4, True] is invalid: {SIZES}"),
    (dict(kind="dbn", sizes=[4, 3], activation="tanh"),
     "activation='tanh' is invalid: expected one of ('sigmoid',) for a 'dbn' stack"),
    (dict(kind="dbn", sizes=[4, 3], propagate="mean"),
     "propagate='mean' is invalid: expected 'probs' or 'samples'"),
    (dict(kind="sda", sizes=[4, 3], activation="tanh", propagate="samples"),
     "propagate='samples' is invalid: expected 'probs' for non-sigmoid codes (only sigmoid "
     "codes can be sampled)"),
    (dict(kind="dbn", sizes=[4, 3], members=0),
     "members=0 is invalid: expected None or a positive int"),
    (dict(kind="dbn", sizes=[4, 3], members=-1),
     "members=-1 is invalid: expected None or a positive int"),
    (dict(kind="dbn", sizes=[4, 3], members=True),
     "members=True is invalid: expected None or a positive int"),
    (dict(kind="dbn", sizes=[4, 3], members=1.5),
     "members=1.5 is invalid: expected None or a positive int"),
    (dict(kind="dbn", sizes=[4, 3], options={"foo": 1}),
     "options['foo']=1 is invalid: expected an option of a 'dbn' stack (visible, "
     "learn_variance, init_std, init_visible_bias)"),
    (dict(kind="sda", sizes=[4, 3], options={"visible": "gaussian"}),
     "options['visible']='gaussian' is invalid: expected an option of a 'sda' stack (tied, "
     "loss)"),
]  # fmt: skip


@pytest.mark.parametrize("kwargs, message", INVALID, ids=[f"case{i}" for i in range(len(INVALID))])
def test_invalid_specs_and_their_messages(kwargs, message):
    with pytest.raises(ValueError) as err:
        StackSpec(**kwargs)
    assert str(err.value) == message


def test_accepted_edges_and_normalized_fields():
    spec = StackSpec("dbn", [4, 1], members=1, options=None)
    assert spec.sizes == (4, 1) and spec.members == 1 and spec.options == {}
    assert type(spec.options) is dict and spec.layer_settings == ({},)
    spec = StackSpec("sda", (4, 3, 2), layers=[{"epochs": 1}, {"epochs": 2}], activation="relu")
    assert spec.layer_settings == ({"epochs": 1}, {"epochs": 2}) and spec.n_layers == 2


def test_prefix_and_from_dict_messages():
    spec = StackSpec("dbn", [4, 3, 2])
    for n in (0, 3):
        with pytest.raises(ValueError) as err:
            spec.prefix(n)
        assert str(err.value) == f"n={n} is invalid: expected 1..2"
    assert spec.prefix(1).sizes == (4, 3) and spec.prefix(2) == spec
    with pytest.raises(ValueError) as err:
        StackSpec.from_dict({"kind": "dbn", "sizes": [4, 3], "bogus": 1, "alpha": 2})
    assert str(err.value) == (
        "spec=['alpha', 'bogus'] is invalid: expected keys among ['kind', 'sizes', 'layers', "
        "'activation', 'propagate', 'members', 'options']"
    )
    assert StackSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("init_visible_bias", [True, False])
def test_a_dbn_layer_and_its_pretrainer(init_visible_bias):
    spec = StackSpec("dbn", [4, 3], layers={"epochs": 2, "lr": 0.3}, members=2,
                     options={"init_visible_bias": init_visible_bias, "init_std": 0.5})  # fmt: skip
    kind = STACK_KINDS.get("dbn")
    layer = kind.layer(spec, 0, generator=torch.Generator().manual_seed(0), device="cpu", dtype=D)
    assert layer.members == 2 and layer.W.shape == (2, 4, 3) and layer.W.dtype == D
    pre = kind.pretrainer(layer, spec, 0)
    assert pre.init_visible_bias is init_visible_bias
    assert pre.train_kwargs == {"epochs": 2, "lr": 0.3}
    default = StackSpec("dbn", [4, 3])
    assert kind.pretrainer(kind.layer(default, 0, generator=None, device=None, dtype=D), default,
                           0).init_visible_bias is True  # fmt: skip


def test_an_sda_layer_gets_the_code_activation_and_members():
    spec = StackSpec("sda", [4, 3], activation="tanh", members=3, options={"tied": False})
    kind = STACK_KINDS.get("sda")
    layer = kind.layer(spec, 0, generator=torch.Generator().manual_seed(0), device="cpu", dtype=D)
    assert layer.activation == "tanh" and layer.members == 3 and layer.W_dec is not None

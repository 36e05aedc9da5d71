"""Exact answers for the MLP: the layers it builds for each option, its forward pass and hidden
activations written out, ``describe`` / ``extra_repr``, and every validation message in full.

Written for the mutation score of ``smithing.nn.mlp`` (issue 15).
"""

import pytest
import torch
from torch import nn

from smithing.nn import MLP
from smithing.nn.dropconnect import DropConnectLinear
from smithing.nn.dropout import Dropout
from smithing.nn.mlp import DropConnectHidden, _dropout, _is_activation

D = torch.float64


def _types(m):
    return [type(x).__name__ for x in m.net]


def test_layers_for_each_option():
    assert _types(MLP(4, (3, 2), 2)) == [
        "Flatten", "Linear", "ReLU", "Linear", "ReLU", "Linear"
    ]  # fmt: skip
    assert _types(MLP(4, (), 2)) == ["Flatten", "Linear"]
    m = MLP(4, (3,), 2, "tanh", input_dropout=0.2, dropout=0.5)
    assert _types(m) == ["Flatten", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]
    assert m.net[1].p == 0.2 and m.net[4].p == 0.5 and type(m.net[1]) is nn.Dropout
    m = MLP(4, (3,), 2, input_dropout=0.2, dropout=0.5, dropout_mode="lecture")
    assert isinstance(m.net[1], Dropout) and m.net[1].mode == "lecture" and m.net[1].p == 0.2
    assert isinstance(m.net[4], Dropout) and m.net[4].mode == "lecture" and m.net[4].p == 0.5
    m = MLP(4, (3, 5), 2, "tanh", dropconnect=0.3, dropout=0.1,
            dropconnect_options={"samples": 7, "inference": "mean"})  # fmt: skip
    assert _types(m) == [
        "Flatten", "DropConnectHidden", "Identity", "Dropout",
        "DropConnectHidden", "Identity", "Dropout", "Linear",
    ]  # fmt: skip
    dc = m.net[1]
    assert isinstance(dc, nn.Linear) and isinstance(dc, DropConnectLinear)
    assert (dc.in_features, dc.out_features, dc.p, dc.activation) == (4, 3, 0.3, "tanh")
    assert dc.samples == 7 and dc.inference == "mean"
    assert (m.net[4].in_features, m.net[4].out_features) == (3, 5)
    assert type(m.net[7]) is nn.Linear and m.net[7].out_features == 2
    assert m.linears == [m.net[1], m.net[4], m.net[7]]
    names = [n for n, _ in m.named_parameters()]
    assert names == [n for n, _ in MLP(4, (3, 5), 2, dropout=0.1).named_parameters()]


def test_attributes_describe_and_repr():
    m = MLP(4, [3, 2.0], 2, "tanh")
    assert m.sizes == (4, 3, 2, 2) and m.activation == "tanh" and m.dropconnect == 0.0
    assert m.extra_repr() == "sizes=(4, 3, 2, 2), activation='tanh'"
    opts = {"samples": 3}
    m = MLP(4, (3,), 2, input_dropout=0, dropout=0, dropout_mode="lecture", dropconnect=0.5,
            dropconnect_options=opts)  # fmt: skip
    assert m.extra_repr() == "sizes=(4, 3, 2), activation='relu', dropconnect=0.5"
    d = m.describe()
    assert d == {"n_inputs": 4, "hidden": [3], "n_outputs": 2, "activation": "relu",
                 "input_dropout": 0.0, "dropout": 0.0, "dropout_mode": "lecture",
                 "dropconnect": 0.5, "dropconnect_options": {"samples": 3}}  # fmt: skip
    assert isinstance(d["input_dropout"], float) and isinstance(d["dropconnect"], float)
    assert isinstance(m.dropconnect, float) and d["dropconnect_options"] is not opts
    d["hidden"].append(9)
    assert m.describe()["hidden"] == [3]  # a copy
    assert MLP(4, (3,), 2).describe()["dropconnect_options"] == {}
    assert MLP(**m.describe()).sizes == m.sizes


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((0, (3,), 2), {}, "n_inputs=0 is invalid: expected a positive int"),
        ((2.0, (3,), 2), {}, "n_inputs=2.0 is invalid: expected a positive int"),
        ((4, (3,), 0), {}, "n_outputs=0 is invalid: expected a positive int"),
        ((4, (3,), 2.0), {}, "n_outputs=2.0 is invalid: expected a positive int"),
        ((4, (0,), 2), {}, "hidden=(0,) is invalid: expected positive layer sizes"),
        ((4, (3, -1), 2), {}, "hidden=(3, -1) is invalid: expected positive layer sizes"),
        ((4, (3,), 2), {"input_dropout": 1.0},
         "input_dropout=1.0 is invalid: expected a probability in [0, 1)"),
        ((4, (3,), 2), {"input_dropout": -0.1},
         "input_dropout=-0.1 is invalid: expected a probability in [0, 1)"),
        ((4, (3,), 2), {"dropout": 1.0},
         "dropout=1.0 is invalid: expected a probability in [0, 1)"),
        ((4, (3,), 2), {"dropconnect": 1.0},
         "dropconnect=1.0 is invalid: expected a probability in [0, 1)"),
        ((4, (3,), 2), {"dropconnect": -0.5},
         "dropconnect=-0.5 is invalid: expected a probability in [0, 1)"),
        ((4, (3,), 2, "rleu"), {},
         "unknown activation 'rleu'; valid: elu, leaky_relu, linear, relu, sigmoid, softplus, "
         "softsign, tanh (did you mean 'relu'?)"),
        ((4, (3,), 2), {"dropout": 0.5, "dropout_mode": "foo"},
         "unknown dropout mode 'foo'; valid: gaussian, inverted, lecture"),
    ],
)  # fmt: skip
def test_invalid_arguments(args, kwargs, message):
    with pytest.raises(ValueError) as err:
        MLP(*args, **kwargs)
    assert str(err.value) == message


def test_valid_edges():
    MLP(1, (1,), 1, input_dropout=0.0, dropout=0.0, dropconnect=0.0)
    MLP(1, (1,), 1, input_dropout=0.99, dropout=0.99, dropconnect=0.99)


def test_forward_and_hidden_activations_by_hand():
    torch.manual_seed(0)
    m = MLP(3, (4, 2), 2, "tanh").to(D)
    x = torch.randn(5, 1, 3, dtype=D)  # flattened to (5, 3)
    l1, l2, l3 = m.linears
    h1 = torch.tanh(x.reshape(5, 3) @ l1.weight.T + l1.bias)
    h2 = torch.tanh(h1 @ l2.weight.T + l2.bias)
    assert torch.allclose(m(x), h2 @ l3.weight.T + l3.bias, rtol=0, atol=1e-14)
    hs = m.hidden_activations(x)
    assert len(hs) == 2
    assert torch.allclose(hs[0], h1, rtol=0, atol=1e-14)
    assert torch.allclose(hs[1], h2, rtol=0, atol=1e-14)
    torch.manual_seed(0)
    dc = MLP(3, (4, 2), 2, "tanh", dropconnect=0.5, input_dropout=0.3, dropout=0.2,
             dropconnect_options={"inference": "mean"}).to(D).eval()  # fmt: skip
    hs = dc.hidden_activations(x)
    d1, d2, _ = dc.linears
    assert len(hs) == 2
    assert torch.allclose(hs[0], torch.tanh(d1.preactivation(x.reshape(5, 3))), atol=1e-14)
    assert torch.allclose(hs[1], torch.tanh(d2.preactivation(hs[0])), atol=1e-14)


def test_helpers():
    assert _is_activation(nn.Tanh()) and _is_activation(nn.ReLU()) and _is_activation(nn.Identity())
    assert not _is_activation(nn.Linear(2, 2)) and not _is_activation(nn.Dropout())
    assert not _is_activation(Dropout(0.5))
    d = _dropout(0.25, "inverted")
    assert type(d) is nn.Dropout and d.p == 0.25
    g = _dropout(0.25, "gaussian")
    assert isinstance(g, Dropout) and g.mode == "gaussian" and g.p == 0.25
    assert issubclass(DropConnectHidden, nn.Linear)


def test_hidden_activations_skip_smithing_dropout_layers():
    torch.manual_seed(0)
    m = MLP(3, (4, 2), 2, "tanh", input_dropout=0.2, dropout=0.5, dropout_mode="lecture").to(D)
    m.eval()
    x = torch.randn(5, 3, dtype=D)
    hs = m.hidden_activations(x)
    assert len(hs) == 2  # one per hidden layer; the Dropout modules are not activations
    l1, l2, _ = m.linears
    h1 = torch.tanh(m.net[1](x) @ l1.weight.T + l1.bias)  # eval: lecture dropout scales by 1 - p
    assert torch.allclose(hs[0], h1, rtol=0, atol=1e-14)

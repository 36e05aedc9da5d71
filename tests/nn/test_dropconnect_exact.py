"""Exact answers for DropConnect: the formulas on the same random draws, float64 hand values,
the chunked draws written out, and every validation message in full.

Written for the mutation score of ``smithing.nn.dropconnect`` (issue 15).
"""

import math

import pytest
import torch
from torch import nn

from smithing.nn import dropconnect_kernels as K
from smithing.nn.dropconnect import (
    DROPCONNECT_INFERENCE,
    MASK_FORMATS,
    DropConnectLinear,
    dropconnect_moments,
    masked_preactivation,
)

D = torch.float64


def _t(*rows):
    return torch.tensor(rows, dtype=D)


def _layer(i, o, p, seed=0, **kw):
    torch.manual_seed(seed)
    return DropConnectLinear(i, o, p, **kw).to(D)


# ---------------------------------------------------------------- the two formulas
V = _t([1.0, 2.0], [-1.0, 3.0])  # (batch 2, in 2)
W = _t([1.0, -2.0], [0.5, 4.0], [3.0, 1.0])  # (out 3, in 2)
B = torch.tensor([1.0, -1.0, 2.0], dtype=D)


def test_masked_preactivation_shared_and_per_example_masks_by_hand():
    m = _t([1.0, 0.0], [0.0, 1.0], [1.0, 1.0])
    # (M * W) = [[1, 0], [0, 4], [3, 1]]; rows of v: [1, 2] -> [1, 8, 5], [-1, 3] -> [-1, 12, 0]
    assert torch.equal(masked_preactivation(V, W, None, m, None), _t([1, 8, 5], [-1, 12, 0]))
    assert torch.equal(masked_preactivation(V, W, B, m, None), _t([2, 7, 7], [0, 11, 2]))
    mb = torch.tensor([0.0, 1.0, 0.0], dtype=D)
    assert torch.equal(masked_preactivation(V, W, B, m, mb), _t([1, 7, 5], [-1, 11, 0]))
    # per-example masks (batch, out, in): example 0 keeps all, example 1 keeps none of row 0
    m3 = torch.stack([torch.ones(3, 2, dtype=D), m])
    m3[1, 0] = 0.0
    mb3 = _t([1.0, 1.0, 1.0], [0.0, 0.0, 1.0])
    # example 0: W v = [-3, 8.5, 5] + b; example 1: (M*W) v = [0, 12, 0] + [0, 0, 2]
    got = masked_preactivation(V, W, B, m3, mb3)
    assert torch.equal(got, _t([-2, 7.5, 7], [0, 12, 2]))
    assert torch.equal(masked_preactivation(V, W, None, m3, None), _t([-3, 8.5, 5], [0, 12, 0]))


def test_moments_by_hand():
    p = 0.25
    keep = 0.75
    wv = _t([-3.0, 8.5, 5.0], [-7.0, 11.5, 0.0])  # W v
    w2v2 = _t([17.0, 64.25, 13.0], [37.0, 144.25, 18.0])  # (W*W)(v*v)
    mu, var = dropconnect_moments(V, W, None, p)
    assert torch.equal(mu, keep * wv) and torch.equal(var, p * keep * w2v2)
    mu, var = dropconnect_moments(V, W, B, p)  # drop_bias defaults to True
    assert torch.allclose(mu, keep * (wv + B), rtol=0, atol=1e-14)
    assert torch.allclose(var, p * keep * (w2v2 + B * B), rtol=0, atol=1e-14)
    mu, var = dropconnect_moments(V, W, B, p, drop_bias=False)
    assert torch.allclose(mu, keep * wv + B, rtol=0, atol=1e-14)
    assert torch.equal(var, p * keep * w2v2)


# ---------------------------------------------------------------- construction
def test_defaults_attributes_and_repr():
    torch.manual_seed(0)
    layer = DropConnectLinear(3, 2)
    assert (layer.in_features, layer.out_features, layer.p, layer.keep) == (3, 2, 0.5, 0.5)
    assert (layer.activation, layer.inference, layer.samples) == ("relu", "gaussian", 100)
    assert layer.drop_bias is True and layer.per_example is True and layer.masks == "bits"
    assert layer.max_mask_elements == 2**24 and layer._deterministic is False
    assert isinstance(layer.act, nn.ReLU) and layer.stochastic is True
    assert layer.weight.shape == (2, 3) and layer.bias is not None and layer.bias.shape == (2,)
    assert DropConnectLinear(3, 2, bias=False).bias is None
    assert isinstance(DropConnectLinear(3, 2, 0).p, float)
    assert DropConnectLinear(3, 2, 0.25).keep == 0.75
    assert MASK_FORMATS == ("bits", "float") and DROPCONNECT_INFERENCE.names() == [
        "gaussian",
        "mean",
    ]
    r = DropConnectLinear(3, 2, 0.3, activation="tanh", inference="mean", samples=7,
                          drop_bias=False, masks="float")  # fmt: skip
    assert r.extra_repr() == (
        "in_features=3, out_features=2, p=0.3, activation='tanh', inference='mean', "
        "samples=7, drop_bias=False, masks='float'"
    )
    assert r.per_example is True
    assert DropConnectLinear(3, 2, per_example=False, max_mask_elements=9).per_example is False
    assert DropConnectLinear(3, 2, max_mask_elements=9).max_mask_elements == 9


def test_initialization_is_nn_linear():
    torch.manual_seed(5)
    ref = nn.Linear(7, 4)
    torch.manual_seed(5)
    layer = DropConnectLinear(7, 4)
    assert torch.equal(layer.weight, ref.weight) and torch.equal(layer.bias, ref.bias)
    torch.manual_seed(5)
    ref = nn.Linear(7, 4, bias=False)
    torch.manual_seed(5)
    assert torch.equal(DropConnectLinear(7, 4, bias=False).weight, ref.weight)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"in_features": 0}, "in_features=0 is invalid: expected a positive int"),
        ({"in_features": 2.0}, "in_features=2.0 is invalid: expected a positive int"),
        ({"out_features": 0}, "out_features=0 is invalid: expected a positive int"),
        ({"out_features": 1.5}, "out_features=1.5 is invalid: expected a positive int"),
        ({"p": 1.0}, "p=1.0 is invalid: expected a probability in [0, 1)"),
        ({"p": -0.1}, "p=-0.1 is invalid: expected a probability in [0, 1)"),
        ({"p": "0.5"}, "p='0.5' is invalid: expected a probability in [0, 1)"),
        ({"samples": 0}, "samples=0 is invalid: expected a positive int"),
        ({"samples": 2.0}, "samples=2.0 is invalid: expected a positive int"),
        ({"max_mask_elements": 0}, "max_mask_elements=0 is invalid: expected a positive int"),
        ({"max_mask_elements": 4.0}, "max_mask_elements=4.0 is invalid: expected a positive int"),
        ({"masks": "byte"}, "masks='byte' is invalid: expected one of bits, float"),
    ],
)
def test_invalid_inputs_and_their_messages(kwargs, message):
    args = {"in_features": 3, "out_features": 2, **kwargs}
    i, o = args.pop("in_features"), args.pop("out_features")
    with pytest.raises(ValueError) as err:
        DropConnectLinear(i, o, **args)
    assert str(err.value) == message


def test_valid_edges_are_accepted():
    DropConnectLinear(1, 1, 0.0, samples=1, max_mask_elements=1)
    DropConnectLinear(1, 1, 0, masks="float")


# ---------------------------------------------------------------- masks and pre-activations
@pytest.mark.parametrize("bias, drop_bias", [(True, True), (True, False), (False, True)])
def test_masks_are_rand_below_keep(bias, drop_bias):
    layer = _layer(3, 4, 0.3, bias=bias, drop_bias=drop_bias)
    like = torch.zeros(5, 4, 3, dtype=D)
    torch.manual_seed(2)
    mask, bias_mask = layer._masks(like)
    torch.manual_seed(2)
    want = (torch.rand(5, 4, 3, dtype=D) < 0.7).to(D)
    want_b = (torch.rand(5, 4, dtype=D) < 0.7).to(D)
    assert mask.dtype == D and torch.equal(mask, want)
    if bias and drop_bias:
        assert bias_mask is not None and bias_mask.dtype == D and torch.equal(bias_mask, want_b)
    else:
        assert bias_mask is None


def test_preactivation_is_the_mean_weights():
    layer = _layer(2, 3, 0.25)
    with torch.no_grad():
        layer.weight.copy_(W)
        layer.bias.copy_(B)
    x = V.reshape(1, 2, 2)  # (..., in)
    want = 0.75 * _t([-3.0, 8.5, 5.0], [-7.0, 11.5, 0.0]) + 0.75 * B
    assert torch.allclose(layer.preactivation(x), want.reshape(1, 2, 3), rtol=0, atol=1e-14)
    layer.drop_bias = False
    want = 0.75 * _t([-3.0, 8.5, 5.0], [-7.0, 11.5, 0.0]) + B
    assert torch.allclose(layer.preactivation(V), want, rtol=0, atol=1e-14)
    layer.bias = None
    assert torch.equal(layer.preactivation(V), 0.75 * _t([-3.0, 8.5, 5.0], [-7.0, 11.5, 0.0]))


def test_deterministic_context_restores_and_yields_the_layer():
    layer = _layer(2, 3, 0.4, activation="tanh")
    x = V
    with layer.deterministic() as same:
        assert same is layer and layer._deterministic is True
        with layer.deterministic():
            pass
        assert layer._deterministic is True  # the inner context restored the outer state
        torch.manual_seed(0)
        a = layer(x)
        assert torch.equal(a, torch.tanh(layer.preactivation(x)))  # train mode, no mask
        assert torch.equal(layer.eval()(x), a)  # eval mode, no sampling
    assert layer._deterministic is False
    with pytest.raises(RuntimeError), layer.deterministic():
        raise RuntimeError
    assert layer._deterministic is False


def test_p_zero_trains_as_linear_and_infers_a_of_mu():
    layer = _layer(3, 2, 0.0, activation="tanh")
    x = torch.randn(4, 3, dtype=D)
    want = torch.tanh(nn.functional.linear(x, layer.weight, layer.bias))
    torch.manual_seed(0)
    assert torch.equal(layer.train()(x), want)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))  # no mask was drawn
    torch.manual_seed(0)
    assert torch.allclose(layer.eval()(x), want, rtol=0, atol=1e-15)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))  # no Gaussian sample was drawn


def test_shared_mask_per_forward_call():
    layer = _layer(3, 8, 0.3, activation="linear", per_example=False)
    x = torch.randn(4, 3, dtype=D)
    torch.manual_seed(7)
    u = layer(x)
    torch.manual_seed(7)
    m = (torch.rand(8, 3, dtype=D) < 0.7).to(D)
    mb = (torch.rand(8, dtype=D) < 0.7).to(D)
    assert 0 < mb.sum() < 8  # some biases dropped, some kept
    assert torch.equal(u, x @ (m * layer.weight).T + mb * layer.bias)


def _float_draws(layer, x, step):
    """The float path written out: chunks of ``step`` examples, rand < 1 - p per chunk."""
    out, inn = layer.weight.shape
    keep = 1 - layer.p
    ms, mbs = [], []
    for lo in range(0, x.shape[0], step):
        c = min(step, x.shape[0] - lo)
        ms.append((torch.rand(c, out, inn, dtype=x.dtype) < keep).to(D))
        if layer.bias is not None and layer.drop_bias:
            mbs.append((torch.rand(c, out, dtype=x.dtype) < keep).to(D))
    return torch.cat(ms), (torch.cat(mbs) if mbs else None)


@pytest.mark.parametrize("masks", ["float", "bits"])
@pytest.mark.parametrize(
    "max_elements, step", [(2**24, 7), (4, 1), (7, 1), (8, 2), (13, 3), (16, 4)]
)
@pytest.mark.parametrize("drop_bias", [True, False])
def test_per_example_masks_chunk_by_chunk(masks, max_elements, step, drop_bias):
    # out * (in + 1) = 4 mask entries per example: a chunk holds max_elements // 4 examples
    layer = _layer(3, 1, 0.3, activation="linear", masks=masks, max_mask_elements=max_elements,
                   drop_bias=drop_bias)  # fmt: skip
    x = torch.randn(7, 3, dtype=D)
    torch.manual_seed(4)
    u = layer(x)
    torch.manual_seed(4)
    m, mb = _float_draws(layer, x, step)
    want = masked_preactivation(x, layer.weight, layer.bias, m, mb)
    assert torch.allclose(u, want, rtol=0, atol=1e-14)


def test_bits_at_one_half_are_fair_words():
    layer = _layer(33, 2, 0.5, activation="linear")
    x = torch.randn(3, 33, dtype=D)
    torch.manual_seed(9)
    u = layer(x)
    torch.manual_seed(9)
    words = K.random_words((3, 2, 33), "cpu")
    mb = (torch.rand(3, 2) < 0.5).to(D)
    m = K.unpack_mask(words, 33).to(D)
    assert words.shape == (3, 2, 2)
    want = masked_preactivation(x, layer.weight, layer.bias, m, mb)
    assert torch.allclose(u, want, rtol=0, atol=1e-13)
    layer.drop_bias = False
    torch.manual_seed(9)
    u = layer(x)
    torch.manual_seed(9)
    m = K.unpack_mask(K.random_words((3, 2, 33), "cpu"), 33).to(D)
    assert torch.allclose(u, masked_preactivation(x, layer.weight, layer.bias, m, None),
                          rtol=0, atol=1e-13)  # fmt: skip
    layer.bias = None
    torch.manual_seed(9)
    u = layer(x)
    torch.manual_seed(9)
    m = K.unpack_mask(K.random_words((3, 2, 33), "cpu"), 33).to(D)
    assert torch.allclose(u, masked_preactivation(x, layer.weight, None, m, None),
                          rtol=0, atol=1e-13)  # fmt: skip


def test_bits_keep_the_bias_mask_dtype_of_the_weight():
    layer = _layer(3, 2, 0.5, activation="linear").float()
    x = torch.randn(4, 3)
    torch.manual_seed(1)
    assert layer(x).dtype == torch.float32
    layer = _layer(3, 2, 0.3, activation="linear").float()
    assert layer(x).dtype == torch.float32


# ---------------------------------------------------------------- inference
def _gaussian_by_hand(layer, x, step, act):
    mu, var = dropconnect_moments(x, layer.weight, layer.bias, layer.p, drop_bias=layer.drop_bias)
    total = torch.zeros_like(mu)
    for lo in range(0, layer.samples, step):
        z = min(step, layer.samples - lo)
        eps = torch.randn(z, *mu.shape, dtype=mu.dtype)
        total = total + act(mu + var.sqrt() * eps).sum(0)
    return total / layer.samples


@pytest.mark.parametrize(
    "samples, max_elements, step", [(5, 2**24, 5), (5, 6, 1), (5, 12, 2), (5, 13, 2), (3, 1, 1)]
)
def test_gaussian_inference_is_the_sampled_average(samples, max_elements, step):
    # mu has batch * out = 2 * 3 = 6 entries: a chunk holds max_elements // 6 samples (>= 1)
    layer = _layer(4, 3, 0.3, activation="tanh", samples=samples,
                   max_mask_elements=max_elements).eval()  # fmt: skip
    x = torch.randn(2, 4, dtype=D)
    torch.manual_seed(6)
    y = layer(x)
    torch.manual_seed(6)
    want = _gaussian_by_hand(layer, x, step, torch.tanh)
    assert torch.allclose(y, want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("samples, max_elements, step", [(5, 2, 2), (4, 3, 3), (3, 1, 1)])
def test_gaussian_inference_chunks_for_a_single_unit(samples, max_elements, step):
    # mu has one entry: a chunk holds max_elements samples
    layer = _layer(4, 1, 0.3, activation="tanh", samples=samples,
                   max_mask_elements=max_elements).eval()  # fmt: skip
    x = torch.randn(1, 4, dtype=D)
    torch.manual_seed(6)
    y = layer(x)
    torch.manual_seed(6)
    assert torch.allclose(y, _gaussian_by_hand(layer, x, step, torch.tanh), rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    "n_out, samples, max_elements, step", [(1, 40, 40, 40), (1, 40, 20, 20), (17, 3, 17, 1)]
)
def test_gaussian_inference_chunk_sizes_are_visible_in_the_draws(n_out, samples, max_elements,
                                                                 step):  # fmt: skip
    # torch.randn draws of 16 or more numbers depend on how they are chunked (not below 16)
    layer = _layer(3, n_out, 0.3, activation="tanh", samples=samples,
                   max_mask_elements=max_elements).eval()  # fmt: skip
    x = torch.randn(1, 3, dtype=D)
    torch.manual_seed(8)
    y = layer(x)
    torch.manual_seed(8)
    assert torch.allclose(y, _gaussian_by_hand(layer, x, step, torch.tanh), rtol=0, atol=1e-14)
    torch.manual_seed(8)
    other = _gaussian_by_hand(layer, x, step + 1 if step < samples else step // 2, torch.tanh)
    assert not torch.allclose(y, other, rtol=0, atol=1e-14)  # the chunking is observable


@pytest.mark.parametrize("masks", ["float", "bits"])
def test_bias_mask_of_a_single_input(masks):
    layer = _layer(1, 3, 0.3, activation="linear", masks=masks)
    x = torch.randn(4, 1, dtype=D)
    torch.manual_seed(5)
    u = layer(x)
    torch.manual_seed(5)
    m, mb = _float_draws(layer, x, 4)
    assert torch.allclose(u, masked_preactivation(x, layer.weight, layer.bias, m, mb), atol=1e-14)


def test_mean_and_linear_inference_draw_nothing():
    x = torch.randn(2, 4, dtype=D)
    for kw in ({"inference": "mean", "activation": "tanh"}, {"activation": "linear"}):
        layer = _layer(4, 3, 0.3, **kw).eval()
        mu, _ = dropconnect_moments(x, layer.weight, layer.bias, 0.3)
        torch.manual_seed(0)
        y = layer(x)
        assert torch.equal(y, layer.act(mu))
        after = torch.rand(1)
        torch.manual_seed(0)
        assert torch.equal(after, torch.rand(1))  # no random number was drawn


def test_forward_keeps_leading_dimensions():
    layer = _layer(3, 2, 0.3, activation="linear", inference="mean").eval()
    x = torch.randn(2, 5, 3, dtype=D)
    y = layer(x)
    assert y.shape == (2, 5, 2)
    mu, _ = dropconnect_moments(x.reshape(10, 3), layer.weight, layer.bias, 0.3)
    assert torch.equal(y, mu.reshape(2, 5, 2))
    layer.train()
    torch.manual_seed(1)
    y = layer(x)
    torch.manual_seed(1)
    m, mb = _float_draws(layer, x.reshape(10, 3), 10)
    want = masked_preactivation(x.reshape(10, 3), layer.weight, layer.bias, m, mb)
    assert torch.allclose(y, want.reshape(2, 5, 2), rtol=0, atol=1e-14)


def test_training_gaussian_activation_applied_after_the_draw():
    layer = _layer(3, 2, 0.3, activation="relu", masks="float")
    x = 3 * torch.randn(6, 3, dtype=D)
    torch.manual_seed(2)
    y = layer(x)
    torch.manual_seed(2)
    m, mb = _float_draws(layer, x, 6)
    assert torch.equal(y, masked_preactivation(x, layer.weight, layer.bias, m, mb).clamp(min=0))
    assert math.isclose(layer.keep, 0.7)

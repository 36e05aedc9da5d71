"""Per-example DropConnect with packed bit masks (smithing.nn.dropconnect_kernels): the same
function as the materialized float masks (float64, identical masks, gradcheck), and for p = 1/2
(fair random bits, a different draw order) the right moments."""

import pytest
import torch

from smithing.nn.dropconnect import DropConnectLinear, dropconnect_moments, masked_preactivation
from smithing.nn.dropconnect_kernels import (
    dropconnect_packed,
    pack_mask,
    random_words,
    unpack_mask,
)

D = torch.float64


@pytest.mark.parametrize("n", [1, 31, 32, 33, 70])
def test_pack_unpack_round_trip(n):
    g = torch.Generator().manual_seed(n)
    m = torch.rand(3, 4, n, generator=g) < 0.4
    words = pack_mask(m)
    assert words.dtype == torch.int32 and words.shape == (3, 4, (n + 31) // 32)
    assert torch.equal(unpack_mask(words, n), m)


def _case(batch=5, inn=37, out=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(batch, inn, dtype=D, generator=g)
    w = torch.randn(out, inn, dtype=D, generator=g)
    b = torch.randn(out, dtype=D, generator=g)
    m = torch.rand(batch, out, inn, generator=g) < 0.5
    mb = (torch.rand(batch, out, generator=g) < 0.5).to(D)
    return v, w, b, m, mb


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_packed_equals_materialized_masks_with_gradients(compile):
    if compile:
        pytest.importorskip("torch._inductor")
    v, w, b, m, mb = _case()
    leaves = [t.clone().requires_grad_(True) for t in (v, w, b)]
    ref = masked_preactivation(*leaves, m.to(D), mb)  # (M * W) v + m_b * b, float masks
    ref.square().sum().backward()
    ref_grads = [t.grad for t in leaves]
    leaves2 = [t.clone().requires_grad_(True) for t in (v, w, b)]
    u = dropconnect_packed(*leaves2, pack_mask(m), mb, compile=compile)
    u.square().sum().backward()
    torch.testing.assert_close(u, ref, rtol=0, atol=1e-12)
    for got, want in zip((t.grad for t in leaves2), ref_grads):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_gradcheck_float64():
    v, w, b, m, mb = _case(batch=3, inn=5, out=2)
    words = pack_mask(m)
    args = tuple(t.clone().requires_grad_(True) for t in (v, w, b))
    assert torch.autograd.gradcheck(
        lambda v, w, b: dropconnect_packed(v, w, b, words, mb, compile=False), args
    )


def test_fair_random_bits():
    words = random_words((200, 50, 64), "cpu", torch.Generator().manual_seed(0))
    bits = unpack_mask(words, 64).double()  # 640,000 Bernoulli(1/2)
    assert abs(bits.mean().item() - 0.5) < 4 * 0.5 / 800  # 4 sigma
    # every bit position of the word is fair (no stuck sign or low bit)
    per_position = bits.reshape(-1, 64).mean(0)
    assert (per_position - 0.5).abs().max().item() < 5 * 0.5 / (10000**0.5)


@pytest.mark.parametrize("drop_bias", [True, False])
def test_half_drop_moments_match_exact(drop_bias):
    """p = 1/2 draws fair bits (not the float path's numbers): the sample mean and variance
    of u over many draws match Wan et al.'s exact moments (Sec. 3)."""
    torch.manual_seed(0)
    layer = DropConnectLinear(40, 6, 0.5, activation="linear", drop_bias=drop_bias).to(D)
    v = torch.randn(1, 40, dtype=D)
    n = 20000
    with torch.no_grad():
        u = layer.preactivation_train(v.expand(n, 40))  # (n, out): one mask per row
    mu, var = dropconnect_moments(v, layer.weight, layer.bias, 0.5, drop_bias=drop_bias)
    se_mean = (var / n).sqrt()
    assert ((u.mean(0) - mu[0]).abs() < 5 * se_mean[0]).all()
    # the sample variance's standard error for a sum of many Bernoullis ~ var * sqrt(2 / n)
    assert ((u.var(0) - var[0]).abs() < 5 * var[0] * (2 / n) ** 0.5).all()
    assert not torch.allclose(u[0], u[1])  # one mask per example


def test_bits_and_float_layers_train_the_same_function():
    """p = 0.3: the bit path draws the float path's masks, so one training step gives the
    same parameters."""
    torch.manual_seed(1)
    a = DropConnectLinear(30, 7, 0.3, masks="float").to(D)
    b = DropConnectLinear(30, 7, 0.3, masks="bits").to(D)
    b.load_state_dict(a.state_dict())
    x = torch.randn(9, 30, dtype=D)
    for layer in (a, b):
        torch.manual_seed(5)
        layer(x).square().sum().backward()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=0, atol=1e-12)


def test_bf16_inputs_meet_fp32_weights():
    layer = DropConnectLinear(8, 4, 0.5)
    x = torch.randn(3, 8).bfloat16()
    out = layer(x)
    assert out.dtype == torch.float32 and out.shape == (3, 4)


def test_bad_mask_format_names_the_choices():
    with pytest.raises(ValueError, match="masks.*bits, float"):
        DropConnectLinear(3, 2, 0.5, masks="bytes")

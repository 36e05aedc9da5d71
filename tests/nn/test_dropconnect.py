import itertools

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from smithing.nn.dropconnect import DropConnectLinear, dropconnect_moments, masked_preactivation
from smithing.nn.dropout import mc_predict

D = torch.float64


def _layer(i, o, p, seed=0, **kw):
    torch.manual_seed(seed)
    return DropConnectLinear(i, o, p, **kw).to(D)


def _exact_moments(layer, v, drop_bias):
    """E[u] and Var[u] by enumerating every mask of a tiny layer (float64)."""
    out, inn = layer.weight.shape
    nb = out if drop_bias else 0
    mean = torch.zeros(v.shape[0], out, dtype=D)
    second = torch.zeros_like(mean)
    keep = 1 - layer.p
    for bits in itertools.product([0.0, 1.0], repeat=out * inn + nb):
        b = torch.tensor(bits, dtype=D)
        m, mb = b[: out * inn].reshape(out, inn), (b[out * inn :] if drop_bias else None)
        prob = (b * keep + (1 - b) * layer.p).prod()  # P(mask), float64
        u = masked_preactivation(v, layer.weight, layer.bias, m, mb)  # (batch, out)
        mean += prob * u
        second += prob * u**2
    return mean, second - mean**2


@pytest.mark.parametrize("drop_bias", [True, False])
def test_moments_equal_enumeration_of_all_masks(drop_bias):
    layer = _layer(3, 2, 0.3, drop_bias=drop_bias)
    v = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=D)
    mean, var = _exact_moments(layer, v, drop_bias)
    mu, sigma2 = dropconnect_moments(v, layer.weight, layer.bias, layer.p, drop_bias=drop_bias)
    assert torch.allclose(mu, mean, rtol=0, atol=1e-13)
    assert torch.allclose(sigma2, var, rtol=0, atol=1e-13)
    with torch.no_grad():
        lin = _layer(3, 2, 0.3, activation="linear", inference="mean", drop_bias=drop_bias).eval()
        assert torch.allclose(lin(v), mean, rtol=0, atol=1e-13)  # the mean rule is E[u]
        relu = _layer(3, 2, 0.3, activation="relu", inference="mean", drop_bias=drop_bias).eval()
        assert torch.allclose(relu(v), mean.clamp(min=0), rtol=0, atol=1e-13)


@pytest.mark.parametrize(
    "p, masks", [(0.5, "float"), (0.3, "float"), (0.3, "bits")], ids=["float", "float-p.3", "bits"]
)
def test_training_forward_uses_per_example_masks(p, masks):
    # the float path, and the bit path for p != 1/2, draw M = rand < 1 - p chunk by chunk
    keep = 1 - p
    layer = _layer(6, 4, p, activation="linear", masks=masks)
    v = torch.randn(1, 6, dtype=D).repeat(5, 1)  # identical examples
    torch.manual_seed(3)
    u = layer(v)
    torch.manual_seed(3)
    m = (torch.rand(5, 4, 6, dtype=D) < keep).to(D)  # same draws as the layer's rand_like
    mb = (torch.rand(5, 4, dtype=D) < keep).to(D)
    ref = torch.einsum("boi,oi,bi->bo", m, layer.weight, v) + mb * layer.bias
    assert torch.allclose(u, ref, rtol=0, atol=1e-13)
    assert not torch.allclose(u[0], u[1])  # one mask per example
    u.sum().backward()
    assert layer.weight.grad is not None
    shared = _layer(6, 4, p, activation="linear", per_example=False, masks=masks)(v)
    assert torch.allclose(shared[0], shared[1])  # one mask per call
    # chunking the batch for memory: chunks of 2 examples (60 // (4 * 7)), masks drawn per chunk
    small = _layer(6, 4, p, activation="linear", max_mask_elements=60, masks=masks)
    torch.manual_seed(3)
    u_small = small(v)
    torch.manual_seed(3)
    parts = []
    for lo in range(0, 5, 2):
        c = min(2, 5 - lo)
        m = (torch.rand(c, 4, 6, dtype=D) < keep).to(D)
        mb = (torch.rand(c, 4, dtype=D) < keep).to(D)
        parts.append(masked_preactivation(v[lo : lo + c], small.weight, small.bias, m, mb))
    assert torch.allclose(u_small, torch.cat(parts), rtol=0, atol=1e-13)


def test_gaussian_inference_matches_monte_carlo_average():
    torch.manual_seed(0)
    layer = DropConnectLinear(100, 5, 0.5, activation="relu", samples=20_000).to(D)
    v = torch.rand(1, 100, dtype=D)
    with torch.no_grad():
        layer.train()
        mc = layer(v.expand(20_000, 100)).mean(dim=0)  # E[relu((M*W)v + m_b b)] by sampling
        layer.eval()
        gauss = layer(v)[0]
        layer.inference = "mean"
        mean_rule = layer(v)[0]
    scale = mc.abs().max()
    assert (gauss - mc).abs().max() < 0.03 * scale
    assert (mean_rule - mc).abs().max() > 3 * (gauss - mc).abs().max()  # a(E[u]) != E[a(u)]


def test_linear_activation_gaussian_is_mean_exactly():
    layer = _layer(5, 3, 0.4, activation="linear").eval()
    v = torch.randn(2, 5, dtype=D)
    mu, _ = dropconnect_moments(v, layer.weight, layer.bias, 0.4)
    assert torch.equal(layer(v), mu)


def test_vmap_members_draw_different_masks():
    torch.manual_seed(0)
    base = DropConnectLinear(5, 3, 0.5, activation="tanh")
    params, buffers = stack_module_state([base, base, base])
    x = torch.randn(4, 5)

    def f(pa, bu, xx):
        return functional_call(base, (pa, bu), (xx,))

    out = vmap(f, in_dims=(0, 0, None), randomness="different")(params, buffers, x)
    assert out.shape == (3, 4, 3)
    assert not torch.allclose(out[0], out[1])
    # the difference is the masks alone: the same draws give identical members
    same = vmap(f, in_dims=(0, 0, None), randomness="same")(params, buffers, x)
    assert torch.equal(same[0], same[1]) and torch.equal(same[1], same[2])
    assert not torch.allclose(same[0], base.eval()(x))  # a sampled mask, not the inference


def test_mc_predict_activates_dropconnect_and_validation():
    torch.manual_seed(0)
    model = nn.Sequential(DropConnectLinear(4, 6, 0.5), nn.Linear(6, 3)).eval()
    s = mc_predict(model, torch.randn(2, 4), samples=4, return_samples=True)
    assert s.shape == (4, 2, 3) and not torch.allclose(s[0], s[1])
    assert not model[0].training
    with pytest.raises(ValueError, match=r"p=1.0 is invalid: expected a probability in \[0, 1\)"):
        DropConnectLinear(3, 2, 1.0)
    with pytest.raises(ValueError, match=r"unknown DropConnect inference 'median'"):
        DropConnectLinear(3, 2, 0.5, inference="median")
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'"):
        DropConnectLinear(3, 2, 0.5, activation="rleu")

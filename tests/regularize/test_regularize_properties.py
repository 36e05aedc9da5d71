"""Defining properties of the pruning masks not pinned elsewhere, each checked so that
breaking it fails.

Each test's docstring names the one-line source mutation it was verified to catch.
"""

from __future__ import annotations

import torch
from torch import nn

from smithing.regularize.prune import PruneMask

D = torch.float64


def _layer_and_mask():
    torch.manual_seed(0)
    layer = nn.Linear(4, 3).to(D)
    keep = torch.rand(3, 4, generator=torch.Generator().manual_seed(1)) < 0.5
    return layer, PruneMask({"weight": keep}), keep


def test_prune_mask_grad_zeroes_exactly_the_pruned_gradients():
    """PruneMask.apply_grad_: the gradients of pruned weights become 0, the others unchanged
    (so momentum buffers never grow at pruned positions).

    Catches: ``g.masked_fill_(~m, 0)`` -> ``pass`` in ``apply_grad_``.
    """
    layer, mask, keep = _layer_and_mask()
    g = torch.randn(3, 4, generator=torch.Generator().manual_seed(2), dtype=D)
    layer.weight.grad = g.clone()
    layer.bias.grad = torch.ones(3, dtype=D)
    mask.apply_grad_(layer)
    assert torch.equal(layer.weight.grad, torch.where(keep, g, torch.zeros_like(g)))
    assert torch.equal(layer.bias.grad, torch.ones(3, dtype=D))  # not in the mask: untouched


def test_pruned_weights_stay_zero_and_momentum_buffer_stays_zero_there():
    """Pruning with a mask attached to a momentum optimizer, gradients masked before each
    step: pruned weights are exactly 0 after every step and the momentum buffer is 0 at the
    pruned positions; kept weights train.

    Catches: ``masked_fill_(~m, 0)`` -> ``pass`` in ``apply_`` or in ``apply_grad_``.
    """
    layer, mask, keep = _layer_and_mask()
    w0 = layer.weight.detach().clone()
    opt = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    mask.attach(opt, layer)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(3), dtype=D)
    for _ in range(3):
        opt.zero_grad()
        layer(x).square().sum().backward()
        mask.apply_grad_(layer)
        opt.step()
        assert torch.equal(layer.weight[~keep], torch.zeros_like(layer.weight[~keep]))
    buf = opt.state[layer.weight]["momentum_buffer"]
    assert torch.equal(buf[~keep], torch.zeros_like(buf[~keep]))
    assert not torch.allclose(layer.weight[keep], w0[keep])

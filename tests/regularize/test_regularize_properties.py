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


def test_fit_keeps_no_optimizer_state_where_a_weight_is_pruned():
    """Through ``fit(regularizer=mask)`` the momentum buffer of a pruned weight stays 0 (fails
    when the mask zeroes only the weights after each step, not their gradients before it),
    and the kept weights train exactly as with the weights-only mask."""
    import copy

    import torch

    from smithing.data import Dataset, Split
    from smithing.nn import MLP
    from smithing.regularize import PruneMask
    from smithing.train import fit

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    y = (x[:, 0] > 0).long()
    data = Dataset(
        "toy", Split(x, y), Split(x[:16], y[:16]), Split(x[:16], y[:16]), n_classes=2,
        input_shape=(6,),
    )  # fmt: skip
    torch.manual_seed(0)
    model = MLP(6, [5], 2, "tanh")
    masks = {n: torch.rand(p.shape, generator=g) > 0.5 for n, p in model.named_parameters()
             if n.endswith("weight")}  # fmt: skip
    twin = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    fit(model, data, epochs=3, batch_size=16, optimizer=opt, regularizer=PruneMask(masks))
    named = dict(model.named_parameters())
    for name, m in masks.items():
        buf = opt.state[named[name]]["momentum_buffer"]
        assert torch.all(buf[~m] == 0), name
        assert torch.all(named[name][~m] == 0), name

    class WeightsOnly(PruneMask):  # the mask as it was: after_step only
        before_step = None

    opt2 = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    fit(twin, data, epochs=3, batch_size=16, optimizer=opt2, regularizer=WeightsOnly(masks))
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)

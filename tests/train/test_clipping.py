"""smithing.train.clipping: equal to torch when finite; non-finite gradients are reported."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.func import stack_module_state

from smithing.nn import MLP
from smithing.train.clipping import (
    NonFiniteGradientError,
    clip_grad_norm,
    clip_grad_norm_per_member,
    clip_grad_value,
)
from smithing.train.diagnostics import NonFiniteGradientWarning


def model_with_grads(seed=0, scale=1.0):
    torch.manual_seed(seed)
    model = MLP(6, (5,), 3, "tanh")
    for p in model.parameters():
        p.grad = torch.randn(p.shape) * scale
    return model


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_equals_torch(max_norm):
    a, b = model_with_grads(), model_with_grads()
    report = clip_grad_norm(a, max_norm)
    ref = torch.nn.utils.clip_grad_norm_(b.parameters(), max_norm)
    assert report.total_norm == pytest.approx(ref.item())
    assert report.clipped == (ref.item() > max_norm)
    assert report.nonfinite_layers == [] and report.finite
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)


def test_clip_grad_value_equals_torch():
    a, b = model_with_grads(), model_with_grads()
    report = clip_grad_value(a.parameters(), 0.5)
    torch.nn.utils.clip_grad_value_(b.parameters(), 0.5)
    assert report.clipped
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)


def test_nan_gradient_reported_by_layer_name():
    model = model_with_grads()
    model.net[3].weight.grad[1, 2] = float("nan")
    before = [p.grad.clone() for p in model.parameters()]
    with pytest.raises(NonFiniteGradientError, match=r"net\.3\.weight") as err:
        clip_grad_norm(model, 1.0)
    assert err.value.names == ["net.3.weight"]
    for p, g in zip(model.parameters(), before, strict=True):  # untouched
        assert torch.equal(p.grad, g) or torch.isnan(g).any()
    with pytest.warns(NonFiniteGradientWarning, match=r"net\.3\.weight"):
        report = clip_grad_norm(model, 1.0, on_nonfinite="warn")
    assert report.nonfinite_layers == ["net.3.weight"] and not report.clipped
    report = clip_grad_norm(model, 1.0, on_nonfinite="skip")
    assert report.skipped and all(p.grad is None for p in model.parameters())


def test_skip_makes_optimizer_step_a_noop():
    model = model_with_grads()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    model.net[1].bias.grad[0] = float("inf")
    before = copy.deepcopy(model.state_dict())
    clip_grad_norm(model, 1.0, on_nonfinite="skip")
    opt.step()
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_clip_grad_value_reports_inf_instead_of_clamping_it():
    model = model_with_grads()
    model.net[1].weight.grad[0, 0] = float("-inf")
    with pytest.raises(NonFiniteGradientError, match=r"net\.1\.weight"):
        clip_grad_value(model, 1.0)


def test_names_for_plain_tensors_and_overflow():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.tensor([1.0, float("nan"), 0.0])
    with pytest.raises(NonFiniteGradientError, match="my_w"):
        clip_grad_norm([p], 1.0, names=["my_w"])
    q = torch.zeros(2, requires_grad=True)
    q.grad = torch.tensor([3e38, 3e38])  # finite, but the float32 norm overflows
    report = clip_grad_norm([q], 1.0)
    assert report.finite and report.clipped
    assert torch.isfinite(q.grad).all() and torch.linalg.norm(q.grad.double()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="max_norm=0 is invalid"):
        clip_grad_norm([q], 0)
    with pytest.raises(ValueError, match="on_nonfinite='zero' is invalid"):
        clip_grad_norm([q], 1.0, on_nonfinite="zero")


def stacked_with_grads(members=4, seed=0):
    torch.manual_seed(seed)
    models = [MLP(6, (5,), 3, "tanh") for _ in range(members)]
    params, _ = stack_module_state(models)
    for i, p in enumerate(params.values()):
        scale = torch.tensor([0.01, 1.0, 10.0, 3.0])[:members].reshape(-1, *([1] * (p.dim() - 1)))
        p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(i)) * scale
    return params


def test_per_member_equals_clipping_each_member_separately():
    params = stacked_with_grads()
    grads = {k: p.grad.clone() for k, p in params.items()}
    max_norm = torch.tensor([1.0, 1.0, 2.0, 50.0])
    report = clip_grad_norm_per_member(params, max_norm)
    for m in range(4):
        alone = [nn.Parameter(torch.zeros_like(g[m])) for g in grads.values()]
        for a, g in zip(alone, grads.values(), strict=True):
            a.grad = g[m].clone()
        ref = torch.nn.utils.clip_grad_norm_(alone, float(max_norm[m]))
        assert report.total_norm[m].item() == pytest.approx(ref.item(), rel=1e-6)
        assert bool(report.clipped[m]) == (ref.item() > max_norm[m])
        for a, p in zip(alone, params.values(), strict=True):
            torch.testing.assert_close(p.grad[m], a.grad, rtol=1e-6, atol=0)
    assert report.clipped.tolist() == [False, True, True, False]


def test_per_member_nonfinite_member_is_isolated():
    params = stacked_with_grads()
    params["net.3.weight"].grad[2, 0, 0] = float("nan")
    ok = {k: p.grad[[0, 1, 3]].clone() for k, p in params.items()}
    with pytest.raises(NonFiniteGradientError, match=r"member\(s\) \[2\].*net\.3\.weight"):
        clip_grad_norm_per_member(params, 1.0)
    report = clip_grad_norm_per_member(params, 1.0, on_nonfinite="skip")
    assert report.nonfinite_members == [2] and report.nonfinite_layers == ["net.3.weight"]
    assert report.skipped
    for p in params.values():
        assert (p.grad[2] == 0).all()
    # the finite members were clipped exactly as without the bad one
    tensors = []
    for v in ok.values():
        t = torch.zeros_like(v, requires_grad=True)
        t.grad = v.clone()
        tensors.append(t)
    clip_grad_norm_per_member(tensors, 1.0)
    for t, p in zip(tensors, params.values(), strict=True):
        torch.testing.assert_close(p.grad[[0, 1, 3]], t.grad)

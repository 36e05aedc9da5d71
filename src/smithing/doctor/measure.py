"""The doctor's measurements of a model at its current weights: the layers in forward order with
their weight's matching rule and their activation statistics, the gradient norms over a few
batches (:class:`~smithing.train.diagnostics.GradientMonitor`, no optimizer step), and the
first / last gradient ratio of copies re-initialized with another rule (the what-ifs)."""

from __future__ import annotations

import copy
import math
import statistics
import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from smithing import init as _init
from smithing._registry import check
from smithing.doctor.diagnosis import LAYERS, SATURATING, LayerReport
from smithing.doctor.initmatch import match_initializer
from smithing.nn.activations import ACTIVATIONS
from smithing.train.diagnostics import GradientMonitor, activation_stats, is_activation

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _default_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if not y.is_floating_point():
        return F.cross_entropy(out, y)
    return F.mse_loss(out, y.reshape(out.shape))


def _activation_name(module: nn.Module) -> str | None:
    for entry in ACTIVATIONS.entries():
        if type(entry.obj.module()) is type(module):
            return entry.name
    return type(module).__name__.lower()


def _forward_order(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """The layers and activation modules in the order one forward pass calls them."""
    order: list[tuple[str, nn.Module]] = []
    watched = [
        (n, m)
        for n, m in model.named_modules()
        if n and (isinstance(m, LAYERS) or is_activation(m))
    ]

    def make(name, module):
        def hook(*_):
            if all(name != n for n, _ in order):
                order.append((name, module))

        return hook

    handles = [m.register_forward_hook(make(n, m)) for n, m in watched]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return order


def _split(x, y, batch_size):
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]


def _with_relu(model: nn.Module) -> nn.Module | None:
    """A copy of ``model`` with every saturating activation module replaced by ``nn.ReLU``."""
    net = copy.deepcopy(model)
    swapped = 0
    for name, module in list(net.named_modules()):
        if name and is_activation(module) and _activation_name(module) in SATURATING:
            parent_name, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent_name), child, nn.ReLU())
            swapped += 1
    return net if swapped else None


def _ratio_after(model, rule, x, y, loss_fn, layers, activation) -> float | None:
    """The first / last gradient-norm ratio of a copy of ``model`` re-initialized with ``rule``
    (``"relu+he_normal"``: its saturating activations replaced by ReLU, then He's rule)."""
    if rule == "relu+he_normal":
        net = _with_relu(model)
        if net is None:
            return None
        rule = "he_normal"
    else:
        net = copy.deepcopy(model)
    try:
        kwargs = {"data": x} if rule == "lsuv" else {}
        device = next(net.parameters()).device
        g = torch.Generator(device=device).manual_seed(0)  # on the weights' device
        _init.apply(net, rule, generator=g, layers=layers, **kwargs)
    except (ValueError, RuntimeError, TypeError):
        return None
    with GradientMonitor(net, layers=layers, activations=False, warn=False) as mon:
        net.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        mon.record(0)
    vals = [r["value"] for r in mon.table(layer="global", stat="first_last_ratio")]
    return vals[0] if vals else None


def measure_layers(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    batch_size: int,
    steps: int,
    vanishing_ratio: float,
) -> tuple[list[LayerReport], GradientMonitor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The layers' reports (weights, activation statistics, mean gradient norms) in forward
    order, the (detached) monitor of the gradients and the batches it saw; ``model`` is
    measured in eval mode and left in its mode, its gradients reset to None."""
    was_training = model.training
    model.eval()
    try:
        order = _forward_order(model, x[:batch_size])
        layer_mods = [
            (n, m)
            for n, m in order
            if isinstance(m, LAYERS) and getattr(m, "weight", None) is not None
        ]
        check(
            len(layer_mods) > 0, "model", type(model).__name__, "a model with Linear or Conv layers"
        )
        stats = activation_stats(model, x, layers=LAYERS)
        reports: list[LayerReport] = []
        for i, (name, m) in enumerate(layer_mods):
            rep = LayerReport(
                name, type(m).__name__, tuple(m.weight.shape), match_initializer(m.weight)
            )
            s = stats.get(name, {})
            rep.preact_mean, rep.preact_std = s.get("mean"), s.get("std")
            pos = next(j for j, (n, _) in enumerate(order) if n == name)
            nxt = layer_mods[i + 1][0] if i + 1 < len(layer_mods) else None
            for n2, m2 in order[pos + 1 :]:
                if n2 == nxt:
                    break
                if is_activation(m2) and not isinstance(m2, nn.Identity):
                    a = stats.get(n2, {})
                    rep.activation, rep.activation_module = _activation_name(m2), n2
                    rep.act_mean, rep.act_std = a.get("mean"), a.get("std")
                    rep.saturated, rep.dead = a.get("saturated"), a.get("dead")
                    break
            reports.append(rep)
        # gradients at initialization over a few batches (no step)
        chunks = _split(x, y, batch_size)[:steps]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            monitor = GradientMonitor(
                model, layers=LAYERS, vanishing_ratio=vanishing_ratio, warn=False
            )
            try:
                with torch.enable_grad():
                    for step, (xb, yb) in enumerate(chunks):
                        model.zero_grad(set_to_none=True)
                        loss_fn(model(xb), yb).backward()
                        monitor.record(step)
            finally:
                monitor.detach()
                model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    for rep in reports:
        rep.grad_norm = mean_over_steps(monitor, rep.name, "weight_grad_norm")
    return reports, monitor, chunks


def mean_over_steps(monitor: GradientMonitor, layer: str, stat: str) -> float | None:
    """The mean of one recorded statistic over the monitor's steps (NaN if one is not finite,
    None if it was never recorded)."""
    vals = [v for _, v in zip(*monitor.series(layer, stat), strict=True)]
    if not vals:
        return None
    if not all(math.isfinite(v) for v in vals):
        return math.nan
    return statistics.fmean(vals)


def what_if(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    first_batch: tuple[torch.Tensor, torch.Tensor],
    loss_fn: LossFn,
    recommended: str | None,
    act: str | None,
) -> dict[str, float | None]:
    """The first / last gradient ratio on copies of ``model`` after the ``recommended`` rule
    (on ``first_batch``), after LSUV (on all of ``x``) and, for a saturating ``act``, after
    swapping its units for ReLU with He's rule; ``model`` is left in its mode."""
    out: dict[str, float | None] = {}
    was_training = model.training
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xb, yb = first_batch
        model.eval()
        try:
            if recommended:
                out[recommended] = _ratio_after(model, recommended, xb, yb, loss_fn, LAYERS, act)
            out["lsuv"] = _ratio_after(model, "lsuv", x, y, loss_fn, LAYERS, act)
            if act in SATURATING:
                out["relu+he_normal"] = _ratio_after(
                    model, "relu+he_normal", xb, yb, loss_fn, LAYERS, act
                )
        finally:
            model.train(was_training)
    return out


__all__ = ["measure_layers", "mean_over_steps", "what_if"]

"""Diagnose any ``nn.Module`` at initialization: measurements, findings, advice.

:func:`diagnose` measures, on a few batches and without changing the model:

* per layer (Linear and convolution layers), in forward order: its weight's std and the
  initialization rule it matches (:func:`~smithing.doctor.match_initializer`), the mean / std
  of its output (pre-activation) and of the activation module after it, the share of saturated
  values (sigmoid, tanh) or of dead units (rectifiers) (:func:`smithing.train.diagnostics.
  activation_stats`);
* the gradient norm of each layer's weight, the first / last layer ratio and the global norm,
  and NaN / inf gradients, over ``steps`` batches (a :class:`~smithing.train.diagnostics.
  GradientMonitor` over backward passes, no optimizer step);
* on copies: the first / last gradient ratio after the initializer recommended for the
  activation and after LSUV (:func:`smithing.init.apply`), and the learning-rate range test
  (:func:`~smithing.doctor.lr_range_test`).

It turns them into :class:`Finding` s (a ``code``, a severity, a message, the advice, the study
that shows the trick). The codes:

| code | when |
|---|---|
| ``non_finite`` | a gradient or activation is NaN or infinite |
| ``vanishing_gradients`` | first / last gradient-norm ratio < ``vanishing_ratio`` (1e-2) |
| ``exploding_gradients`` | ratio > ``exploding_ratio`` (1e2) or norm > ``exploding_norm`` (1e3) |
| ``saturation`` | a sigmoid / tanh layer has > ``saturation`` (20 %) of its values saturated |
| ``dead_units`` | a rectifier layer has > ``dead`` (25 %) of its units off for the whole batch |
| ``init_mismatch`` / ``init_ok`` | the weights do not / do match the activation's rule |
| ``lr_range`` / ``lr_range_none`` | the range test found a range / found none |
| ``healthy_gradients`` | the ratio is within the thresholds and nothing is non-finite |
"""

from __future__ import annotations

import copy
import math
import statistics
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from smithing import init as _init
from smithing._registry import check
from smithing.doctor.initmatch import InitMatch, match_initializer
from smithing.doctor.lr_range import LRRange, lr_range_test
from smithing.nn.activations import ACTIVATIONS
from smithing.train.diagnostics import GradientMonitor, activation_stats, is_activation

#: the layers measured (those with a weight of at least 2 dimensions)
LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: activation -> (initializer recommended, why, paper)
RECOMMENDED = {
    "relu": ("he_normal", "He et al., ICCV 2015: Var(W) = 2 / fan_in keeps a ReLU net's variance"),
    "leaky_relu": ("he_normal", "He et al., ICCV 2015 (gain sqrt(2 / (1 + a^2)), ~ sqrt 2)"),
    "elu": ("he_normal", "He et al., ICCV 2015 (a rectifier: half the units pass)"),
    "tanh": ("glorot_uniform", "Glorot & Bengio, AISTATS 2010: the normalized initialization"),
    "softsign": ("glorot_uniform", "Glorot & Bengio, AISTATS 2010"),
    "sigmoid": (
        "glorot_uniform",
        "Glorot & Bengio, AISTATS 2010 (who also show sigmoid nets start saturated: tanh or "
        "softsign train better)",
    ),
    "linear": ("lecun_normal", "LeCun et al. 1998: Var(W) = 1 / fan_in"),
    "softplus": ("he_normal", "a smooth rectifier"),
}


@dataclass(frozen=True)
class Finding:
    """One thing the doctor saw: ``code`` (see the module docstring), ``severity`` (``"error"``,
    ``"warning"``, ``"ok"`` or ``"info"``), ``message``, ``advice`` (what to do, with the
    library call), ``layers`` concerned, ``study`` (the ``smithing run`` study that shows it)
    and ``data`` (numbers behind it)."""

    code: str
    severity: str
    message: str
    advice: str = ""
    layers: tuple[str, ...] = ()
    study: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class LayerReport:
    """The measurements of one layer."""

    name: str
    kind: str
    shape: tuple[int, ...]
    init: InitMatch
    activation: str | None = None  # the activation module that follows, by registry name
    activation_module: str | None = None  # its name in the model
    preact_mean: float | None = None
    preact_std: float | None = None
    act_mean: float | None = None
    act_std: float | None = None
    saturated: float | None = None
    dead: float | None = None
    grad_norm: float | None = None


@dataclass
class Diagnosis:
    """What :func:`diagnose` returns: the per-layer measurements, the findings, the range test."""

    model: str
    layers: list[LayerReport]
    findings: list[Finding]
    activation: str | None
    recommended_init: str | None
    first_last_ratio: float | None
    grad_norm: float | None
    lr_range: LRRange | None
    what_if: dict[str, float | None] = field(default_factory=dict)
    n_examples: int = 0
    page: str | None = None  # the HTML file, once written (:func:`smithing.doctor.doctor`)

    @property
    def codes(self) -> list[str]:
        """The findings' codes, in order."""
        return [f.code for f in self.findings]

    def finding(self, code: str) -> Finding | None:
        """The first finding with ``code``, or None."""
        return next((f for f in self.findings if f.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready data."""
        d = asdict(self)
        for layer, rep in zip(d["layers"], self.layers, strict=True):
            layer["init"]["summary"] = rep.init.summary
        return d

    def write_html(self, path) -> str:
        """Write the one self-contained HTML page (:func:`smithing.doctor.write_page`)."""
        from smithing.doctor.page import write_page

        return write_page(self, path)


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


#: the saturating activations, and what the doctor tries instead of them on a copy
SATURATING = {"sigmoid", "tanh", "softsign"}


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


def diagnose(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 64,
    steps: int = 4,
    activation: str | None = None,
    lr_test: bool = True,
    lr_steps: int = 60,
    optimizer: str = "sgd",
    vanishing_ratio: float = 1e-2,
    exploding_ratio: float = 1e2,
    exploding_norm: float = 1e3,
    saturation: float = 0.2,
    dead: float = 0.25,
) -> Diagnosis:
    """Measure ``model`` on ``batch = (x, y)`` at its current weights and say what to do.

    Args:
        model: any ``nn.Module`` with Linear or convolution layers; it is not changed (its
            gradients are reset to None; the range test and the what-ifs run on copies).
        batch: inputs and targets (integer class labels for a classifier, floats for
            regression); split into batches of ``batch_size``.
        loss_fn: ``loss_fn(model(x), y)``; default cross-entropy for integer ``y``, else mean
            squared error.
        batch_size: the size of the batches the gradients are measured on.
        steps: how many batches the gradient norms are averaged over.
        activation: the hidden activation's registry name, when the model applies it as a
            function (``F.relu``) rather than a module; default: the activation modules seen in
            the forward pass, else ``model.activation``.
        lr_test: run the learning-rate range test (``lr_steps`` steps of ``optimizer``).
        vanishing_ratio, exploding_ratio, exploding_norm, saturation, dead: the thresholds of
            the findings (module docstring).

    Returns:
        a :class:`Diagnosis`.

    Example:
        >>> import torch
        >>> from smithing.doctor import diagnose
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        >>> x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
        >>> d = diagnose(net, (x, y), lr_test=False)
        >>> d.finding("init_mismatch").data["recommended"]  # torch's default is small for ReLU
        'he_normal'
    """
    check(
        isinstance(batch, (tuple, list)) and len(batch) == 2,
        "batch",
        type(batch).__name__,
        "a pair (x, y) of tensors",
    )
    x, y = batch
    check(isinstance(x, torch.Tensor) and x.shape[0] >= 2, "batch", "x", "a tensor of >= 2 inputs")
    check(
        isinstance(y, torch.Tensor) and y.shape[0] == x.shape[0], "batch", "y", "len(y) == len(x)"
    )
    check(isinstance(batch_size, int) and batch_size >= 2, "batch_size", batch_size, "an int >= 2")
    check(isinstance(steps, int) and steps >= 1, "steps", steps, "a positive int")
    loss_fn = loss_fn or _default_loss
    layers_sel = LAYERS
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
        stats = activation_stats(model, x, layers=layers_sel)
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
                model, layers=layers_sel, vanishing_ratio=vanishing_ratio, warn=False
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

    def mean_of(layer, stat):
        vals = [v for _, v in zip(*monitor.series(layer, stat), strict=True)]
        if not vals:
            return None
        if not all(math.isfinite(v) for v in vals):
            return math.nan
        return statistics.fmean(vals)

    for rep in reports:
        rep.grad_norm = mean_of(rep.name, "weight_grad_norm")
    ratio = mean_of("global", "first_last_ratio")
    gnorm = mean_of("global", "grad_norm")

    hidden_acts = [r.activation for r in reports if r.activation]
    act = activation or (max(set(hidden_acts), key=hidden_acts.count) if hidden_acts else None)
    if act is None and isinstance(getattr(model, "activation", None), str):
        act = model.activation
    recommended = RECOMMENDED.get(act, (None, ""))[0] if act else None

    findings: list[Finding] = []
    names_all = tuple(r.name for r in reports)
    # -- non-finite
    bad = [a for a in monitor.alerts if a["kind"] == "NonFiniteGradientWarning"]
    nonfinite_layers = tuple(
        r.name for r in reports if r.grad_norm is not None and not math.isfinite(r.grad_norm)
    )
    if bad or nonfinite_layers:
        findings.append(
            Finding(
                "non_finite",
                "error",
                "non-finite gradients or activations: "
                + (bad[0]["message"] if bad else ", ".join(nonfinite_layers)),
                "check the inputs and the loss for NaN/inf; lower the weights' scale "
                f"(smithing.init.apply(model, {recommended or 'lecun_normal'!r})); clip "
                "gradients with smithing.train.clipping.clip_grad_norm, which refuses to spread "
                "NaN/inf silently (fit(..., clip_norm=...))",
                nonfinite_layers,
                study="vanishing-gradients",
            )
        )
    # -- vanishing / exploding
    first, last = reports[0].name, reports[-1].name
    remedies = []
    if recommended:
        remedies.append(f"smithing.init.apply(model, {recommended!r}) ({RECOMMENDED[act][1]})")
    remedies.append(
        "LSUV, smithing.init.apply(model, 'lsuv', data=x) (Mishkin & Matas, ICLR 2016: "
        "orthogonal, then each layer rescaled to unit pre-activation variance on a batch)"
    )
    if act in SATURATING:
        remedies.append(
            f"replace the {act} units by ReLU with he_normal ({act}'s derivative is at most "
            f"{'1/4' if act == 'sigmoid' else '1'} and shrinks with saturation, so depth "
            "multiplies it away; Glorot & Bengio 2010, He et al. 2015)"
        )
    what_if: dict[str, float | None] = {}
    if len(reports) > 1:
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xb, yb = chunks[0]
            model.eval()
            try:
                if recommended:
                    what_if[recommended] = _ratio_after(
                        model, recommended, xb, yb, loss_fn, layers_sel, act
                    )
                what_if["lsuv"] = _ratio_after(model, "lsuv", x, y, loss_fn, layers_sel, act)
                if act in SATURATING:
                    what_if["relu+he_normal"] = _ratio_after(
                        model, "relu+he_normal", xb, yb, loss_fn, layers_sel, act
                    )
            finally:
                model.train(was_training)
    after = "; ".join(
        f"after {k} on a copy the ratio is {v:.3g}" for k, v in what_if.items() if v is not None
    )
    fixes = [
        k for k, v in what_if.items() if v is not None and vanishing_ratio <= v <= exploding_ratio
    ]
    if what_if:
        after += (
            f"; of these, {' and '.join(fixes)} {'brings' if len(fixes) == 1 else 'bring'} it "
            f"into [{vanishing_ratio:g}, "
            f"{exploding_ratio:g}]"
            if fixes
            else "; none of these alone brings it into the healthy range: fewer layers, or "
            "residual connections / normalization"
        )
    if ratio is not None and math.isfinite(ratio) and len(reports) > 1:
        data = {"first_last_ratio": ratio, "grad_norm": gnorm, "what_if": what_if, "fixes": fixes}
        if ratio < vanishing_ratio:
            findings.append(
                Finding(
                    "vanishing_gradients",
                    "error" if ratio < vanishing_ratio**2 else "warning",
                    f"vanishing gradients: the gradient norm of the first layer ({first!r}) is "
                    f"{ratio:.3g} times the last layer's ({last!r}); the first layers will "
                    "barely learn",
                    "fixes to try: " + "; or ".join(remedies) + (f" ({after})" if after else ""),
                    names_all,
                    study="vanishing-gradients",
                    data=data,
                )
            )
        elif ratio > exploding_ratio or (gnorm is not None and gnorm > exploding_norm):
            findings.append(
                Finding(
                    "exploding_gradients",
                    "error",
                    f"exploding gradients: first / last gradient-norm ratio {ratio:.3g}, "
                    f"global norm {gnorm:.3g}",
                    "clip the global gradient norm (Pascanu et al., ICML 2013: "
                    "smithing.train.clipping.clip_grad_norm(model, max_norm), or "
                    f"fit(..., clip_norm=...); a threshold near the typical norm, here "
                    f"{gnorm:.3g}, scaled down with the weights) and re-initialize: "
                    + "; or ".join(remedies)
                    + (f" ({after})" if after else ""),
                    names_all,
                    study="vanishing-gradients",
                    data=data,
                )
            )
        elif not findings:
            findings.append(
                Finding(
                    "healthy_gradients",
                    "ok",
                    f"gradients flow: first / last gradient-norm ratio {ratio:.3g} "
                    f"(within [{vanishing_ratio:g}, {exploding_ratio:g}]), global norm {gnorm:.3g}",
                    data=data,
                )
            )
    # -- saturation and dead units
    sat = tuple(r.name for r in reports if r.saturated is not None and r.saturated > saturation)
    if sat:
        worst = max(r.saturated for r in reports if r.name in sat)
        findings.append(
            Finding(
                "saturation",
                "warning",
                f"saturated units at initialization in {len(sat)} layer(s) (up to "
                f"{100 * worst:.0f} % of the values past the saturation thresholds)",
                "smaller initial weights for the fan-in: "
                + (f"smithing.init.apply(model, {recommended!r}); " if recommended else "")
                + "or LSUV; or a non-saturating activation (relu + he_normal)",
                sat,
                study="activations",
                data={"worst": worst},
            )
        )
    dead_layers = tuple(r.name for r in reports if r.dead is not None and r.dead > dead)
    if dead_layers:
        worst = max(r.dead for r in reports if r.name in dead_layers)
        findings.append(
            Finding(
                "dead_units",
                "warning",
                f"dead units at initialization in {len(dead_layers)} layer(s): up to "
                f"{100 * worst:.0f} % of the units output 0 for every example of the batch",
                "zero (not negative) biases, smithing.init.apply(model, 'he_normal', bias=0.0); "
                "a leaky_relu; or a smaller learning rate (units die during training too)",
                dead_layers,
                study="activations",
                data={"worst": worst},
            )
        )
    # -- the initializer
    if recommended:
        family = recommended.split("_")[0]
        off = tuple(
            r.name
            for r in reports[:-1] or reports  # the hidden layers (the output layer varies)
            if not (r.init.best or "").startswith(family)
            and not any(a.startswith(family) for a in r.init.also)
        )
        matched = ", ".join(
            sorted({r.init.best or f"no rule (std {r.init.std:.2g})" for r in reports})
        )
        if off:
            findings.append(
                Finding(
                    "init_mismatch",
                    "warning",
                    f"the weights of {len(off)} layer(s) do not match {recommended}, the rule for "
                    f"{act}: they match {matched}",
                    f"smithing.init.apply(model, {recommended!r}) ({RECOMMENDED[act][1]}); or "
                    "LSUV: smithing.init.apply(model, 'lsuv', data=x)",
                    off,
                    study="initialization",
                    data={"recommended": recommended, "matched": matched},
                )
            )
        else:
            findings.append(
                Finding(
                    "init_ok",
                    "ok",
                    f"the weights match {recommended}, the rule for {act} ({RECOMMENDED[act][1]})",
                    study="initialization",
                    data={"recommended": recommended},
                )
            )
    else:
        findings.append(
            Finding(
                "init_unknown_activation",
                "info",
                "no activation module seen: pass activation= to get an initializer recommended",
                data={"matched": [r.init.summary for r in reports]},
            )
        )
    # -- learning-rate range
    lr_range = None
    if lr_test:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lr_range = lr_range_test(
                model, _split(x, y, batch_size), loss_fn, steps=lr_steps, optimizer=optimizer
            )
        if lr_range.found:
            findings.append(
                Finding(
                    "lr_range",
                    "info",
                    f"learning-rate range test ({optimizer}, {len(lr_range.lrs)} steps): the loss "
                    f"falls from lr {lr_range.lower:.2g} and stops falling at {lr_range.upper:.2g}",
                    f"train with {optimizer} at lr in [{lr_range.lower:.2g}, {lr_range.upper:.2g}] "
                    "(Smith, WACV 2017: a cyclical schedule between the two, or a fixed lr a "
                    "little below the upper end); smithing train --lr ... / fit(..., lr=...)",
                    study="optimizer-race",
                    data={"lower": lr_range.lower, "upper": lr_range.upper},
                )
            )
        else:
            findings.append(
                Finding(
                    "lr_range_none",
                    "warning",
                    f"learning-rate range test ({optimizer}): the loss did not fall at any "
                    f"learning rate from 1e-05 to 10 in {len(lr_range.lrs)} steps",
                    "fix the gradient flow first (above); then rerun the doctor",
                    study="optimizer-race",
                )
            )
    return Diagnosis(
        model=type(model).__name__,
        layers=reports,
        findings=findings,
        activation=act,
        recommended_init=recommended,
        first_last_ratio=ratio,
        grad_norm=gnorm,
        lr_range=lr_range,
        what_if=what_if,
        n_examples=int(x.shape[0]),
    )


__all__ = ["LAYERS", "RECOMMENDED", "SATURATING", "Diagnosis", "Finding", "LayerReport", "diagnose"]

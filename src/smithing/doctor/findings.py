"""The doctor's findings from its measurements: one function per group of codes (the codes and
their thresholds are in :mod:`smithing.doctor.diagnose`); each returns the findings in the order
the page shows them."""

from __future__ import annotations

import math

from smithing.doctor.diagnosis import RECOMMENDED, SATURATING, Finding, LayerReport
from smithing.doctor.lr_range import LRRange
from smithing.train.diagnostics import GradientMonitor


def gradient_findings(
    reports: list[LayerReport],
    monitor: GradientMonitor,
    ratio: float | None,
    gnorm: float | None,
    what_if: dict[str, float | None],
    act: str | None,
    recommended: str | None,
    *,
    vanishing_ratio: float,
    exploding_ratio: float,
    exploding_norm: float,
) -> list[Finding]:
    """``non_finite``; then ``vanishing_gradients``, ``exploding_gradients`` or (when nothing
    is non-finite) ``healthy_gradients``, with the remedies and what the ``what_if`` copies
    showed."""
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
    return findings


def unit_findings(
    reports: list[LayerReport], recommended: str | None, *, saturation: float, dead: float
) -> list[Finding]:
    """``saturation`` and ``dead_units``."""
    findings: list[Finding] = []
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
    return findings


def init_findings(
    reports: list[LayerReport], act: str | None, recommended: str | None
) -> list[Finding]:
    """``init_mismatch`` or ``init_ok`` (the hidden layers against ``recommended``), or
    ``init_unknown_activation``."""
    findings: list[Finding] = []
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
    return findings


def lr_range_findings(lr_range: LRRange, optimizer: str) -> list[Finding]:
    """``lr_range`` (the range found) or ``lr_range_none``."""
    findings: list[Finding] = []
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
    return findings


__all__ = ["gradient_findings", "init_findings", "lr_range_findings", "unit_findings"]

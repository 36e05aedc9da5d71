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

import warnings
from collections.abc import Callable

import torch
from torch import nn

from smithing._registry import check
from smithing.doctor.diagnosis import (
    LAYERS,
    RECOMMENDED,
    SATURATING,
    Diagnosis,
    Finding,
    LayerReport,
)
from smithing.doctor.findings import (
    gradient_findings,
    init_findings,
    lr_range_findings,
    unit_findings,
)
from smithing.doctor.lr_range import lr_range_test
from smithing.doctor.measure import (
    _default_loss,
    _split,
    mean_over_steps,
    measure_layers,
    what_if,
)


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
    reports, monitor, chunks = measure_layers(
        model, x, y, loss_fn, batch_size, steps, vanishing_ratio
    )
    ratio = mean_over_steps(monitor, "global", "first_last_ratio")
    gnorm = mean_over_steps(monitor, "global", "grad_norm")

    hidden_acts = [r.activation for r in reports if r.activation]
    act = activation or (max(set(hidden_acts), key=hidden_acts.count) if hidden_acts else None)
    if act is None and isinstance(getattr(model, "activation", None), str):
        act = model.activation
    recommended = RECOMMENDED.get(act, (None, ""))[0] if act else None

    ifs = what_if(model, x, y, chunks[0], loss_fn, recommended, act) if len(reports) > 1 else {}
    findings = gradient_findings(
        reports,
        monitor,
        ratio,
        gnorm,
        ifs,
        act,
        recommended,
        vanishing_ratio=vanishing_ratio,
        exploding_ratio=exploding_ratio,
        exploding_norm=exploding_norm,
    )
    findings += unit_findings(reports, recommended, saturation=saturation, dead=dead)
    findings += init_findings(reports, act, recommended)
    # -- learning-rate range
    lr_range = None
    if lr_test:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lr_range = lr_range_test(
                model, _split(x, y, batch_size), loss_fn, steps=lr_steps, optimizer=optimizer
            )
        findings += lr_range_findings(lr_range, optimizer)
    return Diagnosis(
        model=type(model).__name__,
        layers=reports,
        findings=findings,
        activation=act,
        recommended_init=recommended,
        first_last_ratio=ratio,
        grad_norm=gnorm,
        lr_range=lr_range,
        what_if=ifs,
        n_examples=int(x.shape[0]),
    )


__all__ = ["LAYERS", "RECOMMENDED", "SATURATING", "Diagnosis", "Finding", "LayerReport", "diagnose"]

"""Gradient flow through depth and through time: what reaches each layer and each time step.

Back-propagation multiplies the error signal, layer by layer, by the transposed weights and the
activation's derivative. For a layer ``l`` with pre-activation ``z_l = W_l h_{l-1} + b_l`` and
activation ``h_l = f(z_l)``,

    dL/dz_l = f'(z_l) * (W_{l+1}^T dL/dz_{l+1}),      dL/dW_l = dL/dz_l h_{l-1}^T,

so with ``n`` units per layer and i.i.d. weights the signal's scale changes by about
``sqrt(n Var(W)) E|f'|`` per layer (Bengio, Simard & Frasconi, "Learning long-term dependencies
with gradient descent is difficult", IEEE Trans. Neural Networks 5(2), 1994; Glorot & Bengio,
"Understanding the difficulty of training deep feedforward neural networks", AISTATS 2010).
An Elman RNN does the same through time: ``dL/dh_{t-1} = W_hh^T (f'(a_t) * dL/dh_t)``.

Four measurements, each on one batch and without touching any parameter's ``.grad``:

* :func:`signal_variances`: ``Var(h_l)`` of every activation (forward) and ``Var(dL/dz_l)`` of
  every layer output (backward), the two quantities Glorot & Bengio's fan-in / fan-out rules
  keep constant across layers;
* :func:`gradient_flow`: per-layer weight-gradient norms ``||dL/dW_l||_F`` and activation
  statistics (mean, std, saturation or zeros), optionally with histograms of the activations
  and of ``log10 |dL/dz_l|`` (Glorot & Bengio 2010, figures 6 and 7);
* :func:`log_abs_histogram`: the counts of ``log10 |g|`` on fixed edges;
* :func:`time_lag_gradient_norms`: ``||dL/dh_t||`` for ``t = 1..T`` of a recurrent model.

The per-step version inside a training loop is :class:`~smithing.train.diagnostics.
GradientMonitor`; the one-pass building blocks used here are
:func:`~smithing.train.diagnostics.layer_gradient_norms` and
:func:`~smithing.train.diagnostics.activation_stats`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from smithing._registry import check
from smithing.train.diagnostics.stats import (
    LayerSelector,
    NonFiniteGradientWarning,
    VanishingGradientWarning,
    _select,
    activation_stats,
    is_activation,
    layer_gradient_norms,
)

Loss = Callable[[Tensor, Tensor], Tensor]


def _wide(t: Tensor) -> Tensor:
    """``t`` detached, in float32 at least (float64 stays float64; half precisions widen)."""
    return t.detach().to(torch.promote_types(t.dtype, torch.float32))


def _summed_cross_entropy(out: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(out, y, reduction="sum")  # L = sum_i CE_i: per-example dL/dz


def hidden_activations(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every activation module of ``model``, in module order.

    Activation modules are those of ``torch.nn.modules.activation`` and ``nn.Identity``
    (:func:`~smithing.train.diagnostics.is_activation`); for an :class:`~smithing.nn.MLP` these
    are its hidden layers' activations (``"net.2"``, ``"net.4"``, ...).
    """
    return [(n, m) for n, m in model.named_modules() if n and is_activation(m)]


def signal_variances(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    loss_fn: Loss | None = None,
    layers: LayerSelector = (nn.Linear,),
) -> dict[str, list]:
    """Forward and backward signal variances of ``model`` on the batch ``(x, y)``.

    What it measures, layer by layer in the order the forward pass calls them:

    * ``act_var``: ``Var(h_l)`` of every activation module's output (over examples and units,
      unbiased sample variance as ``Tensor.var``, in the model's dtype or float32 if narrower);
    * ``grad_var``: ``Var(dL/dz_l)`` of the back-propagated gradient of every selected layer's
      output ``z_l`` (Linear layers by default: their pre-activations; the last is the logits);
    * ``z_grads``: those gradients ``dL/dz_l`` themselves, detached ``(batch, units)`` tensors.

    ``L`` is ``loss_fn(model(x), y)``, by default the *summed* cross-entropy
    ``L = sum_i CE(z_i, y_i)``, so that ``dL/dz`` is the per-example gradient (for the logits,
    ``softmax(z_i) - onehot(y_i)``). Glorot & Bengio (AISTATS 2010, eqs. 10-11) keep
    ``Var(h_l)`` constant across layers with ``n_in Var(W) = 1`` and ``Var(dL/dz_l)`` with
    ``n_out Var(W) = 1``; this function shows how far an initialization is from either.

    Args:
        model: any module whose forward calls its layers once each (a layer called several
            times reports its last call).
        x: one batch of inputs.
        y: its targets.
        loss_fn: ``loss_fn(outputs, y) -> scalar``; default summed cross-entropy on logits.
        layers: which layers' outputs count as ``z_l`` (module types or a predicate
            ``(name, module) -> bool``, as in :mod:`smithing.train.diagnostics`).

    Returns:
        ``{"act_var": [float], "grad_var": [float], "z_grads": [Tensor]}``.

    Runs in eval mode (no dropout) with gradients enabled; the model's mode is restored and
    ``.grad`` is left untouched (``torch.autograd.grad``).
    """
    loss_fn = loss_fn or _summed_cross_entropy
    selected = {id(m) for _, m in _select(model, layers)}
    check(len(selected) > 0, "layers", layers, "a selector matching at least one layer")
    acts = {id(m) for _, m in hidden_activations(model)}
    zs: list[Tensor] = []
    hs: list[Tensor] = []

    def hook(module, _inputs, output):
        if not isinstance(output, Tensor):
            return
        if id(module) in selected:
            zs.append(output)  # (batch, units): z_l
        elif id(module) in acts:
            hs.append(output)  # (batch, units): h_l

    handles = [m.register_forward_hook(hook) for _, m in model.named_modules()]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            loss = loss_fn(model(x), y)
            grads = torch.autograd.grad(loss, zs)  # dL/dz_l for every l
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {
        "act_var": [float(_wide(a).var()) for a in hs],  # Var(h_l)
        "grad_var": [float(_wide(g).var()) for g in grads],  # Var(dL/dz_l)
        "z_grads": [g.detach() for g in grads],
    }


def log_abs_histogram(g: Tensor, edges: Sequence[float] | np.ndarray) -> list[float]:
    """Counts of ``log10 |g|`` on the bin ``edges``, over the non-zero finite entries of ``g``.

    ``counts[j] = #{i : edges[j] <= clip(log10 |g_i|, edges[0], edges[-1]) < edges[j + 1]}``
    (the last bin closed, as ``numpy.histogram``): values outside the range land in the first
    or last bin; exact zeros (e.g. the gradients of inactive ReLUs) and non-finite entries are
    left out (count them apart). Glorot & Bengio (2010, figure 7) plot these histograms of the
    back-propagated gradients per layer, on a linear axis; a log axis shows a vanishing gradient
    as a shift of about one decade per layer.

    Args:
        g: any tensor (flattened; the logarithm in its dtype, float32 at least, by NumPy).
        edges: increasing bin edges of ``log10 |g|`` (``len(edges) - 1`` bins).

    Returns:
        the ``len(edges) - 1`` counts as floats.
    """
    edges = np.asarray(edges, dtype=float)
    check(
        edges.ndim == 1 and len(edges) >= 2 and bool(np.all(np.diff(edges) > 0)),
        "edges",
        edges.tolist() if edges.size <= 8 else f"{edges.size} edges",
        "at least two increasing bin edges",
    )
    a = _wide(g).abs().flatten().cpu().numpy()
    a = a[np.isfinite(a) & (a > 0)]  # exact zeros (inactive ReLUs) are counted apart
    la = np.clip(np.log10(a), edges[0], edges[-1])  # log10 |g|, clipped into range
    counts, _ = np.histogram(la, bins=edges)
    return counts.astype(float).tolist()


def gradient_flow(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    loss_fn: Loss | None = None,
    bins: int | None = None,
    log_grad_edges: Sequence[float] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Per-layer gradient-flow measurements of a classifier on the batch ``(x, y)``.

    Returns a dict of per-layer lists, in forward order:

    * ``grad_norm``: ``||dL/dW_l||_F`` for every Linear layer, ``L = loss_fn(model(x), y)``
      (default the *mean* cross-entropy of the batch, as in training;
      :func:`~smithing.train.diagnostics.layer_gradient_norms`);
    * ``act_mean``, ``act_std``: mean and population std of every activation module's output;
    * ``saturated`` (sigmoid: share of values below 0.01 or above 0.99; tanh and softsign:
      ``|a| > 0.99``) or ``zero`` (rectifiers: share of values ``<= 0``), each present only when
      every activation layer has it (:func:`~smithing.train.diagnostics.activation_stats`);
    * with ``bins``: ``act_hist``, per activation layer ``{"counts": [...], "edges": [...]}``
      (``bins`` bins; fixed range [0, 1] for sigmoid, [-1, 1] for tanh);
    * with ``log_grad_edges``: ``log_grad_hist``, per Linear layer the
      :func:`log_abs_histogram` of the per-example gradients ``dL/dz_l`` of the summed
      cross-entropy (:func:`signal_variances`), and ``grad_zero``, their share of exact zeros.

    Args:
        model: a classifier whose hidden layers are Linear + activation modules (an
            :class:`~smithing.nn.MLP`).
        x: one batch of inputs.
        y: its integer targets.
        loss_fn: the loss of ``grad_norm`` (default ``F.cross_entropy``, mean).
        bins: number of activation-histogram bins, or None for no histograms.
        log_grad_edges: bin edges of the ``log10 |dL/dz|`` histograms, or None for none.

    Runs in eval mode (no dropout); the model's mode is restored, ``.grad`` left untouched.
    """
    loss_fn = loss_fn or F.cross_entropy
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            loss = loss_fn(model(x), y)
            norms = layer_gradient_norms(model, loss, retain_graph=False)
        stats = activation_stats(model, x, bins=bins)
    finally:
        model.train(was_training)
    act_names = [n for n, _ in hidden_activations(model)]
    out: dict[str, Any] = {"grad_norm": list(norms.values())}
    for key in ("mean", "std"):
        out[f"act_{key}"] = [stats[n][key] for n in act_names]
    for key in ("saturated", "zero"):
        if act_names and all(key in stats[n] for n in act_names):
            out[key] = [stats[n][key] for n in act_names]
    if bins is not None:
        out["act_hist"] = [
            {"counts": stats[n]["hist"].tolist(), "edges": stats[n]["edges"].tolist()}
            for n in act_names
        ]
    if log_grad_edges is not None:
        gs = signal_variances(model, x, y)["z_grads"]
        out["log_grad_hist"] = [log_abs_histogram(g, log_grad_edges) for g in gs]
        out["grad_zero"] = [float((g == 0).float().mean()) for g in gs]  # share of exact zeros
    return out


class SequenceModel(Protocol):
    """What :func:`time_lag_gradient_norms` needs of a model (e.g. the readouts of
    :mod:`smithing.nn.rnn`): its prediction and every hidden state ``[h_1, ..., h_T]``."""

    def forward_with_states(self, x: Tensor) -> tuple[Tensor, list[Tensor]]: ...


def time_lag_gradient_norms(
    model: SequenceModel,
    x: Tensor,
    y: Tensor,
    loss_fn: Loss | None = None,
    *,
    warn: bool = False,
    vanishing_ratio: float = 1e-3,
) -> Tensor:
    """``||dL/dh_t||_F`` for ``t = 1..T``: a ``(T,)`` tensor (index ``T - 1`` is the last step).

    By back-propagation through time, ``dL/dh_{t-1} = W_hh^T (f'(a_t) * dL/dh_t)`` for an
    Elman RNN ``h_t = f(a_t)``, ``a_t = W_ih x_t + W_hh h_{t-1} + b``, so the norm changes by a
    factor bounded by ``||W_hh||_2 max|f'|`` per step of distance from the end: geometric
    vanishing or exploding (Bengio, Simard & Frasconi, IEEE TNN 1994; Pascanu, Mikolov & Bengio,
    "On the difficulty of training recurrent neural networks", ICML 2013, section 2).

    ``dL/dh_t`` is the *total* derivative through every later step (what a ``retain_grad()`` on
    ``h_t`` would hold after ``backward``), of shape ``(batch, H)``; all ``T`` of them come from
    one ``torch.autograd.grad`` call on the list of states, so parameters' ``.grad`` are left
    untouched.

    Args:
        model: has ``forward_with_states(x) -> (prediction, [h_1, ..., h_T])`` (the readouts of
            :mod:`smithing.nn.rnn` and :class:`~smithing.nn.rnn.ElmanRNN` do), every state a
            node of the autograd graph.
        x: one batch of sequences ``(batch, T, n_in)``.
        y: its targets.
        loss_fn: ``L = loss_fn(prediction, y)``; default by ``model.task``: mean squared error
            for ``"regression"``, cross-entropy for ``"classification"`` (batch means).
        warn: warn (:class:`~smithing.train.diagnostics.NonFiniteGradientWarning`) when a norm
            is not finite, or (:class:`~smithing.train.diagnostics.VanishingGradientWarning`)
            when ``||dL/dh_1|| / ||dL/dh_T|| < vanishing_ratio``.
        vanishing_ratio: the threshold of that warning.

    Returns:
        the ``(T,)`` detached norms; a state the loss does not depend on gets 0.
    """
    if loss_fn is None:
        task = getattr(model, "task", "regression")
        loss_fn = F.cross_entropy if task == "classification" else F.mse_loss
    pred, states = model.forward_with_states(x)
    loss = loss_fn(pred, y)
    grads = torch.autograd.grad(loss, states, allow_unused=True)  # dL/dh_t, each (batch, H)
    norms = torch.stack(
        [torch.linalg.vector_norm(g) if g is not None else loss.new_zeros(()) for g in grads]
    ).detach()  # (T,)
    if warn:
        if not bool(torch.isfinite(norms).all()):
            warnings.warn(
                "non-finite dL/dh_t at steps "
                f"{(~torch.isfinite(norms)).nonzero().flatten().add(1).tolist()}",
                NonFiniteGradientWarning,
                stacklevel=2,
            )
        elif norms[-1] > 0 and float(norms[0] / norms[-1]) < vanishing_ratio:
            warnings.warn(
                f"vanishing gradients through time: ||dL/dh_1|| / ||dL/dh_T|| = "
                f"{float(norms[0] / norms[-1]):.3g} (threshold {vanishing_ratio:g})",
                VanishingGradientWarning,
                stacklevel=2,
            )
    return norms


__all__ = [
    "gradient_flow",
    "hidden_activations",
    "log_abs_histogram",
    "signal_variances",
    "time_lag_gradient_norms",
]

""":class:`GradientMonitor`: per-step gradient-flow records, histograms, warnings and
TensorBoard output from hooks on a training model (see :mod:`smithing.train.diagnostics`)."""

from __future__ import annotations

import math
import warnings
from collections import deque
from typing import Any, cast

import torch
from torch import nn

from smithing._optional import require
from smithing._registry import check
from smithing.train.diagnostics.stats import (
    ExplodingGradientWarning,
    GradientWarning,
    LayerSelector,
    NonFiniteGradientWarning,
    VanishingGradientWarning,
    _activation_kind,
    _activation_tensors,
    _histogram,
    _moments,
    _select,
    is_activation,
)

__all__ = [
    "GradientMonitor",
]

# ----------------------------------------------------------------------------- monitor


class GradientMonitor:
    """Opt-in, cheap gradient-flow monitor for a training loop.

    Usage::

        monitor = GradientMonitor(model, every=10)
        for step, (x, y) in enumerate(batches):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            monitor.record(step)          # or monitor.on_after_backward(step)
            optimizer.step()
        monitor.detach()
        rows = monitor.records            # [{"step", "layer", "stat", "value"}, ...]

    Only every ``every``-th call of :meth:`record` records (the first call always does); on
    other steps the hooks return at once. On a recorded step the forward hooks keep references
    to the outputs (already held by autograd) and the statistics are computed in
    :meth:`record` with one device sync.

    Stats per monitored layer (e.g. ``"net.1"``): ``weight_grad_norm`` (||dL/dW||_F),
    ``bias_grad_norm``, ``weight_norm``, ``preact_mean``/``preact_std`` (its output),
    ``output_grad_norm``/``output_grad_std`` (the back-propagated dL/dz); per activation module
    (e.g. ``"net.2"``): ``act_mean``, ``act_std``, ``saturated`` or ``dead``/``zero``; for
    ``layer="global"``: ``grad_norm`` (the 2-norm over all monitored weights and biases) and
    ``first_last_ratio`` (first layer's weight gradient norm over the last layer's, in forward
    order). With ``histograms=True``, :attr:`histograms` gets ``{"step", "layer", "kind"
    ("activation" | "output_grad"), "counts", "edges"}`` entries (``torch.histc``; fixed ranges
    [0, 1] for sigmoid and [-1, 1] for tanh, the data's range otherwise).

    Detection (each appends to :attr:`alerts` and warns, once per kind unless
    ``warn="always"``; ``warn=False`` only records):

    * :class:`VanishingGradientWarning` when ``first_last_ratio < vanishing_ratio`` (1e-3);
    * :class:`ExplodingGradientWarning` when the global norm exceeds ``exploding_norm`` (off by
      default) or is more than ``exploding_factor`` (100) times the smallest of the previous
      ``window`` (10) recorded norms;
    * :class:`NonFiniteGradientWarning` naming each layer with a NaN/inf gradient or activation.

    TensorBoard: ``tensorboard="runs/exp1"`` (a log directory; needs ``pip install
    'smithing[tensorboard]'``) or ``writer=`` any object with ``add_scalar(tag, value, step)``
    (a ``torch.utils.tensorboard.SummaryWriter``) also writes every recorded row as the scalar
    ``"{layer}/{stat}"`` at its step, and each histogram (``add_histogram``, when the writer
    has it) as ``"{layer}/{kind}"``; :meth:`detach` flushes a writer the monitor created and
    closes it.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        every: int = 1,
        layers: LayerSelector = (nn.Linear,),
        activations: bool = True,
        histograms: bool = False,
        bins: int = 50,
        vanishing_ratio: float = 1e-3,
        exploding_factor: float = 100.0,
        window: int = 10,
        exploding_norm: float | None = None,
        warn: bool | str = "once",
        tensorboard: str | None = None,
        writer: Any = None,
    ) -> None:
        check(isinstance(every, int) and every >= 1, "every", every, "a positive int")
        check(
            tensorboard is None or writer is None,
            "tensorboard",
            tensorboard,
            "None when writer= is given (one or the other)",
        )
        check(
            writer is None or callable(getattr(writer, "add_scalar", None)),
            "writer",
            type(writer).__name__,
            "an object with add_scalar(tag, value, step), e.g. a SummaryWriter",
        )
        self._owns_writer = tensorboard is not None
        if tensorboard is not None:
            require("tensorboard", "GradientMonitor(tensorboard=...)")
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(tensorboard))
        self.writer = writer
        check(isinstance(bins, int) and bins > 0, "bins", bins, "a positive int")
        check(vanishing_ratio >= 0, "vanishing_ratio", vanishing_ratio, "a non-negative number")
        check(exploding_factor > 1, "exploding_factor", exploding_factor, "a number > 1")
        check(isinstance(window, int) and window >= 1, "window", window, "a positive int")
        check(
            exploding_norm is None or exploding_norm > 0,
            "exploding_norm",
            exploding_norm,
            "None or a positive number",
        )
        check(
            warn in (True, False, "once", "always"),
            "warn",
            warn,
            "'once', 'always', True (= 'once') or False",
        )
        self.model = model
        self.every = every
        self.histograms_enabled = histograms
        self.bins = bins
        self.vanishing_ratio = vanishing_ratio
        self.exploding_factor = exploding_factor
        self.exploding_norm = exploding_norm
        self.warn = "once" if warn is True else warn
        self.layers = [
            (n, m)
            for n, m in _select(model, layers)
            if isinstance(getattr(m, "weight", None), torch.Tensor)
        ]
        check(len(self.layers) > 0, "layers", layers, "a selector matching at least one layer")
        self.activations = [
            (n, m) for n, m in model.named_modules() if activations and n and is_activation(m)
        ]
        self.records: list[dict[str, Any]] = []
        self.histograms: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.order: list[str] = []  # monitored layers in the order the forward pass calls them
        self._calls = 0
        self._outputs: dict[str, torch.Tensor] = {}
        self._out_grads: dict[str, torch.Tensor] = {}
        self._acts: dict[str, tuple[torch.Tensor, str]] = {}
        self._norm_history: deque[float] = deque(maxlen=window)
        self._warned: set[str] = set()
        self._handles = [m.register_forward_hook(self._layer_hook(n)) for n, m in self.layers]
        self._handles += [
            m.register_forward_hook(self._act_hook(n, m)) for n, m in self.activations
        ]

    # -- hooks

    @property
    def active(self) -> bool:
        """Whether the coming :meth:`record` call records (hooks capture only then)."""
        return self._calls % self.every == 0

    def _layer_hook(self, name: str):
        def hook(_module, _inputs, output):
            if not (self.active and isinstance(output, torch.Tensor) and output.requires_grad):
                return
            if name not in self.order:
                self.order.append(name)
            self._outputs[name] = output.detach()

            def grad_hook(g):
                self._out_grads[name] = g.detach()

            output.register_hook(grad_hook)

        return hook

    def _act_hook(self, name: str, module: nn.Module):
        kind = _activation_kind(module)

        def hook(_module, _inputs, output):
            if self.active and isinstance(output, torch.Tensor) and torch.is_grad_enabled():
                self._acts[name] = (output.detach(), kind)

        return hook

    # -- recording

    def on_after_backward(self, step: int | None = None) -> list[dict[str, Any]]:
        """Alias of :meth:`record` (callback style)."""
        return self.record(step)

    def record(self, step: int | None = None) -> list[dict[str, Any]]:
        """Record this step's statistics (call after ``backward``); returns the new rows."""
        if step is None:
            step = self._calls
        active = self.active
        self._calls += 1
        if not active:
            return []
        names: list[tuple[str, str]] = []
        values: list[torch.Tensor] = []

        def add(layer, stat, value):
            names.append((layer, stat))
            values.append(value.detach().float().reshape(()))

        sq = []
        for name, m in self.layers:
            for pname, stat in (("weight", "weight_grad_norm"), ("bias", "bias_grad_norm")):
                p = getattr(m, pname, None)
                if isinstance(p, torch.Tensor) and p.grad is not None:
                    n = torch.linalg.vector_norm(p.grad.detach().float())
                    add(name, stat, n)
                    sq.append(n.square())
            weight = cast(torch.Tensor, m.weight)  # self.layers: modules with a tensor weight
            add(name, "weight_norm", torch.linalg.vector_norm(weight.detach().float()))
            if name in self._outputs:
                mo = _moments(self._outputs[name])
                add(name, "preact_mean", mo["mean"])
                add(name, "preact_std", mo["std"])
            if name in self._out_grads:
                g = self._out_grads[name].float()
                add(name, "output_grad_norm", torch.linalg.vector_norm(g))
                add(name, "output_grad_std", g.std(correction=0))
        for name, (a, kind) in self._acts.items():
            for stat, v in _activation_tensors(a, kind).items():
                add(name, stat if stat in ("saturated", "dead", "zero") else f"act_{stat}", v)
        if sq:
            add("global", "grad_norm", torch.stack(sq).sum().sqrt())
        ordered = [n for n in self.order if n in dict(self.layers)] or [n for n, _ in self.layers]
        norms = {n: v for (n, s), v in zip(names, values, strict=True) if s == "weight_grad_norm"}
        first, last = ordered[0], ordered[-1]
        if first in norms and last in norms and first != last:
            add("global", "first_last_ratio", norms[first] / norms[last])
        floats = torch.stack(values).tolist() if values else []  # one device sync
        rows = [
            {"step": step, "layer": layer, "stat": stat, "value": v}
            for (layer, stat), v in zip(names, floats, strict=True)
        ]
        self.records.extend(rows)
        n_hist = len(self.histograms)
        if self.histograms_enabled:
            self._record_histograms(step)
        if self.writer is not None:
            self._write(rows, self.histograms[n_hist:], step)
        self._detect(step, rows, first, last)
        self._outputs.clear()
        self._out_grads.clear()
        self._acts.clear()
        return rows

    def _record_histograms(self, step: int) -> None:
        for name, (a, kind) in self._acts.items():
            self.histograms.append(
                {
                    "step": step,
                    "layer": name,
                    "kind": "activation",
                    **_histogram(a, self.bins, kind),
                }
            )
        for name, g in self._out_grads.items():
            self.histograms.append(
                {"step": step, "layer": name, "kind": "output_grad", **_histogram(g, self.bins)}
            )

    def _write(self, rows, histograms, step: int) -> None:
        for r in rows:
            self.writer.add_scalar(f"{r['layer']}/{r['stat']}", r["value"], step)
        add_histogram = getattr(self.writer, "add_histogram", None)
        if add_histogram is not None:
            for h in histograms:  # the values are summarized: pass the counts as raw data
                centers = (h["edges"][1:] + h["edges"][:-1]) / 2
                values = torch.repeat_interleave(centers, h["counts"].long().cpu())
                if values.numel():
                    add_histogram(f"{h['layer']}/{h['kind']}", values, step)

    # -- detection

    def _alert(self, step: int, category: type[GradientWarning], message: str) -> None:
        self.alerts.append({"step": step, "kind": category.__name__, "message": message})
        if self.warn == "always" or (self.warn == "once" and category.__name__ not in self._warned):
            self._warned.add(category.__name__)
            warnings.warn(message, category, stacklevel=4)

    def _detect(self, step: int, rows: list[dict[str, Any]], first: str, last: str) -> None:
        bad = []
        for r in rows:
            if not math.isfinite(r["value"]) and r["layer"] != "global":
                bad.append(f"{r['layer']} ({r['stat']}={r['value']})")
        if bad:
            self._alert(
                step,
                NonFiniteGradientWarning,
                f"step {step}: non-finite values in layer(s) {', '.join(bad)}",
            )
        stats = {(r["layer"], r["stat"]): r["value"] for r in rows}
        ratio = stats.get(("global", "first_last_ratio"))
        if ratio is not None and math.isfinite(ratio) and ratio < self.vanishing_ratio:
            self._alert(
                step,
                VanishingGradientWarning,
                f"step {step}: vanishing gradients: the gradient norm of the first layer "
                f"{first!r} is {ratio:.3g} times that of the last layer {last!r} "
                f"(threshold {self.vanishing_ratio:g})",
            )
        norm = stats.get(("global", "grad_norm"))
        if norm is None or not math.isfinite(norm):
            return
        if self.exploding_norm is not None and norm > self.exploding_norm:
            self._alert(
                step,
                ExplodingGradientWarning,
                f"step {step}: exploding gradients: global gradient norm {norm:.3g} "
                f"exceeds {self.exploding_norm:g}",
            )
        elif self._norm_history and min(self._norm_history) > 0:
            low = min(self._norm_history)
            if norm > self.exploding_factor * low:
                self._alert(
                    step,
                    ExplodingGradientWarning,
                    f"step {step}: exploding gradients: global gradient norm {norm:.3g} "
                    f"is {norm / low:.3g} times its recent minimum {low:.3g} "
                    f"(factor {self.exploding_factor:g})",
                )
        self._norm_history.append(norm)

    # -- access

    def table(self, *, layer: str | None = None, stat: str | None = None) -> list[dict[str, Any]]:
        """The tidy rows ``{"step", "layer", "stat", "value"}``, optionally filtered."""
        return [
            r
            for r in self.records
            if (layer is None or r["layer"] == layer) and (stat is None or r["stat"] == stat)
        ]

    def series(self, layer: str, stat: str) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of one statistic of one layer."""
        rows = self.table(layer=layer, stat=stat)
        return [r["step"] for r in rows], [r["value"] for r in rows]

    def detach(self) -> None:
        """Remove all hooks (the records stay); close a TensorBoard writer the monitor made."""
        if self.writer is not None and self._owns_writer:
            self.writer.close()
            self.writer = None
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._outputs.clear()
        self._out_grads.clear()
        self._acts.clear()

    def __enter__(self) -> GradientMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.detach()

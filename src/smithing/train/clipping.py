"""Gradient clipping that reports what it did and refuses to spread NaN/inf silently.

* :func:`clip_grad_norm` rescales all gradients together so their total ``norm_type``-norm is
  at most ``max_norm``: ``g <- g * min(1, max_norm / (||g|| + 1e-6))`` (Pascanu, Mikolov &
  Bengio, "On the difficulty of training recurrent neural networks", ICML 2013, Algorithm 1;
  the 1e-6 and the clamp are torch's). Built on ``torch.nn.utils.get_total_norm`` and
  ``clip_grads_with_norm_``, so a finite result is bitwise torch's ``clip_grad_norm_``.
* :func:`clip_grad_value` clamps each gradient element to ``[-clip_value, clip_value]``
  (``torch.nn.utils.clip_grad_value_``).
* :func:`clip_grad_norm_per_member` clips the gradients of stacked ensemble parameters
  (leading *members* axis) with one norm per member, so members never interact.

Departure from PyTorch: torch's ``clip_grad_norm_`` multiplies every gradient by
``max_norm / nan`` when one gradient holds a NaN or inf (all gradients become NaN) and
``clip_grad_value_`` clamps an inf to ``+-clip_value`` (hiding it). Here a non-finite gradient
is found first and, by ``on_nonfinite``:

* ``"raise"`` (default): raise :class:`NonFiniteGradientError` naming the parameters; the
  gradients are left untouched;
* ``"skip"``: set every parameter's ``.grad`` to ``None`` so that the next
  ``optimizer.step()`` is a no-op (torch.optim skips parameters without a gradient: no update,
  no momentum or Adam-moment change, no weight decay); ``report.skipped`` is True;
* ``"warn"``: warn (:class:`~smithing.train.diagnostics.NonFiniteGradientWarning`) naming the
  parameters and leave the gradients untouched and unclipped (their norm is undefined).

Every function returns a :class:`ClipReport`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import torch
from torch import nn

from smithing._registry import check
from smithing.train.diagnostics import NonFiniteGradientWarning

_ON_NONFINITE = ("raise", "skip", "warn")


class NonFiniteGradientError(FloatingPointError):
    """A gradient holds NaN or inf; ``.names`` lists the parameters (and ``.members``)."""

    def __init__(self, message: str, names: list[str], members: list[int] | None = None):
        super().__init__(message)
        self.names = names
        self.members = members or []


@dataclass
class ClipReport:
    """What a clipping call saw and did.

    ``total_norm``: the gradients' total norm before clipping (a float; a ``(members,)`` tensor
    for per-member clipping; inf/nan when non-finite). ``clipped``: whether any gradient was
    scaled down or clamped (a ``(members,)`` bool tensor per member). ``nonfinite_layers``: the
    names of the parameters whose gradient holds a NaN or inf. ``nonfinite_members``: the
    members with a non-finite gradient (per-member only). ``skipped``: gradients were dropped
    (``on_nonfinite="skip"``).
    """

    total_norm: float | torch.Tensor
    clipped: bool | torch.Tensor
    nonfinite_layers: list[str] = field(default_factory=list)
    nonfinite_members: list[int] = field(default_factory=list)
    skipped: bool = False

    @property
    def finite(self) -> bool:
        return not self.nonfinite_layers


ParamsLike = (
    nn.Module
    | Iterable[torch.Tensor]
    | Iterable[tuple[str, torch.Tensor]]
    | Mapping[str, torch.Tensor]
)
# (name, parameter, its gradient) for the parameters that have a gradient
_WithGrad = list[tuple[str, torch.Tensor, torch.Tensor]]


def _named(params: ParamsLike, names: Sequence[str] | None) -> list[tuple[str, torch.Tensor]]:
    if isinstance(params, nn.Module):
        check(names is None, "names", names, "None when a module is given (its names are used)")
        return list(params.named_parameters())
    if isinstance(params, torch.Tensor):
        params = [params]
    if isinstance(params, Mapping):
        params = list(params.items())
    items: list[torch.Tensor | tuple[str, torch.Tensor]] = list(params)
    if items and isinstance(items[0], tuple):
        check(names is None, "names", names, "None when (name, tensor) pairs are given")
        return [(str(n), p) for n, p in items]
    tensors = cast("list[torch.Tensor]", items)  # the first item is no pair: tensors were given
    if names is None:
        names = [f"param{i}" for i in range(len(tensors))]
    names = list(names)
    check(
        len(names) == len(tensors),
        "names",
        f"{len(names)} names",
        f"one name per parameter ({len(tensors)})",
    )
    return list(zip(names, tensors, strict=True))


def _with_grad(named: list[tuple[str, torch.Tensor]]) -> _WithGrad:
    """The parameters that have a gradient, each with its name and gradient."""
    return [(n, p, g) for n, p in named if (g := p.grad) is not None]


def _check_mode(on_nonfinite: str) -> None:
    check(on_nonfinite in _ON_NONFINITE, "on_nonfinite", on_nonfinite, "'raise', 'skip' or 'warn'")


def _nonfinite_names(named: _WithGrad) -> list[str]:
    flags = torch.stack([~torch.isfinite(g).all() for _, _, g in named]).tolist()
    return [n for (n, _, _), bad in zip(named, flags, strict=True) if bad]


def _handle_nonfinite(
    named: _WithGrad, bad: list[str], on_nonfinite: str, total: float
) -> ClipReport:
    msg = f"non-finite gradient (NaN or inf) in {', '.join(bad)}"
    if on_nonfinite == "raise":
        raise NonFiniteGradientError(msg, bad)
    if on_nonfinite == "warn":
        warnings.warn(msg + "; gradients left unclipped", NonFiniteGradientWarning, stacklevel=3)
        return ClipReport(total, False, bad)
    for _, p, _ in named:  # "skip": the next optimizer.step() leaves everything untouched
        p.grad = None
    return ClipReport(total, False, bad, skipped=True)


def clip_grad_norm(
    params: ParamsLike,
    max_norm: float,
    *,
    norm_type: float = 2.0,
    names: Sequence[str] | None = None,
    on_nonfinite: str = "raise",
) -> ClipReport:
    r"""Scale the gradients so their total norm is at most ``max_norm``; report what happened.

    $$
    g \leftarrow g \cdot \min\left(1, \frac{c}{\lVert g \rVert_p + 10^{-6}}\right)
    $$

    with $g$ all gradients concatenated, $\lVert g \rVert_p$ their ``norm_type``-norm ($p$)
    and $c$ = ``max_norm``. ``params`` is a module, an iterable of tensors (named by ``names``
    or ``param0, param1, ...``), ``(name, tensor)`` pairs or a dict; parameters without a
    gradient are ignored. Non-finite gradients: see the module docstring. When the norm only
    overflows (every element finite but the float32 norm is inf), it is recomputed in float64.

    Args:
        params: a module, tensors, ``(name, tensor)`` pairs or a dict.
        max_norm: $c > 0$.
        norm_type: $p$ (``2.0``; ``inf`` for the max norm).
        names: names of the tensors in messages (only for plain tensors).
        on_nonfinite: ``"raise"``, ``"skip"`` or ``"warn"`` (module docstring).

    Returns:
        A :class:`ClipReport` (the norm before clipping, whether it clipped).

    Note:
        Pascanu et al. rescale to exactly $c / \lVert g \rVert$ when $\lVert g \rVert \ge c$; the
        $10^{-6}$ and the clamp at 1 are torch's (a finite result is bitwise
        ``torch.nn.utils.clip_grad_norm_``), and a NaN/inf gradient is reported instead of spread.

    References:
        Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks",
        ICML 2013, Sec. 3.2, Algorithm 1.

    Examples:
        >>> import torch
        >>> w = torch.zeros(2, requires_grad=True)
        >>> w.grad = torch.tensor([3.0, 4.0])
        >>> report = clip_grad_norm([w], max_norm=1.0)
        >>> report.total_norm, report.clipped, w.grad
        (5.0, True, tensor([0.6000, 0.8000]))
    """
    check(max_norm > 0, "max_norm", max_norm, "a positive number")
    _check_mode(on_nonfinite)
    named = _with_grad(_named(params, names))
    if not named:
        return ClipReport(0.0, False)
    grads = [g for _, _, g in named]
    total = torch.nn.utils.get_total_norm(grads, norm_type)  # ||g||_p over all gradients
    total_f = float(total)  # the one device sync
    if not math.isfinite(total_f):
        bad = _nonfinite_names(named)
        if bad:
            return _handle_nonfinite(named, bad, on_nonfinite, total_f)
        total = torch.nn.utils.get_total_norm([g.double() for g in grads], norm_type)  # overflow
        total_f = float(total)
    params_ = [p for _, p, _ in named]
    torch.nn.utils.clip_grads_with_norm_(params_, max_norm, total)  # g *= min(1, c)
    return ClipReport(total_f, total_f + 1e-6 > max_norm)


def clip_grad_value(
    params: ParamsLike,
    clip_value: float,
    *,
    names: Sequence[str] | None = None,
    on_nonfinite: str = "raise",
) -> ClipReport:
    r"""Clamp every gradient element to ``[-clip_value, clip_value]``; report what happened.

    $$
    g_k \leftarrow \max\left(-c, \min(c, g_k)\right)
    $$

    for every element $g_k$ of every gradient, with $c$ = ``clip_value``
    (``torch.nn.utils.clip_grad_value_``). Unlike norm clipping this changes the gradient's
    direction.

    Args:
        params: a module, tensors, ``(name, tensor)`` pairs or a dict.
        clip_value: $c > 0$.
        names: names of the tensors in messages (only for plain tensors).
        on_nonfinite: ``"raise"``, ``"skip"`` or ``"warn"`` (module docstring).

    Returns:
        A :class:`ClipReport`.

    References:
        Mikolov, "Statistical language models based on neural networks", PhD thesis, Brno
        University of Technology, 2012 (element-wise clipping; as discussed by Pascanu et al.,
        ICML 2013, Sec. 3.2).

    ``report.total_norm`` is the 2-norm of all gradients before clamping; ``report.clipped``
    whether any element was beyond ``clip_value``. Non-finite gradients (which torch's
    ``clip_grad_value_`` would clamp or keep silently): see the module docstring.
    """
    check(clip_value > 0, "clip_value", clip_value, "a positive number")
    _check_mode(on_nonfinite)
    named = _with_grad(_named(params, names))
    if not named:
        return ClipReport(0.0, False)
    grads = [g for _, _, g in named]
    total = torch.nn.utils.get_total_norm(grads, 2.0)
    peak = torch.stack([torch.linalg.vector_norm(g, math.inf) for g in grads]).max()  # max |g|
    total_f, peak_f = torch.stack([total.float(), peak.float()]).tolist()  # one sync
    if not (math.isfinite(total_f) and math.isfinite(peak_f)):
        bad = _nonfinite_names(named)
        if bad:
            return _handle_nonfinite(named, bad, on_nonfinite, total_f)
    torch.nn.utils.clip_grad_value_([p for _, p, _ in named], clip_value)  # g <- clamp(g, -c, c)
    return ClipReport(total_f, peak_f > clip_value)


def clip_grad_norm_per_member(
    stacked_params: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
    max_norm: float | torch.Tensor,
    *,
    norm_type: float = 2.0,
    names: Sequence[str] | None = None,
    on_nonfinite: str = "raise",
) -> ClipReport:
    r"""Norm clipping of stacked ensemble parameters, one norm per member.

    $$
    g^{(m)} \leftarrow g^{(m)} \cdot \min\left(1, \frac{c_m}{\lVert g^{(m)} \rVert_p +
    10^{-6}}\right)
    $$

    with $g^{(m)}$ member $m$'s gradients concatenated (the slices ``[m]`` of every ``.grad``)
    and $c_m$ its radius (``max_norm``).

    Each tensor's ``.grad`` has shape ``(members, ...)``. For member m,
    ``n_m = ||(g_1[m], g_2[m], ...)||_p`` and ``g[m] <- g[m] * min(1, max_norm_m / (n_m + 1e-6))``
    : exactly ``clip_grad_norm`` applied to each member alone (members never interact).
    ``max_norm`` is a float or a ``(members,)`` tensor (a radius per member).

    ``report.total_norm`` and ``report.clipped`` are ``(members,)`` tensors. A member with a
    non-finite gradient is listed in ``report.nonfinite_members`` (parameter names in
    ``nonfinite_layers``); with ``on_nonfinite="skip"`` that member's gradients are set to zero
    (and ``report.skipped`` is True); the other members are clipped as usual. Unlike dropping
    ``.grad`` in :func:`clip_grad_norm`, a zero gradient still lets momentum, Adam's moments and
    weight decay move that member in the next optimizer step: freeze it in the trainer if that
    matters. ``"raise"`` raises before touching anything; ``"warn"`` warns and leaves that
    member's gradients untouched.

    Args:
        stacked_params: the stacked parameters (tensors or a dict), gradients ``(members, ...)``.
        max_norm: $c$, a float or a ``(members,)`` tensor.
        norm_type: $p$.
        names: names of the tensors in messages.
        on_nonfinite: ``"raise"``, ``"skip"`` or ``"warn"``.

    Returns:
        A :class:`ClipReport` with ``(members,)`` tensors.
    """
    _check_mode(on_nonfinite)
    named = _with_grad(_named(stacked_params, names))
    if not named:
        return ClipReport(torch.zeros(0), torch.zeros(0, dtype=torch.bool))
    members = named[0][2].shape[0]
    for n, _, g in named:
        check(
            g.dim() >= 1 and g.shape[0] == members,
            n,
            tuple(g.shape),
            f"a gradient with a leading members axis of size {members}",
        )
    dev = named[0][2].device
    # the norms' dtype: float64 when a gradient is float64 (as clip_grad_norm, which takes them
    # in the gradients' dtype), float32 otherwise (half-precision gradients are widened)
    acc = torch.float64 if any(g.dtype == torch.float64 for _, _, g in named) else torch.float32
    if isinstance(max_norm, torch.Tensor):
        check(
            max_norm.shape in ((), (members,)),
            "max_norm",
            tuple(max_norm.shape),
            f"a float or a ({members},) tensor",
        )
        check(bool((max_norm > 0).all()), "max_norm", max_norm, "positive values")
        max_norm = max_norm.to(dev, acc)
    else:
        check(max_norm > 0, "max_norm", max_norm, "a positive number")
    per_param = torch.stack(
        [  # (params, members): each member's norm of each gradient
            torch.linalg.vector_norm(g.reshape(members, -1).to(acc), norm_type, dim=1)
            for _, _, g in named
        ]
    )
    total = torch.linalg.vector_norm(per_param, norm_type, dim=0)  # (members,)
    finite = torch.isfinite(total)  # (members,)
    bad_members: list[int] = []
    bad_names: list[str] = []
    if not bool(finite.all()):
        bad_members = (~finite).nonzero().flatten().tolist()
        flags = torch.stack(
            [  # (params, members) element-wise check
                ~torch.isfinite(g.reshape(members, -1)).all(dim=1) for _, _, g in named
            ]
        )
        bad_names = [n for (n, _, _), f in zip(named, flags.any(dim=1).tolist(), strict=True) if f]
        really_bad = flags.any(dim=0)  # (members,) excluding mere float32 overflow
        if bool((~really_bad & ~finite).any()):  # overflow only: recompute in float64
            per64 = torch.stack(
                [
                    torch.linalg.vector_norm(g.reshape(members, -1).double(), norm_type, dim=1)
                    for _, _, g in named
                ]
            )
            total = torch.where(
                really_bad, total.double(), torch.linalg.vector_norm(per64, norm_type, dim=0)
            )
        bad_members = really_bad.nonzero().flatten().tolist()
        if bad_members:
            msg = (
                f"non-finite gradient (NaN or inf) in member(s) {bad_members}, parameter(s) "
                f"{', '.join(bad_names)}"
            )
            if on_nonfinite == "raise":
                raise NonFiniteGradientError(msg, bad_names, bad_members)
            if on_nonfinite == "warn":
                warnings.warn(
                    msg + "; those members are left unclipped",
                    NonFiniteGradientWarning,
                    stacklevel=2,
                )
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)  # (members,) min(1, c / (n + 1e-6))
    bad_mask = torch.zeros(members, dtype=torch.bool, device=dev)
    if bad_members:
        bad_mask[bad_members] = True
        coef = torch.where(bad_mask, 0.0 if on_nonfinite == "skip" else 1.0, coef)
    for _, _, g in named:
        c = coef.to(g.dtype).reshape(members, *([1] * (g.dim() - 1)))  # (members, 1, ...)
        if on_nonfinite == "skip" and bad_members:
            g.masked_fill_(bad_mask.reshape(c.shape), 0.0)  # NaN * 0 is NaN: fill instead
        g.mul_(c)  # g[m] *= min(1, max_norm_m / (n_m + 1e-6))
    clipped = (total + 1e-6 > max_norm) & ~bad_mask
    return ClipReport(
        total, clipped, bad_names, bad_members, skipped=on_nonfinite == "skip" and bool(bad_members)
    )


__all__ = [
    "ClipReport",
    "NonFiniteGradientError",
    "clip_grad_norm",
    "clip_grad_norm_per_member",
    "clip_grad_value",
]

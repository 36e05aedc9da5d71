"""Which initialization rule a weight's statistics match.

For a weight ``W`` of shape ``(out, in, *kernel)`` with fans ``fan_in``, ``fan_out``
(:func:`smithing.init.fans`), each fan-based rule fixes the standard deviation of its entries:

| rule | std(W) | law |
|---|---|---|
| ``glorot_*`` | $\\sqrt{2 / (n_{in} + n_{out})}$ | uniform or normal |
| ``he_*`` | $\\sqrt{2 / n_{in}}$ | uniform or normal |
| ``lecun_*`` | $\\sqrt{1 / n_{in}}$ | uniform or normal |
| ``torch_default`` | $\\sqrt{1 / (3 n_{in})}$ | uniform (``nn.Linear``'s own) |

with $n_{in}$ = ``fan_in``, $n_{out}$ = ``fan_out``.

``torch_default`` is ``nn.Linear``'s own ``kaiming_uniform_(a=sqrt 5)``, i.e.
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``. The law is told apart by the excess kurtosis of the
entries (uniform: -1.2, normal: 0). An ``orthogonal`` weight (Saxe et al. 2014) is recognised by
its Gram matrix: ``W W^T = g^2 I`` (the smaller side) up to rounding.

A rule matches when the empirical std is within ``tol`` (relative) of its formula, with ``tol``
widened for small weights to three standard errors of a sample std, ``3 / sqrt(2 n)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from smithing.init import fans

#: std formulas of the fan-based rules (fan_in, fan_out) -> std
STD_RULES = {
    "glorot": lambda fi, fo: math.sqrt(2.0 / (fi + fo)),  # Glorot & Bengio 2010, eq. 16
    "he": lambda fi, fo: math.sqrt(2.0 / fi),  # He et al. 2015, eq. 10
    "lecun": lambda fi, fo: math.sqrt(1.0 / fi),  # LeCun et al. 1998, section 4.6
    "torch_default": lambda fi, fo: math.sqrt(1.0 / (3.0 * fi)),  # U(+-1/sqrt(fan_in))
}


@dataclass(frozen=True)
class InitMatch:
    """What a weight's statistics say about its initialization.

    ``best``: the closest rule that matches (e.g. ``"he_normal"``, ``"orthogonal"``,
    ``"torch_default"``) or ``None``; ``also``: other rules within tolerance (Glorot and LeCun
    coincide when ``fan_in == fan_out``); ``std``: the empirical std; ``expected``: each family's
    std; ``law``: ``"uniform"``, ``"normal"`` or ``"other"`` (by kurtosis).
    """

    best: str | None
    std: float
    mean: float
    law: str
    fan_in: int
    fan_out: int
    expected: dict[str, float] = field(default_factory=dict)
    also: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        if self.best is None:
            closest = min(self.expected, key=lambda k: abs(math.log(self.std / self.expected[k])))
            ratio = self.std / self.expected[closest]
            return (
                f"none (std {self.std:.3g}: {ratio:.3g} x {closest}'s {self.expected[closest]:.3g})"
            )
        extra = f" (or {', '.join(self.also)})" if self.also else ""
        return f"{self.best}{extra}"


def _law(w: torch.Tensor) -> str:
    x = w.detach().double().flatten()
    if x.numel() < 50:
        return "other"
    c = x - x.mean()
    var = c.square().mean()
    if var == 0:
        return "other"
    kurt = float(c.pow(4).mean() / var.square()) - 3.0  # excess kurtosis
    se = math.sqrt(24.0 / x.numel())  # its standard error under normality
    if abs(kurt) < max(0.3, 4 * se):
        return "normal"
    if abs(kurt + 1.2) < max(0.3, 4 * se):
        return "uniform"
    return "other"


def _is_orthogonal(w: torch.Tensor, tol: float) -> float | None:
    """The gain ``g`` when ``W W^T = g^2 I`` on the smaller side, else None."""
    m = w.detach().double().reshape(w.shape[0], -1)
    if m.shape[0] > m.shape[1]:
        m = m.T
    gram = m @ m.T  # (small, small)
    g2 = float(gram.diagonal().mean())
    if g2 <= 0:
        return None
    off = (gram / g2 - torch.eye(gram.shape[0], dtype=gram.dtype)).abs().max()
    return math.sqrt(g2) if float(off) < tol else None


def match_initializer(weight: torch.Tensor, *, tol: float = 0.1) -> InitMatch:
    """The initialization rule whose standard deviation ``weight``'s entries match.

    Args:
        weight: a weight ``(out, in, *kernel)`` (a Linear layer's ``(out_features,
            in_features)``).
        tol: relative tolerance on ``std(W) / std_rule - 1`` (widened to ``3 / sqrt(2 n)``
            for a weight of ``n`` entries).

    Returns:
        an :class:`InitMatch`.

    Example:
        >>> import torch
        >>> from smithing.doctor import match_initializer
        >>> w = torch.empty(400, 300)
        >>> _ = torch.nn.init.kaiming_normal_(w, generator=torch.Generator().manual_seed(0))
        >>> match_initializer(w).best
        'he_normal'
    """
    fi, fo = fans(weight)
    x = weight.detach().double()
    std, mean = float(x.std(correction=0)), float(x.mean())
    expected = {k: f(fi, fo) for k, f in STD_RULES.items()}
    law = _law(weight)
    base = dict(std=std, mean=mean, law=law, fan_in=fi, fan_out=fo, expected=expected)
    if std == 0 or not math.isfinite(std):
        return InitMatch(best=None, **base)
    width = max(tol, 3.0 / math.sqrt(2.0 * x.numel()))
    gain = _is_orthogonal(weight, tol=max(1e-3, 1e-6 * max(weight.shape)))
    if gain is not None and min(weight.shape[0], x[0].numel()) > 1:
        return InitMatch(
            best="orthogonal" if abs(gain - 1) < 1e-3 else f"orthogonal (gain {gain:.3g})", **base
        )
    close = sorted(
        (abs(math.log(std / e)), k) for k, e in expected.items() if abs(std / e - 1) < width
    )
    if not close:
        return InitMatch(best=None, **base)
    names = [
        family if family == "torch_default" or law == "other" else f"{family}_{law}"
        for _, family in close
    ]
    return InitMatch(best=names[0], also=tuple(names[1:]), **base)


__all__ = ["STD_RULES", "InitMatch", "match_initializer"]

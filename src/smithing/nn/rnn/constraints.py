"""Constraints and penalties on the recurrent matrix: singular-value clipping, orthogonal and
identity-ball projections, the identity penalty, the constraint registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from smithing._registry import Registry, check

__all__ = [
    "CONSTRAINTS",
    "clip_singular_values_",
    "identity_penalty",
    "project_identity_ball_",
    "project_orthogonal_",
]

# ------------------------------------------------------------------------------------------------
# constraints (projections after each optimizer step) and the identity penalty
# ------------------------------------------------------------------------------------------------


def _check_square(w: Tensor) -> None:
    check(
        w.dim() >= 2 and w.shape[-1] == w.shape[-2],
        "weight",
        tuple(w.shape),
        "a square (H, H) matrix or a stack (..., H, H)",
    )


@torch.no_grad()
def clip_singular_values_(w: Tensor, max_value: float = 1.0, min_value: float = 0.0) -> Tensor:
    r"""In place ``W <- U diag(clamp(s, min_value, max_value)) V^T``; returns ``w``.

    $$
    W = U \operatorname{diag}(s) V^\top \;\Rightarrow\; W \leftarrow U
    \operatorname{diag}\left(\min(\max(s, s_{\min}), s_{\max})\right) V^\top
    $$

    with $W$ = ``w``, $s$ its singular values, $s_{\min}$ = ``min_value`` and $s_{\max}$ =
    ``max_value``: the Frobenius-nearest matrix whose singular values lie in $[s_{\min}, s_{\max}]$
    (``max_value=1``: spectral norm $\le 1$). Accepts ``(..., H, H)`` stacks (one SVD per matrix).

    Args:
        w: the square matrix ``(..., H, H)``, changed in place.
        max_value: $s_{\max} > 0$.
        min_value: $s_{\min} \in [0, s_{\max}]$.

    Returns:
        ``w``.

    Note:
        Vorontsov et al. keep $s \in [1 - m, 1 + m]$ by parametrizing $W = U S V^\top$ with
        geodesic steps on $U, V$; here a plain gradient step is followed by this projection.

    References:
        Vorontsov, Trabelsi, Kadoury & Pal, "On orthogonality and learning recurrent networks
        with long term dependencies", ICML 2017, Sec. 2.
    """
    _check_square(w)
    check(max_value > 0, "max_value", max_value, "a positive number")
    check(
        0 <= min_value <= max_value,
        "min_value",
        min_value,
        f"a number in [0, max_value={max_value}]",
    )
    u, s, vh = torch.linalg.svd(w, full_matrices=False)  # (..., H, H), (..., H), (..., H, H)
    s = s.clamp(min_value, max_value)  # s <- clamp(s, 1 - m, 1 + m)
    return w.copy_(u @ (s.unsqueeze(-1) * vh))  # W = U diag(s) V^T


@torch.no_grad()
def project_orthogonal_(w: Tensor) -> Tensor:
    r"""In place ``W <- U V^T`` (``W = U diag(s) V^T``): the nearest orthogonal matrix (polar
    factor); returns ``w``. Arjovsky et al., ICML 2016 for why; accepts ``(..., H, H)``.

    $$
    W = U \operatorname{diag}(s) V^\top \;\Rightarrow\; W \leftarrow U V^\top =
    \operatorname*{arg\,min}_{Q^\top Q = I} \lVert W - Q \rVert_F
    $$

    Args:
        w: the square matrix ``(..., H, H)``, changed in place.

    Returns:
        ``w``.

    References:
        Higham, "Computing the polar decomposition, with applications", SIAM J. Sci. Stat.
        Comput. 7(4), 1986; Arjovsky, Shah & Bengio, "Unitary evolution recurrent neural
        networks", ICML 2016 (why an orthogonal $W$).
    """
    _check_square(w)
    u, _, vh = torch.linalg.svd(w, full_matrices=False)  # (..., H, H)
    return w.copy_(u @ vh)  # W = U V^T


@torch.no_grad()
def project_identity_ball_(w: Tensor, radius: float = 0.1) -> Tensor:
    r"""In place projection onto ``{W : ||W - I||_2 <= radius}``; returns ``w``.

    $$
    W - I = U \operatorname{diag}(s) V^\top \;\Rightarrow\; W \leftarrow I + U
    \operatorname{diag}\left(\min(s, \rho)\right) V^\top
    $$

    with $W$ = ``w`` and $\rho$ = ``radius`` (clipping the singular values of $W - I$ is the
    Frobenius-nearest point of the spectral-norm ball $\lVert W - I \rVert_2 \le \rho$).
    Accepts ``(..., H, H)``.

    Args:
        w: the square matrix ``(..., H, H)``, changed in place.
        radius: $\rho > 0$.

    Returns:
        ``w``.

    Note:
        Le et al. initialize the IRNN at $I$ but do not constrain it; this projection is ours.
    """
    _check_square(w)
    check(radius > 0, "radius", radius, "a positive number")
    eye = torch.eye(w.shape[-1], dtype=w.dtype, device=w.device)
    d = w - eye  # (..., H, H)
    u, s, vh = torch.linalg.svd(d, full_matrices=False)
    d = u @ (s.clamp(max=radius).unsqueeze(-1) * vh)  # ||W - I||_2 <= radius
    return w.copy_(eye + d)


def identity_penalty(w: Tensor) -> Tensor:
    r"""``||W - I||_F^2``, summed over the last two axes (shape ``w.shape[:-2]``): the soft pull
    toward the IRNN's initialization (add ``strength * identity_penalty(W_hh)`` to the loss).

    $$
    \Omega(W) = \lVert W - I \rVert_F^2 = \sum_{i,j} (W_{ij} - \delta_{ij})^2
    $$

    with $W$ = ``w`` and $\delta_{ij}$ the identity's entries.

    Args:
        w: the square matrix ``(..., H, H)``.

    Returns:
        $\Omega(W)$, shape ``w.shape[:-2]``.

    Examples:
        >>> import torch
        >>> identity_penalty(2 * torch.eye(3))
        tensor(3.)
    """
    _check_square(w)
    eye = torch.eye(w.shape[-1], dtype=w.dtype, device=w.device)
    return (w - eye).square().sum(dim=(-2, -1))  # ||W - I||_F^2


@dataclass(frozen=True)
class Constraint:
    name: str
    fn: Callable[..., Tensor]  # fn(w, **options), in place
    options: tuple[str, ...]
    description: str


CONSTRAINTS: Registry[Constraint] = Registry("recurrent constraint")
for _c in (
    Constraint(
        "spectral",
        clip_singular_values_,
        ("max_value", "min_value"),
        "singular values of W_hh clipped to [min_value, max_value] (default [0, 1]; "
        "Vorontsov et al. 2017)",
    ),
    Constraint(
        "orthogonal",
        project_orthogonal_,
        (),
        "W_hh <- U V^T, the nearest orthogonal matrix (Arjovsky et al. 2016 motivation)",
    ),
    Constraint(
        "identity-ball",
        project_identity_ball_,
        ("radius",),
        "W_hh projected onto ||W - I||_2 <= radius (IRNN kept near I)",
    ),
):
    CONSTRAINTS.register(_c.name, _c, description=_c.description)


def _check_constraint(name: str | None, options: dict) -> None:
    if name is None:
        check(not options, "constraint_options", options, "empty when constraint is None")
        return
    spec = CONSTRAINTS.get(name)
    for k in options:
        check(
            k in spec.options,
            k,
            options[k],
            f"an option of constraint {name!r} ({', '.join(spec.options) or 'none'})",
        )

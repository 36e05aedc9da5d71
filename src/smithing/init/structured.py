"""The structured tensor rules: orthogonal (Saxe et al. 2014), identity (Le et al. 2015), sparse
(Martens 2010) and the constants, one function per paper. Each fills a weight tensor in place by
its paper's formula (stated in its docstring) and registers itself under its name, after the
scaled rules of :mod:`smithing.init.rules` (the registry keeps that order)."""

from __future__ import annotations

import math

import torch
from torch import nn

from smithing._registry import check
from smithing.init.registry import _register

__all__: list[str] = []

# Every tensor rule is ``fn(w, *, generator, gain, **params) -> None`` and fills ``w`` in place
# (:func:`initialize` validates the arguments, resolves the gain and returns ``w``).


@_register(
    "orthogonal",
    uses_gain=True,
    description="Saxe et al. 2014, gain * Q, Q Haar-orthogonal from the SVD of a Gaussian, gain 1",
)
def _orthogonal(w: torch.Tensor, *, generator, gain) -> None:
    r"""W = gain * Q, Q the U or V^T factor of the thin SVD of a Gaussian matrix of W's shape,
    its signs fixed so that Q is Haar-distributed; the paper's rule is gain = 1.

    $$
    A \sim \mathcal{N}(0, 1)^{r \times k}, \quad A = U S V^\top, \qquad
    W = \begin{cases} g\, U \operatorname{diag}(\operatorname{sgn} V_{0,:}) & r \ge k \\
    g\, \operatorname{diag}(\operatorname{sgn} U_{0,:})\, V^\top & r < k \end{cases}
    $$

    with $r$ the rows (``w.shape[0]``), $k$ = ``prod(w.shape[1:])`` the columns, $g$ =
    ``gain``; then $W^\top W = g^2 I$ (or $W W^\top = g^2 I$): every singular value of $W$ is
    $g$.

    A ~ N(0, 1) of shape (rows, cols), cols = prod(shape[1:]); A = U S V^T. When rows >= cols,
    Q = U D with D = diag(sign(V[0, :])) (orthonormal columns, W^T W = gain^2 I); else
    Q = D V^T with D = diag(sign(U[0, :])) (orthonormal rows, W W^T = gain^2 I). All singular
    values of W equal gain, so a deep linear network's Jacobian is an isometry (dynamical
    isometry).

    The sign fix is Mezzadri's correction in its SVD form. The SVD fixes U only up to the signs
    of its columns (shared with V), and LAPACK's choice of signs depends on A, which biases U:
    for square A, det U is +1 far more often than -1 and E[U_11] < 0. Fixing the signs by V,
    which a rotation O A of the Gaussian does not change (A^T A = V S^2 V^T), makes
    Q(O A) = O Q(A); since O A ~ A, Q is invariant under every rotation, i.e. uniform (Haar)
    over the orthogonal matrices (the Stiefel manifold when rectangular), as
    torch.nn.init.orthogonal_ is (which takes the Q factor of a QR decomposition,
    Q diag(sign(diag(R)))). Saxe et al. use U as returned.

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on Q (1 in the paper; the singular values of W).

    Returns:
        None (``w`` is filled in place).

    References:
        Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear dynamics of learning in
        deep linear neural networks", ICLR 2014; Mezzadri, "How to generate random matrices
        from the classical compact groups", Notices of the AMS 54(5), 2007.
    """
    rows = w.shape[0]
    cols = w.numel() // rows
    a = torch.randn(rows, cols, generator=generator, dtype=w.dtype, device=w.device)
    u, _, vh = torch.linalg.svd(a, full_matrices=False)  # u (rows, k), vh (k, cols), k=min
    if rows >= cols:
        d = _signs(vh[:, 0])  # (k,): sign(V[0, :]), unchanged by a rotation O A
        q = u * d  # (rows, cols) = U D, orthonormal columns, Haar
    else:
        d = _signs(u[0, :])  # (k,): sign(U[0, :]), unchanged by a rotation A O
        q = d[:, None] * vh  # (rows, cols) = D V^T, orthonormal rows, Haar
    w.copy_((gain * q).reshape(w.shape))  # W = gain * Q


def _signs(x: torch.Tensor) -> torch.Tensor:
    """sign(x) with sign(0) = +1 (a zero has probability 0 for a Gaussian draw)."""
    return torch.where(x < 0, -1.0, 1.0).to(x.dtype)


@_register("identity", description="Le et al. 2015 (IRNN), scale * I (+ N(0, noise^2)), eye-padded")
def _identity(w: torch.Tensor, *, generator, gain, scale: float = 1.0, noise: float = 0.0) -> None:
    r"""W = scale * I (+ N(0, noise^2) noise when ``noise > 0``; no gain); a rectangular W gets
    the identity in its leading square block and zeros elsewhere (torch.nn.init.eye_).

    $$
    W = s\, I + \sigma \epsilon, \qquad \epsilon_{ij} \sim \mathcal{N}(0, 1)
    $$

    with $s$ = ``scale`` and $\sigma$ = ``noise`` (0 by default: $W = s I$ exactly).

    The recurrent weights of an IRNN start at the identity (a scaled identity 0.01 I for some
    tasks), so the hidden state is copied forward and gradients neither vanish nor explode at
    the start.

    Args:
        w: a 2-D weight, filled in place.
        generator: source of randomness (used only when ``noise > 0``).
        gain: unused (always 1; the multiple is ``scale``).
        scale: the multiple of I.
        noise: standard deviation of the Gaussian noise added, >= 0.

    Returns:
        None (``w`` is filled in place).

    References:
        Le, Jaitly & Hinton, "A simple way to initialize recurrent networks of rectified linear
        units", arXiv 1504.00941, 2015.
    """
    check(w.dim() == 2, "weight", tuple(w.shape), "a 2-D weight for the identity init")
    check(noise >= 0, "noise", noise, "a non-negative standard deviation")
    nn.init.eye_(w)  # W = I (eye-padded when rectangular)
    w.mul_(scale)  # W = scale * I
    if noise > 0:
        eps = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)
        w.add_(eps, alpha=noise)  # W = scale * I + noise * N(0, 1)


@_register("sparse", description="Martens 2010, k non-zero N(0, sigma^2) incoming weights per unit")
def _sparse(w: torch.Tensor, *, generator, gain, k: int = 15, sigma: float = 1.0) -> None:
    r"""Each unit (row of W) gets exactly ``min(k, fan_in)`` non-zero incoming weights, at
    inputs chosen uniformly at random without replacement, with values N(0, sigma^2); the rest
    are 0. Var(W) = sigma^2 k / fan_in (no gain).

    $$
    W_{ij} = \begin{cases} z_{ij} \sim \mathcal{N}(0, \sigma^2) & j \in S_i \\ 0 &
    \text{otherwise} \end{cases}, \qquad \lvert S_i \rvert = \min(k, n_{in}), \qquad
    \operatorname{Var}(W_{ij}) = \frac{\sigma^2 \min(k, n_{in})}{n_{in}}
    $$

    with $S_i$ the inputs of unit $i$ chosen uniformly without replacement, $k$ = ``k`` and
    $\sigma$ = ``sigma``.

    Martens' "sparse initialization" (15 non-zero incoming weights per unit, unit-Gaussian
    values; Sutskever et al., ICML 2013, section 3 restate it). Departs from
    torch.nn.init.sparse_, which zeroes a fixed *fraction* of each column (so units get varying
    numbers of inputs), uses std 0.01 and draws its positions without the generator.

    Args:
        w: a 2-D weight ``(out, in)``, filled in place.
        generator: source of randomness.
        gain: unused (always 1; the scale is ``sigma``).
        k: non-zero incoming weights per unit, a positive int.
        sigma: standard deviation of the non-zero weights, > 0.

    Returns:
        None (``w`` is filled in place).

    References:
        Martens, "Deep learning via Hessian-free optimization", ICML 2010, section 5.
    """
    check(w.dim() == 2, "weight", tuple(w.shape), "a 2-D weight for the sparse init")
    check(isinstance(k, int) and k > 0, "k", k, "a positive int")
    check(sigma > 0, "sigma", sigma, "a positive standard deviation")
    out, fan_in = w.shape
    k = min(k, fan_in)
    keys = torch.rand(out, fan_in, generator=generator, device=w.device)  # (out, fan_in)
    idx = keys.argsort(dim=1)[:, :k]  # (out, k): a random k-subset of inputs per unit
    vals = torch.randn(out, k, generator=generator, dtype=w.dtype, device=w.device) * sigma
    w.zero_().scatter_(1, idx, vals)  # exactly k non-zeros per row


def _check_constant(value) -> None:
    check(
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "value",
        value,
        "a finite number",
    )


@_register("zeros", description="W = 0 (torch zeros_, Keras zeros): no symmetry breaking")
def _zeros(w: torch.Tensor, *, generator, gain) -> None:
    r"""W = 0 (no gain, no randomness): the initialization not to use for the weights.

    $$
    W_{ij} = 0
    $$

    Every unit of a layer then computes the same function and receives the same gradient, so
    the units stay identical (the symmetry is never broken); with all weights 0 the hidden
    weights' gradients are 0 too (they pass through the zero weights above). Biases are
    commonly set to 0 (every rule's ``bias=0.0`` here). Exactly torch.nn.init.zeros_ (Keras
    ``zeros``).

    Args:
        w: the weight, filled in place.
        generator: unused.
        gain: unused (always 1).

    Returns:
        None (``w`` is filled in place).

    References:
        Rumelhart, Hinton & Williams, "Learning internal representations by error propagation",
        in Parallel Distributed Processing, vol. 1, MIT Press 1986 (equal weights cannot break
        the symmetry; start from small random weights).
    """
    nn.init.zeros_(w)  # W = 0


@_register("ones", description="W = 1 (torch ones_, Keras ones): no symmetry breaking")
def _ones(w: torch.Tensor, *, generator, gain) -> None:
    r"""W = 1 (no gain, no randomness); every unit of a layer computes the same function (see
    ``zeros``). Exactly torch.nn.init.ones_ (Keras ``ones``).

    $$
    W_{ij} = 1
    $$

    Args:
        w: the weight, filled in place.
        generator: unused.
        gain: unused (always 1).

    Returns:
        None (``w`` is filled in place).

    References:
        Rumelhart, Hinton & Williams, "Learning internal representations by error propagation",
        in Parallel Distributed Processing, vol. 1, MIT Press 1986 (the symmetry problem).
    """
    nn.init.ones_(w)  # W = 1


@_register("constant", description="W = value (torch constant_, Keras constant), default 0")
def _constant(w: torch.Tensor, *, generator, gain, value: float = 0.0) -> None:
    r"""W = value everywhere (no gain, no randomness); every unit of a layer computes the same
    function (see ``zeros``). Exactly torch.nn.init.constant_ (Keras ``constant``).

    $$
    W_{ij} = v
    $$

    with $v$ = ``value``.

    Args:
        w: the weight, filled in place.
        generator: unused.
        gain: unused (always 1).
        value: the constant, a finite number.

    Returns:
        None (``w`` is filled in place).

    References:
        Rumelhart, Hinton & Williams, "Learning internal representations by error propagation",
        in Parallel Distributed Processing, vol. 1, MIT Press 1986 (the symmetry problem).
    """
    _check_constant(value)
    nn.init.constant_(w, value)  # W = value

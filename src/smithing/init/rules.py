"""The tensor rules, one function per paper: each fills a weight tensor in place by its paper's
formula (stated in its docstring) and registers itself under its name."""

from __future__ import annotations

import math

import torch
from torch import nn

from smithing._registry import check
from smithing.init.registry import (
    _register,
    fans,
)

__all__ = []

# ----------------------------------------------------------------------------- tensor rules
#
# Every tensor rule is ``fn(w, *, generator, gain, **params) -> None`` and fills ``w`` in place
# (:func:`initialize` validates the arguments, resolves the gain and returns ``w``).


@_register("uniform", description="U(-a, a), a fixed scale (default a = 0.05)")
def _uniform(w: torch.Tensor, *, generator=None, gain=1.0, a: float = 0.05) -> None:
    r"""W_ij ~ U(-a, a): the classic fixed-scale init, Var(W) = a^2 / 3 (no gain).

    $$
    W_{ij} \sim \mathcal{U}(-a, a), \qquad \operatorname{Var}(W_{ij}) = \frac{a^2}{3}
    $$

    with $a$ = ``a`` the half-width, independent of the layer's shape.

    Independent of the layer's fans, so deep or wide networks see their signals shrink or grow
    layer by layer (the problem the fan-based rules fix). Exactly torch.nn.init.uniform_(w, -a,
    a); Keras' ``random_uniform`` has the same default half-width 0.05.

    Args:
        w: the weight, filled in place.
        generator: source of randomness.
        gain: unused (always 1).
        a: the half-width, > 0.

    Returns:
        None (``w`` is filled in place).

    References:
        Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
        networks", AISTATS 2010, section 4.2.1 (U(-1/sqrt(n), 1/sqrt(n)) as the "standard"
        baseline).
    """
    check(a > 0, "a", a, "a positive half-width")
    nn.init.uniform_(w, -a, a, generator=generator)  # W ~ U(-a, a)


@_register("normal", description="N(0, sigma^2), a fixed scale (default sigma = 0.01)")
def _normal(w: torch.Tensor, *, generator=None, gain=1.0, sigma: float = 0.01) -> None:
    r"""W_ij ~ N(0, sigma^2) with a fixed sigma (default 0.01; no gain).

    $$
    W_{ij} \sim \mathcal{N}(0, \sigma^2)
    $$

    with $\sigma$ = ``sigma``, independent of the layer's shape.

    Exactly torch.nn.init.normal_(w, 0, sigma) (torch's default sigma is 1, Keras'
    ``random_normal`` 0.05; ours is Hinton's).

    Args:
        w: the weight, filled in place.
        generator: source of randomness.
        gain: unused (always 1).
        sigma: the standard deviation, > 0.

    Returns:
        None (``w`` is filled in place).

    References:
        Hinton, "A practical guide to training restricted Boltzmann machines", UTML TR
        2010-003, section 8 (N(0, 0.01^2)).
    """
    check(sigma > 0, "sigma", sigma, "a positive standard deviation")
    nn.init.normal_(w, 0.0, sigma, generator=generator)  # W ~ N(0, sigma^2)


@_register(
    "glorot_uniform",
    uses_gain=True,
    description="Glorot & Bengio 2010 normalized init, U(+-gain sqrt(6/(fan_in+fan_out))), gain 1",
)
def _glorot_uniform(w: torch.Tensor, *, generator=None, gain=1.0) -> None:
    r"""W_ij ~ U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)), so
    Var(W) = gain^2 * 2 / (fan_in + fan_out); the paper's rule is gain = 1.

    $$
    W_{ij} \sim \mathcal{U}(-b, b), \quad b = g \sqrt{\frac{6}{n_{in} + n_{out}}}, \qquad
    \operatorname{Var}(W_{ij}) = g^2 \frac{2}{n_{in} + n_{out}}
    $$

    with $g$ = ``gain`` (1 in the paper), $n_{in}$ = fan_in and $n_{out}$ = fan_out of ``w``
    (``in * prod(kernel)`` and ``out * prod(kernel)`` for a weight ``(out, in, *kernel)``).

    The "normalized initialization": the compromise between keeping the forward variance
    (fan_in Var W = 1) and the backward variance (fan_out Var W = 1) of a near-linear unit.
    The gain is torch's extension (``gain="auto"``: tanh 5/3, ...; the Theano deep-learning
    tutorial uses gain=4 for sigmoid layers). Exactly torch.nn.init.xavier_uniform_(w, gain).

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on b (1 in the paper).

    Returns:
        None (``w`` is filled in place).

    References:
        Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
        networks", AISTATS 2010, eq. 16.
    """
    nn.init.xavier_uniform_(w, gain=gain, generator=generator)  # eq. 16


@_register(
    "glorot_normal",
    uses_gain=True,
    description="Glorot & Bengio 2010, N(0, gain^2 2/(fan_in+fan_out)), gain 1",
)
def _glorot_normal(w: torch.Tensor, *, generator=None, gain=1.0) -> None:
    r"""W_ij ~ N(0, gain^2 * 2 / (fan_in + fan_out)); the paper's variance is gain = 1.

    $$
    W_{ij} \sim \mathcal{N}\left(0,\ g^2 \frac{2}{n_{in} + n_{out}}\right)
    $$

    with $g$ = ``gain`` (1 in the paper), $n_{in}$, $n_{out}$ the fans of ``w``.

    The Gaussian with the variance of the normalized initialization (the compromise of the
    forward and backward conditions, eq. 12). Exactly torch.nn.init.xavier_normal_(w, gain).
    Departs from Keras' ``glorot_normal``, a *truncated* normal rescaled to this variance.

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on the standard deviation (1 in the paper).

    Returns:
        None (``w`` is filled in place).

    References:
        Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
        networks", AISTATS 2010, eqs. 12 and 16.
    """
    nn.init.xavier_normal_(w, gain=gain, generator=generator)  # Var = gain^2 2/(fi+fo)


def _fan(w: torch.Tensor, mode: str) -> int:
    check(mode in ("fan_in", "fan_out"), "mode", mode, "'fan_in' or 'fan_out'")
    fan_in, fan_out = fans(w)
    return fan_in if mode == "fan_in" else fan_out


def _scaled_normal(w, gain, mode, generator):
    std = gain / math.sqrt(_fan(w, mode))  # std = gain / sqrt(fan), as torch's kaiming_normal_
    nn.init.normal_(w, 0.0, std, generator=generator)


def _scaled_uniform(w, gain, mode, generator):
    bound = math.sqrt(3.0) * (gain / math.sqrt(_fan(w, mode)))  # Var U(-b, b) = b^2/3 = std^2
    nn.init.uniform_(w, -bound, bound, generator=generator)


@_register(
    "he_normal",
    uses_gain=True,
    paper_gain=math.sqrt(2.0),
    description="He et al. 2015, N(0, gain^2/fan_in), gain sqrt 2 (the rule for ReLU)",
)
def _he_normal(w: torch.Tensor, *, generator=None, gain=math.sqrt(2.0), mode="fan_in") -> None:
    r"""W_ij ~ N(0, gain^2 / fan), fan = fan_in (default) or fan_out; the paper's rule is
    gain = sqrt(2), i.e. Var(W) = 2 / fan_in (for ReLU units; sqrt(2 / (1 + a^2)) for a
    leaky ReLU of slope a, eq. 15, is ``gain="auto"`` on a leaky_relu network).

    $$
    W_{ij} \sim \mathcal{N}\left(0,\ \frac{g^2}{n}\right), \qquad g = \sqrt{2} \text{ in
    the paper: } \operatorname{Var}(W_{ij}) = \frac{2}{n_{in}}
    $$

    with $g$ = ``gain`` and $n$ the fan chosen by ``mode`` ($n_{in}$ by default, $n_{out}$
    for ``mode="fan_out"``).

    Same arithmetic as torch.nn.init.kaiming_normal_ (bitwise equal for nonlinearity="relu"),
    with the gain given as a number instead of a nonlinearity name. Departs from Keras'
    ``he_normal``, a *truncated* normal rescaled to this variance.

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on the standard deviation (sqrt 2 in the paper).
        mode: ``"fan_in"`` (forward condition, the default) or ``"fan_out"`` (backward).

    Returns:
        None (``w`` is filled in place).

    References:
        He, Zhang, Ren & Sun, "Delving deep into rectifiers: surpassing human-level performance
        on ImageNet classification", ICCV 2015, eq. 10 (n_l Var(w_l) / 2 = 1), eq. 15 (PReLU).
    """
    _scaled_normal(w, gain, mode, generator)  # eq. 10: Var = 2 / n_l for ReLU


@_register(
    "he_uniform",
    uses_gain=True,
    paper_gain=math.sqrt(2.0),
    description="He et al. 2015, U(+-gain sqrt(3/fan_in)), gain sqrt 2 (the rule for ReLU)",
)
def _he_uniform(w: torch.Tensor, *, generator=None, gain=math.sqrt(2.0), mode="fan_in") -> None:
    r"""W_ij ~ U(-b, b), b = gain * sqrt(3 / fan): the uniform law with He et al.'s variance
    gain^2 / fan; the paper's rule is gain = sqrt(2), i.e. b = sqrt(6 / fan_in).

    $$
    W_{ij} \sim \mathcal{U}(-b, b), \quad b = g \sqrt{\frac{3}{n}}, \qquad
    \operatorname{Var}(W_{ij}) = \frac{g^2}{n}
    $$

    with $g$ = ``gain`` ($\sqrt 2$ in the paper, $b = \sqrt{6 / n_{in}}$) and $n$ the fan
    chosen by ``mode``.

    Same arithmetic as torch.nn.init.kaiming_uniform_ (bitwise equal for nonlinearity="relu").

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on b (sqrt 2 in the paper).
        mode: ``"fan_in"`` (default) or ``"fan_out"``.

    Returns:
        None (``w`` is filled in place).

    References:
        He, Zhang, Ren & Sun, "Delving deep into rectifiers", ICCV 2015, eq. 10.
    """
    _scaled_uniform(w, gain, mode, generator)  # eq. 10 with a uniform law


@_register(
    "lecun_normal", uses_gain=True, description="LeCun et al. 1998, N(0, gain^2/fan_in), gain 1"
)
def _lecun_normal(w: torch.Tensor, *, generator=None, gain=1.0, mode="fan_in") -> None:
    r"""W_ij ~ N(0, gain^2 / fan_in); the paper's rule is gain = 1, Var(W) = 1 / fan_in: each
    unit's weighted sum then has unit variance when its inputs do.

    $$
    W_{ij} \sim \mathcal{N}\left(0,\ \frac{g^2}{n}\right), \qquad g = 1 \text{ in the
    paper: } \operatorname{Var}(W_{ij}) = \frac{1}{n_{in}}
    $$

    with $g$ = ``gain`` and $n$ the fan chosen by ``mode`` ($n_{in}$, the paper's $m$, by
    default).

    LeCun et al. meant it for the scaled tanh 1.7159 tanh(2x/3); on any network the name
    means this rule (``gain="auto"`` on a ReLU network gives He's rule). torch has no LeCun
    rule; this is kaiming_normal_'s arithmetic with gain 1. Departs from Keras'
    ``lecun_normal``, a *truncated* normal rescaled to this variance.

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on the standard deviation (1 in the paper).
        mode: ``"fan_in"`` (the paper's m, default) or ``"fan_out"``.

    Returns:
        None (``w`` is filled in place).

    References:
        LeCun, Bottou, Orr & Mueller, "Efficient BackProp", in Neural Networks: Tricks of the
        Trade, Springer 1998, section 4.6 (sigma_w = m^(-1/2)).
    """
    _scaled_normal(w, gain, mode, generator)  # sigma_w = gain m^(-1/2) (section 4.6)


@_register(
    "lecun_uniform",
    uses_gain=True,
    description="LeCun et al. 1998, U(+-gain sqrt(3/fan_in)), gain 1",
)
def _lecun_uniform(w: torch.Tensor, *, generator=None, gain=1.0, mode="fan_in") -> None:
    r"""W_ij ~ U(-b, b), b = gain * sqrt(3 / fan_in): LeCun et al.'s variance gain^2 / fan_in
    with a uniform law; the paper's rule is gain = 1, Var(W) = 1 / fan_in. (Gain 1/sqrt(3),
    b = 1/sqrt(fan_in), is torch's nn.Linear default and Glorot & Bengio's "standard" init.)

    $$
    W_{ij} \sim \mathcal{U}(-b, b), \quad b = g \sqrt{\frac{3}{n}}, \qquad
    \operatorname{Var}(W_{ij}) = \frac{g^2}{n}
    $$

    with $g$ = ``gain`` (1 in the paper) and $n$ the fan chosen by ``mode`` ($n_{in}$ by
    default).

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on b (1 in the paper).
        mode: ``"fan_in"`` (default) or ``"fan_out"``.

    Returns:
        None (``w`` is filled in place).

    References:
        LeCun, Bottou, Orr & Mueller, "Efficient BackProp", 1998, section 4.6.
    """
    _scaled_uniform(w, gain, mode, generator)  # Var = gain^2 / fan_in


@_register(
    "orthogonal",
    uses_gain=True,
    description="Saxe et al. 2014, gain * Q, Q Haar-orthogonal from the SVD of a Gaussian, gain 1",
)
def _orthogonal(w: torch.Tensor, *, generator=None, gain=1.0) -> None:
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
def _identity(
    w: torch.Tensor, *, generator=None, gain=1.0, scale: float = 1.0, noise: float = 0.0
) -> None:
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
def _sparse(w: torch.Tensor, *, generator=None, gain=1.0, k: int = 15, sigma: float = 1.0) -> None:
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
def _zeros(w: torch.Tensor, *, generator=None, gain=1.0) -> None:
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
def _ones(w: torch.Tensor, *, generator=None, gain=1.0) -> None:
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
def _constant(w: torch.Tensor, *, generator=None, gain=1.0, value: float = 0.0) -> None:
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

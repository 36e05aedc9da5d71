"""Weight initializers by name, for any PyTorch model.

Two entry points:

* ``initialize(weight, name, *, generator=None, gain=None, activation=None, stacked=False,
  **params)`` fills one weight tensor in place (``(out_features, in_features)`` for a Linear
  layer, torch's ``(out, in, *kernel)`` for a convolution);
* ``apply(model, name, *, generator=None, bias=0.0, layers=(nn.Linear,), activation=None,
  gain=None, **params)`` initializes the weight of every selected layer of ``model`` (and sets its
  bias), including the model-level rules ``lsuv`` (needs ``data=``) and ``pretrained`` (needs
  ``source=``: ``(W, b)`` pairs, a callable, or a registered source name; the ``"dbn"`` and
  ``"sda"`` pretraining sources are registered by the experiment layer, ``import
  smithing.experiment``, since this core module imports neither the pretraining code nor the
  datasets).

**Names.** Each rule has one name (``smithing list``) and may have aliases, the names torch and
Keras give it (:data:`ALIASES`): ``xavier_uniform`` / ``xavier_uniform_`` for ``glorot_uniform``,
``kaiming_normal`` for ``he_normal``, ``eye`` for ``identity``, Keras' ``random_normal`` for
``normal``, ...; an alias means our rule with our defaults. A misspelt name is answered with the
closest name or alias (``xavier_unifrom``: did you mean 'xavier_uniform', an alias of
'glorot_uniform'?).

Fans follow torch's convention: for a weight of shape ``(out, in, *kernel)``,
``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``; for ``nn.Linear``,
``fan_in = in_features``.

**Gains.** A name means its paper's rule, whatever the network's activation:
``apply(tanh_mlp, "lecun_normal")`` is LeCun's ``Var(W) = 1/fan_in``. The fan-based rules
(``glorot_*``, ``he_*``, ``lecun_*``) and ``orthogonal`` multiply their standard deviation by a
gain, given by ``gain=``:

* ``None`` (default) or ``"paper"``: the paper's rule; gain 1 for Glorot, LeCun and orthogonal,
  while He's ``sqrt 2`` is part of He's rule itself (``Var(W) = 2/fan_in``);
* ``"auto"``: the gain of the network's activation as ``torch.nn.init.calculate_gain`` gives it
  (sigmoid 1, tanh 5/3, relu sqrt 2, leaky_relu(0.01) ``sqrt(2/(1 + 0.01^2))``, linear 1; elu,
  softplus and softsign, which torch does not list, 1: :mod:`smithing.nn.activations`), taken
  from the ``activation=`` argument, else from ``model.activation`` (an ``MLP``); an error when
  no activation is known. With ``"auto"``, ``he_*`` and ``lecun_*`` coincide (both
  ``gain/sqrt(fan_in)``), as torch's ``kaiming_*`` does for a named nonlinearity;
* a positive number, e.g. ``gain=4`` for the Theano deep-learning tutorial's sigmoid layers
  (``W ~ U(+-4 sqrt(6/(fan_in+fan_out)))``).

The same gain is used for every selected layer, the output layer included (as Glorot & Bengio
and He et al. do).

**Randomness.** Every rule takes an optional ``generator``; same generator state, same weights
(bitwise on CPU). ``stacked=True`` treats the leading axis of ``weight`` as the ensemble members
axis: member ``i`` is initialized as ``weight[i]`` would be alone, one after the other from the
same generator.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from smithing._registry import Registry, check, unknown_name_message
from smithing.nn import activations as _activations

LayerSelector = tuple[type[nn.Module], ...] | Callable[[str, nn.Module], bool]


@dataclass(frozen=True)
class Initializer:
    """A registered initialization rule.

    ``fn`` is ``fn(weight, *, generator, gain, **params)`` (in place) for a tensor rule, or
    ``fn(model, layers, *, generator, gain, bias, activation, **params)`` for a model rule
    (``layers`` is the list of selected ``(name, module)`` pairs).
    """

    name: str
    fn: Callable[..., object]
    model_level: bool
    uses_gain: bool
    paper_gain: float
    description: str


INITIALIZERS: Registry[Initializer] = Registry("initializer")
PRETRAINED: Registry[Callable[..., object]] = Registry("pretrained source")


def _register(name: str, *, model_level=False, uses_gain=False, paper_gain=1.0, description=""):
    def deco(fn):
        desc = description or (fn.__doc__ or "").strip().splitlines()[0]
        INITIALIZERS.register(
            name, Initializer(name, fn, model_level, uses_gain, paper_gain, desc), description=desc
        )
        return fn

    return deco


def names() -> list[str]:
    """Names of the registered initializers."""
    return INITIALIZERS.names()


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight ``(out, in, *kernel)`` (torch's convention)."""
    check(weight.dim() >= 2, "weight", tuple(weight.shape), "a tensor with at least 2 dimensions")
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


# ----------------------------------------------------------------------------- tensor rules
#
# Every tensor rule is ``fn(w, *, generator, gain, **params) -> None`` and fills ``w`` in place
# (:func:`initialize` validates the arguments, resolves the gain and returns ``w``).


@_register("uniform", description="U(-a, a), a fixed scale (default a = 0.05)")
def _uniform(w: torch.Tensor, *, generator=None, gain=1.0, a: float = 0.05) -> None:
    """W_ij ~ U(-a, a): the classic fixed-scale init, Var(W) = a^2 / 3 (no gain).

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
    """W_ij ~ N(0, sigma^2) with a fixed sigma (default 0.01; no gain).

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
    """W_ij ~ U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)), so
    Var(W) = gain^2 * 2 / (fan_in + fan_out); the paper's rule is gain = 1.

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
    """W_ij ~ N(0, gain^2 * 2 / (fan_in + fan_out)); the paper's variance is gain = 1.

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
    """W_ij ~ N(0, gain^2 / fan), fan = fan_in (default) or fan_out; the paper's rule is
    gain = sqrt(2), i.e. Var(W) = 2 / fan_in (for ReLU units; sqrt(2 / (1 + a^2)) for a
    leaky ReLU of slope a, eq. 15, is ``gain="auto"`` on a leaky_relu network).

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
    """W_ij ~ U(-b, b), b = gain * sqrt(3 / fan): the uniform law with He et al.'s variance
    gain^2 / fan; the paper's rule is gain = sqrt(2), i.e. b = sqrt(6 / fan_in).

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
    """W_ij ~ N(0, gain^2 / fan_in); the paper's rule is gain = 1, Var(W) = 1 / fan_in: each
    unit's weighted sum then has unit variance when its inputs do.

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
    """W_ij ~ U(-b, b), b = gain * sqrt(3 / fan_in): LeCun et al.'s variance gain^2 / fan_in
    with a uniform law; the paper's rule is gain = 1, Var(W) = 1 / fan_in. (Gain 1/sqrt(3),
    b = 1/sqrt(fan_in), is torch's nn.Linear default and Glorot & Bengio's "standard" init.)

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
    """W = gain * Q, Q the U or V^T factor of the thin SVD of a Gaussian matrix of W's shape,
    its signs fixed so that Q is Haar-distributed; the paper's rule is gain = 1.

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
    """W = scale * I (+ N(0, noise^2) noise when ``noise > 0``; no gain); a rectangular W gets
    the identity in its leading square block and zeros elsewhere (torch.nn.init.eye_).

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
    """Each unit (row of W) gets exactly ``min(k, fan_in)`` non-zero incoming weights, at
    inputs chosen uniformly at random without replacement, with values N(0, sigma^2); the rest
    are 0. Var(W) = sigma^2 k / fan_in (no gain).

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
    """W = 0 (no gain, no randomness): the initialization not to use for the weights.

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
    """W = 1 (no gain, no randomness); every unit of a layer computes the same function (see
    ``zeros``). Exactly torch.nn.init.ones_ (Keras ``ones``).

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
    """W = value everywhere (no gain, no randomness); every unit of a layer computes the same
    function (see ``zeros``). Exactly torch.nn.init.constant_ (Keras ``constant``).

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


# ----------------------------------------------------------------------------- aliases

#: Other libraries' names for our rules, accepted wherever a rule is named (``initialize``,
#: ``apply``, ``--init``): torch.nn.init's functions, with or without their trailing ``_``, and
#: keras.initializers' string names. An alias means our rule with our defaults (e.g. ``normal``'s
#: sigma 0.01, not torch's 1 or Keras' 0.05). Keras' ``glorot_uniform``, ``he_normal``,
#: ``lecun_uniform``, ``orthogonal``, ``identity``, ``zeros``, ``ones``, ``constant`` are our
#: names already (Keras' ``*_normal`` rules are truncated normals; ours are not). torch's
#: ``sparse_`` is not an alias: it zeroes a fraction of each column, ours keeps k weights a row.
ALIASES: dict[str, str] = {
    **{
        spelling: rule
        for torch_name, rule in (
            ("xavier_uniform", "glorot_uniform"),
            ("xavier_normal", "glorot_normal"),
            ("kaiming_uniform", "he_uniform"),
            ("kaiming_normal", "he_normal"),
            ("orthogonal", "orthogonal"),
            ("eye", "identity"),
            ("uniform", "uniform"),
            ("normal", "normal"),
            ("zeros", "zeros"),
            ("ones", "ones"),
            ("constant", "constant"),
        )
        for spelling in (torch_name, torch_name + "_")
        if spelling != rule
    },
    "random_uniform": "uniform",  # Keras (half-width 0.05, as ours)
    "random_normal": "normal",  # Keras
}
for _alias, _rule in ALIASES.items():
    INITIALIZERS.alias(_alias, _rule)


# ----------------------------------------------------------------------------- resolution

_GAINS = "None or 'paper' (the paper's rule), 'auto' (the activation's gain) or a positive number"


def _resolve_gain(spec: Initializer, gain, activation: str | None) -> float:
    """The number ``gain`` stands for (see the module docstring)."""
    if not spec.uses_gain:
        check(gain is None, "gain", gain, f"None: {spec.name!r} does not use a gain")
        return 1.0
    if gain is None or gain == "paper":
        return spec.paper_gain  # the name means its paper's rule, whatever the activation
    if gain == "auto":
        check(
            activation is not None,
            "gain",
            gain,
            "an activation to take the gain from: pass activation= (or a model with an "
            "'activation' attribute, such as an MLP)",
        )
        return _activations.gain(activation)  # torch.nn.init.calculate_gain's convention
    if gain == "theano":
        raise ValueError(
            f"gain='theano' is invalid: expected {_GAINS}; the Theano tutorial's rule is "
            "gain=4 for sigmoid layers (1 otherwise)"
        )
    check(
        isinstance(gain, (int, float))
        and not isinstance(gain, bool)
        and math.isfinite(gain)
        and gain > 0,
        "gain",
        gain,
        _GAINS,
    )
    return float(gain)


def _check_params(spec: Initializer, params: dict) -> None:
    sig = inspect.signature(spec.fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return  # the rule forwards extra parameters (pretrained sources)
    allowed = [
        n
        for n, p in sig.parameters.items()
        if p.kind is p.KEYWORD_ONLY and n not in ("generator", "gain", "bias", "activation")
    ]
    for key in params:
        check(
            key in allowed,
            key,
            params[key],
            f"a parameter of {spec.name!r} (its parameters: {', '.join(allowed) or 'none'})",
        )


def initialize(
    weight: torch.Tensor,
    name: str,
    *,
    generator: torch.Generator | None = None,
    gain: float | str | None = None,
    activation: str | None = None,
    stacked: bool = False,
    **params,
) -> torch.Tensor:
    """Fill ``weight`` in place with the rule ``name`` and return it.

    Args:
        weight: the tensor to fill, ``(out, in, *kernel)`` (``(members, out, in, ...)`` with
            ``stacked=True``).
        name: a registered rule (``smithing list``) or one of its torch / Keras aliases.
        generator: source of randomness (same state, same weights).
        gain: ``None``/``"paper"`` (the paper's rule, default), ``"auto"`` (the gain of
            ``activation``) or a positive number (see the module docstring).
        activation: the activation whose gain ``gain="auto"`` uses; ignored otherwise.
        stacked: the leading axis of ``weight`` is an ensemble's members axis; each member is
            initialized on its own, one after the other from ``generator``.
        params: the rule's own (``a`` for uniform, ``sigma`` for normal and sparse, ``k`` for
            sparse, ``mode`` for he/lecun, ``scale`` and ``noise`` for identity).

    Returns:
        ``weight``.
    """
    spec = INITIALIZERS.get(name)
    if spec.model_level:
        raise ValueError(
            f"initializer {name!r} needs a model: use smithing.init.apply(model, {name!r}, ...)"
        )
    _check_params(spec, params)
    if activation is not None:
        _activations.get(activation)  # validates the name
    g = _resolve_gain(spec, gain, activation)
    with torch.no_grad():
        if stacked:
            check(
                weight.dim() >= 3,
                "weight",
                tuple(weight.shape),
                "a (members, out, in, ...) tensor when stacked=True",
            )
            for member in weight:  # member: (out, in, ...) view
                spec.fn(member, generator=generator, gain=g, **params)
        else:
            spec.fn(weight, generator=generator, gain=g, **params)
    return weight


def select_layers(
    model: nn.Module, layers: LayerSelector = (nn.Linear,)
) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` pairs of ``model`` matched by ``layers`` that have a ``weight``.

    ``layers`` is a tuple of module types or a predicate ``(name, module) -> bool``.
    """
    if isinstance(layers, type):
        layers = (layers,)
    if isinstance(layers, tuple):
        types = layers
        check(
            all(isinstance(t, type) for t in types),
            "layers",
            layers,
            "a tuple of module types or a predicate (name, module) -> bool",
        )

        def match(_n, m):
            return isinstance(m, types)
    else:
        check(
            callable(layers),
            "layers",
            layers,
            "a tuple of module types or a predicate (name, module) -> bool",
        )
        match = layers
    out = [
        (n, m)
        for n, m in model.named_modules()
        if match(n, m) and isinstance(getattr(m, "weight", None), torch.Tensor)
    ]
    if not out:
        raise ValueError(
            f"layers={layers!r} is invalid: it matches no module with a weight in "
            f"{type(model).__name__}"
        )
    return out


def _set_bias(module: nn.Module, bias) -> None:
    b = getattr(module, "bias", None)
    if b is None or bias == "keep":
        return
    with torch.no_grad():
        b.fill_(0.0 if bias == "zero" else float(bias))


def _check_bias(bias) -> None:
    ok = bias in ("zero", "keep") or (
        isinstance(bias, (int, float)) and not isinstance(bias, bool) and math.isfinite(bias)
    )
    check(ok, "bias", bias, "a number, 'zero' or 'keep'")


def _model_activation(model: nn.Module, activation: str | None) -> str | None:
    if activation is not None:
        _activations.get(activation)
        return activation
    act = getattr(model, "activation", None)
    return act if isinstance(act, str) and act in _activations.ACTIVATIONS else None


def apply(
    model: nn.Module,
    name: str,
    *,
    generator: torch.Generator | None = None,
    bias: float | str = 0.0,
    layers: LayerSelector = (nn.Linear,),
    activation: str | None = None,
    gain: float | str | None = None,
    **params,
) -> nn.Module:
    """Initialize the selected layers of ``model`` with the rule ``name``; returns ``model``.

    Args:
        generator: source of randomness (same state, same weights).
        bias: value the selected layers' biases are set to (``0.0``/``"zero"`` by default, as
            every paper above does), or ``"keep"`` to leave them.
        layers: module types (default ``(nn.Linear,)``) or a predicate ``(name, module) ->
            bool`` choosing which modules' ``weight`` is initialized.
        activation: activation name whose gain ``gain="auto"`` uses; default
            ``model.activation`` when the model has one (an ``MLP``). It does not change the
            rule otherwise: ``apply(tanh_mlp, "lecun_normal")`` is LeCun's rule.
        gain: ``None``/``"paper"`` (the paper's rule, default), ``"auto"`` or a positive
            number (see the module docstring).
        params: the rule's parameters (``data=``, ``tol=``, ... for ``lsuv``; ``source=`` for
            ``pretrained``).
    """
    spec = INITIALIZERS.get(name)
    _check_bias(bias)
    act = _model_activation(model, activation)
    selected = select_layers(model, layers)
    if spec.model_level:
        _check_params(spec, params)
        spec.fn(
            model, selected, generator=generator, gain=gain, bias=bias, activation=act, **params
        )
        return model
    for _, module in selected:
        initialize(module.weight, name, generator=generator, gain=gain, activation=act, **params)
        _set_bias(module, bias)
    return model


# ----------------------------------------------------------------------------- LSUV


class _StopForward(Exception):
    pass


@contextlib.contextmanager
def _deterministic(model: nn.Module):
    """Enter the ``deterministic()`` context of every module that has one (DropConnect)."""
    with contextlib.ExitStack() as stack:
        for m in model.modules():
            enter = getattr(m, "deterministic", None)
            if callable(enter):
                stack.enter_context(enter())
        yield


@_register(
    "lsuv",
    model_level=True,
    description="Mishkin & Matas 2016, orthogonal init then unit pre-activation variance per layer",
)
def _lsuv_rule(
    model,
    selected,
    *,
    generator=None,
    gain=None,
    bias=0.0,
    activation=None,
    data: torch.Tensor | None = None,
    tol: float = 0.1,
    max_iter: int = 10,
    pre_init: str = "orthogonal",
) -> None:
    """Layer-sequential unit-variance init: ``pre_init`` (orthogonal, gain 1 by default), then
    each selected layer's weight rescaled, in forward order, ``W_L <- W_L / sqrt(Var(B_L))``
    until its pre-activation output ``B_L`` on ``data`` has variance 1 (see :func:`lsuv`).

    Args:
        model, selected: the model and its selected ``(name, module)`` layers.
        generator: randomness of ``pre_init``.
        gain, activation: the gain of ``pre_init`` (default its paper's rule; it does not change
            the result beyond rounding, since every layer is rescaled afterwards).
        bias: the bias policy, applied before the rescaling.
        data: a batch of inputs (required).
        tol, max_iter: the paper's Tol_var (0.1) and T_max (10).
        pre_init: the tensor rule applied first.

    Returns:
        None (the layers are set in place; :func:`lsuv` returns the variances).

    References:
        Mishkin & Matas, "All you need is a good init", ICLR 2016, Algorithm 1.
    """
    if data is None:
        raise ValueError(
            "data=None is invalid: expected a batch of inputs (lsuv is data-dependent:"
            " apply(model, 'lsuv', data=x))"
        )
    _lsuv(
        model,
        selected,
        data,
        generator=generator,
        gain=gain,
        bias=bias,
        activation=activation,
        tol=tol,
        max_iter=max_iter,
        pre_init=pre_init,
    )


def lsuv(
    model: nn.Module,
    data: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    layers: LayerSelector = (nn.Linear,),
    bias: float | str = 0.0,
    tol: float = 0.1,
    max_iter: int = 10,
    pre_init: str = "orthogonal",
) -> dict[str, float]:
    """Layer-sequential unit-variance (LSUV) initialization; returns each layer's output variance.

    Mishkin & Matas, "All you need is a good init", ICLR 2016, Algorithm 1:

    1. pre-initialize every layer's weight with an orthonormal matrix (``pre_init``, Saxe et al.
       2014; any registered tensor rule may be given instead);
    2. for each layer L in forward order, repeat at most ``max_iter`` times: run the batch
       ``data`` forward, ``v = Var(B_L)`` over all examples and units of the layer's output
       (its pre-activation), stop if ``|v - 1| < tol``, else ``W_L <- W_L / sqrt(v)``.

    The paper's Tol_var = 0.1 and T_max = 10 are the defaults. Biases are set by ``bias`` before
    step 2 (zero by default; with zero bias one rescaling already gives v = 1 exactly).

    ``B_L`` is the layer's pre-activation. For an ``nn.Linear`` that is its output. A layer
    whose output is already past its activation and random (a DropConnect layer,
    :class:`smithing.nn.dropconnect.DropConnectLinear`, returns ``a(u)`` for sampled masks)
    says so by defining ``preactivation(x)``, its deterministic pre-activation (DropConnect:
    ``(1 - p)(W x + b)``, the masks off and the mean weights), and ``deterministic()``, a
    context in which its forward is deterministic (DropConnect: ``a((1 - p)(W x + b))``);
    ``B_L = preactivation(x)`` is then normalized, and every forward pass of the algorithm runs
    inside every such layer's ``deterministic()`` context, so no mask or sample is drawn.

    Implementation: forward hooks capture each layer's pre-activation (its first call, if a
    module is called several times) and stop the forward pass there; the model runs in eval
    mode (no dropout) under ``torch.no_grad`` and its train/eval flags are restored afterwards.

    Args:
        model: the network.
        data: a batch of at least 2 inputs.
        generator: randomness of ``pre_init``.
        layers: the layers to initialize (module types or a predicate, as :func:`apply`).
        bias: the bias policy (as :func:`apply`), applied before the rescaling.
        tol: the tolerance on ``|Var(B_L) - 1|`` (the paper's Tol_var).
        max_iter: the most rescalings per layer (the paper's T_max).
        pre_init: the tensor rule applied first (orthogonal, gain 1).

    Returns:
        ``{layer name: Var(B_L)}`` after the last rescaling, in forward order.

    References:
        Mishkin & Matas, "All you need is a good init", ICLR 2016, Algorithm 1.
    """
    _check_bias(bias)
    return _lsuv(
        model,
        select_layers(model, layers),
        data,
        generator=generator,
        gain=None,
        bias=bias,
        activation=None,
        tol=tol,
        max_iter=max_iter,
        pre_init=pre_init,
    )


def _lsuv(model, selected, data, *, generator, gain, bias, activation, tol, max_iter, pre_init):
    check(
        isinstance(data, torch.Tensor) and data.shape[0] >= 2,
        "data",
        type(data).__name__,
        "a tensor batch of at least 2 examples",
    )
    check(tol > 0, "tol", tol, "a positive tolerance")
    check(isinstance(max_iter, int) and max_iter >= 1, "max_iter", max_iter, "a positive int")
    for _, module in selected:
        initialize(module.weight, pre_init, generator=generator, gain=gain, activation=activation)
        _set_bias(module, bias)
    flags = {m: m.training for m in model.modules()}
    model.eval()
    state = {"target": None, "out": None, "order": []}

    def make_hook(layer_name):
        def hook(module, inputs, output):
            if layer_name not in state["order"]:
                state["order"].append(layer_name)
            if state["target"] == layer_name:
                pre = getattr(module, "preactivation", None)  # output past its activation
                state["out"] = output if pre is None else pre(inputs[0])  # B_L
                raise _StopForward

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in selected]
    modules = dict(selected)
    variances: dict[str, float] = {}
    try:
        with torch.no_grad(), _deterministic(model):
            model(data)  # records the forward order of the selected layers
            missing = [n for n, _ in selected if n not in state["order"]]
            if missing:
                raise ValueError(
                    f"layers={missing!r} are never called by the forward pass; "
                    "lsuv needs every selected layer to run on data"
                )

            def output_variance(layer_name):
                state["target"] = layer_name
                with contextlib.suppress(_StopForward):
                    model(data)
                return float(state["out"].float().var())  # Var(B_L) over batch and units

            for layer_name in state["order"]:
                w = modules[layer_name].weight
                v = output_variance(layer_name)
                for _ in range(max_iter):
                    if not math.isfinite(v) or v == 0.0:
                        raise ValueError(
                            f"lsuv: layer {layer_name!r} has output variance {v} on "
                            "data; it cannot be rescaled to 1"
                        )
                    if abs(v - 1.0) < tol:
                        break
                    w.div_(math.sqrt(v))  # W_L <- W_L / sqrt(Var(B_L))
                    v = output_variance(layer_name)
                variances[layer_name] = v
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags.items():
            m.training = flag
    return variances


# ----------------------------------------------------------------------------- pretrained

Pairs = Sequence[tuple[torch.Tensor, torch.Tensor | None]]
_NO_SOURCES = "none registered yet: `import smithing.experiment` registers 'dbn' and 'sda'"


def register_pretrained(name: str, fn: Callable[..., object], *, description: str = "") -> None:
    """Register a pretraining source for ``apply(model, "pretrained", source=name, **params)``.

    ``fn(model, layers, *, generator, **params)`` returns the ``(W, b)`` pairs for the selected
    layers in forward order (``W`` shaped ``(out_features, in_features)`` like ``nn.Linear``,
    ``b`` a vector or None), or ``None`` after writing the weights itself. Sources are
    registered from above: the ``"dbn"`` and ``"sda"`` stack sources (greedy pretraining on a
    dataset by name or a tensor) by :mod:`smithing.experiment.pretrained`, on
    ``import smithing.experiment``. This module never imports the pretraining code.
    """
    PRETRAINED.register(name, fn, description=description)


@_register(
    "pretrained",
    model_level=True,
    description="weights from a pretraining source (RBM/DBN/DAE stack) or (W, b) pairs",
)
def _pretrained(
    model,
    selected,
    *,
    generator=None,
    gain=None,
    bias=0.0,
    activation=None,
    source=None,
    rest: str | None = None,
    **params,
) -> None:
    """Copy pretrained ``(W, b)`` pairs into the selected layers, in order.

    ``source`` is a registered name (:func:`register_pretrained`; ``"dbn"`` and ``"sda"`` once
    :mod:`smithing.experiment` is imported), a callable with that signature, or a sequence of
    ``(W, b)`` pairs (e.g. ``smithing.pretrain.stack.Stack.encoders()``). Fewer pairs than
    layers is allowed (a pretrained stack covers the hidden layers; the output layer is new):
    the remaining layers are initialized with the rule ``rest`` (e.g. ``"glorot_uniform"``)
    or, with ``rest=None``, left as they are. A pair whose ``b`` is None gets the ``bias`` policy.

    Args:
        model, selected: the model and its selected ``(name, module)`` layers.
        generator: passed to a callable or registered source, and to ``rest``.
        gain, activation: the gain of ``rest`` (default its paper's rule).
        bias: the bias policy for pairs without ``b`` and for the ``rest`` layers.
        source: a registered source name, a callable or ``(W, b)`` pairs.
        rest: the tensor rule for layers the source does not cover, or None.
        params: passed to a callable or registered source.

    Returns:
        None (the layers are set in place).

    References:
        Hinton, Osindero & Teh, "A fast learning algorithm for deep belief nets", Neural
        Computation 2006; Vincent, Larochelle, Lajoie, Bengio & Manzagol, "Stacked denoising
        autoencoders", JMLR 2010 (greedy pretraining, then supervised fine-tuning).
    """
    if source is None:
        raise ValueError(
            "source=None is invalid: expected a registered pretraining source "
            f"({', '.join(PRETRAINED.names()) or _NO_SOURCES}), a callable "
            "or a list of (W, b) pairs"
        )
    if isinstance(source, str):
        if source not in PRETRAINED:
            raise ValueError(
                unknown_name_message("pretrained source", source, PRETRAINED.names())
                + ". The stack sources 'dbn' and 'sda' are registered by the experiment layer: "
                "`import smithing.experiment` first (smithing.experiment.pretrained), or pass "
                "source=stack.encoders() of a smithing.pretrain.stack.pretrain_stack(...)"
            )
        source = PRETRAINED.get(source)
    if callable(source):
        pairs = source(model, selected, generator=generator, **params)
        if pairs is None:
            return
    else:
        if params:
            raise ValueError(
                f"{sorted(params)!r} are invalid: parameters are only passed to a "
                "callable or registered source"
            )
        pairs = source
    pairs = list(pairs)
    if len(pairs) > len(selected):
        raise ValueError(
            f"source has {len(pairs)} (W, b) pairs but the model has only "
            f"{len(selected)} selected layers ({', '.join(n for n, _ in selected)})"
        )
    with torch.no_grad():
        covered = selected[: len(pairs)]
        for i, (pair, (layer_name, module)) in enumerate(zip(pairs, covered, strict=True)):
            check(
                isinstance(pair, (tuple, list)) and len(pair) == 2,
                f"source[{i}]",
                type(pair).__name__,
                "a (W, b) pair",
            )
            W, b = pair
            if tuple(W.shape) != tuple(module.weight.shape):
                hint = (
                    " (pass W.T: W must be (out_features, in_features))"
                    if tuple(W.shape[::-1]) == tuple(module.weight.shape)
                    else ""
                )
                raise ValueError(
                    f"pretrained W {i} has shape {tuple(W.shape)} but layer "
                    f"{layer_name!r} has weight shape {tuple(module.weight.shape)}"
                    f"{hint}"
                )
            module.weight.copy_(W)
            if b is None:
                _set_bias(module, bias)
            elif getattr(module, "bias", None) is None:
                raise ValueError(f"pretrained b {i} given but layer {layer_name!r} has no bias")
            else:
                if tuple(b.shape) != tuple(module.bias.shape):
                    raise ValueError(
                        f"pretrained b {i} has shape {tuple(b.shape)} but layer "
                        f"{layer_name!r} has bias shape {tuple(module.bias.shape)}"
                    )
                module.bias.copy_(b)
    if rest is not None:
        for _, module in selected[len(pairs) :]:
            initialize(module.weight, rest, generator=generator, gain=gain, activation=activation)
            _set_bias(module, bias)


__all__ = [
    "ALIASES",
    "INITIALIZERS",
    "PRETRAINED",
    "Initializer",
    "apply",
    "fans",
    "initialize",
    "lsuv",
    "names",
    "register_pretrained",
    "select_layers",
]

"""Dropout in its three forms, Monte-Carlo dropout, and dropout as model averaging.

Hinton, Srivastava, Krizhevsky, Sutskever & Salakhutdinov, "Improving neural networks by
preventing co-adaptation of feature detectors", arXiv:1207.0580, 2012; Srivastava et al.,
"Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 15, 2014.

``p`` is always the **drop** probability (PyTorch's convention). The papers write ``p`` for the
*retain* probability: their ``p`` is our ``1 - p``.

Modes (``Dropout(p, mode)``; a registry, ``smithing list`` shows them):

* ``"lecture"`` (the papers' form): training ``y = m * x`` with ``m ~ Bernoulli(1 - p)`` per
  element; inference ``y = (1 - p) x`` (the papers scale the outgoing *weights* by the retain
  probability; scaling the activations is the same thing for the next linear layer).
* ``"inverted"`` (PyTorch's ``nn.Dropout``): training ``y = m * x / (1 - p)``; inference
  ``y = x``. Both forms have ``E[y_train] = y_inference``; with the same mask the lecture output is
  ``(1 - p)`` times the inverted output, in training and at inference alike, so a lecture network
  equals an inverted one whose next layer's weights are multiplied by ``1 - p``.
* ``"gaussian"`` (Srivastava et al. 2014, Sec. 10): training ``y = x * r`` with
  ``r ~ N(1, p / (1 - p))`` (the paper's ``sigma^2 = (1 - p_retain) / p_retain``: the same mean and
  variance as the inverted Bernoulli mask ``m / (1 - p)``); inference ``y = x``.

Masks and noise are drawn with ``torch.rand_like`` / ``torch.randn_like`` and no explicit
generator, so the module works under ``torch.func.vmap(..., randomness="different")`` (one mask
per ensemble member); the runner seeds the global generator.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from smithing._registry import Registry, check

__all__ = [
    "DROPOUT_MODES",
    "Dropout",
    "SubnetworkAverage",
    "enumerate_subnetworks",
    "make_dropout",
    "mc_predict",
]

DROPOUT_MODES: Registry[str] = Registry("dropout mode")
DROPOUT_MODES.register(
    "inverted", "inverted", description="train: m*x/(1-p); inference: x (PyTorch's nn.Dropout)"
)
DROPOUT_MODES.register(
    "lecture", "lecture", description="train: m*x; inference: (1-p)*x (Hinton et al. 2012)"
)
DROPOUT_MODES.register(
    "gaussian", "gaussian", description="train: x*N(1, p/(1-p)); inference: x (Srivastava 2014)"
)


class Dropout(nn.Module):
    r"""Dropout with drop probability ``p`` in the given ``mode`` (see the module docstring).

    $$
    \begin{array}{lll}
    & \text{training} & \text{inference} \\
    \text{lecture:} & y = m \odot x & y = (1 - p)\, x \\
    \text{inverted:} & y = \frac{m \odot x}{1 - p} & y = x \\
    \text{gaussian:} & y = r \odot x,\ r_i \sim \mathcal{N}\left(1, \tfrac{p}{1 - p}\right)
    & y = x
    \end{array}
    $$

    with $x$ the input, $p$ = ``p`` the drop probability and
    $m_i \sim \operatorname{Bernoulli}(1 - p)$ a keep-mask drawn per element; every mode keeps the
    mean, $\mathbb{E}[y_{\text{train}}] = y_{\text{inference}}$.

    Args:
        p: the drop probability, in ``[0, 1)``.
        mode: ``"inverted"`` (``nn.Dropout``), ``"lecture"`` or ``"gaussian"``
            (:data:`DROPOUT_MODES`).

    Note:
        The papers write $p$ for the *retain* probability (their $p$ is our $1 - p$), and
        scale the outgoing weights by it at test time (``"lecture"``); PyTorch's ``nn.Dropout``
        scales at training time (``"inverted"``). The Gaussian variance is the paper's
        $\sigma^2 = (1 - p_{\text{retain}}) / p_{\text{retain}}$.

    References:
        Hinton, Srivastava, Krizhevsky, Sutskever & Salakhutdinov, "Improving neural networks
        by preventing co-adaptation of feature detectors", arXiv:1207.0580, 2012; Srivastava,
        Hinton, Krizhevsky, Sutskever & Salakhutdinov, "Dropout: A Simple Way to Prevent Neural
        Networks from Overfitting", JMLR 15, 2014, Sec. 4 (model, eq. for $\tilde y$), Sec. 10
        (Gaussian dropout).

    Examples:
        >>> import torch
        >>> drop = Dropout(0.5, mode="lecture").eval()
        >>> drop(torch.ones(3))  # inference: (1 - p) x
        tensor([0.5000, 0.5000, 0.5000])
    """

    stochastic = True  # mc_predict switches this module to training behaviour

    def __init__(self, p: float = 0.5, mode: str = "inverted") -> None:
        super().__init__()
        check(isinstance(p, (int, float)) and 0.0 <= p < 1.0, "p", p, "a probability in [0, 1)")
        self.mode = DROPOUT_MODES.get(mode)
        self.p = float(p)

    @property
    def keep(self) -> float:
        return 1.0 - self.p

    def sample_mask(self, x: Tensor) -> Tensor:
        """A keep-mask ``m ~ Bernoulli(1 - p)`` shaped like ``x`` (0/1 in ``x``'s dtype)."""
        return (torch.rand_like(x) < self.keep).to(x.dtype)  # m ~ Bernoulli(1 - p)

    def apply_mask(self, x: Tensor, mask: Tensor) -> Tensor:
        """The training-time output for a given keep-mask (``lecture``/``inverted`` only)."""
        check(self.mode != "gaussian", "mode", self.mode, "'lecture' or 'inverted' for a mask")
        if self.mode == "lecture":
            return x * mask  # y = m * x
        return x * mask / self.keep  # y = m * x / (1 - p)

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0:
            return x
        if not self.training:
            return x * self.keep if self.mode == "lecture" else x  # (1-p) x | x
        if self.mode == "gaussian":
            sigma = math.sqrt(self.p / self.keep)
            return x * (1.0 + sigma * torch.randn_like(x))  # r ~ N(1, p/(1-p)), Sec. 10
        return self.apply_mask(x, self.sample_mask(x))

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


def make_dropout(p: float, mode: str = "inverted") -> nn.Module:
    """A dropout module: ``nn.Dropout(p)`` for ``"inverted"``, :class:`Dropout` otherwise.

    Args:
        p: the drop probability, in ``[0, 1)``.
        mode: a name in :data:`DROPOUT_MODES`.

    Returns:
        The module (the formulas are :class:`Dropout`'s).
    """
    DROPOUT_MODES.get(mode)  # validates the name
    if mode == "inverted":
        check(isinstance(p, (int, float)) and 0.0 <= p < 1.0, "p", p, "a probability in [0, 1)")
        return nn.Dropout(p)
    return Dropout(p, mode)


# --------------------------------------------------------------------------- MC dropout
def _is_stochastic(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.dropout._DropoutNd) or bool(getattr(m, "stochastic", False))


@contextlib.contextmanager
def _seeded(generator: torch.Generator | None, device: torch.device) -> Iterator[None]:
    """Run the block with the global RNG seeded from ``generator`` (restored afterwards)."""
    if generator is None:
        yield
        return
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _modes(model: nn.Module, train: Callable[[nn.Module], bool]) -> Iterator[None]:
    saved = [(m, m.training) for m in model.modules()]
    try:
        for m, _ in saved:
            m.training = train(m)
        yield
    finally:
        for m, flag in saved:
            m.training = flag


def mc_predict(
    model: nn.Module,
    x: Tensor,
    samples: int = 100,
    *,
    generator: torch.Generator | None = None,
    return_samples: bool = False,
) -> Tensor:
    r"""Monte-Carlo dropout: the average of ``softmax(model(x))`` over ``samples`` dropout masks.

    $$
    p(y \mid x) \approx \frac{1}{T} \sum_{t=1}^{T} \operatorname{softmax}\left(f(x;
    m_t)\right)
    $$

    with $f$ = ``model`` (outputting logits), $x$ = ``x``, $T$ = ``samples`` and $m_t$ the
    $t$-th draw of every dropout mask (Gal & Ghahramani, "Dropout as a Bayesian
    Approximation", ICML 2016, Sec. 3, the predictive mean): every dropout module
    (``nn.Dropout*``, :class:`Dropout`, ``DropConnectLinear``; anything with ``stochastic =
    True``) keeps its training behaviour while all other modules (batch norm, ...) are in eval
    mode; modes are restored afterwards. Runs
    without gradients. ``generator`` seeds the global RNG for the call (the masks are drawn in
    ``forward``); the global RNG state is restored afterwards.

    Args:
        model: the network, outputting logits ``(batch, classes)``.
        x: the inputs.
        samples: $T$, a positive int.
        generator: seeds the global RNG for the call (restored afterwards).
        return_samples: return every sample's probabilities instead of their mean.

    Returns:
        ``(batch, classes)`` probabilities, or ``(samples, batch, classes)`` when
        ``return_samples``.
    """
    check(isinstance(samples, int) and samples >= 1, "samples", samples, "a positive int")
    with torch.no_grad(), _modes(model, _is_stochastic), _seeded(generator, x.device):
        logits = torch.stack([model(x) for _ in range(samples)])  # (samples, batch, classes)
        probs = torch.softmax(logits, dim=-1)  # one call: cheaper than `samples` small ones
    return probs if return_samples else probs.mean(dim=0)  # (batch, classes)


# --------------------------------------------------------------------------- model averaging
@dataclass
class SubnetworkAverage:
    """What :func:`enumerate_subnetworks` measured (all ``(batch, classes)`` probabilities)."""

    geometric_mean: Tensor  # normalized weighted geometric mean of the 2^n sub-networks
    arithmetic_mean: Tensor  # weighted arithmetic mean (the mixture)
    weight_scaled: Tensor  # softmax of the weight-scaled (inference-mode) network
    n_units: int  # units subject to dropout
    n_subnetworks: int  # 2^n_units

    @property
    def gap(self) -> float:
        """``max |geometric_mean - weight_scaled|``: 0 where the theory says exact."""
        return float((self.geometric_mean - self.weight_scaled).abs().max())

    @property
    def arithmetic_gap(self) -> float:
        return float((self.arithmetic_mean - self.weight_scaled).abs().max())


def _droppers(model: nn.Module) -> list[Dropout | nn.Dropout]:
    out: list[Dropout | nn.Dropout] = []
    for m in model.modules():
        if isinstance(m, Dropout):
            check(m.mode != "gaussian", "mode", m.mode, "'lecture' or 'inverted' dropout")
        elif type(m) is not nn.Dropout:
            if _is_stochastic(m):
                raise ValueError(
                    f"module={type(m).__name__!r} is invalid: expected only nn.Dropout or "
                    "smithing Dropout as stochastic modules"
                )
            continue
        if m.p > 0:
            out.append(m)
    return out


def _train_output(m: Dropout | nn.Dropout, x: Tensor, mask: Tensor) -> Tensor:
    if isinstance(m, Dropout):
        return m.apply_mask(x, mask)
    return x * mask / (1.0 - m.p)  # nn.Dropout: inverted


def enumerate_subnetworks(
    model: nn.Module, x: Tensor, *, max_units: int = 16, chunk: int = 1024
) -> SubnetworkAverage:
    r"""Dropout as model averaging, by brute force over all ``2^n`` thinned networks.

    $$
    P(m) = \prod_u (1 - p_u)^{m_u} p_u^{1 - m_u}, \qquad
    G = \operatorname{softmax}\left(\sum_m P(m) \log \operatorname{softmax}(z_m)\right),
    \qquad A = \sum_m P(m) \operatorname{softmax}(z_m)
    $$

    over the keep-masks $m \in \{0, 1\}^n$ of the $n$ units fed to dropout (drop probability
    $p_u$ each), with $z_m$ the logits of the network thinned by $m$: $G$ is the normalized
    weighted geometric mean, $A$ the arithmetic mean, compared with the weight-scaled network.

    Every unit fed to a dropout module of ``model`` (``nn.Dropout`` or :class:`Dropout` in
    ``"lecture"``/``"inverted"`` mode, inputs of shape ``(batch, units)``) is either kept or
    dropped; the thinned network with keep-mask ``m`` has probability
    ``P(m) = prod_u (1 - p_u)^m_u p_u^(1 - m_u)`` and logits ``z_m`` (its training-mode forward
    with that mask; other modules in eval mode). Returned, with ``model`` outputting logits:

    * normalized weighted geometric mean ``G = softmax(sum_m P(m) log softmax(z_m))``; with
      ``p = 0.5`` all weights are equal and this is the papers' plain geometric mean of the
      ``2^n`` networks (Hinton et al. 2012, Sec. 1; Srivastava et al. 2014, Sec. 4 and 7.5);
    * the arithmetic mean ``sum_m P(m) softmax(z_m)``;
    * the weight-scaled network ``softmax(model.eval()(x))``.

    Theory: when the dropped units feed a softmax output layer directly, ``z_m`` is affine in
    ``m``, ``sum_m P(m) z_m = z_weight_scaled`` and ``G`` equals the weight-scaled network
    exactly (the log-normalizers cancel in the final softmax). With a nonlinear hidden layer
    after the dropped units the equality is only approximate; ``gap`` measures it.

    Args:
        model: the network, outputting logits, with ``nn.Dropout`` or :class:`Dropout` modules.
        x: the inputs ``(batch, ...)``.
        max_units: refuse more units than this (``2^n`` forward rows per input).
        chunk: masks evaluated per batched forward.

    Returns:
        A :class:`SubnetworkAverage` ($G$, $A$, the weight-scaled network's probabilities).

    References:
        Hinton et al., arXiv:1207.0580, 2012, Sec. 1; Srivastava et al., JMLR 15, 2014, Sec. 4
        and Sec. 7.5; Baldi & Sadowski, "Understanding dropout", NIPS 2013 (the normalized
        weighted geometric mean).
    """
    check(isinstance(chunk, int) and chunk >= 1, "chunk", chunk, "a positive int")
    droppers = _droppers(model)
    check(len(droppers) > 0, "model", type(model).__name__, "a model with dropout (p > 0)")
    sizes: dict[nn.Module, int] = {}

    def record(m: nn.Module, args: tuple, out: Tensor) -> None:
        check(args[0].ndim == 2, "dropout input", tuple(args[0].shape), "(batch, units)")
        sizes[m] = args[0].shape[1]

    with torch.no_grad(), _modes(model, lambda m: False):
        handles = [m.register_forward_hook(record) for m in droppers]
        try:
            weight_scaled = torch.softmax(model(x), dim=-1)  # (batch, classes)
        finally:
            for h in handles:
                h.remove()
        n = sum(sizes[m] for m in droppers)
        check(n <= max_units, "max_units", max_units, f">= the {n} units subject to dropout")
        slices, start = {}, 0
        for m in droppers:
            slices[m] = (start, start + sizes[m])
            start += sizes[m]
        p_unit = torch.cat(
            [torch.full((sizes[m],), m.p, dtype=torch.float64) for m in droppers]
        )  # (n,)
        batch = x.shape[0]
        current: dict[str, Tensor] = {}

        def thin(m: Dropout | nn.Dropout, args: tuple, out: Tensor) -> Tensor:
            a, b = slices[m]
            mask = current["mask"][:, a:b].repeat_interleave(batch, dim=0)  # (c*batch, units)
            return _train_output(m, args[0], mask.to(args[0].dtype))

        log_geo = torch.zeros_like(weight_scaled, dtype=torch.float64)
        arith = torch.zeros_like(weight_scaled, dtype=torch.float64)
        bits = torch.arange(n)
        handles = [m.register_forward_hook(thin) for m in droppers]
        try:
            for lo in range(0, 2**n, chunk):
                codes = torch.arange(lo, min(lo + chunk, 2**n))
                masks = ((codes[:, None] >> bits) & 1).to(torch.float64)  # (c, n) keep-masks
                prob = torch.where(masks > 0, 1 - p_unit, p_unit).prod(dim=1)  # (c,) P(m)
                current["mask"] = masks.to(x.device)
                xs = x.repeat(len(codes), *([1] * (x.ndim - 1)))  # (c*batch, ...)
                z = model(xs).reshape(len(codes), batch, -1).double()  # (c, batch, classes)
                w = prob.to(z.device)[:, None, None]
                log_geo += (w * torch.log_softmax(z, dim=-1)).sum(dim=0)  # sum P(m) log q_m
                arith += (w * torch.softmax(z, dim=-1)).sum(dim=0)  # sum P(m) q_m
        finally:
            for h in handles:
                h.remove()
    dtype = weight_scaled.dtype
    return SubnetworkAverage(
        geometric_mean=torch.softmax(log_geo, dim=-1).to(dtype),
        arithmetic_mean=arith.to(dtype),
        weight_scaled=weight_scaled,
        n_units=n,
        n_subnetworks=2**n,
    )

"""The optimizers of :mod:`smithing.optim`, each a registered factory over ``torch.optim``
whose docstring gives the update rule, the paper and where PyTorch differs; ``make`` builds one by
name and ``lr_scales_update`` says whether its step is linear in the learning rate."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch

from smithing._registry import Registry, check
from smithing.optim._checks import _betas, _flag, _is_number, _nonnegative, _reject_unknown, _unit

__all__ = [
    "OPTIMIZERS",
    "Params",
    "defaults",
    "describe",
    "lr_scales_update",
    "make",
    "names",
]

Params = Iterable[torch.Tensor] | Iterable[dict[str, Any]]

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")


@OPTIMIZERS.register("sgd")
def sgd(params: Params, lr: float, *, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    r"""Steepest descent on mini-batches: ``x += -lr * dx``.

    $$
    x \leftarrow x - \eta\, \nabla_x L(x)
    $$

    with $\eta$ = ``lr`` and $\nabla_x L$ (``dx``) the gradient of the mini-batch loss.

    Robbins & Monro, "A Stochastic Approximation Method", Annals of Mathematical Statistics,
    1951. ``dx`` is the gradient of the mini-batch loss at ``x``.

    PyTorch: ``torch.optim.SGD(momentum=0)``, the same rule. ``weight_decay`` adds
    ``weight_decay * x`` to ``dx`` (the gradient of an L2 penalty ``weight_decay / 2 * |x|^2``).
    """
    _nonnegative("weight_decay", weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.0, weight_decay=weight_decay)


@OPTIMIZERS.register("momentum")
def momentum(
    params: Params,
    lr: float,
    *,
    momentum: float = 0.9,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    r"""Momentum: ``v = mu * v - lr * dx; x += v`` with ``mu = momentum``, ``v`` starting at 0.

    $$
    v \leftarrow \mu v - \eta\, \nabla_x L(x), \qquad x \leftarrow x + v
    $$

    with $\mu$ = ``momentum``, $\eta$ = ``lr`` and $v_0 = 0$.

    Polyak, "Some methods of speeding up the convergence of iteration methods", USSR
    Computational Mathematics and Mathematical Physics, 1964; used for backprop by Rumelhart,
    Hinton & Williams, "Learning representations by back-propagating errors", Nature, 1986.

    PyTorch (``torch.optim.SGD(momentum=mu)``) keeps ``b = mu * b + dx; x -= lr * b`` (``b``
    starts at ``dx``, the same as starting at 0). It is the lecture's rule with ``v = -lr * b``:
    equal for a constant ``lr``, different when ``lr`` changes (a schedule): PyTorch applies the
    current ``lr`` to the whole accumulated velocity, the lecture's ``v`` keeps each past gradient
    at the ``lr`` it was taken with. ``dampening`` (PyTorch only, 0 in the lecture) multiplies
    ``dx`` by ``1 - dampening`` in ``b`` after the first step. ``weight_decay`` adds
    ``weight_decay * x`` to ``dx``.
    """
    _unit("momentum", momentum)
    check(
        _is_number(dampening) and 0 <= dampening <= 1, "dampening", dampening, "a number in [0, 1]"
    )
    _nonnegative("weight_decay", weight_decay)
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay
    )


@OPTIMIZERS.register("nesterov")
def nesterov(
    params: Params, lr: float, *, momentum: float = 0.9, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    r"""Nesterov momentum: ``v_prev = v; v = mu * v - lr * dx; x += -mu * v_prev + (1 + mu) * v``.

    $$
    v_{t} = \mu v_{t-1} - \eta\, \nabla L(x_{t-1}), \qquad
    x_{t} = x_{t-1} - \mu v_{t-1} + (1 + \mu) v_{t}
    $$

    the look-ahead form of Sutskever et al.'s $v_t = \mu v_{t-1} - \eta \nabla L(\theta_{t-1} +
    \mu v_{t-1})$, $\theta_t = \theta_{t-1} + v_t$, with $x = \theta + \mu v$.

    Nesterov, "A method of solving a convex programming problem with convergence rate
    O(1/k^2)", Soviet Mathematics Doklady, 1983, in the form of Sutskever, Martens, Dahl & Hinton,
    "On the importance of initialization and momentum in deep learning", ICML 2013 (eqs. 3-4):
    ``v = mu * v - lr * grad f(theta + mu * v); theta += v``. The lecture's (cs231n) rule above
    is that rewritten in the look-ahead variable ``x = theta + mu * v``, so that ``dx`` is the
    gradient at the stored parameters. ``mu = momentum`` in (0, 1).

    PyTorch (``torch.optim.SGD(momentum=mu, nesterov=True)``): ``b = mu * b + dx;
    x -= lr * (dx + mu * b)``; with ``v = -lr * b`` this is the cs231n rule (for a constant
    ``lr``; for a changing one see ``momentum``), so PyTorch's parameters are Sutskever's
    look-ahead iterates ``theta + mu * v``, not ``theta``. ``weight_decay`` adds
    ``weight_decay * x`` to ``dx``.
    """
    check(_is_number(momentum) and 0 < momentum < 1, "momentum", momentum, "a number in (0, 1)")
    _nonnegative("weight_decay", weight_decay)
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay
    )


@OPTIMIZERS.register("adagrad")
def adagrad(
    params: Params,
    lr: float,
    *,
    eps: float = 1e-10,
    initial_accumulator_value: float = 0.0,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    r"""AdaGrad: ``cache += dx**2; x += -lr * dx / (sqrt(cache) + eps)``, ``cache`` starting at 0.

    $$
    G \leftarrow G + g \odot g, \qquad x \leftarrow x - \eta\, \frac{g}{\sqrt{G} + \epsilon}
    $$

    with $g = \nabla_x L(x)$, $G_0 = 0$ (``cache``), $\epsilon$ = ``eps``, elementwise.

    Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization", JMLR 12, 2011 (diagonal version, ``H_t = delta * I + diag(G_t)^(1/2)``):
    ``eps`` is their ``delta``, added outside the square root.

    PyTorch (``torch.optim.Adagrad``) is the same rule, eps outside the sqrt (default 1e-10).
    PyTorch-only options: ``initial_accumulator_value`` is the starting ``cache`` (0 in the
    lecture; a positive value acts like an epsilon inside the sqrt); ``lr_decay`` uses
    ``lr / (1 + (t - 1) * lr_decay)`` at step ``t``; ``weight_decay`` adds ``weight_decay * x``
    to ``dx`` (before it enters ``cache``).
    """
    _nonnegative("eps", eps)
    _nonnegative("initial_accumulator_value", initial_accumulator_value)
    _nonnegative("lr_decay", lr_decay)
    _nonnegative("weight_decay", weight_decay)
    return torch.optim.Adagrad(
        params,
        lr=lr,
        eps=eps,
        initial_accumulator_value=initial_accumulator_value,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
    )


@OPTIMIZERS.register("rmsprop")
def rmsprop(
    params: Params,
    lr: float,
    *,
    alpha: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
    centered: bool = False,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    r"""RMSprop: ``cache = decay*cache + (1-decay)*dx**2; x += -lr * dx / (sqrt(cache) + eps)``.

    $$
    r \leftarrow \alpha r + (1 - \alpha)\, g \odot g, \qquad
    x \leftarrow x - \eta\, \frac{g}{\sqrt{r} + \epsilon}
    $$

    with $g = \nabla_x L(x)$, $r_0 = 0$ (``cache``), $\alpha$ = ``alpha`` (the lecture's decay).

    Tieleman & Hinton, "Lecture 6.5 - rmsprop: Divide the gradient by a running average of its
    recent magnitude", COURSERA: Neural Networks for Machine Learning, 2012. ``cache`` starts at 0.

    PyTorch (``torch.optim.RMSprop``) is the same rule with ``alpha`` = the lecture's ``decay``
    (PyTorch's default 0.99; the lecture suggests 0.9 to 0.999) and ``eps`` outside the sqrt
    (TensorFlow 1's RMSPropOptimizer put it inside). PyTorch-only options: ``momentum``:
    ``b = momentum * b + dx / (sqrt(cache) + eps); x -= lr * b``; ``centered`` (Graves,
    "Generating Sequences With Recurrent Neural Networks", arXiv:1308.0850, 2013) divides by
    ``sqrt(cache - mean_dx**2) + eps`` with ``mean_dx`` the running mean of ``dx``;
    ``weight_decay`` adds ``weight_decay * x`` to ``dx``.
    """
    _unit("alpha", alpha)
    _nonnegative("eps", eps)
    _unit("momentum", momentum)
    _flag("centered", centered)
    _nonnegative("weight_decay", weight_decay)
    return torch.optim.RMSprop(
        params,
        lr=lr,
        alpha=alpha,
        eps=eps,
        momentum=momentum,
        centered=centered,
        weight_decay=weight_decay,
    )


@OPTIMIZERS.register("adam")
def adam(
    params: Params,
    lr: float,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
) -> torch.optim.Optimizer:
    r"""Adam: ``m = b1*m + (1-b1)*dx; v = b2*v + (1-b2)*dx**2; x += -lr * mh / (sqrt(vh) + eps)``.

    $$
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
    x_t = x_{t-1} - \eta\, \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}
    $$

    with $g_t$ the gradient at step $t \ge 1$, $m_0 = v_0 = 0$, $(\beta_1, \beta_2)$ = ``betas``.

    With bias correction ``mh = m / (1 - b1**t)``, ``vh = v / (1 - b2**t)`` at step ``t`` (from
    1), ``m`` and ``v`` starting at 0, ``(b1, b2) = betas``. Kingma & Ba, "Adam: A Method for
    Stochastic Optimization", ICLR 2015, Algorithm 1.

    PyTorch (``torch.optim.Adam``) implements Algorithm 1: ``eps`` is added to ``sqrt(vh)``, the
    bias-corrected root. The paper's end of Sec. 2 reorders it for efficiency as
    ``lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t); x += -lr_t * m / (sqrt(v) + eps_hat)``, which is
    Algorithm 1 with ``eps = eps_hat / sqrt(1 - b2**t)``: a constant ``eps_hat`` (as TensorFlow /
    Keras use) is a larger effective ``eps`` early in training, so the two forms differ for the
    same number. ``weight_decay`` adds ``weight_decay * x`` to ``dx`` (an L2 penalty that passes
    through the adaptive scaling; ``adamw`` decouples it). ``amsgrad`` (Reddi, Kale & Kumar,
    "On the Convergence of Adam and Beyond", ICLR 2018) divides by the running maximum of ``v``.
    """
    _betas(betas)
    _nonnegative("eps", eps)
    _nonnegative("weight_decay", weight_decay)
    _flag("amsgrad", amsgrad)
    return torch.optim.Adam(
        params,
        lr=lr,
        betas=(float(betas[0]), float(betas[1])),  # torch refuses (0, 0.9): mixed int and float
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
    )


@OPTIMIZERS.register("adadelta")
def adadelta(
    params: Params, lr: float, *, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    r"""AdaDelta: ``x += lr * step``, ``step = -sqrt(Ed2 + eps) / sqrt(Eg2 + eps) * dx``.

    $$
    E[g^2]_t = \rho E[g^2]_{t-1} + (1 - \rho) g_t^2, \quad
    \Delta x_t = -\frac{\sqrt{E[\Delta x^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t,
    \quad
    E[\Delta x^2]_t = \rho E[\Delta x^2]_{t-1} + (1 - \rho) \Delta x_t^2
    $$

    and $x_t = x_{t-1} + \eta\, \Delta x_t$ ($\eta$ = ``lr``; 1 is the paper's rule).

    ``Eg2 = rho*Eg2 + (1-rho)*dx**2`` (before the step), ``Ed2 = rho*Ed2 + (1-rho)*step**2``
    (after it); use ``lr = 1`` for the paper's rule.

    Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701, 2012, Algorithm 1
    (``RMS[y] = sqrt(E[y^2] + eps)``, eps inside the sqrt; ``Eg2``, ``Ed2`` start at 0; the
    paper's MNIST runs use rho = 0.95, eps = 1e-6).

    The paper has no learning rate. PyTorch (``torch.optim.Adadelta``, default lr 1.0) multiplies
    the applied step by ``lr`` but accumulates the unscaled ``step`` in ``Ed2``, so ``lr = 1`` is
    exactly the paper's rule. ``weight_decay`` adds ``weight_decay * x`` to ``dx``.
    """
    _unit("rho", rho)
    check(
        _is_number(eps) and eps > 0, "eps", eps, "a number > 0 (with eps = 0 AdaDelta never moves)"
    )
    _nonnegative("weight_decay", weight_decay)
    return torch.optim.Adadelta(params, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("adamw")
def adamw(
    params: Params,
    lr: float,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    amsgrad: bool = False,
) -> torch.optim.Optimizer:
    r"""AdamW: ``x += -eta * (alpha * mh / (sqrt(vh) + eps) + lambda * x)`` (``mh``, ``vh``: Adam).

    $$
    x_t = x_{t-1} - \eta_t \left( \alpha\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
    + \lambda x_{t-1} \right)
    $$

    with $\hat m_t$, $\hat v_t$ Adam's bias-corrected moments, $\alpha$ the learning rate,
    $\lambda$ the decoupled weight decay and $\eta_t$ the schedule multiplier.

    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 2: the
    decay ``lambda * x`` bypasses Adam's adaptive scaling (unlike an L2 term in ``dx``); ``alpha``
    is the learning rate and ``eta`` the schedule multiplier.

    PyTorch (``torch.optim.AdamW``): ``x *= 1 - lr * weight_decay`` then the Adam step with
    ``lr``, both from the same ``x``: the paper's rule with ``alpha * eta = lr`` and
    ``lambda * eta = lr * weight_decay``. So PyTorch scales the decay by the whole ``lr``
    (``weight_decay = lambda / alpha``), the paper only by the schedule ``eta``. Default
    ``weight_decay`` 0.01 (PyTorch's).
    """
    _betas(betas)
    _nonnegative("eps", eps)
    _nonnegative("weight_decay", weight_decay)
    _flag("amsgrad", amsgrad)
    return torch.optim.AdamW(
        params,
        lr=lr,
        betas=(float(betas[0]), float(betas[1])),  # torch refuses (0, 0.9): mixed int and float
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
    )


def _option_names(factory: Callable[..., Any]) -> list[str]:
    sig = inspect.signature(factory)
    return [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def names() -> list[str]:
    """The registered optimizer names."""
    return OPTIMIZERS.names()


def describe(name: str) -> str:
    """The update rule of optimizer ``name``, its paper, and where PyTorch differs (docstring)."""
    return inspect.cleandoc(OPTIMIZERS.get(name).__doc__ or "")


def defaults(name: str) -> dict[str, Any]:
    """The options of optimizer ``name`` with their default values."""
    sig = inspect.signature(OPTIMIZERS.get(name))
    return {o: sig.parameters[o].default for o in _option_names(OPTIMIZERS.get(name))}


def make(name: str, params: Params, lr: float, **options: Any) -> torch.optim.Optimizer:
    """Build optimizer ``name`` (see ``names()``) over ``params`` with learning rate ``lr``.

    ``options`` are the entry's keyword options (``defaults(name)``); an unknown option or a bad
    value raises ``ValueError`` naming it.
    """
    factory = OPTIMIZERS.get(name)
    _reject_unknown("optimizer", name, options, _option_names(factory))
    check(_is_number(lr) and lr > 0, "lr", lr, "a finite number > 0")
    return factory(params, lr, **options)


# Delta x = -lr * u(state, dx) and the new state is independent of lr, for every option these
# entries expose (checked step by step in tests/test_optim.py):
#   sgd, momentum, nesterov: b = mu*b + (1-dampening)*dx holds no lr; x -= lr*b (or lr*(dx+mu*b)).
#   adagrad: cache holds no lr; the step lr/(1+(t-1)*lr_decay) * dx/(sqrt(cache)+eps) is linear.
#   rmsprop: cache, mean_dx and the momentum buffer b = mu*b + dx/(sqrt(cache)+eps) hold no lr.
#   adam, adamw: m, v (and max v) hold no lr; AdamW's decay -lr*weight_decay*x is linear in lr.
#   adadelta: Ed2 accumulates the unscaled step; only the applied step is multiplied by lr.
_LR_LINEAR: dict[str, bool] = {
    "sgd": True,
    "momentum": True,
    "nesterov": True,
    "adagrad": True,
    "rmsprop": True,
    "adam": True,
    "adadelta": True,
    "adamw": True,
}


def lr_scales_update(name: str) -> bool:
    """Whether one step of optimizer ``name`` changes the parameters by exactly ``lr`` times a
    quantity that does not depend on ``lr`` (``Delta x = -lr * u(state, dx)``), with a state
    update that does not depend on ``lr`` either.

    True for every registered optimizer and every option it exposes (including AdaGrad's
    ``lr_decay``, a factor ``1 / (1 + (t - 1) * lr_decay)`` on ``lr``, and AdamW's decoupled decay
    ``-lr * weight_decay * x``). The ensemble runner relies on it: it runs one optimizer over
    stacked members at ``lr_ref = max(1, max_m lr_m)`` and sets
    ``p_new = p_old + (lr_m / lr_ref) * (p_after - p_old)`` for member ``m``, which equals
    stepping member ``m`` with ``lr = lr_m`` (also with a schedule, ``lr_m * schedule_factor(...)``,
    since PyTorch applies the current ``lr`` at step time); ``fit_ensemble`` refuses different
    per-member rates for an optimizer for which this is False.
    Stacking is exact because all these optimizers act coordinate by coordinate (no norms across
    a tensor); the scaled update agrees with the direct one up to rounding, not bitwise. An
    optimizer registered later without an entry here is reported as False.
    """
    OPTIMIZERS.get(name)  # unknown names raise, listing the valid ones
    return _LR_LINEAR.get(name, False)

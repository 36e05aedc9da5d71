"""Weight penalties: L2, L1, elastic net, decoupled weight decay, proximal L1.

Two ways to shrink weights, documented side by side because they are often confused:

* **L2 penalty** (the lecture; Nielsen, *Neural Networks and Deep Learning*, 2015, ch. 3): the
  cost becomes ``C = C0 + lam/(2n) sum_w w^2`` (``lam`` = ``l2``, ``n`` = training-set size), its
  gradient adds ``(lam/n) w``, and plain SGD with learning rate ``eta`` gives
  ``w -> (1 - eta lam/n) w - eta dC0/dw``. The term goes through the optimizer: Adam divides it
  by its running RMS like any other gradient.
* **Decoupled weight decay** (Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
  ICLR 2019): the loss is left alone and the weights are shrunk next to the optimizer step,
  ``w -> (1 - lr wd) w``, before ``optimizer.step()`` (``wd`` = ``weight_decay``). For plain SGD
  this is *the same update* as the L2 penalty with ``wd = lam/n``; for Adam (and any adaptive
  method) it is not: AdamW vs. Adam + L2. Departure from the paper: like ``torch.optim.AdamW`` the
  decay factor is ``lr * weight_decay`` (the paper's ``eta_t * lambda`` with a schedule multiplier
  ``eta_t`` separate from the step size ``alpha``); with a constant schedule the two are a
  reparametrization of each other.

L1 (``C = C0 + lam/n sum |w|``) has two forms: the **subgradient** (the term in the loss; autograd
gives ``(lam/n) sgn(w)`` with ``sgn(0) = 0``), which leaves weights dithering around 0, and the
**proximal** step (``proximal=True``): after the optimizer step,
``w <- sgn(w) max(|w| - lr lam/n, 0)`` (soft threshold, the proximal operator of ``lr lam/n |w|``;
ISTA, Daubechies, Defrise & De Mol 2004), which produces exact zeros. Elastic net (Zou & Hastie,
JRSS-B 2005) is L1 + L2 together.

Masks: by default biases are not penalized (``include_biases=False``); a parameter is a bias when
its name ends in ``bias`` or it has one dimension (per member, see ``members_axis``); parameters
named in ``exclude`` (exact names, module prefixes such as ``"net.1"``, or ``fnmatch`` patterns
such as ``"*.0.weight"``) are skipped too.

Ensembles: with ``members_axis=True`` every tensor has a leading members axis (parameters stacked
by ``torch.func.stack_module_state``), each strength may be a float or a tensor of shape
``(members,)`` (one strength per member), and the penalty returns a ``(members,)`` tensor, one
penalty per member; sum it before ``backward()`` (members do not interact, so the gradient of the
sum is each member's own gradient).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from smithing._registry import check
from smithing.regularize.protocol import named_params as _named_params
from smithing.regularize.selection import NamedParams, is_bias, select

Strength = float | Tensor

__all__ = [
    "Penalty",
    "decay_",
    "elastic_net_penalty",
    "is_bias",
    "l1_penalty",
    "l2_penalty",
    "per_member",
    "select",
    "soft_threshold_",
]


# --------------------------------------------------------------------------- helpers
def per_member(value: Strength, like: Tensor, members_axis: bool, name: str = "value") -> Tensor:
    """``value`` as a tensor that broadcasts against ``like``.

    A float or 0-d tensor broadcasts everywhere; a ``(members,)`` tensor (only with
    ``members_axis=True``) is reshaped to ``(members, 1, ..., 1)`` so that member ``m``'s slice of
    ``like`` gets ``value[m]`` (a tensor already of that shape is accepted as is).
    """
    if not isinstance(value, Tensor):
        return torch.as_tensor(value, dtype=like.dtype, device=like.device)
    value = value.to(dtype=like.dtype, device=like.device)
    if value.ndim == 0:
        return value
    shaped = value.ndim == like.ndim and all(s == 1 for s in value.shape[1:])
    if members_axis and shaped and value.shape[0] == like.shape[0]:
        return value  # already (members, 1, ..., 1)
    check(
        members_axis and value.ndim == 1 and like.ndim >= 1 and value.shape[0] == like.shape[0],
        name,
        tuple(value.shape),
        f"a float, a 0-d tensor, or (with members_axis=True) a tensor of shape "
        f"({like.shape[0] if like.ndim else '?'},) matching the leading members axis",
    )
    return value.reshape(-1, *([1] * (like.ndim - 1)))  # (members, 1, ..., 1)


def _sum_per_member(x: Tensor, members_axis: bool) -> Tensor:
    """Sum over everything (scalar) or over all but the leading members axis (``(members,)``)."""
    if members_axis:
        return x.reshape(x.shape[0], -1).sum(dim=1)  # (members,)
    return x.sum()


def _as_list(weights: Tensor | Sequence[Tensor]) -> list[Tensor]:
    if isinstance(weights, Tensor):
        return [weights]
    weights = list(weights)
    check(len(weights) > 0, "weights", weights, "at least one tensor")
    return weights


def _total(terms: Iterable[Tensor]) -> Tensor:
    """``t_1 + t_2 + ...``, left to right, of at least one term (``_as_list`` checks)."""
    it = iter(terms)
    total = next(it)
    for term in it:
        total = total + term
    return total


def _check_n(n: Strength) -> None:
    if isinstance(n, Tensor):
        check(bool((n > 0).all()), "n", n, "a positive training-set size")
    else:
        check(n > 0, "n", n, "a positive training-set size")


def _check_strength(lam: Strength, name: str) -> None:
    if isinstance(lam, Tensor):
        check(bool((lam >= 0).all()), name, lam, "non-negative strengths")
    else:
        check(lam >= 0, name, lam, "a non-negative number")


def _is_zero(lam: Strength) -> bool:
    if isinstance(lam, Tensor):
        return bool((lam == 0).all())
    return lam == 0


# --------------------------------------------------------------------------- pure functions
def l2_penalty(
    weights: Tensor | Sequence[Tensor], lam: Strength, n: Strength = 1, *, members_axis=False
) -> Tensor:
    r"""``lam/(2n) sum_w w^2`` over all ``weights`` (Nielsen 2015, ch. 3, "L2 regularization").

    $$
    \Omega_{2}(w) = \frac{\lambda}{2n} \sum_{k} w_k^2,
    \qquad \frac{\partial \Omega_{2}}{\partial w_k} = \frac{\lambda}{n} w_k
    $$

    where $w_k$ runs over every entry of every tensor of ``weights``, $\lambda$ is ``lam`` and
    $n$ is ``n``. With ``members_axis=True`` each tensor is ``(members, ...)``, ``lam`` may be
    ``(members,)`` and the result is ``(members,)``; otherwise a scalar.

    Args:
        weights: one tensor or a sequence of tensors (the penalized weights).
        lam: the strength $\lambda \ge 0$; a float, or a ``(members,)`` tensor with
            ``members_axis``.
        n: the training-set size $n > 0$ (Nielsen's ``n``; ``1`` gives
            $\frac{\lambda}{2} \sum w^2$).
        members_axis: every tensor has a leading members axis (a stacked ensemble).

    Returns:
        The penalty: a scalar tensor, or a ``(members,)`` tensor with ``members_axis``.

    References:
        Nielsen, *Neural Networks and Deep Learning*, Determination Press 2015, ch. 3,
        "Regularization"; Krogh & Hertz, "A simple weight decay can improve generalization",
        NIPS 1992.

    Examples:
        >>> import torch
        >>> l2_penalty(torch.tensor([3.0, 4.0]), lam=0.1, n=5)  # 0.1 / 10 * 25
        tensor(0.2500)
    """
    _check_strength(lam, "lam")
    _check_n(n)

    def term(w: Tensor) -> Tensor:
        coef = per_member(lam, w, members_axis, "lam") / (2 * per_member(n, w, members_axis, "n"))
        return _sum_per_member(coef * w.square(), members_axis)  # lam/(2n) w^2 (Nielsen ch. 3)

    return _total(term(w) for w in _as_list(weights))


def l1_penalty(
    weights: Tensor | Sequence[Tensor], lam: Strength, n: Strength = 1, *, members_axis=False
) -> Tensor:
    r"""``lam/n sum_w |w|`` over all ``weights`` (Nielsen 2015, ch. 3, "L1 regularization").

    $$
    \Omega_{1}(w) = \frac{\lambda}{n} \sum_{k} \lvert w_k \rvert,
    \qquad \frac{\partial \Omega_{1}}{\partial w_k} = \frac{\lambda}{n} \operatorname{sgn}(w_k)
    $$

    where $w_k$ runs over every entry of every tensor of ``weights``, $\lambda$ is ``lam``, $n$
    is ``n``; the derivative is autograd's subgradient, with $\operatorname{sgn}(0) = 0$. Shapes
    as in :func:`l2_penalty`.

    Args:
        weights: one tensor or a sequence of tensors (the penalized weights).
        lam: the strength $\lambda \ge 0$; a float, or a ``(members,)`` tensor with
            ``members_axis``.
        n: the training-set size $n > 0$.
        members_axis: every tensor has a leading members axis (a stacked ensemble).

    Returns:
        The penalty: a scalar tensor, or a ``(members,)`` tensor with ``members_axis``.

    References:
        Nielsen, *Neural Networks and Deep Learning*, 2015, ch. 3, "L1 regularization";
        Tibshirani, "Regression shrinkage and selection via the lasso", JRSS-B 58(1), 1996.

    Examples:
        >>> import torch
        >>> l1_penalty(torch.tensor([3.0, -4.0]), lam=0.1, n=7)  # 0.1 / 7 * 7
        tensor(0.1000)
    """
    _check_strength(lam, "lam")
    _check_n(n)

    def term(w: Tensor) -> Tensor:
        coef = per_member(lam, w, members_axis, "lam") / per_member(n, w, members_axis, "n")
        return _sum_per_member(coef * w.abs(), members_axis)  # lam/n |w| (Nielsen ch. 3)

    return _total(term(w) for w in _as_list(weights))


def elastic_net_penalty(
    weights: Tensor | Sequence[Tensor],
    l1: Strength,
    l2: Strength,
    n: Strength = 1,
    *,
    members_axis: bool = False,
) -> Tensor:
    r"""``l1/n sum |w| + l2/(2n) sum w^2`` (Zou & Hastie 2005, in Nielsen's scaling).

    $$
    \Omega(w) = \frac{\lambda_1}{n} \sum_{k} \lvert w_k \rvert
    + \frac{\lambda_2}{2n} \sum_{k} w_k^2
    $$

    with $\lambda_1$ = ``l1``, $\lambda_2$ = ``l2``, $n$ = ``n`` and $w_k$ every entry of
    ``weights``: :func:`l1_penalty` plus :func:`l2_penalty`.

    Args:
        weights: one tensor or a sequence of tensors (the penalized weights).
        l1: the L1 strength $\lambda_1 \ge 0$ (float or ``(members,)`` tensor).
        l2: the L2 strength $\lambda_2 \ge 0$ (float or ``(members,)`` tensor).
        n: the training-set size $n > 0$.
        members_axis: every tensor has a leading members axis (a stacked ensemble).

    Returns:
        The penalty: a scalar tensor, or a ``(members,)`` tensor with ``members_axis``.

    Note:
        Zou & Hastie write the penalty on the unscaled sum of squares,
        $\lambda_1 \lVert w \rVert_1 + \lambda_2 \lVert w \rVert_2^2$; here the two terms carry
        Nielsen's $1/n$ and $1/(2n)$, so ``l1`` and ``l2`` mean what they mean in the L1 and L2
        penalties.

    References:
        Zou & Hastie, "Regularization and variable selection via the elastic net", JRSS-B 67(2),
        2005, eq. 3.
    """
    return l1_penalty(weights, l1, n, members_axis=members_axis) + l2_penalty(
        weights, l2, n, members_axis=members_axis
    )


@torch.no_grad()
def soft_threshold_(w: Tensor, thresh: Strength, *, members_axis: bool = False) -> Tensor:
    r"""In place ``w <- sgn(w) max(|w| - thresh, 0)``; returns ``w``.

    $$
    w_k \leftarrow \operatorname{sgn}(w_k) \max\left(\lvert w_k \rvert - \tau, 0\right)
    = \operatorname*{arg\,min}_{u} \tfrac12 (u - w_k)^2 + \tau \lvert u \rvert
    $$

    with $\tau$ = ``thresh`` and $w_k$ each entry of ``w``: the proximal operator of
    $\tau \lvert w \rvert$ (soft threshold); weights within $\tau$ of 0 become exactly 0.
    :class:`Penalty` calls it after the optimizer step with $\tau = \eta \lambda / n$
    (ISTA's step).

    Args:
        w: the tensor, changed in place.
        thresh: the threshold $\tau \ge 0$; a ``(members,)`` tensor with ``members_axis``.
        members_axis: ``w`` has a leading members axis (one threshold per member).

    Returns:
        ``w``.

    References:
        Daubechies, Defrise & De Mol, "An iterative thresholding algorithm for linear inverse
        problems with a sparsity constraint", Comm. Pure Appl. Math. 57(11), 2004, eq. (2.4)
        (ISTA).

    Examples:
        >>> import torch
        >>> soft_threshold_(torch.tensor([-0.3, 0.05, 1.0]), 0.1)
        tensor([-0.2000,  0.0000,  0.9000])
    """
    t = per_member(thresh, w, members_axis, "thresh")
    check(bool((t >= 0).all()), "thresh", thresh, "a non-negative threshold")
    shrunk = (w.abs() - t).clamp_(min=0)  # max(|w| - thresh, 0)
    return w.copy_(torch.sign(w) * shrunk)  # sgn(w) max(|w| - thresh, 0)


@torch.no_grad()
def decay_(w: Tensor, factor: Strength, *, members_axis: bool = False) -> Tensor:
    r"""In place decoupled weight decay ``w <- (1 - factor) w`` (``factor = lr * weight_decay``).

    $$
    w \leftarrow (1 - \eta \lambda_{wd})\, w
    $$

    with $\eta \lambda_{wd}$ = ``factor`` (the learning rate times the weight decay), applied
    next to the optimizer step, outside the loss.

    Args:
        w: the tensor, changed in place.
        factor: $\eta \lambda_{wd}$; a ``(members,)`` tensor with ``members_axis``.
        members_axis: ``w`` has a leading members axis (one factor per member).

    Returns:
        ``w``.

    Note:
        As ``torch.optim.AdamW``, the factor is ``lr * weight_decay``; the paper's update is
        $\eta_t \lambda w$ with a schedule multiplier $\eta_t$ separate from the step size
        (the same thing under a constant schedule).

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 1
        line 9 (SGDW) and Algorithm 2 line 12 (AdamW).
    """
    f = per_member(factor, w, members_axis, "factor")
    return w.mul_(1 - f)  # Loshchilov & Hutter 2019, Alg. 1 (SGDW) / Alg. 2 (AdamW)


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class Penalty:
    r"""Weight penalties of one training run (or of an ensemble, one strength per member).

    $$
    C = C_0 + \frac{\lambda_2}{2n} \sum_{k} w_k^2 + \frac{\lambda_1}{n} \sum_{k}
    \lvert w_k \rvert, \qquad w \leftarrow (1 - \eta \lambda_{wd})\, w \ \text{(before the
    step)}
    $$

    with $C_0$ the unregularized loss, $\lambda_2$ = ``l2``, $\lambda_1$ = ``l1``, $n$ =
    ``n``, $\lambda_{wd}$ = ``weight_decay``, $\eta$ the learning rate and $w_k$ the entries
    of the selected parameters. With ``proximal`` the L1 term leaves the loss and becomes the
    soft threshold
    $w_k \leftarrow \operatorname{sgn}(w_k) \max(\lvert w_k \rvert - \eta \lambda_1 / n, 0)$
    after the step.

    Args:
        l2: ``lam`` of the L2 term ``lam/(2n) sum w^2`` added to the loss.
        l1: ``lam`` of the L1 term ``lam/n sum |w|``: in the loss (subgradient) unless
            ``proximal``, then applied after the step as a soft threshold of ``lr l1/n``.
        n: training-set size (Nielsen's ``n``).
        weight_decay: decoupled decay ``w <- (1 - lr weight_decay) w`` before the step.
        include_biases: penalize the biases too (default: not; module docstring).
        exclude: names or patterns of parameters not penalized (module docstring).
        proximal: L1 by the proximal step instead of the subgradient.
        members_axis: parameters carry a leading members axis; strengths and ``lr`` may be
            ``(members,)`` tensors and :meth:`penalty` returns ``(members,)``.

    It is a regularizer of the trainers' protocol (:mod:`smithing.regularize.protocol`):
    ``fit(model, data, regularizer=Penalty(l2=1e-3, n=len(data.train)))``, or with
    ``fit_ensemble`` and ``(members,)`` strengths (:meth:`for_members` sets ``members_axis``).
    By hand, per step (``params``: the model, a dict or ``(name, tensor)`` pairs)::

        loss = loss0 + pen.penalty(model)        # .sum() with members_axis
        loss.backward()
        pen.before_step(model, lr)               # decoupled decay (if any)
        optimizer.step()
        pen.after_step(model, lr)                # proximal L1 (if any)

    or ``pen.step(optimizer, model, lr)`` for the last three lines. All parts with
    strength 0 are skipped, so ``Penalty()`` leaves training bit-for-bit unchanged.
    """

    l2: Strength = 0.0
    l1: Strength = 0.0
    n: Strength = 1
    weight_decay: Strength = 0.0
    include_biases: bool = False
    exclude: tuple[str, ...] = ()
    proximal: bool = False
    members_axis: bool = False

    def __post_init__(self) -> None:
        for name in ("l2", "l1", "weight_decay"):
            _check_strength(getattr(self, name), name)
        _check_n(self.n)
        check(
            not isinstance(self.exclude, str),
            "exclude",
            self.exclude,
            "a tuple of names or patterns (not a single string)",
        )
        object.__setattr__(self, "exclude", tuple(self.exclude))

    @property
    def active(self) -> bool:
        """Whether any part has a nonzero strength."""
        return not (_is_zero(self.l2) and _is_zero(self.l1) and _is_zero(self.weight_decay))

    def params(self, named_params: NamedParams) -> list[tuple[str, Tensor]]:
        """The penalized ``(name, tensor)`` pairs."""
        return select(
            named_params,
            include_biases=self.include_biases,
            exclude=self.exclude,
            members_axis=self.members_axis,
        )

    def penalty(self, named_params: NamedParams) -> Tensor | float:
        """The term to add to the loss: L2 plus (unless ``proximal``) L1.

        A scalar tensor, a ``(members,)`` tensor with ``members_axis``, or the float ``0.0`` when
        no in-loss term is active (adding it changes nothing).
        """
        use_l1 = not self.proximal and not _is_zero(self.l1)
        use_l2 = not _is_zero(self.l2)
        if not (use_l1 or use_l2):
            return 0.0
        weights = [p for _, p in self.params(named_params)]
        if not weights:
            return 0.0
        total: Tensor | float = 0.0
        if use_l2:
            total = total + l2_penalty(weights, self.l2, self.n, members_axis=self.members_axis)
        if use_l1:
            total = total + l1_penalty(weights, self.l1, self.n, members_axis=self.members_axis)
        return total

    def for_members(self, n: int) -> Penalty:
        """This penalty on stacked ``(members, ...)`` parameters of ``n`` members (the form
        ``fit_ensemble`` uses): ``members_axis=True``; a tensor strength has one value per
        member (``(n,)``) or one for all."""
        for name in ("l2", "l1", "n", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, Tensor):
                check(
                    v.numel() == 1 or tuple(v.shape) == (n,),
                    name,
                    tuple(v.shape),
                    f"a float or a tensor of shape ({n},), one value per member",
                )
        return self if self.members_axis else replace(self, members_axis=True)

    def before_step(self, params: NamedParams, lr: Strength) -> None:
        """The protocol's hook before ``optimizer.step()``: :meth:`apply_before_step`."""
        self.apply_before_step(params, lr)

    def after_step(self, params: NamedParams, lr: Strength) -> None:
        """The protocol's hook after ``optimizer.step()``: :meth:`apply_after_step`."""
        self.apply_after_step(params, lr)

    def apply_before_step(self, named_params: NamedParams, lr: Strength) -> None:
        """Decoupled weight decay ``w <- (1 - lr weight_decay) w`` (call before the step)."""
        if _is_zero(self.weight_decay):
            return
        for _, w in self.params(named_params):
            factor = per_member(lr, w, self.members_axis, "lr") * per_member(
                self.weight_decay, w, self.members_axis, "weight_decay"
            )
            decay_(w, factor, members_axis=self.members_axis)

    def apply_after_step(self, named_params: NamedParams, lr: Strength) -> None:
        """Proximal L1 ``w <- sgn(w) max(|w| - lr l1/n, 0)`` (call after the step)."""
        if not self.proximal or _is_zero(self.l1):
            return
        for _, w in self.params(named_params):
            m = self.members_axis
            thresh = (
                per_member(lr, w, m, "lr")
                * per_member(self.l1, w, m, "l1")
                / per_member(self.n, w, m, "n")
            )  # eta lam / n
            soft_threshold_(w, thresh, members_axis=m)

    def step(
        self,
        optimizer: torch.optim.Optimizer | Callable[[], object],
        named_params: NamedParams,
        lr: Strength,
    ) -> None:
        """``apply_before_step``, ``optimizer.step()``, ``apply_after_step``."""
        named = _named_params(named_params)
        self.apply_before_step(named, lr)
        optimizer.step() if hasattr(optimizer, "step") else optimizer()
        self.apply_after_step(named, lr)

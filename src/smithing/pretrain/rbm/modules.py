"""Thin modules over :mod:`.functional`: :class:`BernoulliRBM` and
:class:`GaussianBernoulliRBM` (one or ``M`` RBMs; parameters only, no training loop)."""

from __future__ import annotations

from typing import Any, TypeGuard

import torch
from torch import Tensor, nn

from smithing._registry import check
from smithing.pretrain._layout import WeightLayout
from smithing.pretrain.rbm.functional import (
    _expectations,
    _gaussian_expectations,
    _row,
    cd_gradient,
    energy,
    free_energy,
    gaussian_cd_gradient,
    gaussian_energy,
    gaussian_free_energy,
    gaussian_hidden_probs,
    gaussian_visible_mean,
    hidden_probs,
    sample_bernoulli,
    sample_gaussian,
    visible_probs,
)

__all__ = [
    "BernoulliRBM",
    "GaussianBernoulliRBM",
]

# ------------------------------------------------------------------ modules


class BernoulliRBM(WeightLayout, nn.Module):
    """Binary-binary RBM with parameters ``W (*M, n_visible, n_hidden)``, ``b``, ``c``.

    Initialization as in Hinton's guide (Sec. 8): ``W ~ N(0, init_std^2)`` (0.01), zero
    biases; :meth:`init_visible_bias_` sets ``b_i = log(p_i / (1 - p_i))`` from the data.
    ``members`` adds a leading members axis (an ensemble of independent RBMs). The module holds
    parameters only: training is :func:`train_rbm`.
    """

    visible_type = "bernoulli"

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        members: int | None = None,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check(
            isinstance(n_visible, int) and n_visible > 0, "n_visible", n_visible, "a positive int"
        )
        check(isinstance(n_hidden, int) and n_hidden > 0, "n_hidden", n_hidden, "a positive int")
        check(
            members is None or (isinstance(members, int) and members > 0),
            "members",
            members,
            "None or a positive int",
        )
        check(init_std >= 0, "init_std", init_std, "a non-negative number")
        lead = () if members is None else (members,)
        kw: dict[str, Any] = {"device": device, "dtype": dtype or torch.get_default_dtype()}
        W = torch.randn((*lead, n_visible, n_hidden), generator=generator, **kw) * init_std
        self.W = nn.Parameter(W)  # (*M, n_visible, n_hidden)
        self.b = nn.Parameter(torch.zeros((*lead, n_visible), **kw))  # visible biases
        self.c = nn.Parameter(torch.zeros((*lead, n_hidden), **kw))  # hidden biases

    def forward(self, v: Tensor) -> Tensor:
        return self.hidden_probs(v)

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        return energy(v, h, self.W, self.b, self.c)

    def free_energy(self, v: Tensor) -> Tensor:
        return free_energy(v, self.W, self.b, self.c)

    def hidden_probs(self, v: Tensor) -> Tensor:
        return hidden_probs(v, self.W, self.c)

    def visible_mean(self, h: Tensor) -> Tensor:
        """``E[v | h]``: the probabilities ``p(v = 1 | h)``."""
        return visible_probs(h, self.W, self.b)

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return sample_bernoulli(self.visible_mean(h), generator)

    def visible_drive(self, v: Tensor) -> Tensor:
        """What multiplies ``W`` in the hidden units' input ``c + drive(v) W`` (here ``v``)."""
        return v

    def expectations(self, v: Tensor, h: Tensor) -> dict[str, Tensor]:
        """Batch means of ``d(-E)/d theta`` keyed by parameter name (see :func:`cd_gradient`)."""
        return _expectations(v, h)

    def cd_gradient(self, v_pos: Tensor, h_pos: Tensor, v_neg: Tensor, h_neg: Tensor) -> dict:
        """The CD gradient ``<d(-E)/d theta>_pos - <d(-E)/d theta>_neg`` by the public
        :func:`~smithing.pretrain.rbm.functional.cd_gradient` (what :func:`train_rbm` uses)."""
        return cd_gradient(v_pos, h_pos, v_neg, h_neg)

    def encoder(self) -> tuple[Tensor, Tensor]:
        """``(weight (*M, n_hidden, n_visible), bias (*M, n_hidden))`` in ``nn.Linear`` layout:
        ``p(h | v) = sigmoid(v @ weight.T + bias)``; ``weight = W.T`` (an explicit transpose)."""
        return self.W.detach().transpose(-1, -2).clone(
            memory_format=torch.contiguous_format
        ), self.c.detach().clone()

    @torch.no_grad()
    def init_visible_bias_(self, data: Tensor, eps: float = 1e-3) -> BernoulliRBM:
        """``b_i = log(p_i / (1 - p_i))`` with ``p_i`` the data mean clipped to ``[eps, 1-eps]``
        (Hinton's guide, Sec. 8). ``data (n, n_visible)`` or ``(M, n, n_visible)``."""
        p = data.mean(-2).clamp(eps, 1 - eps)
        self.b.copy_(torch.log(p) - torch.log1p(-p))
        return self

    def random_visible(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Uniform random binary visibles ``(*M, n, n_visible)`` (a chain's start)."""
        lead = () if self.members is None else (self.members,)
        p = torch.full((*lead, n, self.n_visible), 0.5, dtype=self.W.dtype, device=self.W.device)
        return sample_bernoulli(p, generator)

    def extra_repr(self) -> str:
        m = "" if self.members is None else f", members={self.members}"
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}{m}"


class GaussianBernoulliRBM(BernoulliRBM):
    """Real-valued visibles, binary hiddens (Cho, Ilin & Raiko, ICANN 2011 parametrization).

    ``sigma_i^2 = exp(log_var_i)``; ``log_var`` is a fixed zero buffer (unit variances, for
    standardized data: Hinton's guide Sec. 13.2) unless ``learn_variance=True``, when it is a
    parameter trained with the gradient of :func:`gaussian_cd_gradient`. ``log_var_init`` sets
    its starting value.
    """

    visible_type = "gaussian"
    log_var: Tensor  # (*M, n_visible): a parameter with learn_variance, else a buffer

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        learn_variance: bool = False,
        log_var_init: float = 0.0,
        members: int | None = None,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            n_visible,
            n_hidden,
            members=members,
            init_std=init_std,
            generator=generator,
            device=device,
            dtype=dtype,
        )
        z = torch.full_like(self.b, float(log_var_init))
        self.learn_variance = bool(learn_variance)
        if self.learn_variance:
            self.log_var = nn.Parameter(z)  # (*M, n_visible)
        else:
            self.register_buffer("log_var", z)

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        return gaussian_energy(v, h, self.W, self.b, self.c, self.log_var)

    def free_energy(self, v: Tensor) -> Tensor:
        return gaussian_free_energy(v, self.W, self.b, self.c, self.log_var)

    def hidden_probs(self, v: Tensor) -> Tensor:
        return gaussian_hidden_probs(v, self.W, self.c, self.log_var)

    def visible_mean(self, h: Tensor) -> Tensor:
        return gaussian_visible_mean(h, self.W, self.b)

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return sample_gaussian(self.visible_mean(h), self.log_var, generator)

    def visible_drive(self, v: Tensor) -> Tensor:
        return v / torch.exp(_row(self.log_var))

    def expectations(self, v: Tensor, h: Tensor) -> dict[str, Tensor]:
        return _gaussian_expectations(v, h, self.W, self.b, self.log_var, self.learn_variance)

    def cd_gradient(self, v_pos: Tensor, h_pos: Tensor, v_neg: Tensor, h_neg: Tensor) -> dict:
        """The CD gradient by the public :func:`gaussian_cd_gradient`
        (with the ``log_var`` entry when the variances are learned)."""
        return gaussian_cd_gradient(
            v_pos, h_pos, v_neg, h_neg, self.W, self.b, self.log_var, with_var=self.learn_variance
        )

    def encoder(self) -> tuple[Tensor, Tensor]:
        """``weight = (W / sigma^2[:, None]).T``: ``p(h | v) = sigmoid(v @ weight.T + c)``."""
        W = self.W.detach() / torch.exp(self.log_var.detach()).unsqueeze(-1)
        return W.transpose(-1, -2).clone(
            memory_format=torch.contiguous_format
        ), self.c.detach().clone()

    @torch.no_grad()
    def init_visible_bias_(self, data: Tensor, eps: float = 0.0) -> GaussianBernoulliRBM:
        """``b = mean(data)`` (the maximum-likelihood mean of the model without hiddens)."""
        self.b.copy_(data.mean(-2))
        return self

    def random_visible(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draws from ``N(b, sigma^2)`` ``(*M, n, n_visible)``."""
        mean = _row(self.b.detach()).expand(*self.b.shape[:-1], n, self.n_visible)
        return sample_gaussian(mean.contiguous(), self.log_var.detach(), generator)


def _gaussian_visibles(rbm: BernoulliRBM) -> TypeGuard[GaussianBernoulliRBM]:
    """Whether ``rbm`` has Gaussian visibles (``visible_type == "gaussian"``, so a ``log_var``)."""
    return rbm.visible_type == "gaussian"

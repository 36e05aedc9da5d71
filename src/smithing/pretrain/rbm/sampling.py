"""Block Gibbs sampling: :func:`gibbs_step`, :class:`PersistentChains` (PCD's chains) and
:func:`sample`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from smithing._registry import check
from smithing.pretrain.rbm.functional import (
    sample_bernoulli,
    sample_gaussian,
)
from smithing.pretrain.rbm.modules import (
    BernoulliRBM,
    _gaussian_visibles,
)

__all__ = [
    "PersistentChains",
    "gibbs_step",
    "sample",
]

# ------------------------------------------------------------------ Gibbs sampling


def gibbs_step(
    rbm: BernoulliRBM, v: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """One block-Gibbs sweep ``v -> h ~ p(h|v) -> v' ~ p(v|h)``; returns ``(v', E[v'|h])``."""
    h = sample_bernoulli(rbm.hidden_probs(v), generator)  # (*M, n, n_hidden)
    mean = rbm.visible_mean(h)  # (*M, n, n_visible)
    if _gaussian_visibles(rbm):
        return sample_gaussian(mean, rbm.log_var, generator), mean
    return sample_bernoulli(mean, generator), mean


@dataclass
class PersistentChains:
    """The fantasy particles of PCD / SML (Tieleman 2008): visible states that persist.

    ``v (*M, n_chains, n_visible)`` is replaced (not mutated in place) after each update, and
    ``updates`` counts the parameter updates it has served. Pass the same object to
    :func:`train_rbm` again to continue its chains.
    """

    v: Tensor
    updates: int = 0

    @classmethod
    def init(
        cls,
        rbm: BernoulliRBM,
        n_chains: int,
        *,
        data: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PersistentChains:
        """Chains started at random states of ``rbm`` or, given ``data (n, n_visible)``, at
        ``n_chains`` random training examples."""
        check(isinstance(n_chains, int) and n_chains > 0, "n_chains", n_chains, "a positive int")
        if data is None:
            return cls(rbm.random_visible(n_chains, generator).detach())
        idx = torch.randint(data.shape[-2], (n_chains,), generator=generator, device=data.device)
        v = data[..., idx, :].to(rbm.W.dtype)
        if rbm.members is not None and v.dim() == 2:
            v = v.expand(rbm.members, *v.shape)
        return cls(v.clone())


@torch.no_grad()
def sample(
    rbm: BernoulliRBM,
    n: int,
    steps: int = 1000,
    *,
    init: Tensor | None = None,
    generator: torch.Generator | None = None,
    return_mean: bool = True,
) -> Tensor:
    """``n`` Gibbs chains of ``steps`` sweeps from ``init ((*M,) n, n_visible)`` (default:
    random states); returns the final ``E[v | h]`` (``return_mean``, smoother images) or the
    final samples, ``(*M, n, n_visible)``."""
    check(isinstance(steps, int) and steps >= 1, "steps", steps, "an int >= 1")
    if init is None:
        v = rbm.random_visible(n, generator)
    else:
        check(
            init.shape[-2:] == (n, rbm.n_visible),
            "init",
            tuple(init.shape),
            f"shape (..., {n}, {rbm.n_visible})",
        )
        v = init.to(rbm.W.dtype)
    for _ in range(steps):
        v, mean = gibbs_step(rbm, v, generator)
    return mean if return_mean else v

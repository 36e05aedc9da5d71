"""Thin modules over :mod:`.functional`: :class:`ClassRBM` (one or ``M`` classification RBMs) and
:class:`DeepHybridRBM` (a stack of them trained in one stage)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from smithing._registry import check
from smithing.nn.containers import ModuleListOf
from smithing.pretrain._layout import WeightLayout
from smithing.pretrain.hybrid.functional import (
    _onehot,
    class_logits,
    class_probs,
    joint_energy,
    joint_free_energy,
    joint_hidden_probs,
    log_proba,
    marginal_hidden_probs,
)
from smithing.pretrain.rbm import visible_probs

__all__ = [
    "ClassRBM",
    "DeepHybridRBM",
]

# ------------------------------------------------------------------ modules


class ClassRBM(WeightLayout, nn.Module):
    """The parameters of a classification RBM: ``W (*M, D, H)``, ``b (*M, D)``, ``c (*M, H)``,
    ``U (*M, C, H)``, ``d (*M, C)`` (see the module docstring for the energy and layout).

    Initialization: ``W ~ U(-a, a)`` with ``a = init_scale`` or ``1 / sqrt(max(D, H))``,
    ``U ~ U(-a_U, a_U)`` with ``a_U = init_scale`` or ``1 / sqrt(max(C, H))``, zero biases (the
    ``max(rows, cols)^-1/2`` rule of Larochelle's code, as we recall it: unverified).
    ``members`` adds a leading members axis (the pure functions accept it; the trainers here
    train one model). Holds parameters only: training is :func:`train_class_rbm`.
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        n_classes: int,
        *,
        members: int | None = None,
        init_scale: float | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, v, lo in (("n_visible", n_visible, 1), ("n_hidden", n_hidden, 1)):
            check(isinstance(v, int) and v >= lo, name, v, "a positive int")
        check(isinstance(n_classes, int) and n_classes >= 2, "n_classes", n_classes, "an int >= 2")
        check(
            members is None or (isinstance(members, int) and members > 0),
            "members",
            members,
            "None or a positive int",
        )
        check(
            init_scale is None or init_scale >= 0,
            "init_scale",
            init_scale,
            "None or a non-negative number",
        )
        lead = () if members is None else (members,)
        kw: dict[str, Any] = {"device": device, "dtype": dtype or torch.get_default_dtype()}
        a_w = init_scale if init_scale is not None else max(n_visible, n_hidden) ** -0.5
        a_u = init_scale if init_scale is not None else max(n_classes, n_hidden) ** -0.5
        W = (torch.rand((*lead, n_visible, n_hidden), generator=generator, **kw) * 2 - 1) * a_w
        U = (torch.rand((*lead, n_classes, n_hidden), generator=generator, **kw) * 2 - 1) * a_u
        self.W = nn.Parameter(W)  # (*M, D, H)
        self.b = nn.Parameter(torch.zeros((*lead, n_visible), **kw))  # visible biases
        self.c = nn.Parameter(torch.zeros((*lead, n_hidden), **kw))  # hidden biases
        self.U = nn.Parameter(U)  # (*M, C, H)
        self.d = nn.Parameter(torch.zeros((*lead, n_classes), **kw))  # class biases

    @property
    def n_classes(self) -> int:
        return self.U.shape[-2]

    def params(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(W, b, c, U, d)``, the argument order of the pure functions."""
        return self.W, self.b, self.c, self.U, self.d

    def forward(self, x: Tensor) -> Tensor:
        """``log p(y | x)`` for every class, ``(*M, B, C)``."""
        return self.log_proba(x)

    def class_logits(self, x: Tensor) -> Tensor:
        return class_logits(x.to(self.W.dtype), self.W, self.c, self.U, self.d)

    def log_proba(self, x: Tensor) -> Tensor:
        return log_proba(x.to(self.W.dtype), self.W, self.c, self.U, self.d)

    def predict_proba(self, x: Tensor) -> Tensor:
        return self.log_proba(x).exp()

    def predict(self, x: Tensor) -> Tensor:
        return self.class_logits(x).argmax(-1)

    def hidden_probs(self, x: Tensor, y: Tensor) -> Tensor:
        """``p(h = 1 | x, y)`` for labels ``y`` (ints or one-hot)."""
        y = _onehot(y, self.n_classes, self.W.dtype)
        return joint_hidden_probs(x.to(self.W.dtype), y, self.W, self.c, self.U)

    def marginal_hidden_probs(self, x: Tensor) -> Tensor:
        """``E[h | x] = sum_y p(y | x) p(h = 1 | x, y)``, the label-free code."""
        return marginal_hidden_probs(x.to(self.W.dtype), self.W, self.c, self.U, self.d)

    def visible_mean(self, h: Tensor) -> Tensor:
        return visible_probs(h, self.W, self.b)

    def class_probs(self, h: Tensor) -> Tensor:
        return class_probs(h, self.U, self.d)

    def energy(self, x: Tensor, y: Tensor, h: Tensor) -> Tensor:
        y = _onehot(y, self.n_classes, self.W.dtype)
        return joint_energy(x, y, h, *self.params())

    def free_energy(self, x: Tensor, y: Tensor) -> Tensor:
        y = _onehot(y, self.n_classes, self.W.dtype)
        return joint_free_energy(x.to(self.W.dtype), y, *self.params())

    @torch.no_grad()
    def init_visible_bias_(self, x: Tensor, eps: float = 1e-3) -> ClassRBM:
        """``b_i = log(p_i / (1 - p_i))`` from the mean ``p_i`` of ``x`` (clamped to
        ``[eps, 1 - eps]``; Hinton's guide, Sec. 8)."""
        p = x.to(self.W.dtype).mean(-2).clamp(eps, 1 - eps)
        self.b.copy_(torch.log(p / (1 - p)).expand_as(self.b))
        return self


class DeepHybridRBM(nn.Module):
    """A stack of classification RBMs ``sizes = [D, H_1, ..., H_L]``, each with ``C`` label
    units, trained in one stage by :func:`train_deep_hybrid` (see the module docstring).

    Layer ``l`` sees the layer below's label-free code ``E[h_{l-1} | .]``; ``log_proba`` is the
    top layer's ``log p(y | h_{L-1})`` (``combine="top"``) or the log of the mean of every
    layer's ``p(y | .)`` (``"mean"``).
    """

    layers: ModuleListOf[ClassRBM]  # bottom to top

    def __init__(
        self,
        sizes: Sequence[int],
        n_classes: int,
        *,
        init_scale: float | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        sizes = list(sizes)
        check(
            len(sizes) >= 2 and all(isinstance(s, int) and s > 0 for s in sizes),
            "sizes",
            sizes,
            "at least two positive ints [n_visible, n_hidden_1, ...]",
        )
        self.layers = ModuleListOf(
            ClassRBM(
                a,
                h,
                n_classes,
                init_scale=init_scale,
                generator=generator,
                device=device,
                dtype=dtype,
            )
            for a, h in zip(sizes[:-1], sizes[1:])
        )

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.layers[0].n_visible, *(layer.n_hidden for layer in self.layers))

    @property
    def n_classes(self) -> int:
        return self.layers[0].n_classes

    def upward(self, x: Tensor) -> list[Tensor]:
        """Every layer's input: ``[x, E[h_1 | x], E[h_2 | h_1], ...]`` (L entries)."""
        out = [x.to(self.layers[0].W.dtype)]
        for layer in self.layers[:-1]:
            out.append(layer.marginal_hidden_probs(out[-1]))
        return out

    def layer_log_proba(self, x: Tensor) -> list[Tensor]:
        """Each layer's ``log p(y | its input)``, bottom to top, ``L x (B, C)``."""
        return [layer.log_proba(v) for layer, v in zip(self.layers, self.upward(x))]

    def log_proba(self, x: Tensor, combine: str = "top") -> Tensor:
        check(combine in ("top", "mean"), "combine", combine, "'top' or 'mean'")
        if combine == "top":
            return self.layers[-1].log_proba(self.upward(x)[-1])
        lps = torch.stack(self.layer_log_proba(x))  # (L, B, C)
        return torch.logsumexp(lps, 0) - math.log(lps.shape[0])  # log mean_l p_l(y|.)

    def forward(self, x: Tensor) -> Tensor:
        return self.log_proba(x)

    def predict(self, x: Tensor, combine: str = "top") -> Tensor:
        return self.log_proba(x, combine).argmax(-1)

"""Deep Belief Networks: a stack of RBMs trained greedily, sampled top-down, unrolled to an MLP.

Hinton, Osindero & Teh, "A fast learning algorithm for deep belief nets", Neural Computation
2006: each RBM is trained on the hidden activities of the one below (greedy layer-wise, see
:mod:`smithing.pretrain.greedy`). The generative model is the top RBM (an undirected associative
memory) over a directed sigmoid belief net whose generative weights are the lower RBMs' ``W``:
a sample is a long Gibbs chain in the top RBM followed by one down pass
``p(h_{l-1} | h_l) = sigmoid(b_l + W_l h_l)``. Departures: no up-down (wake-sleep) fine-tuning
and no label units in the top RBM; supervised fine-tuning is done by backprop on :meth:`to_mlp`
(Hinton & Salakhutdinov, Science 2006).

This module holds the DBN's parts (:func:`rbm_layer`, :class:`RBMPretrainer`, :class:`DBN`,
:func:`train_dbn`); pretrain, unroll and fine-tune a DBN through the one stack API,
:func:`smithing.pretrain.stack.pretrain_stack` with ``StackSpec("dbn", ...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from smithing._registry import check
from smithing.checkpoint import as_checkpointer
from smithing.history import Callback, History, renamed
from smithing.nn import MLP
from smithing.nn.containers import ModuleListOf
from smithing.pretrain import greedy as _greedy
from smithing.pretrain._layout import LayerSizes
from smithing.pretrain.rbm import (
    BernoulliRBM,
    GaussianBernoulliRBM,
    sample,
    sample_bernoulli,
    train_rbm,
)

__all__ = ["DBN", "RBMPretrainer", "rbm_layer", "train_dbn"]


def rbm_layer(
    sizes: Sequence[int],
    index: int,
    *,
    visible: str = "bernoulli",
    learn_variance: bool = False,
    members: int | None = None,
    init_std: float = 0.01,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> BernoulliRBM:
    """RBM ``index`` of a DBN of ``sizes``: ``sizes[index] -> sizes[index + 1]``.

    The bottom RBM (``index == 0``) has ``visible`` units (``"gaussian"``: a
    :class:`~smithing.pretrain.rbm.GaussianBernoulliRBM` with ``learn_variance``); every other
    RBM is Bernoulli-Bernoulli (its visibles are the codes of the RBM below).
    """
    check(visible in ("bernoulli", "gaussian"), "visible", visible, "'bernoulli' or 'gaussian'")
    kw: dict[str, Any] = {
        "members": members,
        "init_std": init_std,
        "generator": generator,
        "device": device,
        "dtype": dtype,
    }
    a, b = sizes[index], sizes[index + 1]
    if index == 0 and visible == "gaussian":
        return GaussianBernoulliRBM(a, b, learn_variance=learn_variance, **kw)
    return BernoulliRBM(a, b, **kw)


class RBMPretrainer(LayerSizes):
    """A :class:`~smithing.pretrain.greedy.LayerPretrainer` that trains one RBM with
    :func:`~smithing.pretrain.rbm.train_rbm` (``train_kwargs``: epochs, lr, k, method, ...).

    ``init_visible_bias`` first sets the visible biases from the layer's inputs (Hinton's
    guide, Sec. 8). Codes are ``p(h | x)``, or samples of them.
    """

    activation = "sigmoid"

    def __init__(self, rbm: BernoulliRBM, *, init_visible_bias: bool = True, **train_kwargs):
        self.rbm = rbm
        self.init_visible_bias = init_visible_bias
        self.train_kwargs = train_kwargs

    @property
    def layer(self) -> BernoulliRBM:
        return self.rbm

    def fit(
        self,
        x: Tensor,
        *,
        valid: Tensor | None = None,
        generator: torch.Generator | None = None,
        checkpoint: Any = None,
        progress: Callable[[int, dict], None] | None = None,
    ) -> History:
        if self.init_visible_bias:
            self.rbm.init_visible_bias_(x)  # (a resumed run then loads the checkpoint's)
        kwargs = {"valid_data": valid, "generator": generator, **self.train_kwargs}
        if checkpoint is not None:
            kwargs["checkpoint"] = checkpoint
        if progress is not None:
            kwargs["progress"] = _greedy.chain_progress(kwargs.get("progress"), progress)
        return train_rbm(self.rbm, x, **kwargs)

    def encoder(self) -> tuple[Tensor, Tensor]:
        return self.rbm.encoder()

    @torch.no_grad()
    def transform(
        self, x: Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        p = self.rbm.hidden_probs(x.to(self.rbm.W.dtype))  # (*M, n, n_hidden)
        return sample_bernoulli(p, generator) if sample else p


class DBN(nn.Module):
    """A stack of RBMs of ``sizes = [n_visible, n_1, ..., n_L]`` (any number of layers).

    The bottom RBM has ``visible`` units ``"bernoulli"`` or ``"gaussian"`` (real-valued,
    :class:`~smithing.pretrain.rbm.GaussianBernoulliRBM`; ``learn_variance`` applies to it);
    all others are Bernoulli-Bernoulli. ``members`` makes every RBM an ensemble of ``M``
    independent members. The module holds the parameters; training is :func:`train_dbn`.
    """

    rbms: ModuleListOf[BernoulliRBM]  # bottom to top

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        visible: str = "bernoulli",
        learn_variance: bool = False,
        members: int | None = None,
        init_std: float = 0.01,
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
        check(visible in ("bernoulli", "gaussian"), "visible", visible, "'bernoulli' or 'gaussian'")
        kw: dict[str, Any] = {
            "visible": visible,
            "learn_variance": learn_variance,
            "members": members,
            "init_std": init_std,
            "generator": generator,
            "device": device,
            "dtype": dtype,
        }
        self.rbms = ModuleListOf(rbm_layer(sizes, i, **kw) for i in range(len(sizes) - 1))

    @classmethod
    def from_rbms(cls, rbms: Sequence[BernoulliRBM]) -> DBN:
        """A DBN made of already built (or trained) RBMs, bottom to top (no copies)."""
        rbms = list(rbms)
        check(len(rbms) > 0, "rbms", rbms, "at least one RBM")
        for i, (lower, upper) in enumerate(zip(rbms[:-1], rbms[1:])):
            check(
                lower.n_hidden == upper.n_visible,
                f"rbms[{i + 1}].n_visible",
                upper.n_visible,
                f"the hidden size of the RBM below, {lower.n_hidden}",
            )
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.rbms = ModuleListOf(rbms)
        return self

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.rbms[0].n_visible, *(r.n_hidden for r in self.rbms))

    @property
    def members(self) -> int | None:
        return self.rbms[0].members

    def encoders(self) -> list[tuple[Tensor, Tensor]]:
        """Each RBM's ``(W.T, c)`` in ``nn.Linear`` layout (see :meth:`BernoulliRBM.encoder`)."""
        return [rbm.encoder() for rbm in self.rbms]

    @torch.no_grad()
    def upward(self, x: Tensor) -> list[Tensor]:
        """Hidden probabilities of every layer, ``p(h_l | h_{l-1})`` applied bottom-up."""
        out = []
        for rbm in self.rbms:
            x = rbm.hidden_probs(x.to(rbm.W.dtype))
            out.append(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.upward(x)[-1]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        steps: int = 1000,
        *,
        init: Tensor | None = None,
        down: str = "sample",
        image_shape: tuple[int, ...] | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Generate ``n`` images: ``steps`` Gibbs sweeps in the top RBM, then a down pass.

        The top chain starts at random states, or at the upward pass of ``init (n, sizes[0])``
        (probabilities to the top RBM's visible layer). Down pass: intermediate layers are
        sampled (``down="sample"``, the generative model) or kept as probabilities
        (``"probs"``); the bottom layer returns ``E[v | h_1]``. Returns ``(*M, n, sizes[0])``,
        or ``(*M, n, *image_shape)``.
        """
        check(down in ("sample", "probs"), "down", down, "'sample' or 'probs'")
        top = self.rbms[-1]
        start = None
        if init is not None:
            start = self.upward(init)[-2] if len(self.rbms) > 1 else init.to(top.W.dtype)
        single = len(self.rbms) == 1
        h = sample(top, n, steps, init=start, generator=generator, return_mean=single)
        for i in range(len(self.rbms) - 2, -1, -1):
            mean = self.rbms[i].visible_mean(h)  # p(h_i | h_{i+1}) = sigmoid(b_i + W_i h_{i+1})
            h = mean if (i == 0 or down == "probs") else sample_bernoulli(mean, generator)
        if image_shape is not None:
            h = h.reshape(*h.shape[:-1], *image_shape)
        return h

    def to_mlp(self, n_classes: int, activation: str = "sigmoid", **kwargs) -> MLP:
        """Unroll into an MLP, fresh output layer (:func:`smithing.pretrain.greedy.to_mlp`)."""
        return _greedy.to_mlp(self, n_classes, activation, **kwargs)


def train_dbn(
    dbn: DBN,
    data: Tensor,
    *,
    layers: Mapping | Sequence[Mapping] | None = None,
    epochs: int | None = None,
    lr: float | Sequence[float] | None = None,
    batch_size: int | None = None,
    optimizer: str | torch.optim.Optimizer | None = None,
    optimizer_options: dict | None = None,
    schedule: str | Callable[[int], float] | None = None,
    schedule_options: dict | None = None,
    propagate: str = "probs",
    init_visible_bias: bool = True,
    valid_data: Tensor | None = None,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
    progress: Callable[[int, dict], None] | None = None,
    device: torch.device | str | None = None,
    checkpoint: Any = None,
    layer_callback: Callable[[int, _greedy.LayerPretrainer, History], None] | None = None,
    callback: Callable[[int, _greedy.LayerPretrainer, History], None] | None = None,
) -> list[History]:
    """Greedy layer-wise training of ``dbn`` on ``data (n, sizes[0])``; one
    :class:`~smithing.history.History` per layer, bottom to top.

    Each RBM is trained by :func:`~smithing.pretrain.rbm.train_rbm` on the previous RBM's
    hidden probabilities (``propagate="probs"``) or samples (``"samples"``), see
    :func:`~smithing.pretrain.greedy.greedy_stack`.

    Args:
        dbn: the :class:`DBN` (trained in place).
        data: ``(n, sizes[0])`` (or ``(M, n, sizes[0])`` for an ensemble DBN).
        layers: :func:`~smithing.pretrain.rbm.train_rbm` keyword arguments (k, method,
            momentum, weight_decay, sparsity, ...): one mapping for every layer or a sequence
            with one mapping per layer.
        epochs: every layer's default epochs for :func:`~smithing.pretrain.rbm.train_rbm` (a
            layer's own ``layers`` entry wins; None leaves that trainer's default), as the
            next six.
        lr: every layer's default learning rate.
        batch_size: every layer's default batch size.
        optimizer: every layer's default optimizer name. A ready optimizer cannot be shared
            (each layer has its own parameters): give one per layer in ``layers``.
        optimizer_options: every layer's default optimizer options.
        schedule: every layer's default schedule.
        schedule_options: every layer's default schedule options.
        callbacks: handed to every layer's trainer (``cb(epoch, record, layer_module)``,
            1-based epochs restarting at each layer); a callback returning True ends *that
            layer's* training (its History says ``stop_reason="callback"``) and the next layer
            starts.
        progress: handed to every layer's trainer (``progress(epoch, record)``).
        device: move the stack, ``data`` and ``valid_data`` there first.
        propagate: ``"probs"`` or ``"samples"`` (above).
        init_visible_bias: set each RBM's visible biases from its inputs first (guide Sec. 8).
        valid_data: propagated alongside and handed to each RBM for monitoring.
        generator: drives every layer's training and the propagated samples.
        checkpoint: a :class:`~smithing.checkpoint.Checkpointer` or a path; makes it
            resumable, one child checkpoint per layer
            (``checkpoint.sub("layer<l>")``).
        layer_callback: ``layer_callback(index, pretrainer, history)`` after each layer.
        callback: deprecated alias of ``layer_callback``; warns.

    Returns:
        ``[History, ...]``, one per RBM (see :func:`~smithing.pretrain.rbm.train_rbm`);
        ``hists[l]["recon_error"]`` is layer ``l``'s curve.
    """
    layer_callback = renamed("train_dbn", "callback", callback, "layer_callback", layer_callback)
    shared = _greedy.shared_settings(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        optimizer=optimizer,
        optimizer_options=optimizer_options,
        schedule=schedule,
        schedule_options=schedule_options,
        callbacks=callbacks,
        progress=progress,
    )
    checkpoint = as_checkpointer(checkpoint)
    if device is not None:
        dbn.to(device)
        data = data.to(device)
        valid_data = None if valid_data is None else valid_data.to(device)
    settings = _greedy.per_layer(layers, len(dbn.rbms), shared, what="RBM")
    pretrainers = [
        RBMPretrainer(rbm, init_visible_bias=init_visible_bias, **s)
        for rbm, s in zip(dbn.rbms, settings)
    ]
    result = _greedy.greedy_stack(
        pretrainers,
        data,
        propagate=propagate,
        valid_data=valid_data,
        generator=generator,
        callback=layer_callback,
        checkpoint=checkpoint,
    )
    return result.histories

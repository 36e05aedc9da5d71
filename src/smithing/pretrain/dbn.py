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
from torch import Tensor

from smithing._registry import check
from smithing.history import Callback, History
from smithing.nn import MLP
from smithing.nn.containers import ModuleListOf
from smithing.pretrain import greedy as _greedy
from smithing.pretrain._layout import LayerSizes, LayerStack, check_chain, check_sizes
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


class DBN(LayerStack):
    """A stack of RBMs of ``sizes = [n_visible, n_1, ..., n_L]`` (any number of layers).

    The bottom RBM has ``visible`` units ``"bernoulli"`` or ``"gaussian"`` (real-valued,
    :class:`~smithing.pretrain.rbm.GaussianBernoulliRBM`; ``learn_variance`` applies to it);
    all others are Bernoulli-Bernoulli. ``members`` makes every RBM an ensemble of ``M``
    independent members. The module holds the parameters; training is :func:`train_dbn`.
    """

    rbms: ModuleListOf[BernoulliRBM]  # bottom to top
    LAYERS = "rbms"

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
        sizes = check_sizes(sizes)
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
        return cls._of(check_chain(rbms, "rbms", "RBM", "hidden size"))

    def code(self, layer: BernoulliRBM, x: Tensor) -> Tensor:
        """An RBM's code: its hidden probabilities ``p(h_l | h_{l-1})``, so that
        :meth:`upward` is the mean-field pass (``encoders()`` are each RBM's ``(W.T, c)``,
        :meth:`BernoulliRBM.encoder`)."""
        return layer.hidden_probs(x.to(layer.W.dtype))

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
    return _greedy.train_greedy(
        "train_dbn",
        dbn,
        data,
        lambda rbm, s: RBMPretrainer(rbm, init_visible_bias=init_visible_bias, **s),
        layers=layers,
        what="RBM",
        propagate=propagate,
        valid_data=valid_data,
        generator=generator,
        device=device,
        checkpoint=checkpoint,
        layer_callback=layer_callback,
        callback=callback,
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

"""Autoencoders, denoising and contractive autoencoders, and stacked denoising autoencoders.

An autoencoder with codes ``h = s(W x + b)`` (``W (n_hidden, n_visible)``, ``nn.Linear``
layout) and reconstruction ``z = s'(W' h + c)`` is trained to make ``z`` close to ``x``; the
decoder weight is ``W' = W^T`` (**tied**, the default) or a separate matrix (**untied**).

* **Denoising** (Vincent, Larochelle, Bengio & Manzagol, "Extracting and composing robust
  features with denoising autoencoders", ICML 2008; Vincent, Larochelle, Lajoie, Bengio &
  Manzagol, "Stacked denoising autoencoders", JMLR 11, 2010): the input is first corrupted,
  ``x~ ~ q(x~ | x)``, and the *clean* ``x`` is reconstructed from ``h = s(W x~ + b)``. The
  corruptions (:func:`corrupt`, JMLR 2010 Sec. 4.3): **masking** (each component set to 0 with
  probability ``rate``), **additive Gaussian** (``x~ = x + N(0, rate^2)``; ``rate`` is the
  standard deviation) and **salt-and-pepper** (each component, with probability ``rate``, set to
  ``low`` or ``high``, 0 or 1, with probability 1/2 each).
* **Reconstruction loss** (JMLR 2010 Sec. 2.3): cross-entropy
  ``L_H(x, z) = -sum_i [x_i log z_i + (1 - x_i) log(1 - z_i)]`` with a sigmoid decoder for data
  in [0, 1], or squared error ``L_2(x, z) = ||x - z||^2`` with an affine (``"linear"``) decoder
  for real-valued data; summed over components, averaged over the mini-batch.
* **Emphasis** (JMLR 2010 Sec. 4.4, "emphasized denoising autoencoder"): the per-component loss
  is weighted ``alpha`` on the corrupted components and ``beta`` on the others,
  ``L = alpha sum_{i in J(x~)} l_i + beta sum_{i not in J(x~)} l_i`` (``emphasis=(alpha,
  beta)``; "full emphasis" is ``beta = 0``). For Gaussian noise every component is corrupted.
* **Contractive penalty** (Rifai, Vincent, Muller, Glorot & Bengio, "Contractive
  auto-encoders: explicit invariance during feature extraction", ICML 2011, Sec. 2):
  ``lambda ||J_f(x)||_F^2`` with ``J_f = d h / d x = diag(s'(a)) W``, so
  ``||J_f(x)||_F^2 = sum_j s'(a_j)^2 sum_i W_ji^2``; for sigmoid codes
  ``s'(a_j) = h_j (1 - h_j)`` (their closed form), tanh ``1 - h_j^2``, relu ``1[a_j > 0]``. It is
  evaluated at the clean input ``x`` (as Rifai et al.; with corruption the two are combined).

Departures: masking zeroes each component independently with probability ``rate`` (the Theano
tutorial's binomial mask) instead of zeroing exactly ``rate * d`` components chosen at random
(Vincent 2008); initialization is the tutorial's ``W ~ U(+-4 sqrt(6 / (n_visible + n_hidden)))``
for sigmoid codes (no factor 4 for tanh / relu) with zero biases.

Every pure function and the module accept an optional leading members axis (``W (M, n_hidden,
n_visible)``, data ``(M, batch, n_visible)``, or members-free data broadcast to every member),
so an ensemble of autoencoders trains as batched matmuls; random functions draw with
``torch.rand_like`` when no generator is given (vmap-safe).

**Stacks.** :func:`dae_layer` builds layer ``l`` of an SdA, :class:`DAEPretrainer` is a
:class:`~smithing.pretrain.greedy.LayerPretrainer`; :class:`StackedDAE` (an SdA) mirrors
:class:`~smithing.pretrain.dbn.DBN` (``encoders()``, ``upward``, ``to_mlp``) and
:func:`train_sda` mirrors :func:`~smithing.pretrain.dbn.train_dbn`. Pretrain, unroll and
fine-tune an SdA through the one stack API, :func:`smithing.pretrain.stack.pretrain_stack` with
``StackSpec("sda", ...)`` (which also backs the ``"sda"`` source of the ``pretrained``
initializer, registered by :mod:`smithing.experiment.pretrained`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smithing._registry import Registry, check
from smithing.checkpoint import (
    Checkpointer,
    as_checkpointer,
    check_signature,
    rng_state,
    set_rng_state,
)
from smithing.nn import MLP
from smithing.pretrain import greedy as _greedy

__all__ = [
    "CODE_ACTIVATIONS",
    "CORRUPTIONS",
    "DAEPretrainer",
    "DenoisingAutoencoder",
    "StackedDAE",
    "contractive_penalty",
    "corrupt",
    "corrupt_with_mask",
    "dae_layer",
    "dae_loss",
    "reconstruction_loss",
    "train_autoencoder",
    "train_sda",
]


# ------------------------------------------------------------------ corruption


def _uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1) noise shaped like ``x`` (``rand_like`` without a generator: vmap-safe)."""
    if generator is None:
        return torch.rand_like(x)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=generator.device)
    return u.to(x.device)


def _normal(x: Tensor, generator: torch.Generator | None) -> Tensor:
    if generator is None:
        return torch.randn_like(x)
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device)
    return z.to(x.device)


def _no_corruption(x, rate, generator):
    return x, torch.zeros_like(x, dtype=torch.bool)


def _masking(x, rate, generator):
    mask = _uniform(x, generator) < rate  # component destroyed with probability rate
    return torch.where(mask, torch.zeros_like(x), x), mask  # x~_i = 0 (JMLR 2010 Sec. 4.3)


def _gaussian(x, rate, generator):
    return x + rate * _normal(x, generator), torch.ones_like(x, dtype=torch.bool)  # N(x, s^2 I)


def _salt_and_pepper(x, rate, generator, low=0.0, high=1.0):
    mask = _uniform(x, generator) < rate  # component corrupted with probability rate
    salt = _uniform(x, generator) < 0.5  # then min or max with probability 1/2 each
    noise = torch.where(salt, torch.full_like(x, high), torch.full_like(x, low))
    return torch.where(mask, noise, x), mask


CORRUPTIONS: Registry[Callable] = Registry("corruption")
CORRUPTIONS.register("none", _no_corruption, description="no corruption (a plain autoencoder)")
CORRUPTIONS.register(
    "masking", _masking, description="each component set to 0 with probability rate"
)
CORRUPTIONS.register(
    "gaussian", _gaussian, description="additive isotropic Gaussian noise, std = rate"
)
CORRUPTIONS.register(
    "salt_and_pepper",
    _salt_and_pepper,
    description="each component set to 0 or 1 (1/2 each) with probability rate",
)


def _check_rate(kind: str, rate: float) -> None:
    if kind == "gaussian":
        check(rate >= 0 and math.isfinite(rate), "rate", rate, "a standard deviation >= 0")
    elif kind != "none":
        check(0 <= rate <= 1, "rate", rate, "a probability in [0, 1]")


def corrupt_with_mask(
    x: Tensor, kind: str = "masking", rate: float = 0.25, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``(x~, mask)``: the corrupted inputs and which components were corrupted (bool).

    ``kind`` is a name in :data:`CORRUPTIONS` (``"masking"``, ``"gaussian"``,
    ``"salt_and_pepper"``, ``"none"``); see the module docstring for each formula. ``x`` is not
    modified. Any shape (a leading members axis included).
    """
    fn = CORRUPTIONS.get(kind)
    _check_rate(kind, rate)
    return fn(x, rate, generator)


def corrupt(
    x: Tensor, kind: str = "masking", rate: float = 0.25, generator: torch.Generator | None = None
) -> Tensor:
    """The corrupted inputs ``x~ ~ q(x~ | x)`` (see :func:`corrupt_with_mask`)."""
    return corrupt_with_mask(x, kind, rate, generator)[0]


# ------------------------------------------------------------------ pure functions


def _sigmoid_d(h: Tensor, a: Tensor) -> Tensor:
    return h * (1 - h)  # s'(a) = h (1 - h)


def _tanh_d(h: Tensor, a: Tensor) -> Tensor:
    return 1 - h * h  # s'(a) = 1 - h^2


def _relu_d(h: Tensor, a: Tensor) -> Tensor:
    return (a > 0).to(h.dtype)  # s'(a) = 1[a > 0]


#: code activations: name -> (function, derivative as a function of (output, pre-activation))
CODE_ACTIVATIONS: dict[str, tuple[Callable[[Tensor], Tensor], Callable]] = {
    "sigmoid": (torch.sigmoid, _sigmoid_d),
    "tanh": (torch.tanh, _tanh_d),
    "relu": (torch.relu, _relu_d),
}
DECODERS = ("sigmoid", "linear")
LOSSES = ("cross_entropy", "squared_error")


def _row(v: Tensor) -> Tensor:
    """A bias ``(*M, n)`` made broadcastable against ``(*M, batch, n)``."""
    return v.unsqueeze(-2) if v.dim() >= 2 else v


def _t(W: Tensor) -> Tensor:
    return W.transpose(-1, -2)


def _encode(x: Tensor, W: Tensor, b: Tensor, activation: str) -> tuple[Tensor, Tensor]:
    a = x @ _t(W) + _row(b)  # (*M, batch, n_hidden)
    return CODE_ACTIVATIONS[activation][0](a), a


def reconstruction_loss(
    x: Tensor,
    a_dec: Tensor,
    loss: str = "cross_entropy",
    decoder: str = "sigmoid",
    weights: Tensor | None = None,
) -> Tensor:
    """Mean over the batch of the summed per-component loss; returns ``(*M,)`` (or ``()``).

    ``a_dec (*M, batch, n_visible)`` is the decoder's pre-activation ``W' h + c``.
    ``"cross_entropy"`` needs the sigmoid decoder and is computed from ``a_dec`` stably,
    ``-x log s(a) - (1 - x) log(1 - s(a)) = softplus(a) - x a``; ``"squared_error"`` is
    ``(x - z)^2`` with ``z`` the decoder's output. ``weights`` (broadcastable to ``a_dec``)
    multiply the per-component losses (emphasis).
    """
    check(loss in LOSSES, "loss", loss, f"one of {LOSSES}")
    check(decoder in DECODERS, "decoder", decoder, f"one of {DECODERS}")
    if loss == "cross_entropy":
        check(decoder == "sigmoid", "decoder", decoder, "'sigmoid' for the cross-entropy loss")
        per = F.softplus(a_dec) - x * a_dec  # L_H: -x log z - (1-x) log(1-z), z = s(a)
    else:
        z = torch.sigmoid(a_dec) if decoder == "sigmoid" else a_dec
        per = (x - z) ** 2  # L_2 = ||x - z||^2
    if weights is not None:
        per = per * weights  # alpha on corrupted, beta on the other components (Sec. 4.4)
    return per.sum(-1).mean(-1)  # (*M,)


def contractive_penalty(h: Tensor, W: Tensor, activation: str = "sigmoid", a=None) -> Tensor:
    """Mean over the batch of ``||J_f(x)||_F^2 = sum_j s'(a_j)^2 sum_i W_ji^2`` (Rifai 2011).

    ``h (*M, batch, n_hidden)`` are the codes of the inputs, ``W (*M, n_hidden, n_visible)``
    the encoder weight, ``a`` the pre-activations (needed for relu). Returns ``(*M,)``.
    """
    check(activation in CODE_ACTIVATIONS, "activation", activation, f"one of {CODE_ACTIVATIONS}")
    d = CODE_ACTIVATIONS[activation][1](h, a)  # s'(a) (*M, batch, n_hidden)
    row_norms = (W * W).sum(-1)  # sum_i W_ji^2 (*M, n_hidden)
    return (d * d * _row(row_norms)).sum(-1).mean(-1)  # Rifai 2011: sum_j s'^2 ||W_j||^2 (*M,)


def dae_loss(
    x: Tensor,
    x_tilde: Tensor,
    W: Tensor,
    b: Tensor,
    c: Tensor,
    W_dec: Tensor | None = None,
    *,
    activation: str = "sigmoid",
    decoder: str = "sigmoid",
    loss: str = "cross_entropy",
    weights: Tensor | None = None,
    contractive: float = 0.0,
) -> Tensor:
    """The denoising objective ``L(x, g(f(x~))) + contractive * ||J_f(x)||_F^2``, ``(*M,)``.

    ``h = s(x~ W^T + b)``, ``a' = h W_dec^T + c`` with ``W_dec (*M, n_visible, n_hidden)``, or
    ``W_dec = W^T`` when None (tied weights: the gradient wrt ``W`` is the sum of the encoder's
    and the transposed decoder's). See :func:`reconstruction_loss`, :func:`contractive_penalty`.
    """
    h, a = _encode(x_tilde, W, b, activation)  # (*M, batch, n_hidden)
    Wd = _t(W) if W_dec is None else W_dec  # (*M, n_visible, n_hidden)
    a_dec = h @ _t(Wd) + _row(c)  # (*M, batch, n_visible)
    out = reconstruction_loss(x, a_dec, loss, decoder, weights)
    if contractive:
        hc, ac = (h, a) if x_tilde is x else _encode(x, W, b, activation)  # J_f at clean x
        out = out + contractive * contractive_penalty(
            hc, W, activation, ac
        )  # + lambda ||J_f(x)||_F^2 (Rifai 2011)
    return out


# ------------------------------------------------------------------ module


class DenoisingAutoencoder(nn.Module):
    """An (optionally denoising / contractive) autoencoder ``n_visible -> n_hidden``.

    Parameters: ``W (*M, n_hidden, n_visible)`` (``nn.Linear`` layout), code bias ``b (*M,
    n_hidden)``, reconstruction bias ``c (*M, n_visible)`` and, untied, ``W_dec (*M, n_visible,
    n_hidden)``. ``activation`` of the codes: sigmoid, tanh or relu; ``loss``
    ``"cross_entropy"`` (data in [0, 1], sigmoid decoder) or ``"squared_error"`` (decoder
    ``"linear"`` by default, or ``"sigmoid"``). Initialization: ``U(+-gain sqrt(6 / (n_visible +
    n_hidden)))``, gain 4 for sigmoid codes and 1 otherwise (Theano tutorial), zero biases.
    The module holds parameters only: corruption and training are :func:`train_autoencoder`.
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        activation: str = "sigmoid",
        tied: bool = True,
        loss: str = "cross_entropy",
        decoder: str | None = None,
        members: int | None = None,
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
            activation in CODE_ACTIVATIONS, "activation", activation, f"one of {CODE_ACTIVATIONS}"
        )
        check(loss in LOSSES, "loss", loss, f"one of {LOSSES}")
        decoder = decoder or ("sigmoid" if loss == "cross_entropy" else "linear")
        check(decoder in DECODERS, "decoder", decoder, f"one of {DECODERS}")
        if loss == "cross_entropy":
            check(decoder == "sigmoid", "decoder", decoder, "'sigmoid' for the cross-entropy loss")
        check(
            members is None or (isinstance(members, int) and members > 0),
            "members",
            members,
            "None or a positive int",
        )
        self.activation, self.loss_name, self.decoder, self.tied = activation, loss, decoder, tied
        lead = () if members is None else (members,)
        kw = {"device": device, "dtype": dtype or torch.get_default_dtype()}
        bound = (4.0 if activation == "sigmoid" else 1.0) * math.sqrt(6.0 / (n_visible + n_hidden))

        def uniform(shape):
            # drawn on the generator's device (CPU without one): a CPU generator gives the same
            # weights on any device; a CUDA generator draws on the GPU
            gen_dev = generator.device if generator is not None else None
            u = torch.rand(shape, generator=generator, dtype=kw["dtype"], device=gen_dev)
            return ((2 * u - 1) * bound).to(kw["device"])

        self.W = nn.Parameter(uniform((*lead, n_hidden, n_visible)))  # (*M, n_hidden, n_visible)
        self.b = nn.Parameter(torch.zeros((*lead, n_hidden), **kw))  # code bias
        self.c = nn.Parameter(torch.zeros((*lead, n_visible), **kw))  # reconstruction bias
        self.W_dec = None if tied else nn.Parameter(uniform((*lead, n_visible, n_hidden)))

    @property
    def n_visible(self) -> int:
        return self.W.shape[-1]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[-2]

    @property
    def members(self) -> int | None:
        return self.W.shape[0] if self.W.dim() == 3 else None

    @property
    def decoder_weight(self) -> Tensor:
        """``W' (*M, n_visible, n_hidden)``: ``W^T`` when tied."""
        return _t(self.W) if self.W_dec is None else self.W_dec

    def encode(self, x: Tensor) -> Tensor:
        """Codes ``h = s(x W^T + b)``, ``(*M, batch, n_hidden)``."""
        return _encode(x.to(self.W.dtype), self.W, self.b, self.activation)[0]

    def decode(self, h: Tensor) -> Tensor:
        """Reconstruction ``z = s'(h W'^T + c)``, ``(*M, batch, n_visible)``."""
        a = h @ _t(self.decoder_weight) + _row(self.c)
        return torch.sigmoid(a) if self.decoder == "sigmoid" else a

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction of (uncorrupted) ``x``."""
        return self.decode(self.encode(x))

    def loss(
        self,
        x: Tensor,
        x_tilde: Tensor | None = None,
        *,
        weights: Tensor | None = None,
        contractive: float = 0.0,
    ) -> Tensor:
        """:func:`dae_loss` of this autoencoder, ``(*M,)``; ``x_tilde=None`` means ``x``."""
        x = x.to(self.W.dtype)
        return dae_loss(
            x,
            x if x_tilde is None else x_tilde.to(self.W.dtype),
            self.W,
            self.b,
            self.c,
            self.W_dec,
            activation=self.activation,
            decoder=self.decoder,
            loss=self.loss_name,
            weights=weights,
            contractive=contractive,
        )

    def encoder(self) -> tuple[Tensor, Tensor]:
        """``(weight (*M, n_hidden, n_visible), bias (*M, n_hidden))`` in ``nn.Linear`` layout
        (detached copies): ``codes = activation(x @ weight.T + bias)``."""
        return self.W.detach().clone(), self.b.detach().clone()

    def extra_repr(self) -> str:
        m = "" if self.members is None else f", members={self.members}"
        return (
            f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, activation="
            f"{self.activation!r}, tied={self.tied}, loss={self.loss_name!r}{m}"
        )


# ------------------------------------------------------------------ training


def _to_py(t: Tensor) -> float | list[float]:
    return t.detach().cpu().tolist()


@torch.no_grad()
def _clean_loss(model: DenoisingAutoencoder, x: Tensor, chunk: int = 4096) -> Tensor:
    """Mean reconstruction loss of clean inputs ``x (*M?, n, d)``, in chunks, ``(*M,)``."""
    n = x.shape[-2]
    total = 0.0
    for i in range(0, n, chunk):
        xb = x[..., i : i + chunk, :]
        total = total + model.loss(xb) * xb.shape[-2]
    return total / n


def train_autoencoder(
    model: DenoisingAutoencoder,
    data: Tensor,
    *,
    epochs: int = 15,
    lr: float = 0.1,
    batch_size: int = 20,
    optimizer: str = "sgd",
    optimizer_options: dict | None = None,
    corruption: str = "masking",
    rate: float = 0.0,
    emphasis: tuple[float, float] | None = None,
    contractive: float = 0.0,
    valid_data: Tensor | None = None,
    monitor_size: int | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, dict], object] | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
) -> dict[str, list]:
    """Train ``model`` in place by mini-batch gradient descent; return the per-epoch history.

    Each step draws a batch ``x`` (an independent order per member for an ensemble), corrupts
    it, ``x~ ~ q(x~ | x)`` (``corruption``, ``rate``: :func:`corrupt_with_mask`), and takes one
    step of ``optimizer`` (a :mod:`smithing.optim` name over ``torch.optim``, SGD by default;
    ``optimizer_options`` e.g. ``{"momentum": 0.9}`` for ``"momentum"``) on
    ``L(x, g(f(x~)))`` (+ ``contractive * ||J_f(x)||_F^2``), with the per-component losses
    weighted ``alpha`` / ``beta`` on corrupted / other components when ``emphasis=(alpha,
    beta)``. Members' losses are summed, so each member gets its own gradient. ``data`` is
    ``(n, n_visible)`` (shared by all members) or ``(M, n, n_visible)``, on the model's device.

    History (floats, or lists of ``M`` floats): ``epoch``, ``loss`` (mean training objective
    over the epoch's batches, corrupted inputs), ``recon_loss`` (reconstruction loss of the
    *clean* training inputs, the first ``monitor_size`` of them, after the epoch),
    ``recon_loss_valid`` when ``valid_data`` is given, ``time_s``. ``callback(epoch, record)``
    runs after each epoch; a truthy return stops.

    ``checkpoint`` (a :class:`~smithing.checkpoint.Checkpointer` or a path) makes the run
    resumable: training continues from the newest valid checkpoint there and saves as its
    policy says (epoch ends, optionally mid-epoch). It holds the parameters, the optimizer
    state, the states of ``generator`` and of the global torch / Python / NumPy generators
    (the corruption draws from them without a generator), the history, the epoch and the
    position in it (the permutation, the next batch, the loss sum). A resumed run ends bitwise
    equal (on CPU) to the run uninterrupted, ``time_s`` aside; a finished run's checkpoint
    makes a rerun skip training.
    """
    from smithing import optim as _optim

    check(isinstance(epochs, int) and epochs >= 0, "epochs", epochs, "an int >= 0")
    check(
        isinstance(batch_size, int) and batch_size > 0, "batch_size", batch_size, "a positive int"
    )
    check(contractive >= 0, "contractive", contractive, "a non-negative number")
    CORRUPTIONS.get(corruption)
    _check_rate(corruption, rate)
    if emphasis is not None:
        check(
            len(emphasis) == 2 and all(w >= 0 for w in emphasis),
            "emphasis",
            emphasis,
            "None or (alpha, beta), two non-negative weights",
        )
    M = model.members
    d = model.n_visible
    shared = data.dim() == 2
    check(
        data.shape[-1] == d
        and (shared or (M is not None and data.dim() == 3 and data.shape[0] == M)),
        "data.shape",
        tuple(data.shape),
        f"(n, {d})" + ("" if M is None else f" or ({M}, n, {d})"),
    )
    dev, dtype = model.W.device, model.W.dtype
    check(data.device == dev, "data.device", data.device, f"the model's device {dev}")
    data = data.to(dtype)
    n = data.shape[-2]
    opt = _optim.make(optimizer, list(model.parameters()), lr, **(optimizer_options or {}))
    mon_train = data if monitor_size is None else data[..., :monitor_size, :]
    mon_valid = None
    if valid_data is not None:
        mon_valid = valid_data.to(device=dev, dtype=dtype)
        if monitor_size is not None:
            mon_valid = mon_valid[..., :monitor_size, :]
    history: dict[str, list] = {"epoch": [], "loss": [], "recon_loss": [], "time_s": []}
    if mon_valid is not None:
        history["recon_loss_valid"] = []
    members_idx = None if M is None else torch.arange(M, device=dev).unsqueeze(-1)  # (M, 1)
    gen_dev = generator.device if generator is not None else torch.device("cpu")
    ckpt = as_checkpointer(checkpoint)
    signature = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "optimizer_options": repr(optimizer_options or {}),
        "corruption": [corruption, rate],
        "emphasis": None if emphasis is None else list(emphasis),
        "contractive": contractive,
        "data": list(data.shape),
        "parameters": [[k, list(v.shape)] for k, v in model.state_dict().items()],
        "generator": generator is not None,
    }
    first_epoch, resume, finished = 0, None, False

    def snapshot(epoch: int, position: dict | None = None, done: bool = False) -> dict:
        return {
            "trainer": "train_autoencoder",
            "signature": signature,
            "epoch": epoch,
            "position": position,
            "finished": done,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "generator": None if generator is None else generator.get_state(),
            "rng": rng_state(dev),
            "history": history,
        }

    state = None if ckpt is None else ckpt.load()
    if state is not None:
        check_signature(ckpt, state, "train_autoencoder", signature)
        with torch.no_grad():
            model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if generator is not None:
            generator.set_state(state["generator"])
        for key, values in state["history"].items():
            history[key][:] = values
        first_epoch, resume, finished = state["epoch"], state["position"], state["finished"]
        set_rng_state(state["rng"])  # last: nothing may draw from the global generators after
    if ckpt is not None:
        ckpt.start()
    for epoch in range(first_epoch, 0 if finished else epochs):
        t0 = time.perf_counter()
        if resume is not None:  # a mid-epoch checkpoint: the same order, from the next batch
            perm, loss_sum = resume["perm"].to(dev), resume["loss_sum"].to(dev)
            n_batches, begin, resume = resume["n_batches"], resume["batch"], None
        else:
            if M is None:
                perm = torch.randperm(n, generator=generator, device=gen_dev).to(dev)  # (n,)
            else:  # an independent order per member
                perm = torch.rand((M, n), generator=generator, device=gen_dev).argsort(-1).to(dev)
            loss_sum = torch.zeros(() if M is None else (M,), dtype=dtype, device=dev)
            n_batches, begin = 0, 0
        for start in range(begin, n, batch_size):
            idx = perm[..., start : start + batch_size]  # (*M, B)
            xb = data[idx] if (M is None or shared) else data[members_idx, idx]  # (*M, B, d)
            x_tilde, mask = corrupt_with_mask(xb, corruption, rate, generator)
            weights = None
            if emphasis is not None:
                alpha, beta = emphasis
                weights = torch.where(mask, alpha, beta).to(dtype)  # (*M, B, d)
            losses = model.loss(xb, x_tilde, weights=weights, contractive=contractive)  # (*M,)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # members independent: each gets its own gradient
            opt.step()
            loss_sum += losses.detach()
            n_batches += 1
            if ckpt is not None and start + batch_size < n and ckpt.due(batches=n_batches):
                pos = {"perm": perm, "batch": start + batch_size, "loss_sum": loss_sum}
                ckpt.save(snapshot(epoch, pos | {"n_batches": n_batches}))
        record = {
            "epoch": epoch,
            "loss": _to_py(loss_sum / max(n_batches, 1)),
            "recon_loss": _to_py(_clean_loss(model, mon_train)),
        }
        if mon_valid is not None:
            record["recon_loss_valid"] = _to_py(_clean_loss(model, mon_valid))
        record["time_s"] = time.perf_counter() - t0
        for key, value in record.items():
            history[key].append(value)
        if callback is not None and callback(epoch, record):
            break
        if ckpt is not None and epoch + 1 < epochs and ckpt.due(epoch_end=True):
            ckpt.save(snapshot(epoch + 1))
    if ckpt is not None and ckpt.save_final and not finished:
        ckpt.save(snapshot(epochs, done=True))
    opt.zero_grad(set_to_none=True)
    return history


# ------------------------------------------------------------------ stacks


class DAEPretrainer:
    """A :class:`~smithing.pretrain.greedy.LayerPretrainer` training one
    :class:`DenoisingAutoencoder` with :func:`train_autoencoder` (``train_kwargs``: epochs, lr,
    batch_size, corruption, rate, emphasis, contractive, ...).

    Codes are the deterministic ``h = s(W x + b)`` of the *clean* inputs (Vincent 2010, stacking:
    the next layer is trained on the uncorrupted codes); ``sample=True`` draws Bernoulli samples
    of sigmoid codes (meaningless, and refused, for tanh / relu codes).
    """

    def __init__(self, dae: DenoisingAutoencoder, **train_kwargs) -> None:
        self.dae = dae
        self.train_kwargs = train_kwargs

    @property
    def activation(self) -> str:
        return self.dae.activation

    @property
    def n_in(self) -> int:
        return self.dae.n_visible

    @property
    def n_out(self) -> int:
        return self.dae.n_hidden

    def fit(
        self,
        x: Tensor,
        *,
        valid: Tensor | None = None,
        generator: torch.Generator | None = None,
        checkpoint: Checkpointer | None = None,
    ) -> dict:
        kwargs = {"valid_data": valid, "generator": generator, **self.train_kwargs}
        if checkpoint is not None:
            kwargs["checkpoint"] = checkpoint
        return train_autoencoder(self.dae, x, **kwargs)

    def encoder(self) -> tuple[Tensor, Tensor]:
        return self.dae.encoder()

    @torch.no_grad()
    def transform(
        self, x: Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        h = self.dae.encode(x)  # (*M, n, n_hidden)
        if not sample:
            return h
        check(self.activation == "sigmoid", "sample", sample, "False for non-sigmoid codes")
        return (_uniform(h, generator) < h).to(h.dtype)


def dae_layer(
    sizes: Sequence[int],
    index: int,
    *,
    activation: str = "sigmoid",
    tied: bool = True,
    loss: str = "cross_entropy",
    members: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> DenoisingAutoencoder:
    """Autoencoder ``index`` of an SdA of ``sizes``: ``sizes[index] -> sizes[index + 1]``.

    The bottom layer (``index == 0``) reconstructs the data with ``loss``; upper layers
    reconstruct codes: cross-entropy for sigmoid codes (in [0, 1], as the Theano SdA), squared
    error with a linear decoder for tanh / relu codes.
    """
    upper = "cross_entropy" if activation == "sigmoid" else "squared_error"
    return DenoisingAutoencoder(
        sizes[index],
        sizes[index + 1],
        activation=activation,
        tied=tied,
        loss=loss if index == 0 else upper,
        members=members,
        generator=generator,
        device=device,
        dtype=dtype,
    )


class StackedDAE(nn.Module):
    """A stacked denoising autoencoder (SdA, Vincent et al. 2010) of ``sizes = [n_visible, n_1,
    ..., n_L]``: one :class:`DenoisingAutoencoder` per layer, the ``DBN``'s interface.

    The bottom layer uses ``loss`` (``"cross_entropy"`` for [0, 1] data, ``"squared_error"`` for
    real data); upper layers reconstruct codes (:func:`dae_layer`). ``members`` makes
    each layer an ensemble of ``M`` independent autoencoders. Training is :func:`train_sda`.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        activation: str = "sigmoid",
        tied: bool = True,
        loss: str = "cross_entropy",
        members: int | None = None,
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
        kw = {
            "activation": activation,
            "tied": tied,
            "loss": loss,
            "members": members,
            "generator": generator,
            "device": device,
            "dtype": dtype,
        }
        self.daes = nn.ModuleList(dae_layer(sizes, i, **kw) for i in range(len(sizes) - 1))
        self.activation = activation

    @classmethod
    def from_layers(cls, daes: Sequence[DenoisingAutoencoder]) -> StackedDAE:
        """An SdA made of already built (or trained) autoencoders, bottom to top (no copies)."""
        daes = list(daes)
        check(len(daes) > 0, "daes", daes, "at least one autoencoder")
        for i, (lower, upper) in enumerate(zip(daes[:-1], daes[1:])):
            check(
                lower.n_hidden == upper.n_visible,
                f"daes[{i + 1}].n_visible",
                upper.n_visible,
                f"the code size of the autoencoder below, {lower.n_hidden}",
            )
        check(
            len({d.activation for d in daes}) == 1,
            "daes",
            [d.activation for d in daes],
            "autoencoders with one code activation",
        )
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.daes = nn.ModuleList(daes)
        self.activation = daes[0].activation
        return self

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.daes[0].n_visible, *(d.n_hidden for d in self.daes))

    @property
    def members(self) -> int | None:
        return self.daes[0].members

    def encoders(self) -> list[tuple[Tensor, Tensor]]:
        return [dae.encoder() for dae in self.daes]

    @torch.no_grad()
    def upward(self, x: Tensor) -> list[Tensor]:
        """The codes of every layer, bottom to top."""
        out = []
        for dae in self.daes:
            x = dae.encode(x)
            out.append(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.upward(x)[-1]

    def to_mlp(self, n_classes: int, activation: str | None = None, **kwargs) -> MLP:
        """Unroll into an MLP, fresh output layer (:func:`smithing.pretrain.greedy.to_mlp`)."""
        return _greedy.to_mlp(self, n_classes, activation or self.activation, **kwargs)


def _per_layer(layers: Mapping | Sequence[Mapping] | None, n: int) -> list[dict]:
    if layers is None:
        return [{} for _ in range(n)]
    if isinstance(layers, Mapping):
        return [dict(layers) for _ in range(n)]
    settings = [dict(s) for s in layers]
    check(len(settings) == n, "layers", f"{len(settings)} settings", f"one per layer ({n})")
    return settings


def train_sda(
    sda: StackedDAE,
    data: Tensor,
    *,
    layers: Mapping | Sequence[Mapping] | None = None,
    valid_data: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, _greedy.LayerPretrainer, dict], None] | None = None,
    checkpoint: Checkpointer | None = None,
) -> list[dict]:
    """Greedy layer-wise training of ``sda`` on ``data (n, sizes[0])``; per-layer histories.

    ``layers`` holds :func:`train_autoencoder` keyword arguments (epochs, lr, batch_size,
    corruption, rate, ...): one mapping for every layer or one per layer (e.g. the Theano
    tutorial's corruption 0.1 / 0.2 / 0.3). Layer ``l`` is trained on the clean codes of layer
    ``l - 1`` (:func:`~smithing.pretrain.greedy.greedy_stack`, ``propagate="probs"``).
    ``checkpoint`` makes it resumable, one child checkpoint per layer
    (``checkpoint.sub("layer<l>")``).
    """
    pretrainers = [
        DAEPretrainer(d, **s) for d, s in zip(sda.daes, _per_layer(layers, len(sda.daes)))
    ]
    return _greedy.greedy_stack(
        pretrainers,
        data,
        valid_data=valid_data,
        generator=generator,
        callback=callback,
        checkpoint=checkpoint,
    ).histories

"""The trainer :func:`train_autoencoder` (resumable through :mod:`smithing.checkpoint`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch
from torch import Tensor

from smithing._registry import check
from smithing.checkpoint import (
    Checkpointer,
    as_checkpointer,
    check_signature,
    rng_state,
    set_rng_state,
)
from smithing.pretrain.autoencoder.functional import (
    CORRUPTIONS,
    _check_rate,
    corrupt_with_mask,
)
from smithing.pretrain.autoencoder.modules import (
    DenoisingAutoencoder,
)

__all__ = [
    "train_autoencoder",
]

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

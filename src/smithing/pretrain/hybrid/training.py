"""Trainers: :class:`HybridTraining` (the options), :func:`train_class_rbm` and
:func:`train_deep_hybrid`, resumable through :mod:`smithing.checkpoint`."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from smithing import optim as _optim
from smithing._registry import check
from smithing.callbacks import EarlyStopping
from smithing.checkpoint import (
    Checkpointer,
    as_checkpointer,
    check_signature,
    rng_state,
    set_rng_state,
)
from smithing.history import Callback, History, legacy_callback, renamed, run_callbacks
from smithing.pretrain.hybrid.functional import (
    OBJECTIVES,
    PARAMS,
    _onehot,
    discriminative_gradient,
    generative_gradient,
    unlabeled_gradient,
)
from smithing.pretrain.hybrid.modules import (
    ClassRBM,
    DeepHybridRBM,
)

__all__ = [
    "HybridTraining",
    "chunked",
    "train_class_rbm",
    "train_deep_hybrid",
]

# ------------------------------------------------------------------ training


@dataclass(frozen=True)
class HybridTraining:
    """The settings of :func:`train_class_rbm` and :func:`train_deep_hybrid`.

    Objective (see the module docstring): ``objective`` is ``"generative"`` (``log p(y, x)`` by
    CD-k / PCD), ``"discriminative"`` (exact ``log p(y | x)``) or ``"hybrid"``
    (``log p(y | x) + alpha log p(y, x)``); unlabeled inputs add ``beta log p(x)``
    (semi-supervised; ``unlabeled_positive`` picks the positive-phase estimator, ``"sample"``
    or ``"expected"``). With the trainers' default ``optimizer="sgd"`` the update is SGD on the
    batch-mean gradient ``g``: ``smithing.optim``'s ``"momentum"`` (``torch.optim.SGD``) at
    ``lr=1`` with ``momentum``, fed ``.grad = -lr * schedule(epoch) * g`` (the delta form of
    :func:`smithing.pretrain.rbm.train_rbm`); another optimizer is stepped on ``.grad = -g``
    with its own learning rate (``momentum`` must then be 0). ``weight_decay`` is an L2
    penalty on ``W`` and ``U``. ``lr`` may be one rate per layer (deep model).

    Batches: every step takes ``batch_size`` labeled examples and, given unlabeled data,
    ``unlabeled_batch_size`` (default ``batch_size``) unlabeled ones, each from its own stream
    of concatenated random permutations; an epoch is ``steps_per_epoch`` steps (default: one
    pass over the larger set). Without unlabeled data and with ``n`` a multiple of
    ``batch_size`` an epoch is one ordinary pass over a fresh permutation.

    Negative phase: ``k`` Gibbs sweeps from the data (``method="cd"``) or of ``n_chains``
    (default ``batch_size``) persistent joint chains per layer (``"pcd"``, started at random
    labeled examples, shared by the generative and unlabeled terms); negative visibles are
    the sampled states or their means (``negative_visible``).

    Model selection: given validation data, the parameters of the epoch with the lowest
    validation error (ties: loss) are restored at the end (``restore_best``);
    ``early_stopping_patience`` stops after that many epochs without improvement (the trainers'
    ``early_stopping=`` takes an :class:`~smithing.callbacks.EarlyStopping` instead). The
    per-epoch metrics use the first ``monitor_size`` labeled training examples.
    """

    objective: str = "hybrid"
    alpha: float = 0.01
    beta: float = 0.1
    epochs: int = 10
    batch_size: int = 20
    unlabeled_batch_size: int | None = None
    steps_per_epoch: int | None = None
    lr: float | tuple[float, ...] = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    method: str = "cd"
    k: int = 1
    n_chains: int | None = None
    negative_visible: str = "sample"
    unlabeled_positive: str = "sample"
    early_stopping_patience: int | None = None
    restore_best: bool = True
    monitor_size: int = 1000

    def __post_init__(self) -> None:
        check(
            self.objective in OBJECTIVES, "objective", self.objective, f"one of {tuple(OBJECTIVES)}"
        )
        for name in ("alpha", "beta", "weight_decay"):
            v = getattr(self, name)
            check(isinstance(v, (int, float)) and v >= 0, name, v, "a non-negative number")
        for name in ("epochs", "batch_size", "k", "monitor_size"):
            v, lo = getattr(self, name), 0 if name == "epochs" else 1
            check(isinstance(v, int) and v >= lo, name, v, f"an int >= {lo}")
        for name in ("unlabeled_batch_size", "steps_per_epoch", "n_chains"):
            v = getattr(self, name)
            check(v is None or (isinstance(v, int) and v > 0), name, v, "None or a positive int")
        p = self.early_stopping_patience
        check(
            p is None or (isinstance(p, int) and p >= 0),
            "early_stopping_patience",
            p,
            "None or an int >= 0",
        )
        lrs = (self.lr,) if isinstance(self.lr, (int, float)) else tuple(self.lr)
        check(
            len(lrs) > 0 and all(v > 0 and math.isfinite(v) for v in lrs),
            "lr",
            self.lr,
            "a positive number or a sequence of them (one per layer)",
        )
        check(0.0 <= self.momentum < 1.0, "momentum", self.momentum, "a number in [0, 1)")
        check(self.method in ("cd", "pcd"), "method", self.method, "'cd' or 'pcd'")
        for name in ("negative_visible", "unlabeled_positive"):
            allowed = ("sample", "mean") if name == "negative_visible" else ("sample", "expected")
            v = getattr(self, name)
            check(v in allowed, name, v, f"one of {allowed}")

    @classmethod
    def from_options(cls, options: dict) -> HybridTraining:
        """``HybridTraining(**options)`` with an unknown name reported as a ValueError."""
        valid = tuple(cls.__dataclass_fields__)
        for name in options:
            check(name in valid, "option", name, f"one of {valid}")
        return cls(**options)


class _Stream:
    """Mini-batch indices drawn from a stream of concatenated random permutations of
    ``range(n)``: every batch has ``size`` indices, and a new permutation starts when the
    current one runs out (a batch may straddle two permutations)."""

    def __init__(self, n: int, size: int, generator: torch.Generator, device) -> None:
        self.n, self.size, self.gen, self.device = n, size, generator, device
        self.buf = torch.empty(0, dtype=torch.long)

    def take(self) -> Tensor:
        while self.buf.numel() < self.size:
            self.buf = torch.cat([self.buf, torch.randperm(self.n, generator=self.gen)])
        out, self.buf = self.buf[: self.size], self.buf[self.size :]
        return out.to(self.device)


def _draw_seed(generator: torch.Generator | None) -> int:
    if generator is None:
        return int(torch.randint(2**62, (1,)))
    return int(torch.randint(2**62, (1,), generator=generator, device=generator.device))


@torch.no_grad()
def _eval(log_proba_fn, x: Tensor, y: Tensor) -> tuple[float, float]:
    lp = chunked(log_proba_fn, x)  # (n, C)
    nll = float(-lp.gather(-1, y.long().unsqueeze(-1)).mean())
    return nll, float((lp.argmax(-1) != y).double().mean())


def chunked(fn: Callable[[Tensor], Tensor], x: Tensor, rows: int = 512) -> Tensor:
    """``fn(x)`` computed ``rows`` examples at a time and concatenated (the ``(rows, C, H)``
    tensor of :func:`hidden_inputs` stays small for wide models and large splits)."""
    return torch.cat([fn(x[i : i + rows]) for i in range(0, x.shape[0], rows)], 0)


def _check_xy(x: Tensor, y: Tensor, n_visible: int, n_classes: int, name: str) -> None:
    check(x.dim() == 2 and x.shape[-1] == n_visible, f"{name}.shape", tuple(x.shape),
          f"(n, {n_visible})")  # fmt: skip
    check(
        y.dim() == 1 and y.shape[0] == x.shape[0] and not y.is_floating_point(),
        f"{name} labels",
        tuple(y.shape),
        f"integer labels of shape ({x.shape[0]},)",
    )
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        check(lo >= 0 and hi < n_classes, f"{name} labels", (lo, hi), f"in [0, {n_classes})")


def _layer_gradient(layer, inp, yb, inp_u, cfg: HybridTraining, chain, generator):
    """One layer's ascent direction ``w_disc g_disc + w_gen g_gen + beta g_unlabeled - decay``;
    returns it, the batch's ``log p(y|x)`` and the (possibly advanced) persistent chain."""
    W, b, c, U, d = layer.params()
    w_disc, w_gen = OBJECTIVES[cfg.objective](cfg.alpha)
    grad, logp = discriminative_gradient(inp, yb, W, c, U, d, return_log_proba=True)
    if w_disc != 1.0:
        grad = {nm: w_disc * grad[nm] for nm in PARAMS}
    kw = {"k": cfg.k, "negative_visible": cfg.negative_visible, "generator": generator}
    if cfg.objective != "discriminative":  # L_disc + alpha L_gen (2008 Sec. 4); runs at alpha=0
        gg, state = generative_gradient(inp, yb, W, b, c, U, d, chains=chain, **kw)
        chain = state if cfg.method == "pcd" else None
        grad = {nm: grad[nm] + w_gen * gg[nm] for nm in PARAMS}
    if inp_u is not None:  # + beta log p(x_u)   (2008 Sec. 5)
        pos = cfg.unlabeled_positive
        gu, state = unlabeled_gradient(inp_u, W, b, c, U, d, positive=pos, chains=chain, **kw)
        chain = state if cfg.method == "pcd" else None
        grad = {nm: grad[nm] + cfg.beta * gu[nm] for nm in PARAMS}
    if cfg.weight_decay:
        grad["W"] = grad["W"] - cfg.weight_decay * W  # L2 on the weights only
        grad["U"] = grad["U"] - cfg.weight_decay * U
    return grad, logp, chain


def _train_layers(
    model: ClassRBM | DeepHybridRBM,
    layers: Sequence[ClassRBM],
    log_proba_fn: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    cfg: HybridTraining,
    *,
    x_unlabeled: Tensor | None,
    valid: tuple[Tensor, Tensor] | None,
    optimizer: str | torch.optim.Optimizer,
    optimizer_options: dict | None,
    schedule: Callable[[int], float] | None,
    early_stopping: EarlyStopping | None,
    generator: torch.Generator | None,
    callbacks: Sequence[Callback],
    progress: Callable[[int, dict], None] | None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    trainer: str = "train_class_rbm",
    extra_signature: dict | None = None,
) -> History:
    for layer in layers:
        check(layer.members is None, "members", layer.members, "None (train one model)")
    lrs = [float(cfg.lr)] * len(layers) if isinstance(cfg.lr, (int, float)) else list(cfg.lr)
    check(len(lrs) == len(layers), "lr", cfg.lr, f"one number or {len(layers)} (one per layer)")
    bottom = layers[0]
    dev, dtype, C = bottom.W.device, bottom.W.dtype, bottom.n_classes
    _check_xy(x, y, bottom.n_visible, C, "x")
    check(x.shape[0] > 0, "x.shape", tuple(x.shape), "at least one labeled example")
    x, y = x.to(device=dev, dtype=dtype), y.to(dev)
    xu = None
    if x_unlabeled is not None and x_unlabeled.shape[0] > 0:
        shape = tuple(x_unlabeled.shape)
        ok = x_unlabeled.dim() == 2 and shape[-1] == bottom.n_visible
        check(ok, "x_unlabeled.shape", shape, f"(n, {bottom.n_visible})")
        xu = x_unlabeled.to(device=dev, dtype=dtype)
    if valid is not None:
        _check_xy(valid[0], valid[1], bottom.n_visible, C, "valid")
        valid = (valid[0].to(device=dev, dtype=dtype), valid[1].to(dev))
    ub = cfg.unlabeled_batch_size or cfg.batch_size
    n, nu = x.shape[0], (0 if xu is None else xu.shape[0])
    steps = cfg.steps_per_epoch or max(math.ceil(n / cfg.batch_size), math.ceil(nu / ub))

    # the batch order: its own CPU generator, seeded by one draw of `generator`
    order = torch.Generator().manual_seed(_draw_seed(generator))
    lab = _Stream(n, min(cfg.batch_size, n), order, dev)
    unl = None if xu is None else _Stream(nu, min(ub, nu), order, dev)

    chains: list = [None] * len(layers)  # PCD: one persistent (x, y) chain per layer
    if cfg.method == "pcd":
        idx = torch.randint(n, (cfg.n_chains or cfg.batch_size,), generator=generator, device=dev)
        v, yc = x[idx], _onehot(y[idx], C, dtype)
        for i, layer in enumerate(layers):
            chains[i] = (v.clone(), yc.clone())
            with torch.no_grad():
                v = layer.marginal_hidden_probs(v)

    params = [dict(zip(PARAMS, layer.params())) for layer in layers]
    delta = isinstance(optimizer, str) and optimizer == "sgd"  # the delta form
    if delta:
        check(
            not optimizer_options,
            "optimizer_options",
            optimizer_options,
            "None with optimizer='sgd' (the delta form: use momentum= and weight_decay=)",
        )
        opt = _optim.make(
            "momentum", [{"params": list(p.values())} for p in params], 1.0, momentum=cfg.momentum
        )
    else:
        check(
            cfg.momentum == 0,
            "momentum",
            cfg.momentum,
            "0 unless optimizer='sgd' (give the optimizer's own options in optimizer_options)",
        )
        groups = [{"params": list(p.values()), "lr": lr} for p, lr in zip(params, lrs)]
        opt = _optim.resolve(optimizer, groups, lrs[0], optimizer_options)
    base_lrs = [group["lr"] for group in opt.param_groups]
    mon = (x[: cfg.monitor_size], y[: cfg.monitor_size])
    hist = History(
        config={
            "epochs": cfg.epochs,
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "steps_per_epoch": steps,
        }
    )
    best_key, best_epoch, best_state, since = None, None, None, 0
    if early_stopping is not None:
        check(
            cfg.early_stopping_patience is None,
            "early_stopping_patience",
            cfg.early_stopping_patience,
            "None when early_stopping is given",
        )
        watched = ("train_loss",) if valid is None else ("valid_loss", "valid_error", "train_loss")
        check(
            early_stopping.monitor in watched,
            "early_stopping.monitor",
            early_stopping.monitor,
            f"one of {watched} (what this run records)",
        )
        early_stopping.reset()
    ckpt = as_checkpointer(checkpoint)
    signature = {
        "training": _jsonable(dataclasses.asdict(cfg)),
        "parameters": [
            [f"{i}.{k}", list(v.shape)]
            for i, lay in enumerate(layers)
            for k, v in lay.state_dict().items()
        ],
        "data": [n, nu, None if valid is None else valid[0].shape[0]],
        "steps_per_epoch": steps,
        "generator": generator is not None,
        "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
        "optimizer_options": repr(optimizer_options or {}),
        "early_stopping": None if early_stopping is None else early_stopping.monitor,
        **(extra_signature or {}),
    }
    first_epoch, begin, finished, elapsed = 1, 0, False, 0.0
    loss_sum = None

    def snapshot(epoch: int, step: int = 0, done: bool = False) -> dict:
        # everything needed to continue with step `step` of epoch `epoch`
        return {
            "trainer": trainer,
            "signature": signature,
            "epoch": epoch,
            "step": step,
            "finished": done,
            "elapsed": time.perf_counter() - t0,
            "loss_sum": loss_sum if step else None,
            "layers": [layer.state_dict() for layer in layers],
            "optimizer": opt.state_dict(),
            "order": order.get_state(),
            "streams": [lab.buf, None if unl is None else unl.buf],
            "chains": chains,
            "generator": None if generator is None else generator.get_state(),
            "rng": rng_state(dev),
            "history": hist.state_dict(),
            "best": [None if best_key is None else list(best_key), best_epoch, best_state, since],
            "early_stopping": None if early_stopping is None else early_stopping.state_dict(),
        }

    state = None if ckpt is None else ckpt.load()
    if state is not None:
        check_signature(ckpt, state, trainer, signature)
        with torch.no_grad():
            for layer, s in zip(layers, state["layers"]):
                layer.load_state_dict(s)
        opt.load_state_dict(state["optimizer"])
        order.set_state(state["order"])
        lab.buf = state["streams"][0]
        if unl is not None:
            unl.buf = state["streams"][1]
        chains = [None if c is None else tuple(t.to(dev) for t in c) for c in state["chains"]]
        if generator is not None:
            generator.set_state(state["generator"])
        hist.load_state_dict(state["history"])
        if early_stopping is not None:
            early_stopping.load_state_dict(state["early_stopping"])
        key, best_epoch, best_state, since = state["best"]
        best_key = None if key is None else tuple(key)
        if best_state is not None:
            best_state = [{k: v.to(dev) for k, v in s.items()} for s in best_state]
        first_epoch, begin = state["epoch"], state["step"]
        finished, elapsed = state["finished"], state["elapsed"]
        if state["loss_sum"] is not None:
            loss_sum = state["loss_sum"].to(dev)
        set_rng_state(state["rng"])  # last: nothing may draw from the global generators after
    t0 = time.perf_counter() - elapsed
    if ckpt is not None:
        ckpt.start()
    for epoch in range(first_epoch, 0 if finished else cfg.epochs + 1):
        factor = 1.0 if schedule is None else float(schedule(epoch - 1))
        if not delta and schedule is not None:
            for group, base in zip(opt.param_groups, base_lrs):
                group["lr"] = base * factor
        if begin == 0:
            loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        for step in range(begin, steps):
            idx = lab.take()
            xb, yb = x[idx], y[idx]  # (B, D), (B,)
            xub = None if unl is None else xu[unl.take()]  # (Bu, D)
            with torch.no_grad():
                inp, inp_u = xb, xub
                for li, layer in enumerate(layers):
                    grad, logp, chains[li] = _layer_gradient(
                        layer, inp, yb, inp_u, cfg, chains[li], generator
                    )
                    for nm, t in params[li].items():
                        if delta:  # SGD(lr=1) descends -lr g: the delta form
                            t.grad = -(lrs[li] * factor) * grad[nm]
                        else:  # the optimizer descends -g with its own lr
                            t.grad = -grad[nm]
                    if li < len(layers) - 1:  # the next layer's inputs, before this update
                        inp = layer.marginal_hidden_probs(inp)
                        inp_u = None if inp_u is None else layer.marginal_hidden_probs(inp_u)
                loss_sum -= logp.gather(-1, yb.unsqueeze(-1)).double().sum()  # top layer
            opt.step()
            if ckpt is not None and step + 1 < steps and ckpt.due(batches=step + 1):
                ckpt.save(snapshot(epoch, step + 1))
        begin = 0
        cur = [v * factor for v in lrs] if delta else [g["lr"] for g in opt.param_groups]
        rec: dict[str, Any] = {
            "epoch": epoch,
            "lr": cur if len(cur) > 1 else cur[0],
            "batch_loss": float(loss_sum) / (steps * lab.size),
        }
        rec["train_loss"], rec["train_error"] = _eval(log_proba_fn, *mon)
        if valid is not None:
            rec["valid_loss"], rec["valid_error"] = _eval(log_proba_fn, *valid)
        rec["seconds"] = time.perf_counter() - t0
        hist.epochs.append(rec)
        if not all(torch.isfinite(t).all() for p in params for t in p.values()):
            hist.status = hist.stop_reason = "diverged"
            hist.message = f"non-finite parameters in epoch {epoch}"
            break
        if progress is not None:
            progress(epoch, rec)
        stop = run_callbacks(callbacks, epoch, rec, model)
        if early_stopping is not None:
            value = float(rec[early_stopping.monitor])
            improved, patience_stop = early_stopping.update(epoch, value)
            if improved:
                best_epoch = epoch
                if early_stopping.restore_best_weights:
                    best_state = [copy.deepcopy(layer.state_dict()) for layer in layers]
            if patience_stop:
                hist.stop_reason, stop = "patience", True
        elif valid is not None:
            key = (rec["valid_error"], rec["valid_loss"])
            if best_key is None or key < best_key:
                best_key, best_epoch, since = key, epoch, 0
                if cfg.restore_best:
                    best_state = [copy.deepcopy(layer.state_dict()) for layer in layers]
            else:
                since += 1
                p = cfg.early_stopping_patience
                if p is not None and since > p:
                    hist.stop_reason, stop = "patience", True
        if stop:
            if hist.stop_reason == "max_epochs":
                hist.stop_reason = "callback"
            break
        if ckpt is not None and epoch < cfg.epochs and ckpt.due(epoch_end=True):
            ckpt.save(snapshot(epoch + 1))
    if ckpt is not None and ckpt.save_final and not finished:
        ckpt.save(snapshot(cfg.epochs + 1, done=True))
    opt.zero_grad(set_to_none=True)
    if best_state is not None:
        for layer, state in zip(layers, best_state):
            layer.load_state_dict(state)
    hist.best_epoch = best_epoch if best_epoch is not None else hist.epochs_run
    hist.seconds = time.perf_counter() - t0
    return hist


def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


_ARGS = """
    Args:
        x_unlabeled: unlabeled inputs ``(n_u, D)`` (semi-supervised, weighted ``beta``).
        valid: ``(x, y)`` for model selection and ``valid_*`` metrics.
        epochs, lr, batch_size, and every other field of :class:`HybridTraining`
            (``objective``, ``alpha``, ``beta``, ``momentum``, ``weight_decay``, ``method``,
            ``k``, ...): ``options``.
        optimizer, optimizer_options: ``"sgd"`` (the delta form, with ``momentum``; no
            options), another :mod:`smithing.optim` name with its options (one param group
            per layer, at that layer's ``lr``), or a ready ``torch.optim.Optimizer``.
        schedule, schedule_options: a :mod:`smithing.optim` schedule name or a callable
            ``epoch -> factor`` (0-based epoch) scaling the learning rates.
        early_stopping: an :class:`~smithing.callbacks.EarlyStopping` on ``valid_loss``,
            ``valid_error`` (given ``valid``) or ``train_loss``, instead of the built-in
            selection (``early_stopping_patience`` must then be None); its best epoch's
            parameters are restored at the end when ``restore_best_weights`` is set.
        generator: drives the batch order (through one seed drawn from it) and the sampling:
            same seed, same result.
        callbacks: ``cb(epoch, record, model)`` after each epoch (1-based); a truthy return
            stops training (``stop_reason="callback"``).
        progress: ``progress(epoch, record)`` after each epoch.
        device: move the model there first (the data follow the model).
        checkpoint: a :class:`~smithing.checkpoint.Checkpointer` or a path; training continues
            from the newest valid checkpoint there and saves as its policy says (epoch ends,
            optionally after any step). It holds the parameters, the optimizer state
            (momentum buffers), the persistent chains, the batch streams (their generator and
            the rest of their current permutations), the states of ``generator`` and of the
            global torch / Python / NumPy generators, the model-selection state (best epoch,
            its parameters, patience; or the ``early_stopping`` state), the history and the
            position in the epoch. A resumed run ends bitwise equal (on CPU) to the run
            uninterrupted (``seconds`` aside); a finished run's checkpoint makes a rerun skip
            training.
        lr_schedule: deprecated alias of ``schedule`` (a callable); warns.
        callback: deprecated ``callback(epoch, record)``; warns. Use ``callbacks``.

    Returns:
        a :class:`~smithing.history.History`: per epoch ``epoch`` (1-based), ``lr``,
        ``batch_loss`` (mean ``-log p(y|x)`` of the top layer over the epoch's batches,
        before each update), ``train_loss`` / ``train_error`` (exact ``-log p(y|x)`` and error
        on the first ``monitor_size`` labeled examples), ``valid_loss`` / ``valid_error`` on
        ``valid`` and cumulative ``seconds``; ``status``, ``stop_reason`` (``"max_epochs"``,
        ``"patience"``, ``"callback"``, ``"diverged"``: a non-finite parameter ends training
        with ``status="diverged"``), ``best_epoch``, ``seconds``, ``message``, and
        ``config["steps_per_epoch"]``.
"""


def _vocabulary(
    trainer, model, device, lr_schedule, schedule, schedule_options, callback, callbacks, epochs
):
    schedule = renamed(trainer, "lr_schedule", lr_schedule, "schedule", schedule, stacklevel=4)
    callbacks = legacy_callback(trainer, callback, callbacks, stacklevel=4)
    if device is not None:
        model.to(device)
    return _optim.resolve_schedule(schedule, epochs, schedule_options), callbacks


def train_class_rbm(
    model: ClassRBM,
    x: Tensor,
    y: Tensor,
    *,
    x_unlabeled: Tensor | None = None,
    valid: tuple[Tensor, Tensor] | None = None,
    optimizer: str | torch.optim.Optimizer = "sgd",
    optimizer_options: dict | None = None,
    schedule: str | Callable[[int], float] | None = None,
    schedule_options: dict | None = None,
    early_stopping: EarlyStopping | None = None,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
    progress: Callable[[int, dict], None] | None = None,
    device: torch.device | str | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    callback: Callable[[int, dict], object] | None = None,
    **options,
) -> History:
    """Train a :class:`ClassRBM` in place on inputs ``x (n, D)`` and integer labels ``y (n,)``
    (plus unlabeled ``x_unlabeled (n_u, D)``: semi-supervised); ``options`` are the fields
    of :class:`HybridTraining` (objective, alpha, beta, epochs, batch_size, lr, momentum, ...).
    """
    cfg = HybridTraining.from_options(options)
    factor_at, callbacks = _vocabulary(
        "train_class_rbm",
        model,
        device,
        lr_schedule,
        schedule,
        schedule_options,
        callback,
        callbacks,
        cfg.epochs,
    )
    return _train_layers(
        model,
        [model],
        model.log_proba,
        x,
        y,
        cfg,
        x_unlabeled=x_unlabeled,
        valid=valid,
        optimizer=optimizer,
        optimizer_options=optimizer_options,
        schedule=factor_at,
        early_stopping=early_stopping,
        generator=generator,
        callbacks=callbacks,
        progress=progress,
        checkpoint=checkpoint,
    )


def train_deep_hybrid(
    model: DeepHybridRBM,
    x: Tensor,
    y: Tensor,
    *,
    combine: str = "top",
    x_unlabeled: Tensor | None = None,
    valid: tuple[Tensor, Tensor] | None = None,
    optimizer: str | torch.optim.Optimizer = "sgd",
    optimizer_options: dict | None = None,
    schedule: str | Callable[[int], float] | None = None,
    schedule_options: dict | None = None,
    early_stopping: EarlyStopping | None = None,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
    progress: Callable[[int, dict], None] | None = None,
    device: torch.device | str | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    callback: Callable[[int, dict], object] | None = None,
    **options,
) -> History:
    """Train every layer of a :class:`DeepHybridRBM` at once, in a single stage.

    Each step: the mini-batch goes up the stack (layer ``l``'s input is layer ``l-1``'s
    ``E[h | .]`` under the parameters *before* this step's update), every layer computes its
    own objective's gradient (:class:`HybridTraining` ``options``) on its own input with the
    true labels (no gradient crosses layers), then all layers take their step. ``lr`` may
    hold one rate per layer. The monitored metrics use ``model.log_proba(x, combine)``.
    """
    check(combine in ("top", "mean"), "combine", combine, "'top' or 'mean'")
    cfg = HybridTraining.from_options(options)
    factor_at, callbacks = _vocabulary(
        "train_deep_hybrid",
        model,
        device,
        lr_schedule,
        schedule,
        schedule_options,
        callback,
        callbacks,
        cfg.epochs,
    )
    return _train_layers(
        model,
        list(model.layers),
        lambda v: model.log_proba(v, combine),
        x,
        y,
        cfg,
        x_unlabeled=x_unlabeled,
        valid=valid,
        optimizer=optimizer,
        optimizer_options=optimizer_options,
        schedule=factor_at,
        early_stopping=early_stopping,
        generator=generator,
        callbacks=callbacks,
        progress=progress,
        checkpoint=checkpoint,
        trainer="train_deep_hybrid",
        extra_signature={"combine": combine},
    )


train_class_rbm.__doc__ += _ARGS  # type: ignore[operator]
train_deep_hybrid.__doc__ += _ARGS  # type: ignore[operator]

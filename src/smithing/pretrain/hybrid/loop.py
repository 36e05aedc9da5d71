"""The training loop the hybrid trainers share (:func:`train_layers`): every layer of a stack of
:class:`ClassRBM` s steps on its own objective's gradient, with the batch streams, the
persistent chains, model selection and the checkpoint (:class:`~smithing.checkpoint.Resumable`)."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from smithing import optim as _optim
from smithing._registry import check
from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer, Resumable
from smithing.history import Callback, History, run_callbacks
from smithing.pretrain.hybrid.functional import (
    OBJECTIVES,
    PARAMS,
    _onehot,
    discriminative_gradient,
    generative_gradient,
    unlabeled_gradient,
)
from smithing.pretrain.hybrid.modules import ClassRBM, DeepHybridRBM
from smithing.pretrain.hybrid.settings import HybridTraining

__all__ = ["chunked", "train_layers"]


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


def train_layers(
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
    trainer: str,
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
    # `step` is where to continue in `epoch`; `loss_sum` is that epoch's sum so far (reset at
    # an epoch's start: what an epoch end saves is unused)
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    run = Resumable(checkpoint, trainer, signature, device=dev, first_epoch=1, position_key="step")
    run.part("loss_sum", lambda: loss_sum)
    run.part("layers", lambda: [layer.state_dict() for layer in layers], _load_layers(layers))
    run.optimizer(opt)
    run.generator(order, "order")

    def put_streams(bufs: list) -> None:
        lab.buf = bufs[0]
        if unl is not None:
            unl.buf = bufs[1]

    def put_chains(saved: list) -> None:
        chains[:] = [None if c is None else tuple(t.to(dev) for t in c) for c in saved]

    run.part("streams", lambda: [lab.buf, None if unl is None else unl.buf], put_streams)
    run.part("chains", lambda: chains, put_chains)
    run.generator(generator)
    run.history(hist)
    run.part(
        "best",
        lambda: [None if best_key is None else list(best_key), best_epoch, best_state, since],
    )
    run.early_stopping(early_stopping)
    state = run.resume()
    if state is not None:
        key, best_epoch, best_state, since = state["best"]
        best_key = None if key is None else tuple(key)
        if best_state is not None:
            best_state = [{k: v.to(dev) for k, v in s.items()} for s in best_state]
        if state["loss_sum"] is not None:
            loss_sum = state["loss_sum"].to(dev)
    begin = run.position or 0
    for epoch in run.epochs(cfg.epochs + 1):
        factor = 1.0 if schedule is None else float(schedule(epoch - 1))
        if not delta and schedule is not None:
            for group, base in zip(opt.param_groups, base_lrs):
                group["lr"] = base * factor
        if begin == 0:
            loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        for step in range(begin, steps):
            idx = lab.take()
            xb, yb = x[idx], y[idx]  # (B, D), (B,)
            xub = None if unl is None or xu is None else xu[unl.take()]  # (Bu, D)
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
            if step + 1 < steps and run.due(batches=step + 1):
                run.save(epoch, step + 1)
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
        rec["seconds"] = run.seconds()
        hist.epochs.append(rec)
        if not all(torch.isfinite(t).all() for p in params for t in p.values()):
            hist.status = hist.stop_reason = "diverged"
            hist.message = f"non-finite parameters in epoch {epoch}"
            break
        if progress is not None:
            progress(epoch, rec)
        # model selection first, so that the weights kept are those that made `rec` (a callback
        # may change the model); then the callbacks, which see every epoch's record
        stop = False
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
        if run_callbacks(callbacks, epoch, rec, model) and not stop:
            hist.stop_reason, stop = "callback", True
        if stop:
            break
        if epoch < cfg.epochs and run.due(epoch_end=True):
            run.save(epoch + 1, 0)
    run.save_final(cfg.epochs + 1, 0)
    opt.zero_grad(set_to_none=True)
    if best_state is not None:
        for layer, state in zip(layers, best_state):
            layer.load_state_dict(state)
    hist.best_epoch = best_epoch if best_epoch is not None else hist.epochs_run
    hist.seconds = run.seconds()
    return hist


def _load_layers(layers: Sequence[ClassRBM]) -> Callable[[list], None]:
    def put(states: list) -> None:
        with torch.no_grad():
            for layer, s in zip(layers, states):
                layer.load_state_dict(s)

    return put


def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v

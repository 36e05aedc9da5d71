"""The hybrid study's runs: a classification RBM (generative, discriminative, hybrid,
semi-supervised), a deep hybrid stack, or a DBN pretrained and fine-tuned; ``run`` dispatches on
the config's ``model``."""

from __future__ import annotations

import math
import time

import torch

from smithing.checkpoint import phase as _phase
from smithing.experiment import (
    RunResult,
)
from smithing.studies.hybrid.configs import (
    TRAIN_KEYS,
)

__all__ = [
    "RUNNERS",
    "labeled_subset",
    "run",
    "run_classrbm",
    "run_dbn",
    "run_deep_hybrid",
]


def _data(config: dict, device: str):
    from smithing.data import load

    return load(config.get("dataset", "digits"), device)


def labeled_subset(y: torch.Tensor, n: int, n_classes: int, seed: int):
    """``n // n_classes`` random examples of each class (seeded), and the rest's indices."""
    g = torch.Generator().manual_seed(1000 + int(seed))
    yc = y.cpu()
    parts = []
    for c in range(n_classes):
        idx = (yc == c).nonzero().squeeze(1)
        parts.append(idx[torch.randperm(len(idx), generator=g)[: n // n_classes]])
    lab = torch.cat(parts)
    rest = torch.ones(len(yc), dtype=torch.bool)
    rest[lab] = False
    return lab.to(y.device), rest.nonzero().squeeze(1).to(y.device)


def _generator(seed: int, device: str) -> torch.Generator:
    return torch.Generator(torch.device(device)).manual_seed(int(seed))


def _final(log_proba_fn, data) -> dict:
    from smithing.pretrain.hybrid import chunked

    out = {}
    with torch.no_grad():
        for split in ("train", "valid", "test"):
            s = data.split(split)
            lp = chunked(log_proba_fn, s.x)  # (n, C), 512 rows at a time
            out[f"{split}_loss"] = float(-lp.gather(-1, s.y.unsqueeze(-1)).mean())
            out[f"{split}_error"] = float((lp.argmax(-1) != s.y).double().mean())
    return out


def run_classrbm(
    config: dict, seed: int, device: str = "cpu", *, checkpoint=None, progress=None
) -> RunResult:
    """One classification RBM (any objective; ``n_labels`` / ``semi`` for the curve)."""
    from smithing.pretrain.hybrid import ClassRBM, train_class_rbm

    t0 = time.perf_counter()
    data = _data(config, device)
    x, y = data.train.x, data.train.y
    g = _generator(seed, device)
    opts = {k: config[k] for k in TRAIN_KEYS if k in config}
    xu, extra = None, {}
    if config.get("n_labels"):
        lab, rest = labeled_subset(y, int(config["n_labels"]), data.n_classes, seed)
        x, y = x[lab], y[lab]
        xu = data.train.x[rest] if config.get("semi") else None
        extra = {"n_labels": len(lab), "n_unlabeled": 0 if xu is None else len(rest)}
        if config.get("full_epoch_steps"):  # the same number of updates for sup and semi
            opts["steps_per_epoch"] = math.ceil(len(data.train) / config["batch_size"])
    model = ClassRBM(data.n_inputs, int(config["hidden"]), data.n_classes, generator=g,
                     device=device)  # fmt: skip
    model.init_visible_bias_(data.train.x)
    hist = train_class_rbm(
        model, x, y, x_unlabeled=xu, valid=(data.valid.x, data.valid.y), generator=g,
        monitor_size=500, checkpoint=checkpoint,
        progress=_report(progress, _epochs(opts), "train"), **opts,
    )  # fmt: skip
    extra.update(best_epoch=hist.best_epoch, steps_per_epoch=hist.config["steps_per_epoch"])
    return RunResult(hist.status, _final(model.log_proba, data), hist.epochs, extra,
                     hist.message, time.perf_counter() - t0)  # fmt: skip


def run_deep_hybrid(
    config: dict, seed: int, device: str = "cpu", *, checkpoint=None, progress=None
) -> RunResult:
    """A deep hybrid stack trained in one stage; final metrics for ``combine`` (top/mean)."""
    from smithing.pretrain.hybrid import DeepHybridRBM, chunked, train_deep_hybrid

    t0 = time.perf_counter()
    data = _data(config, device)
    g = _generator(seed, device)
    sizes = [data.n_inputs, *[int(h) for h in config["hidden"]]]
    model = DeepHybridRBM(sizes, data.n_classes, generator=g, device=device)
    model.layers[0].init_visible_bias_(data.train.x)
    combine = config.get("combine", "top")
    opts = {k: config[k] for k in TRAIN_KEYS if k in config}
    hist = train_deep_hybrid(
        model, data.train.x, data.train.y, combine=combine,
        valid=(data.valid.x, data.valid.y), generator=g, monitor_size=500,
        checkpoint=checkpoint, progress=_report(progress, _epochs(opts), "train"), **opts,
    )  # fmt: skip
    final = _final(lambda v: model.log_proba(v, combine), data)
    for how in ("top", "mean"):
        lp = _final(lambda v, how=how: model.log_proba(v, how), data)
        final[f"test_error_{how}"], final[f"valid_error_{how}"] = (
            lp["test_error"],
            lp["valid_error"],
        )
    with torch.no_grad():
        lps = chunked(lambda v: torch.stack(model.layer_log_proba(v), 1), data.test.x)
        layer_err = (lps.argmax(-1) != data.test.y.unsqueeze(-1)).double().mean(0).tolist()
    extra = {"best_epoch": hist.best_epoch, "layer_test_error": layer_err}
    return RunResult(hist.status, final, hist.epochs, extra, hist.message,
                     time.perf_counter() - t0)  # fmt: skip


def run_dbn(
    config: dict, seed: int, device: str = "cpu", *, checkpoint=None, progress=None
) -> RunResult:
    """The two-stage pipeline: greedy CD-1 DBN pretraining, then backprop fine-tuning
    (:func:`smithing.pretrain.stack.pretrain_stack`, ``to_mlp``, ``finetune``); with a
    ``checkpoint``, each RBM resumes from its child ``layer<l>``, fine-tuning from
    ``finetune``."""
    from smithing.pretrain.stack import StackSpec, finetune, pretrain_stack
    from smithing.train import EarlyStopping, fit, seed_everything

    t0 = time.perf_counter()
    data = _data(config, device)
    g = _generator(seed, device)
    seed_everything(int(seed))
    sizes = [data.n_inputs, *[int(h) for h in config["hidden"]]]
    layer_opts = {"epochs": int(config["pretrain_epochs"]), "lr": float(config["pretrain_lr"]),
                  "batch_size": int(config["batch_size"]), "momentum": "hinton"}  # fmt: skip
    spec = StackSpec("dbn", sizes, layer_opts)
    stack = pretrain_stack(
        spec, data.train.x, generator=g, checkpoint=checkpoint, progress=progress
    )
    mlp = stack.to_mlp(data.n_classes, "sigmoid", generator=g)
    stop = EarlyStopping(monitor="valid_error", patience=10**6, restore_best_weights=True)
    hist = finetune(
        mlp, data, fit=fit, epochs=int(config["epochs"]), lr=float(config["lr"]),
        batch_size=int(config["batch_size"]), optimizer="momentum", seed=int(seed),
        early_stopping=stop, device=device, checkpoint=_phase(checkpoint, "finetune"),
        progress=_report(progress, int(config["epochs"]), "finetune"),
    )  # fmt: skip
    extra = {
        "best_epoch": hist.best_epoch,
        "pretrain_recon_error": [h["recon_error"][-1] for h in stack.histories],
    }
    return RunResult(hist.status, hist.final, hist.epochs, extra, hist.message,
                     time.perf_counter() - t0)  # fmt: skip


def _epochs(opts: dict) -> int:
    """The epochs a hybrid trainer runs with ``opts`` (HybridTraining's default if not set)."""
    from smithing.pretrain.hybrid import HybridTraining

    return int(opts.get("epochs", HybridTraining.epochs))


def _report(progress, epochs: int, phase: str):
    """A trainer's ``progress(epoch, record)`` reporting to the runner's phase-aware one."""
    return None if progress is None else (lambda e, rec: progress(e, epochs, phase))


RUNNERS = {"classrbm": run_classrbm, "deep-hybrid": run_deep_hybrid, "dbn": run_dbn}


def run(
    config: dict, seed: int, device: str = "cpu", *, checkpoint=None, progress=None
) -> RunResult:
    """The study's ``run``: dispatch on ``config["run"]`` (the variant's kind, see RUNNERS);
    ``checkpoint`` (the runner's) makes every kind resumable; ``progress(epoch, epochs,
    phase)`` (the runner's) follows the training phases."""
    from smithing._registry import check

    kind = config.get("run")
    check(kind in RUNNERS, "config['run']", kind, f"one of {tuple(RUNNERS)}")
    return RUNNERS[kind](config, seed, device, checkpoint=checkpoint, progress=progress)

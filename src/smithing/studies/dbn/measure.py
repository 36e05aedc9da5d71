"""One run of the dbn study: greedy RBM pretraining of the stack (or none), unrolling into an MLP,
supervised fine-tuning with early stopping; filters and samples for the figures."""

from __future__ import annotations

import math
import time

import torch

from smithing.checkpoint import phase as _phase
from smithing.experiment import (
    RunResult,
    rounded,
)
from smithing.studies.dbn.configs import (
    resolve_config,
)

__all__ = [
    "run",
]


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def _output_init(cfg: dict):
    """The output layer's initializer: an :data:`OUTPUT_INITS` name, or ``"randn"``: weights
    and biases ``N(0, output_init_std^2)`` (``backpropclassify.m``'s ``0.1*randn(2001, 10)``,
    whose last row is the bias)."""
    from smithing.pretrain.greedy import OUTPUT_INITS

    if cfg["output_init"] != "randn":
        return OUTPUT_INITS.get(cfg["output_init"])
    std = float(cfg["output_init_std"])

    @torch.no_grad()
    def randn(linear: torch.nn.Linear, generator: torch.Generator | None) -> None:
        for p in (linear.weight, linear.bias):
            p.copy_(torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype) * std)

    return randn


def _finetune_progress(progress, epochs: int):
    """The fine-tuning's ``progress(epoch, record)`` for the runner's phase-aware reporter."""
    return None if progress is None else (lambda e, rec: progress(e, epochs, "finetune"))


def run(
    config: dict, seed: int, device: str = "cpu", *, checkpoint=None, progress=None
) -> RunResult:
    """Pretrain (or not) the stack, fine-tune it with early stopping, keep curves and images.

    ``checkpoint`` (the runner's): each RBM trains with its child ``layer<l>``, the
    fine-tuning with ``finetune``; a rerun skips the finished phases. ``progress(epoch,
    epochs, phase)`` (the runner's) follows the phases ``layer<l>`` and ``finetune``."""
    from smithing import init as _init
    from smithing.data import load
    from smithing.nn import MLP
    from smithing.pretrain.stack import StackSpec, finetune, pretrain_stack
    from smithing.train import EarlyStopping, fit, seed_everything

    t0 = time.perf_counter()
    cfg = resolve_config(config)
    dev = torch.device(device)
    data = load(cfg["dataset"], device=dev).subset(cfg["n_train"])
    x_train, x_valid = _flat(data.train.x).float(), _flat(data.valid.x).float()
    n_in = x_train.shape[1]
    shape = data.meta.get("image_shape") or (math.isqrt(n_in), n_in // math.isqrt(n_in))
    extra: dict = {"image_shape": list(shape)}
    nf = min(cfg["n_filters"], cfg["hidden"][0])
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed)
        g = torch.Generator(device=dev).manual_seed(int(seed))
        stack = None
        if cfg["pretrain"]:
            layer = {
                "epochs": cfg["pretrain_epochs"],
                "lr": cfg["pretrain_lr"],
                "batch_size": cfg["pretrain_batch_size"],
                "momentum": cfg["pretrain_momentum"],
                "weight_decay": cfg["pretrain_weight_decay"],
                "k": cfg["pretrain_k"],
                "method": cfg["pretrain_method"],
                "negative_visible": cfg["negative_visible"],
            }
            options = {
                "init_std": cfg["init_std"],
                "init_visible_bias": cfg["visible_bias"] == "logit",
            }
            spec = StackSpec(
                "dbn",
                [n_in, *cfg["hidden"]],
                layer,
                propagate=cfg["propagate"],
                options=options,
            )
            stack = pretrain_stack(
                spec,
                x_train,
                generator=g,
                valid_data=x_valid,
                checkpoint=checkpoint,
                progress=progress,
            )
            dbn, hists = stack.module, stack.histories
            extra["pretrain"] = [
                {
                    "recon_error": h["recon_error"],
                    "free_energy_gap": [
                        v - t for v, t in zip(h["free_energy_valid"], h["free_energy_train"])
                    ],
                    "seconds": h.seconds,
                }
                for h in hists
            ]
            extra["filters_pretrained"] = rounded(dbn.rbms[0].W[:, :nf].T)  # (nf, n_in)
            samples = dbn.sample(cfg["n_samples"], cfg["sample_steps"], generator=g)
            extra["samples"] = rounded(samples, 3)  # (n_samples, n_in)
            model = stack.to_mlp(data.n_classes, output_init=_output_init(cfg), generator=g)
        else:
            model = MLP(n_in, cfg["hidden"], data.n_classes, "sigmoid").to(dev)
            _init.apply(
                model,
                cfg["random_init"],
                generator=g,
                gain=cfg["random_init_gain"],
            )
            _output_init(cfg)(model.linears[-1], g)
        stopper = EarlyStopping(
            monitor="valid_error",
            patience=cfg["patience"],
            improvement_threshold=cfg["improvement_threshold"],
            patience_increase=2.0,
        )
        hist = finetune(
            model,
            data,
            fit=fit,
            epochs=cfg["epochs"],
            lr=cfg["lr"],
            batch_size=cfg["batch_size"],
            optimizer=cfg["optimizer"],
            optimizer_options=cfg["optimizer_options"],
            seed=seed,
            early_stopping=stopper,
            device=dev,
            checkpoint=_phase(checkpoint, "finetune"),
            progress=_finetune_progress(progress, cfg["epochs"]),
        )
    extra["filters_finetuned"] = rounded(model.linears[0].weight[:nf])  # (nf, n_in)
    extra.update(
        best_epoch=hist.best_epoch, stop_reason=hist.stop_reason, epochs_run=hist.epochs_run
    )
    saved = {"mlp": model} if stack is None else {"stack": stack, "mlp": model}
    return RunResult(
        hist.status,
        hist.final,
        hist.epochs,
        extra,
        hist.message,
        time.perf_counter() - t0,
        model=saved,  # kept by --save-models: the pretrained stack and the fine-tuned MLP
    )

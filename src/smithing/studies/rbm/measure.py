"""One run of the rbm study: train an RBM (CD-k or PCD), estimate its log Z by AIS (and exactly
when the smaller layer is small), and keep its filters and Gibbs samples."""

from __future__ import annotations

import math
import time

import torch

from smithing.experiment import (
    RunResult,
    rounded,
)
from smithing.studies.rbm.configs import (
    binary_splits,
    k_per_epoch,
    resolve_config,
    train_probabilities,
)

__all__ = [
    "gibbs_snapshots",
    "run",
]


@torch.no_grad()
def gibbs_snapshots(rbm, n: int, steps: list[int], generator=None) -> torch.Tensor:
    """``n`` chains from uniform random states; ``E[v | h]`` after each number of sweeps in
    ``steps`` (sorted), ``(len(steps), n, n_visible)``."""
    from smithing.pretrain.rbm import gibbs_step

    v = rbm.random_visible(n, generator)
    shots, done = [], 0
    for s in sorted(steps):
        for _ in range(s - done):
            v, mean = gibbs_step(rbm, v, generator)
        done = s
        shots.append(mean)
    return torch.stack(shots)


def run(
    config: dict, seed: int, device: str = "cpu", *, checkpoint=None, progress=None
) -> RunResult:
    """Train one RBM (CD-k or PCD), estimate its ``log Z`` by AIS (and exactly when small).

    ``checkpoint`` (the runner's :class:`~smithing.checkpoint.Checkpointer`) makes the
    RBM's training resumable (:func:`~smithing.pretrain.rbm.train_rbm`); AIS and the samples
    are redone from the trained RBM and its generator's restored state."""
    from smithing.pretrain.ais import ais_log_z, average_log_prob, exact_log_z
    from smithing.pretrain.rbm import BernoulliRBM, pseudo_likelihood, train_rbm
    from smithing.train import seed_everything

    t0 = time.perf_counter()
    cfg = resolve_config(config)
    dev = torch.device(device)
    x, image_shape = binary_splits(
        cfg["dataset"],
        dev,
        binarize="stochastic" if cfg["binarize"] == "resample" else cfg["binarize"],
        seed=cfg["binarize_seed"],
        n_train=cfg["n_train"],
    )
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed)
        g = torch.Generator(device=dev).manual_seed(int(seed))
        nv = x["train"].shape[1]
        rbm = BernoulliRBM(nv, cfg["n_hidden"], init_std=cfg["init_std"], generator=g, device=dev)
        if cfg["visible_bias"] == "logit":
            rbm.init_visible_bias_(x["train"])  # b_i = logit(mean_i) (Hinton's guide, Sec. 8)
        epochs = cfg["epochs"]
        decay = (lambda e: 1.0 - e / epochs) if cfg["lr_decay"] == "linear" else None
        resample = cfg["binarize"] == "resample"
        train_x = (
            train_probabilities(cfg["dataset"], dev, n_train=cfg["n_train"])
            if resample
            else x["train"]
        )
        hist = train_rbm(
            rbm,
            train_x,
            epochs=epochs,
            batch_size=cfg["batch_size"],
            lr=cfg["lr"],
            method=cfg["method"],
            k=k_per_epoch(cfg),
            binarize_batches=resample,
            n_chains=cfg["n_chains"],
            momentum=cfg["momentum"],
            weight_decay=cfg["weight_decay"],
            schedule=decay,
            valid_data=x["valid"],
            monitor_size=cfg["monitor_size"],
            generator=g,
            checkpoint=checkpoint,
            progress=None if progress is None else (lambda e, rec: progress(e, epochs, "train")),
        )
        records = []
        for i in range(len(hist["epoch"])):
            rec = {"epoch": i + 1}
            for key in ("recon_error", "pseudo_likelihood", "free_energy_train"):
                rec[key] = hist[key][i]
            rec["free_energy_valid"] = hist["free_energy_valid"][i]
            rec["free_energy_gap"] = rec["free_energy_valid"] - rec["free_energy_train"]
            rec["seconds"] = hist.epochs[i]["seconds"]
            if "k" in hist.epochs[i]:  # a k schedule: this epoch's k
                rec["k"] = hist.epochs[i]["k"]
            records.append(rec)
        params = torch.cat([rbm.W.flatten(), rbm.b, rbm.c])
        if not bool(torch.isfinite(params).all()):
            return RunResult(
                "diverged",
                epochs=records,
                message="RBM parameters became non-finite",
                seconds=time.perf_counter() - t0,
            )
        betas = None if cfg["ais_betas"] == "paper" else cfg["ais_betas"]
        ais = ais_log_z(rbm, data=x["train"], n_runs=cfg["ais_runs"], betas=betas, generator=g)
        final = {
            "log_z": float(ais.log_z),
            "log_z_lo": float(ais.log_z_down),
            "log_z_hi": float(ais.log_z_up),
            "n_betas": ais.n_betas,
        }
        for name in ("train", "valid", "test"):
            final[f"{name}_log_prob"] = float(average_log_prob(rbm, x[name], ais.log_z))
        # the +-3 std interval of log Z, turned into one for the test log-probability
        final["test_log_prob_lo"] = final["test_log_prob"] - (final["log_z_hi"] - final["log_z"])
        final["test_log_prob_hi"] = final["test_log_prob"] + (final["log_z"] - final["log_z_lo"])
        if min(nv, cfg["n_hidden"]) <= cfg["exact_max_units"]:
            exact = float(exact_log_z(rbm, max_units=cfg["exact_max_units"]))
            final["exact_log_z"] = exact
            final["test_log_prob_exact"] = float(average_log_prob(rbm, x["test"], exact))
            final["ais_error"] = final["log_z"] - exact
            final["ais_covers_exact"] = final["log_z_lo"] <= exact <= final["log_z_hi"]
        final["recon_error"] = records[-1]["recon_error"] if records else math.nan
        final["pseudo_likelihood"] = records[-1]["pseudo_likelihood"] if records else math.nan
        test_mon = x["test"][: cfg["monitor_size"]]
        with torch.no_grad():
            pl = pseudo_likelihood(rbm.free_energy, test_mon, generator=g)  # (n,)
        final["test_pseudo_likelihood"] = float(pl.mean())
        shots = gibbs_snapshots(rbm, cfg["n_samples"], list(cfg["sample_steps"]), generator=g)
    nf = min(cfg["n_filters"], cfg["n_hidden"])
    extra = {
        "image_shape": list(image_shape),
        "W": rounded(rbm.W[:, :nf]),  # (n_visible, n_filters): the first filters
        "b": rounded(rbm.b),
        "c": rounded(rbm.c[:nf]),
        "samples": rounded(shots, 3),  # (len(sample_steps), n_samples, n_visible)
        "sample_steps": sorted(cfg["sample_steps"]),
        "ais_log_weights_std": float(ais.log_weights.std()),
    }
    return RunResult("done", final, records, extra, seconds=time.perf_counter() - t0)

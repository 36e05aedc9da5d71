"""The tolerance of each ``--precision``: the same small MNIST run in fp32, tf32 and bf16.

784-500-10 ReLU, the first ``--examples`` training images (default 5,000), ``--epochs`` epochs
(default 3), SGD momentum 0.9, lr 0.05, batch 32, seed 0; and a 784-500 RBM, CD-1, batch 100,
one epoch on the same images. Prints per mode the final train loss, the test error, the RBM's
reconstruction error, the training time, and the differences from fp32 (the numbers of
docs/RESULTS.md, "Precision"). On CPU tf32 is a no-op (fp32 bitwise).

    python benchmarks/bench_precision.py [--device cuda] [--examples 5000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its thread pool

import time

import torch
from common import load_or_synthetic, machine, sync

from smithing.nn import MLP
from smithing.pretrain import BernoulliRBM, train_rbm
from smithing.train import fit, seed_everything


def run(data, mode: str, args, device) -> dict:
    seed_everything(0)
    model = MLP(data.n_inputs, [500], data.n_classes, "relu").to(device)
    sync(device)
    t0 = time.perf_counter()
    hist = fit(
        model,
        data,
        epochs=args.epochs,
        lr=0.05,
        optimizer="momentum",
        batch_size=32,
        device=device,
        precision=mode,
    )
    sync(device)
    secs = time.perf_counter() - t0
    rbm = BernoulliRBM(
        data.n_inputs, 500, generator=torch.Generator().manual_seed(0), device=device
    )
    gen = torch.Generator(device=device).manual_seed(0)
    rh = train_rbm(
        rbm, data.train.x.reshape(len(data.train), -1), epochs=1, generator=gen, precision=mode
    )
    return {
        "train_loss": hist.epochs[-1]["train_loss"],
        "test_error": hist.final["test_error"],
        "recon": rh["recon_error"][-1],
        "seconds": secs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--examples", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    device = torch.device(args.device)
    data = load_or_synthetic(args.dataset, device).subset(args.examples)
    print(f"machine: {machine(device)}")
    print(
        f"{data.name} {data.n_inputs}-500-10 relu, {args.examples} images, {args.epochs} "
        "epochs, momentum, batch 32; RBM 784-500 CD-1 1 epoch"
    )
    rows = {mode: run(data, mode, args, device) for mode in ("fp32", "tf32", "bf16")}
    ref = rows["fp32"]
    print(
        f"{'mode':<6} {'train loss':>10} {'d loss':>9} {'test err %':>10} {'d err pp':>9} "
        f"{'RBM recon':>10} {'d recon':>9} {'fit s':>7}"
    )
    for mode, r in rows.items():
        print(
            f"{mode:<6} {r['train_loss']:10.5f} {r['train_loss'] - ref['train_loss']:+9.5f} "
            f"{100 * r['test_error']:10.2f} {100 * (r['test_error'] - ref['test_error']):+9.2f} "
            f"{r['recon']:10.5f} {r['recon'] - ref['recon']:+9.5f} {r['seconds']:7.2f}"
        )


if __name__ == "__main__":
    main()

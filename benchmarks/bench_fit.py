"""One MNIST epoch of ``smithing.train.fit`` vs the idiomatic PyTorch loop, in the same run.

The baseline is what a tutorial writes: ``TensorDataset`` + ``DataLoader(shuffle=True)`` over
the same tensors, the same model (784-500-10 ReLU, or ``--hidden``), the same optimizer (SGD
momentum 0.9) and batch size. ``fit`` keeps the whole split on the device and indexes batches
from a permutation. Both include one validation pass per epoch and no other evaluation. Prints
the times and the ratio. ``--precision`` (fp32 | tf32 | bf16) and ``--compile`` apply to both
(the baseline's loop under the same matmul settings and autocast; it is never compiled).
``--n-train`` uses the first N training images; without MNIST files the shapes are timed on
random data (a message says so).

    python benchmarks/bench_fit.py [--device cuda] [--batch-size 32] [--epochs 1]
    python benchmarks/bench_fit.py --device cuda --hidden 1000 1000 --batch-size 128 \
        --precision tf32 --compile
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its thread pool

import torch
from common import load_or_synthetic, machine, timed
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from smithing.nn import MLP
from smithing.precision import PRECISIONS, autocast, matmul_precision
from smithing.train import fit, seed_everything


def dataloader_epoch(model, data, batch_size, device, opt, precision="fp32"):
    loader = DataLoader(
        TensorDataset(data.train.x.cpu(), data.train.y.cpu()), batch_size=batch_size, shuffle=True
    )
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        with autocast(precision, device):
            loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        vl = DataLoader(TensorDataset(data.valid.x.cpu(), data.valid.y.cpu()), batch_size=1000)
        for xb, yb in vl:
            model(xb.to(device)).argmax(1).eq(yb.to(device)).sum()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--hidden", type=int, nargs="+", default=[500])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=None, help="first N training images")
    ap.add_argument("--precision", choices=PRECISIONS.names(), default="fp32")
    ap.add_argument("--compile", action="store_true", help="fit's compiled step")
    args = ap.parse_args()
    device = torch.device(args.device)
    data = load_or_synthetic(args.dataset, device).subset(args.n_train)

    def make():
        seed_everything(0)
        return MLP(data.n_inputs, args.hidden, data.n_classes, "relu").to(device)

    m1, m2 = make(), make()
    opt = torch.optim.SGD(m2.parameters(), lr=0.01, momentum=0.9)

    def ours():
        fit(
            m1,
            data,
            epochs=args.epochs,
            lr=0.01,
            optimizer="momentum",
            batch_size=args.batch_size,
            device=device,
            final_eval=False,
            precision=args.precision,
            compile=args.compile,
        )

    def baseline():
        with matmul_precision(args.precision):
            for _ in range(args.epochs):
                dataloader_epoch(m2, data, args.batch_size, device, opt, args.precision)

    ours(), baseline()  # warm-up: first calls pay one-time kernel set-up
    # interleaved repeats (A B A B ...) so that a change of machine load hits both alike
    t_fit, t_base = [], []
    for _ in range(args.repeats):
        t_fit.append(timed(ours, device))
        t_base.append(timed(baseline, device))
    t_fit, t_base = sorted(t_fit)[args.repeats // 2], sorted(t_base)[args.repeats // 2]
    print(f"machine: {machine(device)}")
    sizes = "-".join(str(s) for s in (data.n_inputs, *args.hidden, data.n_classes))
    print(
        f"{data.name} ({len(data.train)} train) {sizes} relu, batch {args.batch_size}, "
        f"{args.epochs} epoch(s), median of {args.repeats}, precision {args.precision}"
        + (", compiled step" if args.compile else "")
    )
    print(f"smithing fit (device-resident batches): {t_fit:8.3f} s")
    print(f"idiomatic DataLoader loop             : {t_base:8.3f} s")
    print(f"speed-up of fit over the DataLoader loop: {t_base / t_fit:.2f}x")


if __name__ == "__main__":
    main()

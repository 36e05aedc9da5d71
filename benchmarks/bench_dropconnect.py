"""One MNIST epoch of Wan et al.'s 2 x 800 DropConnect net beside the same net with dropout.

Wan, Zeiler, Zhang, LeCun & Fergus, "Regularization of Neural Networks using DropConnect",
ICML 2013: 784-800-800-10 ReLU, both hidden layers DropConnect with p = 0.5 and one mask per
example (eq. 1), mini-batches of 128, SGD momentum. The same run times

* ``bits``    the packed per-example masks and fused kernels (``masks="bits"``, the default),
* ``dropout`` the same net with dropout 0.5 on the hidden layers instead (the cheap baseline),
* ``float``   optionally (``--float-examples N``), the materialized float masks on N examples.

``--examples N`` trains on the first N training images only; every time is scaled linearly
to an epoch of ``--per-epoch`` images (default 60,000, the paper's training set; smithing's
MNIST train split holds 50,000, the other 10,000 being validation), and printed as such;
``--epochs`` repeats the epoch. The first ``bits`` epoch includes
``torch.compile``'s one-off compilation of the kernels, so a warm-up run on 2 mini-batches
(a full one and one of the epoch's last size) comes first and is reported apart. The times
are training time: fit's per-epoch validation pass runs on 128 validation images only, unless
``--with-validation`` (then the extrapolation scales it with the epoch, wrongly for small N).

    python benchmarks/bench_dropconnect.py [--device cuda] [--examples 6000] [--float-examples 512]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its thread pool

import dataclasses
import time

import torch
from common import load_or_synthetic, machine, sync

from smithing.data.base import Split
from smithing.nn import MLP
from smithing.nn.dropconnect import DropConnectLinear
from smithing.train import fit, seed_everything

HIDDEN = [800, 800]


def make_model(data, kind: str, device) -> torch.nn.Module:
    seed_everything(0)
    if kind == "dropout":
        model = MLP(data.n_inputs, HIDDEN, data.n_classes, "relu", dropout=0.5)
    else:
        model = MLP(data.n_inputs, HIDDEN, data.n_classes, "relu", dropconnect=0.5)
        for m in model.modules():
            if isinstance(m, DropConnectLinear):
                m.masks = kind  # "bits" or "float"
    return model.to(device)


def train_seconds(model, data, epochs, batch_size, device) -> tuple[float, float]:
    sync(device)
    t0 = time.perf_counter()
    hist = fit(
        model,
        data,
        epochs=epochs,
        lr=0.01,
        optimizer="momentum",
        batch_size=batch_size,
        device=device,
        final_eval=False,
    )
    sync(device)
    return time.perf_counter() - t0, hist.epochs[-1]["train_loss"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--examples", type=int, default=None, help="train on the first N images")
    ap.add_argument(
        "--float-examples",
        type=int,
        default=0,
        help="also time the materialized float masks on the first N images (slow)",
    )
    ap.add_argument(
        "--per-epoch",
        type=int,
        default=60000,
        help="images in the epoch the times are scaled to (Wan et al. train on all 60,000)",
    )
    ap.add_argument(
        "--with-validation",
        action="store_true",
        help="keep fit's validation pass over the whole valid split in the epoch (DropConnect's "
        "Gaussian inference, 100 samples a unit; default: 128 images, i.e. training time only)",
    )
    ap.add_argument("--hidden", type=int, nargs="+", default=[800, 800], help="(a dry run)")
    args = ap.parse_args()
    HIDDEN[:] = args.hidden
    device = torch.device(args.device)
    full = load_or_synthetic(args.dataset, device)
    name = full.name
    n_full = args.per_epoch
    if not args.with_validation:  # time training: fit's per-epoch validation pass on 128 images
        full = dataclasses.replace(full, valid=Split(full.valid.x[:128], full.valid.y[:128]))
    data = full.subset(args.examples) if args.examples else full
    n = len(data.train)
    scale = n_full / n
    print(f"machine: {machine(device)}")
    print(
        f"{name} {'-'.join(map(str, [data.n_inputs, *HIDDEN, data.n_classes]))} relu, "
        f"batch {args.batch_size}, "
        f"{args.epochs} epoch(s) of {n} images"
        + (f" (x{scale:.2f} -> {n_full})" if n < n_full else "")
    )
    rest = n % args.batch_size  # the last, smaller batch: a shape of its own to compile
    warm = full.subset(args.batch_size + (rest or args.batch_size))
    t_warm, _ = train_seconds(make_model(warm, "bits", device), warm, 1, args.batch_size, device)
    print(f"warm-up (2 batches, includes torch.compile of the kernels): {t_warm:8.2f} s")
    rows = []
    for kind in ("bits", "dropout"):
        secs, loss = train_seconds(
            make_model(data, kind, device), data, args.epochs, args.batch_size, device
        )
        rows.append((kind, secs / args.epochs, loss, n))
    if args.float_examples:
        small = full.subset(args.float_examples)
        secs, loss = train_seconds(
            make_model(small, "float", device), small, 1, args.batch_size, device
        )
        rows.append(("float", secs, loss, len(small.train)))
    print(
        f"{'masks':<10} {'s/epoch measured':>17} {'images':>7} {f's/epoch at {n_full}':>16}  loss"
    )
    for kind, secs, loss, m in rows:
        print(f"{kind:<10} {secs:17.2f} {m:7d} {secs * n_full / m:16.1f}  {loss:.4f}")
    bits = rows[0][1] * n_full / rows[0][3]
    drop = rows[1][1] * n_full / rows[1][3]
    label = "extrapolated " if n != n_full else ""
    print(
        f"DropConnect (bits) {label}epoch: {bits:.1f} s = {bits / drop:.1f}x dropout's {drop:.1f} s"
    )
    if args.float_examples:
        flt = rows[2][1] * n_full / rows[2][3]
        print(
            f"bits over the float masks: {flt / bits:.1f}x faster (float extrapolated: {flt:.0f} s)"
        )


if __name__ == "__main__":
    main()

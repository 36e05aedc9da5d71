"""N same-shape MLPs: one batched ensemble vs one after another vs the DataLoader loop.

All three train the same N configurations (different seeds) for one epoch with SGD + momentum
and one validation pass:

* ``ensemble``: ``smithing.train.fit_ensemble`` (stacked parameters, vmap, one step for all);
* ``sequential``: ``smithing.train.fit`` once per member (device-resident batches);
* ``dataloader``: the idiomatic loop (TensorDataset + DataLoader) once per member.

The one-after-another baselines are timed on ``--sample`` members and scaled to N (their cost is
linear in N by construction; the line says so). ``--precision`` (fp32 | tf32 | bf16) and
``--compile`` apply to the ensemble and the sequential fits (``--tf32`` is
``--precision tf32``). ``--sample 0`` skips the one-after-another baselines.

    python benchmarks/bench_ensemble.py --members 10 100 [--device cuda] [--hidden 1000 1000]
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
from smithing.precision import PRECISIONS, matmul_precision
from smithing.train import fit, seed_everything
from smithing.train.ensemble import fit_ensemble


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--n-train", type=int, default=None, help="first N training examples")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--members", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--hidden", type=int, nargs="+", default=[256])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--sample", type=int, default=3, help="members timed one after another")
    ap.add_argument("--tf32", action="store_true", help="the same as --precision tf32")
    ap.add_argument("--precision", choices=PRECISIONS.names(), default="fp32")
    ap.add_argument("--compile", action="store_true", help="the trainers' compiled step")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.tf32:
        args.precision = "tf32"
    data = load_or_synthetic(args.dataset, device).subset(args.n_train)

    def make(seed):
        seed_everything(seed)
        return MLP(data.n_inputs, args.hidden, data.n_classes, "relu").to(device)

    def one_fit(seed):
        fit(
            make(seed),
            data,
            epochs=1,
            lr=0.01,
            optimizer="momentum",
            batch_size=args.batch_size,
            seed=seed,
            device=device,
            final_eval=False,
            precision=args.precision,
            compile=args.compile,
        )

    def one_dataloader(seed):
        model = make(seed)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loader = DataLoader(
            TensorDataset(data.train.x.cpu(), data.train.y.cpu()),
            batch_size=args.batch_size,
            shuffle=True,
        )
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb.to(device)), yb.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():  # one validation pass, as fit and fit_ensemble do each epoch
            valid = DataLoader(
                TensorDataset(data.valid.x.cpu(), data.valid.y.cpu()), batch_size=1000
            )
            for xb, yb in valid:
                model(xb.to(device)).argmax(1).eq(yb.to(device)).sum()

    k = args.sample
    nan = float("nan")
    t_seq = t_dl = nan
    if k:
        one_fit(0)  # warm-up
        t_seq = timed(lambda: [one_fit(s) for s in range(k)], device) / k
        with matmul_precision(args.precision):  # the DataLoader loop: TF32 flags, no autocast
            t_dl = timed(lambda: [one_dataloader(s) for s in range(k)], device) / k
    sizes = "-".join(str(s) for s in (data.n_inputs, *args.hidden, data.n_classes))
    extra = "" if args.precision == "fp32" else f" ({args.precision})"
    print(f"machine: {machine(device)}{extra}{', compiled step' if args.compile else ''}")
    print(
        f"{args.dataset} ({len(data.train)} train), {sizes} relu, batch {args.batch_size}, "
        f"1 epoch per member; one-after-another timed on {k} members, scaled to N"
    )
    print(
        f"{'N':>5} {'ensemble s':>11} {'sequential s':>13} {'dataloader s':>13} "
        f"{'vs seq':>7} {'vs DL':>7}"
    )
    for n in args.members:

        def ens(n=n):
            models = [make(s) for s in range(n)]
            fit_ensemble(
                models,
                data,
                seeds=list(range(n)),
                lrs=[0.01] * n,
                epochs=1,
                optimizer="momentum",
                batch_size=args.batch_size,
                device=device,
                final_eval=False,
                precision=args.precision,
                compile=args.compile,
            )

        if n <= 10 or args.compile:
            ens()  # warm-up
        t_ens = timed(ens, device)
        print(
            f"{n:>5} {t_ens:>11.2f} {t_seq * n:>13.2f} {t_dl * n:>13.2f} "
            f"{t_seq * n / t_ens:>6.1f}x {t_dl * n / t_ens:>6.1f}x"
        )


if __name__ == "__main__":
    main()

"""The cost of checkpointing a paper-scale run: the same training with and without checkpoints,
in one run.

The run is the Theano tutorial's MLP (784-500-10 tanh on MNIST's 50k training examples, SGD,
learning rate 0.01, batch 20: 2,500 updates an epoch). Each configuration trains ``--epochs``
epochs from the same seed; they alternate (none, every epoch, mid-epoch, none, ...) over
``--repeats`` rounds so that drift of a busy machine hits them alike. Prints the median wall
times, the ratio to no checkpoint, and the checkpointer's own count of saves and seconds.

* ``none``: ``checkpoint=None``;
* ``epoch``: a checkpoint at every epoch end (``min_interval_s=0``), the most the runner does
  with ``--checkpoint-interval 0``; the default (at most once a minute) saves less often;
* ``mid-epoch``: also every 500 batches (five times an epoch).

The final parameters are checked equal across configurations (checkpoints change no number).

    python benchmarks/bench_checkpoint.py [--epochs 2] [--repeats 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its thread pool

import torch
from common import machine

from smithing.data import load
from smithing.nn import MLP
from smithing.train import Checkpointer, fit, seed_everything


def run(data, epochs: int, device, checkpoint):
    seed_everything(0)
    model = MLP(784, [500], 10, "tanh").to(device)
    t0 = time.perf_counter()
    fit(
        model,
        data,
        epochs=epochs,
        lr=0.01,
        batch_size=20,
        optimizer="sgd",
        seed=0,
        device=device,
        final_eval=False,
        checkpoint=checkpoint,
    )
    return time.perf_counter() - t0, model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    data = load("mnist", device=device)
    print(f"machine: {machine(device)}; data: {data.summary()}")
    configs = {
        "none": lambda d: None,
        "epoch": lambda d: Checkpointer(d / "ck.safetensors", min_interval_s=0),
        "mid-epoch": lambda d: Checkpointer(
            d / "ck.safetensors", min_interval_s=0, every_batches=500
        ),
    }
    times: dict[str, list[float]] = {k: [] for k in configs}
    stats: dict[str, tuple[int, float, int]] = {}
    finals = {}
    for _ in range(args.repeats):
        for name, make in configs.items():
            with tempfile.TemporaryDirectory() as tmp:
                ck = make(Path(tmp))
                secs, model = run(data, args.epochs, device, ck)
                times[name].append(secs)
                if ck is not None:
                    stats[name] = (ck.saves, ck.seconds, ck.bytes)
                finals[name] = [p.detach().cpu().clone() for p in model.parameters()]
    ref = finals["none"]
    for name, ps in finals.items():
        assert all(torch.equal(a, b) for a, b in zip(ref, ps)), f"{name} changed the numbers"
    base = sorted(times["none"])[len(times["none"]) // 2]
    print(f"{args.epochs} epochs x {args.repeats} rounds, median wall time per run:")
    for name, ts in times.items():
        med = sorted(ts)[len(ts) // 2]
        extra = ""
        if name in stats:
            saves, secs, nbytes = stats[name]
            extra = f"  ({saves} saves, {secs:.2f} s saving, {nbytes / 1e6:.1f} MB each)"
        print(f"  {name:10s} {med:8.2f} s   x{med / base:.3f}{extra}")
    print("final parameters identical across configurations: yes")


if __name__ == "__main__":
    main()

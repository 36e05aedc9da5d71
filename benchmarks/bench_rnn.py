"""Forward + backward of a simple RNN: smithing's Python loop vs torch.nn.RNN vs torch.compile.

Same weights, same batch ``x`` ``(batch, T, n_in)``, a loss on the last hidden state:

* ``loop``: :class:`smithing.nn.rnn.ElmanRNN` (one batched input projection, then one
  ``addmm`` + activation per step in Python);
* ``fused``: ``ElmanRNN(fused=True)``, the same layer through torch's fused kernel
  (``torch._VF.rnn_relu``/``rnn_tanh``);
* ``torch.nn.RNN``: the fused reference (MKL/oneDNN on CPU, cuDNN on CUDA): the ceiling;
* ``compiled``: the same loop under ``torch.compile`` (``compile="cpu"`` on CPU; on CUDA
  ``compile=True``: ``mode="reduce-overhead"``, CUDA graphs). The first call (compilation) is
  timed separately and excluded from the steady-state time.

Prints the fastest steady-state time per forward+backward (of ``--repeats``: the machine may
be shared) and the ratios to ``torch.nn.RNN``.

    python benchmarks/bench_rnn.py [--device cuda] [--batch 32] [--hidden 100] [--T 50 200]
"""

from __future__ import annotations

import argparse
import time

import torch
from common import machine, sync

from smithing.nn.rnn import ElmanRNN


def step_fn(module, x, torch_rnn: bool):
    def fn():
        if torch_rnn:
            _, h = module(x)
            h = h[0]
        else:
            _, h = module(x)
        h.square().mean().backward()

    return fn


def best_of(fn, device: torch.device, repeats: int) -> float:
    """Fastest of ``repeats`` synchronized calls (the least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--n-in", type=int, default=2)
    ap.add_argument("--T", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"machine: {machine(device)}")
    print(
        f"batch {args.batch}, hidden {args.hidden}, n_in {args.n_in}, {args.activation}; "
        f"fastest of {args.repeats} forward+backward passes"
    )
    g = torch.Generator().manual_seed(0)
    for T in args.T:
        x = torch.rand(args.batch, T, args.n_in, generator=g).to(device)
        loop = ElmanRNN(
            args.hidden and args.n_in,
            args.hidden,
            args.activation,
            "orthogonal",
            input_std=0.1,
            generator=g,
        ).to(device)
        ref = loop.to_torch()
        fused = ElmanRNN(args.n_in, args.hidden, args.activation, fused=True).to(device)
        fused.load_state_dict(loop.state_dict())
        times = {}
        for name, mod, is_ref in (
            ("loop", loop, False),
            ("fused", fused, False),
            ("torch.nn.RNN", ref, True),
        ):
            fn = step_fn(mod, x, is_ref)
            fn()  # warm-up
            times[name] = best_of(fn, device, args.repeats)
        if not args.no_compile:
            comp = ElmanRNN(
                args.n_in,
                args.hidden,
                args.activation,
                "orthogonal",
                compile=True if device.type == "cuda" else "cpu",
            ).to(device)
            comp.load_state_dict(loop.state_dict())
            fn = step_fn(comp, x, False)
            sync(device)
            t0 = time.perf_counter()
            try:
                fn()
                fn()  # reduce-overhead records the graph on a later call
                sync(device)
                first = time.perf_counter() - t0
                times["compiled"] = best_of(fn, device, args.repeats)
            except Exception as e:  # noqa: BLE001 - report, keep the other numbers
                first = float("nan")
                print(f"  compile failed: {type(e).__name__}: {e}".splitlines()[0])
        base = times["torch.nn.RNN"]
        print(f"T = {T}:")
        for name, t in times.items():
            print(f"  {name:14s} {1e3 * t:8.2f} ms   {t / base:5.2f}x torch.nn.RNN")
        if "compiled" in times:
            print(f"  (compile + first two calls: {first:.1f} s)")


if __name__ == "__main__":
    main()

"""What the verbs share: the one-line user error, argument types, the device, the console."""

from __future__ import annotations

import argparse
import json


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _number(s: str, kind, what: str):
    try:
        return kind(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not {what}") from None


def positive_float(s: str) -> float:
    v = _number(s, float, "a number")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{s!r} must be positive")
    return v


def nonneg_float(s: str) -> float:
    v = _number(s, float, "a number")
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"{s!r} must be >= 0")
    return v


def positive_int(s: str) -> int:
    v = _number(s, int, "an integer")
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{s!r} must be a positive integer")
    return v


def nonneg_int(s: str) -> int:
    v = _number(s, int, "an integer")
    if v < 0:
        raise argparse.ArgumentTypeError(f"{s!r} must be >= 0")
    return v


def key_values(items: list[str] | None) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values parsed as JSON when they are)."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise CLIError(f"option {item!r} is invalid: expected KEY=VALUE")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def device(name: str):
    import torch

    try:
        dev = torch.device(name)
    except RuntimeError:
        raise CLIError(f"--device {name!r} is invalid: expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda was asked for but no CUDA device is available")
    return dev


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


def threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="CPU threads for torch (default: torch's choice; 1 is fastest for "
        "small networks on a busy machine)",
    )


def speed_args(p: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--compile`` (``train``, ``run``, ``reproduce``, ``tour``)."""
    from smithing.precision import PRECISIONS

    p.add_argument(
        "--precision",
        choices=PRECISIONS.names(),
        default="fp32",
        help="fp32 (default, for fidelity); tf32: TF32 matmuls on CUDA (a no-op on CPU); bf16: "
        "bfloat16 autocast of forward and loss, fp32 weights (tolerance: README, Precision)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="compile the training step with torch.compile (CUDA graphs on CUDA)",
    )


def study_args(p: argparse.ArgumentParser) -> None:
    """Options of every verb that runs studies (``run``, ``tour``)."""
    p.add_argument("--out", default="smithing-out", help="output directory (store + report)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=positive_int, default=1, help="worker processes (CPU)")
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: this process (or --jobs processes); ray: Ray tasks (pip install "
        "'smithing[ray]')",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="an existing Ray cluster (e.g. ray://head:10001 or auto); default: a local Ray",
    )
    p.add_argument(
        "--checkpoint-interval",
        type=nonneg_float,
        default=60.0,
        metavar="SECONDS",
        help="checkpoint a running group at most this often (at epoch ends; 0: every epoch)",
    )
    p.add_argument(
        "--save-models",
        action="store_true",
        help="keep each run's final model under OUT/models/ (safetensors + JSON)",
    )
    p.add_argument(
        "--lease-ttl",
        type=positive_float,
        default=120.0,
        metavar="SECONDS",
        help="a claimed run is taken over by another worker after this long without a "
        "heartbeat from its worker",
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    threads_arg(p)
    speed_args(p)


def runner_kwargs(args) -> dict:
    """The :func:`smithing.runner.run_study` options shared by ``run`` and ``tour``."""
    return {
        "device": str(device(args.device)),
        "out": args.out,
        "jobs": args.jobs,
        "executor": args.executor,
        "ray_address": args.ray_address,
        "checkpoint_interval": args.checkpoint_interval,
        "save_models": args.save_models,
        "lease_ttl": args.lease_ttl,
        "quiet": args.quiet or getattr(args, "json", False),
        "precision": args.precision,
        "compile": args.compile,
    }


def print_summary(summary: dict, args) -> None:
    from pathlib import Path

    if args.json:
        print(json.dumps(summary))
        return
    from rich.table import Table

    metric = summary.get("metric", "test_error")
    pct = summary.get("percent", True)
    table = Table(title=f"study {summary['study']}", title_justify="left")
    for c in ("variant", f"{metric} mean", "std", "runs", "diverged", "failed"):
        table.add_column(c)
    for v, s in summary["variants"].items():
        m, sd = s.get("mean"), s.get("std")
        k, unit = (100.0, " %") if pct else (1.0, "")
        table.add_row(
            v,
            "n/a" if m is None else f"{k * m:.4g}{unit}",
            "n/a" if sd is None else f"{k * sd:.3g}",
            str(s["runs"]),
            str(s["diverged"]),
            str(s["failed"]),
        )
    con = console()
    con.print(table)
    con.print(f"report: {Path(args.out, 'report', summary['study'] + '.html')}")

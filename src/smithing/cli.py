"""The ``smithing`` command line: argument parsing only; the work happens in the library."""

from __future__ import annotations

import argparse
import json
import os
import sys

from smithing import __version__


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{s!r} must be positive")
    return v


def _nonneg_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"{s!r} must be >= 0")
    return v


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{s!r} must be a positive integer")
    return v


def _nonneg_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{s!r} must be >= 0")
    return v


def _key_values(items: list[str] | None) -> dict:
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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="smithing",
        description="Neural smithing: the tricks that make backprop-trained networks train "
        "well, each faithful to its paper, measured, and shown by a study.",
    )
    p.add_argument("--version", action="version", version=f"smithing {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("list", help="list datasets, studies and every registry")

    d = sub.add_parser("datasets", help="which datasets are present, where, and checksums")
    d.add_argument("--json", action="store_true", help="print JSON")

    t = sub.add_parser("train", help="train one MLP and print a summary")
    t.add_argument("--dataset", default="digits")
    t.add_argument("--hidden", type=_positive_int, nargs="+", default=[100], metavar="N")
    t.add_argument("--activation", default="relu")
    t.add_argument("--init", default="default", help="initializer (see `smithing list`)")
    t.add_argument("--init-option", action="append", metavar="KEY=VALUE", dest="init_options")
    t.add_argument("--epochs", type=_positive_int, default=20)
    t.add_argument("--lr", type=_positive_float, default=0.03)
    t.add_argument("--batch-size", type=_positive_int, default=32)
    t.add_argument("--optimizer", default="momentum")
    t.add_argument("--momentum", type=_nonneg_float, default=None)
    t.add_argument(
        "--optimizer-option", action="append", metavar="KEY=VALUE", dest="optimizer_options"
    )
    t.add_argument("--schedule", default=None, help="learning-rate schedule name")
    t.add_argument(
        "--schedule-option", action="append", metavar="KEY=VALUE", dest="schedule_options"
    )
    t.add_argument("--early-stopping-patience", type=_nonneg_int, default=None)
    t.add_argument("--early-stopping-monitor", default="valid_loss")
    t.add_argument("--l2", type=_nonneg_float, default=0.0, help="lambda of lambda/(2n) sum w^2")
    t.add_argument("--l1", type=_nonneg_float, default=0.0, help="lambda of lambda/n sum |w|")
    t.add_argument("--max-norm", type=_positive_float, default=None)
    t.add_argument(
        "--dropout",
        type=_nonneg_float,
        nargs="+",
        default=None,
        metavar="P",
        help="hidden dropout P, or input and hidden dropout P_IN P_HIDDEN",
    )
    t.add_argument(
        "--dropconnect",
        type=_nonneg_float,
        default=0.0,
        metavar="P",
        help="DropConnect drop probability of the hidden layers' weights",
    )
    t.add_argument("--dropout-mode", default="inverted", help="inverted | lecture | gaussian")
    t.add_argument("--clip-norm", type=_positive_float, default=None)
    t.add_argument(
        "--n-train", type=_positive_int, default=None, help="use only the first N training examples"
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu")
    t.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    _threads_arg(t)

    r = sub.add_parser("run", help="run (or resume) a study and write its report")
    r.add_argument("study")
    _study_args(r)
    r.add_argument("--dataset", default=None, help="override the study's dataset")
    r.add_argument("--scale", choices=["quick", "paper"], default="quick")
    r.add_argument("--seeds", type=_positive_int, default=None, help="seeds per variant")
    r.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a configuration key of every run (e.g. --set epochs=5)",
    )
    r.add_argument(
        "--variants",
        nargs="+",
        default=None,
        metavar="NAME",
        help="run only these variants (shell patterns, e.g. 'linear-*')",
    )
    r.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: per variant the mean/std final test error",
    )

    tour = sub.add_parser("tour", help="run every study at quick scale and write the report")
    _study_args(tour)
    tour.add_argument("--seeds", type=_positive_int, default=None)
    tour.add_argument(
        "--only", nargs="+", default=None, metavar="STUDY", help="run only these studies"
    )
    tour.add_argument("--json", action="store_true")

    rep = sub.add_parser("report", help="(re)write the HTML report of an output directory")
    rep.add_argument("--out", default="smithing-out")

    ex = sub.add_parser("export", help="export the stored results as tables")
    ex.add_argument("--out", default="smithing-out")
    ex.add_argument("--format", choices=["csv"], default="csv")
    ex.add_argument("--to", default=None, help="folder for the files (default OUT/export)")
    return p


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="smithing-out", help="output directory (store + report)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=_positive_int, default=1, help="worker processes (CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    _threads_arg(p)


def _threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="CPU threads for torch (default: torch's choice; 1 is fastest for "
        "small networks on a busy machine)",
    )


def main(argv: list[str] | None = None) -> int:
    # idle OpenMP threads sleep instead of spinning: on a busy CPU, spinning threads made the
    # small networks of the studies 10-25x slower (set OMP_WAIT_POLICY to override)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from smithing import commands

    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        return getattr(commands, f"cmd_{args.command.replace('-', '_')}")(args)
    except KeyboardInterrupt:
        print("smithing: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `smithing list | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    except (CLIError, ValueError) as e:
        print(f"smithing {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - data unavailable and friends: one line, exit 2
        from smithing.data import DataUnavailableError

        if isinstance(e, (DataUnavailableError, FileNotFoundError)):
            print(f"smithing {args.command}: error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

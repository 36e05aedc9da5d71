"""The ``smithing`` command line: one module per verb, registered from a table.

Each verb module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; it
parses, calls the library and prints. :func:`main` builds the parser from :data:`VERBS` and
dispatches to the chosen verb's ``run``. Nothing in the library imports this package.
"""

from __future__ import annotations

import argparse
import os
import sys

from smithing._version import __version__
from smithing.cli import (
    datasets,
    doctor,
    export,
    listing,
    report,
    reproduce,
    run,
    status,
    tour,
    train,
)
from smithing.cli._common import CLIError

#: the verbs, in ``smithing --help`` order
VERBS = (listing, datasets, train, run, reproduce, tour, status, report, export, doctor)

__all__ = ["CLIError", "VERBS", "build_parser", "main"]


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
    for verb in VERBS:
        vp = sub.add_parser(verb.NAME, help=verb.HELP)
        verb.add_arguments(vp)
        vp.set_defaults(_run=verb.run)
    return p


def main(argv: list[str] | None = None) -> int:
    # idle OpenMP threads sleep instead of spinning: on a busy CPU, spinning threads made the
    # small networks of the studies 10-25x slower (set OMP_WAIT_POLICY to override)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        from smithing.compiled import use_compile
        from smithing.precision import use_precision

        # --precision / --compile: in force for every trainer this verb calls (the runner also
        # hands them to worker processes)
        with (
            use_precision(getattr(args, "precision", "fp32")),
            use_compile(getattr(args, "compile", False)),
        ):
            return args._run(args)
    except KeyboardInterrupt:
        print("smithing: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `smithing list | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    except (CLIError, ValueError, ImportError, FileNotFoundError) as e:
        print(f"smithing {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - data unavailable and friends: one line, exit 2
        from smithing.data import DataUnavailableError

        if isinstance(e, DataUnavailableError):
            print(f"smithing {args.command}: error: {_one_line(e)}", file=sys.stderr)
            return 2
        raise


def _one_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__

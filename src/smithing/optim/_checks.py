"""The option checks every :mod:`smithing.optim` entry shares (one message format)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import TypeGuard

from smithing._registry import check

__all__: list[str] = []


def _is_number(v: object) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _nonnegative(name: str, v: object) -> None:
    check(_is_number(v) and v >= 0, name, v, "a finite number >= 0")


def _unit(name: str, v: object) -> None:
    check(_is_number(v) and 0 <= v < 1, name, v, "a number in [0, 1)")


def _flag(name: str, v: object) -> None:
    check(isinstance(v, bool), name, v, "True or False")


def _betas(v: object) -> None:
    ok = (
        isinstance(v, (tuple, list))
        and len(v) == 2
        and all(_is_number(b) and 0 <= b < 1 for b in v)
    )
    check(ok, "betas", v, "a pair (beta1, beta2) of numbers in [0, 1)")


def _reject_unknown(kind: str, name: str, given: Iterable[str], valid: list[str]) -> None:
    for key in given:
        if key not in valid:
            msg = f"{kind} {name!r} has no option {key!r}; valid options: "
            msg += ", ".join(valid) if valid else "none"
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
            if close:
                msg += f" (did you mean {close[0]!r}?)"
            raise ValueError(msg)

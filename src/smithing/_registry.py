"""Name -> object registries with helpful errors.

Every catalogue of the project (datasets, initializers, optimizers, studies, ...) is a
:class:`Registry`: objects are looked up by name, and an unknown name raises a ``ValueError``
that lists the valid names and suggests the closest one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str


class Registry(Generic[T]):
    """A catalogue of named objects of one kind (``kind`` is used in error messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, obj: T | None = None, *, description: str = ""):
        """Register ``obj`` under ``name``; without ``obj`` acts as a decorator."""

        def _add(o: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            doc = description or _first_line(getattr(o, "__doc__", None))
            self._entries[name] = Entry(name, o, doc)
            return o

        if obj is None:
            return _add
        return _add(obj)

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(unknown_name_message(self.kind, name, self.names())) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    msg = f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}"
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    return msg


def _first_line(doc: str | None) -> str:
    if not doc:
        return ""
    for line in doc.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def check(condition: bool, name: str, value: object, allowed: str) -> None:
    """Raise the project's one-format ``ValueError`` when ``condition`` is false.

    >>> check(lr > 0, "lr", lr, "a positive number")
    """
    if not condition:
        raise ValueError(f"{name}={value!r} is invalid: expected {allowed}")


Factory = Callable[..., T]

"""Name -> object registries with helpful errors.

Every catalogue of the project (datasets, initializers, optimizers, studies, ...) is a
:class:`Registry`: objects are looked up by name, and an unknown name raises a ``ValueError``
that lists the valid names and suggests the closest one.

A registry may also accept *aliases*, other spellings of a registered name (torch's
``xavier_uniform`` for our ``glorot_uniform``): a lookup resolves an alias to its entry, while
:meth:`Registry.names` lists only the registered names. The "did you mean" hint considers the
aliases too, and first a spelling that differs only in case, ``-``/``_`` or a trailing ``_``
(``SGD`` -> ``sgd``, ``GlorotUniform`` -> ``glorot_uniform``), then the closest by
:func:`difflib.get_close_matches`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Entry", "Factory", "Registry", "check", "given", "unknown_name_message"]

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
        self._aliases: dict[str, str] = {}  # alias -> registered name

    def register(self, name: str, obj: T | None = None, *, description: str = ""):
        """Register ``obj`` under ``name``; without ``obj`` acts as a decorator."""

        def _add(o: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            if name in self._aliases:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered as an alias of "
                    f"{self._aliases[name]!r}"
                )
            doc = description or _first_line(getattr(o, "__doc__", None))
            self._entries[name] = Entry(name, o, doc)
            return o

        if obj is None:
            return _add
        return _add(obj)

    def alias(self, alias: str, target: str) -> None:
        """Accept ``alias`` as another spelling of the registered name ``target``.

        Raises ``ValueError`` when ``target`` is not registered (an alias of an alias is
        refused: name the entry) or ``alias`` is already a name or an alias.
        """
        if target in self._aliases:
            raise ValueError(
                f"{self.kind} alias {alias!r} -> {target!r} is an alias of an alias: "
                f"use {self._aliases[target]!r}"
            )
        if target not in self._entries:
            raise ValueError(unknown_name_message(self.kind, target, self.names()))
        if alias in self._entries or alias in self._aliases:
            raise ValueError(f"{self.kind} {alias!r} is already registered")
        self._aliases[alias] = target

    def canonical(self, name: str) -> str:
        """The registered name ``name`` stands for (itself, or the target of an alias)."""
        return self.entry(name).name

    def aliases(self) -> dict[str, str]:
        """``{alias: registered name}``, in the order they were added."""
        return dict(self._aliases)

    def aliases_of(self, name: str) -> list[str]:
        """The aliases of the registered name ``name``."""
        return [a for a, t in self._aliases.items() if t == name]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[self._aliases.get(name, name)]
        except KeyError:
            raise ValueError(
                unknown_name_message(self.kind, name, self.names(), self._aliases)
            ) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def unknown_name_message(
    kind: str, name: str, valid: list[str], aliases: Mapping[str, str] | None = None
) -> str:
    """``unknown KIND 'NAME'; valid: ...`` and, when one is close, ``(did you mean ...?)``.

    ``aliases`` (``{alias: name}``) are not listed but may be suggested, as
    ``'xavier_uniform', an alias of 'glorot_uniform'``.
    """
    msg = f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}"
    aliases = dict(aliases or {})
    close = _closest(str(name), [*valid, *aliases])
    if close is not None:
        hint = f"{close!r}, an alias of {aliases[close]!r}" if close in aliases else repr(close)
        msg += f" (did you mean {hint}?)"
    return msg


def _folded(name: str) -> str:
    """``name`` without case, ``-``/``_`` separators or torch's trailing ``_``."""
    return name.lower().replace("-", "").replace("_", "")


def _closest(name: str, candidates: list[str]) -> str | None:
    same = [c for c in candidates if _folded(c) == _folded(name)]  # SGD, GlorotUniform, he-normal
    if same:
        return same[0]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return close[0] if close else None


def _first_line(doc: str | None) -> str:
    if not doc:
        return ""
    for line in doc.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _invalid(name: str, value: object, allowed: str) -> ValueError:
    return ValueError(f"{name}={value!r} is invalid: expected {allowed}")


def check(condition: bool, name: str, value: object, allowed: str) -> None:
    """Raise the project's one-format ``ValueError`` when ``condition`` is false.

    >>> lr = -0.1
    >>> check(lr > 0, "lr", lr, "a positive number")
    Traceback (most recent call last):
    ...
    ValueError: lr=-0.1 is invalid: expected a positive number
    """
    if not condition:
        raise _invalid(name, value, allowed)


def given(value: T | None, name: str, allowed: str) -> T:
    """``value`` when it is not None, else :func:`check`'s ``ValueError`` (so a type checker
    knows the result is not None).

    >>> given(None, "data", "(x, y) for a Fisher estimate")
    Traceback (most recent call last):
    ...
    ValueError: data=None is invalid: expected (x, y) for a Fisher estimate
    """
    if value is None:
        raise _invalid(name, value, allowed)
    return value


Factory = Callable[..., T]

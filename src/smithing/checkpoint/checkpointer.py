"""The trainers' handle on their checkpoint: :class:`Checkpointer` (the path and when to save),
:func:`as_checkpointer` (the ``checkpoint=`` argument) and :func:`check_signature`.

A run of several phases (pretrain layer 1, layer 2, ..., fine-tune) gives each phase its own
file, a child :meth:`Checkpointer.sub` ``(name)`` beside the parent: ``run.safetensors`` ->
``run.layer0.safetensors`` (children of children nest: ``run.run3.layer0.safetensors``);
removing the parent removes every child too.
"""

from __future__ import annotations

import glob
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from smithing._registry import check
from smithing.checkpoint.files import (
    CheckpointError,
    CheckpointWarning,
    previous_path,
    read_checkpoint,
    save_checkpoint,
)

__all__ = ["Checkpointer", "as_checkpointer", "check_signature", "phase"]


class Checkpointer:
    """Where a trainer keeps its checkpoint, and when it saves.

    Args:
        path: the checkpoint file; the previous one is kept as ``<path>.prev``.
        min_interval_s: at most one save per this many seconds (the clock starts when the
            trainer starts or resumes); ``0`` saves at every opportunity.
        every_batches: also save mid-epoch after every ``every_batches``-th batch of an epoch
            (rate-limited by ``min_interval_s``).
        mid_epoch: also save mid-epoch after any batch once ``min_interval_s`` has passed
            (for epochs longer than the interval).
        keep_previous: keep ``<path>.prev`` (the fallback when ``<path>`` is corrupt).
        save_final: when training ends (epoch limit, early stopping, divergence, a callback),
            save once more regardless of the interval, so that a rerun after a crash before the
            result was recorded only does the final evaluation.

    Trainers save at every epoch end once the interval has passed. ``seconds``, ``saves`` and
    ``bytes`` count the time spent saving, the saves made and the size of the last one (the
    overhead; a parent's ``seconds`` and ``saves`` also count its children's); ``skipped``
    lists the corrupt files the last :meth:`load` passed over, ``loaded_from`` the file it
    used.

    A run made of several phases gives each its own child, :meth:`sub`; :meth:`remove` of the
    parent removes the children's files too.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        min_interval_s: float = 60.0,
        every_batches: int | None = None,
        mid_epoch: bool = False,
        keep_previous: bool = True,
        save_final: bool = True,
    ) -> None:
        check(
            isinstance(min_interval_s, (int, float)) and min_interval_s >= 0,
            "min_interval_s",
            min_interval_s,
            "a number of seconds >= 0",
        )
        check(
            every_batches is None or (isinstance(every_batches, int) and every_batches > 0),
            "every_batches",
            every_batches,
            "None or a positive int",
        )
        self.path = Path(path)
        self.previous_path = previous_path(self.path)
        self.min_interval_s = float(min_interval_s)
        self.every_batches = every_batches
        self.mid_epoch = bool(mid_epoch)
        self.keep_previous = bool(keep_previous)
        self.save_final = bool(save_final)
        self.seconds = 0.0
        self.saves = 0
        self.bytes = 0
        self.skipped: list[str] = []
        self.loaded_from: Path | None = None
        self._last = time.monotonic()
        self._latest_ok = True  # False once load() found <path> corrupt: do not rotate it
        self.parent: Checkpointer | None = None
        self._carried: dict[str, tuple[Callable[[], Any], Callable[[Any], None]]] = {}
        # children are named <stem>.<name><suffix>; a child's stem is its parent's plus .<name>
        self._stem = self.path.name[: len(self.path.name) - len(self.path.suffix)]
        self._suffix = self.path.suffix

    def __repr__(self) -> str:
        return (
            f"Checkpointer({str(self.path)!r}, min_interval_s={self.min_interval_s}, "
            f"every_batches={self.every_batches}, mid_epoch={self.mid_epoch})"
        )

    def start(self) -> None:
        """Start the interval clock (the trainers call it when training starts or resumes)."""
        self._last = time.monotonic()

    def due(self, *, epoch_end: bool = False, batches: int = 0) -> bool:
        """Whether to save now: at an epoch end, or after the ``batches``-th batch of an epoch."""
        if time.monotonic() - self._last < self.min_interval_s:
            return False
        if epoch_end or self.mid_epoch:
            return True
        return self.every_batches is not None and batches % self.every_batches == 0

    def save(self, state: Any) -> float:
        """Write ``state`` now (atomically, with what :meth:`carry` adds); returns the seconds
        it took."""
        t0 = time.perf_counter()
        if self._carried and isinstance(state, dict):
            state = {**state, _CARRIED: {k: get() for k, (get, _) in self._carried.items()}}
        self.bytes = save_checkpoint(
            self.path, state, keep_previous=self.keep_previous and self._latest_ok
        )
        self._latest_ok = True
        dt = time.perf_counter() - t0
        node: Checkpointer | None = self
        while node is not None:  # a parent counts its children's overhead too
            node.seconds += dt
            node.saves += 1
            node = node.parent
        self._last = time.monotonic()
        return dt

    def load(self) -> Any | None:
        """The newest valid checkpoint's state (warning about each corrupt file), or None."""
        self.skipped = []
        self.loaded_from = None
        for candidate in (self.path, self.previous_path):
            if not candidate.exists():
                continue
            try:
                state = read_checkpoint(candidate)
            except CheckpointError as e:
                msg = f"{e}; skipped"
                self.skipped.append(msg)
                warnings.warn(msg, CheckpointWarning, stacklevel=2)
                if candidate == self.path:
                    self._latest_ok = False
                continue
            self.loaded_from = candidate
            carried = state.pop(_CARRIED, {}) if isinstance(state, dict) else {}
            for k, (_, put) in self._carried.items():
                if k in carried:
                    put(carried[k])
            return state
        return None

    def carry(
        self, name: str, get_state: Callable[[], Any], set_state: Callable[[Any], None]
    ) -> None:
        """Keep a caller's own state in this checkpoint, beside the trainer's.

        Every :meth:`save` stores ``get_state()`` under ``name`` with the trainer's state (the
        same file, the same moment: the two always agree), and :meth:`load` hands what was
        stored to ``set_state`` before returning the trainer's state (not called when the
        file holds nothing under ``name``). For what a caller collects while a trainer runs,
        e.g. a study's per-epoch measurements taken in a ``progress`` callback, which a
        resumed trainer does not replay. The value must be savable (:func:`flatten`).
        """
        check(isinstance(name, str) and name != "", "name", name, "a non-empty string")
        self._carried[name] = (get_state, set_state)

    def exists(self) -> bool:
        return self.path.exists() or self.previous_path.exists()

    def sub(self, name: str) -> Checkpointer:
        """A child checkpoint for one phase of a run, with this one's policy.

        Its file sits beside this one, ``<stem>.<name><suffix>`` (``group.safetensors`` ->
        ``group.layer0.safetensors``; a child's children nest, ``group.run3.layer0.
        safetensors``). ``name`` is letters, digits, ``_`` and ``-`` (no dots: the derived
        names stay unambiguous); a path without a suffix has children ``<path>.<name>``. The
        child's saves count in this one's ``seconds`` and ``saves``; :meth:`remove` of this
        one removes the child's files (and their children's). A child made in another process
        is the same file: the runner's parent, rebuilt from the path alone, removes it.
        """
        check(
            isinstance(name, str) and _SUB_NAME.fullmatch(name) is not None,
            "name",
            name,
            "a non-empty string of letters, digits, '_' and '-'",
        )
        child = Checkpointer(
            self.path.with_name(f"{self._stem}.{name}{self._suffix}"),
            min_interval_s=self.min_interval_s,
            every_batches=self.every_batches,
            mid_epoch=self.mid_epoch,
            keep_previous=self.keep_previous,
            save_final=self.save_final,
        )
        child.parent = self
        child._stem, child._suffix = f"{self._stem}.{name}", self._suffix
        return child

    def remove(self) -> None:
        """Delete the checkpoint, its previous one, any temporary file a crash left, and the
        same files of every child (:meth:`sub`), at any depth."""
        for p in (self.path, self.previous_path, *self._temporaries(), *self._children()):
            p.unlink(missing_ok=True)

    def _temporaries(self) -> Iterable[Path]:
        folder = self.path.parent
        if not folder.is_dir():
            return []
        return list(folder.glob(f"{glob.escape(self.path.name)}.tmp.*"))

    def _children(self) -> Iterable[Path]:
        """The files of the children: ``<stem>(.<name>)+<suffix>`` and its ``.prev`` and
        ``.tmp.*`` files."""
        folder = self.path.parent
        if not folder.is_dir():
            return []
        stem, suffix = self._stem, self._suffix
        pattern = re.compile(
            re.escape(stem)
            + r"(?:\.[A-Za-z0-9_-]+)+"
            + re.escape(suffix)
            + r"(?:\.prev|\.tmp\..*)?"
        )
        return [
            p
            for p in folder.glob(f"{glob.escape(stem)}.*")
            if p.name != self.path.name and pattern.fullmatch(p.name)
        ]


_SUB_NAME = re.compile(r"[A-Za-z0-9_-]+")
_CARRIED = "carried"  # the key of carry()'s states in a saved state


def as_checkpointer(checkpoint: Checkpointer | str | os.PathLike | None) -> Checkpointer | None:
    """``checkpoint=`` of the trainers: a :class:`Checkpointer`, a path (default policy), None."""
    if checkpoint is None or isinstance(checkpoint, Checkpointer):
        return checkpoint
    if isinstance(checkpoint, (str, os.PathLike)):
        return Checkpointer(checkpoint)
    raise ValueError(
        f"checkpoint={checkpoint!r} is not allowed; expected None, a path or a Checkpointer"
    )


def phase(checkpoint: Checkpointer | None, name: str) -> Checkpointer | None:
    """A run's checkpoint for one of its phases, ``checkpoint.sub(name)`` (a pretraining layer,
    the fine-tuning, a retraining), or None when the run keeps no checkpoints.

    >>> phase(None, "finetune") is None
    True
    """
    return None if checkpoint is None else checkpoint.sub(name)


def check_signature(
    ckpt: Checkpointer, state: Any, trainer: str, signature: dict[str, Any]
) -> None:
    """Refuse to resume from a checkpoint written by another trainer or another run."""
    path = ckpt.loaded_from or ckpt.path
    if not isinstance(state, dict) or state.get("trainer") != trainer:
        found = state.get("trainer") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(path, f"written by {found!r}, not by {trainer!r}")
    saved = state.get("signature", {})
    diff = [
        f"{k}: checkpoint {saved.get(k)!r}, this run {signature.get(k)!r}"
        for k in sorted(set(saved) | set(signature))
        if saved.get(k) != signature.get(k)
    ]
    if diff:
        raise CheckpointError(
            path,
            "belongs to another run (" + "; ".join(diff) + "); remove it or use another path",
        )

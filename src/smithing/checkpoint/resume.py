"""What every resumable trainer of the core shares: :class:`Resumable` (the fields each
checkpoint holds, the resume, the saves, the run's clock) and the global generators' states
(:func:`rng_state`, :func:`set_rng_state`).

A trainer's checkpoint is one dict::

    {"trainer": name, "signature": {...}, "epoch": e, <position>: p, "finished": bool,
     "elapsed": seconds, <the trainer's parts>..., "rng": rng_state(device)}

``epoch`` is where training continues (the trainer's own numbering, 0- or 1-based),
``<position>`` (``"position"``, or the trainer's own key) where in that epoch (None: at its
start), ``finished`` whether the run ended (a rerun then skips training), ``elapsed`` the
seconds trained so far. The parts are what each trainer registers: the model, the optimizer,
its generators, the history, the early-stopping state, and whatever else it needs to continue
bit for bit.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from smithing.checkpoint.checkpointer import Checkpointer, as_checkpointer, check_signature
from smithing.checkpoint.files import CheckpointError

__all__ = ["Resumable", "rng_state", "set_rng_state"]


# ------------------------------------------------------------------ random number generators


def rng_state(device: torch.device | str | None = None) -> dict:
    """The global generators' states: torch (CPU), Python ``random``, NumPy's legacy global
    generator, and every CUDA device's when ``device`` is a CUDA device."""
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------ the trainers' plumbing

_REQUIRED = object()


class Resumable:
    """The checkpoint of one trainer's run: what it holds, the resume, the saves, the clock.

    Args:
        checkpoint: the trainer's ``checkpoint=`` (a :class:`Checkpointer`, a path or None:
            no checkpoints, and every method below but the clock does nothing).
        trainer: the trainer's name, stored in the checkpoint and checked on resume.
        signature: what identifies the run (shapes, settings); a checkpoint of another
            signature is refused (:func:`check_signature`).
        device: the training device (the CUDA generators are saved on a CUDA device).
        first_epoch: where a fresh run starts, in the trainer's numbering.
        position_key: the key of the position in the epoch (``"position"``).
        epoch_key: the key of the epoch (``"epoch"``; ``"step"`` for a trainer that counts
            steps, as :func:`~smithing.train.fit_sequence`).

    The trainer registers its parts in the order they are to be restored (:meth:`part` and
    the shorthands :meth:`module`, :meth:`optimizer`, :meth:`generator`, :meth:`history`,
    :meth:`early_stopping`, :meth:`stateful`), calls :meth:`resume` once before its first
    epoch, loops over :meth:`epochs` and calls :meth:`save` when :meth:`due` says so and
    :meth:`save_final` at the end. After :meth:`resume`, ``epoch``, ``position``,
    ``finished`` and ``elapsed`` are where the run continues (a fresh run's defaults
    otherwise) and :meth:`seconds` counts from the run's first start.
    """

    def __init__(
        self,
        checkpoint: Checkpointer | str | os.PathLike | None,
        trainer: str,
        signature: dict[str, Any],
        *,
        device: torch.device | str | None = None,
        first_epoch: int = 0,
        position_key: str = "position",
        epoch_key: str = "epoch",
    ) -> None:
        self.checkpointer = as_checkpointer(checkpoint)
        self.trainer = trainer
        self.signature = signature
        self.device = device
        self.position_key = position_key
        self.epoch_key = epoch_key
        self.epoch = first_epoch
        self.position: Any = None
        self.finished = False
        self.elapsed = 0.0
        self.started = time.perf_counter()
        self._parts: dict[str, tuple[Callable[[], Any], Callable[[Any], None] | None, Any]] = {}

    # -------------------------------------------------------------- what the checkpoint holds

    def part(
        self,
        name: str,
        get: Callable[[], Any],
        put: Callable[[Any], None] | None = None,
        *,
        missing: Any = _REQUIRED,
    ) -> None:
        """Save ``get()`` under ``name``; on resume, hand the saved value to ``put`` (None: the
        trainer reads it from :meth:`resume`'s state itself). ``missing``: what ``put`` gets
        from a checkpoint that lacks ``name`` (written before the part existed); without it
        such a checkpoint raises ``KeyError``. ``put`` must not draw random numbers (the
        global generators are restored after it)."""
        self._parts[name] = (get, put, missing)

    def module(self, name: str, module: nn.Module) -> None:
        """``module.state_dict()`` under ``name``, loaded back in place."""

        def put(state: dict) -> None:
            with torch.no_grad():
                module.load_state_dict(state)

        self.part(name, module.state_dict, put)

    def optimizer(self, optimizer: torch.optim.Optimizer, name: str = "optimizer") -> None:
        """The optimizer's ``state_dict()`` (its buffers, its groups' learning rates)."""
        self.part(name, optimizer.state_dict, optimizer.load_state_dict)

    def generator(self, generator: torch.Generator | None, name: str = "generator") -> None:
        """A generator's state (None without one)."""

        def put(state: Any) -> None:
            if generator is not None:
                generator.set_state(state)

        self.part(name, lambda: None if generator is None else generator.get_state(), put)

    def history(self, history: Any, name: str = "history") -> None:
        """A :class:`~smithing.history.History` (or anything with ``state_dict()`` /
        ``load_state_dict()``)."""
        self.part(name, history.state_dict, history.load_state_dict)

    def early_stopping(self, early_stopping: Any, name: str = "early_stopping") -> None:
        """An :class:`~smithing.callbacks.EarlyStopping`'s state (None without one)."""

        def put(state: Any) -> None:
            if early_stopping is not None:
                early_stopping.load_state_dict(state)

        get = (lambda: None) if early_stopping is None else early_stopping.state_dict
        self.part(name, get, put)

    def stateful(self, objects: Sequence[Any], name: str = "stateful") -> None:
        """The ``state_dict()`` of each object, in order (regularizers and callbacks with
        state, a History per member); a checkpoint written before they were saved restores
        none."""

        def put(states: list) -> None:
            for obj, state in zip(objects, states):
                obj.load_state_dict(state)

        self.part(name, lambda: [o.state_dict() for o in objects], put, missing=[])

    # -------------------------------------------------------------- resume and save

    def resume(self) -> dict | None:
        """Continue from the newest valid checkpoint, if there is one; start the clock.

        Checks the trainer and the signature, restores every part in the order registered,
        reads ``epoch``, the position, ``finished`` and ``elapsed``, and restores the global
        generators last (nothing may draw from them after). Returns the saved state (for the
        trainer's parts without ``put``) or None for a fresh start.
        """
        ckpt = self.checkpointer
        state = None if ckpt is None else ckpt.load()
        if ckpt is not None and state is not None:
            check_signature(ckpt, state, self.trainer, self.signature)
            for name, (_, put, missing) in self._parts.items():
                if put is not None:
                    put(state[name] if missing is _REQUIRED else state.get(name, missing))
            self.epoch, self.position = state[self.epoch_key], state[self.position_key]
            self.finished, self.elapsed = state["finished"], state["elapsed"]
            set_rng_state(state["rng"])  # last: nothing may draw from the global generators after
        self.started = time.perf_counter() - self.elapsed
        if ckpt is not None:
            ckpt.start()
        return state

    def epochs(self, stop: int) -> range:
        """The epochs left to train: from :attr:`epoch` up to ``stop`` (none when finished)."""
        return range(self.epoch, 0 if self.finished else stop)

    def seconds(self) -> float:
        """Seconds trained, the runs before the last resume included."""
        return time.perf_counter() - self.started

    def snapshot(self, epoch: int, position: Any = None, *, done: bool = False) -> dict:
        """The state to continue from ``position`` in ``epoch`` (see the module docstring)."""
        state: dict[str, Any] = {
            "trainer": self.trainer,
            "signature": self.signature,
            self.epoch_key: epoch,
            self.position_key: position,
            "finished": done,
            "elapsed": self.seconds(),
        }
        for name, (get, _, _) in self._parts.items():
            state[name] = get()
        state["rng"] = rng_state(self.device)
        return state

    def due(self, *, epoch_end: bool = False, batches: int = 0) -> bool:
        """Whether the policy saves now (:meth:`Checkpointer.due`); False without one."""
        return self.checkpointer is not None and self.checkpointer.due(
            epoch_end=epoch_end, batches=batches
        )

    def save(self, epoch: int, position: Any = None, *, done: bool = False) -> None:
        """Save :meth:`snapshot` now (nothing without a checkpointer)."""
        if self.checkpointer is not None:
            self.checkpointer.save(self.snapshot(epoch, position, done=done))

    def save_final(self, epoch: int, position: Any = None) -> None:
        """The save at the end of training (when the policy's ``save_final`` asks for it and
        the run did not start finished): ``epoch`` is past the last one, ``finished`` True."""
        if self.checkpointer is not None and self.checkpointer.save_final and not self.finished:
            self.save(epoch, position, done=True)

    def error(self, problem: str) -> CheckpointError:
        """A :class:`CheckpointError` about the file resumed from."""
        return CheckpointError(self.path or "(no checkpoint)", problem)

    @property
    def path(self) -> Path | None:
        """The file resumed from (or the checkpoint's path; None without a checkpointer)."""
        if self.checkpointer is None:
            return None
        return self.checkpointer.loaded_from or self.checkpointer.path

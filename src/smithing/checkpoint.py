"""Resumable training state: safetensors tensors + JSON, written atomically, verified on load.

Below every trainer of the core (``train/``, ``pretrain/``): it needs only torch, NumPy and
safetensors. ``smithing.train`` re-exports :class:`Checkpointer` and :class:`CheckpointError`.

**File layout.** A checkpoint is ONE safetensors file (``<path>``). Its tensors are the tensors of
the training state, named by where they sit in it (``model/fc1.weight``,
``optimizer/state/0/momentum_buffer``, ...); the safetensors header's ``__metadata__`` holds

* ``smithing``: the state as JSON text, every tensor replaced by ``{"$tensor": name}``,
* ``smithing_format``: ``"smithing.checkpoint"``, ``smithing_version``: the format version,
* ``smithing_sha256``: sha256 over the format, the version, the JSON text and every tensor's
  name, dtype, shape and bytes (in name order).

Nothing is ever unpickled: the loader parses the safetensors header as JSON, reads the tensors
with ``safetensors.torch.load`` and rebuilds the state from the JSON.

**Writes are atomic.** The file is written to a temporary file in the same folder, flushed and
``os.fsync``-ed, the current checkpoint is renamed to ``<path>.prev`` and the new one renamed
into place (``os.replace``), then the folder is fsync-ed. A crash at any moment leaves a valid
``<path>`` or ``<path>.prev``; :func:`load_latest` takes the newest valid one and warns
(:class:`CheckpointWarning`) about each corrupt one it skipped.

**What can be saved** (:func:`flatten` / :func:`unflatten`): nested dicts (any keys that are
themselves savable: the optimizer's int keys survive), lists, tuples, ``None``, bools, ints
(any size), floats (``nan``, ``inf`` and ``-0.0`` included, bit for bit), strings, torch tensors
(any dtype safetensors knows, moved to the CPU), NumPy arrays and ``torch.dtype``. NumPy scalars
come back as Python scalars. That covers ``optimizer.state_dict()``, LR-scheduler state,
``torch.Generator.get_state()``, ``torch.get_rng_state()``, ``random.getstate()`` and
``numpy.random.get_state()``.

A :class:`Checkpointer` is what the trainers take as ``checkpoint=``: the path and when to save.
A run of several phases (pretrain layer 1, layer 2, ..., fine-tune) gives each phase its own
file, a child :meth:`Checkpointer.sub` ``(name)`` beside the parent: ``run.safetensors`` ->
``run.layer0.safetensors`` (children of children nest: ``run.run3.layer0.safetensors``);
removing the parent removes every child too.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import random
import re
import secrets
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from smithing._registry import check

__all__ = [
    "FORMAT",
    "VERSION",
    "CheckpointError",
    "CheckpointWarning",
    "Checkpointer",
    "as_checkpointer",
    "check_signature",
    "flatten",
    "load_latest",
    "read_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "unflatten",
]

FORMAT = "smithing.checkpoint"
VERSION = 1
_META_STATE, _META_FORMAT = "smithing", "smithing_format"
_META_VERSION, _META_SHA = "smithing_version", "smithing_sha256"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, truncated, corrupt, foreign or newer."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"checkpoint {self.path}: {problem}")


class CheckpointWarning(UserWarning):
    """A corrupt checkpoint was skipped (the message names the file and the problem)."""


# ------------------------------------------------------------------ flatten / unflatten


def flatten(state: Any) -> tuple[dict[str, Tensor], str]:
    """``state`` -> ``(tensors, json_text)``: CPU tensors keyed by their path, and the JSON.

    The inverse is :func:`unflatten`. Raises ``TypeError`` naming the path of a value of an
    unsupported type.
    """
    tensors: dict[str, Tensor] = {}
    storages: set[int] = set()

    def add(t: Tensor, path: str) -> str:
        name = path or "tensor"
        if name in tensors:
            i = 1
            while f"{name}~{i}" in tensors:
                i += 1
            name = f"{name}~{i}"
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        ptr = t.untyped_storage().data_ptr()
        if ptr in storages or not t.is_contiguous():
            t = t.clone(memory_format=torch.contiguous_format)  # safetensors refuses shared memory
        else:
            storages.add(ptr)
        tensors[name] = t
        return name

    def enc(v: Any, path: str) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            if math.isfinite(v):
                return float(v)  # json writes repr(): exact round trip, -0.0 included
            return {"$float": repr(float(v))}  # 'nan', 'inf', '-inf'
        if isinstance(v, Tensor):
            return {"$tensor": add(v, path)}
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                raise TypeError(f"cannot checkpoint the object array at {path!r}")
            arr = np.ascontiguousarray(v)
            if not arr.dtype.isnative:
                arr = arr.astype(arr.dtype.newbyteorder("="))
            return {"$ndarray": add(torch.from_numpy(arr.copy()), path), "dtype": arr.dtype.str}
        if isinstance(v, np.generic):
            return enc(v.item(), path)
        if isinstance(v, torch.dtype):
            return {"$dtype": str(v).removeprefix("torch.")}
        if isinstance(v, tuple):
            return {"$tuple": [enc(x, f"{path}/{i}") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [enc(x, f"{path}/{i}") for i, x in enumerate(v)]
        if isinstance(v, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in v):
                return {k: enc(x, f"{path}/{k}" if path else k) for k, x in v.items()}
            return {
                "$dict": [
                    [enc(k, f"{path}/key"), enc(x, f"{path}/{k}" if path else str(k))]
                    for k, x in v.items()
                ]
            }
        raise TypeError(
            f"cannot checkpoint {type(v).__name__} at {path or 'the top'!r}: checkpoints hold "
            "dicts, lists, tuples, None, bools, ints, floats, strings, tensors and NumPy arrays"
        )

    text = json.dumps(enc(state, ""), allow_nan=False, separators=(",", ":"))
    return tensors, text


def unflatten(tensors: dict[str, Tensor], text: str) -> Any:
    """The inverse of :func:`flatten`. Raises ``ValueError`` on a malformed document."""

    def dec(v: Any) -> Any:
        if isinstance(v, list):
            return [dec(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            ((tag, body),) = v.items()
            if tag == "$tensor":
                if body not in tensors:
                    raise ValueError(f"the state names a tensor {body!r} the file lacks")
                return tensors[body]
            if tag == "$float":
                if body not in ("nan", "inf", "-inf"):
                    raise ValueError(f"bad non-finite float {body!r}")
                return float(body)
            if tag == "$tuple":
                return tuple(dec(x) for x in body)
            if tag == "$dict":
                return {_hashable(dec(k)): dec(x) for k, x in body}
            if tag == "$dtype":
                dtype = getattr(torch, body, None)
                if not isinstance(dtype, torch.dtype):
                    raise ValueError(f"unknown dtype {body!r}")
                return dtype
        if "$ndarray" in v:
            t = tensors.get(v["$ndarray"])
            if t is None:
                raise ValueError(f"the state names a tensor {v['$ndarray']!r} the file lacks")
            return t.numpy().astype(np.dtype(v["dtype"]), copy=True)
        bad = [k for k in v if k.startswith("$")]
        if bad:
            raise ValueError(f"unknown tag {bad[0]!r}")
        return {k: dec(x) for k, x in v.items()}

    return dec(json.loads(text))


def _hashable(k: Any) -> Any:
    if isinstance(k, list):
        return tuple(_hashable(x) for x in k)
    return k


def _digest(text: str, tensors: dict[str, Tensor]) -> str:
    h = hashlib.sha256()
    h.update(f"{FORMAT}\0{VERSION}\0".encode())
    h.update(text.encode())
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


# ------------------------------------------------------------------ files


def previous_path(path: str | os.PathLike) -> Path:
    """Where the checkpoint before ``path`` is kept: ``<path>.prev``."""
    path = Path(path)
    return path.with_name(path.name + ".prev")


def save_checkpoint(path: str | os.PathLike, state: Any, *, keep_previous: bool = True) -> int:
    """Write ``state`` to ``path`` atomically; the old file becomes ``<path>.prev``.

    Returns the number of bytes written. With ``keep_previous=False`` the current file is
    replaced and ``<path>.prev`` is left as it is.
    """
    from safetensors.torch import save

    path = Path(path)
    tensors, text = flatten(state)
    meta = {
        _META_FORMAT: FORMAT,
        _META_VERSION: str(VERSION),
        _META_SHA: _digest(text, tensors),
        _META_STATE: text,
    }
    blob = save(tensors, metadata=meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            os.replace(path, previous_path(path))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return len(blob)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def read_checkpoint(path: str | os.PathLike) -> Any:
    """Read and verify one checkpoint file; raises :class:`CheckpointError` if it is unusable."""
    from safetensors.torch import load

    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(path, "no such file") from None
    except OSError as e:
        raise CheckpointError(path, f"cannot be read ({e})") from None
    if len(blob) < 8:
        raise CheckpointError(path, f"truncated or not a safetensors file ({len(blob)} bytes)")
    n = int.from_bytes(blob[:8], "little")
    if n > len(blob) - 8:
        raise CheckpointError(
            path,
            f"truncated or not a safetensors file (its header claims {n} bytes, the file has "
            f"{len(blob)})",
        )
    try:
        header = json.loads(blob[8 : 8 + n])
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(path, f"not a safetensors file (unreadable header: {e})") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get(_META_FORMAT) != FORMAT:
        raise CheckpointError(path, f"not a smithing checkpoint (no {_META_FORMAT!r} metadata)")
    version = meta.get(_META_VERSION, "")
    if not version.isdigit() or int(version) > VERSION:
        raise CheckpointError(
            path, f"format version {version!r}; this smithing reads versions up to {VERSION}"
        )
    try:
        tensors = load(blob)
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(path, f"damaged tensor data, truncated? ({e})") from None
    text = meta.get(_META_STATE)
    if not isinstance(text, str):
        raise CheckpointError(path, f"no {_META_STATE!r} state in the metadata")
    digest = _digest(text, tensors)
    if digest != meta.get(_META_SHA):
        raise CheckpointError(
            path, f"checksum mismatch (stored {meta.get(_META_SHA)}, computed {digest}): corrupt"
        )
    try:
        return unflatten(tensors, text)
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(path, f"unreadable state ({e})") from None


def load_latest(path: str | os.PathLike, *, skipped: list[str] | None = None) -> Any | None:
    """The state of the newest valid checkpoint among ``<path>`` and ``<path>.prev``, or None.

    Each existing file that is corrupt is reported with ``warnings.warn(CheckpointWarning)``
    (and appended to ``skipped`` when given); ``None`` means: start from the beginning.
    """
    for candidate in (Path(path), previous_path(path)):
        if not candidate.exists():
            continue
        try:
            return read_checkpoint(candidate)
        except CheckpointError as e:
            msg = f"{e}; skipped"
            if skipped is not None:
                skipped.append(msg)
            warnings.warn(msg, CheckpointWarning, stacklevel=2)
    return None


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


# ------------------------------------------------------------------ the trainers' handle


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

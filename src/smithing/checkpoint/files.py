"""Checkpoint files: one safetensors file each, written atomically, verified on load.

The file's tensors are those :func:`~smithing.checkpoint.codec.flatten` took out of the state;
its safetensors header's ``__metadata__`` holds ``smithing`` (the state's JSON text),
``smithing_format`` (:data:`FORMAT`), ``smithing_version`` (:data:`VERSION`) and
``smithing_sha256`` (sha256 over the format, the version, the JSON text and every tensor's name,
dtype, shape and bytes, in name order). :func:`save_checkpoint` writes a temporary file, fsyncs
it, keeps the current one as ``<path>.prev`` and renames the new one into place;
:func:`read_checkpoint` refuses anything truncated, foreign, newer or corrupt with a
:class:`CheckpointError`; :func:`load_latest` takes the newest valid file of the two.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from smithing.checkpoint.codec import flatten, unflatten

__all__ = [
    "FORMAT",
    "VERSION",
    "CheckpointError",
    "CheckpointWarning",
    "load_latest",
    "previous_path",
    "read_checkpoint",
    "save_checkpoint",
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


def _digest(text: str, tensors: dict[str, Tensor]) -> str:
    h = hashlib.sha256()
    h.update(f"{FORMAT}\0{VERSION}\0".encode())
    h.update(text.encode())
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().data)
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

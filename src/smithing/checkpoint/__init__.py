"""Resumable training state: safetensors tensors + JSON, written atomically, verified on load.

Below every trainer of the core (``train/``, ``pretrain/``): it needs only torch, NumPy and
safetensors. ``smithing.train`` re-exports :class:`Checkpointer` and :class:`CheckpointError`.
The package's parts: :mod:`~smithing.checkpoint.codec` (a state <-> tensors + JSON),
:mod:`~smithing.checkpoint.files` (the file, its atomic writes and checks),
:mod:`~smithing.checkpoint.checkpointer` (the trainers' handle: path and policy) and
:mod:`~smithing.checkpoint.resume` (what every trainer saves and restores, :class:`Resumable`).

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

A trainer's state (:class:`Resumable`) is a dict of the fields every trainer saves (``trainer``,
``signature``, ``epoch``, the position in the epoch, ``finished``, ``elapsed``, the global
generators' ``rng``) and its own parts (model, optimizer, generators, history, ...).
"""

from smithing.checkpoint.checkpointer import (
    Checkpointer,
    as_checkpointer,
    check_signature,
    phase,
)
from smithing.checkpoint.codec import flatten, unflatten
from smithing.checkpoint.files import (
    FORMAT,
    VERSION,
    CheckpointError,
    CheckpointWarning,
    load_latest,
    previous_path,
    read_checkpoint,
    save_checkpoint,
)
from smithing.checkpoint.resume import Resumable, rng_state, set_rng_state

__all__ = [
    "FORMAT",
    "VERSION",
    "CheckpointError",
    "CheckpointWarning",
    "Checkpointer",
    "Resumable",
    "as_checkpointer",
    "check_signature",
    "flatten",
    "load_latest",
    "phase",
    "previous_path",
    "read_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "unflatten",
]

"""The compiled / graph-captured training step: one switch (``compile=True``, ``--compile``)
for :func:`~smithing.train.fit`, :func:`~smithing.train.fit_ensemble` and
:func:`~smithing.pretrain.train_rbm`.

Small-step training loops on a GPU are bound by kernel launches, not arithmetic
(docs/DESIGN.md, "Performance principles"). With the switch on, a trainer hands the pure part
of its step to :func:`compile_step`, which is ``torch.compile``:

* on **CUDA**, inductor with CUDA graphs (``triton.cudagraphs``, what ``mode="reduce-overhead"``
  sets): the step's kernels are captured once and replayed with one launch;
* on **CPU**, inductor's fused C++ kernels (it needs a C compiler; ``SMITHING_COMPILE_BACKEND``
  picks another ``torch.compile`` backend, e.g. ``aot_eager``, which traces forward and
  backward with AOTAutograd but runs torch's own kernels).

What each trainer compiles: ``fit`` the forward pass and the loss of a batch (AOTAutograd
compiles its backward with it), ``fit_ensemble`` the vmapped forward and the members' losses,
``train_rbm`` the Gibbs chain's conditionals ``p(h | v)`` and ``E[v | h]`` (its Bernoulli draws
take an explicit ``torch.Generator``, which stays outside the graph). The optimizer step, the
regularizers and the bookkeeping run eagerly as before.

Equality with the eager step: random ops inside the graph draw from torch's global generator
as in eager mode (inductor's ``fallback_random``), so dropout masks are the eager ones. With
``aot_eager`` the parameters after a few steps equal the eager ones bitwise on CPU; inductor
fuses and reorders float sums, so it agrees to float32 rounding (``tests/test_compiled.py``
states the tolerance it checks: relative 1e-5 after 5 SGD steps). Each new batch shape (the
smaller last batch of an epoch) compiles once more (``dynamic=False``: static kernels).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch

from smithing._registry import check

__all__ = ["compile_backend", "compile_step", "current_compile", "use_compile"]

_CURRENT: contextvars.ContextVar[bool] = contextvars.ContextVar("smithing_compile", default=False)


def current_compile(flag: bool | None = None) -> bool:
    """``flag`` (checked), or the switch in force (:func:`use_compile`; off by default)."""
    if flag is None:
        return _CURRENT.get()
    check(isinstance(flag, bool), "compile", flag, "True, False or None")
    return flag


@contextlib.contextmanager
def use_compile(flag: bool) -> Iterator[bool]:
    """Turn the compiled step on (or off) for every trainer called inside with
    ``compile=None`` (the CLI's ``--compile`` and the study runner use this)."""
    token = _CURRENT.set(current_compile(flag))
    try:
        yield flag
    finally:
        _CURRENT.reset(token)


def compile_backend(device: torch.device | str) -> str:
    """``$SMITHING_COMPILE_BACKEND`` when set, else ``"inductor"``."""
    return os.environ.get("SMITHING_COMPILE_BACKEND") or "inductor"


def compile_step(fn: Callable, device: torch.device | str) -> Callable:
    """``torch.compile(fn)`` for a training step on ``device``: CUDA graphs on CUDA (inductor),
    fused kernels on CPU; random ops keep the eager generator (``fallback_random``)."""
    device = torch.device(device)
    backend = compile_backend(device)
    if backend != "inductor":
        return torch.compile(fn, backend=backend, dynamic=False)
    options: dict[str, Any] = {"fallback_random": True}
    if device.type == "cuda":
        options["triton.cudagraphs"] = True  # what mode="reduce-overhead" turns on
    return torch.compile(fn, backend="inductor", dynamic=False, options=options)

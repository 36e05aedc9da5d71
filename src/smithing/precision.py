"""Numeric precision of training: ``fp32`` (the default), ``tf32`` or ``bf16``, one switch for
:func:`~smithing.train.fit`, :func:`~smithing.train.fit_ensemble`,
:func:`~smithing.pretrain.train_rbm` and the CLI (``--precision``).

========  ==========================================================================  =========
mode      what changes                                                                tolerance
========  ==========================================================================  =========
``fp32``  nothing: float32 everywhere, bitwise the results of before                  exact
``tf32``  float32 matmuls and convolutions on CUDA may use TensorFloat-32 (10-bit       see below
          mantissa inputs, fp32 accumulation): ``torch.backends.cuda.matmul.
          allow_tf32`` and ``torch.backends.cudnn.allow_tf32`` are set, and
          ``torch.set_float32_matmul_precision("high")``. **A no-op on CPU** (no CPU
          kernel has TF32; the CPU results are fp32's, bitwise).
``bf16``  the forward pass and the loss run under ``torch.autocast(device_type,         see below
          dtype=torch.bfloat16)`` (matmuls in bfloat16, 8-bit mantissa; reductions
          such as the softmax cross-entropy stay fp32, torch's autocast lists); the
          parameters, gradients and optimizer state stay float32 ("fp32 master
          weights", Micikevicius et al., "Mixed Precision Training", ICLR 2018). The
          RBM's Gibbs-chain matmuls (``p(h | v)``, ``E[v | h]``) run in bfloat16, its
          gradient statistics and updates in fp32. Evaluation stays fp32.
========  ==========================================================================  =========

Measured tolerance (docs/RESULTS.md, "Precision"): on a small MNIST run (784-500-10 ReLU,
5,000 training images, 3 epochs, SGD momentum, batch 32, on CPU) bf16 ends within 0.01 of
fp32's final training loss and 0.5 percentage points of its test error (both tested:
``tests/test_precision.py``); TF32 on a GPU is expected between the two (its rounding is
bf16's rounding of the inputs only, with a 10-bit rather than 7-bit mantissa) and is to be
measured by ``scripts/gpu-check.sh``. bf16 and tf32 results are not bitwise reproducible across
devices and do not equal fp32's; fp32 stays the default for fidelity (docs/DESIGN.md).

The trainers take ``precision=None``, meaning the precision in force: the one set by
:func:`use_precision` (the CLI and the study runner wrap a run in it), ``"fp32"`` otherwise.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

import torch

from smithing._registry import Registry

__all__ = [
    "PRECISIONS",
    "autocast",
    "check_precision",
    "current_precision",
    "matmul_precision",
    "mixed",
    "set_matmul_precision",
    "training_precision",
    "use_precision",
]

PRECISIONS: Registry[str] = Registry("precision")
PRECISIONS.register("fp32", "fp32", description="float32 everywhere (default; bitwise as before)")
PRECISIONS.register(
    "tf32", "tf32", description="TensorFloat-32 matmuls on CUDA (fp32 accumulation); CPU: fp32"
)
PRECISIONS.register(
    "bf16", "bf16", description="bfloat16 autocast of forward and loss, fp32 master weights"
)

_CURRENT: contextvars.ContextVar[str] = contextvars.ContextVar("smithing_precision", default="fp32")


def check_precision(mode: str) -> str:
    """``mode`` if it is a known precision; else a ``ValueError`` naming the choices."""
    if not isinstance(mode, str) or mode not in PRECISIONS:
        choices = ", ".join(PRECISIONS.names())
        raise ValueError(f"precision={mode!r} is invalid: expected one of {choices}")
    return mode


def current_precision(mode: str | None = None) -> str:
    """``mode`` (checked), or the precision in force when it is None."""
    return check_precision(_CURRENT.get() if mode is None else mode)


@contextlib.contextmanager
def use_precision(mode: str) -> Iterator[str]:
    """Make ``mode`` the precision of every trainer called inside (with ``precision=None``)."""
    token = _CURRENT.set(check_precision(mode))
    try:
        yield mode
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def matmul_precision(mode: str) -> Iterator[None]:
    """For ``"tf32"``: allow TensorFloat-32 in CUDA matmuls / cuDNN and set float32 matmul
    precision ``"high"`` inside, restoring the previous settings after. Nothing otherwise."""
    if check_precision(mode) != "tf32":
        yield
        return
    before = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.get_float32_matmul_precision(),
    )
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before[:2]
        torch.set_float32_matmul_precision(before[2])


def autocast(mode: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The context for a forward pass and loss: ``torch.autocast(device.type,
    dtype=torch.bfloat16)`` for ``"bf16"``, a no-op context otherwise."""
    if check_precision(mode) == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def training_precision(mode: str | None) -> Iterator[str]:
    """What a trainer wraps its training in: resolves ``mode`` (None: the one in force),
    applies the matmul settings, and yields the resolved mode for :func:`autocast`."""
    resolved = current_precision(mode)
    with matmul_precision(resolved):
        yield resolved


def set_matmul_precision(mode: str) -> Callable[[], None]:
    """:func:`matmul_precision` without a ``with`` block: applies the settings of ``mode`` and
    returns the function that restores the previous ones (for a trainer's ``finally``)."""
    ctx = matmul_precision(mode)
    ctx.__enter__()

    def restore() -> None:
        ctx.__exit__(None, None, None)

    return restore


def mixed(fn: Callable, mode: str, device: torch.device | str, dtype: torch.dtype) -> Callable:
    """``fn`` in precision ``mode`` inside a computation that stays ``dtype`` (the RBM's
    conditionals): for ``"bf16"`` run under :func:`autocast` with the tensor result cast back
    to ``dtype``; for ``"tf32"`` under :func:`matmul_precision`; ``fn`` itself for ``"fp32"``."""
    mode = check_precision(mode)
    if mode == "fp32":
        return fn

    def run(*args):
        with matmul_precision(mode), autocast(mode, device):
            out = fn(*args)
        return out.to(dtype)

    return run

"""Per-example DropConnect without a materialized float mask: bit-packed masks, fused kernels.

Wan, Zeiler, Zhang, LeCun & Fergus, "Regularization of Neural Networks using DropConnect",
ICML 2013, eq. (1) with one mask per example ``b``::

    u_b = (M_b * W) v_b                     M_b in {0, 1}^(out x in)

A float mask costs ``batch * out * in`` floats (plus as many for ``M_b * W``): for the 2 x 800
MNIST net that is ~0.6 GB of memory traffic per mini-batch of 128 and per layer, several times
over (draw, compare, cast, multiply, reduce). Here the masks live as **bits**: ``words`` of
shape ``(batch, out, ceil(in / 32))`` int32, bit ``j % 32`` of ``words[b, i, j // 32]`` being
``M_b[i, j]`` (1/32 of a float mask). The three sums a linear layer needs are each one fused
reduction over the ``(batch, out, in)`` product that unpacks the bits in registers:

* forward        ``u[b, i]   = sum_j  M[b, i, j] W[i, j] v[b, j]``
* input grad     ``gv[b, j]  = sum_i  M[b, i, j] W[i, j] g[b, i]``
* weight grad    ``gW[i, j]  = sum_b  M[b, i, j] v[b, j] g[b, i]``

written as plain torch expressions (``torch.where`` of the unpacked bits, a product, ``.sum``)
and fused by ``torch.compile`` (inductor: C++/OpenMP on CPU, Triton on CUDA), so no
``(batch, out, in)`` tensor is ever written to memory. The autograd function saves the packed
words for backward (1 bit per weight and example) instead of redrawing them.

Small problems (under :data:`COMPILE_MIN_ELEMENTS` products), environments where
``torch.compile`` fails (no C compiler), and ``SMITHING_DROPCONNECT_COMPILE=0`` (``=1``:
compile whatever the size) run the same expressions eagerly: the unpacked boolean
mask is then materialized per call, which is what the fused kernels avoid, with the same
numbers up to float summation order.

Drawing the bits: for a drop probability of exactly 1/2 (Wan et al.'s MNIST setting) every bit
of ``torch.randint(-2**31, 2**31)`` int32 words is a fair coin (``M ~ Bernoulli(1/2)``, eq. 1),
32 masks per draw. For any other probability the mask is drawn as before,
``torch.rand(...) < 1 - p`` (one float per weight: the slow part), and packed.
"""

from __future__ import annotations

import functools
import os
import warnings

import torch
from torch import Tensor

__all__ = [
    "COMPILE_MIN_ELEMENTS",
    "WORD_BITS",
    "dropconnect_packed",
    "pack_mask",
    "random_words",
    "unpack_mask",
]

WORD_BITS = 32
#: below this many ``batch * out * in`` products the kernels run eagerly (no compile cost)
COMPILE_MIN_ELEMENTS = 2**22


def n_words(n: int) -> int:
    """Words of :data:`WORD_BITS` bits that hold ``n`` mask bits."""
    return (n + WORD_BITS - 1) // WORD_BITS


def _shifts(device: torch.device) -> Tensor:
    return torch.arange(WORD_BITS, dtype=torch.int32, device=device)


def unpack_mask(words: Tensor, n: int) -> Tensor:
    """``(..., ceil(n / 32))`` int32 words -> ``(..., n)`` bool, bit ``j % 32`` of word
    ``j // 32`` being element ``j``."""
    bits = (words.unsqueeze(-1) >> _shifts(words.device)) & 1  # (..., words, 32)
    return bits.reshape(*words.shape[:-1], -1)[..., :n] != 0  # (..., n)


def pack_mask(mask: Tensor) -> Tensor:
    """``(..., n)`` bool -> ``(..., ceil(n / 32))`` int32 words (the inverse of
    :func:`unpack_mask`)."""
    n = mask.shape[-1]
    pad = n_words(n) * WORD_BITS - n
    m = torch.nn.functional.pad(mask.to(torch.int32), (0, pad))  # (..., words * 32)
    m = m.reshape(*mask.shape[:-1], -1, WORD_BITS)  # (..., words, 32)
    return (m << _shifts(mask.device)).sum(-1, dtype=torch.int32)  # bitwise OR of the bits


def random_words(
    shape: tuple[int, ...], device: torch.device | str, generator: torch.Generator | None = None
) -> Tensor:
    """int32 words of independent fair bits, ``shape[-1]`` mask bits per row: each bit is a
    Bernoulli(1/2) keep decision (Wan et al. 2013, eq. 1 with keep probability 1/2)."""
    # randint over the whole int32 range: 2**32 values, each of the 32 bits uniform
    return torch.randint(
        -(2**31),
        2**31,
        (*shape[:-1], n_words(shape[-1])),
        dtype=torch.int32,
        device=device,
        generator=generator,
    )


# ---------------------------------------------------------------- the three fused sums


def _forward(v: Tensor, weight: Tensor, words: Tensor) -> Tensor:
    m = unpack_mask(words, weight.shape[1])  # (batch, out, in) bool, never stored when fused
    return torch.where(m, weight, 0.0).mul(v[:, None, :]).sum(-1)  # u = (M_b * W) v_b


def _grad_input(g: Tensor, weight: Tensor, words: Tensor) -> Tensor:
    m = unpack_mask(words, weight.shape[1])
    return torch.where(m, weight, 0.0).mul(g[:, :, None]).sum(1)  # (M_b * W)^T g_b


def _grad_weight(g: Tensor, v: Tensor, words: Tensor) -> Tensor:
    m = unpack_mask(words, v.shape[1])
    return torch.where(m, v[:, None, :], 0.0).mul(g[:, :, None]).sum(0)  # sum_b M_b * g_b v_b^T


_EAGER = {"forward": _forward, "grad_input": _grad_input, "grad_weight": _grad_weight}


@functools.cache
def _compiled(name: str):
    return torch.compile(_EAGER[name], dynamic=False)  # one static kernel per shape


_compile_failed: list[str] = []  # the first failure's message: later calls go eager


def _run(name: str, *args: Tensor, compile: bool | None = None) -> Tensor:
    """Kernel ``name``: compiled when ``compile`` (default: when the problem is large enough
    and compiling has not failed before here), eager otherwise."""
    a, b, words = args
    work = words.shape[0] * words.shape[1] * words.shape[2] * WORD_BITS
    if compile is None:
        env = os.environ.get("SMITHING_DROPCONNECT_COMPILE", "")
        big = work >= COMPILE_MIN_ELEMENTS if env not in ("0", "1") else env == "1"
        compile = big and not _compile_failed
    if compile:
        try:
            return _compiled(name)(*args)
        except Exception as err:  # noqa: BLE001 - no compiler here: the eager kernels still work
            if not _compile_failed:
                _compile_failed.append(f"{type(err).__name__}: {err}".splitlines()[0])
                warnings.warn(
                    "DropConnect: torch.compile failed "
                    f"({_compile_failed[0]}); the per-example masks run eagerly (slower)",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _EAGER[name](*args)


class _PackedDropConnect(torch.autograd.Function):
    """``u = (M_b * W) v_b`` with ``M`` given as packed bits; backward from the saved bits."""

    @staticmethod
    def forward(ctx, v: Tensor, weight: Tensor, words: Tensor, compile: bool | None) -> Tensor:
        ctx.save_for_backward(v, weight, words)
        ctx.compile = compile
        return _run("forward", v, weight, words, compile=compile)  # (batch, out)

    @staticmethod
    def backward(ctx, g: Tensor):
        v, weight, words = ctx.saved_tensors
        g = g.contiguous()
        gv = gw = None
        if ctx.needs_input_grad[0]:
            gv = _run("grad_input", g, weight, words, compile=ctx.compile)  # (batch, in)
        if ctx.needs_input_grad[1]:
            gw = _run("grad_weight", g, v, words, compile=ctx.compile)  # (out, in)
        return gv, gw, None, None


def dropconnect_packed(
    v: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    words: Tensor,
    bias_mask: Tensor | None,
    *,
    compile: bool | None = None,
) -> Tensor:
    """``u = (M * W) v + m_b * b`` (Wan et al. 2013, eq. 1) for per-example masks given as
    packed bits.

    Args:
        v: inputs ``(batch, in)``; cast to ``weight``'s dtype (a bf16 activation from autocast
            meets fp32 master weights here).
        weight: ``(out, in)``; bias ``(out,)`` or None.
        words: the masks, ``(batch, out, ceil(in / 32))`` int32 (:func:`pack_mask`,
            :func:`random_words`).
        bias_mask: ``(batch, out)`` keep mask of the bias, or None (bias always kept).
        compile: fuse with ``torch.compile`` (True), run eagerly (False), or decide by size
            (None).

    Returns:
        ``(batch, out)``. Differentiable in ``v``, ``weight`` and ``bias``.
    """
    v = v.to(weight.dtype).contiguous()
    u = _PackedDropConnect.apply(v, weight, words, compile)  # (batch, out)
    if bias is not None:
        u = u + (bias if bias_mask is None else bias_mask * bias)  # + m_b * b
    return u

"""An explicit, in-memory cache of trained layers of layer-seeded greedy stacks.

Part of the one pretraining API, :mod:`smithing.pretrain.stack` (which re-exports these names):
:func:`~smithing.pretrain.stack.pretrain_stack` with ``seed=`` and ``cache=StackCache()``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import Tensor

from smithing._registry import check
from smithing.pretrain.stack_spec import StackSpec

__all__ = ["StackCache", "tensor_digest"]


# ------------------------------------------------------------------ the cache


def tensor_digest(x: Tensor) -> str:
    """A content key for a tensor: SHA-256 of its shape, dtype and bytes (the CPU copy)."""
    t = x.detach().contiguous().cpu()
    h = hashlib.sha256(f"{tuple(t.shape)}|{t.dtype}|".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class StackCache:
    """Trained layers of layer-seeded stacks (``pretrain_stack(..., seed=...)``), in memory.

    An entry is one trained layer (its state tensors and training history), keyed by
    everything it depends on: the configuration of layers ``0..l`` (:meth:`StackSpec.prefix`),
    the seed, the data (``data_key``, or :func:`tensor_digest` of the data), the validation
    data, the device and the dtype. A greedy layer does not depend on the layers above it, so
    a deeper stack of the same settings reuses a shallower stack's layers: same result, less
    time. At most ``limit`` layers are kept (the least recently used is dropped first).
    ``hits`` / ``misses`` count lookups. The caller owns the cache: nothing in
    :mod:`smithing.pretrain` keeps one (the experiment layer keeps one per process,
    :func:`smithing.experiment.pretrained.stack_cache`).
    """

    def __init__(self, limit: int = 32) -> None:
        check(isinstance(limit, int) and limit > 0, "limit", limit, "a positive int")
        self.limit = limit
        self._entries: OrderedDict[str, tuple[dict[str, Tensor], dict]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(
        spec: StackSpec,
        index: int,
        *,
        seed: int,
        data_key: str,
        device: torch.device | str,
        dtype: torch.dtype,
        valid_key: str | None = None,
    ) -> str:
        """The key of layer ``index`` of ``spec`` (a JSON string)."""
        return json.dumps(
            {
                "spec": spec.prefix(index + 1).to_dict(),
                "seed": int(seed),
                "data": data_key,
                "valid": valid_key,
                "device": str(torch.device(device)),
                "dtype": str(dtype),
            },
            sort_keys=True,
        )

    def get(self, key: str) -> tuple[dict[str, Tensor], dict] | None:
        """``(state tensors, history)`` copies of a cached layer, or None (counted)."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        state, history = entry
        return {k: v.clone() for k, v in state.items()}, copy.deepcopy(history)

    def put(self, key: str, state: Mapping[str, Tensor], history: dict) -> None:
        """Keep copies of a trained layer's state tensors and history under ``key``."""
        self._entries[key] = (
            {k: v.detach().clone() for k, v in state.items()},
            copy.deepcopy(history),
        )
        self._entries.move_to_end(key)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        self._entries.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __repr__(self) -> str:
        return (
            f"StackCache({len(self)}/{self.limit} layers, hits={self.hits}, misses={self.misses})"
        )

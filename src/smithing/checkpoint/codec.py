"""The checkpoint codec: a training state <-> ``(tensors, JSON text)``, nothing unpickled.

:func:`flatten` turns nested dicts, lists, tuples, ``None``, bools, ints (any size), floats
(``nan``, ``inf`` and ``-0.0`` included, bit for bit), strings, torch tensors (moved to the CPU),
NumPy arrays and ``torch.dtype`` into CPU tensors keyed by their path in the state and a JSON
document naming them (``{"$tensor": name}``); :func:`unflatten` is its inverse. The file around
them is :mod:`smithing.checkpoint.files`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["flatten", "unflatten"]

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

"""Trained models as files: safetensors tensors plus a JSON description.

:func:`save_model` writes ``PATH`` (a safetensors file whose header metadata holds the JSON
description under the key ``"smithing"``: the format, the model's kind and architecture, the
training configuration, the final metrics, the software versions) and, for people and tools
that read JSON, the same description beside it as ``PATH.json``. :func:`load_model` rebuilds
the model from ``PATH`` alone. Nothing is unpickled: safetensors holds only tensors.

Kinds are a registry (:data:`MODEL_KINDS`): ``"mlp"`` (:class:`smithing.nn.MLP`) and
``"stack"`` (a greedy DBN / SdA stack, :class:`smithing.pretrain.stack.Stack`) are built in;
:func:`register_kind` adds others. A saved stack or MLP initializes a later network through
the ``pretrained`` initializer's ``"file"`` source: ``smithing train --init pretrained
--init-option source=file --init-option path=PATH``.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import torch
from torch import nn

from smithing._registry import Registry

__all__ = [
    "M",
    "FORMAT",
    "ModelKind",
    "MODEL_KINDS",
    "register_kind",
    "save_model",
    "describe_model",
    "load_model",
]

if TYPE_CHECKING:
    from smithing.nn import MLP
    from smithing.pretrain.stack import Stack

M = TypeVar("M")  # the model type of a kind

FORMAT = "smithing-model/1"


@dataclass(frozen=True)
class ModelKind(Generic[M]):
    """How to save and rebuild one kind of model (of type ``M``)."""

    kind: str
    matches: Callable[[object], bool]  # is this object of this kind (an M)?
    describe: Callable[[M], dict]  # model -> JSON-able architecture
    tensors: Callable[[M], dict[str, torch.Tensor]]  # model -> tensors to save
    build: Callable[[dict, dict[str, torch.Tensor]], M]  # (architecture, tensors) -> model


MODEL_KINDS: Registry[ModelKind[Any]] = Registry("model kind")


def register_kind(kind: ModelKind[M]) -> ModelKind[M]:
    MODEL_KINDS.register(kind.kind, kind)
    return kind


def _build_mlp(arch: dict, tensors: dict[str, torch.Tensor]) -> MLP:
    from smithing.nn import MLP

    model = MLP(**arch)
    model.load_state_dict(tensors, strict=True)
    return model


def _is_mlp(obj) -> bool:
    from smithing.nn import MLP

    return isinstance(obj, MLP)


register_kind(
    ModelKind(
        "mlp",
        _is_mlp,
        lambda m: m.describe(),
        lambda m: m.state_dict(),
        _build_mlp,
    )
)


def _is_stack(obj) -> bool:
    import sys

    mod = sys.modules.get("smithing.pretrain.stack")  # no stack can exist before it is imported
    return mod is not None and isinstance(obj, mod.Stack)


def _build_stack(arch: dict, tensors: dict[str, torch.Tensor]) -> Stack:
    from smithing.pretrain.stack import Stack

    return Stack.from_state(arch, tensors)


register_kind(
    ModelKind(
        "stack",
        _is_stack,
        lambda s: s.describe(),
        lambda s: s.state_tensors(),
        _build_stack,
    )
)


def _kind_of(obj) -> ModelKind:
    for e in MODEL_KINDS.entries():
        if e.obj.matches(obj):
            return e.obj
    raise ValueError(
        f"model of type {type(obj).__name__} cannot be saved: expected one of the kinds "
        f"{', '.join(MODEL_KINDS.names())}"
    )


def _versions() -> dict:
    from smithing._version import __version__

    return {
        "smithing": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def save_model(
    model, path: str | Path, *, config: dict | None = None, metrics: dict | None = None
) -> Path:
    """Write ``model`` to ``path`` (atomically) with its description; returns the path.

    Args:
        model: an :class:`smithing.nn.MLP`, a :class:`smithing.pretrain.stack.Stack`, or an
            object of a registered kind.
        config: the training configuration (JSON-able), kept in the description.
        metrics: the final metrics, kept in the description.
    """
    from safetensors.torch import save_file

    kind = _kind_of(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in kind.tensors(model).items()}
    desc = {
        "format": FORMAT,
        "kind": kind.kind,
        "architecture": kind.describe(model),
        "config": config or {},
        "metrics": metrics or {},
        "versions": _versions(),
    }
    text = json.dumps(desc, default=str, allow_nan=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata={"smithing": text})
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    side = path.with_name(path.name + ".json")
    side_tmp = side.with_name(side.name + f".tmp{os.getpid()}")
    side_tmp.write_text(json.dumps(desc, indent=1, default=str, allow_nan=True))
    os.replace(side_tmp, side)
    return path


def describe_model(path: str | Path) -> dict:
    """The JSON description stored in the model file ``path``."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file {str(path)!r}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a smithing model file ({e})") from None
    if "smithing" not in meta:
        raise ValueError(f"{path}: a safetensors file but not a smithing model (no description)")
    desc = json.loads(meta["smithing"])
    if desc.get("format") != FORMAT:
        raise ValueError(f"{path}: model format {desc.get('format')!r} is not {FORMAT!r}")
    return desc


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the model saved at ``path`` (on ``device``); its description is available as
    :func:`describe_model`."""
    from safetensors.torch import load_file

    desc = describe_model(path)
    kind = MODEL_KINDS.get(desc["kind"])
    tensors = load_file(str(path), device=str(device))
    obj = kind.build(desc["architecture"], tensors)
    if isinstance(obj, nn.Module):
        obj.to(device)
    return obj

"""smithing: the practice of neural smithing on PyTorch.

The tricks that make backprop-trained networks train well (initialization, optimizers,
regularizers, pretraining, ...), each faithful to its paper, measured, and shown by a study.

Trained models as files: ``smithing.save_model(model, path)`` and ``smithing.load_model(path)``
(see :mod:`smithing.models`; imported on first use, so ``import smithing`` stays light).
"""

from smithing._version import __version__

__all__ = ["__version__", "describe_model", "load_model", "save_model"]

_LAZY = {
    "save_model": "smithing.models",
    "load_model": "smithing.models",
    "describe_model": "smithing.models",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'smithing' has no attribute {name!r}")

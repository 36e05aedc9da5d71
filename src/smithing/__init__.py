"""smithing: the practice of neural smithing on PyTorch.

The tricks that make backprop-trained networks train well (initialization, optimizers,
regularizers, pretraining, ...), each faithful to its paper, measured, and shown by a study.

The main entry points, imported on first use (``import smithing`` stays light):

* ``smithing.load_dataset(name)`` (:func:`smithing.data.load`), ``smithing.MLP``,
  ``smithing.fit``, ``smithing.fit_ensemble``, ``smithing.EarlyStopping``, ``smithing.History``
  (what every trainer returns, :mod:`smithing.history`);
* ``smithing.save_model(model, path)``, ``smithing.load_model(path)``,
  ``smithing.describe_model(path)`` (:mod:`smithing.models`);
* ``smithing.run_study(name, ...)`` (:func:`smithing.runner.run_study`; the built-in studies
  are registered first);
* ``smithing.doctor(model, (x, y))`` (:func:`smithing.doctor.doctor`): the gradient
  diagnostics of any model at initialization, one HTML page of findings and advice.
"""

from smithing._version import __version__

#: public name -> (module, attribute)
_LAZY = {
    "load_dataset": ("smithing.data", "load"),
    "MLP": ("smithing.nn", "MLP"),
    "fit": ("smithing.train", "fit"),
    "fit_ensemble": ("smithing.train", "fit_ensemble"),
    "EarlyStopping": ("smithing.train", "EarlyStopping"),
    "History": ("smithing.train", "History"),
    "save_model": ("smithing.models", "save_model"),
    "load_model": ("smithing.models", "load_model"),
    "describe_model": ("smithing.models", "describe_model"),
    "run_study": ("smithing.runner", "run_study"),
    "doctor": ("smithing.doctor", "doctor"),
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        if name == "run_study":
            importlib.import_module("smithing.studies")  # registers the built-in studies
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'smithing' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])

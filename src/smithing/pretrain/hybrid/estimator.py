"""A scikit-learn *style* classifier over :class:`ClassRBM` (no scikit-learn dependency; the
estimator that passes scikit-learn's checks is :class:`smithing.sklearn.ClassRBMClassifier`)."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from smithing._registry import check
from smithing.pretrain.hybrid.modules import (
    ClassRBM,
)
from smithing.pretrain.hybrid.training import (
    chunked,
    train_class_rbm,
)

__all__ = [
    "ClassificationRBM",
]

# ------------------------------------------------------------------ scikit-learn style estimator


def _as_tensor(a, dtype=None) -> Tensor:
    if isinstance(a, Tensor):
        return a.detach().cpu()
    import numpy as np

    return torch.as_tensor(np.asarray(a), dtype=dtype)


class ClassificationRBM:
    """A scikit-learn style classifier over :class:`ClassRBM` and :func:`train_class_rbm`.

    ``fit(X, y, X_unlabeled=None, X_valid=None, y_valid=None)``, ``predict``,
    ``predict_proba`` (the exact ``p(y | x)``), ``predict_log_proba``, ``score`` (accuracy),
    ``get_params`` / ``set_params`` (so ``sklearn.base.clone`` and grid searches work; this
    class does not inherit from sklearn). ``X`` holds inputs in [0, 1] (binary, or
    probabilities), ``y`` any labels (their sorted unique values become ``classes_``).
    ``random_state`` seeds initialization, batch order and sampling (same seed, same model).
    After ``fit``: ``model_`` (the :class:`ClassRBM`), ``classes_``, ``history_`` (the
    :class:`~smithing.history.History` of :func:`train_class_rbm`).

    Deprecated: use :class:`smithing.sklearn.ClassRBMClassifier`, a real
    scikit-learn estimator (it passes scikit-learn's estimator checks, marks unlabeled rows
    ``-1`` as :mod:`sklearn.semi_supervised` does, and has ``partial_fit`` and early
    stopping on a validation fraction). Constructing this class warns
    (``DeprecationWarning``); it will be removed in a later release.
    """

    def __init__(
        self,
        n_hidden: int = 100,
        *,
        objective: str = "hybrid",
        alpha: float = 0.01,
        beta: float = 0.1,
        lr: float = 0.05,
        epochs: int = 20,
        batch_size: int = 20,
        method: str = "cd",
        k: int = 1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        unlabeled_positive: str = "sample",
        early_stopping_patience: int | None = None,
        init_scale: float | None = None,
        random_state: int | None = None,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        warnings.warn(
            "smithing.pretrain.ClassificationRBM is deprecated: use "
            "smithing.sklearn.ClassRBMClassifier (a scikit-learn estimator; unlabeled rows "
            "are marked y = -1 instead of X_unlabeled=)",
            DeprecationWarning,
            stacklevel=2,
        )
        self.n_hidden = n_hidden
        self.objective = objective
        self.alpha = alpha
        self.beta = beta
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.method = method
        self.k = k
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.unlabeled_positive = unlabeled_positive
        self.early_stopping_patience = early_stopping_patience
        self.init_scale = init_scale
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    #: the HybridTraining fields this estimator exposes, then all its parameters
    _TRAINING: tuple[str, ...] = ("objective", "alpha", "beta", "lr", "epochs", "batch_size")
    _TRAINING += ("method", "k")
    _TRAINING += ("momentum", "weight_decay", "unlabeled_positive", "early_stopping_patience")
    _PARAM_NAMES = ("n_hidden", *_TRAINING, "init_scale", "random_state", "device", "dtype")

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._PARAM_NAMES}

    def set_params(self, **params) -> ClassificationRBM:
        for name, value in params.items():
            check(name in self._PARAM_NAMES, "parameter", name, f"one of {self._PARAM_NAMES}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        return f"ClassificationRBM(n_hidden={self.n_hidden}, objective={self.objective!r})"

    def _encode(self, y) -> Tensor:
        import numpy as np

        y = np.asarray(y.cpu() if isinstance(y, Tensor) else y)
        idx = np.searchsorted(self.classes_, y)
        ok = (idx < len(self.classes_)) & (
            self.classes_[np.clip(idx, 0, len(self.classes_) - 1)] == y
        )
        check(bool(ok.all()), "y", "labels not seen in fit", f"labels in {list(self.classes_)}")
        return torch.as_tensor(idx, dtype=torch.long)

    def fit(self, X, y, X_unlabeled=None, X_valid=None, y_valid=None) -> ClassificationRBM:
        import numpy as np

        X = _as_tensor(X, torch.float64)
        self.classes_ = np.unique(np.asarray(y.cpu() if isinstance(y, Tensor) else y))
        check(len(self.classes_) >= 2, "y", f"{len(self.classes_)} class", "at least 2 classes")
        yi = self._encode(y)
        gen = torch.Generator()
        if self.random_state is None:
            gen.seed()
        else:
            gen.manual_seed(int(self.random_state))
        dev = torch.device(self.device)
        self.model_ = ClassRBM(
            X.shape[-1],
            self.n_hidden,
            len(self.classes_),
            init_scale=self.init_scale,
            generator=gen,
            dtype=self.dtype,
        ).to(dev)
        sample_gen = (
            gen
            if dev.type == "cpu"
            else torch.Generator(dev).manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
        )
        xu = None if X_unlabeled is None else _as_tensor(X_unlabeled, torch.float64)
        valid = None
        if X_valid is not None:
            valid = (_as_tensor(X_valid, torch.float64), self._encode(y_valid))
        self.history_ = train_class_rbm(
            self.model_,
            X.to(dev),
            yi.to(dev),
            x_unlabeled=None if xu is None else xu.to(dev),
            valid=valid,
            generator=sample_gen,
            **{name: getattr(self, name) for name in self._TRAINING},
        )
        return self

    def _check_fitted(self) -> None:
        check(hasattr(self, "model_"), "estimator", "not fitted", "call fit(X, y) first")

    @torch.no_grad()
    def predict_log_proba(self, X):
        self._check_fitted()
        X = _as_tensor(X, torch.float64).to(self.model_.W.device)
        return chunked(self.model_.log_proba, X).double().cpu().numpy()

    def predict_proba(self, X):
        import numpy as np

        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        idx = self.predict_log_proba(X).argmax(-1)
        return self.classes_[idx]

    def score(self, X, y) -> float:
        import numpy as np

        return float(
            np.mean(self.predict(X) == np.asarray(y.cpu() if isinstance(y, Tensor) else y))
        )

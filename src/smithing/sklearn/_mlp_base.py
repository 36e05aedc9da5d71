"""The machinery under ``MLPClassifier``, ``MLPRegressor``, ``DBNClassifier``, ``SdAClassifier``:
validation, seeding, the call of :func:`smithing.train.fit`, prediction.

The public classes and their documentation are in :mod:`smithing.sklearn.mlp` and
:mod:`smithing.sklearn.stacks`.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch.nn import functional as F

from smithing import init as _init
from smithing import optim as _optim
from smithing.data.base import Dataset, Split
from smithing.nn import MLP
from smithing.regularize import MaxNorm, Penalty
from smithing.sklearn._base import (
    draw_seed,
    predict_in_chunks,
    resolve_device,
    seeded,
    to_tensor,
    torch_dtype,
    validation_split,
)
from smithing.train import EarlyStopping, fit

__all__ = ["ACTIVATIONS", "INITIALIZERS"]

#: initializers an estimator can apply by name (``pretrained`` needs a source: use DBN / SdA)
INITIALIZERS = tuple(n for n in _init.names() if n != "pretrained")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "elu", "softplus", "linear")


class _BaseMLP(BaseEstimator):
    """The fit / partial_fit machinery shared by the classifier and the regressor."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "init": [StrOptions(set(INITIALIZERS)), None],
        "optimizer": [StrOptions(set(_optim.names()))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "optimizer_options": [dict, None],
        "schedule": [StrOptions(set(_optim.schedule_names())), None],
        "schedule_options": [dict, None],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "restore_best_weights": ["boolean"],
        "l2": [Interval(Real, 0, None, closed="left")],
        "l1": [Interval(Real, 0, None, closed="left")],
        "max_norm": [Interval(Real, 0, None, closed="neither"), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "input_dropout": [Interval(Real, 0, 1, closed="left")],
        "dropconnect": [Interval(Real, 0, 1, closed="left")],
        "dropconnect_inference": [StrOptions({"mean", "gaussian"})],
        "clip_norm": [Interval(Real, 0, None, closed="neither"), None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "device": [str],
    }

    _task = "classification"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        activation="relu",
        init=None,
        optimizer="adam",
        learning_rate_init=0.001,
        optimizer_options=None,
        schedule=None,
        schedule_options=None,
        batch_size="auto",
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        restore_best_weights=True,
        l2=0.0,
        l1=0.0,
        max_norm=None,
        dropout=0.0,
        input_dropout=0.0,
        dropconnect=0.0,
        dropconnect_inference="mean",
        clip_norm=None,
        warm_start=False,
        random_state=None,
        device="auto",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.init = init
        self.optimizer = optimizer
        self.learning_rate_init = learning_rate_init
        self.optimizer_options = optimizer_options
        self.schedule = schedule
        self.schedule_options = schedule_options
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.restore_best_weights = restore_best_weights
        self.l2 = l2
        self.l1 = l1
        self.max_norm = max_norm
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.dropconnect = dropconnect
        self.dropconnect_inference = dropconnect_inference
        self.clip_norm = clip_norm
        self.warm_start = warm_start
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ hooks

    def _targets(self, y, first: bool, classes=None) -> torch.Tensor:
        raise NotImplementedError

    def _score_numpy(self, y_true, y_pred) -> float:
        raise NotImplementedError

    def _build_model(self, X: torch.Tensor, n_outputs: int, generator: torch.Generator):
        """A fresh network for inputs ``X`` (the DBN / SdA estimators pretrain one here)."""
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        model = MLP(
            X.shape[1],
            hidden,
            n_outputs,
            self.activation,
            input_dropout=self.input_dropout,
            dropout=self.dropout,
            dropconnect=self.dropconnect,
            dropconnect_options={"inference": self.dropconnect_inference},
        )
        model.to(device=X.device, dtype=X.dtype)
        if self.init is not None:
            extra = {"data": X[: min(len(X), 500)]} if self.init == "lsuv" else {}
            _init.apply(model, self.init, generator=generator, **extra)
        return model

    # ------------------------------------------------------------------ fitting

    def _fit(self, X, y, *, incremental: bool, classes=None):
        first = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        regression = self._task == "regression"
        X, y = validate_data(
            self,
            X,
            y,
            reset=first,
            dtype=[np.float64, np.float32],
            multi_output=regression,
            y_numeric=regression,
        )
        if first:
            self._random_state = check_random_state(self.random_state)
            self.device_ = resolve_device(self.device)
            self._dtype = torch_dtype(X)
        yt = self._targets(y, first, classes)
        xt = to_tensor(X, self.device_, self._dtype)
        n_outputs = self.n_outputs_
        seed = draw_seed(self._random_state)
        with seeded(seed, self.device_) as generator:
            if first:
                self.model_ = self._build_model(xt, n_outputs, generator)
                self.loss_curve_ = []
                self.n_iter_ = 0
                self.t_ = 0
                self.best_loss_ = np.inf
                self.validation_scores_ = [] if self.early_stopping else None
                self.best_validation_score_ = -np.inf if self.early_stopping else None
                self._optimizer = None
            self._train(xt, yt, seed, incremental)
        return self

    def _train(self, x: torch.Tensor, y: torch.Tensor, seed: int, incremental: bool) -> None:
        n = x.shape[0]
        valid = None
        if self.early_stopping and not incremental:
            labels = y.cpu().numpy() if self._task == "classification" else None
            train_idx, valid_idx = validation_split(n, self.validation_fraction, seed, labels)
            train_idx, valid_idx = torch.as_tensor(train_idx), torch.as_tensor(valid_idx)
            dev = x.device
            valid = Split(x[valid_idx.to(dev)], y[valid_idx.to(dev)])
            x, y = x[train_idx.to(dev)], y[train_idx.to(dev)]
            n = x.shape[0]
        # fit() evaluates a validation split every epoch; without early stopping it gets one
        # training row (a negligible pass), never read
        monitor = valid if valid is not None else Split(x[:1], y[:1])
        data = Dataset(
            "sklearn",
            Split(x, y),
            monitor,
            monitor,
            task=self._task,
            n_classes=self.n_outputs_ if self._task == "classification" else 0,
            input_shape=(x.shape[1],),
        )
        batch = min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)
        regs = []
        if self.l1 > 0 or self.l2 > 0:
            regs.append(Penalty(l2=self.l2, l1=self.l1, n=n))
        if self.max_norm is not None:
            regs.append(MaxNorm(c=self.max_norm))
        if incremental:
            if self._optimizer is None:  # one optimizer across partial_fit calls
                self._optimizer = _optim.make(
                    self.optimizer,
                    self.model_.parameters(),
                    self.learning_rate_init,
                    **(self.optimizer_options or {}),
                )
            epochs, optimizer, stopper = 1, self._optimizer, None
        else:
            epochs, optimizer = int(self.max_iter), self.optimizer
            if valid is not None:
                stopper = EarlyStopping(
                    monitor="valid_loss",
                    patience=int(self.n_iter_no_change),
                    min_delta=float(self.tol),
                    restore_best_weights=self.restore_best_weights,
                )
            else:  # scikit-learn's rule: the training loss stops improving by tol
                stopper = EarlyStopping(
                    monitor="train_loss",
                    patience=int(self.n_iter_no_change),
                    min_delta=float(self.tol),
                    restore_best_weights=False,
                )
        callbacks = []
        if valid is not None:
            callbacks.append(self._validation_callback(valid))
        hist = fit(
            self.model_,
            data,
            epochs=epochs,
            lr=float(self.learning_rate_init),
            batch_size=batch,
            optimizer=optimizer,
            optimizer_options=None if incremental else self.optimizer_options,
            schedule=None if incremental else self.schedule,
            schedule_options=self.schedule_options,
            seed=seed,
            early_stopping=stopper,
            regularizer=regs or None,
            clip_norm=self.clip_norm,
            callbacks=callbacks,
            device=x.device,
            final_eval=False,
        )
        self.model_.eval()
        self.history_ = hist
        losses = [rec["train_loss"] for rec in hist.epochs]
        self.loss_curve_.extend(losses)
        self.n_iter_ += len(losses)
        self.t_ += n * len(losses)
        if losses:
            self.best_loss_ = min(self.best_loss_, float(np.nanmin(losses)))
        if valid is not None and self.validation_scores_:
            self.best_validation_score_ = max(self.validation_scores_)
        if hist.status == "diverged":
            warnings.warn(f"training diverged: {hist.message}", RuntimeWarning, stacklevel=3)
        elif not incremental and hist.stop_reason not in ("patience", "callback"):
            warnings.warn(
                f"the optimizer reached max_iter={self.max_iter} epochs without converging",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _validation_callback(self, valid: Split):
        def record(epoch: int, rec: dict, model) -> None:
            model.eval()
            pred = self._decode(predict_in_chunks(model, valid.x))
            truth = self._decode_targets(valid.y)
            self.validation_scores_.append(self._score_numpy(truth, pred))
            model.train()

        return record

    # ------------------------------------------------------------------ prediction

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        xt = to_tensor(X, self.device_, self._dtype)
        self.model_.eval()
        return predict_in_chunks(self.model_, xt)  # (n, n_outputs) float64


def _hidden_sizes(sizes) -> tuple[int, ...]:
    sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
    if not all(isinstance(s, Integral) and s > 0 for s in sizes):
        raise ValueError(
            f"hidden_layer_sizes={sizes!r} is invalid: expected positive ints, e.g. (100,)"
        )
    return tuple(int(s) for s in sizes)


class _ClassifierBase(ClassifierMixin, _BaseMLP):
    """fit / predict / predict_proba of the MLP-based classifiers (MLP, DBN, SdA)."""

    _task = "classification"

    def _targets(self, y, first: bool, classes=None) -> torch.Tensor:
        check_classification_targets(y)
        if first:
            self._label_encoder = LabelEncoder().fit(y if classes is None else classes)
            self.classes_ = self._label_encoder.classes_
            self.n_outputs_ = len(self.classes_)
        unseen = np.setdiff1d(y, self.classes_)
        if len(unseen):
            raise ValueError(
                f"y contains labels {unseen.tolist()} not in classes_ {self.classes_.tolist()}"
            )
        return torch.as_tensor(self._label_encoder.transform(y), device=self.device_)

    def _decode(self, out: np.ndarray) -> np.ndarray:
        return self.classes_[out.argmax(-1)]

    def _decode_targets(self, y: torch.Tensor) -> np.ndarray:
        return self.classes_[y.cpu().numpy()]

    def _score_numpy(self, y_true, y_pred) -> float:
        return float(accuracy_score(y_true, y_pred))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train on ``X (n_samples, n_features)`` and labels ``y (n_samples,)``.

        Returns:
            self.
        """
        return self._fit(X, y, incremental=False)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, ``softmax`` of the network's outputs, ``(n_samples, n_classes)``.

        Returns:
            a float64 array whose columns follow ``classes_``.
        """
        logits = torch.from_numpy(self._forward(X))
        return F.softmax(logits, dim=-1).numpy()

    def predict_log_proba(self, X) -> np.ndarray:
        """``log predict_proba(X)``, computed as a log-softmax (no underflow)."""
        logits = torch.from_numpy(self._forward(X))
        return F.log_softmax(logits, dim=-1).numpy()

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row.

        Returns:
            labels of ``classes_``' dtype, ``(n_samples,)``.
        """
        return self._decode(self._forward(X))

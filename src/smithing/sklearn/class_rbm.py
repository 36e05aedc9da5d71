"""``ClassRBMClassifier``: the classification RBM over :func:`smithing.pretrain.train_class_rbm`."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from smithing.pretrain import ClassRBM, train_class_rbm
from smithing.sklearn._base import (
    draw_seed,
    predict_in_chunks,
    resolve_device,
    seeded,
    to_tensor,
    torch_dtype,
    validation_split,
)

__all__ = ["UNLABELED", "ClassRBMClassifier"]

#: scikit-learn's mark of an unlabeled example in semi-supervised learning
UNLABELED = -1


class ClassRBMClassifier(ClassifierMixin, BaseEstimator):
    """The classification RBM: a joint model of inputs, a label and binary hidden units.

    Energy ``E(y, x, h) = -h^T W x - b^T x - c^T h - d^T e_y - h^T U e_y``; the hidden units
    sum out in closed form, so the class posterior is exact,
    ``p(y | x) = softmax_y(d_y + sum_j softplus(c_j + U_jy + (W x)_j))``, and it is what
    :meth:`predict_proba` returns. The training objective (maximized by SGD):

    * ``"generative"``: ``sum log p(y, x)``, gradient by CD-k / PCD on the joint chain;
    * ``"discriminative"``: ``sum log p(y | x)``, the exact gradient;
    * ``"hybrid"``: ``sum log p(y | x) + alpha sum log p(y, x)``;
    * **semi-supervised**: examples whose label is ``-1`` (scikit-learn's mark, as in
      :mod:`sklearn.semi_supervised`) are unlabeled and add ``beta sum log p(x)``, estimated
      by CD with the positive-phase label drawn from ``p(y | x)`` (``unlabeled_positive=
      "sample"``, the paper's) or averaged over it exactly (``"expected"``).

    Args:
        n_components: hidden units.
        objective: ``"generative"``, ``"discriminative"`` or ``"hybrid"``.
        alpha: the generative weight of the hybrid objective.
        beta: the weight of the unlabeled examples' ``log p(x)``.
        learning_rate: the SGD step.
        n_iter: epochs.
        batch_size: labeled (and unlabeled) examples per mini-batch.
        method: ``"cd"`` or ``"pcd"``.
        k: Gibbs sweeps per update.
        momentum: the update's momentum.
        weight_decay: an L2 penalty on ``W`` and ``U``.
        unlabeled_positive: ``"sample"`` or ``"expected"`` (see above).
        early_stopping: hold out a (stratified when possible) ``validation_fraction`` of the
            labeled examples, keep the epoch of lowest validation error and stop after
            ``n_iter_no_change`` epochs without improvement.
        validation_fraction: the held-out share of the labeled examples.
        n_iter_no_change: the patience, in epochs.
        warm_start: ``fit`` continues from the previous parameters.
        random_state: seeds initialization, batch order and sampling: the same seed gives the
            same model.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    Inputs are binary or in [0, 1] (the visible units are Bernoulli).

    Attributes:
        model_: the trained :class:`smithing.pretrain.ClassRBM`.
        classes_: the class labels (``-1`` excluded).
        history_: per-epoch metrics of the last ``fit`` / ``partial_fit``.
        n_iter_: epochs run over all calls.
        n_features_in_: input features.

    References:
        Larochelle & Bengio, "Classification using discriminative restricted Boltzmann
        machines", ICML 2008. Larochelle, Mandel, Pascanu & Bengio, "Learning algorithms for
        the classification restricted Boltzmann machine", JMLR 13, 2012.

    Example:
        >>> import numpy as np
        >>> from smithing.sklearn import ClassRBMClassifier
        >>> rng = np.random.RandomState(0)
        >>> y = rng.randint(2, size=200)
        >>> X = (rng.rand(200, 10) < np.where(y[:, None] == 1, 0.8, 0.2)).astype(float)
        >>> y_semi = np.where(rng.rand(200) < 0.5, -1, y)  # half unlabeled
        >>> clf = ClassRBMClassifier(n_components=16, n_iter=30, learning_rate=0.1,
        ...                          random_state=0, device="cpu").fit(X, y_semi)
        >>> clf.classes_.tolist(), bool(clf.score(X, y) > 0.9)
        ([0, 1], True)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "objective": [StrOptions({"generative", "discriminative", "hybrid"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"cd", "pcd"})],
        "k": [Interval(Integral, 1, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "unlabeled_positive": [StrOptions({"sample", "expected"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "device": [str],
    }

    def __init__(
        self,
        n_components=100,
        *,
        objective="hybrid",
        alpha=0.01,
        beta=0.1,
        learning_rate=0.05,
        n_iter=20,
        batch_size=20,
        method="cd",
        k=1,
        momentum=0.0,
        weight_decay=0.0,
        unlabeled_positive="sample",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        warm_start=False,
        random_state=None,
        device="auto",
    ):
        self.n_components = n_components
        self.objective = objective
        self.alpha = alpha
        self.beta = beta
        self.learning_rate = learning_rate
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.method = method
        self.k = k
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.unlabeled_positive = unlabeled_positive
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.random_state = random_state
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train on ``X (n_samples, n_features)`` and labels ``y``; rows labeled ``-1`` are
        unlabeled (semi-supervised, weighted by ``beta``).

        Returns:
            self.

        Raises:
            ValueError: when fewer than two classes are labeled.
        """
        first = not (self.warm_start and hasattr(self, "model_"))
        return self._fit(X, y, epochs=int(self.n_iter), first=first, classes=None)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None):
        """One epoch over ``(X, y)`` (rows labeled ``-1`` unlabeled), continuing from the
        current parameters: training on a stream of mini-batches or of chunks too large to
        fit at once.

        No early stopping (there is no held-out set within one call). The update's momentum
        restarts at each call (the trainer's momentum buffer lives for one call); with
        ``momentum=0`` consecutive calls are plain SGD over the concatenated stream.

        Args:
            X: ``(n_samples, n_features)``.
            y: labels, ``-1`` for unlabeled rows.
            classes: every label the classifier will see (``-1`` excluded); required on the
                first call, as in scikit-learn's ``partial_fit``.

        Returns:
            self.

        Raises:
            ValueError: ``classes`` missing on the first call, or with fewer than two labels;
                a label of ``y`` not in ``classes``.
        """
        if not hasattr(self, "model_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            classes = np.unique(np.asarray(classes))
            return self._fit(X, y, epochs=1, first=True, classes=classes, incremental=True)
        return self._fit(X, y, epochs=1, first=False, classes=None, incremental=True)

    def _fit(self, X, y, *, epochs: int, first: bool, classes, incremental: bool = False):
        X, y = validate_data(self, X, y, reset=first, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        unlabeled = _unlabeled_mask(y)
        y_lab = y[~unlabeled]
        if first:
            self._label_encoder = LabelEncoder().fit(y_lab if classes is None else classes)
            self.classes_ = self._label_encoder.classes_
            if len(self.classes_) < 2:
                raise ValueError(
                    f"ClassRBMClassifier needs at least 2 labeled classes; got "
                    f"{len(self.classes_)} class ({self.classes_.tolist()})"
                )
            self._random_state = check_random_state(self.random_state)
            self.device_ = resolve_device(self.device)
            self._dtype = torch_dtype(X)
            self.n_iter_ = 0
        unseen = np.setdiff1d(y_lab, self.classes_)
        if len(unseen):
            raise ValueError(f"y contains labels {unseen.tolist()} not in classes_")
        seed = draw_seed(self._random_state)
        X_lab, yi = X[~unlabeled], self._label_encoder.transform(y_lab)
        valid = None
        if self.early_stopping and not incremental:
            tr, va = validation_split(len(yi), self.validation_fraction, seed, yi)
            valid = (self._tensor(X_lab[va]), torch.as_tensor(yi[va], device=self.device_))
            X_lab, yi = X_lab[tr], yi[tr]
        x_u = self._tensor(X[unlabeled]) if unlabeled.any() else None
        if len(yi) == 0:
            raise ValueError(
                "y has no labeled row (every label is -1): at least one labeled example is "
                "needed per call"
            )
        with seeded(seed, self.device_) as gen:
            if first:
                self.model_ = ClassRBM(
                    X.shape[1],
                    int(self.n_components),
                    len(self.classes_),
                    generator=gen,
                    device=self.device_,
                    dtype=self._dtype,
                )
            self.history_ = train_class_rbm(
                self.model_,
                self._tensor(X_lab),
                torch.as_tensor(yi, device=self.device_),
                x_unlabeled=x_u,
                valid=valid,
                generator=gen,
                objective=self.objective,
                alpha=float(self.alpha),
                beta=float(self.beta),
                lr=float(self.learning_rate),
                epochs=epochs,
                batch_size=min(int(self.batch_size), len(X_lab)),
                method=self.method,
                k=int(self.k),
                momentum=float(self.momentum),
                weight_decay=float(self.weight_decay),
                unlabeled_positive=self.unlabeled_positive,
                early_stopping_patience=int(self.n_iter_no_change) if valid else None,
            )
        self.n_iter_ += self.history_.epochs_run
        return self

    def _tensor(self, X: np.ndarray) -> torch.Tensor:
        return to_tensor(X, self.device_, self._dtype)

    def predict_log_proba(self, X) -> np.ndarray:
        """The exact ``log p(y | x)``, ``(n_samples, n_classes)``, float64."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return predict_in_chunks(self.model_.log_proba, self._tensor(X))

    def predict_proba(self, X) -> np.ndarray:
        """The exact ``p(y | x)``, columns in the order of ``classes_``, float64."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        """``argmax_y p(y | x)``, labels of ``classes_``."""
        log_proba = self.predict_log_proba(X)  # checks that the model is fitted
        return self.classes_[log_proba.argmax(-1)]


def _unlabeled_mask(y: np.ndarray) -> np.ndarray:
    """Rows marked ``-1`` (numeric labels only: a string label is never "unlabeled")."""
    if y.dtype.kind in "iuf":
        return y == UNLABELED
    return np.zeros(len(y), dtype=bool)

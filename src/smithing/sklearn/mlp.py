"""``MLPClassifier`` and ``MLPRegressor``: :func:`smithing.train.fit` as scikit-learn estimators.

Every trick of the library is a parameter: the initializer by name (:mod:`smithing.init`), the
optimizer and its learning-rate schedule (:mod:`smithing.optim`), early stopping on a held-out
``validation_fraction`` with the best weights restored (:class:`smithing.train.EarlyStopping`),
L1 / L2 penalties (:class:`smithing.regularize.Penalty`), max-norm
(:class:`smithing.regularize.MaxNorm`), dropout and DropConnect (:class:`smithing.nn.MLP`) and
gradient clipping. The training loop is the library's own :func:`~smithing.train.fit`: the data
live on the training device as tensors and a mini-batch is an index into them (no DataLoader).
The shared machinery is in :mod:`smithing.sklearn._mlp_base`.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score

from smithing.sklearn._base import to_tensor
from smithing.sklearn._mlp_base import _BaseMLP, _ClassifierBase

__all__ = ["MLPClassifier", "MLPRegressor"]


class MLPClassifier(_ClassifierBase):
    """A multilayer perceptron classifier trained by :func:`smithing.train.fit`.

    Softmax outputs and the cross-entropy loss (Rumelhart, Hinton & Williams, "Learning
    representations by back-propagating errors", Nature, 1986), with the tricks of the library
    as parameters.

    Args:
        hidden_layer_sizes: the hidden layers' sizes, e.g. ``(100,)`` or ``(500, 500)``.
        activation: the hidden units' activation (``relu``, ``tanh``, ``sigmoid``,
            ``leaky_relu``, ``elu``, ``softplus``, ``linear``).
        init: an initializer of :mod:`smithing.init` by name (``glorot_uniform``,
            ``he_normal``, ``lecun_normal``, ``orthogonal``, ``sparse``, ``lsuv`` (on the first
            500 training rows), ...); None keeps PyTorch's default ``nn.Linear`` init.
        optimizer: a :mod:`smithing.optim` name (``sgd``, ``momentum``, ``nesterov``,
            ``adagrad``, ``rmsprop``, ``adam``, ``adadelta``, ``adamw``).
        learning_rate_init: the learning rate.
        optimizer_options: the optimizer's options, e.g. ``{"momentum": 0.9}``.
        schedule: a :mod:`smithing.optim` schedule name stepped once per epoch (``step``,
            ``exponential``, ``inverse-time``, ``cosine``, ``warmup``, ``warmup-cosine``);
            ignored by ``partial_fit``.
        schedule_options: the schedule's options.
        batch_size: mini-batch size; ``"auto"`` is ``min(200, n_samples)`` (scikit-learn's).
        max_iter: epochs (passes over the training data) at most.
        tol: stop when the monitored loss has not improved by more than ``tol`` for
            ``n_iter_no_change`` epochs in a row: the training loss, or the validation loss with
            ``early_stopping``.
        n_iter_no_change: the patience of that rule, in epochs.
        early_stopping: hold out ``validation_fraction`` of the training data (stratified for
            a classifier when the classes allow it) and stop on its loss (Prechelt, "Early
            stopping - but when?", Neural Networks: Tricks of the Trade, 1998);
            ``validation_scores_`` records its accuracy (classifier) or R^2 (regressor) each
            epoch.
        validation_fraction: the held-out share of the training data.
        restore_best_weights: with ``early_stopping``, end with the best epoch's weights
            (whatever ended training).
        l2: the penalty ``l2 / (2 n) sum w^2`` over the weight matrices, ``n`` the
            training-set size (:class:`smithing.regularize.Penalty`); scikit-learn's ``alpha``
            divides by the batch size instead.
        l1: the penalty ``l1 / n sum |w|`` over the weight matrices.
        max_norm: project each unit's incoming weight vector (every layer) onto the ball of
            this radius after every step (Srivastava et al., "Dropout: a simple way to prevent
            neural networks from overfitting", JMLR 15, 2014).
        dropout: drop probability of the hidden units (inverted dropout: scaled by
            ``1 / (1 - p)`` at training time; Srivastava et al. 2014).
        input_dropout: drop probability of the inputs.
        dropconnect: drop probability of each hidden layer's weights (Wan, Zeiler, Zhang, LeCun
            & Fergus, "Regularization of neural networks using DropConnect", ICML 2013).
        dropconnect_inference: ``"mean"`` (deterministic, the default here: predictions do
            not depend on a random draw) or ``"gaussian"`` (the paper's moment matching,
            stochastic).
        clip_norm: clip the global gradient norm to this value (Pascanu, Mikolov & Bengio, "On
            the difficulty of training recurrent neural networks", ICML 2013).
        warm_start: ``fit`` continues from the previous weights (a fresh optimizer).
        random_state: seeds the initialization, the data order, dropout masks and the
            validation split: the same seed gives the same model (bitwise on CPU). The
            caller's global torch generator is left as it was.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    Inputs of dtype float32 train in float32, every other dtype in float64 (as scikit-learn's
    MLP); predictions are float64.

    Attributes:
        model_: the trained :class:`smithing.nn.MLP` (in eval mode).
        history_: the :class:`smithing.train.History` of the last ``fit`` / ``partial_fit``.
        loss_curve_: the training loss of every epoch, over all calls.
        n_iter_: epochs run, over all calls (``partial_fit`` runs one).
        t_: training samples seen.
        best_loss_: the lowest training loss seen.
        validation_scores_: with ``early_stopping``, the score on the held-out data each epoch
            (else None).
        best_validation_score_: their maximum.
        n_features_in_: input features, as in every scikit-learn estimator.
        n_outputs_: the network's outputs.
        device_: the ``torch.device`` it trained on.
        classes_: the class labels.

    References:
        Rumelhart, Hinton & Williams, "Learning representations by back-propagating errors",
        Nature 323, 1986. Glorot & Bengio, "Understanding the difficulty of training deep
        feedforward neural networks", AISTATS 2010. Prechelt, "Early stopping - but when?",
        Neural Networks: Tricks of the Trade, LNCS 1524, 1998. Srivastava, Hinton, Krizhevsky,
        Sutskever & Salakhutdinov, "Dropout: a simple way to prevent neural networks from
        overfitting", JMLR 15, 2014. Wan, Zeiler, Zhang, LeCun & Fergus, "Regularization of
        neural networks using DropConnect", ICML 2013. Pascanu, Mikolov & Bengio, "On the
        difficulty of training recurrent neural networks", ICML 2013.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> from smithing.sklearn import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier((32,), learning_rate_init=0.01, max_iter=50, random_state=0,
        ...                     device="cpu").fit(X, y)
        >>> clf.predict(X[:3]).tolist(), clf.n_iter_ <= 50
        ([0, 0, 0], True)
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None):
        """One epoch over ``(X, y)``, keeping the optimizer's state between calls.

        Args:
            classes: every label the classifier will see; required on the first call.

        Returns:
            self.
        """
        if not hasattr(self, "model_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            return self._fit(X, y, incremental=True, classes=np.asarray(classes))
        return self._fit(X, y, incremental=True)


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor trained by :func:`smithing.train.fit`.

    Linear outputs and the mean squared error, one output per target column, with the tricks of
    the library as parameters.

    Args:
        hidden_layer_sizes: the hidden layers' sizes, e.g. ``(100,)`` or ``(500, 500)``.
        activation: the hidden units' activation (``relu``, ``tanh``, ``sigmoid``,
            ``leaky_relu``, ``elu``, ``softplus``, ``linear``).
        init: an initializer of :mod:`smithing.init` by name (``glorot_uniform``,
            ``he_normal``, ``lecun_normal``, ``orthogonal``, ``sparse``, ``lsuv`` (on the first
            500 training rows), ...); None keeps PyTorch's default ``nn.Linear`` init.
        optimizer: a :mod:`smithing.optim` name (``sgd``, ``momentum``, ``nesterov``,
            ``adagrad``, ``rmsprop``, ``adam``, ``adadelta``, ``adamw``).
        learning_rate_init: the learning rate.
        optimizer_options: the optimizer's options, e.g. ``{"momentum": 0.9}``.
        schedule: a :mod:`smithing.optim` schedule name stepped once per epoch (``step``,
            ``exponential``, ``inverse-time``, ``cosine``, ``warmup``, ``warmup-cosine``);
            ignored by ``partial_fit``.
        schedule_options: the schedule's options.
        batch_size: mini-batch size; ``"auto"`` is ``min(200, n_samples)`` (scikit-learn's).
        max_iter: epochs (passes over the training data) at most.
        tol: stop when the monitored loss has not improved by more than ``tol`` for
            ``n_iter_no_change`` epochs in a row: the training loss, or the validation loss with
            ``early_stopping``.
        n_iter_no_change: the patience of that rule, in epochs.
        early_stopping: hold out ``validation_fraction`` of the training data (stratified for
            a classifier when the classes allow it) and stop on its loss (Prechelt, "Early
            stopping - but when?", Neural Networks: Tricks of the Trade, 1998);
            ``validation_scores_`` records its accuracy (classifier) or R^2 (regressor) each
            epoch.
        validation_fraction: the held-out share of the training data.
        restore_best_weights: with ``early_stopping``, end with the best epoch's weights
            (whatever ended training).
        l2: the penalty ``l2 / (2 n) sum w^2`` over the weight matrices, ``n`` the
            training-set size (:class:`smithing.regularize.Penalty`); scikit-learn's ``alpha``
            divides by the batch size instead.
        l1: the penalty ``l1 / n sum |w|`` over the weight matrices.
        max_norm: project each unit's incoming weight vector (every layer) onto the ball of
            this radius after every step (Srivastava et al., "Dropout: a simple way to prevent
            neural networks from overfitting", JMLR 15, 2014).
        dropout: drop probability of the hidden units (inverted dropout: scaled by
            ``1 / (1 - p)`` at training time; Srivastava et al. 2014).
        input_dropout: drop probability of the inputs.
        dropconnect: drop probability of each hidden layer's weights (Wan, Zeiler, Zhang, LeCun
            & Fergus, "Regularization of neural networks using DropConnect", ICML 2013).
        dropconnect_inference: ``"mean"`` (deterministic, the default here: predictions do
            not depend on a random draw) or ``"gaussian"`` (the paper's moment matching,
            stochastic).
        clip_norm: clip the global gradient norm to this value (Pascanu, Mikolov & Bengio, "On
            the difficulty of training recurrent neural networks", ICML 2013).
        warm_start: ``fit`` continues from the previous weights (a fresh optimizer).
        random_state: seeds the initialization, the data order, dropout masks and the
            validation split: the same seed gives the same model (bitwise on CPU). The
            caller's global torch generator is left as it was.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    Inputs of dtype float32 train in float32, every other dtype in float64 (as scikit-learn's
    MLP); predictions are float64.

    Attributes:
        model_: the trained :class:`smithing.nn.MLP` (in eval mode).
        history_: the :class:`smithing.train.History` of the last ``fit`` / ``partial_fit``.
        loss_curve_: the training loss of every epoch, over all calls.
        n_iter_: epochs run, over all calls (``partial_fit`` runs one).
        t_: training samples seen.
        best_loss_: the lowest training loss seen.
        validation_scores_: with ``early_stopping``, the score on the held-out data each epoch
            (else None).
        best_validation_score_: their maximum.
        n_features_in_: input features, as in every scikit-learn estimator.
        n_outputs_: the network's outputs.
        device_: the ``torch.device`` it trained on.

    References:
        Rumelhart, Hinton & Williams, "Learning representations by back-propagating errors",
        Nature 323, 1986. Glorot & Bengio, "Understanding the difficulty of training deep
        feedforward neural networks", AISTATS 2010. Prechelt, "Early stopping - but when?",
        Neural Networks: Tricks of the Trade, LNCS 1524, 1998. Srivastava, Hinton, Krizhevsky,
        Sutskever & Salakhutdinov, "Dropout: a simple way to prevent neural networks from
        overfitting", JMLR 15, 2014. Wan, Zeiler, Zhang, LeCun & Fergus, "Regularization of
        neural networks using DropConnect", ICML 2013. Pascanu, Mikolov & Bengio, "On the
        difficulty of training recurrent neural networks", ICML 2013.

    Example:
        >>> import numpy as np
        >>> from smithing.sklearn import MLPRegressor
        >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
        >>> reg = MLPRegressor((32,), learning_rate_init=0.01, max_iter=300, random_state=0,
        ...                    device="cpu").fit(X, X.ravel() ** 2)
        >>> bool(reg.score(X, X.ravel() ** 2) > 0.9)
        True
    """

    _task = "regression"

    def _targets(self, y, first: bool, classes=None) -> torch.Tensor:
        if first:
            self._y_ndim = y.ndim
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        width = 1 if y.ndim == 1 else y.shape[1]
        if width != self.n_outputs_:
            raise ValueError(f"y has {width} targets; the model was fitted on {self.n_outputs_}")
        return to_tensor(y, self.device_, self._dtype)

    def _decode(self, out: np.ndarray) -> np.ndarray:
        return out.ravel() if self._y_ndim == 1 else out

    def _decode_targets(self, y: torch.Tensor) -> np.ndarray:
        return y.double().cpu().numpy()

    def _score_numpy(self, y_true, y_pred) -> float:
        return float(r2_score(y_true, y_pred))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train on ``X (n_samples, n_features)`` and targets ``y (n_samples,)`` or
        ``(n_samples, n_targets)``.

        Returns:
            self.
        """
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y):
        """One epoch over ``(X, y)``, keeping the optimizer's state between calls.

        Returns:
            self.
        """
        return self._fit(X, y, incremental=True)

    def predict(self, X) -> np.ndarray:
        """The network's outputs, ``(n_samples,)`` or ``(n_samples, n_targets)`` as ``y`` was.

        Returns:
            a float64 array.
        """
        return self._decode(self._forward(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

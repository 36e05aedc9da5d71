"""``DBNClassifier`` and ``SdAClassifier``: greedy layer-wise pretraining, then fine-tuning.

Both run the library's one pretraining path (:class:`smithing.pretrain.StackSpec` ->
:func:`smithing.pretrain.pretrain_stack` -> :meth:`~smithing.pretrain.Stack.to_mlp`) and then
fine-tune the unrolled sigmoid MLP with :func:`smithing.train.fit`, exactly as
:class:`~smithing.sklearn.MLPClassifier` trains (same fine-tuning parameters and attributes).
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from smithing.pretrain import StackSpec, pretrain_stack
from smithing.sklearn._mlp_base import _BaseMLP, _ClassifierBase, _hidden_sizes
from smithing.sklearn.autoencoder import CORRUPTIONS, reconstruction_loss_for

__all__ = ["DBNClassifier", "SdAClassifier"]

#: the fine-tuning parameters of the MLP estimators (activation and init are the stack's)
_FINETUNE = {
    k: v for k, v in _BaseMLP._parameter_constraints.items() if k not in ("activation", "init")
}


class _StackClassifier(_ClassifierBase):
    _kind = "dbn"

    def _layer_settings(self, n: int) -> dict:
        """Every layer's pretraining settings: the shared epochs / lr / batch size, then the
        kind's own (:meth:`_kind_settings`)."""
        return {
            "epochs": int(self.pretrain_epochs),
            "lr": float(self.pretrain_learning_rate),
            "batch_size": min(int(self.pretrain_batch_size), n),
            **self._kind_settings(),
        }

    def _kind_settings(self) -> dict:
        raise NotImplementedError

    def _options(self, X: torch.Tensor) -> dict:
        return {}

    def _build_model(self, X: torch.Tensor, n_outputs: int, generator: torch.Generator):
        sizes = [X.shape[1], *_hidden_sizes(self.hidden_layer_sizes)]
        spec = StackSpec(
            self._kind,
            sizes,
            layers=self._layer_settings(X.shape[0]),
            activation="sigmoid",
            options=self._options(X),
        )
        self.stack_ = pretrain_stack(spec, X, generator=generator)
        return self.stack_.to_mlp(
            n_outputs,
            generator=generator,
            input_dropout=self.input_dropout,
            dropout=self.dropout,
            dropconnect=self.dropconnect,
            dropconnect_options={"inference": self.dropconnect_inference},
        ).to(device=X.device, dtype=X.dtype)


class DBNClassifier(_StackClassifier):
    """A deep belief network: RBMs pretrained greedily, unrolled into a sigmoid MLP, fine-tuned.

    Layer ``l`` is an RBM trained by CD-k / PCD (:func:`smithing.pretrain.train_rbm`) on the
    hidden probabilities of layer ``l - 1`` for the training data; the stack's encoders
    ``p(h | v) = sigmoid(v W + c)`` become the MLP's hidden layers, a fresh softmax layer goes on
    top, and the whole network is fine-tuned by backpropagation.

    Args:
        hidden_layer_sizes: the RBMs' hidden sizes, bottom to top.
        visible: the bottom RBM's visible units, ``"bernoulli"`` (inputs in [0, 1]) or
            ``"gaussian"`` (standardized inputs).
        pretrain_epochs: each RBM's epochs.
        pretrain_learning_rate: each RBM's learning rate.
        pretrain_batch_size: each RBM's mini-batch size.
        pretrain_method: ``"cd"`` or ``"pcd"``.
        pretrain_k: Gibbs sweeps per update.
        pretrain_momentum: momentum (Hinton's guide, Sec. 9).
        pretrain_weight_decay: L2 weight cost (Hinton's guide, Sec. 10).

    Fine-tuning (as :class:`~smithing.sklearn.MLPClassifier`): ``optimizer``,
    ``learning_rate_init``, ``optimizer_options``, ``schedule``, ``schedule_options``,
    ``batch_size``, ``max_iter``, ``tol``, ``n_iter_no_change``, ``early_stopping``,
    ``validation_fraction``, ``restore_best_weights``, ``l2``, ``l1``, ``max_norm``,
    ``dropout``, ``input_dropout``, ``dropconnect``, ``dropconnect_inference``, ``clip_norm``,
    ``warm_start`` (continue fine-tuning, no new pretraining), ``random_state`` (seeds
    pretraining and fine-tuning: the same seed gives the same model), ``device``.
    Attributes:
        stack_: the pretrained :class:`smithing.pretrain.Stack` (its ``module`` is a
            :class:`smithing.pretrain.DBN`), kept as pretrained.
        model_: the fine-tuned :class:`smithing.nn.MLP`; ``history_``, ``loss_curve_``,
            ``n_iter_``, ``validation_scores_``, ``classes_`` as
            :class:`~smithing.sklearn.MLPClassifier`'s, for the fine-tuning.

    References:
        Hinton, Osindero & Teh, "A fast learning algorithm for deep belief nets", Neural
        Computation 18, 2006. Hinton & Salakhutdinov, "Reducing the dimensionality of data with
        neural networks", Science 313, 2006. Bengio, Lamblin, Popovici & Larochelle, "Greedy
        layer-wise training of deep networks", NIPS 2007.

    Example:
        >>> from sklearn.datasets import load_digits
        >>> from smithing.sklearn import DBNClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> dbn = DBNClassifier((32,), pretrain_epochs=1, max_iter=5, learning_rate_init=0.01,
        ...                     random_state=0, device="cpu").fit(X[:300] / 16, y[:300])
        >>> dbn.model_.sizes, len(dbn.loss_curve_)
        ((64, 32, 10), 5)
    """

    _kind = "dbn"
    _parameter_constraints: dict = {
        **_FINETUNE,
        "visible": [StrOptions({"bernoulli", "gaussian"})],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "pretrain_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "pretrain_batch_size": [Interval(Integral, 1, None, closed="left")],
        "pretrain_method": [StrOptions({"cd", "pcd"})],
        "pretrain_k": [Interval(Integral, 1, None, closed="left")],
        "pretrain_momentum": [Interval(Real, 0, 1, closed="left")],
        "pretrain_weight_decay": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes=(256,),
        *,
        visible="bernoulli",
        pretrain_epochs=10,
        pretrain_learning_rate=0.05,
        pretrain_batch_size=20,
        pretrain_method="cd",
        pretrain_k=1,
        pretrain_momentum=0.5,
        pretrain_weight_decay=0.0,
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
        self.visible = visible
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_learning_rate = pretrain_learning_rate
        self.pretrain_batch_size = pretrain_batch_size
        self.pretrain_method = pretrain_method
        self.pretrain_k = pretrain_k
        self.pretrain_momentum = pretrain_momentum
        self.pretrain_weight_decay = pretrain_weight_decay
        _set_finetune(self, locals())

    def _kind_settings(self) -> dict:
        return {
            "method": self.pretrain_method,
            "k": int(self.pretrain_k),
            "momentum": float(self.pretrain_momentum),
            "weight_decay": float(self.pretrain_weight_decay),
        }

    def _options(self, X: torch.Tensor) -> dict:
        return {"visible": self.visible}


class SdAClassifier(_StackClassifier):
    """Stacked denoising autoencoders, pretrained greedily, unrolled into an MLP, fine-tuned.

    Layer ``l`` is a denoising autoencoder (:class:`~smithing.sklearn.DenoisingAutoencoder`'s
    training: corrupt, encode, reconstruct the clean input) trained on the codes of layer
    ``l - 1``; the encoders become the MLP's sigmoid hidden layers under a fresh softmax layer,
    and the network is fine-tuned by backpropagation.

    Args:
        hidden_layer_sizes: the autoencoders' code sizes, bottom to top.
        corruption: each layer's corruption process.
        corruption_rate: its rate.
        reconstruction_loss: the bottom layer's loss (``"auto"``: cross-entropy for inputs in
            [0, 1], else squared error); upper layers reconstruct sigmoid codes by
            cross-entropy.
        pretrain_epochs: each layer's epochs.
        pretrain_learning_rate: each layer's SGD step.
        pretrain_batch_size: each layer's mini-batch size.

    Fine-tuning (as :class:`~smithing.sklearn.MLPClassifier`): ``optimizer``,
    ``learning_rate_init``, ``optimizer_options``, ``schedule``, ``schedule_options``,
    ``batch_size``, ``max_iter``, ``tol``, ``n_iter_no_change``, ``early_stopping``,
    ``validation_fraction``, ``restore_best_weights``, ``l2``, ``l1``, ``max_norm``,
    ``dropout``, ``input_dropout``, ``dropconnect``, ``dropconnect_inference``, ``clip_norm``,
    ``warm_start`` (continue fine-tuning, no new pretraining), ``random_state`` (seeds
    pretraining and fine-tuning: the same seed gives the same model), ``device``.
    Attributes:
        stack_: the pretrained :class:`smithing.pretrain.Stack` (a
            :class:`smithing.pretrain.StackedDAE` inside), kept as pretrained.
        model_: the fine-tuned :class:`smithing.nn.MLP`; ``history_``, ``loss_curve_``,
            ``n_iter_``, ``validation_scores_``, ``classes_`` as
            :class:`~smithing.sklearn.MLPClassifier`'s, for the fine-tuning.

    References:
        Vincent, Larochelle, Lajoie, Bengio & Manzagol, "Stacked denoising autoencoders:
        learning useful representations in a deep network with a local denoising criterion",
        JMLR 11, 2010.

    Example:
        >>> from sklearn.datasets import load_digits
        >>> from smithing.sklearn import SdAClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> sda = SdAClassifier((32,), pretrain_epochs=1, max_iter=5, learning_rate_init=0.01,
        ...                     random_state=0, device="cpu").fit(X[:300] / 16, y[:300])
        >>> sda.model_.sizes
        (64, 32, 10)
    """

    _kind = "sda"
    _parameter_constraints: dict = {
        **_FINETUNE,
        "corruption": [StrOptions(set(CORRUPTIONS))],
        "corruption_rate": [Interval(Real, 0, 1, closed="both")],
        "reconstruction_loss": [StrOptions({"auto", "cross_entropy", "squared_error"})],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "pretrain_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "pretrain_batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes=(256,),
        *,
        corruption="masking",
        corruption_rate=0.25,
        reconstruction_loss="auto",
        pretrain_epochs=10,
        pretrain_learning_rate=0.1,
        pretrain_batch_size=20,
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
        self.corruption = corruption
        self.corruption_rate = corruption_rate
        self.reconstruction_loss = reconstruction_loss
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_learning_rate = pretrain_learning_rate
        self.pretrain_batch_size = pretrain_batch_size
        _set_finetune(self, locals())

    def _kind_settings(self) -> dict:
        return {
            "corruption": self.corruption,
            "rate": float(self.corruption_rate),
        }

    def _options(self, X: torch.Tensor) -> dict:
        return {"loss": reconstruction_loss_for(X.cpu().numpy(), self.reconstruction_loss)}


def _set_finetune(est, args: dict) -> None:
    """Store the fine-tuning parameters (the keys of ``_FINETUNE`` but hidden_layer_sizes)."""
    for name in _FINETUNE:
        if name != "hidden_layer_sizes":
            setattr(est, name, args[name])

"""``DenoisingAutoencoder``: a transformer over :func:`smithing.pretrain.train_autoencoder`."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from smithing import optim as _optim
from smithing.pretrain import DenoisingAutoencoder as _DAE
from smithing.pretrain import train_autoencoder
from smithing.sklearn._base import (
    draw_seed,
    predict_in_chunks,
    resolve_device,
    seeded,
    to_tensor,
    torch_dtype,
)

__all__ = ["CORRUPTIONS", "DenoisingAutoencoder", "reconstruction_loss_for"]

#: the corruption processes of :func:`smithing.pretrain.corrupt` (Vincent et al. 2010, Sec. 4.2)
CORRUPTIONS = ("none", "masking", "gaussian", "salt_and_pepper")
CODE_ACTIVATIONS = ("sigmoid", "tanh", "relu")


def reconstruction_loss_for(X: np.ndarray, loss: str) -> str:
    """``loss``, or for ``"auto"``: cross-entropy when every input lies in [0, 1] (binary or
    probabilities: Vincent et al. 2010's choice for such data), else the squared error with a
    linear decoder (real-valued inputs)."""
    if loss != "auto":
        return loss
    in_unit = X.size > 0 and float(np.min(X)) >= 0.0 and float(np.max(X)) <= 1.0
    return "cross_entropy" if in_unit else "squared_error"


class DenoisingAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """A denoising autoencoder: learn to reconstruct the clean input from a corrupted copy.

    Each step draws a mini-batch ``x``, corrupts it, ``x~ ~ q(x~ | x)`` (``corruption`` with
    ``corruption_rate``: masking noise sets each component to 0 with that probability; salt and
    pepper to 0 or 1; gaussian adds noise of that standard deviation), encodes
    ``h = s(x~ W^T + b)``, decodes ``z = s'(h W'^T + c)`` (``W' = W^T`` when ``tied``) and takes
    a gradient step on the reconstruction loss ``L(x, z)`` against the *clean* ``x``, plus
    ``contractive * ||J_h(x)||_F^2`` if asked (Rifai et al., ICML 2011). ``transform`` returns
    the codes of the clean inputs, ``inverse_transform`` the decoder's reconstruction of codes.

    Args:
        n_components: code units.
        activation: the codes' activation (``sigmoid``, ``tanh``, ``relu``).
        corruption: the corruption process ``q``; ``"none"`` gives a plain autoencoder.
        corruption_rate: its rate (a probability, or the standard deviation for
            ``gaussian``); 0 gives a plain autoencoder.
        reconstruction_loss: ``"cross_entropy"`` (inputs in [0, 1], sigmoid decoder),
            ``"squared_error"`` (linear decoder) or ``"auto"`` (cross-entropy when the training
            inputs lie in [0, 1], else squared error).
        tied: the decoder's weights are the encoder's transposed.
        contractive: weight of the contractive penalty (0: none).
        optimizer: a :mod:`smithing.optim` name.
        learning_rate: its step.
        batch_size: examples per mini-batch.
        n_iter: epochs.
        warm_start: ``fit`` continues from the previous parameters.
        random_state: seeds initialization, batch order and corruption.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    Attributes:
        autoencoder_: the trained :class:`smithing.pretrain.DenoisingAutoencoder` module.
        components_: the encoder's weights ``W``, ``(n_components, n_features)``.
        history_: per-epoch losses of the last ``fit``.
        reconstruction_loss_: the loss used (``"auto"`` resolved).
        n_iter_: epochs run over all calls.

    References:
        Vincent, Larochelle, Bengio & Manzagol, "Extracting and composing robust features with
        denoising autoencoders", ICML 2008. Vincent, Larochelle, Lajoie, Bengio & Manzagol,
        "Stacked denoising autoencoders: learning useful representations in a deep network
        with a local denoising criterion", JMLR 11, 2010.

    Example:
        >>> import numpy as np
        >>> from smithing.sklearn import DenoisingAutoencoder
        >>> X = np.random.RandomState(0).rand(60, 8)
        >>> dae = DenoisingAutoencoder(n_components=3, n_iter=2, random_state=0,
        ...                            device="cpu").fit(X)
        >>> dae.transform(X).shape, dae.reconstruction_loss_
        ((60, 3), 'cross_entropy')
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(CODE_ACTIVATIONS))],
        "corruption": [StrOptions(set(CORRUPTIONS))],
        "corruption_rate": [Interval(Real, 0, None, closed="left")],
        "reconstruction_loss": [StrOptions({"auto", "cross_entropy", "squared_error"})],
        "tied": ["boolean"],
        "contractive": [Interval(Real, 0, None, closed="left")],
        "optimizer": [StrOptions(set(_optim.names()))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "device": [str],
    }

    def __init__(
        self,
        n_components=100,
        *,
        activation="sigmoid",
        corruption="masking",
        corruption_rate=0.25,
        reconstruction_loss="auto",
        tied=True,
        contractive=0.0,
        optimizer="sgd",
        learning_rate=0.1,
        batch_size=20,
        n_iter=15,
        warm_start=False,
        random_state=None,
        device="auto",
    ):
        self.n_components = n_components
        self.activation = activation
        self.corruption = corruption
        self.corruption_rate = corruption_rate
        self.reconstruction_loss = reconstruction_loss
        self.tied = tied
        self.contractive = contractive
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.warm_start = warm_start
        self.random_state = random_state
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train for ``n_iter`` epochs on ``X (n_samples, n_features)``.

        Returns:
            self.
        """
        first = not (self.warm_start and hasattr(self, "autoencoder_"))
        return self._fit(X, epochs=int(self.n_iter), first=first)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One epoch over ``X (n_samples, n_features)`` in mini-batches of ``batch_size``,
        continuing from the current parameters and the optimizer's state (momentum buffers,
        Adam's moments), which persist from one ``partial_fit`` call to the next (``fit``
        starts a fresh optimizer).

        Returns:
            self.
        """
        return self._fit(X, epochs=1, first=not hasattr(self, "autoencoder_"), incremental=True)

    def _fit(self, X, *, epochs: int, first: bool, incremental: bool = False):
        X = validate_data(self, X, reset=first, dtype=[np.float64, np.float32])
        if self.corruption != "gaussian" and self.corruption_rate > 1:
            raise ValueError(
                f"corruption_rate={self.corruption_rate!r} is invalid: expected a probability "
                f"in [0, 1] for corruption={self.corruption!r}"
            )
        if first:
            self._random_state = check_random_state(self.random_state)
            self.device_ = resolve_device(self.device)
            self._dtype = torch_dtype(X)
            self.reconstruction_loss_ = reconstruction_loss_for(X, self.reconstruction_loss)
            self.n_iter_ = 0
            self._optimizer = None
        x = to_tensor(X, self.device_, self._dtype)
        seed = draw_seed(self._random_state)
        with seeded(seed, self.device_) as gen:
            if first:
                self.autoencoder_ = _DAE(
                    x.shape[1],
                    int(self.n_components),
                    activation=self.activation,
                    tied=self.tied,
                    loss=self.reconstruction_loss_,
                    generator=gen,
                    device=self.device_,
                    dtype=self._dtype,
                )
            optimizer = self.optimizer
            if incremental:  # one optimizer for the whole stream of partial_fit calls
                if getattr(self, "_optimizer", None) is None:
                    self._optimizer = _optim.make(
                        self.optimizer,
                        list(self.autoencoder_.parameters()),
                        float(self.learning_rate),
                    )
                optimizer = self._optimizer
            else:
                self._optimizer = None
            self.history_ = train_autoencoder(
                self.autoencoder_,
                x,
                epochs=epochs,
                lr=float(self.learning_rate),
                batch_size=min(int(self.batch_size), x.shape[0]),
                optimizer=optimizer,
                corruption=self.corruption,
                rate=float(self.corruption_rate),
                contractive=float(self.contractive),
                generator=gen,
            )
        self.n_iter_ += self.history_.epochs_run
        return self

    @property
    def components_(self) -> np.ndarray:
        check_is_fitted(self, "autoencoder_")
        return self.autoencoder_.W.detach().double().cpu().numpy()

    @property
    def _n_features_out(self) -> int:
        return self.autoencoder_.n_hidden

    def transform(self, X) -> np.ndarray:
        """The codes ``h = s(x W^T + b)`` of the clean inputs, ``(n_samples, n_components)``.

        Returns:
            an array of ``X``'s dtype (float32 or float64).
        """
        check_is_fitted(self, "autoencoder_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        x = to_tensor(X, self.device_, self._dtype)
        return predict_in_chunks(self.autoencoder_.encode, x).astype(X.dtype, copy=False)

    def inverse_transform(self, X) -> np.ndarray:
        """The decoder's output ``z = s'(h W'^T + c)`` for codes ``X (n, n_components)``.

        Returns:
            ``(n_samples, n_features)`` float64.
        """
        check_is_fitted(self, "autoencoder_")
        from sklearn.utils import check_array

        H = check_array(X, dtype=[np.float64, np.float32])
        if H.shape[1] != self.autoencoder_.n_hidden:
            raise ValueError(
                f"X has {H.shape[1]} features: expected the {self.autoencoder_.n_hidden} codes"
            )
        h = to_tensor(H, self.device_, self._dtype)
        return predict_in_chunks(self.autoencoder_.decode, h)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

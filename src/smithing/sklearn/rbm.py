"""``RBM``: a restricted Boltzmann machine transformer over :func:`smithing.pretrain.train_rbm`.

A drop-in for :class:`sklearn.neural_network.BernoulliRBM` (same parameter names and defaults
where they exist, ``components_``, ``intercept_hidden_``, ``intercept_visible_``, ``transform``,
``gibbs``, ``partial_fit``) that adds Gaussian visible units, CD-k as well as PCD, momentum,
weight decay, and a log-likelihood: ``score_samples`` is ``log p(v)``, exact when a layer is
small enough to enumerate, else with ``log Z`` estimated by annealed importance sampling.
scikit-learn's stochastic pseudo-log-likelihood (its ``score_samples``) is
:meth:`RBM.pseudo_likelihood`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch.nn import functional as F

from smithing.pretrain import (
    BernoulliRBM,
    GaussianBernoulliRBM,
    PersistentChains,
    ais_log_z,
    exact_log_z,
    train_rbm,
)
from smithing.sklearn._base import (
    draw_seed,
    predict_in_chunks,
    resolve_device,
    seeded,
    to_tensor,
    torch_dtype,
)

__all__ = ["RBM"]


class RBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """A restricted Boltzmann machine, binary hidden units, trained by CD-k or PCD.

    Bernoulli visibles: ``E(v, h) = -b^T v - c^T h - v^T W h``; Gaussian visibles (unit
    variances, for standardized data): ``E(v, h) = |v - b|^2 / 2 - c^T h - v^T W h``. Hidden
    probabilities ``p(h_j = 1 | v) = sigmoid(c_j + v^T W[:, j])`` are what :meth:`transform`
    returns. Training follows Hinton's guide: the gradient ``<v h^T>_data - <v h^T>_model``
    with the model term from ``k`` Gibbs sweeps started at the data (CD-k, Hinton 2002) or from
    persistent chains (PCD, Tieleman 2008; scikit-learn's ``BernoulliRBM`` is PCD-1, the
    default here), plain SGD with ``learning_rate`` (optionally ``momentum`` and an L2
    ``weight_decay`` on ``W``).

    Args:
        n_components: hidden units.
        learning_rate: the SGD step on the batch-mean gradient.
        batch_size: examples per mini-batch (also the number of persistent chains).
        n_iter: epochs.
        verbose: print the pseudo-log-likelihood after every epoch.
        visible: ``"bernoulli"`` (inputs in [0, 1]) or ``"gaussian"`` (standardize the inputs).
        method: ``"pcd"`` (persistent chains) or ``"cd"`` (chains restarted at the batch).
        k: Gibbs sweeps per update.
        momentum: momentum of the update (Hinton's guide, Sec. 9); 0 is scikit-learn's.
        weight_decay: L2 weight cost on ``W`` (Hinton's guide, Sec. 10).
        init_visible_bias: start the visible biases at the data's log-odds (Bernoulli) or
            mean (Gaussian), Hinton's guide Sec. 8; scikit-learn starts them at zero.
        exact_max_units: ``score_samples`` enumerates the smaller layer (the hidden layer for
            Gaussian visibles) when it has at most this many units; else AIS.
        ais_runs: parallel runs of the AIS estimate of ``log Z`` (Salakhutdinov & Murray, "On
            the quantitative analysis of deep belief networks", ICML 2008), from a base-rate
            model of the training data's means.
        ais_betas: its number of uniformly spaced inverse temperatures.
        warm_start: ``fit`` continues from the previous parameters and chains.
        random_state: seeds initialization, batch order, Gibbs sampling, AIS and the
            pseudo-likelihood's flips; the same seed gives the same model.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    Attributes:
        components_: ``W^T``, ``(n_components, n_features)`` (scikit-learn's layout).
        intercept_hidden_: the hidden biases ``c``.
        intercept_visible_: the visible biases ``b``.
        rbm_: the trained :class:`smithing.pretrain.BernoulliRBM` (or Gaussian) module.
        history_: per-epoch monitoring of the last call (:func:`smithing.pretrain.train_rbm`).
        n_iter_: epochs run over all calls.
        n_features_in_: visible units.

    References:
        Hinton, "A practical guide to training restricted Boltzmann machines", UTML TR
        2010-003, 2010. Hinton, "Training products of experts by minimizing contrastive
        divergence", Neural Computation 14, 2002. Tieleman, "Training restricted Boltzmann
        machines using approximations to the likelihood gradient", ICML 2008. Salakhutdinov &
        Murray, "On the quantitative analysis of deep belief networks", ICML 2008.

    Example:
        >>> import numpy as np
        >>> from smithing.sklearn import RBM
        >>> X = (np.random.RandomState(0).rand(100, 6) > 0.5).astype(float)
        >>> rbm = RBM(n_components=4, n_iter=5, random_state=0, device="cpu").fit(X)
        >>> rbm.transform(X).shape, rbm.components_.shape
        ((100, 4), (4, 6))
        >>> bool(np.all(rbm.score_samples(X) < 0))  # exact log p(v): 4 hidden units
        True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
        "visible": [StrOptions({"bernoulli", "gaussian"})],
        "method": [StrOptions({"cd", "pcd"})],
        "k": [Interval(Integral, 1, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "init_visible_bias": ["boolean"],
        "exact_max_units": [Interval(Integral, 0, 30, closed="both")],
        "ais_runs": [Interval(Integral, 2, None, closed="left")],
        "ais_betas": [Interval(Integral, 2, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "device": [str],
    }

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.1,
        batch_size=10,
        n_iter=10,
        verbose=0,
        visible="bernoulli",
        method="pcd",
        k=1,
        momentum=0.0,
        weight_decay=0.0,
        init_visible_bias=False,
        exact_max_units=20,
        ais_runs=100,
        ais_betas=10000,
        warm_start=False,
        random_state=None,
        device="auto",
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.visible = visible
        self.method = method
        self.k = k
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.init_visible_bias = init_visible_bias
        self.exact_max_units = exact_max_units
        self.ais_runs = ais_runs
        self.ais_betas = ais_betas
        self.warm_start = warm_start
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ training

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train for ``n_iter`` epochs on ``X (n_samples, n_features)``.

        Returns:
            self.
        """
        return self._fit(X, epochs=int(self.n_iter), first=not self.warm_start)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One pass over ``X`` in mini-batches of ``batch_size``, continuing the persistent
        chains (one update when ``len(X) <= batch_size``, as scikit-learn's ``partial_fit``).

        Returns:
            self.
        """
        return self._fit(X, epochs=1, first=False)

    def _fit(self, X, *, epochs: int, first: bool):
        first = first or not hasattr(self, "rbm_")
        X = validate_data(self, X, reset=first, dtype=[np.float64, np.float32])
        if first:
            self._random_state = check_random_state(self.random_state)
            self.device_ = resolve_device(self.device)
            self._dtype = torch_dtype(X)
            self.n_iter_ = 0
        x = to_tensor(X, self.device_, self._dtype)
        seed = draw_seed(self._random_state)
        batch = min(int(self.batch_size), x.shape[0])
        with seeded(seed, self.device_) as gen:
            if first:
                cls = GaussianBernoulliRBM if self.visible == "gaussian" else BernoulliRBM
                kw = {"generator": gen, "device": self.device_, "dtype": self._dtype}
                self.rbm_ = cls(x.shape[1], int(self.n_components), **kw)
                if self.init_visible_bias:
                    self.rbm_.init_visible_bias_(x)
                self._chains = PersistentChains.init(self.rbm_, int(self.batch_size), generator=gen)
            self._visible_mean = x.mean(0).double()  # the AIS base-rate model's data
            self.history_ = train_rbm(
                self.rbm_,
                x,
                epochs=epochs,
                batch_size=batch,
                lr=float(self.learning_rate),
                method=self.method,
                k=int(self.k),
                chains=self._chains if self.method == "pcd" else None,
                momentum=float(self.momentum),
                weight_decay=float(self.weight_decay),
                monitor_reconstruction=False,  # not reported: PCD skips the work (scikit-learn's)
                generator=gen,
                callbacks=(self._report,) if self.verbose else (),
            )
        self.n_iter_ += self.history_.epochs_run
        self._log_z = {}  # cached by score_samples: the parameters changed
        return self

    def _report(self, epoch: int, record: dict, rbm=None) -> None:  # epoch: 1-based
        pl = record.get("pseudo_likelihood", float("nan"))
        print(f"[RBM] epoch {self.n_iter_ + epoch}, pseudo-likelihood = {pl:.2f}")

    # ------------------------------------------------------------------ fitted parameters

    @property
    def components_(self) -> np.ndarray:
        check_is_fitted(self, "rbm_")
        return self.rbm_.W.detach().T.double().cpu().numpy()

    @property
    def intercept_hidden_(self) -> np.ndarray:
        check_is_fitted(self, "rbm_")
        return self.rbm_.c.detach().double().cpu().numpy()

    @property
    def intercept_visible_(self) -> np.ndarray:
        check_is_fitted(self, "rbm_")
        return self.rbm_.b.detach().double().cpu().numpy()

    @property
    def _n_features_out(self) -> int:  # get_feature_names_out: rbm0, rbm1, ...
        return self.rbm_.n_hidden

    # ------------------------------------------------------------------ inference

    def _input(self, X) -> tuple[np.ndarray, torch.Tensor]:
        check_is_fitted(self, "rbm_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X, to_tensor(X, self.device_, self._dtype)

    def transform(self, X) -> np.ndarray:
        """Hidden probabilities ``p(h = 1 | v)``, ``(n_samples, n_components)``.

        Returns:
            an array of ``X``'s dtype (float32 or float64).
        """
        X, x = self._input(X)
        return predict_in_chunks(self.rbm_.hidden_probs, x).astype(X.dtype, copy=False)

    def gibbs(self, v) -> np.ndarray:
        """One Gibbs sweep ``v -> h ~ p(h | v) -> v' ~ p(v | h)`` (scikit-learn's ``gibbs``).

        Returns:
            the sampled visible states, ``(n_samples, n_features)``.
        """
        _, x = self._input(v)
        with torch.no_grad():
            gen = torch.Generator(self.device_).manual_seed(draw_seed(self._random_state))
            h = torch.bernoulli(self.rbm_.hidden_probs(x), generator=gen)
            out = self.rbm_.sample_visible(h, generator=gen)
        return out.double().cpu().numpy()

    def log_partition(self) -> float:
        """``log Z``: exact by enumeration when the enumerated layer has at most
        ``exact_max_units`` units, else an AIS estimate; computed once per fit (float64).

        Returns:
            ``log Z`` as a float.
        """
        check_is_fitted(self, "rbm_")
        if "value" not in self._log_z:
            if self._enumerable():
                self._log_z["value"] = float(exact_log_z(self.rbm_, max_units=30))
            else:
                gen = torch.Generator(self.device_).manual_seed(self._ais_seed())
                res = ais_log_z(
                    self.rbm_,
                    data=self._visible_mean[None],
                    n_runs=int(self.ais_runs),
                    betas=int(self.ais_betas),
                    generator=gen,
                )
                self._log_z["value"] = float(res.log_z)
        return self._log_z["value"]

    def _enumerable(self) -> bool:
        nv, nh = self.rbm_.n_visible, self.rbm_.n_hidden
        n = nh if self.visible == "gaussian" else min(nv, nh)
        return n <= self.exact_max_units

    def _ais_seed(self) -> int:
        rs = self.random_state
        return int(rs) if isinstance(rs, Integral) else 0

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood ``log p(v) = -F(v) - log Z`` of each row (nats, float64).

        ``F`` is the free energy; ``log Z`` is :meth:`log_partition` (exact or AIS). Unlike
        scikit-learn's ``BernoulliRBM.score_samples``, a pseudo-likelihood, this is the
        likelihood itself; the pseudo-likelihood is :meth:`pseudo_likelihood`.

        Returns:
            ``(n_samples,)`` float64.
        """
        _, x = self._input(X)
        fe = predict_in_chunks(self._free_energy64, x)
        return -fe - self.log_partition()

    def _free_energy64(self, x: torch.Tensor) -> torch.Tensor:
        W, b, c = (t.detach().double() for t in (self.rbm_.W, self.rbm_.b, self.rbm_.c))
        v = x.double()
        if self.visible == "gaussian":  # unit variances
            return 0.5 * ((v - b) ** 2).sum(-1) - F.softplus(v @ W + c).sum(-1)
        return -v @ b - F.softplus(v @ W + c).sum(-1)  # F(v) = -b^T v - sum softplus(c + vW)

    def pseudo_likelihood(self, X) -> np.ndarray:
        """scikit-learn's ``BernoulliRBM.score_samples``: a one-flip pseudo-log-likelihood.

        For each row one visible index ``i`` is drawn (from ``random_state``, as scikit-learn
        draws it), ``v~_i = 1 - v_i``, and ``PL(v) = n_features * log sigmoid(F(v~) - F(v))``,
        an unbiased estimate of ``sum_i log p(v_i | v_-i)`` (Besag, "Statistical analysis of
        non-lattice data", The Statistician 24, 1975). Binary visibles only.

        Returns:
            ``(n_samples,)`` float64.
        """
        if self.visible != "bernoulli":
            raise ValueError(
                "pseudo_likelihood is defined for binary visibles: visible='bernoulli', "
                f"not {self.visible!r}"
            )
        _, x = self._input(X)
        rng = check_random_state(self.random_state)
        flip = rng.randint(0, x.shape[1], x.shape[0])
        v = x.double()
        v_flip = v.clone()
        rows = torch.arange(v.shape[0], device=v.device)
        cols = torch.as_tensor(flip, device=v.device)
        v_flip[rows, cols] = 1 - v_flip[rows, cols]
        pl = x.shape[1] * F.logsigmoid(self._free_energy64(v_flip) - self._free_energy64(v))
        return pl.cpu().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

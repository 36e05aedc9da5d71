"""Restricted Boltzmann machines: energies, conditionals, CD-k / PCD training, monitoring, samples.

Two kinds of visible units share one hidden layer of binary units ``h in {0, 1}^n_hidden``:

* **Bernoulli-Bernoulli** (binary visibles ``v in {0, 1}^n_visible``)::

      E(v, h) = -b^T v - c^T h - v^T W h
      F(v)    = -log sum_h exp(-E(v, h)) = -b^T v - sum_j softplus(c_j + v^T W[:, j])
      p(h_j = 1 | v) = sigmoid(c_j + v^T W[:, j])          p(v_i = 1 | h) = sigmoid(b_i + W[i] h)

* **Gaussian-Bernoulli** (real visibles), in the parametrization of Cho, Ilin & Raiko,
  "Improved Learning of Gaussian-Bernoulli Restricted Boltzmann Machines", ICANN 2011, with
  ``sigma_i^2 = exp(log_var_i)``::

      E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c^T h - sum_ij (v_i / sigma_i^2) W_ij h_j
      F(v)    = sum_i (v_i - b_i)^2 / (2 sigma_i^2)
                - sum_j softplus(c_j + sum_i v_i W_ij / sigma_i^2)
      p(h_j = 1 | v) = sigmoid(c_j + sum_i v_i W_ij / sigma_i^2)
      p(v_i | h)     = N(b_i + W[i] h, sigma_i^2)

  With unit variances (``log_var = 0``, the default, for standardized data) this is also the
  model of Hinton's guide (Sec. 13.2), whose parametrization divides by ``sigma_i`` instead of
  ``sigma_i^2``; the two differ only when variances are learned (``learn_variance=True``, where
  Cho et al.'s form is used: the learned parameter is ``log sigma_i^2``).

Layout: ``W`` is ``(n_visible, n_hidden)`` (the ``v^T W h`` of the formulas; Salakhutdinov's
``vishid``), ``b`` ``(n_visible,)``, ``c`` ``(n_hidden,)``. ``nn.Linear`` layout ``(out, in)``
is ``W.T``: see :meth:`BernoulliRBM.encoder`. Every pure function accepts an optional leading
members axis on the parameters (``W (M, n_visible, n_hidden)``, biases ``(M, n)``) and on the
data (``v (M, batch, n_visible)``; a members-free ``v (batch, n_visible)`` is broadcast to every
member), so an ensemble of RBMs is one set of batched matmuls.

Training (:func:`train_rbm`) follows Hinton, "A Practical Guide to Training Restricted Boltzmann
Machines", UTML TR 2010-003: the gradient of the log-likelihood is the expectation difference
``<v h^T>_data - <v h^T>_model`` with hidden *probabilities* in the positive phase, the model
expectation estimated by CD-k (Hinton, "Training products of experts by minimizing contrastive
divergence", Neural Computation 2002) or PCD / SML (Tieleman, "Training restricted Boltzmann
machines using approximations to the likelihood gradient", ICML 2008).
"""

from __future__ import annotations

from smithing.pretrain.rbm.figures import (
    filters_figure,
)
from smithing.pretrain.rbm.functional import (
    cd_gradient,
    energy,
    free_energy,
    gaussian_cd_gradient,
    gaussian_energy,
    gaussian_free_energy,
    gaussian_hidden_probs,
    gaussian_visible_mean,
    hidden_probs,
    pseudo_likelihood,
    sample_bernoulli,
    sample_gaussian,
    visible_probs,
)
from smithing.pretrain.rbm.modules import (
    BernoulliRBM,
    GaussianBernoulliRBM,
)
from smithing.pretrain.rbm.sampling import (
    PersistentChains,
    gibbs_step,
    sample,
)
from smithing.pretrain.rbm.training import (
    reconstruction_error,
    train_rbm,
)

__all__ = [
    "BernoulliRBM",
    "GaussianBernoulliRBM",
    "PersistentChains",
    "cd_gradient",
    "energy",
    "filters_figure",
    "free_energy",
    "gaussian_cd_gradient",
    "gaussian_energy",
    "gaussian_free_energy",
    "gaussian_hidden_probs",
    "gaussian_visible_mean",
    "gibbs_step",
    "hidden_probs",
    "pseudo_likelihood",
    "reconstruction_error",
    "sample",
    "sample_bernoulli",
    "sample_gaussian",
    "train_rbm",
    "visible_probs",
]

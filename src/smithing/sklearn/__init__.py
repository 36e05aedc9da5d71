"""scikit-learn estimators over the library's core: every trick behind ``fit`` / ``predict``.

* :class:`MLPClassifier`, :class:`MLPRegressor`: :func:`smithing.train.fit` with the library's
  initializers, optimizers and schedules, early stopping, penalties, max-norm, dropout,
  DropConnect and gradient clipping as parameters.
* :class:`RBM`: a Bernoulli or Gaussian-Bernoulli RBM transformer trained by CD-k or PCD, a
  drop-in for :class:`sklearn.neural_network.BernoulliRBM`, with exact or AIS log-likelihoods.
* :class:`DBNClassifier`, :class:`SdAClassifier`: greedy layer-wise pretraining (RBMs or
  denoising autoencoders), unrolled into an MLP and fine-tuned.
* :class:`DenoisingAutoencoder`: a denoising autoencoder transformer.
* :class:`ClassRBMClassifier`: the classification RBM, generative / discriminative / hybrid,
  semi-supervised on examples labeled ``-1``.

Every estimator passes :func:`sklearn.utils.estimator_checks.parametrize_with_checks`
(``tests/test_sklearn.py``). scikit-learn is an optional dependency: importing this package
without it raises an ``ImportError`` naming the extra to install.
"""

try:
    import sklearn  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "smithing.sklearn needs scikit-learn: pip install 'smithing[sklearn]'"
    ) from err

from smithing.sklearn.autoencoder import DenoisingAutoencoder
from smithing.sklearn.class_rbm import ClassRBMClassifier
from smithing.sklearn.mlp import MLPClassifier, MLPRegressor
from smithing.sklearn.rbm import RBM
from smithing.sklearn.stacks import DBNClassifier, SdAClassifier

__all__ = [
    "RBM",
    "ClassRBMClassifier",
    "DBNClassifier",
    "DenoisingAutoencoder",
    "MLPClassifier",
    "MLPRegressor",
    "SdAClassifier",
]

"""Unsupervised pretraining: RBMs (CD-k, PCD), AIS likelihoods, DBNs, greedy stacks -> MLP.

* :mod:`~smithing.pretrain.rbm`: Bernoulli and Gaussian-Bernoulli RBMs as pure functions plus
  thin modules, :func:`train_rbm`, Gibbs :func:`sample`, :func:`filters_figure`.
* :mod:`~smithing.pretrain.ais`: :func:`ais_log_z` (Salakhutdinov & Murray 2008),
  :func:`exact_log_z`, :func:`average_log_prob`.
* :mod:`~smithing.pretrain.stack`: the one greedy-pretrain -> unroll -> fine-tune path,
  :class:`StackSpec`, :func:`pretrain_stack`, :class:`Stack` (``to_mlp``, ``state_tensors``,
  ``describe``, ``from_state``), :class:`StackCache`, :func:`finetune`.
* :mod:`~smithing.pretrain.greedy`: its functional core, :class:`LayerPretrainer`,
  :func:`greedy_stack`, :func:`to_mlp`, :func:`pretrained_weights`.
* :mod:`~smithing.pretrain.dbn`: :class:`DBN`, :func:`train_dbn`.
* :mod:`~smithing.pretrain.autoencoder`: denoising autoencoders, :class:`StackedDAE`,
  :func:`train_sda`.
* :mod:`~smithing.pretrain.hybrid`: classification RBMs and the one-stage deep hybrid stack.

This package is part of the core: it takes tensors, never loads a dataset by name, and
registers nothing into :mod:`smithing.init` (the ``pretrained`` initializer's ``"dbn"`` /
``"sda"`` sources are registered by :mod:`smithing.experiment.pretrained`).
"""

from smithing.pretrain.ais import AISResult, ais_log_z, average_log_prob, exact_log_z
from smithing.pretrain.dbn import DBN, RBMPretrainer, train_dbn
from smithing.pretrain.greedy import (
    GreedyResult,
    LayerPretrainer,
    greedy_stack,
    pretrained_weights,
    to_mlp,
)
from smithing.pretrain.rbm import (
    BernoulliRBM,
    GaussianBernoulliRBM,
    PersistentChains,
    filters_figure,
    sample,
    train_rbm,
)

__all__ = [
    "DBN",
    "AISResult",
    "BernoulliRBM",
    "GaussianBernoulliRBM",
    "GreedyResult",
    "LayerPretrainer",
    "PersistentChains",
    "RBMPretrainer",
    "ais_log_z",
    "average_log_prob",
    "exact_log_z",
    "filters_figure",
    "greedy_stack",
    "pretrained_weights",
    "sample",
    "to_mlp",
    "train_dbn",
    "train_rbm",
]

# denoising autoencoders and stacked DAEs (smithing.pretrain.autoencoder)
from smithing.pretrain.autoencoder import (  # noqa: E402
    DAEPretrainer,
    DenoisingAutoencoder,
    StackedDAE,
    contractive_penalty,
    corrupt,
    train_autoencoder,
    train_sda,
)

__all__ += [
    "DAEPretrainer",
    "DenoisingAutoencoder",
    "StackedDAE",
    "contractive_penalty",
    "corrupt",
    "train_autoencoder",
    "train_sda",
]

# the one pretraining API (smithing.pretrain.stack)
from smithing.pretrain.stack import (  # noqa: E402
    STACK_KINDS,
    Stack,
    StackCache,
    StackSpec,
    finetune,
    pretrain_stack,
)

__all__ += ["STACK_KINDS", "Stack", "StackCache", "StackSpec", "finetune", "pretrain_stack"]

# classification RBMs (generative / discriminative / hybrid / semi-supervised) and the one-stage
# classification RBMs and the deep hybrid stack (smithing.pretrain.hybrid)
from smithing.pretrain.hybrid import (  # noqa: E402
    ClassificationRBM,
    ClassRBM,
    DeepHybridRBM,
    HybridTraining,
    train_class_rbm,
    train_deep_hybrid,
)

__all__ += [
    "ClassRBM",
    "ClassificationRBM",
    "DeepHybridRBM",
    "HybridTraining",
    "train_class_rbm",
    "train_deep_hybrid",
]

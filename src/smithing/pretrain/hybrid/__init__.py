"""Classification RBMs trained generatively, discriminatively, hybrid and semi-supervised; a deep
hybrid stack trained in a single stage.

**The classification RBM** (Larochelle & Bengio, "Classification using discriminative restricted
Boltzmann machines", ICML 2008; Larochelle, Mandel, Pascanu & Bengio, "Learning algorithms for
the classification restricted Boltzmann machine", JMLR 13, 2012) is a joint model of binary
inputs ``x in {0, 1}^D`` (or probabilities in [0, 1]), a one-hot label ``e_y`` of ``C`` classes
and binary hidden units ``h in {0, 1}^H``::

    E(y, x, h) = -h^T W x - b^T x - c^T h - d^T e_y - h^T U e_y
    p(y, x, h) = exp(-E(y, x, h)) / Z

Layout here (as in :mod:`smithing.pretrain.rbm`): ``W (D, H)`` is the paper's ``W`` transposed
(``x^T W h``), ``U (C, H)`` the paper's ``U`` transposed (row ``U[y]`` is the paper's column
``U_{.y}``), ``b (D,)``, ``c (H,)``, ``d (C,)``. Conditionals::

    p(h_j = 1 | x, y) = sigmoid(c_j + U[y, j] + (x W)_j)
    p(x_i = 1 | h)    = sigmoid(b_i + (W h)_i)            p(y | h) = softmax_y(d_y + U[y] . h)

The hidden units sum out in closed form, so the class posterior is exact (2008, eq. 2)::

    o_yj(x)  = c_j + U[y, j] + (x W)_j
    p(y | x) = exp(d_y + sum_j softplus(o_yj(x))) / sum_y* exp(d_y* + sum_j softplus(o_y*j(x)))

computed here for all classes at once from a ``(batch, C, H)`` tensor ``o`` (no loop over
classes). Its log-likelihood gradient is also closed form (2008, eq. 3; 2012 eq. 5)::

    d log p(y|x) / d theta = sum_j sigmoid(o_yj) d o_yj / d theta
                             - sum_{j, y*} sigmoid(o_y*j) p(y*|x) d o_y*j / d theta

i.e. with the coefficient ``a_{y*} = 1[y* = y] - p(y*|x)``: ``dd_{y*} = a_{y*}``,
``dU[y*, j] = a_{y*} sigmoid(o_y*j)``, ``dc_j = g_j = sum_{y*} a_{y*} sigmoid(o_y*j)``,
``dW[i, j] = x_i g_j`` and ``db = 0`` (:func:`discriminative_gradient`).

**Training objectives** (all maximized by stochastic gradient *ascent*, gradients averaged over
the mini-batch; the paper states them as negative log-likelihoods to minimize):

* ``generative``: ``L_gen = sum log p(y, x)``, gradient ``<-dE/d theta>_data - <-dE/d theta>_model``
  with the model expectation estimated by CD-k or PCD on the joint chain
  ``(x, y) -> h -> (x', y')`` (:func:`generative_gradient`);
* ``discriminative``: ``L_disc = sum log p(y | x)``, exact gradient above;
* ``hybrid``: ``L_hybrid = L_disc + alpha L_gen`` (2008, Sec. 4; 2012 eq. 9), the generative
  part estimated by CD; ``alpha = 0`` is the discriminative objective (the CD chain still runs
  and its contribution is multiplied by 0, so the parameters are bit-identical);
* **semi-supervised** (2008 Sec. 5; 2012 Sec. 3.3): with
  unlabeled inputs ``D_u``, ``L_semi = L_train + beta sum_{x in D_u} log p(x)``, ``L_train``
  any of the three above. The gradient of ``log p(x) = log sum_y p(y, x)`` is
  ``E_{p(y, h | x)}[-dE/d theta] - E_{p(y, x, h)}[-dE/d theta]``: estimated by CD with the
  positive-phase label *sampled* from the exact ``p(y | x)`` (``unlabeled_positive="sample"``,
  the paper's estimator), or with the positive phase's exact expectation over ``y ~ p(y|x)``
  (``"expected"``, a Rao-Blackwellized variant of ours); the negative chain starts at
  ``(x, y_sampled)`` (CD) or continues the persistent chains (PCD: the model expectation of
  ``log p(x)`` and ``log p(x, y)`` is the same, so the chains are shared). Each update takes
  one labeled and one unlabeled mini-batch and adds ``beta`` times the unlabeled mini-batch's
  mean gradient to the labeled one's.

Prediction is always the exact ``argmax_y p(y | x)``. Equation and section numbers cited here
are as we recall them from the papers (not checked against their text); the formulas are
checked by the tests (brute-force enumeration, autograd).

**The deep hybrid stack** (:class:`DeepHybridRBM`) follows the idea of Ororbia, Giles & Reitter's
stacked hybrid Boltzmann models ("Online semi-supervised learning with deep hybrid Boltzmann
machines and denoising autoencoders", arXiv 1511.06964, 2015, and the "Stacked Boltzmann
Experts Network" of their "Deep hybrid models" work): every layer is a classification RBM
with its own label units, trained with the hybrid (and, with unlabeled data, semi-supervised)
signal; the layer-``l`` input is the layer below's label-free mean code
``E[h | x] = sum_y p(y|x) sigmoid(o_y(x))`` (exact under the layer's model); all layers are
updated at every step from the same mini-batch, in ONE stage (no pretraining phase, no
fine-tuning phase). What we implement and where we simplify (we did not have the papers'
text to check against): the layers send no top-down signals to each other (any joint
inference across layers that the DHBM performs is left out: each layer's gradient is local and
no gradient crosses layers), the propagated code is ``E[h | x]`` for labeled and unlabeled
examples alike, and the prediction is the top layer's ``p(y | h)`` (``combine="top"``) or the
equally weighted mean of every layer's ``p(y | .)`` (``combine="mean"``, standing in for
their combination of the layer experts' predictions).

Randomness: the batch order comes from a generator seeded by one draw of ``generator`` at the
start; CD sampling draws from ``generator`` itself. So objectives that sample (generative,
hybrid) and those that do not (discriminative) see the same batch order for the same seed.
"""

from __future__ import annotations

from smithing.pretrain.hybrid.estimator import (
    ClassificationRBM,
)
from smithing.pretrain.hybrid.functional import (
    OBJECTIVES,
    PARAMS,
    class_logits,
    class_probs,
    discriminative_gradient,
    generative_gradient,
    hidden_inputs,
    joint_energy,
    joint_free_energy,
    joint_hidden_probs,
    joint_statistics,
    log_proba,
    marginal_hidden_probs,
    sample_onehot,
    unlabeled_gradient,
)
from smithing.pretrain.hybrid.modules import (
    ClassRBM,
    DeepHybridRBM,
)
from smithing.pretrain.hybrid.training import (
    HybridTraining,
    chunked,
    train_class_rbm,
    train_deep_hybrid,
)

__all__ = [
    "OBJECTIVES",
    "PARAMS",
    "ClassRBM",
    "ClassificationRBM",
    "DeepHybridRBM",
    "HybridTraining",
    "class_logits",
    "chunked",
    "class_probs",
    "discriminative_gradient",
    "generative_gradient",
    "hidden_inputs",
    "joint_energy",
    "joint_free_energy",
    "joint_hidden_probs",
    "joint_statistics",
    "log_proba",
    "marginal_hidden_probs",
    "sample_onehot",
    "train_class_rbm",
    "train_deep_hybrid",
    "unlabeled_gradient",
]

"""Regularization of the weights: penalties (L2, L1, elastic net, decoupled decay), max-norm,
pruning (magnitude, Optimal Brain Damage, Optimal Brain Surgeon).

:class:`Penalty`, :class:`MaxNorm` and :class:`PruneMask` are regularizers of the one protocol
the trainers call (:mod:`smithing.regularize.protocol`: ``penalty``, ``before_step``,
``after_step``): pass one, or a list of them, as ``fit(..., regularizer=...)`` or
``fit_ensemble(..., regularizer=...)``.

Dropout and DropConnect are layers and live in :mod:`smithing.nn.dropout` and
:mod:`smithing.nn.dropconnect`.
"""

from smithing.regularize.constraints import MaxNorm, max_norm_, unit_norms
from smithing.regularize.penalties import (
    Penalty,
    decay_,
    elastic_net_penalty,
    l1_penalty,
    l2_penalty,
    select,
    soft_threshold_,
)
from smithing.regularize.protocol import Regularizer, Regularizers, as_regularizer
from smithing.regularize.prune import (
    PRUNE_METHODS,
    PruneMask,
    PruneReport,
    fisher_diagonal,
    gauss_newton_matrix,
    hessian_diagonal,
    obd_saliency,
    obs_downdate,
    obs_inverse,
    obs_prune,
    obs_saliency,
    obs_update,
    prune,
)

__all__ = [
    "PRUNE_METHODS",
    "MaxNorm",
    "Penalty",
    "PruneMask",
    "PruneReport",
    "Regularizer",
    "Regularizers",
    "as_regularizer",
    "decay_",
    "elastic_net_penalty",
    "fisher_diagonal",
    "gauss_newton_matrix",
    "hessian_diagonal",
    "l1_penalty",
    "l2_penalty",
    "max_norm_",
    "obd_saliency",
    "obs_downdate",
    "obs_inverse",
    "obs_prune",
    "obs_saliency",
    "obs_update",
    "prune",
    "select",
    "soft_threshold_",
    "unit_norms",
]

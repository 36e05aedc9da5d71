"""Pruning: magnitude, Optimal Brain Damage, Optimal Brain Surgeon; masks that persist.

Every method ranks weights by a *saliency* (the estimated increase of the training loss when
the weight is set to 0) and removes the lowest ``fraction``:

* ``"magnitude"``: saliency ``|w_k|``.
* ``"obd"`` — LeCun, Denker & Solla, "Optimal Brain Damage", NIPS 2 (1990): a second-order
  Taylor expansion around a minimum with a diagonal Hessian, ``s_k = 1/2 h_kk w_k^2`` (the
  paper's recipe, step 4);
  the other weights are not changed (the paper retrains afterwards). ``h_kk`` from
  :func:`hessian_diagonal`: ``"exact"`` (``torch.func.hessian``; small layers), ``"hutchinson"``
  (``E[z * (H z)]``, ``z`` Rademacher; Bekas, Kokiopoulou & Saad 2007), ``"fisher"`` (the
  Gauss-Newton diagonal of a softmax cross-entropy estimated with labels sampled from the model:
  ``E_y[g_y^2]``; it replaces the paper's own Levenberg-Marquardt backward pass, which drops the
  same second-derivative terms) or ``"empirical_fisher"`` (the data's labels).
* ``"obs"`` — Hassibi & Stork, "Second order derivatives for network pruning: Optimal Brain
  Surgeon", NIPS 5 (1993): with the full inverse Hessian ``H^-1``, weight ``q`` has saliency
  ``L_q = w_q^2 / (2 [H^-1]_qq)`` (eq. 5) and removing it with the compensating update
  ``dw = -(w_q / [H^-1]_qq) H^-1 e_q`` (eq. 5) sets ``w_q`` to exactly 0 and, for a quadratic
  loss, raises it by exactly ``L_q``. Weights are removed one at a time; after each removal
  ``H^-1`` is downdated to the inverse Hessian of the remaining weights,
  ``H^-1 <- H^-1 - H^-1 e_q e_q^T H^-1 / [H^-1]_qq`` (the inverse of the submatrix without
  row/column ``q``: a rank-one Woodbury downdate, exact, instead of re-inverting). Weights
  already pruned by an earlier mask are left out by inverting only the kept block
  (:func:`obs_inverse`; it needs only that block to be invertible). ``H`` is
  ``hessian="exact"`` (default; the Hessian of the loss by ``torch.func.hessian``) or
  ``hessian="gauss_newton"`` (:func:`gauss_newton_matrix`: the outer-product matrix
  ``G = (1/N) sum_i J_i^T (diag q_i - q_i q_i^T) J_i`` of the mean softmax cross-entropy, the
  paper's Sec. 3 approximation: positive semi-definite, it drops the Hessian's
  ``sum_c (q_c - y_c) d^2 z_c / dw^2`` term). Either is inverted as
  ``H + damping I`` in float64 (the paper's ``H_0^-1 = alpha^-1 I`` start plays the damping's
  role), so OBS is limited to ``max_params`` weights. Departure: the paper builds ``H^-1`` by its
  recursion over training patterns (rank-one Sherman-Morrison updates from ``H_0``); we form
  ``G`` (or the exact Hessian) and invert it once, which for ``G`` reaches the same inverse
  directly. The exact Hessian of a trained ReLU network is usually indefinite; OBS then refuses
  it (``ValueError``) instead of returning negative or NaN saliencies: raise ``damping`` or use
  ``hessian="gauss_newton"``.

Masks (:class:`PruneMask`, ``True`` = kept) live in a dict ``name -> bool tensor``; apply them
after every optimizer step (``mask.apply_(model)``, ``mask.attach(optimizer, model)`` once, or
``fit(..., regularizer=mask)``: a mask is a regularizer of the trainers' protocol) so retraining
keeps the pruned weights at 0. ``fit_ensemble(..., regularizer=mask)`` applies it to the stacked
parameters: a mask of one model's shape prunes every member alike, a ``(members, ...)`` mask
prunes each member its own way. Saliencies and :func:`prune` act on one model at a time.
"""

from __future__ import annotations

from smithing.regularize.prune.hessian import (
    HESSIAN_DIAGONALS,
    fisher_diagonal,
    full_hessian,
    gauss_newton_matrix,
    hessian_diagonal,
    make_objective,
)
from smithing.regularize.prune.masks import (
    PruneMask,
    PruneReport,
)
from smithing.regularize.prune.methods import (
    HESSIANS,
    OBS_HESSIANS,
    PRUNE_METHODS,
    prune,
)
from smithing.regularize.prune.saliency import (
    magnitude_saliency,
    obd_saliency,
    obs_downdate,
    obs_inverse,
    obs_prune,
    obs_saliency,
    obs_update,
)

__all__ = [
    "HESSIANS",
    "HESSIAN_DIAGONALS",
    "OBS_HESSIANS",
    "PRUNE_METHODS",
    "PruneMask",
    "PruneReport",
    "fisher_diagonal",
    "full_hessian",
    "gauss_newton_matrix",
    "hessian_diagonal",
    "make_objective",
    "magnitude_saliency",
    "obd_saliency",
    "obs_downdate",
    "obs_inverse",
    "obs_prune",
    "obs_saliency",
    "obs_update",
    "prune",
]

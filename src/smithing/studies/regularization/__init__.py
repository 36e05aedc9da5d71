"""Study ``regularization``: none vs L2 vs L1 vs elastic net vs max-norm vs dropout vs dropout +
max-norm vs DropConnect on the same network.

Quick scale: digits with only the first 500 training examples (``n_train``), a 64-256-256-10
ReLU network (~83k weights, ~170 per training example) trained 60 epochs with momentum SGD:
long enough that the unregularized network fits the training set exactly (0 % training
error) and the difference between training and test error, the generalization gap, is what the
regularizers act on. Strengths were chosen on the validation split in a small sweep (L2
``lam/(2n) sum w^2``, L1 ``lam/n sum |w|`` in the lecture's convention, ``n = 500``; biases
never penalized; max-norm radius on every unit's incoming weight vector, Srivastava et al.
2014, Sec. 5.1; the unconstrained network's largest norm is ~2.6, so c = 1 binds); dropout
drops 50 % of the hidden units but, departing from the paper's recipe, none of the inputs: an
8x8 digit has only 64 pixels, and dropping 20 % of them cost more than it regularized
(measured: 9.8 % vs 5.8 % test error, 2 seeds, 120 epochs); DropConnect drops 50 % of the hidden
layers' weights (Wan et al. 2013).

**DropConnect runs** are of kind ``"dropconnect"`` (this module's :func:`run`, one at a time):
an :class:`~smithing.experiment.mlp.MLPConfig` plus ``dropconnect_options`` for the
:class:`~smithing.nn.dropconnect.DropConnectLinear` layers. Per-epoch validation uses the cheap
``"mean"`` inference ``a(E[u])``; the final train/valid/test metrics use the paper's Gaussian
moment matching (``Z = samples`` draws per unit; the ``"mean"`` ones are kept in
``extra["final_mean_inference"]``). Departure at quick scale: **one mask per mini-batch** (per
layer) instead of the paper's one per example: per-example masks draw
``batch x out x (in + 1)`` numbers per layer, ~100 million per epoch here, too slow for two CPU
cores; paper scale uses per-example masks. So masked, DropConnect learns more slowly and, in
our quick runs, ends *worse* than the unregularized network (~6 % vs ~4.3 % test error; with
p = 0.25 about 4.5 %): the quick variant shows the mechanism, not the paper's gain.

Figures: train / valid / test error per variant (the gap), per-epoch training and validation
error, histograms of the first layer's weights (``log10 |w|``: L1's pile-up of near-zero weights
vs L2's uniform shrinkage), and dropout as model averaging (computed when the figures are drawn,
on digits whatever the scale): the normalized geometric mean over all ``2^n`` thinned networks of
a small net, by brute force (:func:`smithing.nn.dropout.enumerate_subnetworks`), against the
weight-scaled network -- equal when the dropped units feed the softmax directly, a measured gap
when a nonlinear hidden layer follows them.

Paper scale: Srivastava et al. (2014, Table 9; MNIST, 784-1024-1024-2048-10 ReLU) and Wan et
al. (2013; MNIST, 784-800-800-10 ReLU) as variants; see ``references`` for their numbers and
which parts of the recipes are unverified.
"""

from __future__ import annotations

from smithing.experiment import Study, register
from smithing.studies.regularization.analysis import (
    figures,
    table,
)
from smithing.studies.regularization.averaging import (
    AVERAGING,
    averaging_data,
    averaging_figure,
)
from smithing.studies.regularization.charts import (
    curves_figure,
    gap_figure,
    weights_figure,
)
from smithing.studies.regularization.configs import (
    L1,
    L2,
    LOG_EDGES,
    MAX_NORM,
    W_EDGES,
    variants,
)
from smithing.studies.regularization.measure import (
    extract,
    run,
    weight_histograms,
)

REFERENCES = """
Srivastava et al. (2014), JMLR 15, Table 9: MNIST, 784-1024-1024-2048-10 ReLU (C); our paper
scale variants `T9 ...`. Recipe (U, from the paper's Appendix B as summarized in REFERENCES.md):
keep 0.8 of the inputs and 0.5 of the hidden units (B.1, read in the paper), a final momentum
of 0.95 (B.1; constant here, no ramp), max-norm c = 2 in all layers for MNIST (B.1; 3.5 here,
Appendix A's typical 3-4: a departure), ~1e6 weight updates (B.1; 1e5 here). B.1 gives no
learning rate: Appendix A advises 10-100x larger rates with dropout, which diverged in our
reduced run (lr 0.1 with momentum 0.95), so every row uses lr 0.01, decayed exponentially
(0.99 per epoch). The L2 and L1 strengths are
ours (lam = 5 and 0.5 with n = 50,000, i.e. 1e-4 and 1e-5 per example).

| Table 9 method | test error (%) |
|---|---|
| L2 | 1.62 |
| L2 + L1 | 1.60 |
| L2 + KL sparsity | 1.55 |
| max-norm | 1.35 |
| dropout + L2 | 1.25 |
| dropout + max-norm | 1.05 |

Wan et al. (2013), ICML: MNIST, 784-800-800-10 ReLU, no augmentation, mean of 5 runs (C); our
variants `Wan ...`. DropConnect p = 0.5 with per-example masks and Gaussian moment-matching
inference (Z = 100 here; the paper's Z is U); momentum, learning rate, schedule and epochs are
U (ours: momentum 0.9, lr 0.01 decayed 0.99 per epoch, batch 128, 200 epochs).

| Wan et al. 2013 | test error (%) |
|---|---|
| no drop | 1.62 ± 0.037 |
| dropout | 1.28 ± 0.040 |
| DropConnect | 1.20 ± 0.034 |
| 5-network vote (DropConnect) | 1.12 |

Quick scale (digits, 500 training examples) has no published counterpart: expect the
regularizers to shrink the gap between training error (0 %) and test error, with differences
of a fraction of a point between them -- a single test example is 0.33 %.
"""


STUDY = register(
    Study(
        name="regularization",
        mlp_keys=True,
        description="none vs L2 vs L1 vs elastic net vs max-norm vs dropout (+ max-norm) vs "
        "DropConnect: the generalization gap, weight histograms, dropout as model averaging",
        variants=variants,
        figures=figures,
        table=table,
        run=run,
        extract=extract,
        seeds={"quick": 3, "paper": 5},
        references=REFERENCES,
    )
)

__all__ = [
    "LOG_EDGES",
    "W_EDGES",
    "AVERAGING",
    "L2",
    "L1",
    "MAX_NORM",
    "variants",
    "weight_histograms",
    "extract",
    "run",
    "gap_figure",
    "weights_figure",
    "curves_figure",
    "averaging_data",
    "averaging_figure",
    "figures",
    "table",
]

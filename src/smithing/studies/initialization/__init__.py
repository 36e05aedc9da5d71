"""Study ``initialization``: every initializer of :mod:`smithing.init` on the same deep MLP,
and deep *linear* networks with orthogonal vs scaled Gaussian weights.

**Part 1, the same MLP under every rule.** One architecture, activation, optimizer and data
order; only the initial weights differ (all biases 0). The rules, with ``n_in``/``n_out`` a
layer's fans (``gain="paper"`` for the fan-based rules, i.e. each paper's own constant whatever
the activation, so He's sqrt 2 is applied to tanh units too):

* ``uniform``: ``U(-0.05, 0.05)``; ``normal``: ``N(0, 0.01^2)`` (fixed scales, no fans);
* ``standard``: ``U(-1/sqrt(n_in), 1/sqrt(n_in))``, Glorot & Bengio's "standard" baseline (also
  PyTorch's ``nn.Linear`` weight default), written as ``lecun_uniform`` with gain ``1/sqrt 3``;
* ``glorot_uniform`` / ``glorot_normal``: ``Var(W) = 2/(n_in + n_out)`` (Glorot & Bengio,
  AISTATS 2010, eq. 16, "normalized");
* ``he_uniform`` / ``he_normal``: ``Var(W) = 2/n_in`` (He et al., ICCV 2015);
* ``lecun_uniform`` / ``lecun_normal``: ``Var(W) = 1/n_in`` (LeCun et al., Efficient BackProp
  1998);
* ``orthogonal``: ``W = Q`` from the SVD of a Gaussian matrix (Saxe et al., ICLR 2014);
* ``sparse``: 15 non-zero ``N(0, 1)`` incoming weights per unit (Martens, ICML 2010);
* ``lsuv``: orthogonal, then each layer rescaled to unit output variance on a batch of 512
  training examples (Mishkin & Matas, ICLR 2016).

``identity`` is left out: it is meant for square recurrent matrices (Le et al. 2015; see the
recurrent studies); on the MLP's rectangular layers it would copy the first inputs through and
leave the other units with zero weights. ``pretrained`` is the subject of the pretraining
studies. These runs are ``"mlp"`` runs that differ only in ``init``/``init_options``, so the
runner trains all of them (variants x seeds) as one batched ensemble.

Why the fan rules exist: the figure ``variance.png`` rebuilds each network at initialization
(from the stored configurations, :func:`smithing.experiment.mlp.build_model`) and shows, layer by
layer, the variance of the activations (forward) and of the back-propagated gradients
``dL/dz`` (backward) on a batch. With ``n_in Var(W) = 1`` (LeCun) the forward variance of a
near-linear unit is kept, with ``n_out Var(W) = 1`` the backward one; Glorot's rule is the
compromise; a fixed scale lets both shrink geometrically with depth.

**Part 2, deep linear networks** (Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear
dynamics of learning in deep linear neural networks", ICLR 2014). A product of ``depth`` square
``width x width`` matrices is trained by full-batch gradient descent on a synthetic regression
``y = A x`` (``A`` Gaussian with variance ``1/width``; whitened inputs ``x_i = sqrt(width) e_i``,
i.e. Saxe et al.'s input correlation ``Sigma_11 = I``; loss ``1/2 mean ||W_depth ... W_1 x -
y||^2 = ||W_depth ... W_1 - A||_F^2 / 2``), from (a) orthogonal matrices and (b) the "scaled
Gaussian" ``N(0, 1/width)`` (``lecun_normal``, which keeps the average squared norm of a
signal). We count the epochs until the loss falls below 1 % of the zero predictor's, using for
each depth and init the fastest learning rate of a geometric grid (``LINEAR_LRS``, 1 to 0.003,
all trained at once from the same start: the first rate to reach the threshold wins), up to
``epochs`` epochs. The
end-to-end map of orthogonal factors has all singular values 1 at every depth; the product of
Gaussian factors has a spread of singular values that widens with depth, and its slow modes
make learning slow. This protocol (optimal lr per depth on a small grid, synthetic task) is
ours; Saxe et al.'s exact setup was not checked here.

Scales. quick: ``digits``, tanh, 5 hidden layers x 64 units, SGD with momentum 0.9, lr 0.01,
mini-batches of 32, 20 epochs, 3 seeds; linear nets of width 16, depths 1, 2, 4, 8, 16, at most
1000 epochs. paper: MNIST, tanh, 5 hidden layers x 1000 units, plain SGD with mini-batches of
10 as in Glorot & Bengio's Table 1, lr 0.01 (they tuned the learning rate per model; we do not),
30 epochs; linear nets of width 100, depths up to 32, at most 5000 epochs. The paper-scale
settings were not run when this study was written.
"""

from __future__ import annotations

from smithing.experiment import Study, register
from smithing.studies.initialization.analysis import (
    figure_deep_linear,
    figures,
    linear_summary,
    linear_text,
    table,
)
from smithing.studies.initialization.charts import (
    figure_curves,
    figure_final,
    figure_variance,
    init_signals,
    mlp_results,
)
from smithing.studies.initialization.configs import (
    INITS,
    KIND,
    LINEAR_INITS,
    LINEAR_LRS,
    PAPER,
    THRESHOLD,
    VARIANCE_BATCH,
    variants,
)
from smithing.studies.initialization.deep_linear import (
    deep_linear_run,
    deep_linear_weights,
    run,
    train_deep_linear,
)

REFERENCES = """
Glorot & Bengio 2010 (AISTATS), Table 1, MNIST, 5 hidden layers x 1000 units, minibatch 10,
test error (%). These are UNVERIFIED recollections (REFERENCES.md, confidence U), not confirmed
in the paper; the paper also reports Shapeset, CIFAR-10 and Small-ImageNet.

| activation, init | MNIST test error (%) |
|---|---|
| softsign, standard init | 1.64 |
| tanh, standard init | 1.76 |
| tanh, normalized init (glorot_uniform) | 1.64 |
| sigmoid, standard init | 2.21 |

Our paper-scale variants "standard" and "glorot_uniform" (tanh) are the two tanh rows; the
quick scale (digits, 5 x 64) is not comparable in absolute numbers.
Saxe, McClelland & Ganguli 2014 (ICLR) (qualitative, U): deep linear networks started from
orthogonal weights learn in a number of epochs that does not grow with depth, while scaled
random Gaussian initializations slow down as depth grows.
"""

STUDY = register(
    Study(
        name="initialization",
        description="every initializer (uniform, normal, Glorot, He, LeCun, orthogonal, sparse, "
        "LSUV) on the same deep tanh MLP; signal variance per layer at init; deep linear "
        "nets: orthogonal vs scaled Gaussian",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 3, "paper": 3},
        run=run,
        references=REFERENCES,
    )
)

__all__ = [
    "KIND",
    "PAPER",
    "INITS",
    "LINEAR_INITS",
    "LINEAR_LRS",
    "THRESHOLD",
    "VARIANCE_BATCH",
    "variants",
    "deep_linear_weights",
    "train_deep_linear",
    "deep_linear_run",
    "run",
    "mlp_results",
    "init_signals",
    "figure_variance",
    "figure_curves",
    "figure_final",
    "linear_summary",
    "figure_deep_linear",
    "linear_text",
    "figures",
    "table",
]

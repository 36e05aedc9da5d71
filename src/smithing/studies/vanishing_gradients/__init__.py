"""Study ``vanishing-gradients``: why deep sigmoid nets with small weights do not learn.

Back-propagation multiplies the error signal, layer by layer, by the transposed weights and the
activation's derivative: for a hidden layer l with pre-activation ``z_l = W_l h_{l-1} + b_l``
and ``h_l = f(z_l)``,

    dL/dz_l = f'(z_l) * (W_{l+1}^T dL/dz_{l+1}),      dL/dW_l = dL/dz_l h_{l-1}^T.

With ``n`` units per layer and i.i.d. weights of variance ``Var(W)``, the signal's scale changes
by about ``sqrt(n Var(W)) * E|f'|`` per layer. The logistic sigmoid has ``sigma' <= 1/4``
(``sigma'(0) = 1/4``), so with a small fixed-scale init such as ``U(-0.05, 0.05)`` (``n Var(W) =
0.083`` for n = 100) the factor is about 0.07 and the first layer of a 6-hidden-layer net
receives a gradient some 10^7 times smaller than the last (Hochreiter 1991; Bengio, Simard &
Frasconi, "Learning long-term dependencies with gradient descent is difficult", IEEE TNN 1994).
Glorot & Bengio ("Understanding the difficulty of training deep feedforward neural networks",
AISTATS 2010) chose ``Var(W) = 2 / (fan_in + fan_out)`` to keep both the forward activations and
the back-propagated gradients at the same scale in every layer for tanh units (``f'(0) = 1``); He
et al. ("Delving deep into rectifiers", ICCV 2015) ``Var(W) = 2 / fan_in`` for ReLU, whose
derivative is 1 on half of the inputs. The Theano tutorials multiply Glorot's bound by 4 for
sigmoid layers (undoing the 1/4). Too large a scale makes the signal *grow* instead: with
``W ~ N(0, 1)`` and ReLU the gradient norm is ~10^6 at initialization and SGD diverges at once,
unless the gradient norm is clipped (Pascanu, Mikolov & Bengio, "On the difficulty of training
recurrent neural networks", ICML 2013, Algorithm 1).

Variants (all the same MLP, optimizer and data order; see :func:`variants`):

* ``sigmoid-small``: sigmoid + ``U(-0.05, 0.05)``, trained ``LONG`` (10) times longer than the
  others: "or just wait longer?";
* ``sigmoid-glorot-x4``: sigmoid + Glorot uniform with the Theano gain 4;
* ``tanh-glorot``: tanh + Glorot "normalized" init (gain 1, as in the paper);
* ``relu-he``: ReLU + He normal (gain sqrt 2);
* ``relu-N01-noclip`` / ``relu-N01-clip``: the exploding case, ReLU + ``N(0, 1)``, trained
  without and with global gradient-norm clipping (``clip_norm=1``).

Each run is the custom kind :data:`KIND` (:func:`run`): an
:class:`~smithing.experiment.mlp.MLPConfig`
trained by :func:`smithing.train.fit` with a callback that measures, at the end of every epoch
and on a fixed batch of ``DIAG_BATCH`` training examples, the gradient norm of every weight
matrix and the mean / std / saturation of every hidden layer
(:func:`smithing.train.gradient_flow.gradient_flow`). The
same measurements at initialization, histograms of activations (Glorot & Bengio's figure 6) and
of ``log10 |dL/dz|`` (their figure 7, on a log axis) at init and after training, and the
per-step training losses of the first ``STEP_LOSSES`` steps go into the run's extras.

Scales. quick: ``digits``, 6 hidden layers x 64 units, SGD with momentum 0.9, lr 0.04,
mini-batches of 64, 15 epochs (150 for ``sigmoid-small``), 2 seeds. paper: MNIST, 5 hidden
layers x 1000 units (Glorot & Bengio's depth and width), mini-batches of 10 as in their
experiments, lr 0.005 with momentum 0.9, 10 epochs (100 for ``sigmoid-small``); Glorot & Bengio
used plain SGD with a learning rate tuned per model, which we do not (one setting for all).
The paper-scale settings were not run when this study was written.
"""

from __future__ import annotations

from smithing.experiment import Study, register
from smithing.studies.vanishing_gradients.analysis import (
    catch_up,
    figures,
    table,
    top_layer_drift,
)
from smithing.studies.vanishing_gradients.configs import (
    BINS,
    COLORS,
    DIAG_BATCH,
    EXPLODING,
    GOOD,
    KIND,
    LOG_GRAD_EDGES,
    LONG,
    MAIN,
    OWN_KEYS,
    STEP_LOSSES,
    VARIANTS,
    variants,
)
from smithing.studies.vanishing_gradients.measure import (
    diagnose,
    run,
)

REFERENCES = """
Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural networks",
AISTATS 2010. From the abstract (read in a copy of the paper): the logistic sigmoid is unsuited
to deep nets with random initialization because its mean value can drive especially the top
hidden layer into saturation; saturated units move out of saturation by themselves, but
slowly (the plateaus); training may be harder when the singular values of each layer's
Jacobian are far from 1, which motivates the normalized initialization. From secondary
summaries, not checked in the paper (U): with the standard init the back-propagated gradients
shrink towards the lower layers and keep their scale with the normalized init (their figure 7);
tanh nets show no top-layer saturation but a saturation that starts in layer 1 and moves up.
Their MNIST test errors (5 x 1000 units) are in the initialization study (unverified).
Bengio, Simard & Frasconi (IEEE TNN 1994) and Hochreiter (diploma thesis 1991): the
exponential decay of back-propagated errors with depth (in time, for recurrent nets).
Pascanu, Mikolov & Bengio (ICML 2013): rescale the gradient when its norm exceeds a threshold.
"""

STUDY = register(
    Study(
        name="vanishing-gradients",
        mlp_keys=True,
        description="per-layer gradient norms and activations of deep sigmoid / tanh / ReLU "
        "nets at init and through training; exploding gradients and clipping; "
        "or just wait longer?",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 2, "paper": 3},
        run=run,
        references=REFERENCES,
    )
)

__all__ = [
    "KIND",
    "LONG",
    "DIAG_BATCH",
    "BINS",
    "STEP_LOSSES",
    "LOG_GRAD_EDGES",
    "VARIANTS",
    "MAIN",
    "EXPLODING",
    "GOOD",
    "COLORS",
    "OWN_KEYS",
    "variants",
    "diagnose",
    "run",
    "catch_up",
    "top_layer_drift",
    "figures",
    "table",
]

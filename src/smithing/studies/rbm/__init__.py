"""Study ``rbm``: CD-1 vs CD-k vs PCD, judged by the likelihood they reach (AIS and exact).

A Bernoulli RBM ``p(v) = exp(-F(v)) / Z``, ``F(v) = -b^T v - sum_j softplus(c_j + v^T W[:, j])``
is trained by (a) contrastive divergence with one Gibbs sweep, CD-1 (Hinton, "Training products
of experts by minimizing contrastive divergence", Neural Computation 2002), (b) CD-k with ``k``
sweeps, and (c) persistent CD / stochastic maximum likelihood, PCD (Tieleman, "Training
restricted Boltzmann machines using approximations to the likelihood gradient", ICML 2008), all
through :func:`smithing.pretrain.rbm.train_rbm`. Each trained model is then scored by its
average test log-probability ``mean_n(-F(v_n)) - log Z``, with ``log Z`` estimated by annealed
importance sampling from a base-rate model (:func:`smithing.pretrain.ais.ais_log_z`; Salakhutdinov
& Murray, "On the quantitative analysis of deep belief networks", ICML 2008) and, when the
smaller layer has at most ``exact_max_units`` units, computed exactly by enumeration
(:func:`smithing.pretrain.ais.exact_log_z`), so the AIS estimate and its +-3 std interval can be
checked against the truth.

Per epoch: reconstruction error, scikit-learn's stochastic pseudo-log-likelihood and the
free-energy gap ``mean F(valid) - mean F(train)`` (Hinton's guide, Sec. 6). Figures: those
curves, the log-likelihoods (AIS beside exact), the filters ``W[:, j]`` and Gibbs chains run
from random states (the model's own samples).

Scales. ``quick``: the embedded 8x8 ``digits``, binarized *stochastically* once with a fixed
seed (``binarize_seed``, independent of the run's seed: every run sees the same binary data),
16 hidden units, so the exact ``log Z`` (2^16 hidden states) is available; AIS with 1,000
uniform betas and 100 runs. ``paper``: ``mnist-binarized`` (50k train / 10k valid / 10k test,
one stochastic binarization), 500 hidden units, CD-1 / CD-3 / CD-25 / PCD-1, AIS with the
authors' ~14,500-beta schedule and 100 runs, and the training recipe of Salakhutdinov's
``rbm.m`` as two derivative copies give it (learning rate 0.05, momentum 0.5 then 0.9 after
epoch 5, weight cost 2e-4, batch 100, weights N(0, 0.01^2), biases zero, sampled negative
visibles, no learning-rate decay). Departures: 100 epochs with ``k`` fixed (the paper's epoch
count, and whether ``k`` was raised during CD-25 training, are unknown to us); they trained on
all 60,000 training images, we on the first 50,000, binarized by our own draw. The paper
scale's ``cd-25-schedule`` follows those code copies further: ``k = min(25, ceil(epoch /
10))`` over 250 epochs (config ``k_step=10``), and the training images binarized afresh at
every use (``binarize="resample"``: the grey pixels are the probabilities; the validation and
test sets, and AIS's base rate, keep the one fixed draw); it is the variant of the
``rbm-cd25`` reproduction, while ``rbm-cd-ordering`` compares CD-1, CD-3 and CD-25 at fixed ``k``.
``cd-25-schedule-decay`` is a diagnostic, not a recipe: the same with the learning rate decayed
linearly to 0 over the 250 epochs, to ask whether a constant rate at the end costs nats.

The run stores the learned filters (at most ``n_filters`` columns of ``W``, with ``b`` and
those units' ``c``) and the Gibbs-chain images in ``extra``: figures are drawn from the store
without re-training (samples are drawn at the end of the run with the run's generator).
"""

from __future__ import annotations

from smithing.experiment import Paper, Reproduction, Study, register, register_reproduction
from smithing.studies.rbm.charts import (
    figures,
)
from smithing.studies.rbm.configs import (
    DEFAULTS,
    METHODS,
    PAPER_LOG_PROB,
    binary_splits,
    k_per_epoch,
    resolve_config,
    train_probabilities,
    variants,
)
from smithing.studies.rbm.measure import (
    gibbs_snapshots,
    run,
)
from smithing.studies.rbm.tabulate import (
    table,
)

REFERENCES = "\n".join(
    [
        (
            'Salakhutdinov & Murray, "On the quantitative analysis of deep belief '
            'networks", ICML 2008: 500-hidden-unit RBMs on binarized MNIST, average test '
            "log-probability estimated by AIS (base-rate model, ~14,500 inverse "
            "temperatures, 100 runs, log Z reported with ±3 std)."
        ),
        "",
        "| model (500 hidden units) | test log-probability (nats) | confidence |",
        "|---|---|---|",
        "| RBM trained with CD-25 | -86.34 | C |",
        "| RBM trained with CD-3 | about -105.5 | U (unverified: confirm in the paper) |",
        "| RBM trained with CD-1 | about -125.5 | U (unverified: confirm in the paper) |",
        "| mixture of 500 Bernoullis (baseline) | -137.64 | V |",
        "",
        (
            "C: appears in independent re-tabulations; V: read in the source; U: unverified "
            "recollection. The quick scale (8x8 digits, 16 hidden units) is not comparable "
            "with these numbers: it checks AIS against the exact log Z and shows the "
            "curves, filters and samples."
        ),
    ]
)

STUDY = register(
    Study(
        name="rbm",
        metric="test_log_prob",
        metric_percent=False,
        description="CD-1 vs CD-k vs PCD RBMs: AIS (and exact) test log-likelihood, "
        "reconstruction / pseudo-likelihood curves, filters and samples",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 3, "paper": 1},
        datasets={"quick": "digits", "paper": "mnist-binarized"},
        run=run,
        references=REFERENCES,
    )
)

# ------------------------------------------------------------------ reproductions

SALAKHUTDINOV_MURRAY = Paper(
    "Salakhutdinov & Murray", "On the quantitative analysis of deep belief networks", "ICML", 2008
)
#: where the paper scale departs from the authors' code (RECIPES, issue 16)
_RBM_DEPARTURES = (
    "the paper's epochs and whether k was raised gradually during CD-25 training are not "
    "known (U); rbm-cd25 follows two copies of the authors' rbm.m (k = ceil(epoch / 10) up "
    "to 25, reached at epoch 241, 250 epochs: the cd-25-schedule variant), "
    "rbm-cd-ordering holds k fixed for 100 epochs at every k, so that the three differ only "
    "in k",
    "50,000 training images (the authors' code: all 60,000), binarized by our own draws: the "
    "code's Matlab draws (rand('state', 30)) cannot be reproduced; copies of the authors' "
    "rbm.m re-binarize each mini-batch at every use (data > rand), which cd-25-schedule does "
    "(the validation and test sets keep one fixed draw), while TFDS attributes one fixed "
    "binarization to this paper: the sources disagree",
)
_RBM_STATUS = (
    "AIS protocol confirmed from Salakhutdinov's AIS code (C: betas 0:1/1000:0.5, "
    "0.5:1/10000:0.9, 0.9:1/100000:1, 100 runs, a base-rate model of the training data; "
    "the Matlab vector repeats 0.5 and 0.9, which only adds two Gibbs steps); training "
    "lr 0.05, weight cost "
    "2e-4, batch 100, init N(0, 0.01^2), sampled negative visibles from two derivative copies "
    "of his rbm.m (C, copies); epochs and CD schedule unknown (U); the paper's text was not "
    "found"
)

register_reproduction(
    Reproduction(
        name="rbm-cd25",
        paper=SALAKHUTDINOV_MURRAY,
        result="RBM, 500 hidden units, binarized MNIST, trained by CD-25: AIS estimate of the "
        "average test log-probability",
        published=-86.34,
        target=(">=", -89.5),
        study=STUDY.name,
        variants=("cd-25-schedule",),
        metric="test_log_prob",
        display="nats",
        seeds=1,  # a run takes more than an hour on the 2-core CPU
        cpu_time="about 1.5 h (5,258 s measured, 2026-12-04)",
        time_basis="125,000 updates of batch 100 at k = 1..25 (about 1.6 million Gibbs sweeps "
        "of the mini-batch), then AIS with ~14,500 betas x 100 runs; one torch thread on a "
        "free core of this 2-core CPU",
        gpu_time="5-10 min (estimate)",
        departures=(
            *_RBM_DEPARTURES,
            "1 seed: one run takes more than an hour on the 2-core CPU",
        ),
        recipe_status=_RBM_STATUS + "; -86.34 from independent re-tabulations (C), not "
        "re-read in the paper",
    )
)
register_reproduction(
    Reproduction(
        name="rbm-cd-ordering",
        paper=SALAKHUTDINOV_MURRAY,
        result="RBMs of 500 hidden units trained by CD-1, CD-3 and CD-25: AIS test "
        "log-probabilities in that order",
        published="CD-1 about -125.5, CD-3 about -105.5, CD-25 -86.34 nats (CD-1, CD-3: "
        "unverified, confirm in the paper)",
        target=("increasing", None),
        study=STUDY.name,
        variants=("cd-1", "cd-3", "cd-25"),
        metric="test_log_prob",
        display="nats",
        seeds=1,
        cpu_time="2-2.5 h (estimate)",
        time_basis="50,000 updates each: CD-1 ~10 min, CD-3 ~17 min, CD-25 1.5-2 h (timed on "
        "this CPU); the CD-25 run is the one of rbm-cd25 (stored once)",
        gpu_time="10-15 min (estimate)",
        departures=(
            *_RBM_DEPARTURES,
            "the issue's second condition (each within 5 nats of the paper's value) is not "
            "checked: the CD-1 and CD-3 values are unconfirmed",
            "1 seed: the CD-25 run takes more than an hour on the 2-core CPU",
        ),
        recipe_status=_RBM_STATUS + "; CD-1 and CD-3 values unconfirmed recollections (U)",
    )
)

__all__ = [
    "DEFAULTS",
    "METHODS",
    "PAPER_LOG_PROB",
    "variants",
    "resolve_config",
    "binary_splits",
    "k_per_epoch",
    "train_probabilities",
    "gibbs_snapshots",
    "run",
    "figures",
    "table",
]

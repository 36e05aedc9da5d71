"""Study ``dbn``: a Deep Belief Network pretrained greedily with CD-1, then fine-tuned by backprop,
beside the same network fine-tuned from a random initialization.

Pretraining (Hinton, Osindero & Teh, "A fast learning algorithm for deep belief nets", Neural
Computation 2006): RBM ``l`` is trained by CD-1 on the hidden probabilities of RBM ``l - 1``
for the training images (:func:`smithing.pretrain.stack.pretrain_stack` of a ``"dbn"``
:class:`~smithing.pretrain.stack.StackSpec`, one generator for the whole stack; grey levels in
[0, 1] used as the bottom RBM's visible probabilities, as in Hinton & Salakhutdinov's code). The
stack is unrolled into a sigmoid MLP with a fresh softmax layer
(:meth:`~smithing.pretrain.stack.Stack.to_mlp`; Hinton & Salakhutdinov, "Reducing the
dimensionality of data with neural networks", Science 2006) and fine-tuned with
:func:`smithing.train.fit` (:func:`~smithing.pretrain.stack.finetune`). The ``no-pretraining``
variant is the same MLP with the Theano tutorials' sigmoid initialization ``W ~ U(+-4 sqrt(6 /
(fan_in + fan_out)))`` (Glorot & Bengio 2010 with gain 4) for its hidden layers; both variants
share the output layer's initialization (``output_init``) and the fine-tuning recipe, with the
tutorials' early stopping on the validation error (a patience budget of ``patience`` epochs,
raised to twice the epoch on every improvement below 0.995 x best; the best epoch's weights
are restored).

Scales. ``quick``: the embedded 8x8 ``digits`` (1197 / 300 / 300), a 64-100-100 stack, 10
CD-1 epochs per layer (batch 20, learning rate 0.05, momentum 0.5 then 0.9, weight cost 2e-4,
weights N(0, 0.01^2), visible biases at logit(mean), sampled negative visibles), fine-tuned by
SGD with momentum 0.9 and learning rate 0.05 on mini-batches of 10 for at most 40 epochs
(momentum, unlike the tutorial's plain SGD, so that both nets converge within so few updates),
output layer at zero, 5 seeds. ``paper``: MNIST (50k / 10k / 10k), 784-500-500-2000 pretrained
exactly as Hinton & Salakhutdinov's code (``mnistclassify.m``, ``rbm.m``) does: 50 CD-1 epochs
per layer, mini-batches of 100, learning rate 0.1 for weights and biases, weight cost 2e-4 on
the weights, momentum 0.5 for epochs 1-5 then 0.9, weights N(0, 0.1^2) and zero biases, the
negative phase on the visible probabilities (``negative_visible="mean"``), the hidden
probabilities passed up; the softmax layer starts at N(0, 0.1^2) (``backpropclassify.m``).
Fine-tuning departs from the code (conjugate gradients, see :data:`REFERENCES`): plain SGD,
learning rate 0.1, mini-batches of 10 (the Theano DBN tutorial's), at most 200 epochs (the
code's count) with the patience rule above (budget 10 epochs) on the validation error.

Per run, ``extra`` holds the pretraining curves of each layer, the first-layer filters (at most
``n_filters``) before and after fine-tuning and, for the pretrained DBN, its samples: a Gibbs
chain of ``sample_steps`` sweeps in the top RBM from random states, then one down pass through
the directed layers (:meth:`~smithing.pretrain.dbn.DBN.sample`).
"""

from __future__ import annotations

from smithing.experiment import Paper, Reproduction, Study, register, register_reproduction
from smithing.studies.dbn.charts import (
    figures,
)
from smithing.studies.dbn.configs import (
    DEFAULTS,
    PAPER,
    resolve_config,
    variants,
)
from smithing.studies.dbn.measure import (
    run,
)
from smithing.studies.dbn.tabulate import (
    table,
)

#: where the paper scale departs from Hinton & Salakhutdinov's code (RECIPES, issue 16): the
#: references text and the reproduction's declaration list the same items
DEPARTURES = (
    "fine-tuning by plain SGD (no momentum) on the mean cross-entropy, learning rate 0.1, "
    "mini-batches of 10, every layer trained from epoch 1, at most 200 epochs, stopped by the "
    "Theano tutorials' patience rule on the validation error (a 10-epoch budget raised to "
    "twice the epoch on every improvement below 0.995 x best) with the best validation "
    "epoch's weights restored. The code: conjugate gradients (minimize.m, 3 line searches per "
    "call) on the summed cross-entropy of 1000-image batches, the softmax layer alone for "
    "epochs 1-5, 200 epochs, no model selection. Why: minimize.m is not ported, and the "
    "paper's text says 'steepest descent and a small learning rate' without the rate (its "
    "supporting material could not be read), so the Theano DBN tutorial's SGD settings "
    "(lr 0.1, batch 10; 1.34 % with a DBN on this split) are used, with its stopping rule",
    "50,000 training images and 10,000 held out for validation, which the stopping rule uses "
    "(the code: all 60,000, no validation, the error after epoch 200)",
    "mini-batches reshuffled every epoch, in pretraining and fine-tuning (train_rbm and fit "
    "draw a new permutation each epoch; the code: one fixed permutation, rand('state', 0), "
    "never reshuffled)",
    "each RBM's inputs are the hidden probabilities under the RBM below's final weights (the "
    "code: the probabilities computed batch by batch during its last epoch, weights still "
    "moving)",
    "Matlab's random streams cannot be reproduced: the initial weights, the batch order and "
    "the CD samples differ; float32 (Matlab: double)",
)

REFERENCES = "\n".join(
    [
        (
            "Published MNIST test errors of pretrained deep belief networks (50k/10k/10k or "
            "60k/10k splits):"
        ),
        "",
        "| model | test error (%) | confidence |",
        "|---|---|---|",
        "| Hinton & Salakhutdinov 2006: 784-500-500-2000, CD-1, backprop (CG) | 1.2 | C |",
        "| Hinton, Osindero & Teh 2006: same stack, labels in top RBM, up-down | 1.25 | C |",
        "| Theano DBN tutorial: 3 x 1000, CD-1 (100 epochs/layer), SGD lr 0.1 | 1.34 | V |",
        "| Larochelle et al. 2007: DBN-3 on MNIST 50k/10k/10k | 1.24 | U |",
        "",
        (
            "C: independent re-tabulations; V: read in the source; U: unverified. Erhan et "
            "al. 2010 (JMLR) found the no-pretraining error grows and scatters beyond two "
            "hidden layers (U). The quick scale (8x8 digits, 300 test images: one error = "
            "0.33 %) is not comparable with these numbers."
        ),
        "",
        (
            "The paper scale's recipe, confirmed in Hinton & Salakhutdinov's Matlab code "
            "(mnistclassify.m, rbm.m, backpropclassify.m; C): 784-500-500-2000; 50 CD-1 "
            "epochs per layer on mini-batches of 100; weights N(0, 0.1^2), biases zero; "
            "learning rate 0.1 for weights and biases; weight cost 2e-4 on the weights; "
            "momentum 0.5 for epochs 1-5, then 0.9; the negative phase on the visible "
            "probabilities; the hidden probabilities passed to the next RBM; softmax weights "
            "and biases N(0, 0.1^2). Departures from it:"
        ),
        "",
        *(f"- {d}" for d in DEPARTURES),
    ]
)

STUDY = register(
    Study(
        name="dbn",
        description="DBN (greedy CD-1 pretraining + backprop fine-tuning) vs the same net from "
        "random init: learning curves, filters, samples, test error",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 5, "paper": 3},
        datasets={"quick": "digits", "paper": "mnist"},
        run=run,
        references=REFERENCES,
    )
)

# ------------------------------------------------------------------ reproductions

register_reproduction(
    Reproduction(
        name="dbn",
        paper=Paper(
            "Hinton & Salakhutdinov",
            "Reducing the dimensionality of data with neural networks",
            "Science 313:504-507",
            2006,
        ),
        result="DBN 784-500-500-2000, greedy CD-1 pretraining, backprop fine-tuning: MNIST "
        "test error",
        published=1.2,
        target=("<=", 1.30),
        study=STUDY.name,
        variants=("dbn-pretrained",),
        metric="test_error",
        seeds=3,
        cpu_time="1-2 h (estimate)",
        time_basis="pretraining 3 x 25,000 CD-1 updates of batch 100 at 10-30 ms, about 20 min; "
        "fine-tuning at most 200 x 5,000 SGD updates of batch 10 at ~6 ms, at most 100 min, "
        "less when the patience rule ends it (updates timed on this CPU)",
        gpu_time="15-30 min (estimate)",
        departures=DEPARTURES,
        recipe_status="pretraining and the softmax initialization confirmed from Hinton & "
        "Salakhutdinov's code (C) and followed exactly; the code fine-tunes by conjugate "
        "gradients, which we replace by SGD (departure); the fine-tuning recipe behind the "
        "published 1.2 % is in the paper's supporting online material, which could not be "
        "read (U); Hinton's own 2010 talk (msr10 slides) reports 1.15 % for the same "
        "pipeline",
    )
)

__all__ = [
    "DEFAULTS",
    "PAPER",
    "variants",
    "resolve_config",
    "run",
    "figures",
    "table",
]

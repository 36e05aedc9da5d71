"""Study ``optimizer-race``: every optimizer of :mod:`smithing.optim` on 2-D surfaces and on an MLP.

**(a) The race on surfaces** (variants ``<surface>/<optimizer>``, kind ``"surface"``): each
optimizer (``sgd``, ``momentum``, ``nesterov``, ``adagrad``, ``rmsprop``, ``adam``, ``adadelta``,
``adamw``, all with their :mod:`smithing.optim` defaults, e.g. momentum 0.9 and AdamW's weight
decay 0.01) runs ``torch.optim`` on one 2-vector parameter (float64) for ``STEPS`` steps from
the surface's start point, on Rosenbrock's valley, Beale's function, the saddle ``x^2 - y^2`` and
an ill-conditioned quadratic (condition number 50), all from :mod:`smithing.data.surfaces`.

*Learning rates.* For each (surface, optimizer) the learning rate is chosen by a grid, at run
time: the half-decade grid ``SURFACE_LR_GRID`` (1e-4 to ~31.6) is run from the exact start and
the rate with the lowest final loss wins, among runs that stayed inside the plot window
enlarged by half its size on each side (a run that leaves it is frozen there and disqualified;
ties go to the smaller rate). The grid's rates and the seeds run at once as the independent
rows of one parameter (see :func:`race`); seed 0's drawn run is the grid's own run at the chosen
rate (bitwise). The criterion favours the largest rate that still converges, so the chosen
rates sit near the edge of stability and their paths bounce before they settle: that is what a
tuned rate looks like on these surfaces. The saddle has no minimum, so "lowest final
loss" would just pick the largest step; there each optimizer uses the rate it was given on the
quadratic (``LR_FROM``), where the steep direction (curvature 50) limits the step, as steep
directions do in a network's loss; the saddle then asks how fast each optimizer leaves a flat,
negatively curved direction at that rate. The table lists every chosen rate.

*Seeds.* Seed 0 starts exactly at the surface's start point and is what the figures draw; seed
``s > 0`` adds Gaussian jitter of ``JITTER`` times the window's width and height to the start
(generator seeded ``s``) with the same learning rate; the table reports the median final loss
over all seeds beside seed 0's, and how many runs left the window.

*Figures.* Trajectories over log-spaced contours, loss per step (log y), and ``race.gif``, the
animation (:func:`smithing.plots.animation.race_gif`, ``GIF_FRAMES`` frames, ~0.2 MB).

Expected (the lecture's point, cs231n "Neural Networks 3"): momentum and Nesterov overshoot
and oscillate across narrow valleys but move fast along them; per-coordinate adaptive methods
(AdaGrad, RMSprop, Adam) are not slowed down by ill-conditioning when the valley is aligned with
the axes, and escape the saddle quickly because they rescale the tiny gradient along ``y``.

**(b) The race on a real task** (variants ``mlp/<optimizer>/lr=<lr>``, kind ``"mlp"``): an MLP
with ReLU units (quick: digits, 64-100-10, batch 64, 20 epochs; paper: MNIST, 784-1000-1000-10,
batch 128, 50 epochs, the multilayer network of Kingma & Ba 2015, section 6.2, trained here
without dropout) for each optimizer and each learning rate of a half-decade grid of six values
around the optimizer's customary rate (``MLP_LR_GRID``), several seeds. The figures and the
table use, per optimizer, the rate with the lowest mean final *validation* error (ties: lower
validation loss); the test error is reported only for that rate. The grid x seeds of one
optimizer train as one batched ensemble, so the per-epoch wall time of an optimizer is that of
its whole ensemble (the same size for every optimizer).
"""

from __future__ import annotations

from smithing.experiment import RunResult, Study, register
from smithing.studies.optimizer_race.charts import (
    figures,
)
from smithing.studies.optimizer_race.configs import (
    chosen_lrs,
    mlp_name,
    variants,
)
from smithing.studies.optimizer_race.surfaces import (
    GIF_FRAMES,
    JITTER,
    LR_FROM,
    MLP_BASE,
    MLP_LR_GRID,
    OPTIMIZERS,
    SEED_BLOCK,
    STEPS,
    SURFACE_LR_GRID,
    SURFACE_NAMES,
    race,
    race_block,
    run_surface,
    start_point,
    tune_lr,
)
from smithing.studies.optimizer_race.tabulate import (
    table,
)

REFERENCES = """
Qualitative findings only; no numbers are claimed for these comparisons.
- Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, section 6.2 and figure 2
  (multilayer networks on MNIST, 784-1000-1000-10 ReLU, minibatch 128): Adam's training cost
  falls fastest of the methods compared (AdaGrad, RMSProp, SGD with Nesterov momentum,
  AdaDelta). As recalled (confidence U: check the panel before quoting), the compared panel
  trains with dropout; this study trains without dropout and tunes every rate on the
  validation set.
- cs231n (Stanford), "Neural Networks Part 3: learning and evaluation", the animations by Alec
  Radford: momentum-based methods overshoot ("a ball rolling down the hill"); at a saddle point
  SGD has a hard time breaking the symmetry, while RMSprop's denominator raises the effective
  learning rate along the flat direction and lets it escape.
- Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
  learning", ICML 2013: Nesterov's look-ahead gradient corrects the velocity sooner than
  classical momentum, which damps oscillations.
"""


def run(config: dict, seed: int, device: str = "cpu") -> RunResult:
    """The runner's entry point for this study's non-"mlp" (``"surface"``) variants."""
    return run_surface(config, seed, device)


STUDY = register(
    Study(
        name="optimizer-race",
        description="sgd, momentum, nesterov, adagrad, rmsprop, adam, adadelta, adamw: "
        "trajectories on 2-D surfaces (animated) and an MLP's learning curves with tuned rates",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 3, "paper": 3},
        run=run,
        references=REFERENCES,
    )
)

__all__ = [
    "OPTIMIZERS",
    "SURFACE_NAMES",
    "SURFACE_LR_GRID",
    "LR_FROM",
    "STEPS",
    "JITTER",
    "GIF_FRAMES",
    "MLP_LR_GRID",
    "MLP_BASE",
    "race",
    "start_point",
    "SEED_BLOCK",
    "race_block",
    "tune_lr",
    "run_surface",
    "variants",
    "mlp_name",
    "chosen_lrs",
    "figures",
    "table",
]

"""Gradient-flow diagnostics: per-layer gradient norms, activation statistics, saturation,
histograms, and warnings for vanishing, exploding and non-finite gradients.

Three tools:

* :class:`GradientMonitor` attaches hooks to a model and, every ``every``-th training step,
  records per layer the gradient norm of each weight matrix, the mean/std of pre-activations,
  activations and back-propagated gradients, the fraction of saturated (or dead) units and,
  when asked, histograms; it warns when gradients vanish, explode or are not finite;
* :func:`layer_gradient_norms` ``(model, loss) -> {layer: ||dL/dW||}`` without touching
  ``.grad``;
* :func:`activation_stats` ``(model, x) -> {layer: {stat: value}}`` for one forward pass (the
  "activations at initialization" figures).

One-batch measurements built on these (signal variances per layer, a model's whole gradient
flow with histograms, gradient norms through time) are in :mod:`smithing.train.gradient_flow`.

Layers are named by their module names (``"net.1"`` is the first Linear of an ``MLP``).
Monitored layers are ``nn.Linear`` by default (``layers=`` picks others); activation modules are
the modules of ``torch.nn.modules.activation`` and ``nn.Identity``.

Saturation thresholds (module constants, in the spirit of Glorot & Bengio, "Understanding the
difficulty of training deep feedforward neural networks", AISTATS 2010, section 3, whose figures
track the saturation of sigmoid and tanh units):

* sigmoid: a unit value is saturated when ``a < 0.01`` or ``a > 0.99`` (``SIGMOID_SATURATION``);
* tanh and softsign: when ``|a| > 0.99`` (``TANH_SATURATION``);
* rectifiers (ReLU, ReLU6, LeakyReLU, ELU, PReLU, RReLU, CELU, SELU): a *unit* is dead when
  its output is ``<= 0`` for every example of the batch (so its incoming weights get no
  gradient through the positive branch); ``zero`` is the fraction of values ``<= 0``.

Stats are means over all examples and units of the batch; ``std`` is the population standard
deviation (``correction=0``). The back-propagated gradient of a layer is ``dL/dz`` with ``z``
the layer's output (a Linear layer's pre-activation), captured by a tensor hook; a module
called several times in one forward (weight sharing, a recurrent cell) reports its last call's
values. Monitoring works on plain models (not inside ``torch.func.vmap``).
"""

from __future__ import annotations

from smithing.train.diagnostics.monitor import (
    GradientMonitor,
)
from smithing.train.diagnostics.stats import (
    SIGMOID_SATURATION,
    TANH_SATURATION,
    ExplodingGradientWarning,
    GradientWarning,
    NonFiniteGradientWarning,
    VanishingGradientWarning,
    activation_stats,
    is_activation,
    layer_gradient_norms,
)

__all__ = [
    "SIGMOID_SATURATION",
    "TANH_SATURATION",
    "ExplodingGradientWarning",
    "GradientMonitor",
    "GradientWarning",
    "NonFiniteGradientWarning",
    "VanishingGradientWarning",
    "activation_stats",
    "is_activation",
    "layer_gradient_norms",
]

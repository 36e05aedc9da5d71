"""Weight initializers by name, for any PyTorch model.

Two entry points:

* ``initialize(weight, name, *, generator=None, gain=None, activation=None, stacked=False,
  **params)`` fills one weight tensor in place (``(out_features, in_features)`` for a Linear
  layer, torch's ``(out, in, *kernel)`` for a convolution);
* ``apply(model, name, *, generator=None, bias=0.0, layers=(nn.Linear,), activation=None,
  gain=None, **params)`` initializes the weight of every selected layer of ``model`` (and sets its
  bias), including the model-level rules ``lsuv`` (needs ``data=``) and ``pretrained`` (needs
  ``source=``: ``(W, b)`` pairs, a callable, or a registered source name; the ``"dbn"`` and
  ``"sda"`` pretraining sources are registered by the experiment layer, ``import
  smithing.experiment``, since this core module imports neither the pretraining code nor the
  datasets).

**Names.** Each rule has one name (``smithing list``) and may have aliases, the names torch and
Keras give it (:data:`ALIASES`): ``xavier_uniform`` / ``xavier_uniform_`` for ``glorot_uniform``,
``kaiming_normal`` for ``he_normal``, ``eye`` for ``identity``, Keras' ``random_normal`` for
``normal``, ...; an alias means our rule with our defaults. A misspelt name is answered with the
closest name or alias (``xavier_unifrom``: did you mean 'xavier_uniform', an alias of
'glorot_uniform'?).

Fans follow torch's convention: for a weight of shape ``(out, in, *kernel)``,
``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``; for ``nn.Linear``,
``fan_in = in_features``.

**Gains.** A name means its paper's rule, whatever the network's activation:
``apply(tanh_mlp, "lecun_normal")`` is LeCun's ``Var(W) = 1/fan_in``. The fan-based rules
(``glorot_*``, ``he_*``, ``lecun_*``) and ``orthogonal`` multiply their standard deviation by a
gain, given by ``gain=``:

* ``None`` (default) or ``"paper"``: the paper's rule; gain 1 for Glorot, LeCun and orthogonal,
  while He's ``sqrt 2`` is part of He's rule itself (``Var(W) = 2/fan_in``);
* ``"auto"``: the gain of the network's activation as ``torch.nn.init.calculate_gain`` gives it
  (sigmoid 1, tanh 5/3, relu sqrt 2, leaky_relu(0.01) ``sqrt(2/(1 + 0.01^2))``, linear 1; elu,
  softplus and softsign, which torch does not list, 1: :mod:`smithing.nn.activations`), taken
  from the ``activation=`` argument, else from ``model.activation`` (an ``MLP``); an error when
  no activation is known. With ``"auto"``, ``he_*`` and ``lecun_*`` coincide (both
  ``gain/sqrt(fan_in)``), as torch's ``kaiming_*`` does for a named nonlinearity;
* a positive number, e.g. ``gain=4`` for the Theano deep-learning tutorial's sigmoid layers
  (``W ~ U(+-4 sqrt(6/(fan_in+fan_out)))``).

The same gain is used for every selected layer, the output layer included (as Glorot & Bengio
and He et al. do).

**Randomness.** Every rule takes an optional ``generator``; same generator state, same weights
(bitwise on CPU). ``stacked=True`` treats the leading axis of ``weight`` as the ensemble members
axis: member ``i`` is initialized as ``weight[i]`` would be alone, one after the other from the
same generator.
"""

from __future__ import annotations

from smithing.init import rules as _rules  # noqa: F401 (registers the scaled tensor rules)
from smithing.init import structured as _structured  # noqa: F401 (then the structured ones)
from smithing.init.lsuv import (
    lsuv,
)
from smithing.init.pretrained import (
    register_pretrained,
)
from smithing.init.registry import (
    INITIALIZERS,
    PRETRAINED,
    Initializer,
    LayerSelector,  # noqa: F401 (a type alias others import from here)
    fans,
    names,
)
from smithing.init.resolve import (
    ALIASES,
    apply,
    initialize,
    select_layers,
)

__all__ = [
    "ALIASES",
    "INITIALIZERS",
    "PRETRAINED",
    "Initializer",
    "apply",
    "fans",
    "initialize",
    "lsuv",
    "names",
    "register_pretrained",
    "select_layers",
]

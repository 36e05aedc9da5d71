"""Autoencoders, denoising and contractive autoencoders, and stacked denoising autoencoders.

An autoencoder with codes ``h = s(W x + b)`` (``W (n_hidden, n_visible)``, ``nn.Linear``
layout) and reconstruction ``z = s'(W' h + c)`` is trained to make ``z`` close to ``x``; the
decoder weight is ``W' = W^T`` (**tied**, the default) or a separate matrix (**untied**).

* **Denoising** (Vincent, Larochelle, Bengio & Manzagol, "Extracting and composing robust
  features with denoising autoencoders", ICML 2008; Vincent, Larochelle, Lajoie, Bengio &
  Manzagol, "Stacked denoising autoencoders", JMLR 11, 2010): the input is first corrupted,
  ``x~ ~ q(x~ | x)``, and the *clean* ``x`` is reconstructed from ``h = s(W x~ + b)``. The
  corruptions (:func:`corrupt`, JMLR 2010 Sec. 4.3): **masking** (each component set to 0 with
  probability ``rate``), **additive Gaussian** (``x~ = x + N(0, rate^2)``; ``rate`` is the
  standard deviation) and **salt-and-pepper** (each component, with probability ``rate``, set to
  ``low`` or ``high``, 0 or 1, with probability 1/2 each).
* **Reconstruction loss** (JMLR 2010 Sec. 2.3): cross-entropy
  ``L_H(x, z) = -sum_i [x_i log z_i + (1 - x_i) log(1 - z_i)]`` with a sigmoid decoder for data
  in [0, 1], or squared error ``L_2(x, z) = ||x - z||^2`` with an affine (``"linear"``) decoder
  for real-valued data; summed over components, averaged over the mini-batch.
* **Emphasis** (JMLR 2010 Sec. 4.4, "emphasized denoising autoencoder"): the per-component loss
  is weighted ``alpha`` on the corrupted components and ``beta`` on the others,
  ``L = alpha sum_{i in J(x~)} l_i + beta sum_{i not in J(x~)} l_i`` (``emphasis=(alpha,
  beta)``; "full emphasis" is ``beta = 0``). For Gaussian noise every component is corrupted.
* **Contractive penalty** (Rifai, Vincent, Muller, Glorot & Bengio, "Contractive
  auto-encoders: explicit invariance during feature extraction", ICML 2011, Sec. 2):
  ``lambda ||J_f(x)||_F^2`` with ``J_f = d h / d x = diag(s'(a)) W``, so
  ``||J_f(x)||_F^2 = sum_j s'(a_j)^2 sum_i W_ji^2``; for sigmoid codes
  ``s'(a_j) = h_j (1 - h_j)`` (their closed form), tanh ``1 - h_j^2``, relu ``1[a_j > 0]``. It is
  evaluated at the clean input ``x`` (as Rifai et al.; with corruption the two are combined).

Departures: masking zeroes each component independently with probability ``rate`` (the Theano
tutorial's binomial mask) instead of zeroing exactly ``rate * d`` components chosen at random
(Vincent 2008); initialization is the tutorial's ``W ~ U(+-4 sqrt(6 / (n_visible + n_hidden)))``
for sigmoid codes (no factor 4 for tanh / relu) with zero biases.

Every pure function and the module accept an optional leading members axis (``W (M, n_hidden,
n_visible)``, data ``(M, batch, n_visible)``, or members-free data broadcast to every member),
so an ensemble of autoencoders trains as batched matmuls; random functions draw with
``torch.rand_like`` when no generator is given (vmap-safe).

**Stacks.** :func:`dae_layer` builds layer ``l`` of an SdA, :class:`DAEPretrainer` is a
:class:`~smithing.pretrain.greedy.LayerPretrainer`; :class:`StackedDAE` (an SdA) mirrors
:class:`~smithing.pretrain.dbn.DBN` (``encoders()``, ``upward``, ``to_mlp``) and
:func:`train_sda` mirrors :func:`~smithing.pretrain.dbn.train_dbn`. Pretrain, unroll and
fine-tune an SdA through the one stack API, :func:`smithing.pretrain.stack.pretrain_stack` with
``StackSpec("sda", ...)`` (which also backs the ``"sda"`` source of the ``pretrained``
initializer, registered by :mod:`smithing.experiment.pretrained`).
"""

from __future__ import annotations

from smithing.pretrain.autoencoder.functional import (
    CODE_ACTIVATIONS,
    CORRUPTIONS,
    contractive_penalty,
    corrupt,
    corrupt_with_mask,
    dae_loss,
    reconstruction_loss,
)
from smithing.pretrain.autoencoder.modules import (
    DenoisingAutoencoder,
)
from smithing.pretrain.autoencoder.stacks import (
    DAEPretrainer,
    StackedDAE,
    dae_layer,
    train_sda,
)
from smithing.pretrain.autoencoder.training import (
    train_autoencoder,
)

__all__ = [
    "CODE_ACTIVATIONS",
    "CORRUPTIONS",
    "DAEPretrainer",
    "DenoisingAutoencoder",
    "StackedDAE",
    "contractive_penalty",
    "corrupt",
    "corrupt_with_mask",
    "dae_layer",
    "dae_loss",
    "reconstruction_loss",
    "train_autoencoder",
    "train_sda",
]

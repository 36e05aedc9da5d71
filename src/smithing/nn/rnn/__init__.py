"""Simple (Elman) recurrent networks: recurrent initializations, constraints, time-lag gradients.

The layer is Elman's recurrence (Elman, "Finding structure in time", Cognitive Science 14, 1990)::

    h_t = f(W_ih x_t + W_hh h_{t-1} + b),   h_0 = 0,   t = 1..T,   f = tanh or relu

on batched sequences ``x`` of shape ``(batch, T, n_in)`` (PyTorch's ``batch_first=True``).
:class:`RNNRegressor` and :class:`RNNClassifier` read the last hidden state ``h_T`` with a
linear layer.

**Recurrent initializations** (``init=``, registry :data:`RECURRENT_INITS`; each calls
:func:`smithing.init.initialize`):

* ``"gaussian"``: ``W_hh ~ N(0, (scale / sqrt(n_hidden))^2)``; by the circular law its spectral
  radius is about ``scale`` (default 1), so a tanh network's gradients shrink through time (tanh'
  <= 1) and a relu network's may grow;
* ``"orthogonal"``: ``W_hh = scale * Q`` with ``Q`` orthogonal (SVD of a Gaussian matrix, Saxe,
  McClelland & Ganguli, ICLR 2014), all singular values ``scale``;
* ``"identity"``: ``W_hh = I``, the IRNN of Le, Jaitly & Hinton, "A simple way to initialize
  recurrent networks of rectified linear units", arXiv:1504.00941, 2015 (with relu units, zero
  biases and small input weights N(0, 0.001^2): at the start the hidden state is copied forward
  and summed with the input, and ``dh_T/dh_t = I`` for active units);
* ``"scaled-identity"``: ``W_hh = scale * I`` (default ``scale=0.01``; the paper's "scaled
  version" of the identity, used where long memory is not wanted).

Input weights are ``N(0, input_std^2)`` with ``input_std=0.001`` (Le et al.'s IRNN setting) for
every recurrent init, so the inits differ only in ``W_hh``; the bias starts at 0. The readout is
``U(-1/sqrt(n_hidden), 1/sqrt(n_hidden))`` (torch's ``nn.Linear`` bound) with a zero bias.

**Constraints** (``constraint=``, registry :data:`CONSTRAINTS`), enforced on ``W_hh`` by
:meth:`ElmanRNN.enforce_constraint` (call :func:`enforce_constraints` ``(model)`` after every
``optimizer.step()``: projected gradient descent). Each is the nearest point in Frobenius norm
of its set, computed from one SVD ``W = U diag(s) V^T`` (all accept a leading members axis):

* ``"spectral"``: ``s <- clamp(s, min_value, max_value)`` (default ``[0, 1]``: spectral norm
  <= 1, so with a 1-Lipschitz ``f`` the map ``h_{t-1} -> h_t`` is non-expansive and gradients
  cannot explode through time). Vorontsov, Trabelsi, Kadoury & Pal, "On orthogonality and
  learning recurrent networks with long term dependencies", ICML 2017, bound the singular values
  to ``[1 - m, 1 + m]`` (their "spectral margin" ``m``; ``min_value``/``max_value`` here).
  Departure: they parametrize ``W = U S V^T`` and keep ``U, V`` orthogonal by geodesic
  (Cayley) gradient steps with ``s = 2m (sigmoid(p) - 0.5) + 1``; here plain gradient steps
  are followed by the projection.
* ``"orthogonal"``: ``W <- U V^T``, the orthogonal polar factor (the nearest orthogonal matrix;
  Higham 1986). Motivation: Arjovsky, Shah & Bengio, "Unitary evolution recurrent neural
  networks", ICML 2016 (a unitary ``W`` preserves norms, so ``||dL/dh_t||`` cannot vanish or
  explode through ``W``; they parametrize a restricted unitary family instead of projecting);
  ``m = 0`` in Vorontsov et al., who found hard orthogonality can slow learning.
* ``"identity-ball"``: ``W <- I + U' diag(min(s', radius)) V'^T`` with ``W - I = U' diag(s')
  V'^T``, the projection onto ``{||W - I||_2 <= radius}``: an IRNN kept near its
  initialization (Le et al. 2015 initialize at ``I`` but do not constrain; this keeps the
  Jacobian's singular values of ``W_hh`` within ``1 +- radius``).

The soft version of the last is :func:`identity_penalty` ``||W - I||_F^2``, added to the loss by
:meth:`ElmanRNN.penalty` when ``identity_penalty > 0``.

**Gradient clipping** through time (Pascanu, Mikolov & Bengio, "On the difficulty of training
recurrent neural networks", ICML 2013, Algorithm 1: rescale ``g <- g * c / ||g||`` when
``||g|| > c``) is :func:`smithing.train.clipping.clip_grad_norm`, called between ``backward``
and ``optimizer.step()``.

**Time-lag gradient norms** ``||dL/dh_t||`` (by BPTT ``dL/dh_{t-1} = W_hh^T (f'(a_t) *
dL/dh_t)``: geometric vanishing or exploding) are a diagnostic of the training core,
:func:`smithing.train.gradient_flow.time_lag_gradient_norms`; the models here provide the
``forward_with_states`` it needs.

**Training.** :class:`RecurrentRegularizer` is the trainers' regularizer protocol for these
models (penalties added to the loss, constraints enforced after every step);
:func:`readout_from_config` builds the model of a run configuration.

**Speed.** The input projection ``W_ih x_t + b`` of all steps is one matrix product; the loop then
costs one ``addmm`` and one activation per step (Python overhead per step). Two options
(``benchmarks/bench_rnn.py`` measures them against ``torch.nn.RNN``):

* ``fused=True`` runs the same recurrence through torch's fused RNN kernel (``torch._VF.rnn_tanh``
  / ``rnn_relu``, what ``torch.nn.RNN`` calls: cuDNN on CUDA, a C++ loop on CPU) with ``b_hh =
  0``. On CPU it is no faster than the loop (measured ~1.0x); on a GPU it removes the per-step
  launches. Not under ``torch.func.vmap``; :meth:`ElmanRNN.forward_with_states` (the time-lag
  diagnostic) always uses the loop.
* ``compile=True`` wraps the unrolled loop in ``torch.compile`` when the layer runs on CUDA, with
  ``mode="reduce-overhead"`` (CUDA graphs: the ``T`` small launches of each step replayed as one
  graph). On CPU it stays eager: measured there, the compiled loop was about 2x *slower* than
  eager at T = 50 and took over a minute to compile (the graph is unrolled over ``T``).
  ``compile="cpu"`` forces it on CPU for experiments.

**Ensembles.** The forward pass is plain tensor code: it works under
``torch.func.vmap(functional_call)`` with stacked parameters; the constraint functions and
:func:`identity_penalty` accept a leading members axis ``(members, H, H)``.
"""

from __future__ import annotations

from smithing.nn.rnn.constraints import (
    CONSTRAINTS,
    clip_singular_values_,
    identity_penalty,
    project_identity_ball_,
    project_orthogonal_,
)
from smithing.nn.rnn.elman import (
    ElmanRNN,
    elman_unroll,
)
from smithing.nn.rnn.inits import (
    RECURRENT_INITS,
    init_recurrent_,
)
from smithing.nn.rnn.readout import (
    RNN_OPTIONS,
    RecurrentRegularizer,
    RNNClassifier,
    RNNRegressor,
    enforce_constraints,
    penalties,
    readout_from_config,
)

__all__ = [
    "CONSTRAINTS",
    "RECURRENT_INITS",
    "ElmanRNN",
    "RNNClassifier",
    "RNNRegressor",
    "RNN_OPTIONS",
    "RecurrentRegularizer",
    "clip_singular_values_",
    "elman_unroll",
    "enforce_constraints",
    "identity_penalty",
    "init_recurrent_",
    "penalties",
    "project_identity_ball_",
    "project_orthogonal_",
    "readout_from_config",
]

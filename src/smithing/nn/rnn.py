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

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from smithing import init as _init
from smithing._registry import Registry, check

# ------------------------------------------------------------------------------------------------
# recurrent initializations
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecurrentInit:
    """A rule for ``W_hh``: ``fn(weight, scale, generator)`` fills the (H, H) weight in place."""

    name: str
    fn: Callable[[Tensor, float, torch.Generator | None], None]
    default_scale: float
    description: str


RECURRENT_INITS: Registry[RecurrentInit] = Registry("recurrent init")


def _add_init(name: str, default_scale: float, description: str):
    def deco(fn):
        RECURRENT_INITS.register(
            name, RecurrentInit(name, fn, default_scale, description), description=description
        )
        return fn

    return deco


@_add_init("gaussian", 1.0, "W_hh ~ N(0, (scale/sqrt(H))^2): spectral radius ~ scale")
def _gaussian(w: Tensor, scale: float, generator) -> None:
    sigma = scale / math.sqrt(w.shape[-1])  # std = scale / sqrt(H): radius ~ scale (circular law)
    _init.initialize(w, "normal", generator=generator, sigma=sigma)


@_add_init("orthogonal", 1.0, "W_hh = scale * Q, Q orthogonal (Saxe et al. 2014)")
def _orthogonal(w: Tensor, scale: float, generator) -> None:
    _init.initialize(w, "orthogonal", generator=generator, gain=scale)  # W = scale * Q


@_add_init("identity", 1.0, "W_hh = I (IRNN, Le, Jaitly & Hinton 2015)")
def _identity(w: Tensor, scale: float, generator) -> None:
    check(scale == 1.0, "scale", scale, "1 for 'identity' (use 'scaled-identity')")
    _init.initialize(w, "identity", generator=generator)  # W = I


@_add_init("scaled-identity", 0.01, "W_hh = scale * I (Le et al. 2015's scaled identity)")
def _scaled_identity(w: Tensor, scale: float, generator) -> None:
    _init.initialize(w, "identity", generator=generator, scale=scale)  # W = scale * I


def init_recurrent_(
    weight: Tensor,
    name: str,
    *,
    scale: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Fill the recurrent weight ``(H, H)`` (or ``(members, H, H)``) with rule ``name``."""
    spec = RECURRENT_INITS.get(name)
    scale = spec.default_scale if scale is None else scale
    check(
        isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0,
        "scale",
        scale,
        "a positive number",
    )
    check(
        weight.dim() in (2, 3) and weight.shape[-1] == weight.shape[-2],
        "weight",
        tuple(weight.shape),
        "a square (H, H) or (members, H, H) recurrent weight",
    )
    with torch.no_grad():
        for w in weight.reshape(-1, *weight.shape[-2:]):  # (H, H) views, member by member
            spec.fn(w, float(scale), generator)
    return weight


# ------------------------------------------------------------------------------------------------
# constraints (projections after each optimizer step) and the identity penalty
# ------------------------------------------------------------------------------------------------


def _check_square(w: Tensor) -> None:
    check(
        w.dim() >= 2 and w.shape[-1] == w.shape[-2],
        "weight",
        tuple(w.shape),
        "a square (H, H) matrix or a stack (..., H, H)",
    )


@torch.no_grad()
def clip_singular_values_(w: Tensor, max_value: float = 1.0, min_value: float = 0.0) -> Tensor:
    """In place ``W <- U diag(clamp(s, min_value, max_value)) V^T``; returns ``w``.

    The Frobenius-nearest matrix whose singular values lie in ``[min_value, max_value]``
    (``max_value=1``: spectral norm <= 1). Vorontsov et al., ICML 2017 (singular values in
    ``[1 - m, 1 + m]``). Accepts ``(..., H, H)`` stacks (one SVD per matrix).
    """
    _check_square(w)
    check(max_value > 0, "max_value", max_value, "a positive number")
    check(
        0 <= min_value <= max_value,
        "min_value",
        min_value,
        f"a number in [0, max_value={max_value}]",
    )
    u, s, vh = torch.linalg.svd(w, full_matrices=False)  # (..., H, H), (..., H), (..., H, H)
    s = s.clamp(min_value, max_value)  # s <- clamp(s, 1 - m, 1 + m)
    return w.copy_(u @ (s.unsqueeze(-1) * vh))  # W = U diag(s) V^T


@torch.no_grad()
def project_orthogonal_(w: Tensor) -> Tensor:
    """In place ``W <- U V^T`` (``W = U diag(s) V^T``): the nearest orthogonal matrix (polar
    factor); returns ``w``. Arjovsky et al., ICML 2016 for why; accepts ``(..., H, H)``."""
    _check_square(w)
    u, _, vh = torch.linalg.svd(w, full_matrices=False)  # (..., H, H)
    return w.copy_(u @ vh)  # W = U V^T


@torch.no_grad()
def project_identity_ball_(w: Tensor, radius: float = 0.1) -> Tensor:
    """In place projection onto ``{W : ||W - I||_2 <= radius}``; returns ``w``.

    ``W - I = U diag(s) V^T -> W = I + U diag(min(s, radius)) V^T`` (clipping the singular values
    of ``W - I`` is the Frobenius-nearest point of the spectral-norm ball). Accepts
    ``(..., H, H)``.
    """
    _check_square(w)
    check(radius > 0, "radius", radius, "a positive number")
    eye = torch.eye(w.shape[-1], dtype=w.dtype, device=w.device)
    d = w - eye  # (..., H, H)
    u, s, vh = torch.linalg.svd(d, full_matrices=False)
    d = u @ (s.clamp(max=radius).unsqueeze(-1) * vh)  # ||W - I||_2 <= radius
    return w.copy_(eye + d)


def identity_penalty(w: Tensor) -> Tensor:
    """``||W - I||_F^2``, summed over the last two axes (shape ``w.shape[:-2]``): the soft pull
    toward the IRNN's initialization (add ``strength * identity_penalty(W_hh)`` to the loss)."""
    _check_square(w)
    eye = torch.eye(w.shape[-1], dtype=w.dtype, device=w.device)
    return (w - eye).square().sum(dim=(-2, -1))  # ||W - I||_F^2


@dataclass(frozen=True)
class Constraint:
    name: str
    fn: Callable[..., Tensor]  # fn(w, **options), in place
    options: tuple[str, ...]
    description: str


CONSTRAINTS: Registry[Constraint] = Registry("recurrent constraint")
for _c in (
    Constraint(
        "spectral",
        clip_singular_values_,
        ("max_value", "min_value"),
        "singular values of W_hh clipped to [min_value, max_value] (default [0, 1]; "
        "Vorontsov et al. 2017)",
    ),
    Constraint(
        "orthogonal",
        project_orthogonal_,
        (),
        "W_hh <- U V^T, the nearest orthogonal matrix (Arjovsky et al. 2016 motivation)",
    ),
    Constraint(
        "identity-ball",
        project_identity_ball_,
        ("radius",),
        "W_hh projected onto ||W - I||_2 <= radius (IRNN kept near I)",
    ),
):
    CONSTRAINTS.register(_c.name, _c, description=_c.description)


def _check_constraint(name: str | None, options: dict) -> None:
    if name is None:
        check(not options, "constraint_options", options, "empty when constraint is None")
        return
    spec = CONSTRAINTS.get(name)
    for k in options:
        check(
            k in spec.options,
            k,
            options[k],
            f"an option of constraint {name!r} ({', '.join(spec.options) or 'none'})",
        )


# ------------------------------------------------------------------------------------------------
# the layer
# ------------------------------------------------------------------------------------------------

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu}


def elman_unroll(u: Tensor, h0: Tensor, weight_hh: Tensor, activation: str) -> list[Tensor]:
    """The recurrence on precomputed input terms: ``h_t = f(u_t + h_{t-1} W_hh^T)``.

    ``u``: ``(T, batch, H)`` = ``W_ih x_t + b`` for every step; ``h0``: ``(batch, H)``. Returns
    the list of the ``T`` hidden states ``(batch, H)``, each a node of the autograd graph.
    """
    f = _ACTIVATIONS[activation]
    h = h0
    states = []
    for u_t in u:  # u_t: (batch, H)
        h = f(torch.addmm(u_t, h, weight_hh.t()))  # h_t = f(W_ih x_t + b + W_hh h_{t-1})
        states.append(h)
    return states


def _stacked_unroll(u: Tensor, h0: Tensor, weight_hh: Tensor, activation: str) -> Tensor:
    return torch.stack(elman_unroll(u, h0, weight_hh, activation))  # (T, batch, H)


class ElmanRNN(nn.Module):
    """One-layer Elman RNN, ``h_t = f(W_ih x_t + W_hh h_{t-1} + b)``, ``h_0 = 0`` (see the module
    docstring for the initializations and constraints).

    Args:
        n_in, n_hidden: input and hidden sizes.
        activation: ``"tanh"`` or ``"relu"``.
        init: recurrent initialization (:data:`RECURRENT_INITS`): ``"gaussian"``,
            ``"orthogonal"``, ``"identity"``, ``"scaled-identity"``.
        scale: the init's scale (Gaussian radius, orthogonal gain, identity multiple); ``None``
            for its default.
        input_std: std of the Gaussian input weights (Le et al.: 0.001).
        constraint: ``None``, ``"spectral"``, ``"orthogonal"`` or ``"identity-ball"``, applied
            to ``W_hh`` by :meth:`enforce_constraint` (and once at construction).
        constraint_options: the constraint's options (``max_value``/``min_value``, ``radius``).
        identity_penalty: strength ``lambda`` of ``lambda ||W_hh - I||_F^2`` in :meth:`penalty`.
        fused: run ``forward`` through torch's fused RNN kernel (cuDNN on CUDA); same function.
        compile: ``False``; ``True`` compiles the unrolled loop when the layer runs on CUDA
            (``torch.compile(mode="reduce-overhead")``, CUDA graphs) and stays eager on CPU;
            ``"cpu"`` compiles on CPU too (``mode="default"``).
        generator: randomness of the initialization.

    Departure from ``torch.nn.RNN``: one bias ``b`` instead of ``b_ih + b_hh`` (the sum is all
    that matters); the hidden state returned is ``(batch, H)``, not ``(1, batch, H)``.

    ``forward(x, h0=None) -> (outputs, h_T)`` with ``x`` ``(batch, T, n_in)``, ``outputs``
    ``(batch, T, H)`` (every ``h_t``) and ``h_T`` ``(batch, H)``.
    """

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        activation: str = "tanh",
        init: str = "gaussian",
        *,
        scale: float | None = None,
        input_std: float = 0.001,
        constraint: str | None = None,
        constraint_options: dict | None = None,
        identity_penalty: float = 0.0,
        fused: bool = False,
        compile: bool | str = False,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, v in (("n_in", n_in), ("n_hidden", n_hidden)):
            check(
                isinstance(v, int) and not isinstance(v, bool) and v > 0, name, v, "a positive int"
            )
        check(activation in _ACTIVATIONS, "activation", activation, "'tanh' or 'relu'")
        RECURRENT_INITS.get(init)  # validates the name
        check(input_std >= 0, "input_std", input_std, "a non-negative standard deviation")
        check(identity_penalty >= 0, "identity_penalty", identity_penalty, "a number >= 0")
        check(compile in (False, True, "cpu"), "compile", compile, "False, True or 'cpu'")
        check(fused in (False, True), "fused", fused, "True or False")
        check(not (fused and compile), "compile", compile, "False when fused=True")
        options = dict(constraint_options or {})
        _check_constraint(constraint, options)
        self.n_in, self.n_hidden = n_in, n_hidden
        self.activation = activation
        self.init = init
        self.scale = scale
        self.input_std = input_std
        self.constraint = constraint
        self.constraint_options = options
        self.identity_penalty = float(identity_penalty)
        self.use_compile = compile
        self.fused = fused
        self._compiled: dict[str, Callable] = {}
        kw = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(n_hidden, n_in, **kw))  # (H, n_in)
        self.weight_hh = nn.Parameter(torch.empty(n_hidden, n_hidden, **kw))  # (H, H)
        self.bias = nn.Parameter(torch.empty(n_hidden, **kw))  # (H,)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Recurrent init, ``W_ih ~ N(0, input_std^2)``, ``b = 0``, then the constraint."""
        with torch.no_grad():
            init_recurrent_(self.weight_hh, self.init, scale=self.scale, generator=generator)
            if self.input_std > 0:
                self.weight_ih.normal_(0.0, self.input_std, generator=generator)  # N(0, s^2)
            else:
                self.weight_ih.zero_()
            self.bias.zero_()
        self.enforce_constraint()

    # -- constraint and penalty

    def enforce_constraint(self) -> None:
        """Project ``W_hh`` onto the constraint set (no-op without a constraint)."""
        if self.constraint is not None:
            CONSTRAINTS.get(self.constraint).fn(self.weight_hh.data, **self.constraint_options)

    def penalty(self) -> Tensor:
        """``identity_penalty * ||W_hh - I||_F^2`` (a zero tensor when the strength is 0)."""
        if self.identity_penalty == 0:
            return self.weight_hh.new_zeros(())
        return self.identity_penalty * identity_penalty(self.weight_hh)

    # -- forward

    def _unroll_fn(self, device: torch.device) -> Callable[..., Tensor]:
        use = self.use_compile == "cpu" or (self.use_compile is True and device.type == "cuda")
        if not use:
            return _stacked_unroll
        mode = "reduce-overhead" if device.type == "cuda" else "default"
        if mode not in self._compiled:
            self._compiled[mode] = torch.compile(_stacked_unroll, mode=mode, dynamic=False)
        return self._compiled[mode]

    def _inputs(self, x: Tensor, h0: Tensor | None) -> tuple[Tensor, Tensor]:
        check(
            x.dim() == 3 and x.shape[-1] == self.n_in,
            "x",
            tuple(x.shape),
            f"a (batch, T, n_in={self.n_in}) tensor",
        )
        batch = x.shape[0]
        if h0 is None:
            h0 = x.new_zeros(batch, self.n_hidden)  # h_0 = 0
        u = F.linear(x, self.weight_ih, self.bias)  # (batch, T, H): W_ih x_t + b, all t at once
        return u.transpose(0, 1).contiguous(), h0  # (T, batch, H): u[t] contiguous

    def _forward_fused(self, x: Tensor, h0: Tensor | None) -> tuple[Tensor, Tensor]:
        check(
            x.dim() == 3 and x.shape[-1] == self.n_in,
            "x",
            tuple(x.shape),
            f"a (batch, T, n_in={self.n_in}) tensor",
        )
        if h0 is None:
            h0 = x.new_zeros(x.shape[0], self.n_hidden)
        kernel = torch._VF.rnn_tanh if self.activation == "tanh" else torch._VF.rnn_relu
        weights = [self.weight_ih, self.weight_hh, self.bias, torch.zeros_like(self.bias)]
        # args: input, hx (1, batch, H), weights, has_biases, num_layers, dropout, train,
        # bidirectional, batch_first: exactly torch.nn.RNN.forward's call
        out, h = kernel(x, h0[None], weights, True, 1, 0.0, self.training, False, True)
        return out, h[0]  # (batch, T, H), (batch, H)

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.fused:
            return self._forward_fused(x, h0)
        u, h0 = self._inputs(x, h0)
        hs = self._unroll_fn(u.device)(u, h0, self.weight_hh, self.activation)  # (T, batch, H)
        return hs.transpose(0, 1), hs[-1]  # (batch, T, H), (batch, H)

    def forward_with_states(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, list]:
        """``(h_T, [h_1, ..., h_T])`` with every state a separate autograd node (eager loop)."""
        u, h0 = self._inputs(x, h0)
        states = elman_unroll(u, h0, self.weight_hh, self.activation)
        return states[-1], states

    # -- interop

    def to_torch(self) -> nn.RNN:
        """An equivalent ``torch.nn.RNN(batch_first=True)`` (``b_ih = b``, ``b_hh = 0``)."""
        ref = nn.RNN(
            self.n_in,
            self.n_hidden,
            nonlinearity=self.activation,
            batch_first=True,
            device=self.weight_hh.device,
            dtype=self.weight_hh.dtype,
        )
        with torch.no_grad():
            ref.weight_ih_l0.copy_(self.weight_ih)
            ref.weight_hh_l0.copy_(self.weight_hh)
            ref.bias_ih_l0.copy_(self.bias)
            ref.bias_hh_l0.zero_()
        return ref

    @classmethod
    def from_torch(cls, ref: nn.RNN, **kwargs) -> ElmanRNN:
        """An ``ElmanRNN`` with a one-layer ``torch.nn.RNN``'s weights (``b = b_ih + b_hh``)."""
        check(
            ref.num_layers == 1 and not ref.bidirectional and ref.bias and ref.proj_size == 0,
            "ref",
            ref,
            "a one-layer, unidirectional torch.nn.RNN with biases",
        )
        w = ref.weight_hh_l0
        m = cls(
            ref.input_size,
            ref.hidden_size,
            ref.nonlinearity,
            device=w.device,
            dtype=w.dtype,
            **kwargs,
        )
        with torch.no_grad():
            m.weight_ih.copy_(ref.weight_ih_l0)
            m.weight_hh.copy_(ref.weight_hh_l0)
            m.bias.copy_(ref.bias_ih_l0 + ref.bias_hh_l0)
        return m

    def extra_repr(self) -> str:
        s = f"{self.n_in}, {self.n_hidden}, activation={self.activation!r}, init={self.init!r}"
        if self.constraint is not None:
            s += f", constraint={self.constraint!r}"
        return s


# ------------------------------------------------------------------------------------------------
# readouts
# ------------------------------------------------------------------------------------------------


class _RNNReadout(nn.Module):
    task = "regression"

    def __init__(
        self, n_in: int, n_hidden: int, n_out: int, *, generator=None, **rnn_kwargs
    ) -> None:
        super().__init__()
        check(isinstance(n_out, int) and n_out > 0, "n_out", n_out, "a positive int")
        self.rnn = ElmanRNN(n_in, n_hidden, generator=generator, **rnn_kwargs)
        w = self.rnn.weight_hh
        self.readout = nn.Linear(n_hidden, n_out, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            bound = 1.0 / math.sqrt(n_hidden)  # torch's nn.Linear bound, with our generator
            self.readout.weight.uniform_(-bound, bound, generator=generator)
            self.readout.bias.zero_()

    def _head(self, h: Tensor) -> Tensor:
        return self.readout(h)

    def forward(self, x: Tensor) -> Tensor:
        _, h_last = self.rnn(x)  # (batch, H)
        return self._head(h_last)

    def forward_with_states(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(prediction, [h_1, ..., h_T])`` (eager loop, every state an autograd node)."""
        h_last, states = self.rnn.forward_with_states(x)
        return self._head(h_last), states

    def enforce_constraint(self) -> None:
        self.rnn.enforce_constraint()

    def penalty(self) -> Tensor:
        return self.rnn.penalty()


class RNNRegressor(_RNNReadout):
    """``y = w^T h_T + c``: an :class:`ElmanRNN` read out linearly at the last step.

    Output ``(batch,)`` when ``n_out == 1`` (matching a ``(n,)`` target such as the adding
    problem's), else ``(batch, n_out)``. ``rnn_kwargs`` go to :class:`ElmanRNN`.
    """

    task = "regression"

    def __init__(self, n_in: int, n_hidden: int, n_out: int = 1, **rnn_kwargs) -> None:
        super().__init__(n_in, n_hidden, n_out, **rnn_kwargs)
        self.n_out = n_out

    def _head(self, h: Tensor) -> Tensor:
        y = self.readout(h)  # (batch, n_out)
        return y.squeeze(-1) if self.n_out == 1 else y


class RNNClassifier(_RNNReadout):
    """Logits ``W_out h_T + c`` ``(batch, n_classes)`` of an :class:`ElmanRNN` (softmax in the
    loss). ``rnn_kwargs`` go to :class:`ElmanRNN`."""

    task = "classification"

    def __init__(self, n_in: int, n_hidden: int, n_classes: int, **rnn_kwargs) -> None:
        super().__init__(n_in, n_hidden, n_classes, **rnn_kwargs)
        self.n_classes = n_classes


def enforce_constraints(model: nn.Module) -> None:
    """Apply the constraint of every :class:`ElmanRNN` in ``model`` (after ``optimizer.step()``)."""
    for m in model.modules():
        if isinstance(m, ElmanRNN):
            m.enforce_constraint()


def penalties(model: nn.Module) -> Tensor:
    """Sum of :meth:`ElmanRNN.penalty` over the model's RNN layers (add it to the loss)."""
    terms = [m.penalty() for m in model.modules() if isinstance(m, ElmanRNN)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


# ------------------------------------------------------------------------------------------------
# a run configuration's model, and the trainers' regularizer protocol
# ------------------------------------------------------------------------------------------------

#: the :class:`ElmanRNN` options a run configuration may set (:func:`readout_from_config`)
RNN_OPTIONS = (
    "activation",
    "init",
    "scale",
    "input_std",
    "constraint",
    "constraint_options",
    "identity_penalty",
    "fused",
    "compile",
)


def readout_from_config(
    config: Mapping, n_in: int, n_out: int, task: str, *, seed: int = 0, device=None
) -> RNNRegressor | RNNClassifier:
    """The readout model a run configuration describes.

    ``config["hidden"]`` is the number of hidden units; the keys of :data:`RNN_OPTIONS` present
    in ``config`` and not None go to :class:`ElmanRNN` (the others keep their defaults; other
    keys are ignored). ``task`` ``"classification"`` gives an :class:`RNNClassifier` with
    ``n_out`` classes, else an :class:`RNNRegressor`. The weights come from a CPU generator
    seeded with ``seed`` (``torch.Generator().manual_seed(seed)``), so a seed gives the same
    network on every device.
    """
    check(
        task in ("classification", "regression"),
        "task",
        task,
        "'classification' or 'regression'",
    )
    kw = {k: config[k] for k in RNN_OPTIONS if config.get(k) is not None}
    gen = torch.Generator().manual_seed(int(seed))
    cls = RNNClassifier if task == "classification" else RNNRegressor
    return cls(n_in, int(config["hidden"]), n_out, generator=gen, device=device, **kw)


class RecurrentRegularizer:
    """The trainers' regularizer protocol for models with :class:`ElmanRNN` layers.

    ``penalty(model)`` is :func:`penalties` (the identity penalties, added to the loss) and
    ``after_step(model, lr)`` is :func:`enforce_constraints` (the projections after every
    optimizer step: projected gradient descent). Pass an instance as ``regularizer=`` to
    :func:`smithing.train.sequence.fit_sequence` or :func:`smithing.train.fit`.
    """

    def penalty(self, model: nn.Module) -> Tensor:
        return penalties(model)

    def after_step(self, model: nn.Module, lr: float) -> None:
        enforce_constraints(model)


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

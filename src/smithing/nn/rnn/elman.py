"""The Elman network: the unrolled recurrence as a pure function and the :class:`ElmanRNN`
module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from smithing._registry import check
from smithing.nn.rnn.constraints import (
    CONSTRAINTS,
    _check_constraint,
    identity_penalty,
)
from smithing.nn.rnn.inits import (
    RECURRENT_INITS,
    init_recurrent_,
)

__all__ = [
    "ElmanRNN",
    "elman_unroll",
]

# ------------------------------------------------------------------------------------------------
# the layer
# ------------------------------------------------------------------------------------------------

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu}


def elman_unroll(u: Tensor, h0: Tensor, weight_hh: Tensor, activation: str) -> list[Tensor]:
    r"""The recurrence on precomputed input terms: ``h_t = f(u_t + h_{t-1} W_hh^T)``.

    $$
    h_t = f\left(u_t + W_{hh} h_{t-1}\right), \qquad t = 1, \dots, T
    $$

    with $u_t = W_{ih} x_t + b$ the input terms ``u``, $h_0$ = ``h0``, $W_{hh}$ = ``weight_hh``
    and $f$ = ``activation`` (tanh or relu).

    Args:
        u: the input terms ``(T, batch, H)``.
        h0: the initial state ``(batch, H)``.
        weight_hh: $W_{hh}$, ``(H, H)``.
        activation: ``"tanh"`` or ``"relu"``.

    Returns:
        The list of the ``T`` hidden states ``(batch, H)``, each a node of the autograd graph.

    References:
        Elman, "Finding structure in time", Cognitive Science 14, 1990.
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
    r"""One-layer Elman RNN, ``h_t = f(W_ih x_t + W_hh h_{t-1} + b)``, ``h_0 = 0`` (see the module
    docstring for the initializations and constraints).

    $$
    h_t = f\left(W_{ih} x_t + W_{hh} h_{t-1} + b\right), \quad h_0 = 0, \qquad
    \frac{\partial L}{\partial h_{t-1}} = W_{hh}^\top \left(f'(a_t) \odot
    \frac{\partial L}{\partial h_t}\right)
    $$

    with $x_t$ the input at step $t$, $W_{ih} \sim \mathcal{N}(0, \sigma_{in}^2)$ the input
    weights (``weight_ih``, $\sigma_{in}$ = ``input_std``), $W_{hh}$ = ``weight_hh`` (the
    recurrent init), $b$ = ``bias`` (0 at the start), $f$ = ``activation`` and $a_t$ its
    pre-activation; the backward recursion is why the gradient vanishes or explodes
    geometrically with the time lag unless $W_{hh}$ keeps norms (identity, orthogonal). The
    IRNN is ``activation="relu", init="identity"`` ($W_{hh} = I$), optionally kept near $I$
    by ``identity_penalty`` ($\lambda \lVert W_{hh} - I \rVert_F^2$) or a constraint.

    Args:
        n_in: input size.
        n_hidden: hidden size $H$.
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
        device: where the parameters live.
        dtype: the parameters' dtype.

    References:
        Elman, "Finding structure in time", Cognitive Science 14, 1990; Le, Jaitly & Hinton, "A
        simple way to initialize recurrent networks of rectified linear units",
        arXiv:1504.00941, 2015 (IRNN); Pascanu, Mikolov & Bengio, "On the difficulty of training
        recurrent neural networks", ICML 2013, Sec. 2 (the backward recursion).

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
        kw: dict[str, Any] = {"device": device, "dtype": dtype}
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
            ref.get_parameter("weight_ih_l0").copy_(self.weight_ih)
            ref.get_parameter("weight_hh_l0").copy_(self.weight_hh)
            ref.get_parameter("bias_ih_l0").copy_(self.bias)
            ref.get_parameter("bias_hh_l0").zero_()
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
        w = ref.get_parameter("weight_hh_l0")
        m = cls(
            ref.input_size,
            ref.hidden_size,
            ref.nonlinearity,
            device=w.device,
            dtype=w.dtype,
            **kwargs,
        )
        with torch.no_grad():
            m.weight_ih.copy_(ref.get_parameter("weight_ih_l0"))
            m.weight_hh.copy_(w)
            m.bias.copy_(ref.get_parameter("bias_ih_l0") + ref.get_parameter("bias_hh_l0"))
        return m

    def extra_repr(self) -> str:
        s = f"{self.n_in}, {self.n_hidden}, activation={self.activation!r}, init={self.init!r}"
        if self.constraint is not None:
            s += f", constraint={self.constraint!r}"
        return s

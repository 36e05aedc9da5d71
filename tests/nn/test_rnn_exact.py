"""Exact answers for the Elman RNN package: the recurrence by hand, the initializations against
the same draws, the projections on matrices whose SVD is known, the readouts and the
configuration builder, and every validation message in full.

Written for the mutation score of ``smithing.nn.rnn`` (issue 15).
"""

import math

import pytest
import torch
from torch import nn

from smithing import init as _init
from smithing.nn.rnn import (
    CONSTRAINTS,
    RECURRENT_INITS,
    RNN_OPTIONS,
    ElmanRNN,
    RecurrentRegularizer,
    RNNClassifier,
    RNNRegressor,
    clip_singular_values_,
    elman_unroll,
    enforce_constraints,
    identity_penalty,
    init_recurrent_,
    penalties,
    project_identity_ball_,
    project_orthogonal_,
    readout_from_config,
)
from smithing.nn.rnn.elman import _stacked_unroll

D = torch.float64


def _t(*rows):
    return torch.tensor(rows, dtype=D)


def _message(fn, *args, **kwargs):
    with pytest.raises(ValueError) as err:
        fn(*args, **kwargs)
    return str(err.value)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- the recurrence
W_HH = _t([0.5, -1.0], [0.25, 2.0])  # not symmetric: W and W^T tell apart


@pytest.mark.parametrize("activation, f", [("tanh", torch.tanh), ("relu", torch.relu)])
def test_elman_unroll_by_hand(activation, f):
    u = _t([[1.0, -2.0]], [[0.5, 0.25]])  # (T=2, batch=1, H=2)
    h0 = _t([1.0, 1.0])
    states = elman_unroll(u, h0, W_HH, activation)
    # h_1 = f(u_1 + W h_0) = f([1 - 0.5, -2 + 2.25]); h_2 = f(u_2 + W h_1)
    h1 = f(_t([0.5, 0.25]))
    h2 = f(_t(0.5, 0.25) + _t(0.5 * h1[0, 0] - h1[0, 1], 0.25 * h1[0, 0] + 2 * h1[0, 1]))
    assert len(states) == 2
    assert torch.allclose(states[0], h1, rtol=0, atol=1e-15)
    assert torch.allclose(states[1], h2[None], rtol=0, atol=1e-15)
    assert torch.equal(_stacked_unroll(u, h0, W_HH, activation), torch.stack(states))


def _rnn(**kw):
    kw.setdefault("generator", _gen())
    return ElmanRNN(3, 2, dtype=D, **kw)


def _set(m, w_ih, w_hh, b):
    with torch.no_grad():
        m.weight_ih.copy_(w_ih)
        m.weight_hh.copy_(w_hh)
        m.bias.copy_(b)
    return m


W_IH = _t([1.0, 0.0, -1.0], [0.5, 2.0, 0.0])
B = _t(0.1, -0.2)


def _by_hand(x, h0, f=torch.tanh):
    h, out = h0, []
    for t in range(x.shape[1]):
        h = f(x[:, t] @ W_IH.T + B + h @ W_HH.T)
        out.append(h)
    return torch.stack(out, 1)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("activation, f", [("tanh", torch.tanh), ("relu", torch.relu)])
def test_forward_by_hand_with_and_without_h0(fused, activation, f):
    m = _set(_rnn(activation=activation, fused=fused), W_IH, W_HH, B)
    x = torch.randn(2, 4, 3, generator=_gen(1), dtype=D)
    h0 = torch.randn(2, 2, generator=_gen(2), dtype=D)
    for start in (None, h0):
        out, h_last = m(x, start)
        want = _by_hand(x, torch.zeros(2, 2, dtype=D) if start is None else start, f)
        assert out.shape == (2, 4, 2) and h_last.shape == (2, 2)
        assert torch.allclose(out, want, rtol=0, atol=1e-14)
        assert torch.allclose(h_last, want[:, -1], rtol=0, atol=1e-14)
    m.eval()
    assert torch.allclose(m(x)[0], _by_hand(x, torch.zeros(2, 2, dtype=D), f), atol=1e-14)
    h_last, states = m.forward_with_states(x, h0)
    assert len(states) == 4 and torch.equal(h_last, states[-1])
    assert torch.allclose(torch.stack(states, 1), _by_hand(x, h0, f), rtol=0, atol=1e-14)


@pytest.mark.parametrize("fused", [False, True])
def test_bad_input_shapes(fused):
    m = _rnn(fused=fused)
    msg = "x=(4, 3) is invalid: expected a (batch, T, n_in=3) tensor"
    assert _message(m, torch.zeros(4, 3, dtype=D)) == msg
    msg = "x=(1, 4, 2) is invalid: expected a (batch, T, n_in=3) tensor"
    assert _message(m, torch.zeros(1, 4, 2, dtype=D)) == msg
    if not fused:
        assert _message(m.forward_with_states, torch.zeros(1, 4, 2, dtype=D)) == msg


# ---------------------------------------------------------------- construction
def test_defaults_and_repr():
    m = ElmanRNN(3, 2)
    assert (m.n_in, m.n_hidden, m.activation, m.init, m.scale) == (3, 2, "tanh", "gaussian", None)
    assert m.input_std == 0.001 and m.constraint is None and m.constraint_options == {}
    assert m.identity_penalty == 0.0 and isinstance(
        ElmanRNN(3, 2, identity_penalty=1).identity_penalty, float
    )
    assert m.use_compile is False and m.fused is False and m._compiled == {}
    assert m.weight_ih.shape == (2, 3) and m.weight_hh.shape == (2, 2) and m.bias.shape == (2,)
    assert m.weight_hh.dtype == torch.float32 and _rnn().weight_hh.dtype == D
    assert m.extra_repr() == "3, 2, activation='tanh', init='gaussian'"
    r = ElmanRNN(3, 2, "relu", "identity", constraint="spectral")
    assert r.extra_repr() == "3, 2, activation='relu', init='identity', constraint='spectral'"
    opts = {"radius": 0.5}
    r = ElmanRNN(3, 2, init="identity", constraint="identity-ball", constraint_options=opts)
    assert r.constraint_options == opts and r.constraint_options is not opts


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((0, 2), {}, "n_in=0 is invalid: expected a positive int"),
        ((True, 2), {}, "n_in=True is invalid: expected a positive int"),
        ((2.0, 2), {}, "n_in=2.0 is invalid: expected a positive int"),
        ((3, 0), {}, "n_hidden=0 is invalid: expected a positive int"),
        ((3, False), {}, "n_hidden=False is invalid: expected a positive int"),
        ((3, 2, "sigmoid"), {}, "activation='sigmoid' is invalid: expected 'tanh' or 'relu'"),
        ((3, 2), {"input_std": -0.1},
         "input_std=-0.1 is invalid: expected a non-negative standard deviation"),
        ((3, 2), {"identity_penalty": -1.0},
         "identity_penalty=-1.0 is invalid: expected a number >= 0"),
        ((3, 2), {"compile": "gpu"}, "compile='gpu' is invalid: expected False, True or 'cpu'"),
        ((3, 2), {"fused": "yes"}, "fused='yes' is invalid: expected True or False"),
        ((3, 2), {"fused": True, "compile": True},
         "compile=True is invalid: expected False when fused=True"),
        ((3, 2), {"fused": True, "compile": "cpu"},
         "compile='cpu' is invalid: expected False when fused=True"),
        ((3, 2), {"constraint_options": {"radius": 0.1}},
         "constraint_options={'radius': 0.1} is invalid: expected empty when constraint is None"),
        ((3, 2), {"constraint": "orthogonal", "constraint_options": {"radius": 0.1}},
         "radius=0.1 is invalid: expected an option of constraint 'orthogonal' (none)"),
        ((3, 2), {"constraint": "spectral", "constraint_options": {"radius": 0.1}},
         "radius=0.1 is invalid: expected an option of constraint 'spectral' "
         "(max_value, min_value)"),
        ((3, 2), {"init": "identity", "scale": 2.0},
         "scale=2.0 is invalid: expected 1 for 'identity' (use 'scaled-identity')"),
    ],
)  # fmt: skip
def test_invalid_arguments_and_their_messages(args, kwargs, message):
    assert _message(ElmanRNN, *args, **kwargs) == message


def test_valid_edges():
    ElmanRNN(1, 1, input_std=0.0, identity_penalty=0.0, compile="cpu")
    ElmanRNN(1, 1, fused=True, compile=False)
    ElmanRNN(1, 1, constraint="identity-ball", constraint_options={"radius": 0.1}, init="identity")
    ElmanRNN(1, 1, constraint_options={})


def test_initialization_is_the_recurrent_init_then_the_input_weights():
    for init, scale in (("gaussian", None), ("orthogonal", 0.5), ("scaled-identity", 0.2)):
        m = ElmanRNN(3, 4, init=init, scale=scale, input_std=0.1, generator=_gen(5), dtype=D)
        g = _gen(5)
        w_hh = init_recurrent_(torch.empty(4, 4, dtype=D), init, scale=scale, generator=g)
        w_ih = torch.empty(4, 3, dtype=D).normal_(0.0, 0.1, generator=g)
        assert torch.equal(m.weight_hh, w_hh) and torch.equal(m.weight_ih, w_ih)
        assert torch.equal(m.bias, torch.zeros(4, dtype=D))
    g = _gen(5)
    m = ElmanRNN(3, 4, input_std=0.0, generator=g, dtype=D)
    assert torch.equal(m.weight_ih, torch.zeros(4, 3, dtype=D))
    g2 = _gen(5)
    init_recurrent_(torch.empty(4, 4, dtype=D), "gaussian", generator=g2)
    assert torch.equal(g.get_state(), g2.get_state())  # no input-weight draw with std 0
    with torch.no_grad():
        m.weight_ih.fill_(1.0)
        m.bias.fill_(1.0)
    m.reset_parameters(_gen(5))
    assert torch.equal(m.weight_ih, torch.zeros(4, 3, dtype=D))
    assert torch.equal(m.bias, torch.zeros(4, dtype=D))
    assert torch.equal(m.weight_hh, init_recurrent_(torch.empty(4, 4, dtype=D), "gaussian",
                                                    generator=_gen(5)))  # fmt: skip


def test_constraint_at_construction_and_on_demand():
    m = ElmanRNN(3, 4, scale=3.0, constraint="spectral", generator=_gen(1), dtype=D)
    want = init_recurrent_(torch.empty(4, 4, dtype=D), "gaussian", scale=3.0, generator=_gen(1))
    assert torch.allclose(m.weight_hh, clip_singular_values_(want.clone()), atol=1e-14)
    m = ElmanRNN(3, 4, constraint="spectral", constraint_options={"max_value": 0.5,
                 "min_value": 0.25}, generator=_gen(1), dtype=D)  # fmt: skip
    s = torch.linalg.svdvals(m.weight_hh)
    assert s.max() <= 0.5 + 1e-12 and s.min() >= 0.25 - 1e-12
    with torch.no_grad():
        m.weight_hh.mul_(10.0)
    m.enforce_constraint()
    assert torch.allclose(torch.linalg.svdvals(m.weight_hh), torch.full((4,), 0.5, dtype=D))
    m = ElmanRNN(3, 2, init="identity", constraint="identity-ball",
                 constraint_options={"radius": 0.05}, dtype=D)  # fmt: skip
    with torch.no_grad():
        m.weight_hh.copy_(_t([1.5, 0.0], [0.0, 1.01]))
    m.enforce_constraint()
    assert torch.allclose(m.weight_hh, _t([1.05, 0.0], [0.0, 1.01]), rtol=0, atol=1e-14)
    m = ElmanRNN(3, 2, dtype=D)
    with torch.no_grad():
        m.weight_hh.copy_(W_HH)
    m.enforce_constraint()  # no constraint: unchanged
    assert torch.equal(m.weight_hh, W_HH)


def test_penalty():
    m = ElmanRNN(3, 2, dtype=D)
    z = m.penalty()
    assert z.shape == () and z.dtype == D and z.item() == 0.0
    m = ElmanRNN(3, 2, identity_penalty=0.5, dtype=D)
    with torch.no_grad():
        m.weight_hh.copy_(W_HH)
    # ||W - I||^2 = 0.25 + 1 + 0.0625 + 1 = 2.3125
    assert m.penalty().item() == pytest.approx(0.5 * 2.3125, abs=1e-15)


def test_unroll_function_choice(monkeypatch):
    calls = []

    def fake_compile(fn, mode, dynamic):  # records the call instead of compiling
        calls.append((fn, mode, dynamic))
        return lambda *a: ("compiled", mode)

    monkeypatch.setattr(torch, "compile", fake_compile)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert ElmanRNN(2, 2)._unroll_fn(cpu) is _stacked_unroll
    assert ElmanRNN(2, 2)._unroll_fn(cuda) is _stacked_unroll
    assert ElmanRNN(2, 2, compile=True)._unroll_fn(cpu) is _stacked_unroll  # eager on CPU
    m = ElmanRNN(2, 2, compile="cpu")
    fn = m._unroll_fn(cpu)
    assert calls == [(_stacked_unroll, "default", False)] and list(m._compiled) == ["default"]
    assert m._unroll_fn(cpu) is fn and len(calls) == 1  # cached
    m = ElmanRNN(2, 2, compile=True)
    assert m._unroll_fn(cuda)() == ("compiled", "reduce-overhead")
    assert list(m._compiled) == ["reduce-overhead"]


def test_to_and_from_torch():
    m = _set(_rnn(activation="relu"), W_IH, W_HH, B)
    ref = m.to_torch()
    assert ref.nonlinearity == "relu" and ref.batch_first and ref.weight_hh_l0.dtype == D
    assert torch.equal(ref.weight_ih_l0, W_IH) and torch.equal(ref.weight_hh_l0, W_HH)
    assert torch.equal(ref.bias_ih_l0, B) and torch.equal(ref.bias_hh_l0, torch.zeros(2, dtype=D))
    torch.manual_seed(0)
    ref = nn.RNN(3, 2, nonlinearity="tanh", batch_first=True, dtype=D)
    back = ElmanRNN.from_torch(ref, identity_penalty=0.25)
    assert back.activation == "tanh" and back.identity_penalty == 0.25 and back.n_in == 3
    assert back.weight_hh.dtype == D
    assert torch.equal(back.weight_ih, ref.weight_ih_l0)
    assert torch.equal(back.weight_hh, ref.weight_hh_l0)
    assert torch.equal(back.bias, ref.bias_ih_l0 + ref.bias_hh_l0)
    for bad in (nn.RNN(3, 2, num_layers=2), nn.RNN(3, 2, bidirectional=True),
                nn.RNN(3, 2, bias=False)):  # fmt: skip
        msg = _message(ElmanRNN.from_torch, bad)
        assert msg == (f"ref={bad!r} is invalid: expected a one-layer, unidirectional "
                       "torch.nn.RNN with biases")  # fmt: skip


# ---------------------------------------------------------------- initializations
def test_the_inits_registry():
    assert RECURRENT_INITS.names() == ["gaussian", "orthogonal", "identity", "scaled-identity"]
    scales = {n: RECURRENT_INITS.get(n).default_scale for n in RECURRENT_INITS.names()}
    assert scales == {"gaussian": 1.0, "orthogonal": 1.0, "identity": 1.0,
                      "scaled-identity": 0.01}  # fmt: skip
    assert all(RECURRENT_INITS.get(n).name == n for n in RECURRENT_INITS.names())


def test_gaussian_and_orthogonal_are_the_init_rules_on_the_same_draws():
    w = init_recurrent_(torch.empty(4, 4, dtype=D), "gaussian", scale=2.0, generator=_gen(3))
    want = _init.initialize(torch.empty(4, 4, dtype=D), "normal", generator=_gen(3), sigma=1.0)
    assert torch.equal(w, want)  # sigma = scale / sqrt(H) = 2 / 2
    w = init_recurrent_(torch.empty(4, 4, dtype=D), "gaussian", generator=_gen(3))
    assert torch.equal(w, want / 2)
    w = init_recurrent_(torch.empty(4, 4, dtype=D), "orthogonal", scale=3, generator=_gen(3))
    want = _init.initialize(torch.empty(4, 4, dtype=D), "orthogonal", generator=_gen(3), gain=3.0)
    assert torch.equal(w, want)
    assert torch.allclose(w.T @ w, 9 * torch.eye(4, dtype=D), atol=1e-12)
    w = init_recurrent_(torch.empty(4, 4, dtype=D), "orthogonal", generator=_gen(3))
    assert torch.allclose(w.T @ w, torch.eye(4, dtype=D), atol=1e-12)


def test_identities_and_members():
    out = torch.empty(3, 3, dtype=D)
    assert init_recurrent_(out, "identity") is out and torch.equal(out, torch.eye(3, dtype=D))
    w = init_recurrent_(torch.empty(3, 3, dtype=D), "scaled-identity")
    assert torch.equal(w, 0.01 * torch.eye(3, dtype=D))
    w = init_recurrent_(torch.empty(3, 3, dtype=D), "scaled-identity", scale=2)
    assert torch.equal(w, 2 * torch.eye(3, dtype=D))
    init_recurrent_(torch.empty(3, 3, dtype=D), "identity", scale=1)
    stacked = init_recurrent_(torch.empty(2, 3, 3, dtype=D), "gaussian", generator=_gen(4))
    g = _gen(4)
    first = init_recurrent_(torch.empty(3, 3, dtype=D), "gaussian", generator=g)
    second = init_recurrent_(torch.empty(3, 3, dtype=D), "gaussian", generator=g)
    assert torch.equal(stacked, torch.stack([first, second]))  # member by member


@pytest.mark.parametrize(
    "shape, name, scale, message",
    [
        ((3, 3), "gaussian", 0.0, "scale=0.0 is invalid: expected a positive number"),
        ((3, 3), "gaussian", -1, "scale=-1 is invalid: expected a positive number"),
        ((3, 3), "gaussian", True, "scale=True is invalid: expected a positive number"),
        ((3, 3), "gaussian", "1", "scale='1' is invalid: expected a positive number"),
        ((3,), "gaussian", None,
         "weight=(3,) is invalid: expected a square (H, H) or (members, H, H) recurrent weight"),
        ((3, 4), "gaussian", None,
         "weight=(3, 4) is invalid: expected a square (H, H) or (members, H, H) recurrent weight"),
        ((2, 3, 4), "gaussian", None,  # a stack of non-square (3, 4) members
         "weight=(2, 3, 4) is invalid: expected a square (H, H) or (members, H, H) "
         "recurrent weight"),
        ((1, 2, 3, 3), "identity", None,
         "weight=(1, 2, 3, 3) is invalid: expected a square (H, H) or (members, H, H) "
         "recurrent weight"),
        ((3, 3), "identity", 0.5,
         "scale=0.5 is invalid: expected 1 for 'identity' (use 'scaled-identity')"),
    ],
)  # fmt: skip
def test_init_invalid_inputs(shape, name, scale, message):
    assert _message(init_recurrent_, torch.empty(*shape), name, scale=scale) == message


# ---------------------------------------------------------------- constraints
def _rot(theta):
    c, s = math.cos(theta), math.sin(theta)
    return _t([c, -s], [s, c])


def test_clip_singular_values_by_hand():
    u, v = _rot(0.3), _rot(-1.1)
    w = u @ torch.diag(_t(3.0, 0.1)) @ v.T
    out = clip_singular_values_(w)
    assert out is w
    assert torch.allclose(w, u @ torch.diag(_t(1.0, 0.1)) @ v.T, rtol=0, atol=1e-14)
    w = u @ torch.diag(_t(3.0, 0.1)) @ v.T
    clip_singular_values_(w, 2.0, 0.5)
    assert torch.allclose(w, u @ torch.diag(_t(2.0, 0.5)) @ v.T, rtol=0, atol=1e-14)
    w = u @ torch.diag(_t(0.7, 0.6)) @ v.T
    keep = w.clone()
    clip_singular_values_(w, max_value=0.8, min_value=0.6)  # inside: unchanged
    assert torch.allclose(w, keep, rtol=0, atol=1e-14)
    clip_singular_values_(w, 0.65, 0.65)
    assert torch.allclose(w, 0.65 * u @ v.T, rtol=0, atol=1e-14)
    stack = torch.stack([2 * torch.eye(2, dtype=D), 0.5 * torch.eye(2, dtype=D)])
    clip_singular_values_(stack)
    assert torch.allclose(stack, torch.stack([torch.eye(2, dtype=D), 0.5 * torch.eye(2, dtype=D)]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_value": 0.0}, "max_value=0.0 is invalid: expected a positive number"),
        ({"min_value": -0.1}, "min_value=-0.1 is invalid: expected a number in [0, max_value=1.0]"),
        ({"max_value": 0.5, "min_value": 0.6},
         "min_value=0.6 is invalid: expected a number in [0, max_value=0.5]"),
    ],
)  # fmt: skip
def test_clip_invalid(kwargs, message):
    assert _message(clip_singular_values_, torch.eye(2), **kwargs) == message


def test_orthogonal_and_identity_ball_by_hand():
    u, v = _rot(0.4), _rot(2.0)
    w = u @ torch.diag(_t(3.0, 0.2)) @ v.T
    assert project_orthogonal_(w) is w
    assert torch.allclose(w, u @ v.T, rtol=0, atol=1e-14)
    eye = torch.eye(2, dtype=D)
    w = eye + u @ torch.diag(_t(0.5, 0.05)) @ v.T
    assert project_identity_ball_(w) is w  # default radius 0.1
    assert torch.allclose(w, eye + u @ torch.diag(_t(0.1, 0.05)) @ v.T, rtol=0, atol=1e-14)
    w = eye + u @ torch.diag(_t(0.5, 0.05)) @ v.T
    project_identity_ball_(w, radius=0.3)
    assert torch.allclose(w, eye + u @ torch.diag(_t(0.3, 0.05)) @ v.T, rtol=0, atol=1e-14)
    assert _message(project_identity_ball_, torch.eye(2), 0.0) == (
        "radius=0.0 is invalid: expected a positive number"
    )


@pytest.mark.parametrize(
    "fn", [clip_singular_values_, project_orthogonal_, project_identity_ball_, identity_penalty]
)
@pytest.mark.parametrize("shape", [(3,), (3, 4), (2, 3, 4)])
def test_square_check(fn, shape):
    msg = f"weight={shape} is invalid: expected a square (H, H) matrix or a stack (..., H, H)"
    assert _message(fn, torch.zeros(*shape)) == msg


def test_identity_penalty_and_the_registry():
    stack = torch.stack([W_HH, torch.eye(2, dtype=D), 3 * torch.eye(2, dtype=D)])
    assert torch.allclose(identity_penalty(stack), _t(2.3125, 0.0, 8.0), rtol=0, atol=1e-15)
    assert CONSTRAINTS.names() == ["spectral", "orthogonal", "identity-ball"]
    assert CONSTRAINTS.get("spectral").options == ("max_value", "min_value")
    assert CONSTRAINTS.get("orthogonal").options == ()
    assert CONSTRAINTS.get("identity-ball").options == ("radius",)
    assert CONSTRAINTS.get("spectral").fn is clip_singular_values_
    assert CONSTRAINTS.get("orthogonal").fn is project_orthogonal_
    assert CONSTRAINTS.get("identity-ball").fn is project_identity_ball_
    assert all(CONSTRAINTS.get(n).name == n for n in CONSTRAINTS.names())


# ---------------------------------------------------------------- readouts
def test_readout_initialization_on_the_same_generator():
    m = RNNRegressor(3, 4, 2, generator=_gen(7), dtype=D, input_std=0.1)
    g = _gen(7)
    ElmanRNN(3, 4, generator=g, dtype=D, input_std=0.1)
    w = torch.empty(2, 4, dtype=D).uniform_(-0.5, 0.5, generator=g)  # bound 1 / sqrt(4)
    assert torch.equal(m.readout.weight, w) and torch.equal(m.readout.bias, torch.zeros(2, dtype=D))
    assert m.readout.weight.dtype == D and m.rnn.input_std == 0.1
    assert m.n_out == 2 and m.task == "regression"
    c = RNNClassifier(3, 4, 5)
    assert c.n_classes == 5 and c.task == "classification" and c.readout.out_features == 5
    for cls in (RNNRegressor, RNNClassifier):
        assert _message(cls, 3, 4, 0) == "n_out=0 is invalid: expected a positive int"
        assert _message(cls, 3, 4, 1.0) == "n_out=1.0 is invalid: expected a positive int"


def test_readout_outputs_and_hooks():
    x = torch.randn(2, 3, 3, generator=_gen(1), dtype=D)
    for n_out in (1, 2):
        m = RNNRegressor(3, 2, n_out, dtype=D)
        _set(m.rnn, W_IH, W_HH, B)
        h_last = _by_hand(x, torch.zeros(2, 2, dtype=D))[:, -1]
        want = m.readout(h_last)
        y = m(x)
        assert torch.allclose(y, want.squeeze(-1) if n_out == 1 else want, atol=1e-14)
        assert y.shape == ((2,) if n_out == 1 else (2, 2))
        y2, states = m.forward_with_states(x)
        assert torch.allclose(y2, y, atol=1e-14) and len(states) == 3
    c = RNNClassifier(3, 2, 1, dtype=D)
    assert c(x).shape == (2, 1)  # a classifier never squeezes
    m = RNNRegressor(3, 2, constraint="orthogonal", identity_penalty=2.0, dtype=D)
    with torch.no_grad():
        m.rnn.weight_hh.copy_(3 * torch.eye(2, dtype=D))
    assert m.penalty().item() == pytest.approx(2.0 * 8.0)
    m.enforce_constraint()
    assert torch.allclose(m.rnn.weight_hh, torch.eye(2, dtype=D))


def test_enforce_constraints_and_penalties_over_a_model():
    a = RNNRegressor(3, 2, constraint="orthogonal", identity_penalty=1.0, dtype=D)
    b = RNNClassifier(3, 2, 2, identity_penalty=0.5, dtype=D)
    model = nn.ModuleList([nn.Sequential(a), b, nn.Linear(2, 2)])
    with torch.no_grad():
        a.rnn.weight_hh.copy_(2 * torch.eye(2, dtype=D))
        b.rnn.weight_hh.copy_(2 * torch.eye(2, dtype=D))
    assert penalties(model).item() == pytest.approx(1.0 * 2 + 0.5 * 2)
    reg = RecurrentRegularizer()
    assert reg.penalty(model).item() == pytest.approx(3.0)
    reg.after_step(model, 0.1)
    assert torch.allclose(a.rnn.weight_hh, torch.eye(2, dtype=D))
    assert torch.equal(b.rnn.weight_hh, 2 * torch.eye(2, dtype=D))  # no constraint
    enforce_constraints(model)
    none = penalties(nn.Linear(2, 2))
    assert none.shape == () and none.item() == 0.0


def test_readout_from_config():
    options = ("activation", "init", "scale", "input_std", "constraint",
               "constraint_options", "identity_penalty", "fused", "compile")  # fmt: skip
    assert options == RNN_OPTIONS
    config = {"hidden": 4.0, "activation": "relu", "init": "identity", "scale": None,
              "input_std": 0.5, "identity_penalty": 0.25, "lr": 0.1}  # fmt: skip
    m = readout_from_config(config, 3, 2, "classification", seed=3)
    assert isinstance(m, RNNClassifier) and m.n_classes == 2 and m.rnn.n_hidden == 4
    assert (m.rnn.activation, m.rnn.init, m.rnn.scale) == ("relu", "identity", None)
    assert m.rnn.input_std == 0.5 and m.rnn.identity_penalty == 0.25
    want = RNNClassifier(3, 4, 2, generator=_gen(3), activation="relu", init="identity",
                         input_std=0.5)  # fmt: skip
    assert torch.equal(m.rnn.weight_ih, want.rnn.weight_ih)
    assert torch.equal(m.readout.weight, want.readout.weight)
    r = readout_from_config({"hidden": 2}, 3, 1, "regression", seed="1")
    assert isinstance(r, RNNRegressor) and r.n_out == 1
    assert torch.equal(r.rnn.weight_hh, RNNRegressor(3, 2, generator=_gen(1)).rnn.weight_hh)
    assert torch.equal(readout_from_config({"hidden": 2}, 3, 1, "regression").rnn.weight_hh,
                       RNNRegressor(3, 2, generator=_gen(0)).rnn.weight_hh)  # fmt: skip
    assert (
        readout_from_config(
            {"hidden": 2}, 3, 1, "regression", device="cpu"
        ).rnn.weight_hh.device.type
        == "cpu"
    )
    assert _message(readout_from_config, {"hidden": 2}, 3, 1, "ranking") == (
        "task='ranking' is invalid: expected 'classification' or 'regression'"
    )


def test_add_init_registers_a_rule():
    from smithing.nn.rnn.inits import RecurrentInit, _add_init

    def rule(w, scale, generator):
        w.fill_(scale)

    try:
        assert _add_init("test-fill", 2.5, "W_hh = scale everywhere")(rule) is rule
        entry = RECURRENT_INITS.entry("test-fill")
        assert entry.obj == RecurrentInit("test-fill", rule, 2.5, "W_hh = scale everywhere")
        assert entry.name == "test-fill" and entry.description == "W_hh = scale everywhere"
        assert torch.equal(init_recurrent_(torch.empty(2, 2), "test-fill"), torch.full((2, 2), 2.5))
    finally:
        RECURRENT_INITS._entries.pop("test-fill", None)


def test_identity_penalty_and_ball_on_a_two_axis_stack_and_low_precision():
    w = 2 * torch.eye(2, dtype=D).expand(2, 3, 2, 2).clone()  # (2, 3, H=2, H=2)
    assert torch.equal(identity_penalty(w), torch.full((2, 3), 2.0, dtype=D))
    project_identity_ball_(w, radius=0.5)
    assert torch.allclose(w, 1.5 * torch.eye(2, dtype=D).expand(2, 3, 2, 2), atol=1e-14)
    p = identity_penalty(2 * torch.eye(3, dtype=torch.bfloat16))
    assert p.dtype == torch.bfloat16 and p.item() == 3.0  # computed in the weight's dtype


def test_projections_of_a_stack_are_the_projections_of_its_matrices():
    u, v = _rot(0.3), _rot(-1.1)
    a = u @ torch.diag(_t(3.0, 0.1)) @ v.T  # distinct singular values: rows and columns differ
    b = v @ torch.diag(_t(0.05, 2.0)) @ u.T
    eye = torch.eye(2, dtype=D)
    for fn, kw in ((clip_singular_values_, {"min_value": 0.2}), (project_orthogonal_, {}),
                   (project_identity_ball_, {"radius": 0.5})):  # fmt: skip
        stack = torch.stack([a, b]) + (eye if fn is project_identity_ball_ else 0)
        want = torch.stack([fn(m.clone(), **kw) for m in stack])
        assert torch.allclose(fn(stack, **kw), want, rtol=0, atol=1e-14), fn.__name__

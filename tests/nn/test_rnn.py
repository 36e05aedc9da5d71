"""smithing.nn.rnn: Elman RNN vs torch.nn.RNN, recurrent inits, constraints, run configurations."""

import pytest
import torch
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from smithing.nn.rnn import (
    RNN_OPTIONS,
    ElmanRNN,
    RecurrentRegularizer,
    RNNClassifier,
    RNNRegressor,
    clip_singular_values_,
    enforce_constraints,
    identity_penalty,
    init_recurrent_,
    penalties,
    project_identity_ball_,
    project_orthogonal_,
    readout_from_config,
)
from tensortools import gen


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny recurrent steps only lose from intra-op threads (badly on a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------- forward


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_forward_matches_torch_rnn(activation):
    g = gen()
    ref = torch.nn.RNN(3, 7, nonlinearity=activation, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.6)
    m = ElmanRNN.from_torch(ref)
    x = torch.randn(4, 9, 3, generator=g, dtype=torch.float64)
    h0 = torch.randn(4, 7, generator=g, dtype=torch.float64)
    out, h = m(x, h0)
    out_ref, h_ref = ref(x, h0[None])
    torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(h, h_ref[0], rtol=0, atol=1e-12)
    # and back: to_torch() is the same function, gradients included
    ref2 = m.to_torch()
    out2, _ = ref2(x)
    out, _ = m(x)
    torch.testing.assert_close(out, out2, rtol=0, atol=1e-12)
    out.sum().backward()
    out2.sum().backward()
    torch.testing.assert_close(m.weight_hh.grad, ref2.weight_hh_l0.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(m.bias.grad, ref2.bias_ih_l0.grad, rtol=1e-10, atol=1e-12)


def test_readouts_shapes_and_last_state():
    g = gen(1)
    reg = RNNRegressor(2, 5, generator=g)
    clf = RNNClassifier(1, 5, 10, activation="relu", init="identity", generator=g)
    x = torch.rand(6, 4, 2, generator=g)
    assert reg(x).shape == (6,)
    assert RNNRegressor(2, 5, n_out=3)(x).shape == (6, 3)
    assert clf(torch.rand(6, 4, 1)).shape == (6, 10)
    _, h = reg.rnn(x)
    torch.testing.assert_close(reg(x), reg.readout(h).squeeze(-1))
    pred, states = reg.forward_with_states(x)
    assert len(states) == 4
    torch.testing.assert_close(pred, reg(x))
    assert float(reg.readout.bias.detach().abs().max()) == 0.0


def test_works_under_vmap_with_stacked_parameters():
    models = [
        RNNRegressor(2, 6, activation="relu", init="orthogonal", generator=gen(s))
        for s in (0, 1, 2)
    ]
    params, buffers = stack_module_state(models)
    x = torch.rand(3, 5, 4, 2, generator=gen(9))  # (members, batch, T, n_in)

    def f(p, b, xb):
        return functional_call(models[0], (p, b), (xb,))

    out = vmap(f)(params, buffers, x)  # (members, batch)
    for i, m in enumerate(models):
        torch.testing.assert_close(out[i], m(x[i]), rtol=1e-5, atol=1e-6)


def test_same_generator_same_weights():
    a = RNNClassifier(1, 8, 10, init="gaussian", generator=gen(3))
    b = RNNClassifier(1, 8, 10, init="gaussian", generator=gen(3))
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(p, q), n


# ----------------------------------------------------------------------------- inits


def test_identity_init_is_exact():
    m = ElmanRNN(2, 100, "relu", "identity", generator=gen())
    assert torch.equal(m.weight_hh.data, torch.eye(100))
    assert torch.equal(m.bias.data, torch.zeros(100))
    std = m.weight_ih.std().item()
    assert 0.0008 < std < 0.0012  # N(0, 0.001^2), 200 draws
    s = ElmanRNN(2, 10, "relu", "scaled-identity", scale=0.5)
    assert torch.equal(s.weight_hh.data, 0.5 * torch.eye(10))
    assert torch.equal(ElmanRNN(2, 10, init="scaled-identity").weight_hh.data, 0.01 * torch.eye(10))


def test_orthogonal_and_gaussian_inits():
    w = init_recurrent_(torch.empty(50, 50), "orthogonal", scale=1.5, generator=gen())
    torch.testing.assert_close(w.T @ w, 2.25 * torch.eye(50), rtol=0, atol=1e-4)
    w = init_recurrent_(torch.empty(200, 200), "gaussian", scale=1.0, generator=gen())
    assert abs(w.std().item() - 200**-0.5) < 0.002
    radius = torch.linalg.eigvals(w).abs().max().item()
    assert 0.85 < radius < 1.15  # circular law
    stacked = init_recurrent_(torch.empty(3, 4, 4), "identity")
    assert torch.equal(stacked, torch.eye(4).expand(3, 4, 4))


def test_bad_arguments():
    with pytest.raises(
        ValueError, match="unknown recurrent init 'idenity'.*did you mean 'identity'"
    ):
        ElmanRNN(2, 4, init="idenity")
    with pytest.raises(ValueError, match="activation='sigmoid' is invalid: expected 'tanh' or"):
        ElmanRNN(2, 4, "sigmoid")
    with pytest.raises(ValueError, match="unknown recurrent constraint 'unitary'"):
        ElmanRNN(2, 4, constraint="unitary")
    with pytest.raises(ValueError, match="radius=0.2 is invalid: expected an option of"):
        ElmanRNN(2, 4, constraint="spectral", constraint_options={"radius": 0.2})
    with pytest.raises(ValueError, match=r"x=\(3, 5\) is invalid: expected a \(batch, T, n_in=2\)"):
        ElmanRNN(2, 4)(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="scale=2.0 is invalid: expected 1 for 'identity'"):
        ElmanRNN(2, 4, init="identity", scale=2.0)
    with pytest.raises(ValueError, match="compile='gpu' is invalid"):
        ElmanRNN(2, 4, compile="gpu")
    with pytest.raises(ValueError, match="weight=.*square"):
        project_orthogonal_(torch.zeros(3, 4))


# ----------------------------------------------------------------------------- constraints


def _train_steps(model, steps=5, lr=0.5):
    """A few large SGD steps (they push W_hh off its set), the constraint after each."""
    g = gen(5)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        x = torch.rand(8, 6, 2, generator=g)
        y = 3 * torch.rand(8, generator=g)
        loss = F.mse_loss(model(x), y) + penalties(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        enforce_constraints(model)
    return model


def test_spectral_constraint_holds_after_steps():
    m = RNNRegressor(2, 16, activation="relu", init="gaussian", scale=3.0, constraint="spectral")
    assert torch.linalg.matrix_norm(m.rnn.weight_hh, 2) <= 1 + 1e-5  # applied at construction
    _train_steps(m)
    s = torch.linalg.svdvals(m.rnn.weight_hh.detach())
    assert s.max() <= 1 + 1e-5
    m2 = RNNRegressor(
        2, 16, init="gaussian", constraint="spectral", constraint_options={"min_value": 0.9}
    )
    _train_steps(m2)
    s = torch.linalg.svdvals(m2.rnn.weight_hh.detach())
    assert s.min() >= 0.9 - 1e-5 and s.max() <= 1 + 1e-5


def test_orthogonal_constraint_holds_after_steps():
    m = _train_steps(RNNRegressor(2, 16, init="gaussian", constraint="orthogonal"))
    w = m.rnn.weight_hh.detach()
    torch.testing.assert_close(w.T @ w, torch.eye(16), rtol=0, atol=1e-5)


def test_identity_ball_constraint_holds_after_steps():
    m = RNNRegressor(
        2,
        16,
        activation="relu",
        init="identity",
        constraint="identity-ball",
        constraint_options={"radius": 0.05},
    )
    w0 = m.rnn.weight_hh.detach().clone()
    _train_steps(m, lr=2.0)
    w = m.rnn.weight_hh.detach()
    assert not torch.equal(w, w0)  # it moved ...
    assert torch.linalg.matrix_norm(w - torch.eye(16), 2) <= 0.05 + 1e-5  # ... within the ball


def test_projections_are_nearest_points_float64():
    g = gen(2)
    a = torch.randn(5, 5, generator=g, dtype=torch.float64) * 2
    u, s, vh = torch.linalg.svd(a)
    clipped = clip_singular_values_(a.clone(), 1.0)
    torch.testing.assert_close(clipped, u @ torch.diag(s.clamp(max=1.0)) @ vh)
    # polar factor: the Frobenius-nearest orthogonal matrix beats random orthogonal ones
    q = project_orthogonal_(a.clone())
    best = torch.linalg.matrix_norm(a - q)
    for _ in range(20):
        r, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
        assert torch.linalg.matrix_norm(a - r) >= best
    # inside the set: unchanged
    inside = 0.5 * q
    torch.testing.assert_close(clip_singular_values_(inside.clone()), inside)
    near = torch.eye(5, dtype=torch.float64) + 0.01 * a
    torch.testing.assert_close(project_identity_ball_(near.clone(), radius=1.0), near)


def test_projections_accept_a_members_axis():
    w = torch.randn(3, 6, 6, generator=gen(4)) * 2
    alone = torch.stack([project_orthogonal_(w[i].clone()) for i in range(3)])
    torch.testing.assert_close(project_orthogonal_(w.clone()), alone)
    assert (torch.linalg.svdvals(clip_singular_values_(w.clone())) <= 1 + 1e-5).all()
    d = project_identity_ball_(w.clone(), 0.3) - torch.eye(6)
    assert (torch.linalg.matrix_norm(d, 2) <= 0.3 + 1e-5).all()
    assert identity_penalty(w).shape == (3,)


def test_identity_penalty_value_and_gradient():
    w = (torch.eye(4) + 0.1 * torch.randn(4, 4, generator=gen())).requires_grad_()
    p = identity_penalty(w)
    torch.testing.assert_close(p, ((w - torch.eye(4)) ** 2).sum())
    p.backward()
    torch.testing.assert_close(w.grad, 2 * (w.detach() - torch.eye(4)))
    m = ElmanRNN(2, 4, init="identity", identity_penalty=0.5)
    assert m.penalty().item() == 0.0
    with torch.no_grad():
        m.weight_hh.add_(0.1)
    torch.testing.assert_close(m.penalty(), torch.tensor(0.5 * 16 * 0.01))


# ----------------------------------------------------------------------------- config, regularizer


def test_readout_from_config_builds_the_configured_model():
    cfg = {"hidden": 6, "activation": "relu", "init": "identity", "scale": None, "T": 50}
    m = readout_from_config(cfg, 2, 1, "regression", seed=3)
    assert isinstance(m, RNNRegressor) and m.rnn.n_hidden == 6 and m.rnn.activation == "relu"
    ref = RNNRegressor(2, 6, 1, activation="relu", init="identity", generator=gen(3))
    for a, b in zip(m.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # same seed, same weights (None options keep the default)
    c = readout_from_config({"hidden": 4, "constraint": "spectral"}, 1, 10, "classification")
    assert isinstance(c, RNNClassifier) and c.n_classes == 10 and c.rnn.constraint == "spectral"
    # every option is a keyword of ElmanRNN (called, not read from __code__: mutmut wraps it)
    defaults = {"activation": "tanh", "init": "gaussian", "scale": None, "input_std": 0.001,
                "constraint": None, "constraint_options": None, "identity_penalty": 0.0,
                "fused": False, "compile": False}  # fmt: skip
    assert set(defaults) == set(RNN_OPTIONS)
    ElmanRNN(2, 3, **defaults)
    with pytest.raises(ValueError, match="task='ranking' is invalid"):
        readout_from_config({"hidden": 4}, 1, 1, "ranking")


def test_recurrent_regularizer_is_penalties_and_constraints():
    m = RNNRegressor(2, 4, init="identity", constraint="spectral", identity_penalty=0.5)
    with torch.no_grad():
        m.rnn.weight_hh.mul_(3.0)  # spectral norm 3
    reg = RecurrentRegularizer()
    torch.testing.assert_close(reg.penalty(m), penalties(m))
    reg.after_step(m, 0.1)
    assert float(torch.linalg.matrix_norm(m.rnn.weight_hh.detach(), 2)) <= 1 + 1e-5


def test_nn_does_not_import_the_training_core():
    """The core's layering: train/ may import nn/, never the reverse (not even lazily)."""
    import pathlib

    import smithing.nn

    for path in pathlib.Path(smithing.nn.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "from smithing.train" not in text and "import smithing.train" not in text, path


# ----------------------------------------------------------------------------- compile


def test_compile_true_stays_eager_on_cpu():
    m = ElmanRNN(2, 4, compile=True)
    from smithing.nn.rnn.elman import _stacked_unroll

    assert m._unroll_fn(torch.device("cpu")) is _stacked_unroll
    out, _ = m(torch.rand(2, 3, 2))
    assert out.shape == (2, 3, 4)


@pytest.mark.gpu
def test_compiled_loop_matches_eager_on_cuda():
    dev = torch.device("cuda")
    eager = RNNRegressor(2, 16, activation="relu", init="identity", device=dev)
    comp = RNNRegressor(2, 16, activation="relu", init="identity", compile=True, device=dev)
    comp.load_state_dict(eager.state_dict())
    x = torch.rand(8, 20, 2, device=dev)
    for _ in range(3):  # reduce-overhead records its CUDA graph after a warm-up call
        out = comp(x)
    torch.testing.assert_close(out, eager(x), rtol=1e-4, atol=1e-5)
    out.sum().backward()
    assert comp.rnn.weight_hh.grad is not None


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_fused_kernel_matches_the_loop(activation):
    loop = ElmanRNN(3, 6, activation, "orthogonal", input_std=0.5, generator=gen(0)).double()
    fused = ElmanRNN(3, 6, activation, fused=True).double()
    with torch.no_grad():
        loop.bias.copy_(torch.linspace(-0.3, 0.3, 6))
    fused.load_state_dict(loop.state_dict())
    x = torch.rand(2, 7, 3, generator=gen(1), dtype=torch.float64)
    (oa, ha), (ob, hb) = loop(x), fused(x)
    torch.testing.assert_close(oa, ob, rtol=0, atol=1e-12)
    (oa.sum() + ha.sum()).backward()
    (ob.sum() + hb.sum()).backward()
    for p, q in zip(loop.parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="compile=True is invalid: expected False when fused"):
        ElmanRNN(3, 6, fused=True, compile=True)

"""AIS and exact ``log Z`` against float64 transcriptions on tiny RBMs: every draw of
:func:`ais.ais_log_z` replayed from the same generator by a loop written from the module
docstring's formulas, the +-3 sd interval from the weights themselves, and the inputs it
refuses with their messages."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from smithing.pretrain import ClassRBM, ais
from smithing.pretrain.rbm import BernoulliRBM, GaussianBernoulliRBM

D = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_rbm(nv, nh, seed=0, members=None, cls=BernoulliRBM, scale=1.0, **kw):
    rbm = cls(nv, nh, members=members, dtype=D, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        rbm.W.copy_(torch.randn(rbm.W.shape, generator=g, dtype=D) * scale)
        rbm.b.copy_(torch.randn(rbm.b.shape, generator=g, dtype=D))
        rbm.c.copy_(torch.randn(rbm.c.shape, generator=g, dtype=D))
        if cls is GaussianBernoulliRBM:
            rbm.log_var.copy_(torch.randn(rbm.log_var.shape, generator=g, dtype=D) * 0.5)
    return rbm


def reference_ais(rbm, bA, betas, n_runs, g):
    """The module docstring's AIS, literally, with a leading members axis always (a single
    RBM's draws ``(R, nv)`` are the same numbers as ``(1, R, nv)``)."""
    W, b, c = (t.detach().to(D) for t in (rbm.W, rbm.b, rbm.c))
    if W.dim() == 2:
        W, b, c = W[None], b[None], c[None]
    M, nv, nh = W.shape
    bA = bA.to(D).expand(M, nv)[:, None, :]  # (M, 1, nv)
    b, c = b[:, None, :], c[:, None, :]
    gaussian = isinstance(rbm, GaussianBernoulliRBM)
    if gaussian:
        var = rbm.log_var.detach().to(D).reshape(-1, nv)[:, None, :].expand(M, 1, nv).exp()
        v = bA + var.sqrt() * torch.randn((M, n_runs, nv), generator=g, dtype=D)
    else:
        v = torch.bernoulli(torch.sigmoid(bA).expand(M, n_runs, nv).contiguous(), generator=g)

    def log_f(beta, v):  # log f_beta(v), hiddens summed out
        if gaussian:
            vis = -(1 - beta) * ((v - bA) ** 2 / (2 * var)).sum(-1)
            vis = vis - beta * ((v - b) ** 2 / (2 * var)).sum(-1)
            drive = v / var
        else:
            vis = (1 - beta) * (v * bA).sum(-1) + beta * (v * b).sum(-1)
            drive = v
        return vis + torch.log1p(torch.exp(beta * (c + drive @ W))).sum(-1)

    logw = torch.zeros(M, n_runs, dtype=D)
    betas = [float(x) for x in betas]
    for k in range(1, len(betas)):
        logw = logw + log_f(betas[k], v) - log_f(betas[k - 1], v)
        if k < len(betas) - 1:  # the transition T_{beta_k}: v_k -> v_{k+1}
            beta = betas[k]
            drive = v / var if gaussian else v
            h = torch.bernoulli(torch.sigmoid(beta * (c + drive @ W)), generator=g)
            mean = (1 - beta) * bA + beta * (b + h @ W.transpose(-1, -2))
            if gaussian:
                v = mean + var.sqrt() * torch.randn(mean.shape, generator=g, dtype=D)
            else:
                v = torch.bernoulli(torch.sigmoid(mean), generator=g)
    if gaussian:
        log_za = 0.5 * torch.log(2 * math.pi * var[:, 0]).sum(-1) + nh * math.log(2)
    else:
        log_za = torch.log(1 + torch.exp(bA[:, 0])).sum(-1) + nh * math.log(2)
    w = logw.exp()
    mean, sd = w.mean(-1), w.std(-1) / math.sqrt(n_runs)
    up = torch.log(mean + 3 * sd) + log_za
    lo = mean - 3 * sd
    down = torch.where(lo > 0, torch.log(lo.clamp_min(1e-300)), -math.inf) + log_za
    return torch.log(mean) + log_za, up, down, logw, log_za


def check_against_reference(rbm, betas_arg, betas, bA, n_runs=6, seed=3, **kw):
    res = ais.ais_log_z(
        rbm, n_runs=n_runs, betas=betas_arg, generator=torch.Generator().manual_seed(seed), **kw
    )
    ref = reference_ais(rbm, bA, betas, n_runs, torch.Generator().manual_seed(seed))
    single = rbm.W.dim() == 2
    names = ("log_z", "log_z_up", "log_z_down", "log_weights", "log_z_base")
    for name, want in zip(names, ref, strict=True):
        got = getattr(res, name)
        want = want[0] if single else want
        assert got.dtype == D and got.shape == want.shape, name
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, msg=name)
    assert res.n_betas == len(betas)
    if single:
        assert float(res) == float(res.log_z)
    return res


BETAS = torch.tensor([0.0, 0.2, 0.55, 0.9, 1.0], dtype=D)


@pytest.mark.parametrize("members", [None, 2])
def test_bernoulli_ais_is_the_documented_loop(members):
    rbm = make_rbm(3, 2, seed=1, members=members, scale=1.5)
    g = torch.Generator().manual_seed(9)
    data = torch.bernoulli(torch.full((7, 3), 0.4, dtype=D), generator=g)
    zeros = torch.zeros(3, dtype=D)
    check_against_reference(rbm, BETAS, BETAS, zeros)  # uniform base model
    check_against_reference(rbm, 4, torch.linspace(0, 1, 4, dtype=D), zeros)  # a count
    check_against_reference(rbm, BETAS, BETAS, ais.base_rate_biases(data), data=data)
    bA = torch.tensor([0.3, -1.2, 0.8], dtype=D)
    check_against_reference(rbm, BETAS, BETAS, bA, base_biases=bA)
    # base_biases wins over data
    check_against_reference(rbm, BETAS, BETAS, bA, base_biases=bA, data=data)


@pytest.mark.parametrize("members", [None, 2])
def test_gaussian_ais_is_the_documented_loop(members):
    rbm = make_rbm(3, 2, seed=2, members=members, scale=0.7, cls=GaussianBernoulliRBM,
                   learn_variance=True)  # fmt: skip
    g = torch.Generator().manual_seed(8)
    data = torch.randn(9, 3, generator=g, dtype=D) + torch.tensor([1.0, -0.5, 2.0], dtype=D)
    check_against_reference(rbm, BETAS, BETAS, torch.zeros(3, dtype=D))
    check_against_reference(rbm, BETAS, BETAS, data.mean(0), data=data)  # the data's mean
    bA = torch.tensor([0.5, 0.0, -1.0], dtype=D)
    check_against_reference(rbm, 3, torch.linspace(0, 1, 3, dtype=D), bA, base_biases=bA)


def test_two_betas_is_plain_importance_sampling_and_a_model_equal_to_its_base_is_exact():
    """betas (0, 1): log w = log f_1(v) - log f_0(v), v ~ p_A; and when B is the base model
    every weight is 1 and log Z is log Z_A exactly, with a zero-width interval."""
    rbm = make_rbm(2, 2, seed=4)
    v_states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)), dtype=D)
    res = ais.ais_log_z(rbm, n_runs=50, betas=2, generator=torch.Generator().manual_seed(0))
    W, b, c = (t.detach() for t in (rbm.W, rbm.b, rbm.c))
    want = {tuple(v.tolist()): float((v @ b) + F.softplus(c + v @ W).sum() - 2 * math.log(2))
            for v in v_states}  # fmt: skip
    assert {round(float(x), 12) for x in res.log_weights} <= {round(x, 12) for x in want.values()}
    assert res.log_z_base.item() == pytest.approx(4 * math.log(2), abs=1e-14)
    same = BernoulliRBM(3, 2, dtype=D)
    with torch.no_grad():
        same.W.zero_(), same.c.zero_(), same.b.copy_(torch.tensor([0.5, -1.0, 2.0]))
    res = ais.ais_log_z(same, base_biases=same.b.detach(), n_runs=4, betas=BETAS,
                        generator=torch.Generator().manual_seed(1))  # fmt: skip
    exact = ais.exact_log_z(same)
    assert torch.equal(res.log_weights, torch.zeros(4, dtype=D))
    torch.testing.assert_close(res.log_z, exact, rtol=0, atol=1e-12)
    torch.testing.assert_close(res.log_z_base, exact, rtol=0, atol=1e-12)
    torch.testing.assert_close(res.log_z_up, exact, rtol=0, atol=1e-12)
    torch.testing.assert_close(res.log_z_down, exact, rtol=0, atol=1e-12)


def test_interval_lower_end_is_minus_infinity_when_not_positive():
    """Two runs whose weights differ a lot: mean - 3 sd / sqrt(2) < 0, so log_z_down = -inf,
    while log_z_up is still log(mean + 3 sd / sqrt(2)) + log Z_A."""
    rbm = make_rbm(3, 2, seed=5, scale=3.0)
    for seed in range(20):
        res = ais.ais_log_z(rbm, n_runs=2, betas=2, generator=torch.Generator().manual_seed(seed))
        w = res.log_weights.exp()
        if w.max() > 10 * w.min():
            break
    else:
        raise AssertionError("no pair of very different weights")
    assert res.log_z_down.item() == -math.inf
    up = math.log(w.mean() + 3 * w.std() / math.sqrt(2)) + res.log_z_base.item()
    assert res.log_z_up.item() == pytest.approx(up, rel=1e-12)
    assert res.log_z.item() == pytest.approx(math.log(w.mean()) + res.log_z_base.item())


def test_dtype_argument_and_float32_model():
    rbm = make_rbm(3, 2, seed=6)
    r32 = BernoulliRBM(3, 2)  # float32 parameters, computed in float64 by default
    with torch.no_grad():
        for n in ("W", "b", "c"):
            getattr(r32, n).copy_(getattr(rbm, n))
    a = ais.ais_log_z(r32, n_runs=3, betas=BETAS, generator=torch.Generator().manual_seed(2))
    assert a.log_z.dtype == D and a.log_weights.dtype == D
    b = ais.ais_log_z(r32, n_runs=3, betas=BETAS, generator=torch.Generator().manual_seed(2),
                      dtype=torch.float32)  # fmt: skip
    assert b.log_z.dtype == torch.float32 and b.log_weights.dtype == torch.float32
    assert b.log_z_base.dtype == torch.float32
    assert b.log_z_base.item() == pytest.approx(a.log_z_base.item(), rel=1e-6)


def test_salakhutdinov_betas_dtype_device_and_values():
    betas = ais.salakhutdinov_betas(torch.float32, "cpu")
    assert betas.dtype == torch.float32 and betas.device.type == "cpu" and betas.numel() == 14501
    b64 = ais.salakhutdinov_betas()
    assert b64.dtype == D
    assert b64[500].item() == 0.5 and b64[4500].item() == pytest.approx(0.9, abs=1e-15)
    assert b64[1].item() == pytest.approx(1e-3) and b64[501].item() == pytest.approx(0.5001)
    assert b64[4501].item() == pytest.approx(0.90001)
    # each segment is a float64 linspace (not a float32 one promoted by the concatenation)
    assert torch.equal(b64[:500], torch.linspace(0.0, 0.5, 501, dtype=D)[:-1])
    assert torch.equal(b64[500:4500], torch.linspace(0.5, 0.9, 4001, dtype=D)[:-1])
    assert torch.equal(b64[4500:], torch.linspace(0.9, 1.0, 10001, dtype=D))
    assert torch.equal(betas, torch.cat([torch.linspace(0.0, 0.5, 501)[:-1],
                                         torch.linspace(0.5, 0.9, 4001)[:-1],
                                         torch.linspace(0.9, 1.0, 10001)]))  # fmt: skip


def test_base_rate_biases_pseudocount_eps_and_members():
    data = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]]])  # (2, 2, 2)
    got = ais.base_rate_biases(data, pseudocount=0.0, eps=0.01)
    p = torch.tensor([[1.0, 0.5], [0.0, 0.5]], dtype=D).clamp(0.01, 0.99)
    assert got.dtype == D
    torch.testing.assert_close(got, torch.log(p / (1 - p)), rtol=1e-12, atol=1e-12)
    p = ((torch.tensor([[1.0, 0.5], [0.0, 0.5]], dtype=D) + 1.0) / 2.0).clamp(1e-6, 1 - 1e-6)
    torch.testing.assert_close(ais.base_rate_biases(data, pseudocount=1.0), torch.log(p / (1 - p)))
    # the default eps is 1e-6: an always-on pixel with no pseudocount
    lim = math.log((1 - 1e-6) / 1e-6)
    torch.testing.assert_close(ais.base_rate_biases(data, 0.0)[0, 0], torch.tensor(lim, dtype=D))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_runs": 1}, "n_runs=1 is invalid: expected an int >= 2"),
        ({"n_runs": 2.0}, "n_runs=2.0 is invalid: expected an int >= 2"),
        ({"betas": 1}, "betas=1 is invalid: expected an int >= 2, a tensor or None"),
        (
            {"betas": torch.tensor([0.0, 0.5, 0.4, 1.0])},
            "betas=(4,) is invalid: expected an increasing 1-d tensor from 0 to 1",
        ),
        ({"betas": torch.tensor([0.1, 1.0])}, "betas=(2,) is invalid"),
        ({"betas": torch.tensor([0.0, 0.9])}, "betas=(2,) is invalid"),
        ({"betas": torch.tensor([1.0])}, "betas=(1,) is invalid"),
        ({"betas": torch.tensor([[0.0, 1.0]])}, r"betas=(1, 2) is invalid"),
        ({"base_biases": torch.zeros(4)}, "base_biases.shape=(4,) is invalid: expected (..., 3)"),
        ({"data": torch.zeros(5, 2)}, "base_biases.shape=(2,) is invalid: expected (..., 3)"),
    ],
)
def test_ais_invalid_inputs(kwargs, message):
    with pytest.raises(ValueError) as err:
        ais.ais_log_z(BernoulliRBM(3, 2), **kwargs)
    assert message in str(err.value)


def test_ais_accepts_the_edges():
    rbm = make_rbm(3, 2, seed=7)
    g = torch.Generator().manual_seed(0)
    ais.ais_log_z(rbm, n_runs=2, betas=2, generator=g)  # the smallest run count and schedule
    ais.ais_log_z(rbm, n_runs=2, betas=torch.tensor([0.0, 0.5, 0.5, 1.0]), generator=g)  # ties
    ais.ais_log_z(rbm, n_runs=2, betas=[0.0, 1.0], generator=g)  # a list is a tensor too
    with pytest.raises(ValueError, match="pseudocount=-0.1 is invalid: expected a non-negative"):
        ais.base_rate_biases(torch.zeros(2, 3), pseudocount=-0.1)
    ais.base_rate_biases(torch.zeros(2, 3), pseudocount=0)


# ------------------------------------------------------------------------- exact log Z


def states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=D)


def joint_log_z(W, b, c):
    """log sum_{v, h} exp(b^T v + c^T h + v^T W h), every joint state."""
    V, H = states(W.shape[0]), states(W.shape[1])
    e = (V @ b)[:, None] + (H @ c)[None, :] + V @ W @ H.T
    return torch.logsumexp(e.flatten(), 0)


@pytest.mark.parametrize("nv, nh", [(3, 2), (2, 3), (2, 2)])
@pytest.mark.parametrize("chunk", [1, 3, 2**14])
def test_exact_log_z_members_and_chunks(nv, nh, chunk):
    rbm = make_rbm(nv, nh, seed=nv + 10 * nh, members=2, scale=1.3)
    got = ais.exact_log_z(rbm, chunk=chunk)
    assert got.shape == (2,) and got.dtype == D
    for m in range(2):
        want = joint_log_z(rbm.W[m].detach(), rbm.b[m].detach(), rbm.c[m].detach())
        torch.testing.assert_close(got[m], want, rtol=1e-12, atol=1e-12)


def test_exact_log_z_max_units_bounds():
    ais.exact_log_z(make_rbm(5, 3, seed=0), max_units=3)  # enumerates the 3 hiddens
    ais.exact_log_z(make_rbm(3, 5, seed=0), max_units=3)  # enumerates the 3 visibles
    with pytest.raises(ValueError) as err:
        ais.exact_log_z(make_rbm(5, 4, seed=0), max_units=3)
    assert str(err.value) == (
        "rbm='5x4 RBM' is invalid: expected an enumerated layer of at most max_units=3 units "
        "(2^4 states is too many; use ais_log_z)"
    )
    g = make_rbm(2, 3, cls=GaussianBernoulliRBM)  # Gaussian: always the hiddens
    ais.exact_log_z(g, max_units=3)
    with pytest.raises(ValueError, match=r"2x3 RBM.*max_units=2 units \(2\^3 states"):
        ais.exact_log_z(g, max_units=2)
    m = ClassRBM(2, 3, 2, dtype=D)
    ais.exact_log_z(m, max_units=3)
    with pytest.raises(ValueError) as err:
        ais.exact_log_z(m, max_units=2)
    assert str(err.value) == (
        "model='a classification RBM with 3 hidden units' is invalid: expected at most "
        "max_units=2 hidden units (2^3 states is too many)"
    )


def gaussian_log_z_numeric(W, b, c, log_var):
    """log sum_h exp(c^T h) prod_i int exp(-(v - b_i)^2 / (2 s_i^2) + v (W h)_i / s_i^2) dv,
    each 1-d integral by the trapezoid rule (the visibles are independent given h)."""
    var = log_var.exp()
    grid = torch.linspace(-30, 30, 60001, dtype=D)
    terms = []
    for h in states(W.shape[1]):
        total = float(h @ c)
        for i in range(W.shape[0]):
            f = torch.exp(-((grid - b[i]) ** 2) / (2 * var[i]) + grid * (W[i] @ h) / var[i])
            total += math.log(torch.trapezoid(f, grid).item())
        terms.append(total)
    return torch.logsumexp(torch.tensor(terms, dtype=D), 0)


def test_exact_log_z_gaussian_two_visibles_and_members():
    rbm = make_rbm(2, 2, seed=12, members=2, scale=0.6, cls=GaussianBernoulliRBM,
                   learn_variance=True)  # fmt: skip
    got = ais.exact_log_z(rbm, chunk=3)
    P = [t.detach() for t in (rbm.W, rbm.b, rbm.c, rbm.log_var)]
    for m in range(2):
        want = gaussian_log_z_numeric(*(t[m] for t in P))
        assert got[m].item() == pytest.approx(want.item(), abs=1e-8)


def test_exact_log_z_of_a_class_rbm_by_joint_enumeration():
    m = ClassRBM(2, 3, 3, members=2, init_scale=1.5, dtype=D,
                 generator=torch.Generator().manual_seed(3))  # fmt: skip
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in (m.b, m.c, m.d):
            p.copy_(torch.randn(p.shape, generator=g, dtype=D))
    got = ais.exact_log_z(m, chunk=3)
    assert got.requires_grad and got.dtype == D  # differentiable
    m32 = ClassRBM(2, 3, 3, members=2)
    m32.load_state_dict({k: v.float() for k, v in m.state_dict().items()})
    z32 = ais.exact_log_z(m32)
    assert z32.dtype == D  # float64 whatever the model's dtype
    torch.testing.assert_close(z32, got.detach(), rtol=0, atol=1e-5)
    X, Hs, Y = states(2), states(3), torch.eye(3, dtype=D)
    for k in range(2):
        W, b, c, U, d = (t.detach()[k] for t in m.params())
        e = (
            (X @ b)[:, None, None]
            + (Y @ d)[None, :, None]
            + (Hs @ c)[None, None, :]
            + (X @ W @ Hs.T)[:, None, :]
            + (Y @ U @ Hs.T)[None, :, :]
        )
        torch.testing.assert_close(got[k].detach(), torch.logsumexp(e.flatten(), 0))


def test_average_log_prob_float_tensor_result_and_gaussian():
    rbm = make_rbm(3, 2, seed=13)
    lz = ais.exact_log_z(rbm)
    V = states(3)
    W, b, c = (t.detach() for t in (rbm.W, rbm.b, rbm.c))
    logp = V @ b + F.softplus(c + V @ W).sum(-1) - lz  # -F(v) - log Z
    data = V[[0, 3, 5, 5]]
    want = logp[[0, 3, 5, 5]].mean()
    for log_z in (lz, float(lz)):  # a float log Z is taken in float64
        got = ais.average_log_prob(rbm, data.float(), log_z)
        assert got.dtype == D
        torch.testing.assert_close(got, want, rtol=0, atol=1e-13)
    r32 = BernoulliRBM(3, 2)  # a float32 RBM: computed in float64 all the same
    r32.load_state_dict({k: v.float() for k, v in rbm.state_dict().items()})
    got = ais.average_log_prob(r32, data, float(lz))
    assert got.dtype == D
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    res = ais.AISResult(lz, lz, lz, torch.zeros(2, dtype=D), lz, 2)
    torch.testing.assert_close(ais.average_log_prob(rbm, data, res), want)
    grbm = make_rbm(1, 2, seed=14, cls=GaussianBernoulliRBM, learn_variance=True)
    glz = ais.exact_log_z(grbm)
    x = torch.tensor([[0.3], [-1.1]], dtype=D)
    fe = grbm.free_energy(x).detach()
    torch.testing.assert_close(ais.average_log_prob(grbm, x, glz), (-fe - glz).mean())
    # the density exp(log p(v)) integrates to 1
    grid = torch.linspace(-20, 20, 801, dtype=D)[:, None]
    dens = torch.stack([ais.average_log_prob(grbm, v[None], glz) for v in grid]).exp()
    assert torch.trapezoid(dens, grid[:, 0]).item() == pytest.approx(1.0, abs=1e-6)


def test_defaults_and_argument_dtypes(monkeypatch):
    """The default schedule is salakhutdinov_betas in the computation dtype on the model's
    device (spied, and shortened to keep the test fast) and 100 runs; a list of betas and
    float32 base biases / data are taken in the computation dtype (float64), so they give
    bitwise the same run as float64 tensors of the same values."""
    rbm = make_rbm(2, 1, seed=20)
    calls = []

    def spy(dtype=torch.float64, device=None):
        calls.append((dtype, device))
        return torch.linspace(0.0, 1.0, 4, dtype=dtype, device=device)

    monkeypatch.setattr(ais, "salakhutdinov_betas", spy)
    res = ais.ais_log_z(rbm, n_runs=2, generator=torch.Generator().manual_seed(0))
    assert calls == [(D, rbm.W.device)] and res.n_betas == 4
    ais.ais_log_z(rbm, n_runs=2, dtype=torch.float32)
    assert calls[-1] == (torch.float32, rbm.W.device)
    monkeypatch.undo()
    assert ais.ais_log_z(rbm, betas=2).log_weights.shape == (100,)

    def run(r, **kw):
        return ais.ais_log_z(r, n_runs=3, generator=torch.Generator().manual_seed(1), **kw)

    as_list = run(rbm, betas=[0.0, 0.3, 0.7, 1.0])
    as_f64 = run(rbm, betas=torch.tensor([0.0, 0.3, 0.7, 1.0], dtype=D))
    assert torch.equal(as_list.log_weights, as_f64.log_weights)
    bA = torch.tensor([0.5, -1.25])
    a = run(rbm, betas=BETAS, base_biases=bA)
    b = run(rbm, betas=BETAS, base_biases=bA.to(D))
    assert torch.equal(a.log_weights, b.log_weights) and torch.equal(a.log_z, b.log_z)
    grbm = make_rbm(2, 1, seed=21, cls=GaussianBernoulliRBM, learn_variance=True)
    data = torch.tensor([[1.0, -0.5], [0.0, 1.5], [2.0, -1.0], [1.0, 0.0]])  # exact means
    a = run(grbm, betas=BETAS, data=data)
    b = run(grbm, betas=BETAS, data=data.to(D))
    assert torch.equal(a.log_weights, b.log_weights) and torch.equal(a.log_z, b.log_z)


def test_exact_log_z_of_a_float32_rbm_is_float64():
    rbm = make_rbm(3, 2, seed=22)
    r32 = BernoulliRBM(3, 2)
    r32.load_state_dict({k: v.float() for k, v in rbm.state_dict().items()})
    got = ais.exact_log_z(r32)
    assert got.dtype == D
    ref = joint_log_z(*(t.detach().float().double() for t in (rbm.W, rbm.b, rbm.c)))
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)

"""The classification RBM's pure functions against float64 transcriptions on tiny problems: every
closed-form quantity per member of an ensemble (shared and per-member inputs), and the CD-k /
PCD chains of the generative and unlabeled gradients replayed draw by draw from the same
generator by a loop written from the docstrings' formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from smithing.pretrain import hybrid as H
from smithing.pretrain.hybrid import functional as HF

D = torch.float64
Bn, Dn, Hn, Cn = 4, 3, 2, 3  # batch, inputs, hiddens, classes


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def params(members=None, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    lead = () if members is None else (members,)
    shapes = {"W": (Dn, Hn), "b": (Dn,), "c": (Hn,), "U": (Cn, Hn), "d": (Cn,)}
    return tuple(torch.randn((*lead, *s), generator=g, dtype=D) * scale for s in shapes.values())


def member(P, m):
    return tuple(t[m] for t in P) if P[0].dim() == 3 else P


def data(seed=1, members=None):
    g = torch.Generator().manual_seed(seed)
    lead = () if members is None else (members,)
    x = torch.bernoulli(torch.full((*lead, Bn, Dn), 0.5, dtype=D), generator=g)
    y = torch.randint(Cn, (*lead, Bn), generator=g)
    return x, y


def softplus(t):
    return torch.log1p(torch.exp(t))


# ----------------------------------------------------------- one member, written out by hand


def ref_o(x, W, c, U):
    """o[n, y, j] = c_j + U[y, j] + sum_i x[n, i] W[i, j], by loops over (n, y)."""
    o = torch.empty(x.shape[0], U.shape[0], W.shape[1], dtype=D)
    for n in range(x.shape[0]):
        for y in range(U.shape[0]):
            o[n, y] = c + U[y] + (x[n][:, None] * W).sum(0)
    return o


def ref_logits(x, W, c, U, d):
    return d + softplus(ref_o(x, W, c, U)).sum(-1)


def ref_energy(x, y, h, W, b, c, U, d):
    """-h^T W x - b^T x - c^T h - d^T y - h^T U y per row."""
    out = []
    for n in range(x.shape[0]):
        e = -(x[n][:, None] * W * h[n][None, :]).sum() - (b * x[n]).sum() - (c * h[n]).sum()
        e = e - (d * y[n]).sum() - (y[n][:, None] * U * h[n][None, :]).sum()
        out.append(e)
    return torch.stack(out)


def ref_free_energy(x, y, W, b, c, U, d):
    pre = torch.stack([c + (x[n][:, None] * W).sum(0) + (y[n][:, None] * U).sum(0)
                       for n in range(x.shape[0])])  # fmt: skip
    return -(x * b).sum(-1) - (y * d).sum(-1) - softplus(pre).sum(-1)


def ref_stats(x, y, h):
    n = x.shape[0]
    return {
        "W": sum(x[i][:, None] * h[i][None, :] for i in range(n)) / n,
        "b": x.sum(0) / n,
        "c": h.sum(0) / n,
        "U": sum(y[i][:, None] * h[i][None, :] for i in range(n)) / n,
        "d": y.sum(0) / n,
    }


def ref_disc(x, y1h, W, c, U, d):
    o = ref_o(x, W, c, U)
    p = torch.softmax(d + softplus(o).sum(-1), -1)
    a = y1h - p
    sig = torch.sigmoid(o)
    g = (a[:, :, None] * sig).sum(1)  # (B, H)
    n = x.shape[0]
    return {
        "W": sum(x[i][:, None] * g[i][None, :] for i in range(n)) / n,
        "b": torch.zeros(W.shape[0], dtype=D),
        "c": g.sum(0) / n,
        "U": (a[:, :, None] * sig).sum(0) / n,
        "d": a.sum(0) / n,
    }


def close(a, b, msg=""):
    torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-12, msg=msg)


@pytest.mark.parametrize("members, x_members", [(None, None), (2, None), (2, 2)])
def test_closed_form_functions_per_member(members, x_members):
    """Each function on an ensemble (shared inputs, or one batch per member) is its members'
    transcriptions, stacked."""
    P = params(members, seed=3)
    W, b, c, U, d = P
    x, y = data(seed=4, members=x_members)
    y1h = F.one_hot(y, Cn).to(D)
    soft = torch.softmax(torch.randn(y1h.shape, generator=torch.Generator().manual_seed(5),
                                     dtype=D), -1)  # fmt: skip
    h = torch.bernoulli(torch.full((*x.shape[:-1], Hn), 0.5, dtype=D),
                        generator=torch.Generator().manual_seed(6))  # fmt: skip
    out = {
        "o": HF.hidden_inputs(x, W, c, U),
        "logits": HF.class_logits(x, W, c, U, d),
        "logp": HF.log_proba(x, W, c, U, d),
        "ph": HF.joint_hidden_probs(x, y1h, W, c, U),
        "ph_soft": HF.joint_hidden_probs(x, soft, W, c, U),
        "py_h": HF.class_probs(h, U, d),
        "mh": HF.marginal_hidden_probs(x, W, c, U, d),
        "E": HF.joint_energy(x, y1h, h, W, b, c, U, d),
        "E_soft": HF.joint_energy(x, soft, h, W, b, c, U, d),
        "F": HF.joint_free_energy(x, y1h, W, b, c, U, d),
        "F_soft": HF.joint_free_energy(x, soft, W, b, c, U, d),
    }
    grads, logp = HF.discriminative_gradient(x, y, W, c, U, d, return_log_proba=True)
    grads_soft = HF.discriminative_gradient(x, soft, W, c, U, d)
    assert isinstance(grads_soft, dict)
    M = 1 if members is None else members
    for m in range(M):
        Wm, bm, cm, Um, dm = member(P, m)
        xm, ym, sm, hm = (t if x_members is None else t[m] for t in (x, y1h, soft, h))

        def pick(t, m=m):
            return t if members is None else t[m]

        o = ref_o(xm, Wm, cm, Um)
        lg = ref_logits(xm, Wm, cm, Um, dm)
        lp = lg - torch.logsumexp(lg, -1, keepdim=True)
        want = {
            "o": o,
            "logits": lg,
            "logp": lp,
            "ph": torch.sigmoid((ym[:, :, None] * o).sum(1)),
            "ph_soft": torch.sigmoid(xm @ Wm + sm @ Um + cm),
            "py_h": torch.softmax(hm @ Um.T + dm, -1),
            "mh": (lp.exp()[:, :, None] * torch.sigmoid(o)).sum(1),
            "E": ref_energy(xm, ym, hm, Wm, bm, cm, Um, dm),
            "E_soft": ref_energy(xm, sm, hm, Wm, bm, cm, Um, dm),
            "F": ref_free_energy(xm, ym, Wm, bm, cm, Um, dm),
            "F_soft": ref_free_energy(xm, sm, Wm, bm, cm, Um, dm),
        }
        for k, v in want.items():
            close(pick(out[k]), v, k)
        close(pick(logp), lp, "return_log_proba")
        for k, v in ref_disc(xm, ym, Wm, cm, Um, dm).items():
            close(pick(grads[k]), v, k)
            assert grads[k].shape == (*(() if members is None else (M,)), *v.shape), k
        for k, v in ref_disc(xm, sm, Wm, cm, Um, dm).items():
            close(pick(grads_soft[k]), v, k)
        st = HF.joint_statistics(x, y1h, h)
        for k, v in ref_stats(xm, ym, hm).items():
            close(st[k] if x_members is None else st[k][m], v, k)


def test_free_energy_is_minus_log_sum_over_h_of_exp_minus_energy():
    P = params(seed=7)
    x, y = data(seed=8)
    y1h = F.one_hot(y, Cn).to(D)
    hs = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=D)
    E = torch.stack([HF.joint_energy(x, y1h, h.expand(Bn, Hn), *P) for h in hs], -1)
    close(HF.joint_free_energy(x, y1h, *P), -torch.logsumexp(-E, -1))


def test_objectives_table_and_onehot():
    assert HF.OBJECTIVES["generative"](0.7) == (0.0, 1.0)
    assert HF.OBJECTIVES["discriminative"](0.7) == (1.0, 0.0)
    w = HF.OBJECTIVES["hybrid"](3)
    assert w == (1.0, 3.0) and isinstance(w[1], float)
    assert sorted(HF.OBJECTIVES) == ["discriminative", "generative", "hybrid"]
    oh = HF._onehot(torch.tensor([2, 0]), 3, torch.float32)
    assert oh.dtype == torch.float32 and oh.tolist() == [[0, 0, 1], [1, 0, 0]]
    soft = torch.tensor([[0.25, 0.75]], dtype=D)
    assert HF._onehot(soft, 2, torch.float32).dtype == torch.float32
    assert HF._onehot(soft, 2, torch.float32).tolist() == [[0.25, 0.75]]
    b = torch.arange(6.0).reshape(2, 3)
    assert HF._vec(b, 2).shape == (2, 1, 1, 3) and HF._vec(b[0], 2).shape == (3,)
    b3 = torch.arange(24.0).reshape(2, 3, 4)  # two leading members axes
    assert HF._vec(b3, 1).shape == (2, 3, 1, 4)
    assert torch.equal(HF._vec(b3, 1)[:, :, 0], b3)


def test_gradients_keep_the_parameters_dtype():
    """float32 parameters with float64 soft targets: the targets are cast to the parameters'
    dtype, so the gradient is float32 (not promoted)."""
    P = tuple(t.float() for t in params(seed=23))
    W, b, c, U, d = P
    x, y = data(seed=24)
    soft = torch.softmax(torch.randn(Bn, Cn, dtype=D), -1)
    for t in (y, soft):
        grads = HF.discriminative_gradient(x.float(), t, W, c, U, d)
        assert {g.dtype for g in grads.values()} == {torch.float32}


# ------------------------------------------------------------------------- the chains


def ref_onehot(p, g):
    """First class whose cumulative probability reaches u * total, u ~ U(0, 1) per row."""
    u = torch.rand((*p.shape[:-1], 1), generator=g, dtype=p.dtype)
    out = torch.zeros_like(p)
    flat_p, flat_u, flat_o = p.reshape(-1, p.shape[-1]), u.reshape(-1), out.view(-1, p.shape[-1])
    for r in range(flat_p.shape[0]):
        target, acc, pick = flat_u[r] * flat_p[r].sum(), 0.0, flat_p.shape[1] - 1
        for k in range(flat_p.shape[1]):
            acc = acc + flat_p[r, k]
            if acc >= target:
                pick = k
                break
        flat_o[r, pick] = 1.0
    return out


def stack(f, M, *tensors):
    return torch.stack([f(m, *(t[m] for t in tensors)) for m in range(M)])


def ref_negative(Ps, xs, ys, ph, k, negative_visible, g):
    """k sweeps (x, y) -> h -> (x', y') of the joint chain, written out per member."""
    M = len(Ps)
    xm = ym = None
    for step in range(k):
        if step > 0:
            ph = stack(lambda m, x, y: torch.sigmoid(x @ Ps[m][0] + y @ Ps[m][3] + Ps[m][2]),
                       M, xs, ys)  # fmt: skip
        h = torch.bernoulli(ph, generator=g)
        xm = stack(lambda m, hh: torch.sigmoid(hh @ Ps[m][0].T + Ps[m][1]), M, h)
        ym = stack(lambda m, hh: torch.softmax(hh @ Ps[m][3].T + Ps[m][4], -1), M, h)
        xs = torch.bernoulli(xm, generator=g)
        ys = ref_onehot(ym, g)
    xn, yn = (xm, ym) if negative_visible == "mean" else (xs, ys)
    phn = stack(lambda m, x, y: torch.sigmoid(x @ Ps[m][0] + y @ Ps[m][3] + Ps[m][2]), M, xn, yn)
    neg = [ref_stats(xn[m], yn[m], phn[m]) for m in range(M)]
    return {n: torch.stack([s[n] for s in neg]) for n in HF.PARAMS}, (xs, ys)


def as_members(P, x, y1h, members):
    """Parameters as a list of members and the data with a members axis (M = 1 if none)."""
    M = 1 if members is None else members
    Ps = [member(P, m) for m in range(M)]
    if x.dim() == 2:
        x, y1h = x.expand(M, *x.shape), y1h.expand(M, *y1h.shape)
    return Ps, x, y1h


def ref_generative(P, x, y, members, k, chains, negative_visible, g):
    y1h = F.one_hot(y, Cn).to(D)
    Ps, x, y1h = as_members(P, x, y1h, members)
    M = len(Ps)
    ph0 = stack(lambda m, a, b: torch.sigmoid(a @ Ps[m][0] + b @ Ps[m][3] + Ps[m][2]), M, x, y1h)
    pos = [ref_stats(x[m], y1h[m], ph0[m]) for m in range(M)]
    if chains is None:
        xc, yc, ph = x, y1h, ph0
    else:
        _, xc, yc = as_members(P, *chains, members)
        ph = stack(lambda m, a, b: torch.sigmoid(a @ Ps[m][0] + b @ Ps[m][3] + Ps[m][2]),
                   M, xc, yc)  # fmt: skip
    neg, state = ref_negative(Ps, xc, yc, ph, k, negative_visible, g)
    return {n: torch.stack([s[n] for s in pos]) - neg[n] for n in HF.PARAMS}, state


def ref_unlabeled(P, x, members, positive, k, chains, negative_visible, g):
    M = 1 if members is None else members
    Ps = [member(P, m) for m in range(M)]
    if x.dim() == 2:
        x = x.expand(M, *x.shape)
    o = stack(lambda m, a: ref_o(a, Ps[m][0], Ps[m][2], Ps[m][3]), M, x)  # (M, B, C, H)
    sig = torch.sigmoid(o)
    p = torch.softmax(torch.stack([Ps[m][4] for m in range(M)])[:, None, :]
                      + softplus(o).sum(-1), -1)  # fmt: skip
    ys = ref_onehot(p, g)
    ph = (ys[..., None] * sig).sum(-2)  # p(h | x, y_sampled)
    if positive == "sample":
        pos = [ref_stats(x[m], ys[m], ph[m]) for m in range(M)]
    else:
        mh = (p[..., None] * sig).sum(-2)
        pos = [ref_stats(x[m], p[m], mh[m]) for m in range(M)]
        for m in range(M):  # U's expectation is over y with h ~ p(h | x, y) for each y
            pos[m]["U"] = (p[m][..., None] * sig[m]).sum(0) / x.shape[1]
    if chains is None:
        xc, yc, phc = x, ys, ph
    else:
        xc, yc = chains
        if xc.dim() == 2:
            xc, yc = xc.expand(M, *xc.shape), yc.expand(M, *yc.shape)
        phc = stack(lambda m, a, b: torch.sigmoid(a @ Ps[m][0] + b @ Ps[m][3] + Ps[m][2]),
                    M, xc, yc)  # fmt: skip
    neg, state = ref_negative(Ps, xc, yc, phc, k, negative_visible, g)
    return {n: torch.stack([s[n] for s in pos]) - neg[n] for n in HF.PARAMS}, state


def compare(got, want, members):
    grads, (xs, ys) = got
    wgrads, (wx, wy) = want
    sq = (lambda t: t[0]) if members is None else (lambda t: t)  # noqa: E731
    for n in HF.PARAMS:
        close(grads[n].expand_as(sq(wgrads[n])), sq(wgrads[n]), n)
    assert torch.equal(xs.expand_as(sq(wx)), sq(wx)) and torch.equal(ys.expand_as(sq(wy)), sq(wy))


def pcd_chains(members, seed=11):
    g = torch.Generator().manual_seed(seed)
    lead = () if members is None else (members,)
    xc = torch.bernoulli(torch.full((*lead, Bn, Dn), 0.5, dtype=D), generator=g)
    yc = F.one_hot(torch.randint(Cn, (*lead, Bn), generator=g), Cn).to(D)
    return xc, yc


CASES = [
    {"k": 1},
    {"k": 3},
    {"k": 2, "negative_visible": "mean"},
    {"k": 0},
    {"k": 2, "pcd": True},
    {"k": 1, "pcd": True, "negative_visible": "mean"},
    {"k": 0, "pcd": True},
]


MEMBERS = [(None, None), (2, None), (2, 2)]  # (parameters' members, the data's members)


@pytest.mark.parametrize("members, x_members", MEMBERS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_generative_gradient_replays_the_documented_chain(members, x_members, case):
    case = dict(case)
    pcd = case.pop("pcd", False)
    P = params(members, seed=12, scale=0.8)
    x, y = data(seed=13, members=x_members)
    chains = pcd_chains(members) if pcd else None
    nv = case.get("negative_visible", "sample")
    g, g_ref = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    got = HF.generative_gradient(x, y, *P, chains=chains, generator=g, **case)
    want = ref_generative(P, x, y, members, case["k"], chains, nv, g_ref)
    compare(got, want, members)
    if case["k"] == 0 and not pcd:  # CD-0: the chain never moves, so the gradient is 0
        for n in HF.PARAMS:
            assert not got[0][n].any(), n


@pytest.mark.parametrize("members, x_members", MEMBERS)
@pytest.mark.parametrize("positive", ["sample", "expected"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_unlabeled_gradient_replays_the_documented_chain(members, x_members, positive, case):
    case = dict(case)
    pcd = case.pop("pcd", False)
    P = params(members, seed=14, scale=0.8)
    x, _ = data(seed=15, members=x_members)
    chains = pcd_chains(members, seed=16) if pcd else None
    nv = case.get("negative_visible", "sample")
    g, g_ref = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    got = HF.unlabeled_gradient(x, *P, positive=positive, chains=chains, generator=g, **case)
    want = ref_unlabeled(P, x, members, positive, case["k"], chains, nv, g_ref)
    compare(got, want, members)


def test_defaults_are_one_sampled_sweep():
    P = params(seed=17)
    x, y = data(seed=18)
    a = HF.generative_gradient(x, y, *P, generator=torch.Generator().manual_seed(5))
    b = ref_generative(P, x, y, None, 1, None, "sample", torch.Generator().manual_seed(5))
    compare(a, b, None)
    a = HF.unlabeled_gradient(x, *P, generator=torch.Generator().manual_seed(6))
    b = ref_unlabeled(P, x, None, "sample", 1, None, "sample", torch.Generator().manual_seed(6))
    compare(a, b, None)


def test_without_a_generator_the_global_generator_is_used():
    """No generator: rand_like / bernoulli on the global generator (vmap-safe paths)."""
    p = torch.tensor([[0.2, 0.5, 0.3], [0.0, 0.0, 1.0], [0.6, 0.4, 0.0]], dtype=D).repeat(5, 1)
    torch.manual_seed(123)
    s = HF.sample_onehot(p)
    torch.manual_seed(123)
    u = torch.rand_like(p[..., :1])
    want = F.one_hot((p.cumsum(-1) < u).sum(-1), 3).to(D)
    assert torch.equal(s, want) and s.dtype == D
    g = torch.Generator().manual_seed(7)
    assert torch.equal(HF.sample_onehot(p, g), ref_onehot(p, torch.Generator().manual_seed(7)))
    P = params(seed=19)
    x, y = data(seed=20)
    torch.manual_seed(5)
    a = HF.generative_gradient(x, y, *P, k=2)
    torch.manual_seed(5)
    b = HF.generative_gradient(x, y, *P, k=2)
    assert all(torch.equal(a[0][n], b[0][n]) for n in HF.PARAMS)
    assert torch.equal(a[1][0], b[1][0]) and torch.equal(a[1][1], b[1][1])


def test_sample_onehot_unnormalized_rows_and_the_last_class():
    """Rows need not sum to 1 (u is scaled by the total); a draw past every class boundary
    (rounding) is the last class."""
    g = torch.Generator().manual_seed(8)
    p = torch.tensor([[2.0, 0.0, 6.0]], dtype=D).expand(4000, 3)
    s = HF.sample_onehot(p, g)
    assert s.dtype == D and s.shape == p.shape and torch.all(s.sum(-1) == 1)
    assert s[:, 1].sum() == 0 and abs(s[:, 0].mean().item() - 0.25) < 0.03
    one = torch.tensor([[0.0, 0.0, 1.0]], dtype=D)
    assert HF.sample_onehot(one, g).tolist() == [[0.0, 0.0, 1.0]]
    ties = torch.ones(3, 2, 4, dtype=D)  # any leading shape
    s = HF.sample_onehot(ties, torch.Generator().manual_seed(9))
    assert torch.equal(s, ref_onehot(ties, torch.Generator().manual_seed(9)))


def test_invalid_arguments():
    P = params(seed=21)
    x, y = data(seed=22)
    with pytest.raises(ValueError) as err:
        HF.unlabeled_gradient(x, *P, positive="mean")
    assert str(err.value) == "positive='mean' is invalid: expected 'sample' or 'expected'"
    for f in (lambda **kw: HF.generative_gradient(x, y, *P, **kw),
              lambda **kw: HF.unlabeled_gradient(x, *P, **kw)):  # fmt: skip
        with pytest.raises(ValueError) as err:
            f(k=0, negative_visible="mean")
        assert str(err.value) == "k=0 is invalid: expected an int >= 1 with negative_visible='mean'"
        with pytest.raises(ValueError) as err:
            f(negative_visible="means")
        assert str(err.value) == "negative_visible='means' is invalid: expected 'sample' or 'mean'"
        with pytest.raises(ValueError) as err:
            f(k=-1)
        assert str(err.value) == "k=-1 is invalid: expected an int >= 0"
    assert H.generative_gradient is HF.generative_gradient

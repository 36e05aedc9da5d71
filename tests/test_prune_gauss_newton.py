"""Gauss-Newton OBS/OBD in smithing.regularize.prune and the indefinite-Hessian guard."""

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from smithing.nn import MLP
from smithing.regularize import gauss_newton_matrix, prune
from smithing.regularize.prune import full_hessian, make_objective

D = torch.float64


def _tiny(hidden=(3,), seed=0, n=11):
    torch.manual_seed(seed)
    model = MLP(4, list(hidden), 3).to(D).eval()
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed + 1), dtype=D)
    return model, x


def _brute_force(model, names, x):
    """(1/N) sum_i J_i^T (diag q_i - q_i q_i^T) J_i with autograd.functional.jacobian (float64)."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    shapes = [params[n].shape for n in names]
    flat0 = torch.cat([params[n].reshape(-1) for n in names])
    sizes = [params[n].numel() for n in names]
    total = torch.zeros(len(flat0), len(flat0), dtype=D)
    for i in range(x.shape[0]):

        def logits(flat, xi=x[i]):
            parts = torch.split(flat, sizes)
            p = {**params, **{n: v.reshape(s) for n, v, s in zip(names, parts, shapes)}}
            return functional_call(model, p, (xi[None],))[0]  # (C,)

        j = torch.autograd.functional.jacobian(logits, flat0)  # (C, n)
        q = torch.softmax(logits(flat0), -1)  # (C,)
        total += j.T @ (torch.diag(q) - torch.outer(q, q)) @ j
    return total / x.shape[0]


def _trained_relu(seed=0):
    """A 4-6-3 ReLU MLP trained briefly on random data (float64)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MLP(4, [6], 3).to(D)
    x = torch.randn(64, 4, generator=g, dtype=D)
    y = torch.randint(0, 3, (64,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval(), x, y


def test_matches_brute_force_jacobian_and_is_symmetric_psd():
    model, x = _tiny()
    names = ["net.3.weight", "net.1.weight", "net.1.bias"]  # any order, biases too
    g = gauss_newton_matrix(model, names, x)
    assert g.dtype == D and g.shape == (12 + 9 + 3, 12 + 9 + 3)
    torch.testing.assert_close(g, _brute_force(model, names, x))
    torch.testing.assert_close(g, g.T, rtol=0, atol=1e-15)
    assert torch.linalg.eigvalsh(g).min() > -1e-12  # positive semi-definite
    torch.testing.assert_close(gauss_newton_matrix(model, names, x, chunk=4), g)  # 4+4+3


def test_float32_model_gives_float64_and_restores_training_mode():
    model, x = _tiny()
    model = model.float().train()
    g = gauss_newton_matrix(model, ["net.1.weight"], x.float())
    assert g.dtype == D and model.training
    want = _brute_force(model.double().eval(), ["net.1.weight"], x)
    torch.testing.assert_close(g, want, rtol=1e-4, atol=1e-6)


def test_equals_the_hessian_of_softmax_regression():
    """Logits linear in w: the dropped second-derivative term is 0, G is the exact Hessian."""
    model, x = _tiny(hidden=())
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1])
    names = ["net.1.weight", "net.1.bias"]
    params = dict(model.named_parameters())
    h = full_hessian(make_objective(model, F.cross_entropy, x, y), {n: params[n] for n in names})
    torch.testing.assert_close(gauss_newton_matrix(model, names, x), h)


def test_validation_of_gauss_newton_matrix():
    model, x = _tiny()
    with pytest.raises(ValueError, match=r"names=\['nope'\] is invalid: expected parameter"):
        gauss_newton_matrix(model, ["nope"], x)
    with pytest.raises(ValueError, match=r"chunk=0 is invalid"):
        gauss_newton_matrix(model, ["net.1.weight"], x, chunk=0)


def test_obs_gauss_newton_on_a_trained_relu_net():
    model, x, y = _trained_relu()
    with pytest.raises(ValueError, match="hessian='exact' is indefinite"):  # eigenvalue ~ -5e-3
        prune(copy.deepcopy(model), "obs", 0.5, loss_fn=F.cross_entropy, data=(x, y))
    names = ["net.1.weight", "net.3.weight"]
    g = gauss_newton_matrix(model, names, x)
    w0 = torch.cat([model.get_parameter(n).detach().reshape(-1) for n in names])
    damping = 1e-3
    mask, rep = prune(model, "obs", 0.5, data=(x, y), hessian="gauss_newton", damping=damping)
    sal = torch.cat([rep.saliency[n].reshape(-1) for n in names])
    assert torch.isfinite(sal).all() and (sal >= 0).all()
    h_inv = torch.linalg.inv(g + damping * torch.eye(len(w0), dtype=D))
    torch.testing.assert_close(sal, w0**2 / (2 * torch.diagonal(h_inv)))  # eq. 5 on G
    assert mask.sparsity() == 0.5 and rep.n_pruned == 21 and len(rep.removed_order) == 21
    for n in names:
        p = model.get_parameter(n).detach()
        assert torch.all(p[~mask.masks[n]] == 0)  # exactly zero
    assert rep.loss_before is not None and rep.loss_after is not None  # cross-entropy by default
    with torch.no_grad():
        assert rep.loss_after == pytest.approx(float(F.cross_entropy(model(x), y)))
    assert rep.predicted_increase is not None and rep.predicted_increase >= 0


def test_obd_gauss_newton_uses_the_diagonal_of_g():
    model, x, y = _trained_relu(seed=1)
    w = model.net[1].weight.detach().clone()
    g = gauss_newton_matrix(model, ["net.1.weight"], x)
    _, rep = prune(model, "obd", 0.25, data=(x, y), hessian="gauss_newton")
    want = 0.5 * torch.diagonal(g).reshape(w.shape) * w**2  # s_k = 1/2 G_kk w_k^2
    torch.testing.assert_close(rep.saliency["net.1.weight"], want)


def test_exact_indefinite_hessian_raises():
    """L(w) = 1/2 w^T H w with eigenvalues (2, 1, -0.5): OBS must refuse, not return NaN."""
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=D))
    h = q @ torch.diag(torch.tensor([2.0, 1.0, -0.5], dtype=D)) @ q.T
    model = nn.Linear(3, 1, bias=False).to(D)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.3, -0.2, 0.5]], dtype=D))

    def objective(p):
        w = p["weight"].reshape(-1)
        return 0.5 * w @ h @ w

    msg = r"indefinite.*smallest eigenvalue -0\.5.*damping=.*hessian='gauss_newton'"
    with pytest.raises(ValueError, match=msg):
        prune(model, "obs", 1 / 3, objective=objective)
    with pytest.raises(ValueError, match=r"eigenvalue -0\.1.*damping= larger than 0\.5 "):
        prune(model, "obs", 1 / 3, objective=objective, damping=0.4)
    _, rep = prune(model, "obs", 1 / 3, objective=objective, damping=0.6)  # H + 0.6 I is SPD
    assert torch.isfinite(rep.saliency["weight"]).all()


def test_singular_gauss_newton_without_damping_raises():
    model, x, y = _trained_relu()
    with torch.no_grad():
        model.net[1].bias.fill_(-100.0)  # every hidden unit off: G = 0 for the first layer
    with pytest.raises(
        ValueError, match=r"hessian='gauss_newton' plus damping=0.0 \* I is singular"
    ):
        prune(model, "obs", 0.5, data=(x, y), hessian="gauss_newton")


def test_bad_hessian_names_list_the_valid_ones():
    model, x, y = _trained_relu()
    valid = r"'exact', 'hutchinson', 'fisher', 'empirical_fisher', 'gauss_newton'"
    with pytest.raises(ValueError, match=rf"hessian='nope' is invalid: expected one of {valid}"):
        prune(model, "obd", 0.5, data=(x, y), hessian="nope")
    with pytest.raises(ValueError, match=r"hessian='fisher' is invalid.*'exact', 'gauss_newton'"):
        prune(model, "obs", 0.5, data=(x, y), hessian="fisher")
    with pytest.raises(ValueError, match=r"data=None is invalid.*gauss_newton"):
        prune(model, "obs", 0.5, hessian="gauss_newton")


def test_chunk_only_changes_the_summation_order():
    model, x, y = _trained_relu(seed=2)
    out = {}
    for chunk in (None, 7, 256):
        m = copy.deepcopy(model)
        mask, rep = prune(
            m, "obs", 0.4, data=(x, y), hessian="gauss_newton", damping=1e-3, chunk=chunk
        )
        out[chunk] = (mask, rep, m)
    for chunk in (7, 256):
        mask, rep, m = out[chunk]
        for n, s in rep.saliency.items():
            torch.testing.assert_close(s, out[None][1].saliency[n], rtol=1e-9, atol=1e-12)
        assert all(torch.equal(mask.masks[n], out[None][0].masks[n]) for n in mask.masks)
    _, rep, _ = out[None]
    _, rep_obd = prune(copy.deepcopy(model), "obd", 0.4, data=(x, y), hessian="gauss_newton")
    _, rep_obd7 = prune(
        copy.deepcopy(model), "obd", 0.4, data=(x, y), hessian="gauss_newton", chunk=7
    )
    for n, s in rep_obd.saliency.items():
        torch.testing.assert_close(s, rep_obd7.saliency[n], rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="chunk=0 is invalid: expected None or a positive"):
        prune(copy.deepcopy(model), "obs", 0.4, data=(x, y), hessian="gauss_newton", chunk=0)

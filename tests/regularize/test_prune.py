import pytest
import torch
from torch import nn
from torch.nn import functional as F

from smithing.nn import MLP
from smithing.regularize import (
    PruneMask,
    fisher_diagonal,
    hessian_diagonal,
    obs_downdate,
    obs_inverse,
    obs_prune,
    prune,
)
from smithing.regularize.prune import make_objective

D = torch.float64


def _quadratic(n=6, seed=0):
    """A model whose weight sits at the minimum w* of L(w) = 1/2 (w - w*)^T H (w - w*)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g, dtype=D)
    h = a @ a.T + 0.5 * torch.eye(n, dtype=D)  # SPD
    w_star = torch.randn(n, generator=g, dtype=D)
    model = nn.Linear(n, 1, bias=False).to(D)
    with torch.no_grad():
        model.weight.copy_(w_star[None])

    def objective(params):
        d = params["weight"].reshape(-1) - w_star
        return 0.5 * d @ h @ d

    return model, objective, h, w_star


def test_obd_saliency_is_half_hkk_wk2_and_exact_for_one_weight():
    model, obj, h, w_star = _quadratic()
    diag = hessian_diagonal(obj, {"weight": model.weight})["weight"]
    assert torch.allclose(diag.reshape(-1), torch.diagonal(h), rtol=0, atol=1e-12)
    mask, rep = prune(model, "obd", 1 / 6, objective=obj)
    sal = 0.5 * torch.diagonal(h) * w_star**2  # s_k = 1/2 h_kk w_k^2
    assert torch.allclose(rep.saliency["weight"].reshape(-1), sal, rtol=0, atol=1e-12)
    q = int(torch.argmin(sal))
    assert rep.n_pruned == 1 and not bool(mask.masks["weight"].reshape(-1)[q])
    assert model.weight.reshape(-1)[q] == 0
    # deleting one weight of a quadratic at its minimum costs exactly its saliency
    assert rep.loss_after - rep.loss_before == pytest.approx(float(sal[q]), abs=1e-12)
    assert rep.predicted_increase == pytest.approx(float(sal[q]), abs=1e-12)


def test_hutchinson_estimates_the_diagonal():
    model, obj, h, _ = _quadratic()
    est = hessian_diagonal(
        obj,
        {"weight": model.weight},
        "hutchinson",
        samples=3000,
        generator=torch.Generator().manual_seed(0),
    )["weight"].reshape(-1)
    off = ((h**2).sum(1) - torch.diagonal(h) ** 2).sqrt()  # per-coordinate std of one probe
    assert torch.all((est - torch.diagonal(h)).abs() < 5 * off / 3000**0.5)


def test_obs_single_removal_closed_form():
    model, obj, h, w_star = _quadratic()
    h_inv = torch.linalg.inv(h)
    mask, rep = prune(model, "obs", 1 / 6, objective=obj)
    sal = w_star**2 / (2 * torch.diagonal(h_inv))  # L_q = w_q^2 / (2 [H^-1]_qq)
    assert torch.allclose(rep.saliency["weight"].reshape(-1), sal, rtol=1e-12, atol=0)
    q = int(torch.argmin(sal))
    assert rep.removed_order == [("weight", q)]
    dw = -(w_star[q] / h_inv[q, q]) * h_inv[:, q]  # the compensating update
    expected = w_star + dw
    expected[q] = 0.0
    w = model.weight.detach().reshape(-1)
    assert w[q] == 0.0  # exactly zero
    assert abs(float(w_star[q] + dw[q])) < 1e-14  # ... which the update itself achieves
    assert torch.allclose(w, expected, rtol=0, atol=1e-12)
    assert rep.loss_after - rep.loss_before == pytest.approx(float(sal[q]), abs=1e-12)
    assert not bool(mask.masks["weight"].reshape(-1)[q])


def test_obs_iterative_equals_constrained_minimum():
    model, obj, h, w_star = _quadratic(n=8, seed=1)
    mask, rep = prune(model, "obs", 0.5, objective=obj)
    pruned = ~mask.masks["weight"].reshape(-1)
    assert int(pruned.sum()) == 4
    p_idx, r_idx = torch.nonzero(pruned).flatten(), torch.nonzero(~pruned).flatten()
    # the minimum of L with w_P = 0: w_R = w*_R + H_RR^-1 H_RP w*_P
    w_r = w_star[r_idx] + torch.linalg.solve(h[r_idx][:, r_idx], h[r_idx][:, p_idx] @ w_star[p_idx])
    w = model.weight.detach().reshape(-1)
    assert torch.all(w[p_idx] == 0)
    assert torch.allclose(w[r_idx], w_r, rtol=0, atol=1e-10)
    assert rep.loss_after - rep.loss_before == pytest.approx(rep.predicted_increase, abs=1e-10)


def test_obs_downdate_equals_inverse_of_submatrix():
    _, _, h, w_star = _quadratic(n=5, seed=2)
    h_inv = obs_downdate(torch.linalg.inv(h), 2)
    keep = [0, 1, 3, 4]
    assert torch.allclose(h_inv[keep][:, keep], torch.linalg.inv(h[keep][:, keep]), atol=1e-12)
    assert torch.all(h_inv[2] == 0) or torch.allclose(h_inv[2], torch.zeros(5, dtype=D))
    w, removed, hist, _ = obs_prune(w_star, torch.linalg.inv(h), 2)
    assert int(removed.sum()) == 2 and len(hist) == 2 and torch.all(w[removed] == 0)


def _hassibi_stork(w_star, h, k):
    """A float64 transcription of OBS (Hassibi & Stork 1993, eq. 5) removing ``k`` weights, the
    inverse of the remaining weights' Hessian recomputed from scratch before every removal."""
    w = w_star.clone()
    remaining = list(range(len(w)))
    order, saliencies = [], []
    for _ in range(k):
        h_inv = torch.linalg.inv(h[remaining][:, remaining])  # [H_RR]^-1
        wr = w[remaining]
        sal = wr**2 / (2 * torch.diagonal(h_inv))  # L_q = w_q^2 / (2 [H^-1]_qq)
        j = int(torch.argmin(sal))
        dw = -(wr[j] / h_inv[j, j]) * h_inv[:, j]  # dw = -(w_q / [H^-1]_qq) H^-1 e_q
        w[remaining] = wr + dw
        q = remaining.pop(j)
        w[q] = 0.0
        order.append(q)
        saliencies.append(float(sal[j]))
    return w, order, saliencies


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_obs_prune_equals_a_transcription_of_hassibi_stork(seed):
    _, obj, h, w_star = _quadratic(n=7, seed=seed)
    want_w, want_order, want_sal = _hassibi_stork(w_star, h, 5)
    for h_inv, downdated in ((torch.linalg.inv(h), False), (obs_inverse(h), True)):
        w, removed, hist, _ = obs_prune(w_star, h_inv, 5, downdated=downdated)
        assert [q for q, _ in hist] == want_order
        assert [s for _, s in hist] == pytest.approx(want_sal, rel=1e-10)
        torch.testing.assert_close(w, want_w, rtol=0, atol=1e-12)
        assert torch.all(w[removed] == 0) and int(removed.sum()) == 5
        # OBS is exact on a quadratic: the loss rises by the sum of the saliencies
        loss = float(obj({"weight": w[None]}))
        assert loss == pytest.approx(sum(want_sal), rel=1e-10)


def test_obs_prune_continues_from_its_own_result_bitwise():
    _, _, h, w_star = _quadratic(n=8, seed=3)
    whole = obs_prune(w_star, obs_inverse(h, damping=0.1), 6, downdated=True)
    w, removed, hist, h_inv = obs_prune(w_star, obs_inverse(h, damping=0.1), 2, downdated=True)
    w, removed, hist2, h_inv = obs_prune(w, h_inv, 4, removed=removed, downdated=True)
    assert torch.equal(w, whole[0]) and torch.equal(removed, whole[1])
    assert hist + hist2 == whole[2] and torch.equal(h_inv, whole[3])
    # inputs are not modified
    removed0 = torch.zeros(8, dtype=torch.bool)
    w0 = w_star.clone()
    obs_prune(w0, torch.linalg.inv(h), 2, removed=removed0)
    assert torch.equal(w0, w_star) and not removed0.any()


def test_obs_inverse_is_the_kept_block_inverse_and_equals_downdates():
    _, _, h, w_star = _quadratic(n=6, seed=4)
    keep = torch.tensor([True, False, True, True, False, True])
    k = torch.nonzero(keep).flatten()
    got = obs_inverse(h, keep, damping=0.3)
    want = torch.linalg.inv(h[k][:, k] + 0.3 * torch.eye(4, dtype=D))  # (H_KK + alpha I)^-1
    torch.testing.assert_close(got[k][:, k], want, rtol=1e-12, atol=1e-14)
    assert torch.all(got[~keep] == 0) and torch.all(got[:, ~keep] == 0)
    full = torch.linalg.inv(h + 0.3 * torch.eye(6, dtype=D))
    for q in (1, 4):
        full = obs_downdate(full, q)
    torch.testing.assert_close(got, full, rtol=1e-10, atol=1e-12)
    # the embedded inverse and the downdated full inverse give the same removals
    a = obs_prune(w_star, got, 2, removed=~keep, downdated=True)
    b = obs_prune(w_star, torch.linalg.inv(h + 0.3 * torch.eye(6, dtype=D)), 2, removed=~keep)
    assert [q for q, _ in a[2]] == [q for q, _ in b[2]]
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"keep=.* is invalid: expected a bool \(6,\) tensor"):
        obs_inverse(h, torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="damping=-1 is invalid"):
        obs_inverse(h, damping=-1)


def test_obs_with_a_mask_needs_only_the_kept_block_invertible():
    """A weight already pruned whose row and column of H are 0 (H singular): OBS on the rest."""
    _, _, h, w_star = _quadratic(n=6, seed=5)
    h = h.clone()
    h[0, :] = 0.0
    h[:, 0] = 0.0  # L does not depend on w_0: H is singular, its kept block is not
    model = nn.Linear(6, 1, bias=False).to(D)
    with torch.no_grad():
        model.weight.copy_(w_star[None])

    def objective(params):
        d = params["weight"].reshape(-1) - w_star
        return 0.5 * d @ h @ d

    mask = PruneMask({"weight": torch.tensor([[False, True, True, True, True, True]])})
    mask, rep = prune(model, "obs", 0.5, objective=objective, mask=mask)
    pruned = ~mask.masks["weight"].reshape(-1)
    assert int(pruned.sum()) == 3 and bool(pruned[0])
    p_idx = torch.nonzero(pruned).flatten()
    r_idx = torch.nonzero(~pruned).flatten()
    w = model.weight.detach().reshape(-1)
    # the minimum of L with w_P = 0: w_R = w*_R + H_RR^-1 H_RP w*_P
    w_r = w_star[r_idx] + torch.linalg.solve(h[r_idx][:, r_idx], h[r_idx][:, p_idx] @ w_star[p_idx])
    assert torch.all(w[p_idx] == 0)
    torch.testing.assert_close(w[r_idx], w_r, rtol=0, atol=1e-10)
    assert torch.isinf(rep.saliency["weight"].reshape(-1)[0])  # already removed
    assert rep.loss_after - rep.loss_before == pytest.approx(rep.predicted_increase, abs=1e-10)


def _net_and_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MLP(5, (6,), 3, "tanh").to(D)
    x = torch.randn(40, 5, generator=g, dtype=D)
    y = torch.randint(0, 3, (40,), generator=g)
    return model, x, y


def test_magnitude_prunes_the_asked_fraction():
    model, _, _ = _net_and_data()
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    mask, rep = prune(model, "magnitude", 0.3)
    n_total = 5 * 6 + 6 * 3
    assert rep.n_total == n_total and rep.n_pruned == round(0.3 * n_total)
    assert set(mask.masks) == {"net.1.weight", "net.3.weight"}  # biases excluded
    pruned = torch.cat([weights[n][~m].abs() for n, m in mask.masks.items()])
    kept = torch.cat([weights[n][m].abs() for n, m in mask.masks.items()])
    assert pruned.max() <= kept.min()
    assert torch.equal(model.net[1].bias, weights["net.1.bias"])
    for n, m in mask.masks.items():
        assert torch.all(dict(model.named_parameters())[n][~m] == 0)
    _, rep = prune(_net_and_data()[0], "magnitude", 0.5, scope="layer")
    assert rep.per_param == {"net.1.weight": 0.5, "net.3.weight": 0.5}


def test_masks_persist_through_optimizer_steps_and_extend():
    model, x, y = _net_and_data()
    mask, _ = prune(model, "magnitude", 0.4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    handle = mask.attach(opt, model)
    before = model.net[1].weight.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    for n, m in mask.masks.items():
        assert torch.all(dict(model.named_parameters())[n][~m] == 0)
    assert not torch.equal(model.net[1].weight, before)  # the kept weights trained
    handle.remove()
    mask2, rep = prune(model, "magnitude", 0.6, mask=mask)  # cumulative fraction
    assert rep.n_pruned == round(0.6 * rep.n_total)
    for n in mask.masks:
        assert torch.all(~mask2.masks[n][~mask.masks[n]])  # earlier pruned stay pruned
    state = PruneMask.from_state_dict(mask2.state_dict())
    assert state.sparsity() == mask2.sparsity()
    blank = PruneMask.ones_like(model.named_parameters())
    blank.load_state_dict(mask2.state_dict())  # what the trainers' checkpoints restore
    assert list(blank.masks) == list(mask2.masks)
    assert all(torch.equal(blank.masks[n], mask2.masks[n]) for n in mask2.masks)


def test_obd_on_a_network_exact_fisher_and_hutchinson():
    model, x, y = _net_and_data()
    obj = make_objective(model, F.cross_entropy, x, y)
    params = {n: p for n, p in model.named_parameters() if n.endswith("weight")}
    exact = hessian_diagonal(obj, params)
    # exact diagonal = per-coordinate double backward
    w = model.net[3].weight
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), y), w, create_graph=True)
    (row,) = torch.autograd.grad(g[1, 2], w)
    assert torch.allclose(exact["net.3.weight"][1, 2], row[1, 2], rtol=1e-10)
    # empirical Fisher = mean of squared per-example gradients
    emp = fisher_diagonal(model, list(params), x, y)
    manual = torch.zeros_like(w)
    for i in range(x.shape[0]):
        (gi,) = torch.autograd.grad(F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), w)
        manual += gi**2 / x.shape[0]
    assert torch.allclose(emp["net.3.weight"], manual, rtol=1e-10)
    for hess in ["exact", "fisher", "empirical_fisher", "hutchinson"]:
        m, _, _ = _net_and_data()
        mask, rep = prune(
            m,
            "obd",
            0.25,
            loss_fn=F.cross_entropy,
            data=(x, y),
            hessian=hess,
            samples=20,
            generator=torch.Generator().manual_seed(0),
        )
        assert rep.n_pruned == round(0.25 * rep.n_total)
        assert rep.loss_after is not None and rep.predicted_increase is not None


def test_sampled_fisher_equals_hessian_for_a_linear_softmax_model():
    # for logistic regression the Hessian of the cross-entropy is its Gauss-Newton matrix
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Linear(3, 3).to(D)
    x = torch.randn(30, 3, generator=g, dtype=D)
    y = torch.randint(0, 3, (30,), generator=g)
    exact = hessian_diagonal(
        make_objective(model, F.cross_entropy, x, y), {"weight": model.weight}
    )["weight"]
    reps = 400
    fisher = fisher_diagonal(
        model, ["weight"], x.repeat(reps, 1), generator=torch.Generator().manual_seed(1)
    )["weight"]
    assert torch.allclose(fisher, exact, rtol=0.1)


def test_validation():
    model, x, y = _net_and_data()
    with pytest.raises(
        ValueError, match=r"unknown pruning method 'obx'.*valid: magnitude, obd, obs"
    ):
        prune(model, "obx")
    with pytest.raises(
        ValueError, match=r"fraction=1.5 is invalid: expected a fraction in \[0, 1\]"
    ):
        prune(model, "magnitude", 1.5)
    with pytest.raises(ValueError, match=r"max_params=10 is invalid: expected >= the 48 weights"):
        prune(model, "obs", 0.5, loss_fn=F.cross_entropy, data=(x, y), max_params=10)
    with pytest.raises(ValueError, match=r"objective=None is invalid"):
        prune(model, "obs", 0.5)
    with pytest.raises(ValueError, match=r"names=\['nope'\] is invalid"):
        prune(model, "magnitude", 0.5, names=["nope"])


def test_full_hessian_is_off_the_autograd_graph():
    """The Hessian must not keep a graph alive (OBS downdates it thousands of times)."""
    from smithing.regularize.prune import full_hessian

    w = torch.randn(3, 2, requires_grad=True)
    b = torch.randn(3, requires_grad=True)

    def objective(p):
        return ((p["w"] @ torch.ones(2) + b) ** 2).sum()  # reads the trainable b too

    h = full_hessian(objective, {"w": w})
    assert h.grad_fn is None and not h.requires_grad
    torch.testing.assert_close(h, 2 * torch.kron(torch.eye(3), torch.ones(2, 2)))

"""Exact answers for pruning: the saliencies and OBS's algebra by hand on 2 x 2 / 3 x 3 cases,
``prune``'s choices, counts and report on tiny models, the curvature estimates against
transcriptions on the same draws, and every validation message in full.

Written for the mutation score of ``smithing.regularize.prune`` (issue 15).
"""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from smithing.regularize.prune import (
    HESSIAN_DIAGONALS,
    HESSIANS,
    OBS_HESSIANS,
    PruneMask,
    fisher_diagonal,
    full_hessian,
    gauss_newton_matrix,
    hessian_diagonal,
    magnitude_saliency,
    make_objective,
    obd_saliency,
    obs_downdate,
    obs_inverse,
    obs_prune,
    obs_saliency,
    obs_update,
    prune,
)
from smithing.regularize.prune.hessian import _flatten, _gauss_newton, _unflatten

D = torch.float64
INF = float("inf")


def _t(*rows):
    return torch.tensor(rows, dtype=D)


def _message(fn, *args, **kwargs):
    with pytest.raises(ValueError) as err:
        fn(*args, **kwargs)
    return str(err.value)


# ---------------------------------------------------------------- saliencies and OBS algebra
def test_magnitude_and_obd_saliencies_by_hand():
    assert torch.equal(magnitude_saliency(_t(-2.0, 0.5, 0.0)), _t(2.0, 0.5, 0.0))
    assert torch.equal(obd_saliency(_t(1.0, -2.0, 3.0), _t(4.0, 0.5, 2.0)), _t(2.0, 1.0, 9.0))


def test_obs_saliency_by_hand_and_inf_where_the_diagonal_is_not_positive():
    h_inv = _t([2.0, 1.0, 0.0], [1.0, 0.0, 5.0], [0.0, 5.0, -1.0])
    assert torch.equal(obs_saliency(_t(2.0, 2.0, 3.0), h_inv), _t(1.0, INF, INF))
    assert torch.equal(obs_saliency(_t(3.0, 1.0), _t([0.5, 9.0], [9.0, 4.0])), _t(9.0, 0.125))


def test_obs_update_and_downdate_by_hand():
    h_inv = _t([4.0, 1.0], [2.0, 3.0])  # not symmetric: rows and columns tell apart
    assert torch.equal(obs_update(_t(2.0, 1.0), h_inv, 0), _t(-2.0, -1.0))  # -(2/4) [4, 2]
    assert torch.equal(obs_update(_t(2.0, 3.0), h_inv, 1), _t(-1.0, -3.0))  # -(3/3) [1, 3]
    assert torch.equal(obs_downdate(h_inv, 0), _t([0.0, 0.0], [0.0, 2.5]))
    assert torch.allclose(obs_downdate(h_inv, 1), _t([4 - 2 / 3, 0.0], [0.0, 0.0]), atol=1e-15)


def test_obs_inverse_by_hand():
    h = _t([2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0])
    keep = torch.tensor([True, False, True])
    assert torch.equal(obs_inverse(h, keep), _t([0.5, 0.0, 0.0], [0.0] * 3, [0.0, 0.0, 0.25]))
    got = obs_inverse(h, keep, damping=1.0)
    assert torch.allclose(got, _t([1 / 3, 0.0, 0.0], [0.0] * 3, [0.0, 0.0, 0.2]), atol=1e-15)
    assert torch.allclose(obs_inverse(h), torch.linalg.inv(h), rtol=0, atol=1e-15)
    got = obs_inverse(h, damping=0.5)
    assert torch.allclose(got, torch.linalg.inv(h + 0.5 * torch.eye(3, dtype=D)), atol=1e-15)
    assert obs_inverse(h, torch.zeros(3, dtype=torch.bool)).abs().sum() == 0  # nothing kept
    obs_inverse(h, damping=0)


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((torch.ones(3, dtype=D),), {}, "h=(3,) is invalid: expected a square (n, n) matrix"),
        ((torch.ones(2, 3, dtype=D),), {}, "h=(2, 3) is invalid: expected a square (n, n) matrix"),
        ((torch.eye(2, dtype=D),), {"damping": -1.0},
         "damping=-1.0 is invalid: expected a non-negative number"),
        ((torch.eye(3, dtype=D), torch.ones(3)), {},
         "keep='torch.float32 (3,)' is invalid: expected a bool (3,) tensor"),
        ((torch.eye(3, dtype=D), torch.ones(2, dtype=torch.bool)), {},
         "keep='torch.bool (2,)' is invalid: expected a bool (3,) tensor"),
    ],
)  # fmt: skip
def test_obs_inverse_invalid_inputs(args, kwargs, message):
    assert _message(obs_inverse, *args, **kwargs) == message


def test_obs_prune_by_hand():
    h_inv = torch.linalg.inv(_t([2.0, 1.0], [1.0, 2.0]))  # 1/3 [[2, -1], [-1, 2]]
    w = _t(1.0, 3.0)
    w_in, h_in = w.clone(), h_inv.clone()
    w1, removed, history, h1 = obs_prune(w, h_inv, 1)
    # L = w^2 / (2 * 2/3) = [0.75, 6.75]: q = 0; dw = -1.5 [2/3, -1/3] = [-1, 0.5]
    assert torch.equal(removed, torch.tensor([True, False]))
    assert [q for q, _ in history] == [0] and history[0][1] == pytest.approx(0.75, abs=1e-14)
    assert w1[0] == 0 and w1[1].item() == pytest.approx(3.5, abs=1e-14)
    assert torch.allclose(h1, _t([0.0, 0.0], [0.0, 0.5]), rtol=0, atol=1e-15)
    assert torch.equal(w, w_in) and torch.equal(h_inv, h_in)  # inputs untouched
    w2, removed2, history2, h2 = obs_prune(w1, h1, 1, removed=removed, downdated=True)
    assert history2[0][0] == 1 and history2[0][1] == pytest.approx(3.5**2, abs=1e-12)
    assert torch.equal(w2, _t(0.0, 0.0)) and bool(removed2.all())
    assert torch.equal(removed, torch.tensor([True, False]))  # removed= is copied
    # the same start with weight 0 removed, downdating the full inverse first
    w3, removed3, history3, h3 = obs_prune(w, h_inv, 1, removed=torch.tensor([True, False]))
    assert history3[0][0] == 1 and history3[0][1] == pytest.approx(9.0 / 1.0, abs=1e-12)
    assert torch.equal(w3, _t(0.0, 0.0))
    w4, removed4, history4, h4 = obs_prune(w, h_inv, 0, removed=torch.tensor([True, False]))
    assert torch.equal(w4, _t(0.0, 3.0)) and history4 == []
    assert torch.allclose(h4, _t([0.0, 0.0], [0.0, 0.5]), rtol=0, atol=1e-15)
    w5, _, history5, _ = obs_prune(w, h_inv, 2)
    assert [q for q, _ in history5] == [0, 1] and torch.equal(w5, _t(0.0, 0.0))


@pytest.mark.parametrize(
    "k, removed, message",
    [
        (3, None, "k=3 is invalid: expected at most the 2 remaining"),
        (-1, None, "k=-1 is invalid: expected at most the 2 remaining"),
        (2, torch.tensor([True, False]), "k=2 is invalid: expected at most the 1 remaining"),
    ],
)
def test_obs_prune_invalid_k(k, removed, message):
    assert _message(obs_prune, _t(1.0, 2.0), torch.eye(2, dtype=D), k, removed=removed) == message


# ---------------------------------------------------------------- curvature
def _quadratic_objective(a, center):
    def objective(params):
        d = params["w"].reshape(-1) - center
        return 0.5 * d @ a @ d + 0.0 * params.get("v", torch.zeros(())).sum()

    return objective


A = _t([3.0, 1.0, 0.0], [1.0, 2.0, -1.0], [0.0, -1.0, 4.0])


def test_flatten_unflatten_and_full_hessian():
    like = {"a": torch.zeros(2, 2, dtype=D), "b": torch.zeros(3, dtype=D)}
    flat = torch.arange(7, dtype=D)
    out = _unflatten(flat, like)
    assert torch.equal(out["a"], _t([0.0, 1.0], [2.0, 3.0])) and torch.equal(out["b"], _t(4, 5, 6))
    assert torch.equal(_flatten(out), flat)
    obj = _quadratic_objective(A, _t(1.0, 2.0, 3.0))
    w = torch.zeros(3, dtype=D, requires_grad=True)
    assert torch.allclose(full_hessian(obj, {"w": w}), A, rtol=0, atol=1e-14)
    assert torch.allclose(hessian_diagonal(obj, {"w": w})["w"], _t(3.0, 2.0, 4.0), atol=1e-14)


def _hutchinson_by_hand(a, samples, seed):
    g = torch.Generator().manual_seed(seed)
    total = torch.zeros(3, dtype=D)
    for _ in range(samples):
        z = torch.randint(0, 2, (3,), generator=g).to(D) * 2 - 1
        total += z * (a @ z)
    return total / samples


@pytest.mark.parametrize("samples", [1, 2, 5])
def test_hutchinson_is_the_mean_of_z_times_hz_on_the_same_draws(samples):
    obj = _quadratic_objective(A, _t(1.0, 2.0, 3.0))
    w = _t(0.5, -1.0, 2.0).reshape(3, 1)  # any shape: flattened and restored
    est = hessian_diagonal(obj, {"w": w}, "hutchinson", samples=samples,
                           generator=torch.Generator().manual_seed(4))  # fmt: skip
    assert est["w"].shape == (3, 1) and not est["w"].requires_grad
    want = _hutchinson_by_hand(A, samples, 4)
    assert torch.allclose(est["w"].reshape(-1), want, rtol=0, atol=1e-13)


def test_hutchinson_defaults_to_100_samples():
    obj = _quadratic_objective(A, _t(1.0, 2.0, 3.0))
    w = torch.zeros(3, dtype=D)
    want = _hutchinson_by_hand(A, 100, 1)
    got = hessian_diagonal(obj, {"w": w}, "hutchinson", generator=torch.Generator().manual_seed(1))
    assert torch.allclose(got["w"], want, rtol=0, atol=1e-13)
    got = HESSIAN_DIAGONALS.get("hutchinson")(
        obj, {"w": w}, generator=torch.Generator().manual_seed(1)
    )
    assert torch.allclose(got["w"], want, rtol=0, atol=1e-13)
    msg = "method='fisher' is invalid: expected 'exact' or 'hutchinson'"
    assert _message(hessian_diagonal, obj, {"w": w}, "fisher") == msg


def _net(seed=0, dropout=False):
    torch.manual_seed(seed)
    layers = [nn.Linear(3, 4), nn.Tanh()] + ([nn.Dropout(0.5)] if dropout else [])
    return nn.Sequential(*layers, nn.Linear(4, 3)).to(D)


def _data(n=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=D), torch.randint(0, 3, (n,), generator=g)


def _fisher_by_hand(model, names, x, y):
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(params[n]) for n in names}
    for i in range(x.shape[0]):
        grads = torch.autograd.grad(F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]),
                                    [params[n] for n in names])  # fmt: skip
        for n, g in zip(names, grads):
            total[n] += g.square()
    return {n: t / x.shape[0] for n, t in total.items()}


@pytest.mark.parametrize("chunk", [1, 2, 256])
@pytest.mark.parametrize("training", [True, False])
def test_fisher_diagonals_are_transcriptions_in_eval_mode(chunk, training):
    model = _net(dropout=True).train(training)
    x, y = _data()
    names = ["0.weight", "3.bias"]
    emp = fisher_diagonal(model, names, x, y, chunk=chunk)
    assert model.training is training  # restored
    want = _fisher_by_hand(model.eval(), names, x, y)
    assert list(emp) == names
    for n in names:
        assert torch.allclose(emp[n], want[n], rtol=0, atol=1e-13)
    model.train(training)
    sampled = fisher_diagonal(model, names, x, generator=torch.Generator().manual_seed(3),
                              chunk=chunk)  # fmt: skip
    model.eval()
    probs = torch.softmax(model(x), -1).detach()
    y_model = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(3))[:, 0]
    want = _fisher_by_hand(model, names, x, y_model)
    for n in names:
        assert torch.allclose(sampled[n], want[n], rtol=0, atol=1e-13)


def test_fisher_diagonal_default_chunk_is_256_examples():
    model = _net()
    x, y = _data(n=300)
    x[256] *= 1e6  # one huge term: the sums' rounding shows where the chunks split
    names = ["0.weight", "2.weight"]
    got = fisher_diagonal(model, names, x, y)
    want = fisher_diagonal(model, names, x, y, chunk=256)
    assert all(torch.equal(got[n], want[n]) for n in names)
    other = fisher_diagonal(model, names, x, y, chunk=257)
    assert not all(torch.equal(got[n], other[n]) for n in names)


def _gn_by_hand(model, names, x):
    params = dict(model.named_parameters())
    sizes = [params[n].numel() for n in names]
    total = torch.zeros(sum(sizes), sum(sizes), dtype=D)
    for i in range(x.shape[0]):
        z = model(x[i : i + 1])[0]
        rows = []
        for c in range(z.shape[0]):
            gs = torch.autograd.grad(z[c], [params[n] for n in names], retain_graph=True)
            rows.append(torch.cat([g.reshape(-1) for g in gs]))
        j = torch.stack(rows)  # (C, n)
        q = torch.softmax(z.detach(), -1)
        total += j.T @ (torch.diag(q) - torch.outer(q, q)) @ j
    return total / x.shape[0]


@pytest.mark.parametrize("chunk", [None, 1, 2, 7])
def test_gauss_newton_matrix_and_diagonal_by_hand(chunk):
    model = _net(dropout=True).train()
    x, _ = _data()
    names = ["3.weight", "0.bias"]
    want = _gn_by_hand(model.eval(), names, x)
    model.train()
    g = gauss_newton_matrix(model, names, x, chunk=chunk)
    assert model.training and g.dtype == D
    assert torch.allclose(g, want, rtol=0, atol=1e-13)
    d = _gauss_newton(model, names, x, chunk, diagonal=True)
    assert d.shape == (len(want),) and model.training
    assert torch.allclose(d, torch.diagonal(want), rtol=0, atol=1e-13)
    model.eval()
    gauss_newton_matrix(model, names, x)
    assert not model.training


@pytest.mark.parametrize(
    "names, chunk, message",
    [
        (["nope"], None,
         "names=['nope'] is invalid: expected parameter names of the model: "
         "['0.weight', '0.bias', '2.weight', '2.bias']"),
        ([], None, "names=[] is invalid: expected at least one parameter"),
        (["0.bias"], 0, "chunk=0 is invalid: expected None or a positive number of examples"),
    ],
)  # fmt: skip
def test_gauss_newton_invalid_inputs(names, chunk, message):
    assert _message(gauss_newton_matrix, _net(), names, _data()[0], chunk=chunk) == message


# ---------------------------------------------------------------- prune()
def _linear(weight, bias=None):
    out, inn = len(weight), len(weight[0])
    model = nn.Linear(inn, out, bias=bias is not None).to(D)
    with torch.no_grad():
        model.weight.copy_(_t(*weight))
        if bias is not None:
            model.bias.copy_(torch.tensor(bias, dtype=D))
    return model


def _two_layers():
    model = nn.Sequential(_linear([[1.0, -5.0], [0.5, 0.2]], [0.1, -0.25]),
                          _linear([[-3.0, 6.0], [2.0, 7.0]], [0.01, 0.3]))  # fmt: skip
    return model


def test_magnitude_global_choice_and_report():
    model = _two_layers()
    mask, rep = prune(model, "magnitude", 0.5)
    assert list(mask.masks) == ["0.weight", "1.weight"]  # biases excluded
    assert torch.equal(mask.masks["0.weight"], torch.tensor([[False, True], [False, False]]))
    assert torch.equal(mask.masks["1.weight"], torch.tensor([[True, True], [False, True]]))
    assert torch.equal(model[0].weight, _t([0.0, -5.0], [0.0, 0.0]))
    assert torch.equal(model[1].weight, _t([-3.0, 6.0], [0.0, 7.0]))
    assert torch.equal(model[0].bias, _t(0.1, -0.25))
    assert (rep.method, rep.fraction, rep.n_total, rep.n_pruned) == ("magnitude", 0.5, 8, 4)
    assert rep.per_param == {"0.weight": 0.75, "1.weight": 0.25}
    assert torch.equal(rep.saliency["0.weight"], _t([1.0, 5.0], [0.5, 0.2]))
    assert rep.predicted_increase is None and rep.loss_before is None and rep.loss_after is None
    assert rep.removed_order == []


def test_magnitude_per_layer_biases_exclude_and_names():
    model = _two_layers()
    mask, rep = prune(model, "magnitude", 0.5, scope="layer")
    assert torch.equal(mask.masks["0.weight"], torch.tensor([[True, True], [False, False]]))
    assert torch.equal(mask.masks["1.weight"], torch.tensor([[False, True], [False, True]]))
    assert rep.per_param == {"0.weight": 0.5, "1.weight": 0.5}
    mask, rep = prune(_two_layers(), "magnitude", 0.25, include_biases=True)
    assert list(mask.masks) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert rep.n_total == 12 and rep.n_pruned == 3
    assert torch.equal(mask.masks["1.bias"], torch.tensor([False, True]))
    assert torch.equal(mask.masks["0.bias"], torch.tensor([False, True]))
    mask, rep = prune(_two_layers(), "magnitude", 0.5, exclude=["1.weight"])
    assert list(mask.masks) == ["0.weight"] and rep.n_pruned == 2
    mask, rep = prune(_two_layers(), "magnitude", 0.5, names=["1.bias", "1.weight"])
    assert list(mask.masks) == ["1.bias", "1.weight"] and rep.n_total == 6 and rep.n_pruned == 3
    assert torch.equal(mask.masks["1.bias"], torch.tensor([False, False]))
    mask, rep = prune(_two_layers(), "magnitude", 0.0)
    assert rep.n_pruned == 0 and mask.n_pruned() == 0
    mask, rep = prune(_two_layers(), "magnitude", 1.0, scope="layer")
    assert rep.n_pruned == 8


def test_rounding_of_the_counts():
    model = _two_layers()
    _, rep = prune(model, "magnitude", 0.3)  # round(2.4) = 2
    assert rep.n_pruned == 2
    _, rep = prune(_two_layers(), "magnitude", 0.7)  # round(5.6) = 6
    assert rep.n_pruned == 6
    _, rep = prune(_two_layers(), "magnitude", 0.4, scope="layer")  # round(1.6) = 2 each
    assert rep.per_param == {"0.weight": 0.5, "1.weight": 0.5}


def test_an_earlier_mask_is_extended_never_reverted_and_not_modified():
    model = _two_layers()
    earlier = PruneMask({"0.weight": torch.tensor([[True, False], [True, True]])})
    mask, rep = prune(model, "magnitude", 0.25, mask=earlier)  # 2 in total: 1 more
    assert torch.equal(earlier.masks["0.weight"], torch.tensor([[True, False], [True, True]]))
    assert torch.equal(mask.masks["0.weight"], torch.tensor([[True, False], [True, False]]))
    assert torch.equal(mask.masks["1.weight"], torch.ones(2, 2, dtype=torch.bool))
    assert model[0].weight[0, 1] == 0 and model[0].weight[1, 1] == 0 and rep.n_pruned == 2
    # a fraction below what is already pruned prunes nothing more (and restores nothing)
    mask2, rep2 = prune(model, "magnitude", 0.125, mask=mask, scope="layer")
    assert rep2.n_pruned == 2 and torch.equal(mask2.masks["0.weight"], mask.masks["0.weight"])
    mask3, rep3 = prune(model, "magnitude", 0.0, mask=mask)
    assert rep3.n_pruned == 2


def _obd_case():
    a = _t([3.0, 1.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 5.0, 1.0], [0.0, 0.0, 1.0, 1.0])
    w_star = _t(1.0, -2.0, 0.5, 3.0)
    model = _linear([[1.0, -2.0, 0.5, 3.0]])

    def objective(params):
        d = params["weight"].reshape(-1) - w_star
        return 0.5 * d @ a @ d + 1.0

    return model, objective, a, w_star


def test_obd_exact_prunes_the_smallest_half_hkk_wk2():
    model, obj, a, w_star = _obd_case()
    mask, rep = prune(model, "obd", 0.5, objective=obj)
    sal = 0.5 * torch.diagonal(a) * w_star**2  # [1.5, 4, 0.625, 4.5]
    assert torch.allclose(rep.saliency["weight"].reshape(-1), sal, rtol=0, atol=1e-13)
    assert torch.equal(mask.masks["weight"], torch.tensor([[False, True, False, True]]))
    assert rep.predicted_increase == pytest.approx(1.5 + 0.625, abs=1e-13)
    assert rep.loss_before == pytest.approx(1.0, abs=1e-14)
    assert rep.loss_after == pytest.approx(1.0 + 1.5 + 0.625, abs=1e-13)  # blocks apart
    assert rep.removed_order == []
    m2, obj2, _, _ = _obd_case()
    msg = ("max_params=3 is invalid: expected >= the 4 weights for an exact Hessian "
           "(or hessian='hutchinson'/'fisher')")  # fmt: skip
    assert _message(prune, m2, "obd", 0.5, objective=obj2, max_params=3) == msg
    prune(m2, "obd", 0.5, objective=obj2, max_params=4)


def test_obd_hutchinson_uses_the_samples_and_generator():
    model, obj, _, w_star = _obd_case()
    _, rep = prune(model, "obd", 0.25, objective=obj, hessian="hutchinson", samples=3,
                   generator=torch.Generator().manual_seed(2), max_params=1)  # fmt: skip
    h = hessian_diagonal(obj, {"weight": _obd_case()[0].weight}, "hutchinson", samples=3,
                         generator=torch.Generator().manual_seed(2))["weight"]  # fmt: skip
    assert torch.allclose(rep.saliency["weight"], 0.5 * h * w_star[None] ** 2, atol=1e-13)


@pytest.mark.parametrize("chunk", [None, 2])
def test_obd_fisher_and_gauss_newton_diagonals(chunk):
    x, y = _data()
    names = ["0.weight", "2.weight"]
    for hess in ("fisher", "empirical_fisher", "gauss_newton"):
        model = _net()
        w = {n: p.detach().clone() for n, p in model.named_parameters()}
        if hess == "gauss_newton":
            diag = _gauss_newton(model, names, x, None, diagonal=True)
            h = _unflatten(diag, {n: w[n] for n in names})
        else:
            h = fisher_diagonal(model, names, x, y if hess == "empirical_fisher" else None,
                                generator=torch.Generator().manual_seed(5))  # fmt: skip
        _, rep = prune(model, "obd", 0.5, data=(x, y), hessian=hess, chunk=chunk,
                       generator=torch.Generator().manual_seed(5))  # fmt: skip
        for n in names:
            want = 0.5 * h[n] * w[n] ** 2
            assert torch.allclose(rep.saliency[n], want, rtol=1e-12, atol=1e-14), (hess, n)
        if hess == "gauss_newton":  # no loss_fn: the report's loss is the cross-entropy
            assert rep.loss_before == pytest.approx(float(F.cross_entropy(_net()(x), y).detach()))


def test_obd_gauss_newton_keeps_a_float32_model_float32():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3))
    x, y = _data()
    _, rep = prune(model, "obd", 0.5, data=(x.float(), y), hessian="gauss_newton")
    assert rep.saliency["0.weight"].dtype == torch.float32


def test_obs_exact_global_equals_obs_prune_and_reports_the_order():
    model, obj, a, w_star = _obd_case()
    mask, rep = prune(model, "obs", 0.5, objective=obj, damping=0.5)
    h_inv = obs_inverse(a, damping=0.5)
    w, removed, history, _ = obs_prune(w_star, h_inv, 2, downdated=True)
    assert torch.allclose(model.weight.reshape(-1), w, rtol=0, atol=1e-13)
    assert torch.equal(mask.masks["weight"].reshape(-1), ~removed)
    assert rep.removed_order == [("weight", q) for q, _ in history]
    assert rep.predicted_increase == pytest.approx(sum(s for _, s in history), abs=1e-13)
    assert torch.allclose(rep.saliency["weight"].reshape(-1), obs_saliency(w_star, h_inv),
                          rtol=0, atol=1e-13)  # fmt: skip
    assert rep.saliency["weight"].shape == (1, 4)


def _obs_two_params():
    """Two parameters of one quadratic, coupled: names and flat offsets must be kept apart."""
    a = _t([4.0, 1.0, 0.5, 0.0, 0.0], [1.0, 3.0, 0.0, 0.2, 0.0], [0.5, 0.0, 2.0, 0.3, 0.1],
           [0.0, 0.2, 0.3, 5.0, 1.0], [0.0, 0.0, 0.1, 1.0, 2.0])  # fmt: skip
    w0 = _t(0.3, -2.0, 1.0, 0.2, -1.5)
    model = nn.Module()
    model.p = nn.Parameter(w0[:2].clone())
    model.q = nn.Parameter(w0[2:].clone().reshape(3, 1))

    def objective(params):
        p, q = params.get("p", model.p.detach()), params.get("q", model.q.detach())
        w = torch.cat([p.reshape(-1), q.reshape(-1)])
        return 0.5 * (w - w0) @ a @ (w - w0)

    return model, objective, a, w0


def test_obs_global_over_two_parameters_names_the_removals():
    model, obj, a, w0 = _obs_two_params()
    mask, rep = prune(model, "obs", 0.6, objective=obj, names=["p", "q"])  # round(3.0) = 3 of 5
    w, removed, history, _ = obs_prune(w0, torch.linalg.inv(a), 3)
    names = ["p"] * 2 + ["q"] * 3
    offsets = [0, 0, 2, 2, 2]
    assert rep.removed_order == [(names[q], q - offsets[q]) for q, _ in history]
    assert len({n for n, _ in rep.removed_order}) == 2  # both parameters lose weights
    got = torch.cat([model.p.detach(), model.q.detach().reshape(-1)])
    assert torch.allclose(got, w, rtol=0, atol=1e-12)
    assert torch.equal(torch.cat([mask.masks["p"], mask.masks["q"].reshape(-1)]), ~removed)


def test_obs_per_layer_blocks():
    model, obj, a, w0 = _obs_two_params()
    mask, rep = prune(model, "obs", 0.5, objective=obj, scope="layer", names=["p", "q"])
    # one Hessian block per parameter: 1 of 2, then 2 of 3
    wp, rp, hp, _ = obs_prune(w0[:2], torch.linalg.inv(a[:2, :2]), 1)
    wq, rq, hq, _ = obs_prune(w0[2:], torch.linalg.inv(a[2:, 2:]), 2)
    assert torch.allclose(model.p.detach(), wp, rtol=0, atol=1e-12)
    assert torch.allclose(model.q.detach().reshape(-1), wq, rtol=0, atol=1e-12)
    assert torch.equal(mask.masks["p"], ~rp) and torch.equal(mask.masks["q"].reshape(-1), ~rq)
    assert rep.removed_order[0] == ("p", hp[0][0])
    assert rep.removed_order[1:] == [("q", q) for q, _ in hq]
    assert rep.per_param == {"p": 0.5, "q": pytest.approx(2 / 3)}
    want = sum(s for _, s in hp) + sum(s for _, s in hq)  # both blocks' increases
    assert rep.predicted_increase == pytest.approx(want, rel=1e-12)
    assert sum(s for _, s in hq) > 0 and sum(s for _, s in hp) > 0


def test_obs_global_over_three_parameters_names_the_removals():
    model, obj, a, w0 = _obs_two_params()
    q_full = model.q.detach().reshape(-1)
    three = nn.Module()
    three.p = nn.Parameter(model.p.detach().clone())
    three.q = nn.Parameter(q_full[:2].clone())
    three.r = nn.Parameter(q_full[2:].clone())

    def objective(params):
        w = torch.cat([params.get(n, getattr(three, n).detach()).reshape(-1) for n in "pqr"])
        return 0.5 * (w - w0) @ a @ (w - w0)

    _, rep = prune(three, "obs", 0.8, objective=objective, names=["p", "q", "r"])  # 4 of 5
    _, _, history, _ = obs_prune(w0, torch.linalg.inv(a), 4)
    names = ["p", "p", "q", "q", "r"]
    offsets = [0, 0, 2, 2, 4]
    assert 4 in [q for q, _ in history]  # r loses its weight
    assert rep.removed_order == [(names[q], q - offsets[q]) for q, _ in history]


def test_obs_with_everything_already_pruned_does_nothing():
    model, obj, _, _ = _obd_case()
    all_pruned = PruneMask({"weight": torch.zeros(1, 4, dtype=torch.bool)})
    mask, rep = prune(model, "obs", 1.0, objective=obj, mask=all_pruned)
    assert rep.n_pruned == 4 and rep.removed_order == [] and rep.predicted_increase == 0.0
    assert torch.equal(model.weight, torch.zeros(1, 4, dtype=D))


def test_obs_refuses_an_indefinite_or_singular_hessian_with_the_full_messages():
    def objective_with(h):
        def objective(params):
            w = params["weight"].reshape(-1)
            return 0.5 * w @ h @ w

        return objective

    msg = _message(prune, _linear([[1.0, 2.0]]), "obs", 0.5,
                   objective=objective_with(_t([1.0, 0.0], [0.0, -1.0])))  # fmt: skip
    assert msg == (
        "hessian='exact' is indefinite: the Hessian of the loss plus damping=0.0 * I has "
        "smallest eigenvalue -1 (typical at a trained ReLU network), so OBS's saliencies "
        "w_q^2 / (2 [H^-1]_qq) would be negative or NaN; pass damping= larger than 1 or "
        "hessian='gauss_newton' (positive semi-definite; needs data=(x, y) and a model that "
        "outputs logits)"
    )
    msg = _message(prune, _linear([[1.0, 2.0]]), "obs", 0.5, damping=0.25,
                   objective=objective_with(_t([2.0, 0.0], [0.0, -0.5])))  # fmt: skip
    assert "plus damping=0.25 * I has smallest eigenvalue -0.25 " in msg
    assert "larger than 0.5 or" in msg
    msg = _message(prune, _linear([[1.0, 2.0]]), "obs", 0.5,
                   objective=objective_with(_t([3.0, 0.0], [0.0, 0.0])))  # fmt: skip
    assert msg == (
        "hessian='exact' plus damping=0.0 * I is singular (smallest eigenvalue 0, mean diagonal "
        "1.5; e.g. weights into units that are off on every example), so OBS cannot invert it; "
        "pass damping= > 0 (Hassibi & Stork's H_0 = alpha I; a small fraction of the mean "
        "diagonal)"
    )
    # only the kept block must be invertible: the singular weight already pruned
    model = _linear([[1.0, 2.0, 3.0]])
    h = _t([1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 2.0])
    mask, rep = prune(model, "obs", 2 / 3, objective=objective_with(h),
                      mask=PruneMask({"weight": torch.tensor([[True, False, True]])}))  # fmt: skip
    assert rep.removed_order == [("weight", 0)]
    # damping makes it invertible
    _, rep = prune(_linear([[1.0, 2.0]]), "obs", 0.5, damping=0.1,
                   objective=objective_with(_t([3.0, 0.0], [0.0, 0.0])))  # fmt: skip
    assert rep.removed_order == [("weight", 1)]


def test_obs_gauss_newton_uses_g_plus_damping():
    x, y = _data()
    model = _net()
    names = ["2.weight"]
    g = gauss_newton_matrix(model, names, x)
    w0 = model[2].weight.detach().reshape(-1).clone()
    h_inv = obs_inverse(g, damping=0.01)
    w, removed, history, _ = obs_prune(w0, h_inv, 6, downdated=True)
    mask, rep = prune(model, "obs", 0.5, data=(x, y), hessian="gauss_newton", damping=0.01,
                      names=names, chunk=2)  # fmt: skip
    assert rep.removed_order == [("2.weight", q) for q, _ in history]
    assert torch.allclose(model[2].weight.detach().reshape(-1), w, rtol=1e-9, atol=1e-12)
    assert rep.loss_before == pytest.approx(float(F.cross_entropy(_net()(x), y).detach()))
    assert rep.loss_after == pytest.approx(float(F.cross_entropy(model(x), y).detach()))


def test_prune_with_loss_fn_and_data_builds_the_objective():
    x, y = _data()
    model = _net()
    loss0 = float(F.mse_loss(model(x), F.one_hot(y, 3).to(D)).detach())

    def mse(o, t):
        return F.mse_loss(o, F.one_hot(t, 3).to(D))

    _, rep = prune(model, "magnitude", 0.5, loss_fn=mse, data=(x, y))
    assert rep.loss_before == pytest.approx(loss0, abs=1e-14)
    assert rep.loss_after == pytest.approx(
        float(F.mse_loss(model(x), F.one_hot(y, 3).to(D)).detach()), abs=1e-14
    )
    _, rep = prune(_net(), "magnitude", 0.5, loss_fn=F.cross_entropy)  # no data: no losses
    assert rep.loss_before is None


def test_the_registries_and_hessian_names():
    assert HESSIANS == ("exact", "hutchinson", "fisher", "empirical_fisher", "gauss_newton")
    assert OBS_HESSIANS == ("exact", "gauss_newton")
    x = torch.zeros(3, dtype=D, requires_grad=True)
    obj = make_objective(nn.Identity(), lambda o, t: (o * t).sum(), x, _t(1.0, 2.0, 3.0))
    assert obj({}).item() == 0.0
    assert math.isclose(float(make_objective(_linear([[2.0]]), F.mse_loss, _t([1.0]), _t([1.0]))(
        {"weight": _t([3.0])})), 4.0)  # fmt: skip


def _invalid_prune_cases():
    x, y = _data()
    return [
        (("obx",), {}, None),  # checked by its own message test in test_prune.py
        (("magnitude", -0.1), {}, "fraction=-0.1 is invalid: expected a fraction in [0, 1]"),
        (("magnitude", 1.5), {}, "fraction=1.5 is invalid: expected a fraction in [0, 1]"),
        (("magnitude",), {"scope": "local"},
         "scope='local' is invalid: expected 'global' or 'layer'"),
        (("magnitude",), {"hessian": "bad"},
         "hessian='bad' is invalid: expected one of 'exact', 'hutchinson', 'fisher', "
         "'empirical_fisher', 'gauss_newton'"),
        (("magnitude",), {"damping": -1.0},
         "damping=-1.0 is invalid: expected a non-negative number"),
        (("magnitude",), {"chunk": 0},
         "chunk=0 is invalid: expected None or a positive number of examples"),
        (("magnitude",), {"chunk": 2.0},
         "chunk=2.0 is invalid: expected None or a positive number of examples"),
        (("magnitude",), {"names": ["0.weight", "nope"]},
         "names=['nope'] is invalid: expected parameter names of the model: "
         "['0.weight', '0.bias', '2.weight', '2.bias']"),
        (("magnitude",), {"names": []},
         "names=[] is invalid: expected at least one parameter to prune"),
        (("magnitude",), {"exclude": ["0.weight", "2.weight"]},
         "names=None is invalid: expected at least one parameter to prune"),
        (("obs",), {"hessian": "fisher", "data": (x, y)},
         "hessian='fisher' is invalid: expected one of 'exact', 'gauss_newton' for OBS "
         "(it needs the full matrix)"),
        (("obs",), {"hessian": "hutchinson", "loss_fn": F.cross_entropy, "data": (x, y)},
         "hessian='hutchinson' is invalid: expected one of 'exact', 'gauss_newton' for OBS "
         "(it needs the full matrix)"),
        (("obs",), {"hessian": "gauss_newton"},
         "data=None is invalid: expected (x, y) for hessian='gauss_newton'"),
        (("obd",), {"hessian": "gauss_newton"},
         "data=None is invalid: expected (x, y) for hessian='gauss_newton'"),
        (("obd",), {"hessian": "fisher"},
         "data=None is invalid: expected (x, y) for a Fisher estimate"),
        (("obd",), {"hessian": "empirical_fisher"},
         "data=None is invalid: expected (x, y) for a Fisher estimate"),
        (("obd",), {}, "objective=None is invalid: expected an objective or loss_fn + data"),
        (("obd",), {"hessian": "hutchinson"},
         "objective=None is invalid: expected an objective or loss_fn + data"),
        (("obs",), {}, "objective=None is invalid: expected an objective or loss_fn + data"),
        (("obs",), {"loss_fn": F.cross_entropy, "data": (x, y), "max_params": 23},
         "max_params=23 is invalid: expected >= the 24 weights OBS must hold the inverse "
         "Hessian of"),
        (("obs",), {"loss_fn": F.cross_entropy, "data": (x, y), "max_params": 8,
                    "scope": "layer"},
         "max_params=8 is invalid: expected >= the 12 weights OBS must hold the inverse "
         "Hessian of"),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(len(_invalid_prune_cases())))
def test_prune_invalid_inputs_and_their_messages(case):
    args, kwargs, message = _invalid_prune_cases()[case]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).to(D)
    with pytest.raises(ValueError) as err:
        prune(model, *args, **kwargs)
    if message is not None:
        assert str(err.value) == message


def test_prune_valid_edges():
    x, y = _data()
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).to(D)
    prune(model, "magnitude", 0.5, damping=0.0, chunk=None)
    prune(model, "magnitude", 0.5, chunk=1)
    prune(model, "obs", 0.5, loss_fn=F.cross_entropy, data=(x, y), max_params=16, scope="layer",
          hessian="gauss_newton", damping=1e-3)  # fmt: skip


# ---------------------------------------------------------------- PruneMask
def test_prune_mask_by_hand():
    src = torch.tensor([[1.0, 0.0], [2.0, 0.0]], requires_grad=True)
    mask = PruneMask({"w": src})
    m = mask.masks["w"]
    assert m.dtype == torch.bool and not m.requires_grad
    assert torch.equal(m, torch.tensor([[True, False], [True, False]]))
    with torch.no_grad():
        src.zero_()
    assert torch.equal(mask.masks["w"], torch.tensor([[True, False], [True, False]]))  # a copy
    model = nn.Linear(2, 2, bias=False).to(D)
    with torch.no_grad():
        model.weight.copy_(_t([1.0, 2.0], [3.0, 4.0]))
    model.weight.grad = _t([5.0, 6.0], [7.0, 8.0])
    mask = PruneMask({"weight": torch.tensor([[True, False], [False, True]])})
    mask.before_step(model, 0.1)
    assert torch.equal(model.weight.grad, _t([5.0, 0.0], [0.0, 8.0]))
    assert torch.equal(model.weight, _t([1.0, 2.0], [3.0, 4.0]))  # before_step: gradients only
    mask.after_step(model)
    assert torch.equal(model.weight, _t([1.0, 0.0], [0.0, 4.0]))
    params = {"weight": _t([9.0, 9.0], [9.0, 9.0])}
    mask.apply_(params)
    assert torch.equal(params["weight"], _t([9.0, 0.0], [0.0, 9.0]))
    mask.apply_grad_(params)  # no gradient: nothing to do
    assert (mask.n_pruned(), mask.n_total(), mask.sparsity()) == (2, 4, 0.5)
    assert mask.per_param() == {"weight": 0.5}
    assert mask.for_members(3) is mask
    state = mask.state_dict()
    state["weight"][0, 0] = False
    assert bool(mask.masks["weight"][0, 0])  # state_dict is a copy
    other = PruneMask.ones_like([("weight", torch.zeros(2, 2)), ("b", torch.zeros(3))])
    assert other.n_pruned() == 0 and other.n_total() == 7 and other.sparsity() == 0.0
    assert other.masks["b"].dtype == torch.bool
    other.load_state_dict({"weight": torch.tensor([[1, 0], [0, 0]])})
    assert list(other.masks) == ["weight"] and other.masks["weight"].dtype == torch.bool
    assert other.n_pruned() == 3 and other.sparsity() == 0.75
    assert PruneMask({}).sparsity() == 0.0 and PruneMask({}).n_total() == 0
    assert PruneMask({"w": torch.tensor([False])}).sparsity() == 1.0
    again = PruneMask.from_state_dict(mask.state_dict())
    assert isinstance(again, PruneMask) and torch.equal(again.masks["weight"], mask.masks["weight"])
    msg = "model=['weight'] is invalid: expected parameters named as in the mask"
    assert _message(mask.apply_, {"other": torch.zeros(2, 2)}) == msg
    assert _message(mask.apply_grad_, nn.Sequential(nn.Linear(2, 2))) == msg  # "0.weight"


def test_prune_mask_attach_applies_after_each_step():
    model = nn.Linear(2, 1, bias=False).to(D)
    with torch.no_grad():
        model.weight.copy_(_t([1.0, 1.0]))
    mask = PruneMask({"weight": torch.tensor([[True, False]])})
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    handle = mask.attach(opt, model)
    model.weight.grad = _t([-1.0, -1.0])
    opt.step()
    assert torch.equal(model.weight, _t([2.0, 0.0]))
    handle.remove()
    model.weight.grad = _t([-1.0, -1.0])
    opt.step()
    assert torch.equal(model.weight, _t([3.0, 1.0]))  # detached: no longer applied


def test_prune_report_defaults():
    from smithing.regularize.prune import PruneReport

    r = PruneReport("magnitude", 0.5, 4, 2, {"w": 0.5}, {}, None)
    assert r.loss_before is None and r.loss_after is None and r.removed_order == []
    assert PruneReport("m", 0.5, 4, 2, {}, {}, None).removed_order is not r.removed_order


# ---------------------------------------------------------------- what reaches the curvature
def _spread_data():
    """Five examples, one of them large: every chunking of them sums to different last bits."""
    x, y = _data()
    x[3] *= 30
    return x, y


@pytest.mark.parametrize("chunk", [None, 2, 3])
def test_obd_passes_its_chunk_to_the_curvature_bitwise(chunk):
    x, y = _spread_data()
    names = ["0.weight", "2.weight"]
    for hess in ("empirical_fisher", "gauss_newton"):
        model = _net()
        w = {n: p.detach().clone() for n, p in model.named_parameters()}
        if hess == "gauss_newton":
            h = _unflatten(_gauss_newton(model, names, x, chunk, diagonal=True),
                           {n: w[n] for n in names})  # fmt: skip
        else:
            h = fisher_diagonal(model, names, x, y, chunk=chunk if chunk is not None else 5)
        _, rep = prune(model, "obd", 0.5, data=(x, y), hessian=hess, chunk=chunk)
        for n in names:
            assert torch.equal(rep.saliency[n], 0.5 * h[n] * w[n].square()), (hess, n)


@pytest.mark.parametrize("chunk", [None, 2])
def test_obs_gauss_newton_passes_its_chunk_bitwise(chunk):
    x, y = _spread_data()
    model = _net()
    g = gauss_newton_matrix(model, ["2.weight"], x, chunk=chunk)
    w0 = model[2].weight.detach().reshape(-1).clone()
    w, _, history, _ = obs_prune(w0, obs_inverse(g, damping=0.01), 6, downdated=True)
    _, rep = prune(model, "obs", 0.5, data=(x, y), hessian="gauss_newton", damping=0.01,
                   names=["2.weight"], chunk=chunk, max_params=12)  # fmt: skip
    assert torch.equal(model[2].weight.detach().reshape(-1), w)
    assert rep.removed_order == [("2.weight", q) for q, _ in history]


def test_obs_keeps_a_float32_model_float32():
    x, y = _data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3))
    _, rep = prune(model, "obs", 0.5, data=(x.float(), y), hessian="gauss_newton", damping=0.1)
    assert rep.saliency["0.weight"].dtype == torch.float32
    assert model[0].weight.dtype == torch.float32


def test_layer_scope_continues_past_a_parameter_with_nothing_to_prune():
    model = _two_layers()
    earlier = PruneMask({"0.weight": torch.zeros(2, 2, dtype=torch.bool)})  # all pruned
    mask, rep = prune(model, "magnitude", 0.5, mask=earlier, scope="layer")
    assert torch.equal(mask.masks["1.weight"], torch.tensor([[False, True], [False, True]]))
    assert rep.per_param == {"0.weight": 1.0, "1.weight": 0.5}


def test_obs_checks_a_single_kept_weight_too():
    def objective(params):
        w = params["weight"].reshape(-1)
        return 0.5 * (w[0] ** 2 - w[1] ** 2)  # H = diag(1, -1)

    one_kept = PruneMask({"weight": torch.tensor([[False, True]])})
    msg = _message(prune, _linear([[1.0, 2.0]]), "obs", 1.0, objective=objective, mask=one_kept)
    assert msg.startswith("hessian='exact' is indefinite: the Hessian of the loss plus "
                          "damping=0.0 * I has smallest eigenvalue -1 ")  # fmt: skip


def test_chunked_sums_are_the_chunks_sums_bitwise():
    # each chunk's sum is added to the total, then divided by N: with chunks of 2 of 5
    # examples the result is (2 G(x[:2]) + 2 G(x[2:4]) + G(x[4:])) / 5, exactly (2x is exact)
    x, y = _spread_data()
    model = _net()
    names = ["0.weight", "2.weight"]
    parts = [(x[:2], y[:2], 2.0), (x[2:4], y[2:4], 2.0), (x[4:], y[4:], 1.0)]
    g = sum(n * gauss_newton_matrix(model, names, xc) for xc, _, n in parts) / 5
    assert torch.equal(gauss_newton_matrix(model, names, x, chunk=2), g)
    d = sum(n * _gauss_newton(model, names, xc, None, diagonal=True) for xc, _, n in parts) / 5
    assert torch.equal(_gauss_newton(model, names, x, 2, diagonal=True), d)
    f = fisher_diagonal(model, names, x, y, chunk=2)
    for name in names:
        want = sum(n * fisher_diagonal(model, names, xc, yc)[name] for xc, yc, n in parts) / 5
        assert torch.equal(f[name], want)


def test_prune_defaults():
    x, y = _data()
    mask, rep = prune(_two_layers())
    assert rep.method == "magnitude" and rep.fraction == 0.5 and rep.n_pruned == 4
    _, rep = prune(_net(), "magnitude", data=(x, y))  # data without loss_fn: no objective
    assert rep.loss_before is None and rep.loss_after is None
    model, obj, _, w_star = _obd_case()
    _, rep = prune(model, "obd", 0.25, objective=obj, hessian="hutchinson",
                   generator=torch.Generator().manual_seed(2))  # fmt: skip
    h = hessian_diagonal(obj, {"weight": _obd_case()[0].weight}, "hutchinson", samples=100,
                         generator=torch.Generator().manual_seed(2))["weight"]  # fmt: skip
    assert torch.allclose(rep.saliency["weight"], 0.5 * h * w_star[None] ** 2, atol=1e-13)

import copy

import pytest
import torch
from torch import nn

from smithing.regularize import (
    Penalty,
    elastic_net_penalty,
    l1_penalty,
    l2_penalty,
    select,
    soft_threshold_,
)

D = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _problem(seed=0):
    g = _gen(seed)
    x = torch.randn(64, 5, generator=g, dtype=D)
    y = torch.randn(64, 2, generator=g, dtype=D)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2)).to(D)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=D))
    return model, x, y


def _loss0(model, x, y):
    return ((model(x) - y) ** 2).mean()


def test_l2_value_and_gradient_match_formula():
    g = _gen()
    ws = [torch.randn(3, 4, generator=g, dtype=D, requires_grad=True), torch.randn(5, dtype=D)]
    lam, n = 0.3, 50
    val = l2_penalty(ws, lam, n)
    assert torch.allclose(val, lam / (2 * n) * sum((w**2).sum() for w in ws))
    val.backward()
    assert torch.allclose(ws[0].grad, lam / n * ws[0].detach())  # dC/dw = (lam/n) w


def test_l1_subgradient_is_sign_with_sign0_zero():
    w = torch.tensor([[-2.0, 0.0, 0.5]], dtype=D, requires_grad=True)
    lam, n = 0.2, 10
    val = l1_penalty(w, lam, n)
    assert torch.allclose(val, torch.tensor(lam / n * 2.5, dtype=D))
    val.backward()
    assert torch.equal(w.grad, lam / n * torch.tensor([[-1.0, 0.0, 1.0]], dtype=D))


def test_elastic_net_is_sum():
    w = torch.randn(4, 3, generator=_gen(1), dtype=D)
    assert torch.allclose(
        elastic_net_penalty(w, 0.1, 0.2, 7), l1_penalty(w, 0.1, 7) + l2_penalty(w, 0.2, 7)
    )


def _train(model, x, y, opt, pen, lr, steps=5):
    named = list(model.named_parameters())
    for _ in range(steps):
        opt.zero_grad()
        loss = _loss0(model, x, y) + pen.penalty(named)
        loss.backward()
        pen.step(opt, named, lr)
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_l2_equals_decoupled_decay_for_sgd_and_matches_torch():
    lam, n, lr = 0.5, 20, 0.1
    base, x, y = _problem()
    runs = {}
    for name, pen, wd in [
        ("l2", Penalty(l2=lam, n=n, include_biases=True), 0.0),
        ("decoupled", Penalty(weight_decay=lam / n, include_biases=True), 0.0),
        ("torch", Penalty(), lam / n),
    ]:
        m = copy.deepcopy(base)
        opt = torch.optim.SGD(m.parameters(), lr=lr, weight_decay=wd)
        runs[name] = _train(m, x, y, opt, pen, lr)
    assert torch.allclose(runs["l2"], runs["decoupled"], rtol=0, atol=1e-13)
    assert torch.allclose(runs["l2"], runs["torch"], rtol=0, atol=1e-13)


def test_l2_and_decoupled_differ_for_adam_and_match_adam_adamw():
    lam, n, lr = 0.5, 20, 0.01
    base, x, y = _problem()
    out = {}
    for name, pen, cls, wd in [
        ("l2", Penalty(l2=lam, n=n, include_biases=True), torch.optim.Adam, 0.0),
        ("adam_wd", Penalty(), torch.optim.Adam, lam / n),
        ("decoupled", Penalty(weight_decay=lam / n, include_biases=True), torch.optim.Adam, 0.0),
        ("adamw", Penalty(), torch.optim.AdamW, lam / n),
    ]:
        m = copy.deepcopy(base)
        opt = cls(m.parameters(), lr=lr, weight_decay=wd)
        out[name] = _train(m, x, y, opt, pen, lr, steps=20)
    assert torch.allclose(out["l2"], out["adam_wd"], rtol=0, atol=1e-12)  # Adam's L2
    assert torch.allclose(out["decoupled"], out["adamw"], rtol=0, atol=1e-12)  # AdamW
    assert (out["l2"] - out["decoupled"]).abs().max() > 1e-4  # they are not the same


def test_zero_weight_penalty_equals_none():
    base, x, y = _problem()
    ref = _train(copy.deepcopy(base), x, y, None, Penalty(), 0.1, steps=0)  # initial
    results = []
    for pen in [None, Penalty(), Penalty(l1=0.0, l2=0.0, weight_decay=0.0, proximal=True)]:
        m = copy.deepcopy(base)
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        for _ in range(5):
            opt.zero_grad()
            loss = _loss0(m, x, y)
            if pen is not None:
                loss = loss + pen.penalty(m.named_parameters())
            loss.backward()
            if pen is None:
                opt.step()
            else:
                pen.step(opt, m.named_parameters(), 0.1)
        results.append(torch.cat([p.detach().reshape(-1) for p in m.parameters()]))
    assert not torch.equal(results[0], ref)
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])
    assert Penalty().penalty(base.named_parameters()) == 0.0
    assert not Penalty().active and Penalty(l1=1e-3).active


def test_soft_threshold_formula_and_exact_zeros():
    w = torch.tensor([-1.0, -0.1, 0.0, 0.05, 0.3], dtype=D)
    soft_threshold_(w, 0.1)
    assert torch.allclose(w, torch.tensor([-0.9, 0.0, 0.0, 0.0, 0.2], dtype=D), rtol=0, atol=1e-15)
    assert torch.equal(w[1:4] == 0, torch.ones(3, dtype=torch.bool))  # exact zeros


def test_proximal_l1_gives_lasso_solution_with_exact_zeros():
    # min 1/2 ||w - a||^2 + lam/n |w|_1: the solution is soft(a, lam/n); ISTA with lr=1 finds it
    a = torch.tensor([[1.0, -0.02, 0.3, -0.5, 0.01]], dtype=D)
    lam, n, lr = 0.5, 5, 1.0
    lin = nn.Linear(5, 1, bias=False).to(D)
    pen = Penalty(l1=lam, n=n, proximal=True)
    opt = torch.optim.SGD(lin.parameters(), lr=lr)
    for _ in range(3):
        opt.zero_grad()
        (0.5 * ((lin.weight - a) ** 2).sum() + pen.penalty(lin.named_parameters())).backward()
        pen.step(opt, lin.named_parameters(), lr)
    expected = torch.sign(a) * (a.abs() - lam / n).clamp(min=0)
    assert torch.allclose(lin.weight.detach(), expected, rtol=0, atol=1e-15)
    assert int((lin.weight == 0).sum()) == 2
    # the subgradient form leaves the small weights dithering around 0, not at 0
    sub = Penalty(l1=lam, n=n)
    lin2 = nn.Linear(5, 1, bias=False).to(D)
    opt2 = torch.optim.SGD(lin2.parameters(), lr=0.1)
    for _ in range(200):
        opt2.zero_grad()
        (0.5 * ((lin2.weight - a) ** 2).sum() + sub.penalty(lin2.named_parameters())).backward()
        opt2.step()
    assert int((lin2.weight == 0).sum()) == 0


def test_masks_biases_and_exclude():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    names = [n for n, _ in Penalty().params(model.named_parameters())]
    assert names == ["0.weight", "2.weight"]
    names = [n for n, _ in Penalty(include_biases=True).params(model.named_parameters())]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for exclude in [("2.weight",), ("2",), ("2.*",), ("*2.weight",)]:
        pen = Penalty(exclude=exclude)
        assert [n for n, _ in pen.params(model.named_parameters())] == ["0.weight"]
    val = Penalty(l2=1.0, n=1, exclude=("2",)).penalty(model.named_parameters())
    assert torch.allclose(val, 0.5 * (model[0].weight ** 2).sum())
    assert [n for n, _ in select({"rbm.b": torch.zeros(3)}.items())] == []


def test_per_member_strengths_with_members_axis():
    models = [nn.Linear(4, 3) for _ in range(3)]
    params, _ = torch.func.stack_module_state(models)  # (members, ...)
    lam = torch.tensor([0.0, 0.1, 1.0])
    pen = Penalty(l2=lam, l1=2 * lam, n=10, members_axis=True)
    val = pen.penalty(params.items())
    assert val.shape == (3,)
    for i, m in enumerate(models):
        single = Penalty(l2=float(lam[i]), l1=2 * float(lam[i]), n=10).penalty(m.named_parameters())
        assert torch.allclose(val[i], torch.as_tensor(single, dtype=val.dtype))
    # per-member decoupled decay and proximal step, with per-member learning rates
    w = params["weight"].detach().clone()
    lr = torch.tensor([0.1, 0.2, 0.3])
    Penalty(weight_decay=lam, members_axis=True).apply_before_step({"weight": w}, lr)
    assert torch.allclose(w, params["weight"] * (1 - lr * lam)[:, None, None])
    Penalty(l1=lam, n=10, proximal=True, members_axis=True).apply_after_step({"weight": w}, lr)
    assert torch.equal(w[0], params["weight"][0])  # member 0 has strength 0


def test_validation_messages():
    with pytest.raises(ValueError, match=r"l2=-1.0 is invalid: expected a non-negative"):
        Penalty(l2=-1.0)
    with pytest.raises(ValueError, match=r"n=0 is invalid"):
        l2_penalty(torch.ones(2), 1.0, 0)
    with pytest.raises(ValueError, match=r"lam=\(3,\) is invalid.*members_axis=True"):
        l2_penalty(torch.ones(3, 2), torch.ones(3), 1)
    with pytest.raises(ValueError, match=r"exclude='0.weight' is invalid"):
        Penalty(exclude="0.weight")

"""Exact answers for the stacked ensemble model (``smithing.train.stacked``): the vmapped
forward passes equal each member's own module, the per-member losses and errors equal
``fit``'s per model, the architecture checks with their messages, and the write-back.

Written for the mutation score of ``smithing.train.stacked`` (issue 15).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from smithing.data.base import Split
from smithing.train.loop import evaluate
from smithing.train.stacked import StackedModel, evaluate_members, member_loss

D = torch.float64


def mlp(seed, act=nn.Tanh, out=3, dropout=0.0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 4), act(), nn.Dropout(dropout), nn.Linear(4, out)).double()


def data(n=5, seed=0, classes=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g, dtype=D), torch.randint(0, classes, (n,), generator=g)


def test_architecture_checks_and_their_messages():
    with pytest.raises(ValueError) as info:
        StackedModel([])
    assert str(info.value) == "models=[] is invalid: expected at least one model"
    others = {
        "another type": nn.Linear(2, 3).double(),
        "another shape": nn.Sequential(
            nn.Linear(2, 5), nn.Tanh(), nn.Dropout(0.0), nn.Linear(5, 3)
        ).double(),  # fmt: skip
        "another activation": mlp(1, act=nn.ReLU),
        "another dropout": mlp(1, dropout=0.5),
        "a buffer": mlp(1),
    }
    others["a buffer"].register_buffer("extra", torch.zeros(2))
    for what, other in others.items():
        with pytest.raises(ValueError) as info:
            StackedModel([mlp(0), mlp(2), other])
        assert str(info.value) == (
            "models[2] has a different architecture than models[0]; an ensemble needs "
            "same-shape members"
        ), what
    # two classes of one name, parameters and repr, with other forwards: the type tells them
    # apart (nothing else in the signature does)

    def net_class(act):
        class Net(nn.Linear):
            def forward(self, x):
                return act(super().forward(x))

        return Net

    a, b = net_class(torch.tanh)(2, 3), net_class(torch.relu)(2, 3)
    assert repr(a) == repr(b) and type(a) is not type(b)
    with pytest.raises(ValueError, match=r"models\[1\] has a different architecture"):
        StackedModel([a, b])
    bn = [nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)) for _ in range(2)]
    bn[1][1].running_mean.fill_(1.0)  # the same shapes, other values: fine
    assert StackedModel(bn).n_members == 2


def test_the_forward_passes_equal_each_members_module():
    models = [mlp(s, dropout=0.5) for s in range(3)]
    st = StackedModel(models)
    assert st.n_members == 3 and list(st.params) == [k for k, _ in models[0].named_parameters()]
    assert all(v.requires_grad and v.shape[0] == 3 for v in st.params.values())
    x, _ = data()
    out = st.forward_eval(x)  # shared inputs, eval mode: no dropout
    assert out.shape == (3, 5, 3) and not out.requires_grad
    for m, model in enumerate(models):
        torch.testing.assert_close(out[m], model.eval()(x), rtol=1e-14, atol=0)
    xs = torch.stack([x, x + 1, 2 * x])  # (M, B, 2): one batch per member
    st_nodrop = StackedModel([mlp(s) for s in range(3)])
    out = st_nodrop.forward_train(xs)
    assert out.requires_grad
    for m in range(3):
        torch.testing.assert_close(out[m], mlp(m)(xs[m]), rtol=1e-14, atol=0)
    # training mode: dropout on, each member its own mask
    torch.manual_seed(0)
    out = st.forward_train(torch.stack([x, x, x]))
    assert not torch.equal(out[0], models[0].eval()(x))


def test_member_state_and_write_back():
    bn = [nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).double() for _ in range(2)]
    st = StackedModel(bn)
    with torch.no_grad():
        st.params["0.weight"][1].fill_(2.0)
        st.buffers["1.running_mean"][1].fill_(3.0)
    state = st.member_state(1)
    assert set(state) == set(bn[1].state_dict())
    assert torch.equal(state["0.weight"], torch.full((3, 2), 2.0, dtype=D))
    assert not state["0.weight"].requires_grad
    state["0.weight"].fill_(5.0)
    state["1.running_mean"].fill_(5.0)
    assert float(st.params["0.weight"][1, 0, 0].detach()) == 2.0  # a copy
    assert float(st.buffers["1.running_mean"][1, 0]) == 3.0
    st.write_back(bn)
    assert torch.equal(bn[1][0].weight.detach(), torch.full((3, 2), 2.0, dtype=D))
    assert torch.equal(bn[1][1].running_mean, torch.full((3,), 3.0, dtype=D))
    assert not torch.equal(bn[0][0].weight.detach(), torch.full((3, 2), 2.0, dtype=D))


def test_member_losses_equal_each_members_loss():
    g = torch.Generator().manual_seed(1)
    out = torch.randn(2, 4, 3, generator=g, dtype=D)
    y = torch.randint(0, 3, (2, 4), generator=g)
    got = member_loss(None, "classification")(out, y)
    want = torch.stack([F.cross_entropy(out[m], y[m]) for m in range(2)])
    torch.testing.assert_close(got, want, rtol=1e-14, atol=0)
    # regression: (M, B, 1) outputs against (M, B) targets, and (M, B, k) against (M, B, k)
    reg = torch.randn(2, 4, 1, generator=g, dtype=D)
    t = torch.randn(2, 4, generator=g, dtype=D)
    got = member_loss(None, "regression")(reg, t)
    want = torch.stack([((reg[m, :, 0] - t[m]) ** 2).mean() for m in range(2)])
    torch.testing.assert_close(got, want, rtol=1e-14, atol=0)
    reg = torch.randn(2, 4, 3, generator=g, dtype=D)
    t = torch.randn(2, 4, 3, generator=g, dtype=D)
    got = member_loss(None, "regression")(reg, t)
    torch.testing.assert_close(got, ((reg - t) ** 2).mean((1, 2)), rtol=1e-14, atol=0)
    # a custom loss is mapped over the members
    got = member_loss(lambda o, y: (o - y).abs().max(), "regression")(reg, t)
    torch.testing.assert_close(got, (reg - t).abs().amax((1, 2)), rtol=0, atol=0)


@pytest.mark.parametrize("chunk", [None, 1, 2, 64])
def test_evaluate_members_equals_evaluate_per_member(chunk):
    models = [mlp(s) for s in range(3)]
    st = StackedModel(models)
    x, y = data(n=7)
    split = Split(x, y)
    loss, err = evaluate_members(st, split, "classification", chunk=chunk)
    assert loss.dtype == err.dtype == torch.float64 and loss.shape == (3,)
    for m, model in enumerate(models):
        want = evaluate(model, split)
        assert float(loss[m]) == pytest.approx(want[0], rel=1e-12)
        assert float(err[m]) == pytest.approx(want[1], rel=1e-15)
    # regression, one output and k outputs, and a custom loss
    for k in (1, 2):
        regs = [mlp(s, out=k) for s in range(2)]
        st = StackedModel(regs)
        t = torch.randn(7, generator=torch.Generator().manual_seed(3), dtype=D)
        t = t if k == 1 else torch.stack([t, -t], 1)
        split = Split(x, t)
        loss, err = evaluate_members(st, split, "regression", chunk=chunk)
        for m, model in enumerate(regs):
            with torch.no_grad():
                sq = ((model(x).reshape(t.shape) - t) ** 2).sum() / 7
            assert float(err[m]) == pytest.approx(float(sq), rel=1e-12)
            assert float(loss[m]) == pytest.approx(float(sq) / k, rel=1e-12)

        def l1(o, y):
            return (o.reshape(y.shape) - y).abs().sum()

        loss, _ = evaluate_members(st, split, "regression", chunk=chunk, loss=l1)
        c = chunk or 7
        for m, model in enumerate(regs):
            with torch.no_grad():
                r = (model(x).reshape(t.shape) - t).abs()
            want = sum(float(r[i : i + c].sum()) * len(r[i : i + c]) for i in range(0, 7, c)) / 7
            assert float(loss[m]) == pytest.approx(want, rel=1e-12)

"""BernoulliRBM / GaussianBernoulliRBM as modules: the documented initialization drawn from the
same generator, each method against the pure function or formula it stands for (ensembles
included), the encoder's nn.Linear layout, the inputs they refuse and their messages."""

from __future__ import annotations

import math

import pytest
import torch

from smithing.pretrain.rbm import BernoulliRBM, GaussianBernoulliRBM
from smithing.pretrain.rbm import functional as RF
from smithing.pretrain.rbm.modules import _gaussian_visibles

D = torch.float64


def filled(cls=BernoulliRBM, members=None, seed=0, **kw):
    rbm = cls(3, 2, members=members, dtype=D, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in rbm.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=D))
        if cls is GaussianBernoulliRBM and not rbm.learn_variance:
            rbm.log_var.copy_(torch.randn(rbm.log_var.shape, generator=g, dtype=D) * 0.5)
    return rbm


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
@pytest.mark.parametrize("members", [None, 2])
def test_initialization_is_the_documented_draw(cls, members):
    lead = () if members is None else (members,)
    rbm = cls(3, 2, members=members, init_std=0.3, dtype=D,
              generator=torch.Generator().manual_seed(4))  # fmt: skip
    want = torch.randn((*lead, 3, 2), generator=torch.Generator().manual_seed(4), dtype=D) * 0.3
    assert torch.equal(rbm.W.detach(), want)
    assert torch.equal(rbm.b.detach(), torch.zeros(*lead, 3, dtype=D))
    assert torch.equal(rbm.c.detach(), torch.zeros(*lead, 2, dtype=D))
    assert (rbm.n_visible, rbm.n_hidden, rbm.members) == (3, 2, members)
    default = cls(3, 2, generator=torch.Generator().manual_seed(4))  # init_std 0.01, default dtype
    assert default.W.dtype == torch.get_default_dtype()
    want = torch.randn((3, 2), generator=torch.Generator().manual_seed(4)) * 0.01
    assert torch.equal(default.W.detach(), want)
    assert cls(3, 2, init_std=0.0).W.abs().sum() == 0  # init_std 0 is allowed
    m = "" if members is None else f", members={members}"
    assert rbm.extra_repr() == f"n_visible=3, n_hidden=2{m}"
    assert _gaussian_visibles(rbm) == (cls is GaussianBernoulliRBM)
    assert rbm.visible_type == ("gaussian" if cls is GaussianBernoulliRBM else "bernoulli")


def test_gaussian_log_var_parameter_or_buffer():
    fixed = GaussianBernoulliRBM(3, 2, members=2, log_var_init=0.7, dtype=D)
    assert torch.equal(fixed.log_var, torch.full((2, 3), 0.7, dtype=D))
    assert "log_var" not in dict(fixed.named_parameters()) and "log_var" in dict(
        fixed.named_buffers()
    )
    assert fixed.learn_variance is False
    learned = GaussianBernoulliRBM(3, 2, learn_variance=1, dtype=D)
    assert learned.learn_variance is True
    assert "log_var" in dict(learned.named_parameters())
    assert torch.equal(learned.log_var.detach(), torch.zeros(3, dtype=D))  # log_var_init 0
    assert GaussianBernoulliRBM(3, 2).learn_variance is False
    assert sorted(fixed.state_dict()) == ["W", "b", "c", "log_var"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_visible": 0}, "n_visible=0 is invalid: expected a positive int"),
        ({"n_visible": 2.0}, "n_visible=2.0 is invalid: expected a positive int"),
        ({"n_hidden": 0}, "n_hidden=0 is invalid: expected a positive int"),
        ({"n_hidden": 1.5}, "n_hidden=1.5 is invalid: expected a positive int"),
        ({"members": 0}, "members=0 is invalid: expected None or a positive int"),
        ({"members": 2.0}, "members=2.0 is invalid: expected None or a positive int"),
        ({"init_std": -0.1}, "init_std=-0.1 is invalid: expected a non-negative number"),
    ],
)
@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_invalid_construction(cls, kwargs, message):
    args = {"n_visible": 3, "n_hidden": 2} | kwargs
    with pytest.raises(ValueError) as err:
        cls(args.pop("n_visible"), args.pop("n_hidden"), **args)
    assert str(err.value) == message
    cls(1, 1, members=1)  # the smallest sizes


@pytest.mark.parametrize("members", [None, 2])
def test_bernoulli_methods_are_the_pure_functions(members):
    rbm = filled(members=members, seed=1)
    W, b, c = (t.detach() for t in (rbm.W, rbm.b, rbm.c))
    g = torch.Generator().manual_seed(2)
    v = torch.bernoulli(torch.full((4, 3), 0.5, dtype=D), generator=g)
    h = torch.bernoulli(torch.full((4, 2), 0.5, dtype=D), generator=g)
    with torch.no_grad():
        assert torch.equal(rbm(v), RF.hidden_probs(v, W, c))
        assert torch.equal(rbm.hidden_probs(v), RF.hidden_probs(v, W, c))
        assert torch.equal(rbm.energy(v, h), RF.energy(v, h, W, b, c))
        assert torch.equal(rbm.free_energy(v), RF.free_energy(v, W, b, c))
        assert torch.equal(rbm.visible_mean(h), RF.visible_probs(h, W, b))
        s = rbm.sample_visible(h, torch.Generator().manual_seed(3))
        want = torch.bernoulli(
            RF.visible_probs(h, W, b), generator=torch.Generator().manual_seed(3)
        )
        assert torch.equal(s, want)
        assert rbm.visible_drive(v) is v
        ex = rbm.expectations(v, h)
        assert set(ex) == {"W", "b", "c"}
        torch.testing.assert_close(ex["W"], v.T @ h / 4)
        v2, h2 = v.flip(0), h.roll(1, 0)
        cd = rbm.cd_gradient(v, h, v2, h2)
        for k, val in RF.cd_gradient(v, h, v2, h2).items():
            assert torch.equal(cd[k], val), k
    lead = () if members is None else (members,)
    rv = rbm.random_visible(5, torch.Generator().manual_seed(6))
    want = torch.bernoulli(torch.full((*lead, 5, 3), 0.5, dtype=D),
                           generator=torch.Generator().manual_seed(6))  # fmt: skip
    assert rv.dtype == D and torch.equal(rv, want)


@pytest.mark.parametrize("members", [None, 2])
@pytest.mark.parametrize("learn", [False, True])
def test_gaussian_methods_are_the_pure_functions(members, learn):
    rbm = filled(GaussianBernoulliRBM, members=members, seed=7, learn_variance=learn)
    W, b, c, z = (t.detach() for t in (rbm.W, rbm.b, rbm.c, rbm.log_var))
    g = torch.Generator().manual_seed(8)
    v = torch.randn(4, 3, generator=g, dtype=D)
    h = torch.bernoulli(torch.full((4, 2), 0.5, dtype=D), generator=g)
    with torch.no_grad():
        assert torch.equal(rbm.hidden_probs(v), RF.gaussian_hidden_probs(v, W, c, z))
        assert torch.equal(rbm.energy(v, h), RF.gaussian_energy(v, h, W, b, c, z))
        assert torch.equal(rbm.free_energy(v), RF.gaussian_free_energy(v, W, b, c, z))
        assert torch.equal(rbm.visible_mean(h), RF.gaussian_visible_mean(h, W, b))
        s = rbm.sample_visible(h, torch.Generator().manual_seed(9))
        mean = RF.gaussian_visible_mean(h, W, b)
        noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(9), dtype=D)
        std = torch.exp(0.5 * (z if members is None else z[:, None, :]))
        torch.testing.assert_close(s, mean + std * noise, rtol=0, atol=1e-14)
        var = z.exp() if members is None else z.exp()[:, None, :]
        torch.testing.assert_close(rbm.visible_drive(v), v / var, rtol=0, atol=1e-15)
        ex = rbm.expectations(v, h)
        want = RF._gaussian_expectations(v, h, W, b, z, learn)
        assert set(ex) == set(want) == ({"W", "b", "c", "log_var"} if learn else {"W", "b", "c"})
        v2, h2 = v.flip(0), h.roll(1, 0)
        cd = rbm.cd_gradient(v, h, v2, h2)
        want = RF.gaussian_cd_gradient(v, h, v2, h2, W, b, z, with_var=learn)
        assert set(cd) == set(want)
        for k in want:
            assert torch.equal(cd[k], want[k]), k
    lead = () if members is None else (members,)
    rv = rbm.random_visible(5, torch.Generator().manual_seed(10))
    noise = torch.randn((*lead, 5, 3), generator=torch.Generator().manual_seed(10), dtype=D)
    std = torch.exp(0.5 * z)
    row = (lambda t: t) if members is None else (lambda t: t[:, None, :])  # noqa: E731
    torch.testing.assert_close(rv, row(b) + row(std) * noise, rtol=0, atol=1e-14)
    assert not rv.requires_grad


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
@pytest.mark.parametrize("members", [None, 2])
def test_encoder_is_an_nn_linear_layout_copy(cls, members):
    rbm = filled(cls, members=members, seed=11)
    weight, bias = rbm.encoder()
    lead = () if members is None else (members,)
    assert weight.shape == (*lead, 2, 3) and bias.shape == (*lead, 2)
    assert weight.is_contiguous() and not weight.requires_grad and not bias.requires_grad
    v = torch.randn(4, 3, generator=torch.Generator().manual_seed(12), dtype=D)
    with torch.no_grad():
        lin = torch.sigmoid(v @ weight.transpose(-1, -2) + bias.unsqueeze(-2))
        torch.testing.assert_close(lin, rbm.hidden_probs(v), rtol=1e-14, atol=1e-15)
    W = rbm.W.detach()
    if cls is GaussianBernoulliRBM:
        W = W / rbm.log_var.exp().unsqueeze(-1)
    torch.testing.assert_close(weight, W.transpose(-1, -2), rtol=1e-15, atol=0)
    weight.zero_(), bias.zero_()  # copies: the RBM is untouched
    assert rbm.W.abs().sum() > 0 and rbm.c.abs().sum() > 0


def test_init_visible_bias():
    data = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    rbm = BernoulliRBM(3, 2, dtype=D)
    assert rbm.init_visible_bias_(data.to(D)) is rbm
    p = torch.tensor([1 - 1e-3, 1e-3, 0.5], dtype=D)  # clipped to [eps, 1 - eps], eps 1e-3
    torch.testing.assert_close(rbm.b.detach(), torch.log(p / (1 - p)), rtol=1e-12, atol=1e-12)
    rbm.init_visible_bias_(data.to(D), eps=0.1)
    p = torch.tensor([0.9, 0.1, 0.5], dtype=D)
    torch.testing.assert_close(rbm.b.detach(), torch.log(p / (1 - p)), rtol=1e-12, atol=1e-12)
    ens = BernoulliRBM(3, 2, members=2, dtype=D)
    ens.init_visible_bias_(torch.stack([data, 1 - data]).to(D), eps=0.25)
    p = torch.tensor([[0.75, 0.25, 0.5], [0.25, 0.75, 0.5]], dtype=D)
    torch.testing.assert_close(ens.b.detach(), torch.log(p / (1 - p)), rtol=1e-12, atol=1e-12)
    assert not ens.b.requires_grad or ens.b.grad is None
    g = GaussianBernoulliRBM(2, 2, dtype=D)
    x = torch.tensor([[1.0, -2.0], [3.0, 4.0]], dtype=D)
    assert g.init_visible_bias_(x) is g
    assert torch.equal(g.b.detach(), torch.tensor([2.0, 1.0], dtype=D))
    assert math.isclose(float(g.init_visible_bias_(x, eps=0.3).b.detach()[0]), 2.0)

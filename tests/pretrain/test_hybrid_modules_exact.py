"""ClassRBM / DeepHybridRBM as modules: the documented initialization drawn from the same
generator, every method against the pure function or formula it stands for, the deep stack's
upward pass and combinations written out, and the inputs they refuse with their messages."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from smithing.pretrain import hybrid as H
from smithing.pretrain.hybrid import ClassRBM, DeepHybridRBM
from smithing.pretrain.rbm import visible_probs

D = torch.float64


@pytest.mark.parametrize("members", [None, 2])
@pytest.mark.parametrize("init_scale", [None, 0.3])
def test_initialization_is_the_documented_draw(members, init_scale):
    lead = () if members is None else (members,)
    m = ClassRBM(3, 4, 2, members=members, init_scale=init_scale, dtype=D,
                 generator=torch.Generator().manual_seed(1))  # fmt: skip
    g = torch.Generator().manual_seed(1)
    a_w = init_scale if init_scale is not None else 1 / math.sqrt(4)  # max(D, H) = 4
    a_u = init_scale if init_scale is not None else 1 / math.sqrt(4)  # max(C, H) = 4
    W = (torch.rand((*lead, 3, 4), generator=g, dtype=D) * 2 - 1) * a_w
    U = (torch.rand((*lead, 2, 4), generator=g, dtype=D) * 2 - 1) * a_u
    torch.testing.assert_close(m.W.detach(), W, rtol=0, atol=1e-15)
    torch.testing.assert_close(m.U.detach(), U, rtol=0, atol=1e-15)
    for name, n in (("b", 3), ("c", 4), ("d", 2)):
        assert torch.equal(getattr(m, name).detach(), torch.zeros(*lead, n, dtype=D)), name
    assert (m.n_visible, m.n_hidden, m.n_classes, m.members) == (3, 4, 2, members)
    assert m.params() == (m.W, m.b, m.c, m.U, m.d)
    # the rules' other branch: max(C, H) with more classes than hiddens, max(D, H) with D > H
    m2 = ClassRBM(9, 2, 16, generator=torch.Generator().manual_seed(2), dtype=D)
    g = torch.Generator().manual_seed(2)
    W = (torch.rand((9, 2), generator=g, dtype=D) * 2 - 1) / 3.0
    U = (torch.rand((16, 2), generator=g, dtype=D) * 2 - 1) / 4.0
    torch.testing.assert_close(m2.W.detach(), W, rtol=0, atol=1e-15)
    torch.testing.assert_close(m2.U.detach(), U, rtol=0, atol=1e-15)
    assert ClassRBM(3, 4, 2).W.dtype == torch.get_default_dtype()
    assert ClassRBM(3, 4, 2, init_scale=0.0).W.abs().sum() == 0


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((0, 2, 2), {}, "n_visible=0 is invalid: expected a positive int"),
        ((2.0, 2, 2), {}, "n_visible=2.0 is invalid: expected a positive int"),
        ((2, 0, 2), {}, "n_hidden=0 is invalid: expected a positive int"),
        ((2, 2.0, 2), {}, "n_hidden=2.0 is invalid: expected a positive int"),
        ((2, 2, 1), {}, "n_classes=1 is invalid: expected an int >= 2"),
        ((2, 2, 2.0), {}, "n_classes=2.0 is invalid: expected an int >= 2"),
        ((2, 2, 2), {"members": 0}, "members=0 is invalid: expected None or a positive int"),
        ((2, 2, 2), {"members": 1.0}, "members=1.0 is invalid: expected None or a positive int"),
        ((2, 2, 2), {"init_scale": -0.1},
         "init_scale=-0.1 is invalid: expected None or a non-negative number"),
    ],
)  # fmt: skip
def test_invalid_construction(args, kwargs, message):
    with pytest.raises(ValueError) as err:
        ClassRBM(*args, **kwargs)
    assert str(err.value) == message
    ClassRBM(1, 1, 2, members=1)  # the smallest


def filled(members=None, seed=0, dtype=D):
    m = ClassRBM(3, 2, 3, members=members, dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype))
    return m


@pytest.mark.parametrize("members", [None, 2])
def test_methods_are_the_pure_functions(members):
    m = filled(members, seed=3)
    W, b, c, U, d = (t.detach() for t in m.params())
    x = torch.bernoulli(torch.full((4, 3), 0.5), generator=torch.Generator().manual_seed(4))
    y = torch.tensor([0, 2, 1, 2])
    y1h = F.one_hot(y, 3).to(D)
    h = torch.bernoulli(
        torch.full((4, 2), 0.5, dtype=D), generator=torch.Generator().manual_seed(5)
    )
    xd = x.to(D)  # the modules cast x (float32 here) to the parameters' dtype
    with torch.no_grad():
        assert torch.equal(m(x), H.log_proba(xd, W, c, U, d))
        assert torch.equal(m.log_proba(x), H.log_proba(xd, W, c, U, d))
        assert torch.equal(m.class_logits(x), H.class_logits(xd, W, c, U, d))
        assert torch.equal(m.predict_proba(x), H.log_proba(xd, W, c, U, d).exp())
        assert torch.equal(m.predict(x), H.class_logits(xd, W, c, U, d).argmax(-1))
        assert torch.equal(m.hidden_probs(x, y), H.joint_hidden_probs(xd, y1h, W, c, U))
        assert torch.equal(m.hidden_probs(x, y1h), H.joint_hidden_probs(xd, y1h, W, c, U))
        assert torch.equal(m.marginal_hidden_probs(x), H.marginal_hidden_probs(xd, W, c, U, d))
        assert torch.equal(m.visible_mean(h), visible_probs(h, W, b))
        assert torch.equal(m.class_probs(h), H.class_probs(h, U, d))
        assert torch.equal(m.energy(xd, y, h), H.joint_energy(xd, y1h, h, W, b, c, U, d))
        assert torch.equal(m.free_energy(x, y), H.joint_free_energy(xd, y1h, W, b, c, U, d))
    assert m.log_proba(x).dtype == D


def test_init_visible_bias():
    m = ClassRBM(3, 2, 2, dtype=D)
    x = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert m.init_visible_bias_(x) is m
    p = torch.tensor([1 - 1e-3, 1e-3, 0.5], dtype=D)  # clipped to [eps, 1 - eps], eps 1e-3
    torch.testing.assert_close(m.b.detach(), torch.log(p / (1 - p)), rtol=1e-12, atol=1e-12)
    m.init_visible_bias_(x, eps=0.2)
    p = torch.tensor([0.8, 0.2, 0.5], dtype=D)
    torch.testing.assert_close(m.b.detach(), torch.log(p / (1 - p)), rtol=1e-12, atol=1e-12)
    ens = ClassRBM(3, 2, 2, members=2, dtype=D)
    ens.init_visible_bias_(x, eps=0.2)  # one data set, every member
    torch.testing.assert_close(ens.b.detach(), torch.log(p / (1 - p)).expand(2, 3))


def test_deep_hybrid_construction():
    model = DeepHybridRBM([4, 3, 2], 3, init_scale=0.5, dtype=D,
                          generator=torch.Generator().manual_seed(6))  # fmt: skip
    assert model.sizes == (4, 3, 2) and model.n_classes == 3 and len(model.layers) == 2
    g = torch.Generator().manual_seed(6)
    one = ClassRBM(4, 3, 3, init_scale=0.5, dtype=D, generator=g)
    two = ClassRBM(3, 2, 3, init_scale=0.5, dtype=D, generator=g)
    for layer, want in zip(model.layers, (one, two)):
        for a, b in zip(layer.params(), want.params()):
            assert torch.equal(a, b)
    assert DeepHybridRBM([2, 2], 2).layers[0].W.dtype == torch.get_default_dtype()
    for sizes in ([4], [], [4, 0], [4, 2.0], [0, 3]):
        with pytest.raises(ValueError) as err:
            DeepHybridRBM(sizes, 3)
        assert str(err.value) == (
            f"sizes={list(sizes)!r} is invalid: expected at least two positive ints "
            "[n_visible, n_hidden_1, ...]"
        )
    one = DeepHybridRBM((1, 1), 2)  # a tuple, the smallest sizes
    assert one.n_classes == 2 and one.sizes == (1, 1)  # one layer: n_classes of layer 0


def test_deep_hybrid_upward_and_combinations():
    model = DeepHybridRBM([3, 2, 2], 3, dtype=D)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=D))
    x = torch.bernoulli(torch.full((5, 3), 0.5), generator=g)  # float32: cast to float64
    lo, hi = model.layers
    with torch.no_grad():
        ups = model.upward(x)
        assert len(ups) == 2 and ups[0].dtype == D and torch.equal(ups[0], x.to(D))
        h1 = H.marginal_hidden_probs(x.to(D), lo.W, lo.c, lo.U, lo.d)
        assert torch.equal(ups[1], h1)
        lp0 = H.log_proba(x.to(D), lo.W, lo.c, lo.U, lo.d)
        lp1 = H.log_proba(h1, hi.W, hi.c, hi.U, hi.d)
        lps = model.layer_log_proba(x)
        assert len(lps) == 2 and torch.equal(lps[0], lp0) and torch.equal(lps[1], lp1)
        assert torch.equal(model.log_proba(x), lp1) and torch.equal(model(x), lp1)
        assert torch.equal(model.log_proba(x, "top"), lp1)
        mean = torch.log((lp0.exp() + lp1.exp()) / 2)
        torch.testing.assert_close(model.log_proba(x, "mean"), mean, rtol=1e-13, atol=1e-14)
        assert torch.equal(model.predict(x), lp1.argmax(-1))
        assert torch.equal(model.predict(x, "mean"), mean.argmax(-1))
        with pytest.raises(ValueError) as err:
            model.log_proba(x, "vote")
        assert str(err.value) == "combine='vote' is invalid: expected 'top' or 'mean'"
    single = DeepHybridRBM([3, 2], 3, dtype=D)
    with torch.no_grad():
        assert len(single.upward(x)) == 1
        torch.testing.assert_close(single.log_proba(x, "mean"), single.log_proba(x), rtol=1e-14,
                                   atol=1e-15)  # fmt: skip

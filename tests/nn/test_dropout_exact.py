"""Exact answers for dropout's three modes, MC dropout and the brute-force model average.

Written for the mutation score of ``smithing.nn.dropout`` (issue 15): outputs are compared with
the formulas evaluated on the same random draws, the model average with a float64 enumeration
written out here, and every message is matched in full.
"""

import itertools
import math

import pytest
import torch
from torch import nn

from smithing.nn.dropout import (
    Dropout,
    SubnetworkAverage,
    enumerate_subnetworks,
    make_dropout,
    mc_predict,
)

D = torch.float64


def _x(shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


# ---------------------------------------------------------------- Dropout
def test_defaults_keep_and_repr():
    d = Dropout()
    assert d.p == 0.5 and d.mode == "inverted" and d.keep == 0.5
    assert isinstance(Dropout(0).p, float)
    assert Dropout(0.25, "lecture").keep == 0.75
    assert repr(Dropout(0.3, "lecture")) == "Dropout(p=0.3, mode='lecture')"


@pytest.mark.parametrize("mode", ["lecture", "inverted"])
def test_training_output_is_the_formula_on_the_drawn_mask(mode):
    p, x = 0.3, _x((6, 7))
    d = Dropout(p, mode)
    torch.manual_seed(11)
    y = d(x)
    torch.manual_seed(11)
    m = (torch.rand_like(x) < 1 - p).to(D)  # m ~ Bernoulli(1 - p)
    expected = x * m if mode == "lecture" else x * m / (1 - p)
    assert torch.equal(y, expected)
    torch.manual_seed(11)
    mask = d.sample_mask(x)
    assert mask.dtype == D and torch.equal(mask, m)
    assert torch.equal(d.apply_mask(x, m), expected)


def test_gaussian_training_output_is_the_formula_on_the_drawn_noise():
    p, x = 0.2, _x((5, 4))
    d = Dropout(p, "gaussian")
    torch.manual_seed(3)
    y = d(x)
    torch.manual_seed(3)
    r = 1.0 + math.sqrt(p / (1 - p)) * torch.randn_like(x)  # r ~ N(1, p/(1-p))
    assert torch.allclose(y, x * r, rtol=1e-15, atol=0)
    d.eval()
    assert torch.equal(d(x), x)


def test_inference_outputs():
    x = _x((3, 4))
    assert torch.equal(Dropout(0.25, "lecture").eval()(x), 0.75 * x)
    assert torch.equal(Dropout(0.25, "inverted").eval()(x), x)


@pytest.mark.parametrize("mode", ["lecture", "inverted", "gaussian"])
def test_p_zero_is_the_identity_and_draws_nothing(mode):
    x = _x((3, 4))
    state = torch.get_rng_state()
    assert Dropout(0.0, mode)(x) is x
    assert torch.equal(torch.get_rng_state(), state)


def test_a_mask_is_not_for_gaussian_dropout():
    with pytest.raises(ValueError) as info:
        Dropout(0.5, "gaussian").apply_mask(torch.ones(2), torch.ones(2))
    assert (
        str(info.value) == "mode='gaussian' is invalid: expected 'lecture' or 'inverted' for a mask"
    )


def test_make_dropout():
    inv = make_dropout(0.2)  # "inverted" by default: PyTorch's module
    assert type(inv) is nn.Dropout and inv.p == 0.2
    lec = make_dropout(0.3, "lecture")
    assert type(lec) is Dropout and lec.p == 0.3 and lec.mode == "lecture"
    assert type(make_dropout(0.0)) is nn.Dropout


_P_MSG = "is invalid: expected a probability in [0, 1)"


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: Dropout(1.0), f"p=1.0 {_P_MSG}"),
        (lambda: Dropout(-0.1, "lecture"), f"p=-0.1 {_P_MSG}"),
        (lambda: Dropout("0.5"), f"p='0.5' {_P_MSG}"),
        (lambda: make_dropout(1.0), f"p=1.0 {_P_MSG}"),
        (lambda: make_dropout(-0.5, "inverted"), f"p=-0.5 {_P_MSG}"),
        (lambda: make_dropout("0.5"), f"p='0.5' {_P_MSG}"),
        (lambda: make_dropout(1.5, "gaussian"), f"p=1.5 {_P_MSG}"),
    ],
)
def test_invalid_probabilities(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_edge_probabilities_are_accepted():
    Dropout(0.0, "lecture"), make_dropout(0.0, "inverted"), Dropout(0.999), make_dropout(0.999)


# ---------------------------------------------------------------- MC dropout
def _mc_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), Dropout(0.5, "lecture"), nn.Linear(6, 3)).to(D)


def test_mc_predict_is_the_mean_of_the_softmax_samples():
    model, x = _mc_model(), _x((5, 4))
    samples = mc_predict(
        model, x, 7, generator=torch.Generator().manual_seed(1), return_samples=True
    )
    assert samples.shape == (7, 5, 3)
    assert torch.allclose(samples.sum(-1), torch.ones(7, 5, dtype=D), rtol=0, atol=1e-15)
    mean = mc_predict(model, x, 7, generator=torch.Generator().manual_seed(1))
    assert torch.equal(mean, samples.mean(dim=0))
    assert not torch.equal(samples[0], samples[1])  # a fresh mask per sample
    assert mc_predict(model, x, return_samples=True).shape == (100, 5, 3)  # default samples
    assert mc_predict(model, x, 1).shape == (5, 3)


def test_mc_predict_draws_from_the_global_rng_when_no_generator():
    model, x = _mc_model(), _x((5, 4))
    torch.manual_seed(4)
    a = mc_predict(model, x, 3, return_samples=True)
    torch.manual_seed(4)
    b = mc_predict(model, x, 3, return_samples=True)
    assert torch.equal(a, b)
    # by hand: each sample is the training-mode forward on the global RNG
    torch.manual_seed(4)
    with torch.no_grad():
        model.train()
        by_hand = torch.stack([torch.softmax(model(x), dim=-1) for _ in range(3)])
    assert torch.allclose(a, by_hand, rtol=0, atol=1e-15)


def test_mc_predict_keeps_only_dropout_stochastic_and_restores_training_mode():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(4).to(D)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, -1.0, 0.5, 0.0], dtype=D))
        bn.running_var.copy_(torch.tensor([4.0, 1.0, 0.25, 2.0], dtype=D))
    drop2d = nn.Dropout1d(0.0)  # a _DropoutNd: kept in training mode
    marked = nn.Identity()
    marked.stochastic = True  # anything that says it is stochastic
    model = nn.Sequential(bn, drop2d, marked, nn.Linear(4, 3)).to(D).train()
    x = _x((6, 4))
    probs = mc_predict(model, x, 2)
    with torch.no_grad():
        model.eval()
        expected = torch.softmax(model(x), dim=-1)  # batch norm on its running statistics
        model.train()
    assert torch.allclose(probs, expected, rtol=0, atol=1e-15)
    seen = {}

    def hook(m, args, out):
        seen[type(m).__name__] = m.training

    for m in (bn, drop2d, marked):
        m.register_forward_hook(hook)
    mc_predict(model, x, 1)
    assert seen == {"BatchNorm1d": False, "Dropout1d": True, "Identity": True}
    assert all(m.training for m in model.modules())  # restored: all in training mode again


@pytest.mark.parametrize("samples", [0, -1, 2.0])
def test_mc_predict_needs_a_positive_int(samples):
    with pytest.raises(ValueError) as info:
        mc_predict(_mc_model(), _x((2, 4)), samples)
    assert str(info.value) == f"samples={samples!r} is invalid: expected a positive int"


# ---------------------------------------------------------------- model averaging
def test_gaps_of_a_subnetwork_average():
    res = SubnetworkAverage(
        geometric_mean=torch.tensor([[0.2, 0.8], [0.5, 0.5]], dtype=D),
        arithmetic_mean=torch.tensor([[0.3, 0.7], [0.1, 0.9]], dtype=D),
        weight_scaled=torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=D),
        n_units=1,
        n_subnetworks=2,
    )
    assert res.gap == pytest.approx(0.05, abs=1e-15)
    assert res.arithmetic_gap == pytest.approx(0.4, abs=1e-15)


def _two_layer():
    torch.manual_seed(5)
    return nn.Sequential(
        Dropout(0.25, "lecture"), nn.Linear(2, 3), nn.Tanh(), nn.Dropout(0.4), nn.Linear(3, 2)
    ).to(D)


def _by_hand(model, x):
    """G and A by a float64 enumeration of the 2^5 keep-masks (2 lecture units, 3 inverted)."""
    lin1, lin2 = model[1], model[4]
    log_geo = torch.zeros(x.shape[0], 2, dtype=D)
    arith = torch.zeros(x.shape[0], 2, dtype=D)
    for bits in itertools.product([0.0, 1.0], repeat=5):
        m1, m2 = torch.tensor(bits[:2], dtype=D), torch.tensor(bits[2:], dtype=D)
        prob = math.prod(0.75 if b else 0.25 for b in bits[:2]) * math.prod(
            0.6 if b else 0.4 for b in bits[2:]
        )
        z = lin2(torch.tanh(lin1(x * m1)) * m2 / 0.6)  # lecture m*x, then inverted m*h/(1-p)
        log_geo += prob * torch.log_softmax(z, dim=-1)
        arith += prob * torch.softmax(z, dim=-1)
    scaled = torch.softmax(lin2(torch.tanh(lin1(0.75 * x))), dim=-1)  # inference forms
    return torch.softmax(log_geo, dim=-1), arith, scaled


@pytest.mark.parametrize("chunk", [1024, 5, 1])
def test_enumerate_subnetworks_equals_the_enumeration_by_hand(chunk):
    model, x = _two_layer(), _x((3, 2), seed=2)
    with torch.no_grad():
        geo, arith, scaled = _by_hand(model, x)
    model.train()
    res = enumerate_subnetworks(model, x, chunk=chunk)
    assert (res.n_units, res.n_subnetworks) == (5, 32)
    torch.testing.assert_close(res.geometric_mean, geo, rtol=0, atol=1e-14)
    torch.testing.assert_close(res.arithmetic_mean, arith, rtol=0, atol=1e-14)
    torch.testing.assert_close(res.weight_scaled, scaled, rtol=0, atol=1e-14)
    assert all(m.training for m in model.modules())  # modes restored
    # the hooks are removed afterwards: a training forward is random again
    torch.manual_seed(0)
    a = model(x)
    assert not torch.equal(a, model(x))


def test_enumerate_subnetworks_keeps_the_models_dtype_and_takes_max_units_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(3, 2))  # float32
    res = enumerate_subnetworks(model, torch.randn(2, 3), max_units=3)
    assert res.geometric_mean.dtype == torch.float32
    assert res.arithmetic_mean.dtype == torch.float32
    assert res.weight_scaled.dtype == torch.float32
    assert res.gap < 1e-6  # softmax layer fed directly: exact up to float32


def test_dropout_with_p_zero_is_not_a_unit():
    torch.manual_seed(0)
    model = nn.Sequential(
        Dropout(0.0, "lecture"), nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2)
    )
    assert enumerate_subnetworks(model.to(D), _x((2, 3))).n_units == 4


class _Noisy(nn.Module):
    stochastic = True

    def forward(self, x):
        return x


@pytest.mark.parametrize(
    "model,x,kwargs,message",
    [
        (
            nn.Sequential(nn.Linear(2, 2)),
            torch.ones(1, 2),
            {},
            "model='Sequential' is invalid: expected a model with dropout (p > 0)",
        ),
        (
            nn.Sequential(Dropout(0.0, "lecture"), nn.Dropout(0.0), nn.Linear(2, 2)),
            torch.ones(1, 2),
            {},
            "model='Sequential' is invalid: expected a model with dropout (p > 0)",
        ),
        (
            nn.Sequential(nn.Dropout(0.5), nn.Dropout1d(0.5), nn.Linear(2, 2)),
            torch.ones(1, 2),
            {},
            "module='Dropout1d' is invalid: expected only nn.Dropout or smithing Dropout as "
            "stochastic modules",
        ),
        (
            nn.Sequential(nn.Dropout(0.5), _Noisy(), nn.Linear(2, 2)),
            torch.ones(1, 2),
            {},
            "module='_Noisy' is invalid: expected only nn.Dropout or smithing Dropout as "
            "stochastic modules",
        ),
        (
            nn.Sequential(Dropout(0.5, "gaussian"), nn.Linear(2, 2)),
            torch.ones(1, 2),
            {},
            "mode='gaussian' is invalid: expected 'lecture' or 'inverted' dropout",
        ),
        (
            nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 2)),
            torch.ones(1, 2),
            {"chunk": 0},
            "chunk=0 is invalid: expected a positive int",
        ),
        (
            nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 2)),
            torch.ones(1, 2),
            {"chunk": 2.0},
            "chunk=2.0 is invalid: expected a positive int",
        ),
        (
            nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 2)),
            torch.ones(1, 3, 2),
            {},
            "dropout input=(1, 3, 2) is invalid: expected (batch, units)",
        ),
        (
            nn.Sequential(nn.Dropout(0.5), nn.Linear(17, 2)),
            torch.ones(1, 17),
            {},
            "max_units=16 is invalid: expected >= the 17 units subject to dropout",
        ),
        (
            nn.Sequential(nn.Dropout(0.5), nn.Linear(3, 2)),
            torch.ones(1, 3),
            {"max_units": 2},
            "max_units=2 is invalid: expected >= the 3 units subject to dropout",
        ),
    ],
)
def test_enumerate_subnetworks_invalid_inputs(model, x, kwargs, message):
    with pytest.raises(ValueError) as info:
        enumerate_subnetworks(model, x, **kwargs)
    assert str(info.value) == message


def test_three_dropout_modules_each_get_their_own_units():
    torch.manual_seed(6)
    model = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(2, 3), nn.Tanh(), Dropout(0.2, "lecture"), nn.Linear(3, 2),
        nn.Tanh(), nn.Dropout(0.3), nn.Linear(2, 2),
    ).to(D)  # fmt: skip
    x = _x((2, 2), seed=3)
    lin1, lin2, lin3 = model[1], model[4], model[7]
    arith = torch.zeros(2, 2, dtype=D)
    with torch.no_grad():
        for bits in itertools.product([0.0, 1.0], repeat=7):
            m1, m2, m3 = (torch.tensor(b, dtype=D) for b in (bits[:2], bits[2:5], bits[5:]))
            keep = [0.5] * 2 + [0.8] * 3 + [0.7] * 2
            prob = math.prod(k if b else 1 - k for k, b in zip(keep, bits, strict=True))
            h = torch.tanh(lin2(torch.tanh(lin1(x * m1 / 0.5)) * m2))
            arith += prob * torch.softmax(lin3(h * m3 / 0.7), dim=-1)
    res = enumerate_subnetworks(model, x)
    assert (res.n_units, res.n_subnetworks) == (7, 128)
    torch.testing.assert_close(res.arithmetic_mean, arith, rtol=0, atol=1e-14)


def test_a_float32_model_is_averaged_in_float64_whatever_the_chunk():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(10, 3), nn.Tanh(), nn.Linear(3, 3))
    x = torch.randn(4, 10)
    one = enumerate_subnetworks(model, x, chunk=1)  # 1024 accumulations
    all_at_once = enumerate_subnetworks(model, x, chunk=1024)  # one
    torch.testing.assert_close(one.arithmetic_mean, all_at_once.arithmetic_mean, rtol=0, atol=6e-8)
    torch.testing.assert_close(one.geometric_mean, all_at_once.geometric_mean, rtol=0, atol=6e-8)


def test_enumerate_subnetworks_runs_on_the_models_device():
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(3, 2)).to("meta")
    res = enumerate_subnetworks(model, torch.empty(2, 3, device="meta"))
    assert res.geometric_mean.device.type == "meta" and res.arithmetic_mean.device.type == "meta"
    assert res.n_units == 3


def test_mc_predict_with_a_generator_seeds_the_global_rng_from_it_and_restores_it():
    """The documented seeding: one draw ``randint(0, 2**62)`` from ``generator`` seeds the
    global RNG for the call (the masks are drawn in ``forward``), which is restored after."""
    model, x = _mc_model(), _x((5, 4))
    torch.manual_seed(9)
    before = torch.get_rng_state()
    got = mc_predict(model, x, 3, generator=torch.Generator().manual_seed(5), return_samples=True)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is untouched
    seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(5)).item())
    torch.manual_seed(seed)
    with torch.no_grad():
        model.train()
        by_hand = torch.stack([torch.softmax(model(x), dim=-1) for _ in range(3)])
    assert torch.equal(got, by_hand)

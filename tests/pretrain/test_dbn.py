"""Greedy stacks, DBNs, unrolling into an MLP."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from smithing.nn import MLP
from smithing.pretrain import stack as S
from smithing.pretrain.dbn import DBN, RBMPretrainer, train_dbn
from smithing.pretrain.rbm import BernoulliRBM, GaussianBernoulliRBM


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls gain nothing from threads, and oversubscribed cores stall them badly."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def binary_data(n=60, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, d), 0.3), generator=g)


def test_dbn_to_mlp_reproduces_upward_pass_exactly():
    g = torch.Generator().manual_seed(1)
    dbn = DBN([12, 8, 6, 5], init_std=0.5, generator=g, dtype=torch.float64)
    x = binary_data().double()
    hist = train_dbn(dbn, x, layers={"epochs": 2, "batch_size": 20, "lr": 0.1}, generator=g)
    assert len(hist) == 3 and all(len(h["epoch"]) == 2 for h in hist)
    mlp = dbn.to_mlp(10, generator=g)
    assert isinstance(mlp, MLP) and mlp.sizes == (12, 8, 6, 5, 10)
    ups = dbn.upward(x)
    acts = mlp.hidden_activations(x)
    for up, act in zip(ups, acts):
        torch.testing.assert_close(act, up, rtol=1e-14, atol=1e-15)  # float64 rounding
    for linear, rbm in zip(mlp.linears, dbn.rbms):  # explicit transpose: Linear is (out, in)
        torch.testing.assert_close(linear.weight, rbm.W.T, rtol=0, atol=0)
        torch.testing.assert_close(linear.bias, rbm.c, rtol=0, atol=0)
    assert mlp(x).shape == (60, 10)


def test_to_mlp_output_init_and_pretrained_weights():
    dbn = DBN([6, 4, 3], generator=torch.Generator().manual_seed(2))
    zeros = S.to_mlp(dbn, 5, output_init="zeros")
    assert (zeros.linears[-1].weight == 0).all() and (zeros.linears[-1].bias == 0).all()
    a = S.to_mlp(dbn, 5, generator=torch.Generator().manual_seed(3))
    b = S.to_mlp(dbn, 5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.linears[-1].weight, b.linears[-1].weight)
    assert a.linears[-1].weight.abs().max() <= 1 / 3**0.5  # nn.Linear's U(+-1/sqrt(fan_in))
    custom = S.to_mlp(dbn, 5, output_init=lambda lin, gen: nn.init.constant_(lin.weight, 0.5))
    assert (custom.linears[-1].weight == 0.5).all()
    weights = S.pretrained_weights(dbn)
    assert [w.shape for w, _ in weights] == [(4, 6), (3, 4)]
    weights[0][0].zero_()  # copies: the DBN is untouched
    assert dbn.rbms[0].W.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown output init 'zero'.*did you mean 'zeros'"):
        S.to_mlp(dbn, 5, output_init="zero")


def test_greedy_stack_feeds_codes_upward():
    x = binary_data(40, 10, seed=4)
    g = torch.Generator().manual_seed(5)
    seen = []

    class Spy(RBMPretrainer):
        def fit(self, inputs, *, valid=None, generator=None):
            seen.append(inputs.clone())
            return super().fit(inputs, valid=valid, generator=generator)

    layers = [
        Spy(BernoulliRBM(10, 7, generator=g), epochs=1, batch_size=10),
        Spy(BernoulliRBM(7, 5, generator=g), epochs=1, batch_size=10, method="pcd", k=3),
    ]
    assert all(isinstance(layer, S.LayerPretrainer) for layer in layers)
    st = S.greedy_stack(layers, x, valid_data=x[:8], generator=g)
    assert st.sizes == (10, 7, 5) and "free_energy_valid" in st.histories[1]
    torch.testing.assert_close(seen[1], layers[0].rbm.hidden_probs(x))  # probabilities
    st2 = S.greedy_stack(layers, x, propagate="samples", generator=g)
    assert set(seen[-1].unique().tolist()) <= {0.0, 1.0}  # binary samples
    mlp = S.to_mlp(st2, 3)
    torch.testing.assert_close(mlp.hidden_activations(x)[-1], st2.transform(x))
    with pytest.raises(ValueError, match="propagate='mean' is invalid"):
        S.greedy_stack(layers, x, propagate="mean")
    with pytest.raises(ValueError, match=r"pretrainers\[0\].n_in=10 is invalid"):
        S.greedy_stack(layers, x[:, :9])


def test_dbn_per_layer_settings_gaussian_bottom_and_sampling():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(50, 8, generator=g)
    dbn = DBN([8, 6, 4], visible="gaussian", generator=g)
    assert isinstance(dbn.rbms[0], GaussianBernoulliRBM)
    assert type(dbn.rbms[1]) is BernoulliRBM
    layers = [{"epochs": 1, "lr": 0.01}, {"epochs": 3, "method": "pcd", "k": 2}]
    hist = train_dbn(dbn, x, layers=layers, generator=g, propagate="samples")
    assert [len(h["epoch"]) for h in hist] == [1, 3]
    fresh = RBMPretrainer(GaussianBernoulliRBM(8, 3), epochs=0)
    fresh.fit(x)
    torch.testing.assert_close(fresh.rbm.b.detach(), x.mean(0))  # init_visible_bias
    mlp = dbn.to_mlp(2)
    torch.testing.assert_close(mlp.hidden_activations(x)[-1], dbn(x))
    imgs = dbn.sample(7, steps=5, image_shape=(2, 4), generator=g)
    assert imgs.shape == (7, 2, 4) and torch.isfinite(imgs).all()
    with pytest.raises(ValueError, match="layers='1 settings' is invalid: expected one per RBM"):
        train_dbn(dbn, x, layers=[{}])


def test_dbn_ensemble_sampling_and_member_unrolling():
    g = torch.Generator().manual_seed(7)
    dbn = DBN([12, 6, 4], members=2, generator=g)
    x = binary_data(40, 12, seed=8)
    train_dbn(dbn, x, layers={"epochs": 1, "batch_size": 10}, generator=g)
    assert dbn.upward(x)[-1].shape == (2, 40, 4)
    imgs = dbn.sample(3, steps=4, init=x[:3], generator=g, down="probs")
    assert imgs.shape == (2, 3, 12) and ((imgs >= 0) & (imgs <= 1)).all()
    mlp1 = dbn.to_mlp(3, member=1)
    torch.testing.assert_close(mlp1.hidden_activations(x)[-1], dbn.upward(x)[-1][1])
    assert S.pretrained_weights(dbn)[0][0].shape == (2, 6, 12)
    with pytest.raises(ValueError, match="member=None is invalid"):
        dbn.to_mlp(3)
    single = DBN([12, 5], generator=g)
    assert single.sample(2, steps=3, generator=g).shape == (2, 12)


def test_dbn_from_rbms_and_rbm_layer():
    from smithing.pretrain.dbn import rbm_layer

    sizes = [8, 5, 3]
    built = DBN(sizes, visible="gaussian", generator=torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    rbms = [rbm_layer(sizes, i, visible="gaussian", generator=g) for i in range(2)]
    assert isinstance(rbms[0], GaussianBernoulliRBM) and type(rbms[1]) is BernoulliRBM
    dbn = DBN.from_rbms(rbms)
    assert dbn.sizes == (8, 5, 3) and dbn.rbms[0] is rbms[0]  # no copies
    for a, b in zip(built.rbms, dbn.rbms):  # the same draws as the constructor's
        assert torch.equal(a.W, b.W)
    with pytest.raises(ValueError, match=r"rbms\[1\].n_visible=8 is invalid"):
        DBN.from_rbms([rbms[0], rbms[0]])


def test_layer_lists_are_plain_module_lists():
    # ModuleListOf only types the items for mypy: the module, its repr and state dict are
    # nn.ModuleList's
    from smithing.nn.containers import ModuleListOf

    assert ModuleListOf is nn.ModuleList
    dbn = DBN([6, 4, 3])
    assert type(dbn.rbms) is nn.ModuleList
    assert "(rbms): ModuleList(" in repr(dbn)
    assert list(dbn.state_dict()) == [f"rbms.{i}.{p}" for i in range(2) for p in "Wbc"]

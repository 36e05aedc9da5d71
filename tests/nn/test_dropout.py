import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from smithing.nn import MLP
from smithing.nn.dropout import Dropout, enumerate_subnetworks, make_dropout, mc_predict

D = torch.float64


def _x(shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


def test_lecture_and_inverted_relate_exactly_with_the_same_mask():
    x = _x((8, 10))
    p = 0.3
    lec, inv = Dropout(p, "lecture"), Dropout(p, "inverted")
    torch.manual_seed(5)
    y_lec = lec(x)
    torch.manual_seed(5)
    y_inv = inv(x)
    mask = (y_lec != 0).to(D)
    assert torch.equal(y_lec, x * mask)  # lecture: m * x
    assert torch.allclose(y_inv, x * mask / (1 - p), rtol=1e-15, atol=0)  # m * x / (1-p)
    assert torch.allclose(y_lec, (1 - p) * y_inv, rtol=1e-15, atol=0)
    lec.eval(), inv.eval()
    assert torch.equal(lec(x), (1 - p) * x) and torch.equal(inv(x), x)


@pytest.mark.parametrize("mode", ["lecture", "inverted", "gaussian"])
def test_training_mean_equals_inference_output_statistically(mode):
    p, n = 0.4, 200_000
    x = torch.tensor([1.0, -2.0, 0.5], dtype=D)
    layer = Dropout(p, mode)
    torch.manual_seed(0)
    y = layer(x.expand(n, 3))  # (n, 3) independent draws
    layer.eval()
    target = layer(x)
    se = y.std(dim=0) / n**0.5
    assert torch.all((y.mean(dim=0) - target).abs() < 4 * se)
    if mode != "lecture":  # inverted and gaussian noise: mean 1, variance p/(1-p)
        var = (y / x).var(dim=0)
        assert torch.allclose(var, torch.full_like(var, p / (1 - p)), rtol=0.02)


def test_lecture_mlp_equals_inverted_mlp_with_scaled_weights_at_inference():
    torch.manual_seed(0)
    p = 0.5
    lec = MLP(6, (7, 5), 3, "tanh", dropout=p, input_dropout=0.2, dropout_mode="lecture").to(D)
    inv = MLP(6, (7, 5), 3, "tanh", dropout=p, input_dropout=0.2, dropout_mode="inverted").to(D)
    inv.load_state_dict(lec.state_dict())
    with torch.no_grad():  # the papers: outgoing weights of dropped units times keep prob
        inv.linears[0].weight.mul_(1 - 0.2)
        for lin in inv.linears[1:]:
            lin.weight.mul_(1 - p)
    assert any(isinstance(m, Dropout) and m.mode == "lecture" for m in lec.modules())
    lec.eval(), inv.eval()
    x = _x((10, 6))
    assert torch.allclose(lec(x), inv(x), rtol=0, atol=1e-13)
    # in training too, with the same masks (smithing Dropout in both modes draws alike)
    for i, m in enumerate(inv.net):
        if isinstance(m, nn.Dropout):
            inv.net[i] = Dropout(m.p, "inverted")
    lec.train(), inv.train()
    torch.manual_seed(7)
    y_lec = lec(x)
    torch.manual_seed(7)
    assert torch.allclose(y_lec, inv(x), rtol=0, atol=1e-13)


def test_vmap_ensemble_different_masks_per_member():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(5, 16), Dropout(0.5, "lecture"), nn.Linear(16, 2))
    models = [copy.deepcopy(base) for _ in range(3)]  # identical members
    params, buffers = stack_module_state(models)
    x = torch.randn(4, 5)

    def f(pa, bu, xx):
        return functional_call(base, (pa, bu), (xx,))

    out = vmap(f, in_dims=(0, 0, None), randomness="different")(params, buffers, x)
    assert out.shape == (3, 4, 2)
    assert not torch.allclose(out[0], out[1])
    same = vmap(f, in_dims=(0, 0, None), randomness="same")(params, buffers, x)
    assert torch.allclose(same[0], same[1]) and torch.allclose(same[1], same[2])


def test_softmax_layer_geometric_mean_is_exactly_weight_scaled():
    for p, mode in [(0.5, "lecture"), (0.3, "lecture"), (0.5, "inverted")]:
        torch.manual_seed(0)
        model = nn.Sequential(Dropout(p, mode), nn.Linear(8, 4)).to(D)
        res = enumerate_subnetworks(model, _x((5, 8)))
        assert res.n_subnetworks == 2**8
        assert res.gap < 1e-13
        assert torch.allclose(res.geometric_mean.sum(-1), torch.ones(5, dtype=D))
        assert res.arithmetic_gap > 1e-4  # the mixture is a different average
    # dropout on the last hidden layer of an MLP (nn.Dropout, inverted) feeds the softmax: exact
    torch.manual_seed(1)
    mlp = MLP(4, (10,), 3, "relu", dropout=0.5).to(D)
    res = enumerate_subnetworks(mlp, _x((6, 4)))
    assert res.n_units == 10 and res.gap < 1e-13


def test_hidden_layer_after_dropout_is_only_approximate():
    torch.manual_seed(2)
    mlp = MLP(8, (6,), 3, "tanh", input_dropout=0.5, dropout_mode="lecture").to(D)
    with torch.no_grad():
        for lin in mlp.linears:
            lin.weight.mul_(3)  # strong nonlinearity
    res = enumerate_subnetworks(mlp, _x((6, 8)))
    assert 1e-4 < res.gap < 0.5
    assert res.n_units == 8


def test_mc_predict_converges_to_exact_expectation_and_restores_modes():
    torch.manual_seed(3)
    mlp = MLP(4, (8,), 3, "relu", dropout=0.5).to(D)
    mlp.eval()
    x = _x((5, 4))
    exact = enumerate_subnetworks(mlp, x).arithmetic_mean  # E[softmax] over all masks
    g = torch.Generator().manual_seed(0)
    state = torch.get_rng_state()
    probs = mc_predict(mlp, x, samples=4000, generator=g)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    assert torch.allclose(probs, exact, atol=0.01)
    assert not mlp.training and not any(m.training for m in mlp.modules())
    again = mc_predict(mlp, x, samples=10, generator=torch.Generator().manual_seed(0))
    first = mc_predict(mlp, x, samples=10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, first)
    assert mc_predict(mlp, x, samples=3, return_samples=True).shape == (3, 5, 3)


def test_make_dropout_and_validation():
    assert isinstance(make_dropout(0.2, "inverted"), nn.Dropout)
    assert make_dropout(0.2, "gaussian").mode == "gaussian"
    with pytest.raises(ValueError, match=r"unknown dropout mode 'lectur'.*did you mean 'lecture'"):
        make_dropout(0.5, "lectur")
    with pytest.raises(ValueError, match=r"p=1.0 is invalid: expected a probability in \[0, 1\)"):
        Dropout(1.0, "lecture")
    with pytest.raises(ValueError, match=r"mode='gaussian' is invalid"):
        enumerate_subnetworks(
            nn.Sequential(Dropout(0.5, "gaussian"), nn.Linear(2, 2)), torch.ones(1, 2)
        )
    with pytest.raises(ValueError, match=r"max_units=4 is invalid: expected >= the 8 units"):
        enumerate_subnetworks(
            nn.Sequential(nn.Dropout(0.5), nn.Linear(8, 2)), torch.ones(1, 8), max_units=4
        )
    x = torch.ones(3)
    assert torch.equal(Dropout(0.0, "lecture")(x), x)

"""Autoencoders, denoising corruption, contractive penalty, stacked DAEs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from smithing.nn import MLP
from smithing.pretrain import stack as S
from smithing.pretrain.autoencoder import (
    CORRUPTIONS,
    DAEPretrainer,
    DenoisingAutoencoder,
    StackedDAE,
    contractive_penalty,
    corrupt,
    corrupt_with_mask,
    dae_loss,
    reconstruction_loss,
    train_autoencoder,
    train_sda,
)
from tensortools import gen


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls gain nothing from threads, and oversubscribed cores stall them badly."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def data(n=40, d=12, seed=0, dtype=torch.float32):
    return torch.rand((n, d), generator=gen(seed), dtype=dtype)


# ------------------------------------------------------------------ corruption


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.7])
def test_masking_rate_and_mask(rate):
    x = torch.ones(400, 500)
    xt, mask = corrupt_with_mask(x, "masking", rate, gen(1))
    frac = (xt == 0).float().mean().item()
    assert abs(frac - rate) < 4 * (rate * (1 - rate) / x.numel()) ** 0.5 + 1e-4
    assert torch.equal(mask, xt == 0)
    assert (xt[~mask] == 1).all() and torch.equal(x, torch.ones(400, 500))  # input untouched


@pytest.mark.parametrize("rate", [0.05, 0.25, 0.5])
def test_salt_and_pepper_rate(rate):
    x = torch.full((400, 500), 0.5)
    xt, mask = corrupt_with_mask(x, "salt_and_pepper", rate, gen(2))
    changed = xt != 0.5
    assert torch.equal(changed, mask)
    frac = changed.float().mean().item()
    assert abs(frac - rate) < 4 * (rate * (1 - rate) / x.numel()) ** 0.5
    salt = (xt[changed] == 1).float().mean().item()  # min or max with probability 1/2 each
    assert abs(salt - 0.5) < 4 * (0.25 / changed.sum().item()) ** 0.5
    assert set(xt[changed].unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("std", [0.1, 0.5])
def test_gaussian_rate_is_the_std(std):
    x = torch.rand((400, 500), generator=gen(3))
    xt, mask = corrupt_with_mask(x, "gaussian", std, gen(4))
    noise = (xt - x).double()
    assert abs(noise.mean().item()) < 4 * std / x.numel() ** 0.5
    assert abs(noise.std().item() / std - 1) < 0.01
    assert mask.all()


def test_corrupt_reproducible_none_and_errors():
    x = data()
    assert torch.equal(corrupt(x, "masking", 0.3, gen(5)), corrupt(x, "masking", 0.3, gen(5)))
    assert torch.equal(corrupt(x, "none", 0.0, gen(5)), x)
    assert torch.equal(corrupt(x, "masking", 0.0, gen(5)), x)
    assert set(CORRUPTIONS.names()) == {"none", "masking", "gaussian", "salt_and_pepper"}
    with pytest.raises(ValueError, match=r"rate=1\.5 is invalid: expected a probability"):
        corrupt(x, "masking", 1.5)
    with pytest.raises(ValueError, match=r"rate=-0\.1 is invalid: expected a standard deviation"):
        corrupt(x, "gaussian", -0.1)
    with pytest.raises(ValueError, match=r"unknown corruption 'maskin'.*did you mean 'masking'"):
        corrupt(x, "maskin", 0.1)


def test_corrupt_without_generator_works_under_vmap():
    x = torch.ones(3, 8, 50)  # (members, batch, d)
    out = torch.func.vmap(lambda v: corrupt(v, "masking", 0.5), randomness="different")(x)
    assert out.shape == x.shape and not torch.equal(out[0], out[1])


# ------------------------------------------------------------------ losses and gradients


def test_cross_entropy_and_squared_error_match_torch():
    g = gen(6)
    x = torch.rand((7, 5), generator=g, dtype=torch.float64)
    a = torch.randn((7, 5), generator=g, dtype=torch.float64) * 3
    ce = F.binary_cross_entropy(torch.sigmoid(a), x, reduction="none").sum(-1).mean()
    torch.testing.assert_close(reconstruction_loss(x, a, "cross_entropy", "sigmoid"), ce)
    se = F.mse_loss(a, x, reduction="none").sum(-1).mean()
    torch.testing.assert_close(reconstruction_loss(x, a, "squared_error", "linear"), se)
    w = torch.rand((7, 5), generator=g, dtype=torch.float64)
    expected = (w * (torch.sigmoid(a) - x) ** 2).sum(-1).mean()
    torch.testing.assert_close(reconstruction_loss(x, a, "squared_error", "sigmoid", w), expected)
    with pytest.raises(ValueError, match=r"decoder='linear' is invalid: expected 'sigmoid' for"):
        reconstruction_loss(x, a, "cross_entropy", "linear")


@pytest.mark.parametrize(
    "loss,decoder,activation",
    [("cross_entropy", "sigmoid", "sigmoid"), ("squared_error", "linear", "tanh")],
)
def test_tied_gradient_is_sum_of_untied_encoder_and_decoder_gradients(loss, decoder, activation):
    g = gen(7)
    x = torch.rand((9, 6), generator=g, dtype=torch.float64)
    xt = corrupt(x, "masking", 0.3, g)
    W = torch.randn((4, 6), generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    c = torch.randn(6, generator=g, dtype=torch.float64, requires_grad=True)
    weights = torch.where(xt == 0, 2.0, 0.5).double()
    kw = {"activation": activation, "decoder": decoder, "loss": loss, "weights": weights}
    (gW,) = torch.autograd.grad(dae_loss(x, xt, W, b, c, **kw), W)
    W_enc = W.detach().clone().requires_grad_(True)
    W_dec = W.detach().T.clone().requires_grad_(True)  # constrained equal: W_dec = W_enc^T
    g_enc, g_dec = torch.autograd.grad(dae_loss(x, xt, W_enc, b, c, W_dec, **kw), (W_enc, W_dec))
    torch.testing.assert_close(gW, g_enc + g_dec.T, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_contractive_penalty_equals_autograd_jacobian(activation):
    g = gen(8)
    x = torch.rand((5, 6), generator=g, dtype=torch.float64)
    W = torch.randn((4, 6), generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    f = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    expected = torch.stack(
        [torch.autograd.functional.jacobian(lambda v: f(W @ v + b), xi).pow(2).sum() for xi in x]
    ).mean()
    a = x @ W.T + b
    torch.testing.assert_close(contractive_penalty(f(a), W, activation, a), expected)
    # inside the objective, at the clean input, times lambda
    base = dae_loss(
        x,
        x,
        W,
        b,
        torch.zeros(6, dtype=torch.float64),
        activation=activation,
        decoder="linear",
        loss="squared_error",
    )
    with_pen = dae_loss(
        x,
        x,
        W,
        b,
        torch.zeros(6, dtype=torch.float64),
        activation=activation,
        decoder="linear",
        loss="squared_error",
        contractive=0.3,
    )
    torch.testing.assert_close(with_pen - base, 0.3 * expected)


def test_members_axis_equals_a_loop_over_members():
    g = gen(9)
    x = torch.rand((3, 8, 6), generator=g, dtype=torch.float64)
    W = torch.randn((3, 4, 6), generator=g, dtype=torch.float64)
    b, c = torch.randn((3, 4), generator=g).double(), torch.randn((3, 6), generator=g).double()
    out = dae_loss(x, x, W, b, c, contractive=0.1)
    assert out.shape == (3,)
    for m in range(3):
        torch.testing.assert_close(out[m], dae_loss(x[m], x[m], W[m], b[m], c[m], contractive=0.1))
    shared = dae_loss(x[0], x[0], W, b, c)  # members-free data broadcast to every member
    torch.testing.assert_close(shared[1], dae_loss(x[0], x[0], W[1], b[1], c[1]))


# ------------------------------------------------------------------ module and training


def test_module_init_layout_and_validation():
    dae = DenoisingAutoencoder(12, 5, generator=gen(10))
    bound = 4 * (6 / 17) ** 0.5
    assert dae.W.shape == (5, 12) and dae.W.abs().max() <= bound and dae.W_dec is None
    assert (dae.b == 0).all() and (dae.c == 0).all()
    untied = DenoisingAutoencoder(12, 5, tied=False, activation="tanh", loss="squared_error")
    assert untied.decoder == "linear" and untied.W_dec.shape == (12, 5)
    assert untied.W.abs().max() <= (6 / 17) ** 0.5
    ens = DenoisingAutoencoder(12, 5, members=3)
    assert ens.W.shape == (3, 5, 12) and ens(data()).shape == (3, 40, 12)
    with pytest.raises(ValueError, match=r"activation='softsign' is invalid: expected one of"):
        DenoisingAutoencoder(12, 5, activation="softsign")
    with pytest.raises(ValueError, match=r"decoder='linear' is invalid"):
        DenoisingAutoencoder(12, 5, loss="cross_entropy", decoder="linear")
    with pytest.raises(ValueError, match=r"data\.shape=\(40, 7\) is invalid: expected \(n, 12\)"):
        train_autoencoder(dae, data(d=7), epochs=1)


def test_training_lowers_clean_reconstruction_loss_and_is_reproducible():
    x = (data(n=120, d=16, seed=11) > 0.5).float()

    def run():
        dae = DenoisingAutoencoder(16, 8, generator=gen(12))
        hist = train_autoencoder(
            dae, x, epochs=8, lr=0.2, rate=0.2, generator=gen(13), valid_data=x[:30]
        )
        return dae, hist

    dae, hist = run()
    assert set(hist.keys()) == {"epoch", "lr", "loss", "recon_loss", "recon_loss_valid", "seconds"}
    assert hist["recon_loss"][-1] < hist["recon_loss"][0]
    torch.testing.assert_close(torch.tensor(hist["recon_loss"][-1]), dae.loss(x).detach())
    dae2, _ = run()
    assert torch.equal(dae.W, dae2.W)  # same generators, same result (bitwise on CPU)


def test_emphasis_one_one_is_plain_loss_and_ensemble_trains():
    x = data(n=60, d=10, seed=14)
    a = DenoisingAutoencoder(10, 6, generator=gen(15))
    b = DenoisingAutoencoder(10, 6, generator=gen(15))
    train_autoencoder(a, x, epochs=2, rate=0.3, generator=gen(16))
    train_autoencoder(b, x, epochs=2, rate=0.3, emphasis=(1.0, 1.0), generator=gen(16))
    torch.testing.assert_close(a.W, b.W)
    ens = DenoisingAutoencoder(10, 6, members=2, generator=gen(17))
    hist = train_autoencoder(ens, x, epochs=3, rate=0.2, contractive=0.1, generator=gen(18))
    assert len(hist["recon_loss"][-1]) == 2 and ens.W.shape == (2, 6, 10)


# ------------------------------------------------------------------ stacks


def test_greedy_stacking_trains_each_layer_on_the_codes_below():
    x = data(n=50, d=12, seed=19)
    settings = [{"epochs": 2, "rate": 0.1}, {"epochs": 2, "rate": 0.2}, {"epochs": 2, "rate": 0.3}]
    sda = StackedDAE([12, 8, 6, 4], generator=gen(20))
    seen = []

    class Spy(DAEPretrainer):
        def fit(self, x, **kw):
            seen.append(x.clone())
            return super().fit(x, **kw)

    S.greedy_stack([Spy(d, **s) for d, s in zip(sda.daes, settings)], x, generator=gen(21))
    codes = sda.upward(x)
    assert torch.equal(seen[0], x)
    for i in (1, 2):
        torch.testing.assert_close(seen[i], codes[i - 1], rtol=0, atol=0)
    # by hand: each layer alone on the previous layer's clean codes, same generator stream
    ref = StackedDAE([12, 8, 6, 4], generator=gen(20))
    g, inp = gen(21), x
    for dae, s in zip(ref.daes, settings):
        train_autoencoder(dae, inp, generator=g, **s)
        inp = dae.encode(inp).detach()
    for d1, d2 in zip(sda.daes, ref.daes):
        assert torch.equal(d1.W, d2.W)
    hist = train_sda(StackedDAE([12, 8, 4], generator=gen(20)), x, layers={"epochs": 1})
    assert len(hist) == 2 and len(hist[1]["epoch"]) == 1


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_to_mlp_reproduces_the_encoder_stack_exactly(activation):
    x = data(n=30, d=12, seed=22, dtype=torch.float64)
    loss = "cross_entropy" if activation == "sigmoid" else "squared_error"
    sda = StackedDAE(
        [12, 8, 6], activation=activation, loss=loss, generator=gen(23), dtype=torch.float64
    )
    train_sda(sda, x, layers={"epochs": 1, "rate": 0.2}, generator=gen(24))
    mlp = sda.to_mlp(10, generator=gen(25))
    assert isinstance(mlp, MLP) and mlp.sizes == (12, 8, 6, 10) and mlp.activation == activation
    for act, up in zip(mlp.hidden_activations(x), sda.upward(x)):
        torch.testing.assert_close(act, up, rtol=0, atol=0)
    for linear, dae in zip(mlp.linears, sda.daes):
        assert torch.equal(linear.weight, dae.W) and torch.equal(linear.bias, dae.b)


def test_dbn_and_sda_interchangeable():
    x = (data(n=40, d=10, seed=26) > 0.5).float()
    for kind in ("dbn", "sda"):
        stack = S.pretrain_stack(S.StackSpec(kind, [10, 6, 4], {"epochs": 1}), x, generator=gen(27))
        for model in (stack, stack.module):
            weights = S.pretrained_weights(model)
            assert [tuple(w.shape) for w, _ in weights] == [(6, 10), (4, 6)]
            mlp = S.to_mlp(model, 3)
            for act, up in zip(mlp.hidden_activations(x), model.upward(x)):
                torch.testing.assert_close(act, up)


def test_dae_layer_upper_layers_reconstruct_codes():
    from smithing.pretrain.autoencoder import dae_layer

    sizes = [10, 6, 4]
    bottom = dae_layer(sizes, 0, activation="tanh", loss="cross_entropy", generator=gen(30))
    upper = dae_layer(sizes, 1, activation="tanh", loss="cross_entropy", generator=gen(30))
    assert (bottom.loss_name, upper.loss_name) == ("cross_entropy", "squared_error")
    assert upper.decoder == "linear" and (upper.n_visible, upper.n_hidden) == (6, 4)
    sda = StackedDAE.from_layers([bottom, upper])
    assert sda.sizes == (10, 6, 4) and sda.activation == "tanh"
    with pytest.raises(ValueError, match=r"daes\[1\].n_visible=6 is invalid"):
        StackedDAE.from_layers([upper, upper])


def test_cuda_generator_draws_on_its_device():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    g = torch.Generator(device="cuda").manual_seed(31)
    dae = DenoisingAutoencoder(10, 6, generator=g, device="cuda")
    assert dae.W.device.type == "cuda"

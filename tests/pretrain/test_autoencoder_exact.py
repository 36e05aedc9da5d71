"""Exact answers for the denoising autoencoder's functions (pretrain/autoencoder/functional.py):
defaults, the rate's boundaries per corruption, ReLU's derivative at 0, and a table of invalid
inputs with their full messages (the mutants mutation testing left alive)."""

from __future__ import annotations

import pytest
import torch

from smithing.pretrain.autoencoder.functional import (
    contractive_penalty,
    corrupt,
    corrupt_with_mask,
    reconstruction_loss,
)
from tensortools import gen

X = torch.rand(6, 5, generator=gen(1), dtype=torch.float64)


def test_the_defaults_are_masking_at_a_quarter_cross_entropy_and_sigmoid():
    assert torch.equal(corrupt(X, generator=gen()), corrupt(X, "masking", 0.25, generator=gen()))
    a, b = corrupt_with_mask(X, generator=gen()), corrupt_with_mask(X, "masking", 0.25, gen())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    logits = torch.randn(6, 5, generator=gen(2), dtype=torch.float64)
    assert torch.equal(
        reconstruction_loss(X, logits), reconstruction_loss(X, logits, "cross_entropy", "sigmoid")
    )
    h, W = torch.sigmoid(logits[:, :3]), torch.randn(3, 5, generator=gen(3), dtype=torch.float64)
    assert torch.equal(contractive_penalty(h, W), contractive_penalty(h, W, "sigmoid"))


def test_each_corruption_accepts_the_ends_of_its_rate_range():
    x_tilde, mask = corrupt_with_mask(X, "gaussian", 0.0, gen())  # std 0: the clean input
    assert torch.equal(x_tilde, X) and bool(mask.all())
    x_tilde, mask = corrupt_with_mask(X, "masking", 1.0, gen())  # every component destroyed
    assert torch.equal(x_tilde, torch.zeros_like(X)) and bool(mask.all())
    x_tilde, mask = corrupt_with_mask(X, "salt_and_pepper", 0.0, gen())
    assert torch.equal(x_tilde, X) and not bool(mask.any())
    x_tilde, mask = corrupt_with_mask(X, "salt_and_pepper", 1.0, gen())
    assert bool(((x_tilde == 0) | (x_tilde == 1)).all()) and bool(mask.all())
    x_tilde, mask = corrupt_with_mask(X, "none", 7.0, gen())  # no corruption: the rate unused
    assert torch.equal(x_tilde, X) and not bool(mask.any())


def test_relu_codes_have_zero_slope_at_zero_pre_activation():
    # J_f = diag(s'(a)) W with s'(0) = 0 for ReLU: a unit exactly at 0 contributes nothing
    W = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    a = torch.tensor([[0.0, 1.5]], dtype=torch.float64)
    h = torch.relu(a)
    assert float(contractive_penalty(h, W, "relu", a)) == 3.0**2 + 4.0**2


SD, PROB = "expected a standard deviation >= 0", "expected a probability in [0, 1]"
INVALID = [
    (lambda: corrupt(X, "gaussian", -0.1), f"rate=-0.1 is invalid: {SD}"),
    (lambda: corrupt(X, "gaussian", float("nan")), f"rate=nan is invalid: {SD}"),
    (lambda: corrupt(X, "masking", 1.5), f"rate=1.5 is invalid: {PROB}"),
    (lambda: corrupt(X, "salt_and_pepper", -0.5), f"rate=-0.5 is invalid: {PROB}"),
    (
        lambda: reconstruction_loss(X, X, "l3"),
        "loss='l3' is invalid: expected one of ('cross_entropy', 'squared_error')",
    ),
    (
        lambda: reconstruction_loss(X, X, "squared_error", "tanhh"),
        "decoder='tanhh' is invalid: expected one of ('sigmoid', 'linear')",
    ),
    (
        lambda: reconstruction_loss(X, X, "cross_entropy", "linear"),
        "decoder='linear' is invalid: expected 'sigmoid' for the cross-entropy loss",
    ),
    (  # the names, not the table of functions (which the message used to print)
        lambda: contractive_penalty(X[:, :3], X[:3], "softsign"),
        "activation='softsign' is invalid: expected one of ('sigmoid', 'tanh', 'relu')",
    ),
]


@pytest.mark.parametrize("call, message", INVALID)
def test_invalid_inputs_are_refused_with_their_exact_message(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


@pytest.mark.parametrize("kind", ["none", "masking", "gaussian", "salt_and_pepper"])
def test_every_corruption_returns_a_boolean_mask_and_needs_no_generator(kind):
    torch.manual_seed(0)
    x_tilde, mask = corrupt_with_mask(X, kind, 0.3)  # the global generator
    assert mask.dtype == torch.bool and mask.shape == X.shape and x_tilde.shape == X.shape
    assert x_tilde.dtype == X.dtype
    torch.manual_seed(0)
    again, _ = corrupt_with_mask(X, kind, 0.3)
    assert torch.equal(x_tilde, again)  # the same global draws, the same corruption

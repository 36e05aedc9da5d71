"""Defining properties of the dropout tricks not pinned elsewhere, each checked so that
breaking it fails.

Each test's docstring names the one-line source mutation it was verified to catch.
"""

from __future__ import annotations

import torch

from smithing.nn import MLP
from smithing.nn.dropout import enumerate_subnetworks, mc_predict

D = torch.float64


def test_mc_dropout_averages_the_probabilities_of_sampled_thinned_networks():
    """MC dropout (Gal & Ghahramani 2016): the mean of softmax over dropout masks drawn at
    prediction time, i.e. the arithmetic mean over all 2^H thinned networks, which on this
    network is far from the weight-scaled (eval-mode) prediction.

    Catches: ``_modes(model, _is_stochastic)`` -> ``_modes(model, lambda m: False)`` in
    ``mc_predict`` (dropout off: the eval prediction), and averaging the logits before the
    softmax (``softmax(mean logits)``: again the weight-scaled prediction).
    """
    torch.manual_seed(0)
    mlp = MLP(3, (6,), 3, "relu", dropout=0.5).to(D)
    with torch.no_grad():
        for p in mlp.parameters():
            p.mul_(4.0)
    mlp.eval()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=D)
    avg = enumerate_subnetworks(mlp, x)
    exact = avg.arithmetic_mean
    assert (avg.weight_scaled - exact).abs().max() > 0.1  # the two predictions differ here
    mc = mc_predict(mlp, x, samples=3000, generator=torch.Generator().manual_seed(2))
    assert (mc - exact).abs().max() < 0.03
    draws = mc_predict(mlp, x, samples=4, generator=torch.Generator().manual_seed(3),
                       return_samples=True)  # fmt: skip
    assert not torch.allclose(draws[0], draws[1])  # a fresh mask per sample
    assert not mlp.training

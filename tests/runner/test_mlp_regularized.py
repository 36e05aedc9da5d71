"""Regularized runs: the batched ensemble with per-member strengths equals separate runs."""

import pytest
import torch

from smithing.experiment.mlp import MLPConfig, train_group, train_one


@pytest.mark.parametrize(
    "field,values",
    [("l2", [0.0, 1.0, 5.0]), ("l1", [0.0, 0.5, 2.0]), ("max_norm", [None, 1.0, 0.5])],
)
def test_per_member_regularization_equals_alone(field, values):
    cfgs = [
        MLPConfig(
            hidden=(16,), epochs=2, n_train=300, seed=i, lr=0.05, optimizer="momentum", **{field: v}
        )
        for i, v in enumerate(values)
    ]
    group = train_group(cfgs)
    for c, (model, h) in zip(cfgs, group):
        m1, h1 = train_one(c)
        for p, q in zip(m1.parameters(), model.parameters()):
            torch.testing.assert_close(p, q, atol=3e-5, rtol=1e-4)
        assert h1.final["valid_loss"] == pytest.approx(h.final["valid_loss"], rel=1e-4)


def test_max_norm_holds_after_training():
    model, _ = train_one(MLPConfig(hidden=(16,), epochs=1, n_train=200, max_norm=0.3, lr=0.5))
    for lin in model.linears:
        assert (lin.weight.norm(dim=1) <= 0.3 + 1e-5).all()  # incoming vectors = rows


def test_penalty_weight_zero_equals_none():
    a, _ = train_one(MLPConfig(hidden=(8,), epochs=1, n_train=100))
    b, _ = train_one(MLPConfig(hidden=(8,), epochs=1, n_train=100, l2=0.0, l1=0.0))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)

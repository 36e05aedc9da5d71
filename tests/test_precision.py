"""--precision fp32 | tf32 | bf16 (smithing.precision): fp32 is bitwise what it was, tf32 is a
no-op on CPU, bf16 changes the numbers (autocast really runs) but stays within the tolerance
the docs state, for fit, fit_ensemble and train_rbm; a bad value names the choices."""

import pytest
import torch

from smithing.data import DataUnavailableError, load
from smithing.nn import MLP
from smithing.precision import (
    autocast,
    check_precision,
    current_precision,
    matmul_precision,
    use_precision,
)
from smithing.pretrain import BernoulliRBM, train_rbm
from smithing.train import fit, seed_everything
from smithing.train.ensemble import fit_ensemble

#: the tolerance smithing.precision's docstring and the README state for bf16 against fp32
LOSS_TOL, ERROR_TOL = 0.01, 0.005


def _mnist(n):
    try:
        return load("mnist").subset(n)
    except DataUnavailableError:
        pytest.skip("MNIST files not available (set SMITHING_DATA_DIR)")


def _fit(data, precision, **kw):
    seed_everything(0)
    model = MLP(data.n_inputs, [500], data.n_classes, "relu")
    hist = fit(
        model,
        data,
        epochs=3,
        lr=0.05,
        optimizer="momentum",
        batch_size=32,
        seed=0,
        **kw,
        precision=precision,
    )
    return model, hist


@pytest.fixture(scope="module")
def runs():
    data = _mnist(5000)  # the run of docs/RESULTS.md, "Precision"
    return data, {p: _fit(data, p) for p in ("fp32", "tf32", "bf16")}


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_fp32_is_the_default_and_unchanged_bitwise(runs):
    data, by_mode = runs
    default_model, default_hist = _fit(data, None)  # no precision given: as before
    model, hist = by_mode["fp32"]
    assert _same(default_model, model)
    assert default_hist.epochs[-1]["train_loss"] == hist.epochs[-1]["train_loss"]
    with use_precision("fp32"):
        assert current_precision() == "fp32"


def test_tf32_is_a_no_op_on_cpu(runs):
    _, by_mode = runs
    assert _same(by_mode["tf32"][0], by_mode["fp32"][0])


def test_bf16_changes_the_numbers_within_the_stated_tolerance(runs):
    _, by_mode = runs
    (m32, h32), (m16, h16) = by_mode["fp32"], by_mode["bf16"]
    assert not _same(m16, m32)  # autocast really ran
    assert all(p.dtype == torch.float32 for p in m16.parameters())  # fp32 master weights
    d_loss = abs(h16.epochs[-1]["train_loss"] - h32.epochs[-1]["train_loss"])
    d_err = abs(h16.final["test_error"] - h32.final["test_error"])
    assert d_loss < LOSS_TOL and d_err < ERROR_TOL, (d_loss, d_err)


def test_the_precision_in_force_reaches_fit(runs):
    data, by_mode = runs
    with use_precision("bf16"):
        model, _ = _fit(data, None)
    assert _same(model, by_mode["bf16"][0])


def test_fit_ensemble_bf16_close_to_fp32():
    data = _mnist(2000)

    def train(precision):
        seeds = [0, 1]
        models = []
        for s in seeds:
            seed_everything(s)
            models.append(MLP(data.n_inputs, [100], data.n_classes, "relu"))
        hs = fit_ensemble(
            models,
            data,
            seeds=seeds,
            lrs=[0.05, 0.05],
            epochs=2,
            batch_size=32,
            optimizer="momentum",
            precision=precision,
        )
        return models, hs

    m32, h32 = train("fp32")
    m16, h16 = train("bf16")
    for a, b, ha, hb in zip(m32, m16, h32, h16):
        assert not _same(a, b)
        assert abs(ha.epochs[-1]["train_loss"] - hb.epochs[-1]["train_loss"]) < LOSS_TOL
        assert abs(ha.final["test_error"] - hb.final["test_error"]) < 2 * ERROR_TOL


def test_train_rbm_bf16_close_to_fp32():
    data = _mnist(2000).train.x.reshape(2000, -1)

    def train(precision):
        rbm = BernoulliRBM(784, 100, generator=torch.Generator().manual_seed(0))
        h = train_rbm(
            rbm, data, epochs=2, generator=torch.Generator().manual_seed(1), precision=precision
        )
        return rbm, h

    r32, h32 = train("fp32")
    r16, h16 = train("bf16")
    assert r16.W.dtype == torch.float32 and not torch.equal(r16.W, r32.W)
    assert abs(h16["recon_error"][-1] - h32["recon_error"][-1]) < 0.002
    r_default, _ = train(None)
    assert torch.equal(r_default.W, r32.W)


def test_bad_precision_names_the_choices():
    with pytest.raises(ValueError, match=r"precision='fp16' is invalid: expected one of .*bf16"):
        check_precision("fp16")
    data = load("digits").subset(64)
    with pytest.raises(ValueError, match="fp32, tf32"):
        fit(MLP(64, [8], 10), data, epochs=1, precision="half")
    with pytest.raises(ValueError, match="precision"), use_precision("float16"):
        pass


def test_contexts_restore_what_they_change():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())
    with matmul_precision("tf32"):
        assert torch.backends.cuda.matmul.allow_tf32
        assert torch.get_float32_matmul_precision() == "high"
    assert (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()) == before
    with autocast("bf16", "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32

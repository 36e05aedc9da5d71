"""The compiled training step (smithing.compiled, compile=True) equals the eager step.

On CPU: with the ``aot_eager`` backend (AOTAutograd traces forward and backward, torch's own
kernels run) the parameters after 5 SGD steps are bitwise the eager ones; with inductor (fused
C++ kernels, float sums reordered) they agree to relative 1e-5. Dropout draws the eager masks
(``fallback_random``). On CUDA (``-m gpu``): inductor with CUDA graphs, to 1e-4."""

import pytest
import torch
from torch._dynamo.utils import counters

from smithing.compiled import compile_backend, current_compile, use_compile
from smithing.data import load
from smithing.nn import MLP
from smithing.pretrain import BernoulliRBM, train_rbm
from smithing.train import fit, seed_everything
from smithing.train.ensemble import fit_ensemble

INDUCTOR_RTOL = 1e-5  # the tolerance tests and docs state for inductor on CPU


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _fit(compile, device="cpu", dropout=0.2):
    data = load("digits").subset(160)  # 5 batches of 32
    seed_everything(0)
    model = MLP(64, [32, 32], 10, "relu", dropout=dropout).to(device)
    hist = fit(
        model,
        data,
        epochs=1,
        lr=0.1,
        optimizer="momentum",
        batch_size=32,
        seed=0,
        device=device,
        compile=compile,
        final_eval=False,
    )
    return _params(model), hist


@pytest.fixture
def aot_eager(monkeypatch):
    monkeypatch.setenv("SMITHING_COMPILE_BACKEND", "aot_eager")
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_fit_compiled_aot_eager_is_bitwise_eager(aot_eager):
    assert compile_backend("cpu") == "aot_eager"
    eager, h0 = _fit(False)
    counters.clear()
    compiled, h1 = _fit(True)
    assert counters["stats"]["unique_graphs"] >= 1  # the step really went through dynamo
    assert all(torch.equal(a, b) for a, b in zip(eager, compiled))
    assert h0.epochs[-1]["train_loss"] == h1.epochs[-1]["train_loss"]


def test_fit_compiled_inductor_equals_eager():
    pytest.importorskip("torch._inductor")
    torch._dynamo.reset()
    eager, _ = _fit(False)
    compiled, _ = _fit(True)
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(b, a, rtol=INDUCTOR_RTOL, atol=1e-6)
    assert not all(torch.equal(a, b) for a, b in zip(eager, _fit(False, dropout=0.0)[0]))


def test_the_switch_in_force_reaches_the_trainers(aot_eager):
    assert current_compile() is False
    with use_compile(True):
        assert current_compile() is True
        compiled, _ = _fit(None)
    assert current_compile() is False
    eager, _ = _fit(False)
    assert all(torch.equal(a, b) for a, b in zip(eager, compiled))
    with pytest.raises(ValueError, match="compile"):
        _fit("yes")


def test_fit_ensemble_compiled_equals_eager(aot_eager):
    data = load("digits").subset(160)

    def train(compile):
        models = []
        for s in (0, 1):
            seed_everything(s)
            models.append(MLP(64, [32], 10, "relu"))
        fit_ensemble(
            models,
            data,
            seeds=[0, 1],
            lrs=[0.05, 0.1],
            epochs=1,
            batch_size=32,
            optimizer="momentum",
            compile=compile,
            final_eval=False,
        )
        return [p for m in models for p in _params(m)]

    eager, compiled = train(False), train(True)
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)


def test_train_rbm_compiled_equals_eager(aot_eager):
    data = load("digits").subset(200).train.x.reshape(200, -1)

    def train(compile):
        rbm = BernoulliRBM(64, 16, generator=torch.Generator().manual_seed(0))
        train_rbm(
            rbm,
            data,
            epochs=1,
            batch_size=20,
            generator=torch.Generator().manual_seed(1),
            compile=compile,
        )
        return rbm

    eager = train(False)
    counters.clear()
    compiled = train(True)
    assert counters["stats"]["unique_graphs"] >= 1
    for name in ("W", "b", "c"):
        assert torch.equal(getattr(eager, name), getattr(compiled, name)), name


@pytest.mark.gpu
def test_fit_cuda_graphs_equal_eager_on_cuda():
    torch._dynamo.reset()
    eager, _ = _fit(False, device="cuda", dropout=0.0)
    compiled, h = _fit(True, device="cuda", dropout=0.0)
    assert h.status == "done"
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_ensemble_and_rbm_compile_on_cuda():
    torch._dynamo.reset()
    data = load("digits", device="cuda").subset(160)
    models = []
    for s in (0, 1):
        seed_everything(s)
        models.append(MLP(64, [32], 10, "relu").cuda())
    hs = fit_ensemble(
        models, data, seeds=[0, 1], lrs=[0.05, 0.1], epochs=2, batch_size=32, compile=True
    )
    assert all(h.status == "done" for h in hs)
    rbm = BernoulliRBM(64, 16, generator=torch.Generator().manual_seed(0), device="cuda")
    g = torch.Generator(device="cuda").manual_seed(1)
    hist = train_rbm(rbm, data.train.x, epochs=1, batch_size=20, generator=g, compile=True)
    assert torch.isfinite(torch.tensor(hist["recon_error"])).all()

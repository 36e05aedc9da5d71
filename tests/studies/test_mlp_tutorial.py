"""The ``mlp-tutorial`` study and reproduction: the Theano tutorial's MLP (code/mlp.py).

The tutorial's patience loop, its cost and its initialization are transcribed here by hand and
compared with the library pieces the study uses (EarlyStopping with ``iterations_per_epoch``,
Penalty, init), and the ``paper`` scale is compared with test_mlp's numbers."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from torch.nn import functional as F

import smithing.studies  # noqa: F401  (registers the studies and their reproductions)
from smithing.data.base import Dataset, Split
from smithing.experiment import REPRODUCTIONS
from smithing.studies import mlp_tutorial as mt
from smithing.train import EarlyStopping, fit

# ---------------------------------------------------------------- the tutorial, by hand

#: test_mlp's arguments and constants in code/mlp.py (lisa-lab/DeepLearningTutorials 11c4651)
TEST_MLP = {
    "learning_rate": 0.01,
    "L1_reg": 0.00,
    "L2_reg": 0.0001,
    "n_epochs": 1000,
    "batch_size": 20,
    "n_hidden": 500,
    "patience": 10000,
    "patience_increase": 2,
    "improvement_threshold": 0.995,
}


def tutorial_loop(scores, n_train_batches, n_epochs, patience, patience_increase, threshold):
    """test_mlp's training loop with ``validate_model`` replaced by the next of ``scores``.

    Returns the epochs whose validation ran, the best epoch and ``best_iter + 1``."""
    scores = iter(scores)
    validation_frequency = min(n_train_batches, patience // 2)
    best_validation_loss, best_iter = math.inf, 0
    validated, best_epoch = [], None
    epoch, done_looping = 0, False
    while (epoch < n_epochs) and (not done_looping):
        epoch = epoch + 1
        for minibatch_index in range(n_train_batches):
            it = (epoch - 1) * n_train_batches + minibatch_index
            if (it + 1) % validation_frequency == 0:
                this_validation_loss = next(scores)
                validated.append(epoch)
                if this_validation_loss < best_validation_loss:
                    if this_validation_loss < best_validation_loss * threshold:
                        patience = max(patience, it * patience_increase)
                    best_validation_loss = this_validation_loss
                    best_iter, best_epoch = it, epoch
            if patience <= it:
                done_looping = True
                break
    return validated, best_epoch, best_iter + 1


def library_loop(scores, n_train_batches, n_epochs, patience, patience_increase, threshold):
    """What fit does with the study's EarlyStopping: one update per epoch end."""
    es = EarlyStopping(
        monitor="valid_error",
        patience=patience,
        improvement_threshold=threshold,
        patience_increase=patience_increase,
        iterations_per_epoch=n_train_batches,
    )
    validated = []
    for epoch in range(1, n_epochs + 1):
        validated.append(epoch)
        _, stop = es.update(epoch, scores[epoch - 1])
        if stop:
            break
    return validated, es.best_epoch, es.best_epoch * n_train_batches


def _scores(rng: random.Random, n: int) -> list[float]:
    # validation error rates on 10,000 examples: falling, noisy, with plateaus and ties
    e, out = rng.uniform(0.05, 0.2), []
    for _ in range(n):
        e = max(0.0, e * rng.choice([0.9, 0.97, 0.995, 0.999, 1.0, 1.0, 1.01, 1.05]))
        out.append(round(e, 4))
    return out


@pytest.mark.parametrize(
    "n_batches, patience, increase, threshold",
    [
        (2500, 10000, 2, 0.995),  # the tutorial's MNIST numbers
        (50, 200, 2, 0.995),  # the quick scale
        (1, 2, 2, 0.995),
        (3, 7, 2, 0.995),
        (7, 20, 1.5, 0.99),
        (10, 45, 3, 1.0),
    ],
)
def test_patience_rule_is_the_tutorials_loop(n_batches, patience, increase, threshold):
    rng = random.Random(n_batches * 1000 + patience)
    for trial in range(60 if n_batches <= 50 else 6):
        n_epochs = rng.choice([1, 3, 10, 40, 120])
        scores = _scores(rng, n_epochs)
        args = (n_batches, n_epochs, patience, increase, threshold)
        assert library_loop(scores, *args) == tutorial_loop(scores, *args), (trial, scores)


def test_patience_rule_on_a_worked_sequence():
    # 2500 updates an epoch, patience 10000 (4 epochs): the last significant improvement, at
    # epoch 10, sets the budget to 2 * 24999 = 49998 updates, so the last validation is epoch
    # 19's (update 47499); epoch 20's (update 49999) is beyond the budget. Epoch 11 improves
    # by less than 0.5 %: it is the best epoch but does not extend the budget
    scores = [0.10 - 0.005 * e for e in range(10)] + [0.0549] * 30
    args = (2500, 40, 10000, 2, 0.995)
    validated, best, best_iter = library_loop(scores, *args)
    assert (validated[-1], best, best_iter) == (19, 11, 27500)
    assert tutorial_loop(scores, *args) == (validated, best, best_iter)
    # the epoch form of the rule (no iterations_per_epoch) runs one epoch more
    es = EarlyStopping(patience=4, improvement_threshold=0.995)
    stops = [e for e, s in enumerate(scores, start=1) if es.update(e, s)[1]]
    assert stops[0] == 20


def test_patience_rule_state_round_trips_and_validates():
    a = EarlyStopping(patience=6, improvement_threshold=0.995, iterations_per_epoch=3)
    b = EarlyStopping(patience=6, improvement_threshold=0.995, iterations_per_epoch=3)
    scores = [0.5, 0.4, 0.3, 0.3, 0.31, 0.29, 0.29, 0.3, 0.3, 0.3, 0.3, 0.3]
    for e, s in enumerate(scores[:4], start=1):
        a.update(e, s)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    for e, s in enumerate(scores[4:], start=5):
        assert a.update(e, s) == b.update(e, s)
    with pytest.raises(ValueError, match="iterations_per_epoch"):
        EarlyStopping(patience=10, iterations_per_epoch=2)  # needs improvement_threshold
    with pytest.raises(ValueError, match="iterations_per_epoch"):
        EarlyStopping(patience=10, improvement_threshold=0.995, iterations_per_epoch=0)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=9, improvement_threshold=0.995, iterations_per_epoch=5)


# ---------------------------------------------------------------- model, cost, updates


def test_initialization_is_the_tutorials():
    m = mt.build_model(784, 500, 10, "tanh", seed=3)
    hidden, output = m.linears
    bound = math.sqrt(6.0 / (784 + 500))
    w = hidden.weight.detach().double()
    assert w.shape == (500, 784) and float(w.abs().max()) <= bound
    assert float(w.abs().max()) > 0.999 * bound
    assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.01)  # U(-b, b)
    for t in (hidden.bias, output.weight, output.bias):
        assert torch.count_nonzero(t) == 0
    sig = mt.build_model(784, 500, 10, "sigmoid", seed=3).linears[0].weight
    assert torch.equal(sig, 4 * hidden.weight)  # same draw, x4 for sigmoid
    assert torch.equal(mt.build_model(784, 500, 10, "tanh", seed=3).linears[0].weight,
                       hidden.weight)  # fmt: skip
    h = m.hidden_activations(torch.rand(2, 784))
    assert len(h) == 1 and h[0].shape == (2, 500)
    assert torch.allclose(m(torch.ones(1, 784)), torch.zeros(1, 10))  # W2 = 0, b2 = 0


def test_penalty_is_l2_reg_times_the_sum_of_squared_weights():
    torch.manual_seed(0)
    m = mt.build_model(12, 7, 3, "tanh", seed=0)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_()
    pen = mt.penalty(0.0, 1e-4)
    w1, w2 = (lin.weight.detach() for lin in m.linears)
    expected = 1e-4 * (w1.double().square().sum() + w2.double().square().sum())  # L2_sqr
    value = pen.penalty(m)
    assert float(value.detach()) == pytest.approx(float(expected), rel=1e-6)
    value.backward()
    for lin in m.linears:
        torch.testing.assert_close(lin.weight.grad, 2e-4 * lin.weight.detach())  # 2 lam W
        assert lin.bias.grad is None  # biases are not penalized
    m.zero_grad()
    l1 = mt.penalty(0.001, 0.0).penalty(m)
    assert float(l1.detach()) == pytest.approx(
        0.001 * float(w1.abs().sum() + w2.abs().sum()), rel=1e-6
    )
    assert mt.penalty(0.0, 0.0) is None


def _tiny(n=40, d=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    split = Split(x, y)
    return Dataset("tiny", split, split, split, n_classes=k, input_shape=(d,))


def test_one_epoch_is_the_tutorials_updates_in_order():
    """Two updates of batch 20, in stored order: W <- W - lr d(NLL + l2_reg sum W^2)/dW."""
    data = _tiny()
    model = mt.build_model(6, 5, 3, "tanh", seed=1)
    ref = mt.build_model(6, 5, 3, "tanh", seed=1)
    seen = []

    def nll(out, y):
        seen.append(y.clone())
        return F.cross_entropy(out, y)

    fit(model, data, epochs=1, lr=0.01, batch_size=20, optimizer="sgd", shuffle=False,
        regularizer=mt.penalty(0.0, 1e-4), loss=nll, final_eval=False)  # fmt: skip
    torch.testing.assert_close(torch.cat(seen[:2]), data.train.y)  # the stored order
    params = list(ref.parameters())
    for i in range(2):
        xb, yb = data.train.x[20 * i : 20 * (i + 1)], data.train.y[20 * i : 20 * (i + 1)]
        w1, w2 = ref.linears[0].weight, ref.linears[1].weight
        cost = F.cross_entropy(ref(xb), yb) + 1e-4 * ((w1**2).sum() + (w2**2).sum())
        grads = torch.autograd.grad(cost, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= 0.01 * g
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b)


def test_shuffle_false_keeps_the_order_in_every_epoch():
    data = _tiny(n=30)
    seen = []

    def nll(out, y):
        if len(y) <= 7:  # the training batches (evaluation passes the whole split)
            seen.append(y.clone())
        return F.cross_entropy(out, y)

    model = mt.build_model(6, 4, 3, "tanh", seed=0)
    fit(model, data, epochs=2, lr=0.01, batch_size=7, shuffle=False, loss=nll, final_eval=False)
    assert len(seen) == 10  # 5 batches (the last of 2) per epoch
    for epoch in range(2):
        torch.testing.assert_close(torch.cat(seen[5 * epoch : 5 * (epoch + 1)]), data.train.y)


# ---------------------------------------------------------------- the study's configuration


def test_paper_scale_is_test_mlps_recipe():
    (v,) = mt.variants("paper")
    cfg = v.config
    assert v.kind == "mlp-tutorial"
    ours = {
        "learning_rate": cfg["lr"],
        "L1_reg": cfg["l1_reg"],
        "L2_reg": cfg["l2_reg"],
        "n_epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"],
        "n_hidden": cfg["hidden"],
        "patience": cfg["patience"],
        "patience_increase": cfg["patience_increase"],
        "improvement_threshold": cfg["improvement_threshold"],
    }
    assert ours == TEST_MLP
    assert cfg["activation"] == "tanh" and cfg["shuffle"] is False
    assert cfg["dataset"] == "mnist" and cfg["n_train"] is None  # all 50,000
    rep = REPRODUCTIONS.get("mlp-tutorial")
    assert (rep.study, rep.scale, rep.variants, rep.metric) == (
        "mlp-tutorial", "paper", ("tutorial",), "test_error")  # fmt: skip
    assert (rep.published, rep.target, rep.seeds) == (1.65, ("<=", 1.75), 3)
    (expected,) = rep.expected_configs().values()
    assert {k: expected[k] for k in cfg} == {**cfg, "dataset": "mnist"}
    # 50,000 / 20 = 2,500 updates an epoch: the patience of 10,000 is 4 epochs, and the
    # tutorial validates once an epoch (validation_frequency = min(2500, 10000 // 2))
    assert min(50_000 // 20, cfg["patience"] // 2) == 50_000 // 20


def test_validate_rejects_bad_configurations():
    mt.validate(mt.BASE["quick"])
    with pytest.raises(ValueError, match="configuration keys"):
        mt.validate({**mt.BASE["quick"], "momentum": 0.9})
    with pytest.raises(ValueError, match="n_train"):
        mt.validate({**mt.BASE["quick"], "n_train": 1001})
    with pytest.raises(ValueError, match="patience"):
        mt.validate({**mt.BASE["quick"], "patience": 99})
    with pytest.raises(ValueError, match="activation"):
        mt.validate({**mt.BASE["quick"], "activation": "relu"})


def test_reproduction_is_listed(capsys):
    from smithing.cli import main

    assert main(["reproduce"]) == 0
    out = capsys.readouterr().out
    assert "mlp-tutorial" in out and "1.65 %" in out and "<= 1.75 %" in out
    assert main(["reproduce", "--json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)["reproductions"]}
    assert listed["mlp-tutorial"]["published"] == 1.65


# ---------------------------------------------------------------- end to end


def test_study_smoke(tmp_path):
    from smithing.experiment.store import Store
    from studytools import run_study

    run_study("mlp-tutorial", seeds=2, out=str(tmp_path), quiet=True, overrides={"epochs": 3})
    with Store(tmp_path) as st:
        res = st.results("mlp-tutorial")
    runs = res.of(mt.VARIANT)
    assert len(runs) == 2 and all(r.status == "done" for r in runs)
    for r in runs:
        assert 0 <= r.final["test_error"] < 0.9
        assert r.extra["updates_per_epoch"] == 50 and r.extra["epochs_run"] == 3
        assert r.extra["best_iteration"] == 50 * r.extra["best_epoch"]
    assert runs[0].final != runs[1].final  # seeds differ (in the initial weights)
    pages = [p.name for p in tmp_path.rglob("*.html")]
    assert "index.html" in pages and "curves.png" in [p.name for p in tmp_path.rglob("*.png")]


class Killed(BaseException):
    """Not an Exception: the runner does not turn it into a failed run (like Ctrl-C)."""


def _stored(out):
    from smithing.experiment.store import Store

    with Store(out) as store:
        res = store.results("mlp-tutorial")
    return {
        r.seed: (r.status, r.final, r.extra, [{k: v for k, v in e.items() if k != "seconds"}
                                              for e in r.epochs])
        for r in res.runs
    }  # fmt: skip


def test_killed_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    """Killed after its second checkpoint (mid-run), the same command continues from it and
    stores what an uninterrupted run stores."""
    from smithing.checkpoint import Checkpointer
    from smithing.runner import run_study

    kw = dict(seeds=1, quiet=True, overrides={"epochs": 4}, checkpoint_interval=0)
    run_study("mlp-tutorial", out=str(tmp_path / "ref"), **kw)
    save, load = Checkpointer.save, Checkpointer.load
    saves, loaded = [], []

    def dying_save(self, state):
        dt = save(self, state)
        saves.append(state["epoch"])
        if len(saves) == 2:
            raise Killed
        return dt

    def spying_load(self):
        state = load(self)
        if state is not None:
            loaded.append((state["epoch"], state["finished"]))
        return state

    out = str(tmp_path / "killed")
    monkeypatch.setattr(Checkpointer, "save", dying_save)
    with pytest.raises(Killed):
        run_study("mlp-tutorial", out=out, **kw)
    monkeypatch.setattr(Checkpointer, "save", save)
    monkeypatch.setattr(Checkpointer, "load", spying_load)
    run_study("mlp-tutorial", out=out, **kw)
    assert loaded == [(3, False)]  # resumed at the start of epoch 3
    assert _stored(out) == _stored(tmp_path / "ref")

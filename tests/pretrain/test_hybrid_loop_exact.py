"""The hybrid loop (:func:`smithing.pretrain.hybrid.loop.train_layers`) step for step against a
float64 transcription of its documented update, for one ClassRBM and a two-layer deep hybrid:

    g = w_disc g_disc + w_gen g_gen + beta g_unlabeled - weight_decay (W, U)
    theta += lr g                      (the delta form, momentum 0)

with PCD's persistent (x, y) chain started from random labeled examples (and carried up the
stack through E[h | x]), continued by the generative term and then by the unlabeled term,
from step to step. The functional gradients are tested against their own references
(test_hybrid_exact.py); here it is how the loop combines them that is checked. Also: the
checkpoint's signature and parts, the streams' device, the edges of the labeled / unlabeled
sizes and the early-stopping monitors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer, read_checkpoint
from smithing.pretrain.hybrid import ClassRBM, DeepHybridRBM, train_class_rbm, train_deep_hybrid
from smithing.pretrain.hybrid.functional import (
    OBJECTIVES,
    discriminative_gradient,
    generative_gradient,
    marginal_hidden_probs,
    unlabeled_gradient,
)
from smithing.pretrain.hybrid.loop import chunked

D = torch.float64
NAMES = ("W", "b", "c", "U", "d")


def data(seed=0, n=6, nv=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((n, nv), 0.5, dtype=D), generator=g)
    return x, torch.arange(n) % 3


def reference(params, x, y, xu, *, steps, batch, ubatch, lr, objective, alpha, beta, wd, k,
              method, n_chains, negative_visible="sample", positive="sample", seed=2):  # fmt: skip
    """The loop's update written out: ``params`` is a list of [W, b, c, U, d] per layer."""
    params = [[t.detach().clone() for t in p] for p in params]
    g = torch.Generator().manual_seed(seed)
    order = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=g)))
    n, C = len(x), params[0][3].shape[0]
    bufs = {"lab": torch.empty(0, dtype=torch.long), "unl": torch.empty(0, dtype=torch.long)}

    def take(name, size, total):
        while bufs[name].numel() < size:
            bufs[name] = torch.cat([bufs[name], torch.randperm(total, generator=order)])
        out, bufs[name] = bufs[name][:size], bufs[name][size:]
        return out

    chains = [None] * len(params)
    if method == "pcd":
        idx = torch.randint(n, (n_chains,), generator=g)
        v, yc = x[idx], F.one_hot(y[idx], C).to(D)
        for i, (W, _b, c, U, d) in enumerate(params):
            chains[i] = (v.clone(), yc.clone())
            v = marginal_hidden_probs(v, W, c, U, d)
    w_disc, w_gen = OBJECTIVES[objective](alpha)
    kw = {"k": k, "negative_visible": negative_visible, "generator": g}
    for _ in range(steps):
        li = take("lab", min(batch, n), n)
        inp, yb = x[li], y[li]
        inp_u = None if xu is None else xu[take("unl", min(ubatch, len(xu)), len(xu))]
        grads = []
        for i, (W, b, c, U, d) in enumerate(params):
            gd = discriminative_gradient(inp, yb, W, c, U, d)
            grad = {nm: w_disc * gd[nm] for nm in NAMES}
            if objective != "discriminative":
                gg, state = generative_gradient(inp, yb, W, b, c, U, d, chains=chains[i], **kw)
                chains[i] = state if method == "pcd" else None
                grad = {nm: grad[nm] + w_gen * gg[nm] for nm in NAMES}
            if inp_u is not None:
                gu, state = unlabeled_gradient(inp_u, W, b, c, U, d, positive=positive,
                                               chains=chains[i], **kw)  # fmt: skip
                chains[i] = state if method == "pcd" else None
                grad = {nm: grad[nm] + beta * gu[nm] for nm in NAMES}
            grad["W"] = grad["W"] - wd * W
            grad["U"] = grad["U"] - wd * U
            grads.append(grad)
            inp = marginal_hidden_probs(inp, W, c, U, d)  # the next layer's input, before updates
            inp_u = None if inp_u is None else marginal_hidden_probs(inp_u, W, c, U, d)
        params = [[t + lr * grad[nm] for t, nm in zip(p, NAMES)] for p, grad in zip(params, grads)]
    return params


CASES = {
    "hybrid-semi-pcd-decay": dict(objective="hybrid", alpha=0.3, beta=0.5, wd=0.05, k=2,
                                  method="pcd", n_chains=4),
    "generative-semi-cd": dict(objective="generative", alpha=0.0, beta=0.7, wd=0.0, k=1,
                               method="cd", n_chains=None),
    "discriminative-decay": dict(objective="discriminative", alpha=0.0, beta=0.0, wd=0.1, k=1,
                                 method="cd", n_chains=None),
    # a generative term run at weight 0 would draw from the generator: the unlabeled term moves
    "discriminative-semi": dict(objective="discriminative", alpha=0.0, beta=0.4, wd=0.0, k=1,
                                method="cd", n_chains=None),
    "hybrid-semi-pcd-means": dict(objective="hybrid", alpha=0.5, beta=0.2, wd=0.0, k=1,
                                  method="pcd", n_chains=3, negative_visible="mean",
                                  positive="expected"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("deep", [False, True], ids=["class-rbm", "deep"])
def test_the_loop_against_its_transcription(name, deep):
    case = CASES[name]
    x, y = data()
    xu = None if case["beta"] == 0 else data(seed=9, n=5)[0]
    g = torch.Generator().manual_seed(1)
    if deep:
        model = DeepHybridRBM([4, 3, 2], 3, init_scale=0.5, dtype=D, generator=g)
        layers = list(model.layers)
    else:
        model = ClassRBM(4, 3, 3, init_scale=0.5, dtype=D, generator=g)
        layers = [model]
    want = reference([list(layer.params()) for layer in layers], x, y, xu, steps=3, batch=3,
                     ubatch=2, lr=0.1, **case)  # fmt: skip
    fn = train_deep_hybrid if deep else train_class_rbm
    opts = {"x_unlabeled": xu} if xu is not None else {}
    opts |= {"n_chains": case["n_chains"]} if case["n_chains"] else {}
    h = fn(model, x, y, epochs=1, batch_size=3, unlabeled_batch_size=2, steps_per_epoch=3,
           lr=0.1, objective=case["objective"], alpha=case["alpha"], beta=case["beta"],
           weight_decay=case["wd"], k=case["k"], method=case["method"],
           negative_visible=case.get("negative_visible", "sample"),
           unlabeled_positive=case.get("positive", "sample"),
           generator=torch.Generator().manual_seed(2), **opts)  # fmt: skip
    assert h.config["steps_per_epoch"] == 3
    for layer, ref in zip(layers, want):
        for t, r, nm in zip(layer.params(), ref, NAMES):
            torch.testing.assert_close(t.detach(), r, rtol=1e-12, atol=1e-13, msg=nm)


def test_the_checkpoint_signature_and_parts(tmp_path):
    x, y = data()
    xu = data(seed=9, n=5)[0]
    ck = Checkpointer(tmp_path / "h.ckpt", min_interval_s=0)
    m = ClassRBM(4, 3, 3, init_scale=0.5, dtype=D, generator=torch.Generator().manual_seed(1))
    train_class_rbm(m, x, y, x_unlabeled=xu, valid=(x[:4], y[:4]), epochs=1, batch_size=3,
                    method="pcd", n_chains=2, optimizer="adam", optimizer_options={"eps": 1e-6},
                    early_stopping=EarlyStopping("valid_error", patience=3), checkpoint=ck,
                    generator=torch.Generator().manual_seed(2))  # fmt: skip
    state = read_checkpoint(ck.path)
    sig = state["signature"]
    assert set(sig) == {"training", "parameters", "data", "steps_per_epoch", "generator",
                        "optimizer", "optimizer_options", "early_stopping"}  # fmt: skip
    assert sig["training"]["method"] == "pcd" and sig["training"]["lr"] == 0.05
    assert sig["parameters"] == [["0.W", [4, 3]], ["0.b", [4]], ["0.c", [3]], ["0.U", [3, 3]],
                                 ["0.d", [3]]]  # fmt: skip
    assert sig["data"] == [6, 5, 4] and sig["steps_per_epoch"] == 2
    assert (sig["generator"], sig["optimizer"], sig["optimizer_options"]) == (
        True, "adam", "{'eps': 1e-06}")  # fmt: skip
    assert sig["early_stopping"] == "valid_error"
    assert set(state) == {"trainer", "signature", "epoch", "step", "finished", "elapsed",
                          "loss_sum", "layers", "optimizer", "order", "streams", "chains",
                          "generator", "history", "best", "early_stopping", "rng"}  # fmt: skip
    assert state["trainer"] == "train_class_rbm" and len(state["layers"]) == 1
    v, yc = state["chains"][0]
    assert v.shape == (2, 4) and yc.shape == (2, 3)
    ck = Checkpointer(tmp_path / "i.ckpt", min_interval_s=0)
    m = ClassRBM(4, 3, 3, dtype=D)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    train_class_rbm(m, x, y, epochs=1, optimizer=opt, checkpoint=ck)
    sig = read_checkpoint(ck.path)["signature"]
    assert sig["data"] == [6, 0, None] and sig["optimizer"] == "SGD"
    assert (sig["generator"], sig["optimizer_options"], sig["early_stopping"]) == (
        False,
        "{}",
        None,
    )


def test_an_unfinished_run_resumes_its_chains_streams_and_best_state(tmp_path):
    """A run stopped by a callback after epoch 2 of 4 and run again continues bitwise."""
    x, y = data(n=7)
    xu = data(seed=9, n=5)[0]
    kw = dict(x_unlabeled=xu, valid=(x[:4], y[:4]), epochs=4, batch_size=3, method="pcd",
              n_chains=2, objective="hybrid", beta=0.3)  # fmt: skip

    def fresh():
        return ClassRBM(4, 3, 3, init_scale=0.5, dtype=D,
                        generator=torch.Generator().manual_seed(1))  # fmt: skip

    whole = fresh()
    hw = train_class_rbm(whole, x, y, generator=torch.Generator().manual_seed(2), **kw)
    ck = Checkpointer(tmp_path / "r.ckpt", min_interval_s=0, save_final=False)
    part = fresh()
    g = torch.Generator().manual_seed(2)
    train_class_rbm(part, x, y, generator=g, checkpoint=ck, callbacks=[lambda e, r, m: e == 2],
                    **kw)  # fmt: skip
    again = fresh()
    h = train_class_rbm(again, x, y, generator=g, checkpoint=ck, **kw)
    for p, q in zip(again.parameters(), whole.parameters()):
        assert torch.equal(p, q)
    assert h.best_epoch == hw.best_epoch
    assert [r["valid_loss"] for r in h.epochs] == [r["valid_loss"] for r in hw.epochs]


def test_sizes_at_the_edges():
    x, y = data(n=1)
    m = ClassRBM(4, 3, 3, dtype=D, generator=torch.Generator().manual_seed(1))
    h = train_class_rbm(m, x, y, epochs=1, generator=torch.Generator().manual_seed(2))
    assert h.config["steps_per_epoch"] == 1  # one labeled example is enough
    x, y = data(n=4)
    h = train_class_rbm(m, x, y, x_unlabeled=data(seed=3, n=1)[0], epochs=1, batch_size=2,
                        objective="hybrid", beta=0.5,
                        generator=torch.Generator().manual_seed(2))  # fmt: skip
    assert h.config["steps_per_epoch"] == 2  # one unlabeled example takes part, as a batch of 1
    a = ClassRBM(4, 3, 3, dtype=D, generator=torch.Generator().manual_seed(1))
    b = ClassRBM(4, 3, 3, dtype=D, generator=torch.Generator().manual_seed(1))
    train_class_rbm(a, x, y, x_unlabeled=x[:0], epochs=1, batch_size=2,
                    generator=torch.Generator().manual_seed(2))  # fmt: skip
    train_class_rbm(b, x, y, epochs=1, batch_size=2, generator=torch.Generator().manual_seed(2))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError) as err:  # the check reads the last axis
        train_class_rbm(a, x, y, x_unlabeled=torch.zeros(2, 4, 3, dtype=D))
    assert str(err.value) == "x_unlabeled.shape=(2, 4, 3) is invalid: expected (n, 4)"
    with pytest.raises(ValueError) as err:
        train_class_rbm(a, x.view(4, 2, 2), y)
    assert str(err.value) == "x.shape=(4, 2, 2) is invalid: expected (n, 4)"


@pytest.mark.parametrize("monitor", ["valid_loss", "valid_error", "train_loss"])
def test_early_stopping_on_each_recorded_metric(monitor):
    x, y = data()
    m = ClassRBM(4, 3, 3, dtype=D, generator=torch.Generator().manual_seed(1))
    stop = EarlyStopping(monitor, patience=1, min_delta=1e9)  # nothing counts as better
    h = train_class_rbm(m, x, y, valid=(x[:3], y[:3]), epochs=5, batch_size=3,
                        early_stopping=stop,
                        generator=torch.Generator().manual_seed(2))  # fmt: skip
    assert h.stop_reason == "patience" and h.epochs_run == 2 and h.best_epoch == 1


def test_eval_on_a_split_of_one_and_many():
    """train_loss / train_error are the mean NLL and error of log p(y|x) over the monitor."""
    x, y = data(n=6)
    m = ClassRBM(4, 3, 3, init_scale=0.5, dtype=D, generator=torch.Generator().manual_seed(1))
    h = train_class_rbm(m, x, y, valid=(x[:1], y[:1]), epochs=1, batch_size=3, restore_best=False,
                        generator=torch.Generator().manual_seed(2))  # fmt: skip
    with torch.no_grad():
        lp = m.log_proba(x)
    r = h.epochs[0]
    assert r["train_loss"] == pytest.approx(float(-lp[torch.arange(6), y].mean()), rel=1e-12)
    assert r["train_error"] == float((lp.argmax(1) != y).double().mean())
    assert r["valid_loss"] == pytest.approx(float(-lp[0, y[0]]), rel=1e-12)


def test_chunked_default_is_512_rows():
    calls = []

    def f(t):
        calls.append(len(t))
        return t

    x = torch.zeros(513, 2)
    assert torch.equal(chunked(f, x), x) and calls == [512, 1]

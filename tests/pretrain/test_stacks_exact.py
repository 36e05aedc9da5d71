"""Exact checks of the greedy stacks' shared core (``_layout``, ``greedy``) and the two stacks
(``dbn``, ``autoencoder.stacks``): full messages of invalid inputs, defaults, the arguments
that must reach their callee, and float64 transcriptions of codes and unrolled weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from smithing.checkpoint import Checkpointer
from smithing.history import History
from smithing.pretrain import greedy as G
from smithing.pretrain._layout import check_chain, check_sizes
from smithing.pretrain.autoencoder import DenoisingAutoencoder, StackedDAE, train_sda
from smithing.pretrain.autoencoder.stacks import DAEPretrainer, dae_layer
from smithing.pretrain.dbn import DBN, RBMPretrainer, rbm_layer, train_dbn
from smithing.pretrain.rbm import BernoulliRBM, GaussianBernoulliRBM

D = torch.float64


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Fake:
    """A LayerPretrainer whose code is ``x @ A`` (plus 0.5 for its samples), recording calls."""

    activation = "sigmoid"

    def __init__(self, n_in, n_out, log, name, **train_kwargs):
        self.n_in, self.n_out, self.log, self.name = n_in, n_out, log, name
        self.A = torch.arange(n_in * n_out, dtype=D).reshape(n_in, n_out) / 10
        self.train_kwargs = train_kwargs

    def fit(self, x, *, valid=None, generator=None, checkpoint=None):
        self.log.append(("fit", self.name, x.clone(), valid, generator, checkpoint))
        return History()

    def encoder(self):
        return self.A.T.clone(), torch.full((self.n_out,), float(self.n_out), dtype=D)

    def transform(self, x, *, sample=False, generator=None):
        self.log.append(("transform", self.name, sample, generator))
        return x @ self.A.to(x.device) + (0.5 if sample else 0.0)


class FakeProgress(Fake):
    def fit(self, x, *, valid=None, generator=None, checkpoint=None, progress=None):
        self.log.append(("progress", self.name, progress))
        if progress is not None:
            progress(1, {})
            progress(2, {})
        return super().fit(x, valid=valid, generator=generator, checkpoint=checkpoint)


# ------------------------------------------------------------------ _layout


@pytest.mark.parametrize("sizes", [[5], [], [5, 0], [5, 2.0], [5, -1, 3], [0, 3]])
def test_check_sizes_full_message(sizes):
    msg = (
        f"sizes={list(sizes)} is invalid: "
        "expected at least two positive ints [n_visible, n_hidden_1, ...]"
    )
    with pytest.raises(ValueError) as e:
        check_sizes(sizes)
    assert str(e.value) == msg


def test_check_sizes_accepts_and_lists():
    assert check_sizes((3, 1)) == [3, 1]
    assert check_sizes([1, 1, 1]) == [1, 1, 1]


def test_check_chain_full_messages_and_indices():
    with pytest.raises(ValueError) as e:
        check_chain([], "xs", "RBM", "hidden size")
    assert str(e.value) == "xs=[] is invalid: expected at least one RBM"
    layers = [BernoulliRBM(4, 3), BernoulliRBM(3, 2), BernoulliRBM(5, 1)]
    with pytest.raises(ValueError) as e:
        check_chain(iter(layers), "xs", "K", "width")
    assert str(e.value) == "xs[2].n_visible=5 is invalid: expected the width of the K below, 2"
    bad1 = [BernoulliRBM(4, 3), BernoulliRBM(2, 2)]
    with pytest.raises(ValueError) as e:
        check_chain(bad1, "xs", "K", "width")
    assert str(e.value) == "xs[1].n_visible=2 is invalid: expected the width of the K below, 3"
    ok = check_chain(iter(layers[:2]), "xs", "K", "width")
    assert ok == layers[:2] and isinstance(ok, list)
    assert check_chain((layers[2],), "xs", "K", "width") == [layers[2]]  # one layer is a chain


def test_layer_stack_of_is_a_fresh_module_with_the_layers():
    rbms = [BernoulliRBM(4, 3, members=2), BernoulliRBM(3, 2, members=2)]
    dbn = DBN.from_rbms(rbms)
    assert type(dbn) is DBN and isinstance(dbn, nn.Module)
    assert dict(dbn.named_children()).keys() == {"rbms"}
    assert len(list(dbn.parameters())) == sum(len(list(r.parameters())) for r in rbms)
    assert dbn.sizes == (4, 3, 2) and dbn.members == 2
    encs = dbn.encoders()
    assert len(encs) == 2
    for (w, b), r in zip(encs, rbms):
        assert torch.equal(w, r.W.transpose(-1, -2)) and torch.equal(b, r.c)
    x = torch.rand(2, 5, 4, generator=_g(0))
    up = dbn.upward(x)
    assert not up[0].requires_grad and not dbn(x).requires_grad
    assert torch.equal(dbn(x), up[-1]) and up[-1].shape == (2, 5, 2)
    one = DBN.from_rbms([BernoulliRBM(4, 3, members=3)])
    assert one.members == 3 and one.sizes == (4, 3)
    three = DBN([4, 3, 2, 1], generator=_g(1))
    up = three.upward(x[0])
    assert len(up) == 3 and torch.equal(three(x[0]), up[2]) and three(x[0]).shape == (5, 1)


# ------------------------------------------------------------------ greedy: greedy_stack


def test_greedy_stack_passes_codes_valid_generator_and_samples():
    log: list = []
    a, b, c = Fake(3, 2, log, "a"), Fake(2, 2, log, "b"), Fake(2, 1, log, "c")
    x = torch.arange(12, dtype=D).reshape(4, 3)
    v = torch.ones(2, 3, dtype=D)
    g = _g(0)
    seen = []
    res = G.greedy_stack(
        [a, b, c], x, valid_data=v, generator=g, callback=lambda i, la, h: seen.append((i, la))
    )
    fits = [e for e in log if e[0] == "fit"]
    assert [f[1] for f in fits] == ["a", "b", "c"]
    assert torch.equal(fits[0][2], x) and torch.equal(fits[1][2], x @ a.A)
    assert torch.equal(fits[2][2], x @ a.A @ b.A)
    assert torch.equal(fits[0][3], v) and torch.equal(fits[1][3], v @ a.A)
    assert torch.equal(fits[2][3], v @ a.A @ b.A)
    assert all(f[4] is g for f in fits) and all(f[5] is None for f in fits)
    tr = [e for e in log if e[0] == "transform"]
    # data (sample False, the generator) then valid (plain) for a and b; never for the top one
    assert tr == [
        ("transform", "a", False, g),
        ("transform", "a", False, None),
        ("transform", "b", False, g),
        ("transform", "b", False, None),
    ]
    assert seen == [(0, a), (1, b), (2, c)]
    assert res.layers == [a, b, c] and res.propagate == "probs" and len(res.histories) == 3
    assert res.sizes == (3, 2, 2, 1)

    log.clear()
    res = G.greedy_stack((a, b), x, propagate="samples")
    fits = [e for e in log if e[0] == "fit"]
    assert torch.equal(fits[1][2], x @ a.A + 0.5) and fits[1][3] is None
    assert [e for e in log if e[0] == "transform"] == [("transform", "a", True, None)]
    assert res.propagate == "samples" and isinstance(res.layers, list)


def test_greedy_stack_full_messages():
    log: list = []
    x = torch.zeros(2, 3, dtype=D)
    with pytest.raises(ValueError) as e:
        G.greedy_stack([Fake(3, 2, log, "a")], x, propagate="mean")
    assert str(e.value) == "propagate='mean' is invalid: expected 'probs' or 'samples'"
    with pytest.raises(ValueError) as e:
        G.greedy_stack([], x)
    assert str(e.value) == "pretrainers=[] is invalid: expected at least one layer"
    with pytest.raises(ValueError) as e:
        G.greedy_stack([Fake(3, 2, log, "a"), Fake(3, 1, log, "b")], x)
    assert str(e.value) == "pretrainers[1].n_in=3 is invalid: expected the size of its inputs, 2"
    x3 = torch.zeros(2, 5, 3, dtype=D)  # an ensemble's (M, n, n_in): the last axis is checked
    with pytest.raises(ValueError) as e:
        G.greedy_stack([Fake(4, 2, log, "a")], x3)
    assert str(e.value) == "pretrainers[0].n_in=4 is invalid: expected the size of its inputs, 3"
    with pytest.raises(ValueError) as e:
        G.greedy_stack([Fake(3, 2, log, "a"), Fake(5, 1, log, "b")], x3)
    assert str(e.value) == "pretrainers[1].n_in=5 is invalid: expected the size of its inputs, 2"


def test_greedy_stack_checkpoint_children_and_progress(tmp_path):
    log: list = []
    a, b = FakeProgress(3, 2, log, "a", epochs=4), Fake(2, 1, log, "b")
    c = FakeProgress(1, 1, log, "c")  # no train_kwargs: 0 epochs
    ck = Checkpointer(tmp_path / "run.safetensors")
    calls = []
    G.greedy_stack(
        [a, b, c],
        torch.ones(2, 3, dtype=D),
        checkpoint=ck,
        progress=lambda *args: calls.append(args),
    )
    fits = [e for e in log if e[0] == "fit"]
    assert [f[5].path.name for f in fits] == [
        "run.layer0.safetensors",
        "run.layer1.safetensors",
        "run.layer2.safetensors",
    ]
    assert calls == [(1, 4, "layer0"), (2, 4, "layer0"), (1, 0, "layer2"), (2, 0, "layer2")]
    bare = FakeProgress(3, 1, log, "bare")
    del bare.train_kwargs  # a pretrainer without train_kwargs reports 0 epochs
    calls.clear()
    G.greedy_stack([bare], torch.ones(2, 3, dtype=D), progress=lambda *args: calls.append(args))
    assert calls == [(1, 0, "layer0"), (2, 0, "layer0")]
    log.clear()
    G.greedy_stack([a], torch.ones(2, 3, dtype=D))  # no progress: none handed down
    assert [e for e in log if e[0] == "progress"] == [("progress", "a", None)]


def test_greedy_result_upward_and_transform():
    log: list = []
    a, b = Fake(3, 2, log, "a"), Fake(2, 2, log, "b")
    res = G.GreedyResult([a, b])
    assert res.histories == [] and res.propagate == "probs"
    x = torch.arange(6, dtype=D).reshape(2, 3)
    up = res.upward(x)
    assert len(up) == 2 and torch.equal(up[0], x @ a.A) and torch.equal(up[1], x @ a.A @ b.A)
    assert torch.equal(res.transform(x), x @ a.A @ b.A)
    assert [e[2] for e in log] == [False, False, False, False]  # probabilities, not samples
    c = Fake(2, 1, log, "c")
    three = G.GreedyResult([a, b, c])
    assert torch.equal(three.transform(x), x @ a.A @ b.A @ c.A)
    encs = res.encoders()
    assert len(encs) == 2 and torch.equal(encs[1][0], b.A.T)


# ------------------------------------------------------------------ greedy: settings


def test_shared_settings_keeps_the_given_ones_and_refuses_a_ready_optimizer():
    assert G.shared_settings(epochs=3, lr=None, callbacks=(), progress=None, k=0) == {
        "epochs": 3,
        "k": 0,
    }
    cb = [print]
    assert G.shared_settings(callbacks=cb, optimizer="sgd") == {"callbacks": cb, "optimizer": "sgd"}
    assert G.shared_settings(schedule_options={}) == {"schedule_options": {}}
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError) as e:
        G.shared_settings(optimizer=opt)
    assert str(e.value) == (
        "optimizer='SGD' is invalid: expected a name (a ready optimizer belongs to one layer: "
        "give it in layers=)"
    )


def test_per_layer_none_one_mapping_or_one_per_layer():
    assert G.per_layer(None, 2) == [{}, {}]
    assert G.per_layer(None, 2, {"lr": 1}) == [{"lr": 1}, {"lr": 1}]
    one = {"k": 2}
    got = G.per_layer(one, 2, {"lr": 1, "k": 1})
    assert got == [{"lr": 1, "k": 2}, {"lr": 1, "k": 2}] and got[0] is not got[1]
    got[0]["k"] = 9
    assert one == {"k": 2}
    assert G.per_layer([{"k": 3}, {}], 2, {"k": 1}) == [{"k": 3}, {"k": 1}]
    assert G.per_layer(({},), 1) == [{}]
    with pytest.raises(ValueError) as e:
        G.per_layer([{}], 2, what="RBM")
    assert str(e.value) == "layers='1 settings' is invalid: expected one per RBM (2)"
    with pytest.raises(ValueError) as e:
        G.per_layer([{}], 3)
    assert str(e.value) == "layers='1 settings' is invalid: expected one per layer (3)"
    for bad in ([{}, 3], 5):
        with pytest.raises(ValueError) as e:
            G.per_layer(bad, 2)
        assert str(e.value) == (
            f"layers={bad!r} is invalid: expected None, one mapping of training settings, "
            "or one mapping per layer"
        )


def test_phase_and_chain_progress():
    calls = []
    p = G.phase_progress(lambda *a: calls.append(a), 7, "layer3")
    p(2, {"x": 1})
    assert calls == [(2, 7, "layer3")]
    order = []
    second = lambda e, r: order.append(("second", e, r))  # noqa: E731
    assert G.chain_progress(None, second) is second
    both = G.chain_progress(lambda e, r: order.append(("first", e, r)), second)
    both(4, {"a": 1})
    assert order == [("first", 4, {"a": 1}), ("second", 4, {"a": 1})]


# ------------------------------------------------------------------ greedy: train_greedy


class FakeStack(nn.Module):
    def __init__(self, sizes, log):
        super().__init__()
        self.stack = [Fake(a, b, log, f"l{i}") for i, (a, b) in enumerate(zip(sizes, sizes[1:]))]
        self.moved = []

    def to(self, device):
        self.moved.append(device)
        return self


def test_train_greedy_merges_settings_and_forwards_everything(tmp_path):
    log: list = []
    stack = FakeStack([3, 2, 1], log)
    made = []

    def make(layer, s):
        made.append((layer, s))
        return layer

    x = torch.ones(2, 3, dtype=D)
    v = torch.ones(1, 3, dtype=D)
    g = _g(1)
    seen = []
    hists = G.train_greedy(
        "train_x",
        stack,
        x,
        make,
        layers=[{"k": 2}, {}],
        what="unit",
        propagate="samples",
        valid_data=v,
        generator=g,
        device="cpu",
        checkpoint=str(tmp_path / "c.safetensors"),
        layer_callback=lambda i, la, h: seen.append(i),
        epochs=3,
        lr=None,
        callbacks=(),
    )
    assert stack.moved == ["cpu"] and len(hists) == 2
    assert [s for _, s in made] == [{"epochs": 3, "k": 2}, {"epochs": 3}]
    assert [la for la, _ in made] == stack.stack and seen == [0, 1]
    fits = [e for e in log if e[0] == "fit"]
    assert torch.equal(fits[1][2], x @ stack.stack[0].A + 0.5)  # samples propagated
    assert torch.equal(fits[0][3], v) and all(f[4] is g for f in fits)
    assert fits[1][5].path.name == "c.layer1.safetensors"
    with pytest.raises(ValueError) as e:
        G.train_greedy("t", FakeStack([3, 2, 1], log), x, make, layers=[{}], what="unit")
    assert str(e.value) == "layers='1 settings' is invalid: expected one per unit (2)"
    with pytest.warns(DeprecationWarning) as w:
        G.train_greedy(
            "train_y", FakeStack([3, 1], log), x, make, layers=None, what="u", callback=print
        )
    assert str(w[0].message) == "train_y(callback=...) is deprecated; use layer_callback= instead"
    log.clear()
    st = FakeStack([3, 1], log)
    G.train_greedy("t", st, x, make, layers=None, what="u")
    assert st.moved == [] and [e[3] for e in log if e[0] == "fit"] == [None]
    log.clear()
    st = FakeStack([3, 2, 1], log)
    G.train_greedy("t", st, x, make, layers=None, what="u", device="meta", valid_data=v)
    fits = [e for e in log if e[0] == "fit"]
    assert st.moved == ["meta"] and fits[0][2].device.type == "meta"
    assert fits[0][3].device.type == "meta" and fits[1][3].device.type == "meta"
    log.clear()
    G.train_greedy("t", FakeStack([3, 1], log), x, make, layers=None, what="u", device="cpu")
    assert [e[3] for e in log if e[0] == "fit"] == [None]  # no valid_data: none moved
    assert [e[5] for e in log if e[0] == "fit"] == [None]


# ------------------------------------------------------------------ greedy: unrolling


def test_pretrained_weights_members_and_copies():
    W = torch.arange(24, dtype=D).reshape(2, 3, 4)
    b = torch.arange(6, dtype=D).reshape(2, 3)
    got = G.pretrained_weights([(W, b)], member=1)
    assert torch.equal(got[0][0], W[1]) and torch.equal(got[0][1], b[1])
    got = G.pretrained_weights([(W, b)], member=0)
    assert torch.equal(got[0][0], W[0]) and torch.equal(got[0][1], b[0])
    got = G.pretrained_weights([(W, b)])
    assert torch.equal(got[0][0], W) and got[0][0].data_ptr() != W.data_ptr()
    assert got[0][1].data_ptr() != b.data_ptr()
    p = nn.Parameter(W.clone())
    assert not G.pretrained_weights([(p, b)])[0][0].requires_grad
    msg = "expected None for a single stack, or a member index of an ensemble stack"
    for bad in (2, -1):
        with pytest.raises(ValueError) as e:
            G.pretrained_weights([(W, b)], member=bad)
        assert str(e.value) == f"member={bad} is invalid: {msg}"
    with pytest.raises(ValueError) as e:
        G.pretrained_weights([(W[0], b[0])], member=0)
    assert str(e.value) == f"member=0 is invalid: {msg}"


def test_output_inits_exact():
    lin = nn.Linear(9, 4).double()
    G.OUTPUT_INITS.get("default")(lin, _g(3))
    ref = nn.Linear(9, 4).double()
    g = _g(3)
    nn.init.kaiming_uniform_(ref.weight, a=math.sqrt(5), generator=g)
    nn.init.uniform_(ref.bias, -1 / 3, 1 / 3, generator=g)
    assert torch.equal(lin.weight, ref.weight) and torch.equal(lin.bias, ref.bias)
    g = _g(3)
    w = torch.empty(4, 9, dtype=D).uniform_(-1 / 3, 1 / 3, generator=g)  # gain sqrt(2/6)*sqrt(3/9)
    assert torch.allclose(lin.weight, w, rtol=0, atol=1e-15)
    G.OUTPUT_INITS.get("normal")(lin, _g(4))
    ref_w = torch.empty(4, 9, dtype=D).normal_(0.0, 0.01, generator=_g(4))
    assert torch.equal(lin.weight, ref_w) and torch.equal(lin.bias, torch.zeros(4, dtype=D))
    lin2 = nn.Linear(2, 2)
    G.OUTPUT_INITS.get("zeros")(lin2, None)
    assert not lin2.weight.any() and not lin2.bias.any()
    assert set(G.OUTPUT_INITS) >= {"default", "zeros", "normal"}


def test_to_mlp_copies_weights_dtype_and_checks():
    W1 = torch.arange(12, dtype=D).reshape(3, 4) / 7
    W2 = torch.arange(6, dtype=D).reshape(2, 3) / 5
    b1, b2 = torch.tensor([1.0, 2.0, 3.0], dtype=D), torch.tensor([-1.0, 0.5], dtype=D)
    mlp = G.to_mlp([(W1, b1), (W2, b2)], 3, output_init="zeros", dropout=0.0)
    assert mlp.linears[0].weight.dtype == D
    assert [(lin.in_features, lin.out_features) for lin in mlp.linears] == [(4, 3), (3, 2), (2, 3)]
    assert torch.equal(mlp.linears[0].weight, W1) and torch.equal(mlp.linears[1].bias, b2)
    assert torch.equal(mlp.linears[1].weight, W2) and torch.equal(mlp.linears[0].bias, b1)
    x = torch.rand(5, 4, dtype=D, generator=_g(0))
    h = torch.sigmoid(torch.sigmoid(x @ W1.T + b1) @ W2.T + b2)
    torch.testing.assert_close(mlp.hidden_activations(x)[-1], h, rtol=1e-15, atol=1e-15)
    assert not mlp(x).any()  # zero output layer
    drop = G.to_mlp([(W1, b1)], 2, dropout=0.5, output_init="zeros")
    assert [m.p for m in drop.modules() if isinstance(m, nn.Dropout)] == [0.5]
    assert G.to_mlp([(W1, b1)], 1, output_init="zeros").linears[-1].out_features == 1
    mixed = G.to_mlp([(W1, b1.float())], 2, output_init="zeros")  # the weight's dtype
    assert mixed.linears[0].weight.dtype == D and mixed.linears[0].bias.dtype == D
    meta = G.to_mlp([(W1.to("meta"), b1.to("meta"))], 2, output_init="zeros")
    assert {p.device.type for p in meta.parameters()} == {"meta"}
    relu = G.to_mlp([(W1, b1)], 2, "relu", output_init="zeros")
    torch.testing.assert_close(relu.hidden_activations(x)[-1], torch.relu(x @ W1.T + b1))
    seen = []
    G.to_mlp([(W1, b1)], 2, output_init=lambda lin, gen: seen.append((lin.in_features, gen)))
    g = _g(5)
    G.to_mlp(
        [(W1, b1)],
        2,
        output_init=lambda lin, gen: seen.append((lin.out_features, gen)),
        generator=g,
    )
    assert seen == [(3, None), (2, g)]
    a = G.to_mlp([(W1, b1)], 2, generator=_g(6))
    ref = nn.Linear(3, 2).double()
    G.OUTPUT_INITS.get("default")(ref, _g(6))
    assert torch.equal(a.linears[-1].weight, ref.weight)
    Wm = torch.stack([W1, 2 * W1])
    bm = torch.stack([b1, b1])
    assert torch.equal(G.to_mlp([(Wm, bm)], 2, member=1).linears[0].weight, 2 * W1)
    for bad in (0, 2.0, -1):
        with pytest.raises(ValueError) as e:
            G.to_mlp([(W1, b1)], bad)
        assert str(e.value) == f"n_classes={bad!r} is invalid: expected a positive int"
    with pytest.raises(ValueError) as e:
        G.to_mlp([], 2)
    assert str(e.value) == "stack=[] is invalid: expected at least one layer"
    with pytest.raises(ValueError) as e:
        G.to_mlp([(Wm, bm)], 2)
    assert str(e.value) == (
        "member=None is invalid: expected a member index for an ensemble stack "
        "(weights have a members axis)"
    )


# ------------------------------------------------------------------ dbn


def test_rbm_layer_and_dbn_pass_every_setting_to_the_rbm():
    a = rbm_layer(
        [4, 3, 2], 1, visible="gaussian", members=2, init_std=0.5, generator=_g(7), dtype=D
    )
    assert type(a) is BernoulliRBM and (a.n_visible, a.n_hidden, a.members) == (3, 2, 2)
    assert torch.equal(a.W, torch.randn((2, 3, 2), generator=_g(7), dtype=D) * 0.5)
    g0 = rbm_layer([4, 3], 0, visible="gaussian", learn_variance=True)
    assert type(g0) is GaussianBernoulliRBM and g0.learn_variance
    assert not rbm_layer([4, 3], 0, visible="gaussian").learn_variance
    b0 = rbm_layer([4, 3], 0)
    assert type(b0) is BernoulliRBM and b0.W.dtype == torch.float32 and b0.members is None
    assert rbm_layer([4, 3], 0, device="meta").W.device.type == "meta"
    assert float(rbm_layer([4, 3], 0, generator=_g(1)).W.detach().std()) < 0.05  # init_std 0.01
    for f in (
        lambda: rbm_layer([4, 3], 0, visible="binary"),
        lambda: DBN([4, 3], visible="binary"),
    ):
        with pytest.raises(ValueError) as e:
            f()
        assert str(e.value) == "visible='binary' is invalid: expected 'bernoulli' or 'gaussian'"

    dbn = DBN([4, 3, 2], visible="gaussian", learn_variance=True, members=2, init_std=0.5,
              generator=_g(8), dtype=D)  # fmt: skip
    g = _g(8)
    ref = [rbm_layer([4, 3, 2], i, visible="gaussian", learn_variance=True, members=2,
                     init_std=0.5, generator=g, dtype=D) for i in range(2)]  # fmt: skip
    assert [type(r) for r in dbn.rbms] == [GaussianBernoulliRBM, BernoulliRBM]
    assert dbn.rbms[0].learn_variance and dbn.members == 2 and dbn.sizes == (4, 3, 2)
    for r, q in zip(dbn.rbms, ref):
        assert torch.equal(r.W, q.W)
    assert DBN([4, 3], device="meta").rbms[0].W.device.type == "meta"
    plain = DBN([4, 3])
    assert type(plain.rbms[0]) is BernoulliRBM and plain.members is None
    assert plain.rbms[0].W.dtype == torch.float32 and float(plain.rbms[0].W.detach().std()) < 0.05
    assert not DBN([4, 3], visible="gaussian").rbms[0].learn_variance


def test_dbn_code_casts_to_the_rbm_dtype_and_to_mlp_unrolls():
    dbn = DBN([4, 3, 2], generator=_g(9), dtype=D)
    x = torch.rand(5, 4, generator=_g(10))  # float32 inputs
    h1 = torch.sigmoid(x.double() @ dbn.rbms[0].W + dbn.rbms[0].c)
    code = dbn.code(dbn.rbms[0], x)
    assert code.dtype == D and torch.equal(code, dbn.rbms[0].hidden_probs(x.double()))
    torch.testing.assert_close(code, h1, rtol=1e-15, atol=1e-15)
    mlp = dbn.to_mlp(3, output_init="zeros")
    assert mlp.linears[0].weight.dtype == D and torch.equal(mlp.linears[1].weight, dbn.rbms[1].W.T)
    torch.testing.assert_close(mlp.hidden_activations(x.double())[-1], dbn(x), rtol=1e-15, atol=0)
    relu = dbn.to_mlp(3, "relu", output_init="zeros")
    h = torch.relu(x.double() @ dbn.rbms[0].W + dbn.rbms[0].c)
    torch.testing.assert_close(relu.hidden_activations(x.double())[0], h, rtol=1e-15, atol=0)


class _Sampling:
    """Stand-ins for ``sample`` (the top chain) and ``sample_bernoulli`` (the down pass)."""

    def __init__(self, monkeypatch, out):
        import smithing.pretrain.dbn as mod

        self.calls: list = []
        self.out = out
        monkeypatch.setattr(mod, "sample", self.sample)
        monkeypatch.setattr(mod, "sample_bernoulli", self.bern)

    def sample(self, top, n, steps, *, init=None, generator=None, return_mean=True):
        self.calls.append(("sample", top, n, steps, init, generator, return_mean))
        return self.out

    def bern(self, p, generator=None):
        self.calls.append(("bern", generator))
        return p + 100


def test_dbn_sample_top_chain_then_down_pass(monkeypatch):
    dbn = DBN([4, 3, 2, 2], generator=_g(11), dtype=D)
    r0, r1, r2 = dbn.rbms
    top_out = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], dtype=D)[:, :2]
    s = _Sampling(monkeypatch, top_out)
    g = _g(0)
    out = dbn.sample(2, 7, generator=g)
    assert s.calls[0] == ("sample", r2, 2, 7, None, g, False)
    m1 = r1.visible_mean(top_out) + 100  # sampled intermediate layer
    assert s.calls[1:] == [("bern", g)]
    assert torch.equal(out, r0.visible_mean(m1))  # the bottom layer is the mean
    s.calls.clear()
    out = dbn.sample(2, down="probs", image_shape=(2, 2))
    assert s.calls == [("sample", r2, 2, 1000, None, None, False)]
    assert torch.equal(out, r0.visible_mean(r1.visible_mean(top_out)).reshape(2, 2, 2))
    s.calls.clear()
    x = torch.rand(2, 4, generator=_g(12))
    dbn.sample(2, 3, init=x)
    assert torch.equal(s.calls[0][4], dbn.upward(x)[-2])  # the top RBM's visible layer
    with pytest.raises(ValueError) as e:
        dbn.sample(2, down="mean")
    assert str(e.value) == "down='mean' is invalid: expected 'sample' or 'probs'"

    one = DBN([4, 3], generator=_g(13), dtype=D)
    s = _Sampling(monkeypatch, torch.full((2, 4), 0.25, dtype=D))
    out = one.sample(2, 5, init=torch.ones(2, 4), image_shape=(2, 2))
    call = s.calls[0]
    assert call[1] is one.rbms[0] and call[6] is True and call[4].dtype == D
    assert torch.equal(call[4], torch.ones(2, 4, dtype=D))
    assert len(s.calls) == 1 and torch.equal(out, torch.full((2, 2, 2), 0.25, dtype=D))


def test_dbn_sample_real_chain_shapes():
    dbn = DBN([4, 3, 2], members=2, generator=_g(14))
    out = dbn.sample(3, 2, generator=_g(15))
    assert out.shape == (2, 3, 4) and ((out > 0) & (out < 1)).all()
    again = dbn.sample(3, 2, image_shape=(2, 2), generator=_g(15))
    assert again.shape == (2, 3, 2, 2) and torch.equal(out.reshape(2, 3, 2, 2), again)


def test_rbm_pretrainer_fit_hands_everything_to_train_rbm(monkeypatch, tmp_path):
    import smithing.pretrain.dbn as mod

    calls = []
    monkeypatch.setattr(mod, "train_rbm", lambda rbm, x, **kw: calls.append((rbm, x, kw)) or "H")
    rbm = BernoulliRBM(3, 2, dtype=D)
    p = RBMPretrainer(rbm, epochs=4, lr=0.5)
    assert p.layer is rbm and p.activation == "sigmoid" and (p.n_in, p.n_out) == (3, 2)
    assert p.init_visible_bias is True and p.train_kwargs == {"epochs": 4, "lr": 0.5}
    x = torch.tensor([[1.0, 0.0, 0.5], [1.0, 0.0, 0.5]], dtype=D)
    v, g = torch.ones(1, 3), _g(0)
    assert p.fit(x, valid=v, generator=g) == "H"
    assert torch.equal(rbm.b, BernoulliRBM(3, 2, dtype=D).init_visible_bias_(x).b)
    ((r, xx, kw),) = calls
    assert r is rbm and xx is x and kw == {"valid_data": v, "generator": g, "epochs": 4, "lr": 0.5}
    ck = Checkpointer(tmp_path / "c.safetensors")
    seen = []
    p2 = RBMPretrainer(
        BernoulliRBM(3, 2), init_visible_bias=False, progress=lambda e, r: seen.append(1)
    )
    p2.fit(x, checkpoint=ck, progress=lambda e, r: seen.append(2))
    assert not p2.rbm.b.any() and calls[1][2]["checkpoint"] is ck
    calls[1][2]["progress"](1, {})
    assert seen == [1, 2] and "checkpoint" not in calls[0][2] and "progress" not in calls[0][2]


def test_rbm_pretrainer_encoder_and_transform():
    rbm = BernoulliRBM(3, 2, generator=_g(1), dtype=D)
    p = RBMPretrainer(rbm)
    w, b = p.encoder()
    assert torch.equal(w, rbm.W.T) and torch.equal(b, rbm.c)
    x = torch.rand(4, 3, generator=_g(2))
    h = p.transform(x)
    assert h.dtype == D and torch.equal(h, rbm.hidden_probs(x.double()))
    s = p.transform(x, sample=True, generator=_g(3))
    assert torch.equal(s, torch.bernoulli(h, generator=_g(3)))


def test_train_dbn_and_train_sda_forward_every_argument(monkeypatch):
    calls = []
    monkeypatch.setattr(G, "train_greedy", lambda *a, **kw: calls.append((a, kw)) or ["h"])
    dbn, x, v, g = DBN([3, 2]), torch.ones(2, 3), torch.ones(1, 3), _g(0)
    lcb, cb, prog, cbs = print, repr, str, [len]
    common = dict(
        layers=[{"k": 1}],
        epochs=2,
        lr=0.5,
        batch_size=4,
        optimizer="adam",
        optimizer_options={"betas": (0.8, 0.9)},
        schedule="step",
        schedule_options={"gamma": 0.5},
        valid_data=v,
        generator=g,
        callbacks=cbs,
        progress=prog,
        device="cpu",
        checkpoint="ck",
        layer_callback=lcb,
        callback=cb,
    )
    assert train_dbn(dbn, x, propagate="samples", init_visible_bias=False, **common) == ["h"]
    ((a, kw),) = calls
    assert a[:3] == ("train_dbn", dbn, x)
    make = a[3]
    expected = {k: common[k] for k in common}
    assert kw == {**expected, "what": "RBM", "propagate": "samples"}
    made = make(dbn.rbms[0], {"epochs": 9})
    assert isinstance(made, RBMPretrainer) and made.rbm is dbn.rbms[0]
    assert made.init_visible_bias is False and made.train_kwargs == {"epochs": 9}
    train_dbn(dbn, x)
    kw = calls[1][1]
    assert kw["propagate"] == "probs" and kw["what"] == "RBM" and kw["layers"] is None
    assert kw["callbacks"] == () and all(
        kw[k] is None for k in ("epochs", "lr", "valid_data", "checkpoint", "callback")
    )
    assert calls[1][0][3](dbn.rbms[0], {}).init_visible_bias is True

    sda = StackedDAE([3, 2])
    assert train_sda(sda, x, **common) == ["h"]
    a, kw = calls[2]
    assert a[:3] == ("train_sda", sda, x) and kw == {**expected, "what": "layer"}
    made = a[3](sda.daes[0], {"epochs": 9})
    assert isinstance(made, DAEPretrainer) and made.dae is sda.daes[0]
    assert made.train_kwargs == {"epochs": 9}
    train_sda(sda, x)
    kw = calls[3][1]
    assert kw["callbacks"] == () and kw["layers"] is None and "propagate" not in kw
    assert all(kw[k] is None for k in ("epochs", "schedule", "generator", "device", "progress"))


def test_stack_trainers_run_end_to_end_with_the_shared_settings():
    x = (torch.rand(12, 5, generator=_g(20)) > 0.5).double()
    dbn = DBN([5, 3, 2], generator=_g(21), dtype=D)
    hists = train_dbn(dbn, x, epochs=2, batch_size=6, lr=0.1, generator=_g(22))
    assert [h.epochs_run for h in hists] == [2, 2]
    sda = StackedDAE([5, 3, 2], generator=_g(23), dtype=D)
    hists = train_sda(sda, x, epochs=1, batch_size=6, layers=[{}, {"epochs": 2}], generator=_g(24))
    assert [h.epochs_run for h in hists] == [1, 2]


# ------------------------------------------------------------------ autoencoder stacks


def test_dae_layer_losses_and_settings():
    bottom = dae_layer([4, 3, 2], 0, loss="squared_error", activation="tanh", tied=False,
                       members=2, generator=_g(1), dtype=D)  # fmt: skip
    assert (bottom.n_visible, bottom.n_hidden, bottom.members) == (4, 3, 2)
    assert bottom.loss_name == "squared_error" and bottom.activation == "tanh"
    assert bottom.W_dec is not None and bottom.W.dtype == D
    ref = DenoisingAutoencoder(4, 3, activation="tanh", tied=False, loss="squared_error",
                               members=2, generator=_g(1), dtype=D)  # fmt: skip
    assert torch.equal(bottom.W, ref.W) and torch.equal(bottom.W_dec, ref.W_dec)
    up = dae_layer([4, 3, 2], 1, loss="squared_error", activation="tanh")
    assert (up.n_visible, up.n_hidden) == (3, 2) and up.loss_name == "squared_error"
    up = dae_layer([4, 3, 2], 1, loss="squared_error")
    assert up.loss_name == "cross_entropy" and up.activation == "sigmoid"
    d = dae_layer([4, 3], 0)
    assert d.loss_name == "cross_entropy" and d.activation == "sigmoid" and d.tied
    assert d.W_dec is None and d.members is None and d.W.dtype == torch.float32
    assert dae_layer([4, 3], 0, device="meta").W.device.type == "meta"


def test_stacked_dae_passes_settings_and_checks_activations():
    sda = StackedDAE([4, 3, 2], activation="relu", tied=False, loss="squared_error", members=2,
                     generator=_g(2), dtype=D)  # fmt: skip
    g = _g(2)
    ref = [dae_layer([4, 3, 2], i, activation="relu", tied=False, loss="squared_error",
                     members=2, generator=g, dtype=D) for i in range(2)]  # fmt: skip
    assert sda.activation == "relu" and sda.sizes == (4, 3, 2) and sda.members == 2
    for d, r in zip(sda.daes, ref):
        assert torch.equal(d.W, r.W) and torch.equal(d.W_dec, r.W_dec)
        assert d.loss_name == r.loss_name and d.activation == "relu"
    assert StackedDAE([4, 3], device="meta").daes[0].W.device.type == "meta"
    plain = StackedDAE([4, 3, 2])
    assert plain.activation == "sigmoid" and plain.daes[0].tied and plain.members is None
    assert [d.loss_name for d in plain.daes] == ["cross_entropy", "cross_entropy"]
    assert plain.daes[0].W.dtype == torch.float32
    daes = [DenoisingAutoencoder(4, 3, activation="tanh"), DenoisingAutoencoder(3, 2)]
    with pytest.raises(ValueError) as e:
        StackedDAE.from_layers(daes)
    assert str(e.value) == (
        "daes=['tanh', 'sigmoid'] is invalid: expected autoencoders with one code activation"
    )
    with pytest.raises(ValueError) as e:
        StackedDAE.from_layers([DenoisingAutoencoder(4, 3), DenoisingAutoencoder(2, 1)])
    assert str(e.value) == (
        "daes[1].n_visible=2 is invalid: expected the code size of the autoencoder below, 3"
    )
    tanh = StackedDAE.from_layers(iter([DenoisingAutoencoder(4, 3, activation="tanh")]))
    assert tanh.activation == "tanh" and tanh.sizes == (4, 3)


def test_stacked_dae_code_and_to_mlp_activation():
    sda = StackedDAE([4, 3, 2], activation="tanh", generator=_g(3), dtype=D)
    x = torch.rand(5, 4, generator=_g(4), dtype=D)
    d0 = sda.daes[0]
    h = torch.tanh(x @ d0.W.T + d0.b)
    torch.testing.assert_close(sda.code(d0, x), h, rtol=1e-15, atol=1e-15)
    mlp = sda.to_mlp(3, output_init="zeros")
    torch.testing.assert_close(mlp.hidden_activations(x)[-1], sda(x), rtol=1e-15, atol=1e-15)
    sig = sda.to_mlp(3, "sigmoid", output_init="zeros")
    torch.testing.assert_close(sig.hidden_activations(x)[0], torch.sigmoid(x @ d0.W.T + d0.b))
    a = sda.to_mlp(3, generator=_g(5))
    b = sda.to_mlp(3, generator=_g(5))
    assert torch.equal(a.linears[-1].weight, b.linears[-1].weight)


def test_dae_pretrainer_fit_encoder_transform(monkeypatch, tmp_path):
    import smithing.pretrain.autoencoder.stacks as mod

    calls = []
    monkeypatch.setattr(
        mod, "train_autoencoder", lambda dae, x, **kw: calls.append((dae, x, kw)) or "H"
    )
    dae = DenoisingAutoencoder(3, 2, generator=_g(1), dtype=D)
    p = DAEPretrainer(dae, epochs=4, corruption="mask")
    assert p.layer is dae and p.activation == "sigmoid" and (p.n_in, p.n_out) == (3, 2)
    x, v, g = torch.rand(4, 3, generator=_g(2), dtype=D), torch.ones(1, 3), _g(0)
    assert p.fit(x, valid=v, generator=g) == "H"
    ((d, xx, kw),) = calls
    assert d is dae and xx is x
    assert kw == {"valid_data": v, "generator": g, "epochs": 4, "corruption": "mask"}
    ck = Checkpointer(tmp_path / "c.safetensors")
    seen = []
    DAEPretrainer(dae, progress=lambda e, r: seen.append(1)).fit(
        x, checkpoint=ck, progress=lambda e, r: seen.append(2)
    )
    assert calls[1][2]["checkpoint"] is ck
    calls[1][2]["progress"](1, {})
    assert seen == [1, 2] and "checkpoint" not in calls[0][2] and "progress" not in calls[0][2]
    w, b = p.encoder()
    assert torch.equal(w, dae.W) and torch.equal(b, dae.b)
    h = p.transform(x)
    assert torch.equal(h, dae.encode(x))
    s = p.transform(x, sample=True, generator=_g(3))
    u = torch.rand(h.shape, generator=_g(3), dtype=D)
    assert s.dtype == D and torch.equal(s, (u < h).double())
    with torch.no_grad():
        dae.W.zero_()  # codes of exactly 1/2: the samples are a coin flip each
    h = p.transform(x)
    s = p.transform(x, sample=True, generator=_g(3))
    assert torch.equal(h, torch.full((4, 2), 0.5, dtype=D))
    assert torch.equal(s, (u < 0.5).double()) and 0 < s.sum() < 8
    drawn = []
    monkeypatch.setattr(mod, "_uniform", lambda t, gen: drawn.append(gen) or t.clone())
    g3 = _g(3)
    assert not p.transform(x, sample=True, generator=g3).any()  # u = h: strictly below fires
    assert drawn == [g3]
    tanh = DAEPretrainer(DenoisingAutoencoder(3, 2, activation="tanh"))
    assert tanh.activation == "tanh"
    assert torch.equal(tanh.transform(x.float()), tanh.dae.encode(x.float()))
    with pytest.raises(ValueError) as e:
        tanh.transform(x.float(), sample=True)
    assert str(e.value) == "sample=True is invalid: expected False for non-sigmoid codes"

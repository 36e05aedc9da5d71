"""The one pretraining path: StackSpec -> pretrain_stack -> Stack.to_mlp -> finetune, the cache,
and the tensors + JSON round trip."""

from __future__ import annotations

import json

import pytest
import torch

from smithing.history import History
from smithing.nn import MLP
from smithing.pretrain import stack as S
from smithing.pretrain.autoencoder import DAEPretrainer, StackedDAE, train_sda
from smithing.pretrain.dbn import DBN, RBMPretrainer, train_dbn
from smithing.pretrain.stack import Stack, StackCache, StackSpec, finetune, pretrain_stack
from tensortools import gen


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls gain nothing from threads, and oversubscribed cores stall them badly."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def binary(n=60, d=12, seed=0):
    return torch.bernoulli(torch.full((n, d), 0.3), generator=gen(seed))


RBM_LAYER = {"epochs": 2, "batch_size": 10, "lr": 0.1}
DAE_LAYER = {"epochs": 2, "batch_size": 10, "lr": 0.1, "rate": 0.2}


def _equal_params(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------------ greedy stacks


def test_rbm_stack_is_dbn_plus_train_dbn_bitwise():
    x = binary()
    g = gen(2)
    stack = pretrain_stack(StackSpec("dbn", [12, 8, 5], RBM_LAYER), x, generator=g)
    g = gen(2)
    ref = DBN([12, 8, 5], generator=g)
    ref_hist = train_dbn(ref, x, layers=RBM_LAYER, generator=g)
    assert isinstance(stack.module, DBN) and _equal_params(stack.module, ref)
    assert [h["recon_error"] for h in stack.histories] == [h["recon_error"] for h in ref_hist]
    assert stack.sizes == (12, 8, 5) and stack.kind == "dbn" and len(stack.layers) == 2
    assert stack.meta == {"mode": "generator"}


def test_dae_stack_is_stacked_dae_plus_train_sda_bitwise():
    x = torch.rand((50, 10), generator=gen(3))
    layers = [{**DAE_LAYER, "rate": 0.1}, {**DAE_LAYER, "rate": 0.3}]
    g = gen(4)
    stack = pretrain_stack(StackSpec("sda", [10, 7, 4], layers), x, generator=g)
    g = gen(4)
    ref = StackedDAE([10, 7, 4], generator=g)
    ref_hist = train_sda(ref, x, layers=layers, generator=g)
    assert isinstance(stack.module, StackedDAE) and _equal_params(stack.module, ref)
    assert [h["loss"] for h in stack.histories] == [h["loss"] for h in ref_hist]


def test_greedy_layers_train_on_the_codes_below():
    x = binary(40, 10, seed=5)
    seen = []

    def spy(i, pretrainer, history):
        seen.append((i, type(pretrainer), len(history["epoch"])))

    for mode in ({"generator": gen(6)}, {"seed": 6}):
        seen.clear()
        stack = pretrain_stack(StackSpec("dbn", [10, 6, 4], RBM_LAYER), x, callback=spy, **mode)
        assert seen == [(0, RBMPretrainer, 2), (1, RBMPretrainer, 2)]
        ups = stack.upward(x)
        assert [u.shape for u in ups] == [(40, 6), (40, 4)]
        torch.testing.assert_close(stack.transform(x), stack.layers[1].hidden_probs(ups[0]))
    seen.clear()
    pretrain_stack(StackSpec("sda", [10, 6, 4], DAE_LAYER), x, seed=7, callback=spy)
    assert [s[1] for s in seen] == [DAEPretrainer, DAEPretrainer]


@pytest.mark.parametrize("kind", ["dbn", "sda"])
def test_unrolled_mlp_starts_from_the_stack(kind):
    x = binary(40, 10, seed=8).double()
    layer = RBM_LAYER if kind == "dbn" else DAE_LAYER
    stack = pretrain_stack(StackSpec(kind, [10, 6, 4], layer), x, generator=gen(9))
    mlp = stack.to_mlp(3, generator=gen(10))
    assert isinstance(mlp, MLP) and mlp.sizes == (10, 6, 4, 3) and mlp.activation == "sigmoid"
    for linear, (W, b) in zip(mlp.linears, stack.encoders()):
        assert torch.equal(linear.weight, W) and torch.equal(linear.bias, b)
    for act, up in zip(mlp.hidden_activations(x), stack.upward(x)):
        torch.testing.assert_close(act, up, rtol=1e-14, atol=1e-15)
    out = stack.to_mlp(3, output_init="zeros")
    assert (out.linears[-1].weight == 0).all()


def test_ensemble_stack_unrolls_member_by_member():
    x = binary(30, 8, seed=11)
    spec = StackSpec("sda", [8, 5, 3], DAE_LAYER, members=3)
    stack = pretrain_stack(spec, x, generator=gen(12))
    assert stack.members == 3 and stack.encoders()[0][0].shape == (3, 5, 8)
    for m in range(3):
        mlp = stack.to_mlp(2, member=m)
        torch.testing.assert_close(mlp.hidden_activations(x)[-1], stack.upward(x)[-1][m])


def test_seeded_layers_do_not_depend_on_the_layers_above():
    x = binary(40, 10, seed=13)
    shallow = pretrain_stack(StackSpec("dbn", [10, 6], RBM_LAYER), x, seed=14)
    deep = pretrain_stack(StackSpec("dbn", [10, 6, 4, 3], RBM_LAYER), x, seed=14)
    assert _equal_params(shallow.layers[0], deep.layers[0])
    other = pretrain_stack(StackSpec("dbn", [10, 6], RBM_LAYER), x, seed=15)
    assert not torch.equal(other.layers[0].W, shallow.layers[0].W)
    assert deep.meta == {"mode": "seeded", "seed": 14}


# ------------------------------------------------------------------ the cache


def _count_fits(monkeypatch) -> list:
    calls = []
    for cls in (RBMPretrainer, DAEPretrainer):
        original = cls.fit

        def fit(self, x, *, valid=None, generator=None, _original=original):
            calls.append(self.n_in)
            return _original(self, x, valid=valid, generator=generator)

        monkeypatch.setattr(cls, "fit", fit)
    return calls


@pytest.mark.parametrize("kind", ["dbn", "sda"])
def test_cache_hit_returns_identical_weights_without_retraining(kind, monkeypatch):
    x = binary(40, 10, seed=16)
    layer = RBM_LAYER if kind == "dbn" else DAE_LAYER
    calls = _count_fits(monkeypatch)
    cache = StackCache(limit=8)
    first = pretrain_stack(StackSpec(kind, [10, 6, 4], layer), x, seed=17, cache=cache)
    assert len(calls) == 2 and len(cache) == 2 and (cache.hits, cache.misses) == (0, 2)
    again = pretrain_stack(StackSpec(kind, [10, 6, 4], layer), x, seed=17, cache=cache)
    assert len(calls) == 2 and cache.hits == 2  # nothing retrained
    assert _equal_params(first.module, again.module)
    assert again.histories == first.histories
    deeper = pretrain_stack(StackSpec(kind, [10, 6, 4, 3], layer), x, seed=17, cache=cache)
    assert calls == [10, 6, 4]  # only the new top layer trains
    for a, b in zip(first.layers, deeper.layers):
        assert _equal_params(a, b)
    uncached = pretrain_stack(StackSpec(kind, [10, 6, 4, 3], layer), x, seed=17)
    assert _equal_params(uncached.module, deeper.module)  # the cache changes nothing but time
    with torch.no_grad():
        again.layers[0].W.zero_()  # the cache holds copies
    third = pretrain_stack(StackSpec(kind, [10, 6], layer), x, seed=17, cache=cache)
    assert _equal_params(third.layers[0], first.layers[0])


def test_a_different_configuration_misses_the_cache(monkeypatch):
    x = binary(40, 10, seed=18)
    calls = _count_fits(monkeypatch)
    cache = StackCache()
    base = StackSpec("dbn", [10, 6], RBM_LAYER)
    pretrain_stack(base, x, seed=19, cache=cache)
    variants = [
        (StackSpec("dbn", [10, 6], {**RBM_LAYER, "lr": 0.05}), x, 19, None),  # settings
        (StackSpec("dbn", [10, 5], RBM_LAYER), x, 19, None),  # sizes
        (StackSpec("dbn", [10, 6], RBM_LAYER, options={"init_std": 0.1}), x, 19, None),
        (StackSpec("sda", [10, 6], DAE_LAYER), x, 19, None),  # kind
        (base, x, 20, None),  # seed
        (base, binary(40, 10, seed=99), 19, None),  # data (by digest)
        (base, x, 19, "named data"),  # data (by key)
    ]
    for spec, data, seed, key in variants:
        n = len(calls)
        pretrain_stack(spec, data, seed=seed, cache=cache, data_key=key)
        assert len(calls) == n + 1, spec
    assert cache.hits == 0 and cache.misses == 1 + len(variants)
    # the upper layer's key covers the layers below: a changed bottom layer misses above too
    two = StackSpec("dbn", [10, 6, 4], RBM_LAYER)
    two_lr = StackSpec("dbn", [10, 6, 4], [{**RBM_LAYER, "lr": 0.05}, RBM_LAYER])
    assert StackCache.key(
        two, 1, seed=1, data_key="d", device="cpu", dtype=torch.float32
    ) != StackCache.key(two_lr, 1, seed=1, data_key="d", device="cpu", dtype=torch.float32)
    cache.clear()
    assert len(cache) == 0 and cache.hits == cache.misses == 0


def test_cache_limit_drops_the_least_recently_used():
    cache = StackCache(limit=2)
    t = {"W": torch.zeros(1)}
    cache.put("a", t, {})
    cache.put("b", t, {})
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", t, {})
    assert "a" in cache and "c" in cache and "b" not in cache and len(cache) == 2
    with pytest.raises(ValueError, match="limit=0 is invalid"):
        StackCache(limit=0)


# ------------------------------------------------------------------ tensors + JSON


@pytest.mark.parametrize(
    ("kind", "spec_kw", "data"),
    [
        ("dbn", {"options": {"visible": "gaussian", "learn_variance": True}}, "real"),
        ("dbn", {"members": 2, "propagate": "samples"}, "binary"),
        ("sda", {"options": {"tied": False, "loss": "squared_error"}}, "real"),
        ("sda", {"activation": "tanh"}, "binary"),
    ],
)
def test_state_round_trip_is_exact(kind, spec_kw, data):
    x = torch.randn((40, 8), generator=gen(21)) if data == "real" else binary(40, 8, seed=21)
    layer = {**(RBM_LAYER if kind == "dbn" else DAE_LAYER), "epochs": 1}
    if kind == "dbn" and spec_kw.get("options", {}).get("visible") == "gaussian":
        layer["lr"] = 0.01
    stack = pretrain_stack(StackSpec(kind, [8, 5, 3], layer, **spec_kw), x, generator=gen(22))
    tensors = stack.state_tensors()
    desc = stack.describe()
    assert all(isinstance(t, torch.Tensor) and t.is_contiguous() for t in tensors.values())
    assert "layers.0.W" in tensors and "layers.1.c" in tensors
    desc = json.loads(json.dumps(desc))  # JSON-able
    back = Stack.from_state(desc, {k: v.clone() for k, v in tensors.items()})
    assert back.spec == stack.spec and back.histories == stack.histories  # History, exact
    assert all(isinstance(h, History) for h in back.histories)
    assert type(back.module) is type(stack.module) and _equal_params(back.module, stack.module)
    for (W, b), (W2, b2) in zip(stack.encoders(), back.encoders()):
        assert torch.equal(W, W2) and torch.equal(b, b2)
    xs = x[:5]
    assert torch.equal(back.transform(xs), stack.transform(xs))
    if spec_kw.get("options", {}).get("learn_variance"):
        assert "layers.0.log_var" in tensors
    if spec_kw.get("options", {}).get("tied") is False:
        assert "layers.0.W_dec" in tensors


def test_state_round_trip_through_safetensors(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    x = binary(30, 8, seed=23)
    stack = pretrain_stack(StackSpec("dbn", [8, 4], RBM_LAYER), x, seed=24)
    safetensors.save_file(stack.state_tensors(), tmp_path / "stack.safetensors")
    (tmp_path / "stack.json").write_text(json.dumps(stack.describe()))
    back = Stack.from_state(
        json.loads((tmp_path / "stack.json").read_text()),
        safetensors.load_file(tmp_path / "stack.safetensors"),
    )
    assert _equal_params(back.module, stack.module) and back.meta == stack.meta
    mlp = back.to_mlp(2)
    assert torch.equal(mlp.linears[0].weight, stack.encoders()[0][0])


def test_from_state_rejects_mismatched_tensors():
    stack = pretrain_stack(StackSpec("dbn", [8, 4], RBM_LAYER), binary(20, 8), seed=25)
    desc, tensors = stack.describe(), stack.state_tensors()
    with pytest.raises(ValueError, match=r"missing \['layers.0.W'\]"):
        Stack.from_state(desc, {k: v for k, v in tensors.items() if k != "layers.0.W"})
    with pytest.raises(ValueError, match=r"tensors\['layers.0.W'\].shape=\(4, 8\) is invalid"):
        Stack.from_state(desc, {**tensors, "layers.0.W": torch.zeros(4, 8)})
    with pytest.raises(ValueError, match="description\\['format'\\]"):
        Stack.from_state({**desc, "format": "other"}, tensors)


def test_spec_to_dict_round_trip_and_prefix():
    spec = StackSpec(
        "sda", [10, 6, 4], [{"rate": 0.1}, {"rate": 0.2, "emphasis": (1.0, 0.5)}], members=2
    )
    d = json.loads(json.dumps(spec.to_dict()))
    assert StackSpec.from_dict(d).to_dict() == spec.to_dict()
    assert spec.layers == ({"rate": 0.1}, {"rate": 0.2, "emphasis": (1.0, 0.5)})
    top = spec.prefix(1)
    assert top.sizes == (10, 6) and top.layers == ({"rate": 0.1},) and top.members == 2
    schedule = StackSpec("dbn", [4, 2], {"momentum": lambda epoch: 0.5})
    assert isinstance(json.loads(json.dumps(schedule.to_dict()))["layers"][0]["momentum"], str)


def test_spec_validation_messages():
    with pytest.raises(ValueError, match=r"unknown pretraining stack 'rbm'.*valid: dbn, sda"):
        StackSpec("rbm", [4, 2])
    with pytest.raises(ValueError, match=r"sizes=\[4\] is invalid"):
        StackSpec("dbn", [4])
    with pytest.raises(ValueError, match="activation='tanh' is invalid.*'dbn' stack"):
        StackSpec("dbn", [4, 2], activation="tanh")
    with pytest.raises(ValueError, match="propagate='samples' is invalid.*non-sigmoid"):
        StackSpec("sda", [4, 2], activation="relu", propagate="samples")
    with pytest.raises(ValueError, match=r"options\['tied'\]=False is invalid.*'dbn' stack"):
        StackSpec("dbn", [4, 2], options={"tied": False})
    with pytest.raises(ValueError, match="layers='1 settings' is invalid: expected one per layer"):
        StackSpec("dbn", [4, 3, 2], [{}])
    spec, x = StackSpec("dbn", [4, 2]), binary(10, 4)
    with pytest.raises(ValueError, match=r"data.shape=\(10, 3\) is invalid: expected \(n, 4\)"):
        pretrain_stack(spec, x[:, :3], seed=0)
    with pytest.raises(ValueError, match="seed=0 is invalid.*one randomness mode"):
        pretrain_stack(spec, x, generator=gen(), seed=0)
    with pytest.raises(ValueError, match="cache=.* is invalid.*only layer-seeded"):
        pretrain_stack(spec, x, generator=gen(), cache=StackCache())


# ------------------------------------------------------------------ fine-tuning


def test_finetune_passes_the_options_to_fit():
    seen = {}

    def fake_fit(model, data, **options):
        seen.update(model=model, data=data, **options)
        return "history"

    model = MLP(4, [3], 2, "sigmoid")
    assert finetune(model, "data", fit=fake_fit, epochs=3, lr=0.1) == "history"
    assert seen == {"model": model, "data": "data", "epochs": 3, "lr": 0.1}
    with pytest.raises(ValueError, match="fit=None is invalid"):
        finetune(model, "data", fit=None)


def test_pretrain_unroll_finetune_end_to_end():
    from smithing.data import Dataset, Split
    from smithing.train import fit

    x = binary(60, 8, seed=26)
    y = (x[:, :4].sum(1) > x[:, 4:].sum(1)).long()
    splits = [Split(x[a:b], y[a:b]) for a, b in ((0, 40), (40, 50), (50, 60))]
    data = Dataset("toy", *splits, n_classes=2, input_shape=(8,))
    stack = pretrain_stack(StackSpec("dbn", [8, 6], RBM_LAYER), data.train.x, generator=gen(27))
    model = stack.to_mlp(2, generator=gen(28))
    hist = finetune(model, data, fit=fit, epochs=2, lr=0.1, batch_size=10, seed=0)
    assert hist.status == "done" and len(hist.epochs) == 2
    assert not torch.equal(model.linears[0].weight, stack.encoders()[0][0])  # it trained


def test_reexports_of_the_functional_core():
    from smithing.pretrain import greedy

    for name in ("greedy_stack", "to_mlp", "pretrained_weights", "OUTPUT_INITS"):
        assert getattr(S, name) is getattr(greedy, name)


@pytest.mark.parametrize("kind,layer", [("dbn", RBM_LAYER), ("sda", DAE_LAYER)])
@pytest.mark.parametrize("mode", [{"generator": "g"}, {"seed": 3}], ids=["shared", "seeded"])
def test_pretraining_reports_every_epoch_of_every_layer_as_a_phase(kind, layer, mode):
    x = binary()
    calls: list[tuple[int, int, str]] = []
    mode = {"generator": gen()} if "generator" in mode else mode
    spec = StackSpec(kind, [12, 8, 5], layer)
    pretrain_stack(spec, x, progress=lambda e, n, phase: calls.append((e, n, phase)), **mode)
    assert calls == [(1, 2, "layer0"), (2, 2, "layer0"), (1, 2, "layer1"), (2, 2, "layer1")]
    # reporting changes nothing: the same stack without a progress callback
    mode2 = {"generator": gen()} if "generator" in mode else mode
    a = pretrain_stack(spec, x, **mode2).module
    mode3 = {"generator": gen()} if "generator" in mode else mode
    b = pretrain_stack(spec, x, progress=lambda *_: None, **mode3).module
    assert _equal_params(a, b)

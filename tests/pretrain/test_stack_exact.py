"""pretrain_stack and Stack against what their docstrings say (written for stack.py's mutants):
layer-seeded pretraining written out layer by layer (seeds ``seed + 7919 l``, codes
``s(x W^T + b)``, sampled codes with seeds ``seed + 104729 (l + 1)``, the validation data
carried up beside them), the shared-generator mode's ``propagate`` and ``valid_data``, the
cache's key on the validation data, and ``from_state``'s checks with their full messages."""

from __future__ import annotations

import copy

import pytest
import torch

from smithing.pretrain.stack import STACK_KINDS, Stack, StackCache, StackSpec, pretrain_stack
from tensortools import same_state

D = torch.float64
RBM = {"epochs": 2, "batch_size": 5, "lr": 0.1}
DAE = {"epochs": 2, "batch_size": 5, "lr": 0.1, "rate": 0.2}


def binary(n=10, d=6, seed=0, dtype=D):
    return torch.bernoulli(torch.full((n, d), 0.4, dtype=dtype),
                           generator=torch.Generator().manual_seed(seed))  # fmt: skip


def reference(spec, x, valid, seed):
    """Layer-seeded greedy pretraining, as the module docstring states it."""
    kind = STACK_KINDS.get(spec.kind)
    layers, histories = [], []
    for i in range(spec.n_layers):
        g = torch.Generator().manual_seed(seed + 7919 * i)
        layer = kind.layer(spec, i, generator=g, device=x.device, dtype=x.dtype)
        histories.append(kind.pretrainer(layer, spec, i).fit(x, valid=valid, generator=g))
        layers.append(layer)
        W, b = layer.encoder()  # (*M, out, in), (*M, out)
        act = torch.sigmoid if spec.activation == "sigmoid" else torch.tanh
        x = act(x @ W.transpose(-1, -2) + b.unsqueeze(-2))
        if spec.propagate == "samples":
            gs = torch.Generator().manual_seed(seed + 104729 * (i + 1))
            x = (torch.rand(x.shape, generator=gs, dtype=x.dtype) < x).to(x.dtype)
        if valid is not None:
            valid = act(valid.to(x.dtype) @ W.transpose(-1, -2) + b.unsqueeze(-2))
    return layers, histories


@pytest.mark.parametrize(
    "spec",
    [
        StackSpec("dbn", [6, 5, 4, 3], RBM, propagate="samples"),
        StackSpec("dbn", [6, 4, 3], RBM),
        StackSpec("sda", [6, 5, 4], DAE, activation="tanh", members=2),
    ],
    ids=["dbn-samples", "dbn-probs", "sda-tanh-ensemble"],
)
def test_layer_seeded_pretraining_written_out(spec):
    x = binary(n=10)
    valid = binary(n=4, seed=1, dtype=torch.float32)  # converted to the data's dtype
    stack = pretrain_stack(spec, x, seed=3, valid_data=valid)
    layers, histories = reference(spec, x, valid, seed=3)
    assert len(stack.layers) == len(layers) == len(stack.histories) == spec.n_layers
    for got, want in zip(stack.layers, layers):
        assert same_state(got, want)
    key = "free_energy_valid" if spec.kind == "dbn" else "recon_loss_valid"
    for got, want in zip(stack.histories, histories):
        assert got[key] == want[key] and len(got[key]) == 2
    assert stack.meta == {"mode": "seeded", "seed": 3}


def test_shared_mode_passes_on_propagate_and_the_validation_data():
    x, valid = binary(n=10), binary(n=4, seed=1)
    g = torch.Generator().manual_seed(4)
    probs = pretrain_stack(StackSpec("dbn", [6, 4, 3], RBM), x, generator=g, valid_data=valid)
    g = torch.Generator().manual_seed(4)
    samples = pretrain_stack(StackSpec("dbn", [6, 4, 3], RBM, propagate="samples"), x,
                             generator=g, valid_data=valid)  # fmt: skip
    assert same_state(probs.layers[0], samples.layers[0]) and not same_state(
        probs.layers[1], samples.layers[1]
    )
    assert all(len(h["free_energy_valid"]) == 2 for h in probs.histories)
    assert probs.meta == {"mode": "generator"} and len(probs.histories) == 2


def test_the_cache_keys_on_the_validation_data():
    x = binary(n=10)
    cache = StackCache()
    spec = StackSpec("dbn", [6, 4], RBM)
    pretrain_stack(spec, x, seed=5, cache=cache, valid_data=binary(n=4, seed=1))
    pretrain_stack(spec, x, seed=5, cache=cache, valid_data=binary(n=4, seed=2))
    pretrain_stack(spec, x, seed=5, cache=cache)
    assert (cache.hits, cache.misses) == (0, 3)
    pretrain_stack(spec, x, seed=5, cache=cache, valid_data=binary(n=4, seed=2))
    assert cache.hits == 1


def test_what_a_stack_offers():
    x = binary(n=10)
    stack = pretrain_stack(StackSpec("sda", [6, 5, 4, 3], DAE, activation="tanh"), x, seed=6)
    codes = stack.upward(x)
    assert torch.equal(stack.transform(x), codes[-1]) and codes[-1].shape == (10, 3)
    assert repr(stack) == "Stack(kind='sda', sizes=[6, 5, 4, 3], activation='tanh')"
    ens = pretrain_stack(StackSpec("dbn", [6, 4], RBM, members=2), torch.stack([x, x.flip(0)]),
                         seed=6)  # fmt: skip
    assert repr(ens) == "Stack(kind='dbn', sizes=[6, 4], activation='sigmoid', members=2)"
    assert Stack(ens.spec, ens.module, [{"a": 1}]).describe()["histories"] == [{"a": 1}]
    assert stack.to_mlp(3).activation == "tanh"
    assert stack.to_mlp(3, activation="relu").activation == "relu"
    d = stack.describe()
    assert d["tensors"] == {k: list(v.shape) for k, v in stack.state_tensors().items()}
    assert d["dtype"] == "float64" and d["meta"] == {"mode": "seeded", "seed": 6}


def test_messages_of_pretrain_stack_and_finetune():
    from smithing.pretrain.stack import finetune

    with pytest.raises(ValueError) as err:
        pretrain_stack({"kind": "dbn"}, binary())
    assert str(err.value) == "spec='dict' is invalid: expected a StackSpec"
    with pytest.raises(ValueError) as err:
        pretrain_stack(StackSpec("dbn", [6, 4], RBM), [[0.0] * 6])
    assert str(err.value) == "data='list' is invalid: expected a tensor (n, n_inputs)"
    with pytest.raises(ValueError) as err:
        finetune(torch.nn.Linear(2, 2), None, fit="fit")
    assert str(err.value) == (
        "fit='fit' is invalid: expected a training function such as smithing.train.fit"
    )


def described():
    stack = pretrain_stack(StackSpec("dbn", [6, 4], RBM), binary(n=10), seed=7)
    return stack, stack.describe(), stack.state_tensors()


def test_from_state_rebuilds_exactly_in_the_described_dtype_and_device():
    stack, d, t = described()
    again = Stack.from_state(d, t)
    assert same_state(again.module, stack.module) and again.layers[0].W.dtype == D
    assert again.layers[0].W.device.type == "cpu" and again.meta == stack.meta
    assert [h.epochs for h in again.histories] == [h.epochs for h in stack.histories]
    on = Stack.from_state(d, t, device="cpu")
    assert same_state(on.module, stack.module)
    odd = dict(d, histories=[{"note": {"deep": 1}}, [1, [2]]])
    got = Stack.from_state(odd, t).histories
    assert got == [{"note": {"deep": 1}}, [1, [2]]]
    assert (
        got[0]["note"] is not odd["histories"][0]["note"]
        and got[1][1] is not odd["histories"][1][1]
    )
    before = torch.get_rng_state()
    Stack.from_state(d, t)  # builds throwaway layers without touching the global generator
    assert torch.equal(torch.get_rng_state(), before)


def message(d, t):
    with pytest.raises(ValueError) as err:
        Stack.from_state(d, t)
    return str(err.value)


def test_from_state_messages():
    _, d, t = described()
    assert message(dict(d, format="other"), t) == (
        "description['format']='other' is invalid: expected 'smithing.pretrain.stack'"
    )
    assert message({k: v for k, v in d.items() if k != "format"}, t) == (
        "description['format']=None is invalid: expected 'smithing.pretrain.stack'"
    )
    assert message(dict(d, version=2), t) == "description['version']=2 is invalid: expected 1"
    assert message(dict(d, dtype="float99"), t) == (
        "description['dtype']='float99' is invalid: expected a torch dtype name"
    )
    assert message(dict(d, dtype="nn"), t) == (
        "description['dtype']='nn' is invalid: expected a torch dtype name"
    )
    assert message(d, {}) == "tensors={} is invalid: expected the stack's state tensors"
    extra = dict(t, **{"layers.1.W": torch.zeros(1)})
    missing = {k: v for k, v in t.items() if k != "layers.0.c"}
    assert message(d, extra) == (
        "tensors=\"missing [], unexpected ['layers.1.W']\" is invalid: expected exactly the "
        "tensors of the described stack"
    )
    assert message(d, missing) == (
        "tensors=\"missing ['layers.0.c'], unexpected []\" is invalid: expected exactly the "
        "tensors of the described stack"
    )
    bad = dict(t, **{"layers.0.W": torch.zeros(4, 6, dtype=D)})
    assert message(d, bad) == "tensors['layers.0.W'].shape=(4, 6) is invalid: expected (6, 4)"
    one = {"layers.0.W": t["layers.0.W"]}
    assert "missing ['layers.0.b', 'layers.0.c']" in message(copy.deepcopy(d), one)


def test_messages_of_the_randomness_and_data_arguments():
    spec, x = StackSpec("dbn", [6, 4], RBM), binary()

    def msg(*a, **kw):
        with pytest.raises(ValueError) as err:
            pretrain_stack(*a, **kw)
        return str(err.value)

    assert msg(spec, x[:, :5], seed=1) == "data.shape=(10, 5) is invalid: expected (n, 6)"
    assert msg(StackSpec("dbn", [6, 4], RBM, members=2), x[None, None], seed=1) == (
        "data.shape=(1, 1, 10, 6) is invalid: expected (n, 6) or (M, n, 6)"
    )
    assert msg(spec, x, seed=1, generator=torch.Generator()) == (
        "seed=1 is invalid: expected None when a generator is given (one randomness mode: "
        "shared generator or layer seeds)"
    )
    cache = StackCache()
    assert msg(spec, x, cache=cache) == (
        f"cache={cache!r} is invalid: expected None unless seed= is given (only layer-seeded "
        "stacks can be cached)"
    )
    for bad in (1.0, True):
        assert msg(spec, x, seed=bad) == (
            f"seed={bad} is invalid: expected an int (or None with a generator)"
        )


def test_an_ensemble_on_data_of_its_own_per_member():
    x = torch.stack([binary(seed=1), binary(seed=2)])  # (2, 10, 6)
    stack = pretrain_stack(StackSpec("dbn", [6, 4, 3], RBM, members=2), x, seed=8)
    assert stack.layers[1].W.shape == (2, 4, 3) and stack.transform(x).shape == (2, 10, 3)


def test_a_cache_hit_builds_the_layer_quietly_and_reports_it():
    x = binary(n=10)
    spec = StackSpec("dbn", [6, 4], RBM)
    cache = StackCache()
    first = pretrain_stack(spec, x, seed=9, cache=cache)
    seen, calls = [], []
    before = torch.get_rng_state()
    hit = pretrain_stack(spec, x, seed=9, cache=cache, progress=lambda *a: calls.append(a),
                         callback=lambda i, pre, h: seen.append((i, pre.layer, h)))  # fmt: skip
    assert cache.hits == 1 and torch.equal(torch.get_rng_state(), before)
    assert hit.layers[0].W.dtype == D and same_state(hit.layers[0], first.layers[0])
    assert seen == [(0, hit.layers[0], hit.histories[0])] and calls == []  # a hit reports none


def test_progress_reports_each_layers_epochs():
    calls = []
    pretrain_stack(StackSpec("dbn", [6, 4, 3], RBM), binary(), seed=10,
                   progress=lambda e, n, phase: calls.append((e, n, phase)))  # fmt: skip
    assert calls == [(1, 2, "layer0"), (2, 2, "layer0"), (1, 2, "layer1"), (2, 2, "layer1")]
    calls.clear()
    pretrain_stack(StackSpec("dbn", [6, 4], {"batch_size": 5}), binary(), seed=10,
                   progress=lambda e, n, phase: calls.append((e, n, phase)))  # fmt: skip
    assert calls[0] == (1, 0, "layer0") and len(calls) == 10  # train_rbm's 10; the total unknown


def test_the_cache_keys_on_the_dtype_also_with_a_named_data_key():
    x, cache = binary(n=10), StackCache()
    spec = StackSpec("dbn", [6, 4], RBM)
    pretrain_stack(spec, x.float(), seed=5, cache=cache, data_key="digits")
    hit = pretrain_stack(spec, x, seed=5, cache=cache, data_key="digits")
    assert (cache.hits, cache.misses) == (0, 2) and hit.layers[0].W.dtype == D

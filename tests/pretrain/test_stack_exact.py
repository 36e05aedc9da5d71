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

D = torch.float64
RBM = {"epochs": 2, "batch_size": 5, "lr": 0.1}
DAE = {"epochs": 2, "batch_size": 5, "lr": 0.1, "rate": 0.2}


def binary(n=10, d=6, seed=0, dtype=D):
    return torch.bernoulli(torch.full((n, d), 0.4, dtype=dtype),
                           generator=torch.Generator().manual_seed(seed))  # fmt: skip


def same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


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
    assert len(stack.layers) == len(layers) == spec.n_layers
    for got, want in zip(stack.layers, layers):
        assert same(got, want)
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
    assert same(probs.layers[0], samples.layers[0]) and not same(probs.layers[1], samples.layers[1])
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
    stack = pretrain_stack(StackSpec("sda", [6, 5, 4], DAE, activation="tanh"), x, seed=6)
    codes = stack.upward(x)
    assert torch.equal(stack.transform(x), codes[-1]) and codes[-1].shape == (10, 4)
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
    assert same(again.module, stack.module) and again.layers[0].W.dtype == D
    assert again.layers[0].W.device.type == "cpu" and again.meta == stack.meta
    assert [h.epochs for h in again.histories] == [h.epochs for h in stack.histories]
    on = Stack.from_state(d, t, device="cpu")
    assert same(on.module, stack.module)
    odd = dict(d, histories=[{"note": "not a history"}, [1, 2]])
    got = Stack.from_state(odd, t).histories
    assert got == [{"note": "not a history"}, [1, 2]] and got[0] is not odd["histories"][0]


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

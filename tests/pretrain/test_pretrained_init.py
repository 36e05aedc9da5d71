"""The ``pretrained`` initializer's ``"dbn"`` / ``"sda"`` sources (registered by the experiment
layer on top of the one stack API) and the process's layer cache."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import smithing.experiment  # noqa: F401  (registers the sources)
from smithing import init
from smithing.experiment import pretrained as P
from smithing.nn import MLP
from smithing.pretrain.stack import StackSpec, pretrain_stack
from tensortools import gen


@pytest.fixture(autouse=True)
def _one_thread_and_fresh_cache():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    P.clear_cache()
    yield
    P.clear_cache()
    torch.set_num_threads(n)


OPTS = {"epochs": 1, "batch_size": 50}


@pytest.mark.parametrize("kind", ["sda", "dbn"])
def test_sources_pretrain_on_a_named_dataset_and_reuse_layers(kind):
    from smithing.data import load

    assert kind in init.PRETRAINED
    shallow = MLP(64, [16], 10, "sigmoid")
    deep = MLP(64, [16, 16], 10, "sigmoid")
    for model in (shallow, deep):
        init.apply(
            model,
            "pretrained",
            generator=gen(28),
            source=kind,
            dataset="digits",
            n_train=200,
            layer_options=OPTS,
            device="cpu",
        )
    cache = P.stack_cache()
    assert (cache.hits, cache.misses, len(cache)) == (1, 2, 2)  # deep's layer 1 is shallow's
    # layer 1 of the deeper net is the shallow net's (greedy: it ignores the layers above)
    assert torch.equal(shallow.linears[0].weight, deep.linears[0].weight)
    assert not torch.equal(deep.linears[1].weight, torch.zeros(16, 16))
    # the same layer from a data tensor, and from the stack API directly
    x_digits = load("digits").train.x[:200]
    from_tensor = MLP(64, [16], 10, "sigmoid")
    init.apply(
        from_tensor,
        "pretrained",
        generator=gen(28),
        source=kind,
        data=x_digits,
        layer_options=OPTS,
        device="cpu",
        cache=False,
    )
    assert torch.equal(from_tensor.linears[0].weight, shallow.linears[0].weight)
    seed = int(torch.randint(0, 2**62, (1,), generator=gen(28)).item())
    stack = pretrain_stack(StackSpec(kind, [64, 16], OPTS), x_digits, seed=seed)
    direct = MLP(64, [16], 10, "sigmoid")
    init.apply(direct, "pretrained", source=stack.encoders())
    assert torch.equal(direct.linears[0].weight, shallow.linears[0].weight)
    assert torch.equal(direct.linears[0].bias, shallow.linears[0].bias)


def test_tensor_data_is_cached_by_content_and_clear_cache_forgets():
    x = torch.rand((100, 12), generator=gen(1))
    model = MLP(12, [6], 2, "sigmoid")
    kw = {"source": "sda", "data": x, "layer_options": OPTS, "device": "cpu"}
    init.apply(model, "pretrained", generator=gen(2), **kw)
    init.apply(MLP(12, [6], 2, "sigmoid"), "pretrained", generator=gen(2), **kw)
    assert P.stack_cache().hits == 1
    P.clear_cache()
    assert len(P.stack_cache()) == 0
    kw["data"] = x + 0  # equal contents: the same key
    init.apply(MLP(12, [6], 2, "sigmoid"), "pretrained", generator=gen(2), **kw)
    init.apply(MLP(12, [6], 2, "sigmoid"), "pretrained", generator=gen(2), **kw)
    assert P.stack_cache().hits == 1


def test_source_options_reach_the_stack():
    x = torch.rand((60, 8), generator=gen(3))
    model = MLP(8, [5, 4], 2, "tanh")
    init.apply(
        model,
        "pretrained",
        generator=gen(4),
        source="sda",
        data=x,
        layer_options=[{**OPTS, "rate": 0.3}],
        stack_options={"loss": "squared_error"},
        n_layers=1,
        device="cpu",
    )  # tanh codes from model.activation; only the first layer pretrained
    seed = int(torch.randint(0, 2**62, (1,), generator=gen(4)).item())
    spec = StackSpec(
        "sda", [8, 5], [{**OPTS, "rate": 0.3}], activation="tanh", options={"loss": "squared_error"}
    )
    stack = pretrain_stack(spec, x, seed=seed)
    assert torch.equal(model.linears[0].weight, stack.encoders()[0][0])
    with pytest.raises(ValueError, match=r"options\['visible'\]='gaussian' is invalid"):
        init.apply(
            MLP(8, [5], 2, "sigmoid"),
            "pretrained",
            source="sda",
            data=x,
            stack_options={"visible": "gaussian"},
            device="cpu",
        )
    with pytest.raises(ValueError, match="activation='relu' is invalid.*'dbn' stack"):
        init.apply(MLP(8, [5], 2, "relu"), "pretrained", source="dbn", data=x, device="cpu")


def test_without_the_experiment_layer_the_error_says_what_to_import():
    code = (
        "import torch\n"
        "from smithing import init\n"
        "from smithing.nn import MLP\n"
        "import smithing.pretrain\n"  # the core alone registers nothing
        "try:\n"
        "    init.apply(MLP(4, [3], 2, 'sigmoid'), 'pretrained', source='sda',"
        " data=torch.rand(10, 4))\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "unknown pretrained source 'sda'" in out
    assert "import smithing.experiment" in out

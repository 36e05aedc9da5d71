"""Greedy stacks with checkpoints (pretrain_stack, train_dbn, train_sda): one child checkpoint
per layer; interrupted in any layer then resumed, the stack ends bitwise equal to the stack
trained uninterrupted; finished layers are restored, not trained again; a cache hit needs no
checkpoint; removing the parent removes every layer's file."""

from __future__ import annotations

import pytest
import torch

from checkpoint_tools import Interrupted
from smithing.checkpoint import Checkpointer, read_checkpoint
from smithing.pretrain import rbm as rbm_module
from smithing.pretrain.autoencoder import StackedDAE, train_sda
from smithing.pretrain.dbn import DBN, train_dbn
from smithing.pretrain.stack import StackCache, StackSpec, pretrain_stack


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def crash_after(monkeypatch):
    """``crash_after(n)``: every Checkpointer (children included) dies right after the ``n``-th
    save of the whole process."""
    count = {"saves": 0, "limit": None}
    save = Checkpointer.save

    def counting(self, state):
        dt = save(self, state)
        count["saves"] += 1
        if count["limit"] is not None and count["saves"] == count["limit"]:
            raise Interrupted
        return dt

    monkeypatch.setattr(Checkpointer, "save", counting)

    def arm(n):
        count["saves"], count["limit"] = 0, n

    yield arm
    count["limit"] = None


def binary(n=50, d=12, seed=0):
    return torch.bernoulli(torch.full((n, d), 0.3), generator=torch.Generator().manual_seed(seed))


DBN_SPEC = StackSpec(
    "dbn",
    [12, 8, 6, 4],
    [
        {"epochs": 3, "batch_size": 10, "lr": 0.1, "method": "pcd", "n_chains": 6},
        {"epochs": 3, "batch_size": 10, "lr": 0.1, "k": 2},
        {"epochs": 2, "batch_size": 10, "lr": 0.05, "momentum": "hinton"},
    ],
    propagate="samples",
)
SDA_SPEC = StackSpec(
    "sda",
    [12, 7, 5],
    [
        {"epochs": 3, "batch_size": 10, "lr": 0.1, "rate": 0.2},
        {"epochs": 3, "batch_size": 10, "lr": 0.1, "rate": 0.3, "corruption": "gaussian"},
    ],
)


def _timeless(histories):
    return [[{k: v for k, v in e.items() if k != "seconds"} for e in h.epochs] for h in histories]


def _same_stack(a, b):
    ta, tb = a.state_tensors(), b.state_tensors()
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    assert _timeless(a.histories) == _timeless(b.histories)


def _shared(ckpt=None):
    torch.manual_seed(3)
    g = torch.Generator().manual_seed(4)
    stack = pretrain_stack(DBN_SPEC, binary(), generator=g, valid_data=binary(20, seed=1),
                           checkpoint=ckpt)  # fmt: skip
    return stack, torch.rand(3, generator=g), torch.rand(3)


# 5 batches per epoch, one save per batch (the last of an epoch is an epoch-end save) and a
# final save per layer: layer 0 makes 3 * 5 = 15 saves, layer 1 as many, layer 2 10
@pytest.mark.parametrize("crash", [7, 15, 16, 23, 36])
def test_shared_generator_stack_resumes_bitwise(tmp_path, crash_after, crash):
    ref_stack, ref_g, ref_global = _shared()
    parent = Checkpointer(tmp_path / "run.safetensors", min_interval_s=0, every_batches=1)
    crash_after(crash)
    with pytest.raises(Interrupted):
        _shared(parent)
    crash_after(None)
    done = {p.name for p in tmp_path.iterdir() if not p.name.endswith(".prev")}
    assert "run.layer0.safetensors" in done
    stack, g_after, global_after = _shared(
        Checkpointer(tmp_path / "run.safetensors", min_interval_s=0, every_batches=1)
    )
    _same_stack(stack, ref_stack)
    assert torch.equal(g_after, ref_g) and torch.equal(global_after, ref_global)
    for i in range(3):
        assert read_checkpoint(tmp_path / f"run.layer{i}.safetensors")["finished"]


def test_finished_layers_are_not_trained_again(tmp_path, monkeypatch):
    parent = Checkpointer(tmp_path / "run.safetensors", min_interval_s=3600)
    ref_stack, ref_g, ref_global = _shared(parent)
    assert parent.saves == 3  # one final save per layer: the children's count in the parent's
    calls = []
    train = rbm_module.train_rbm

    def spy(*args, **kw):
        calls.append(1)
        return train(*args, **kw)

    monkeypatch.setattr("smithing.pretrain.dbn.train_rbm", spy)
    batches = []
    monkeypatch.setattr(rbm_module, "reconstruction_error", lambda *a: batches.append(1) / 0)
    stack, g_after, global_after = _shared(Checkpointer(tmp_path / "run.safetensors"))
    assert len(calls) == 3 and batches == []  # each layer's trainer ran, none trained
    _same_stack(stack, ref_stack)
    assert torch.equal(g_after, ref_g) and torch.equal(global_after, ref_global)

    parent.remove()
    assert list(tmp_path.iterdir()) == []


def _seeded(ckpt=None, cache=None):
    return pretrain_stack(SDA_SPEC, binary(), seed=9, cache=cache, checkpoint=ckpt)


@pytest.mark.parametrize("crash", [4, 19])
def test_seeded_stack_resumes_bitwise_and_a_cache_hit_needs_no_checkpoint(
    tmp_path, crash_after, crash
):
    ref = _seeded()
    crash_after(crash)
    with pytest.raises(Interrupted):
        _seeded(Checkpointer(tmp_path / "a.safetensors", min_interval_s=0, every_batches=1))
    crash_after(None)
    cache = StackCache()
    stack = _seeded(Checkpointer(tmp_path / "a.safetensors", min_interval_s=0), cache)
    _same_stack(stack, ref)
    assert len(cache) == 2

    shallow = StackSpec("sda", SDA_SPEC.sizes[:2], SDA_SPEC.layers[:1])
    ck = Checkpointer(tmp_path / "b.safetensors", min_interval_s=0)
    hit = pretrain_stack(shallow, binary(), seed=9, cache=cache, checkpoint=ck)
    assert ck.saves == 0 and not list(tmp_path.glob("b.*"))  # from the cache: no checkpoint
    assert torch.equal(hit.state_tensors()["layers.0.W"], ref.state_tensors()["layers.0.W"])


def test_train_dbn_and_train_sda_take_a_checkpoint(tmp_path, crash_after):
    x = binary()

    def dbn(ck=None):
        g = torch.Generator().manual_seed(1)
        model = DBN([12, 6, 4], generator=g)
        hist = train_dbn(model, x, layers={"epochs": 2, "batch_size": 10}, generator=g,
                         checkpoint=ck)  # fmt: skip
        return model, hist

    def sda(ck=None):
        g = torch.Generator().manual_seed(1)
        model = StackedDAE([12, 6, 4], generator=g)
        hist = train_sda(model, x, layers={"epochs": 2, "batch_size": 10, "rate": 0.25},
                         generator=g, checkpoint=ck)  # fmt: skip
        return model, hist

    for name, train in (("dbn", dbn), ("sda", sda)):
        ref_model, ref_hist = train()
        crash_after(7)
        with pytest.raises(Interrupted):
            train(Checkpointer(tmp_path / f"{name}.st", min_interval_s=0, every_batches=1))
        crash_after(None)
        model, hist = train(Checkpointer(tmp_path / f"{name}.st", min_interval_s=0))
        sa, sb = model.state_dict(), ref_model.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert _timeless(hist) == _timeless(ref_hist)
        assert (tmp_path / f"{name}.layer1.st").exists()

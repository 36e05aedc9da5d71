"""Checkpoints: exact round trips, corruption handling, bitwise resumption of the trainers."""

import json
import math
import os
import pickle
import random
import struct

import numpy as np
import pytest
import torch

from checkpoint_tools import Interrupted, kill_and_resume, stop_after_steps
from smithing.checkpoint import (
    Checkpointer,
    CheckpointError,
    CheckpointWarning,
    flatten,
    load_latest,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unflatten,
)
from smithing.data import load
from smithing.nn import MLP
from smithing.train import EarlyStopping, fit, seed_everything
from smithing.train.ensemble import fit_ensemble


@pytest.fixture(scope="module")
def digits():
    return load("digits").subset(240)


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _same(a, b) -> bool:
    """Structural equality, tensors by torch.equal (dtype and shape too), floats bit for bit."""
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a.cpu(), b.cpu())
        )
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, float):
        return isinstance(b, float) and _bits(a) == _bits(b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and list(a) == list(b)
            and all(type(k) is type(j) for k, j in zip(a, b))
            and all(_same(a[k], b[k]) for k in a)
        )
    return type(a) is type(b) and a == b


def _roundtrip(state, tmp_path):
    path = tmp_path / "state.ckpt"
    save_checkpoint(path, state)
    return read_checkpoint(path)


# ------------------------------------------------------------------ round trips


def test_nested_values_round_trip_exactly(tmp_path):
    state = {
        "none": None,
        "flags": [True, False],
        "ints": [0, -3, 2**100],
        "floats": [0.1, -0.0, 1e-310, math.inf, -math.inf, math.nan, 1 / 3],
        "text": "épée $tensor",
        "tuple": (1, (2.5, "x"), []),
        "int_keys": {0: "a", 7: {"b": None}},
        "tuple_keys": {(1, "a"): 1.0},
        "$odd": {"$tensor": "not a tensor"},
        "tensors": {
            "f32": torch.randn(3, 4),
            "f64": torch.randn(2, dtype=torch.float64),
            "i64": torch.arange(5),
            "u8": torch.randint(0, 255, (7,), dtype=torch.uint8),
            "bool": torch.tensor([True, False]),
            "scalar": torch.tensor(2.5),
            "empty": torch.zeros(0, 3),
            "strided": torch.arange(12.0).reshape(3, 4).t(),
        },
        "same_tensor_twice": [torch.ones(2)] * 2,
        "ndarray": np.arange(6, dtype=np.uint32).reshape(2, 3),
        "dtype": torch.float16,
        "np_scalar": np.float32(0.5),
    }
    for back in (unflatten(*flatten(state)), _roundtrip(state, tmp_path)):
        expect = dict(state, np_scalar=0.5)
        assert _same(back, expect)
        assert math.isnan(back["floats"][5]) and _bits(back["floats"][1]) == _bits(-0.0)


def test_flatten_names_unsupported_values():
    with pytest.raises(TypeError, match="object at 'a/b'"):
        flatten({"a": {"b": object()}})


def test_optimizer_and_schedule_state_round_trip_and_continue(tmp_path):
    from smithing import optim

    def make():
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        sched = optim.make_schedule("warmup-cosine", opt, epochs=10, warmup=3)
        return model, opt, sched

    def step(model, opt, sched):
        opt.zero_grad()
        model(torch.ones(2, 4)).square().sum().backward()
        opt.step()
        sched.step()

    a = make()
    for _ in range(4):
        step(*a)
    saved = _roundtrip(
        {"model": a[0].state_dict(), "opt": a[1].state_dict(), "sched": a[2].state_dict()},
        tmp_path,
    )
    assert _same(saved["opt"], a[1].state_dict())
    assert _same(saved["sched"], a[2].state_dict())
    b = make()
    b[0].load_state_dict(saved["model"])
    b[1].load_state_dict(saved["opt"])
    b[2].load_state_dict(saved["sched"])
    for _ in range(3):
        step(*a)
        step(*b)
    assert torch.equal(a[0].weight, b[0].weight) and torch.equal(a[0].bias, b[0].bias)
    assert a[2].get_last_lr() == b[2].get_last_lr()


def test_generator_states_round_trip_and_continue(tmp_path):
    g = torch.Generator().manual_seed(5)
    torch.randn(10, generator=g)
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached Gaussian in the legacy state
    random.gauss(0, 1)
    state = {"generator": g.get_state(), "rng": rng_state("cpu")}
    back = _roundtrip(state, tmp_path)
    assert torch.equal(back["generator"], g.get_state())
    assert _same(back["rng"]["python"], random.getstate())
    assert _same(back["rng"]["numpy"], np.random.get_state())
    assert torch.equal(back["rng"]["torch"], torch.get_rng_state())
    expect = (
        torch.randn(5, generator=g),
        torch.rand(5),
        [random.random() for _ in range(3)],
        random.gauss(0, 1),
        np.random.standard_normal(4),
    )
    torch.manual_seed(99)
    random.seed(99)
    np.random.seed(99)
    g2 = torch.Generator()
    g2.set_state(back["generator"])
    set_rng_state(back["rng"])
    got = (
        torch.randn(5, generator=g2),
        torch.rand(5),
        [random.random() for _ in range(3)],
        random.gauss(0, 1),
        np.random.standard_normal(4),
    )
    assert torch.equal(expect[0], got[0]) and torch.equal(expect[1], got[1])
    assert expect[2] == got[2] and expect[3] == got[3]
    assert np.array_equal(expect[4], got[4])


# ------------------------------------------------------------------ corruption


def _two_checkpoints(tmp_path):
    path = tmp_path / "run.ckpt"
    save_checkpoint(path, {"step": 1, "w": torch.zeros(1000)})
    save_checkpoint(path, {"step": 2, "w": torch.ones(1000)})
    assert read_checkpoint(str(path) + ".prev")["step"] == 1
    return path


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])


def _flip_tensor_byte(path):
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))


def _flip_header_byte(path):
    data = bytearray(path.read_bytes())
    i = data.index(b'"step\\":2') + len('"step\\":')
    data[i] = ord("3")  # still valid JSON, different state
    path.write_bytes(bytes(data))


def _not_safetensors(path):
    path.write_text("this is not a checkpoint\n")


@pytest.mark.parametrize(
    "damage,problem",
    [
        (_truncate, "truncated"),
        (_flip_tensor_byte, "checksum mismatch"),
        (_flip_header_byte, "checksum mismatch"),
        (_not_safetensors, "not a safetensors file"),
    ],
)
def test_damaged_latest_raises_and_falls_back_to_previous(tmp_path, damage, problem):
    path = _two_checkpoints(tmp_path)
    damage(path)
    with pytest.raises(CheckpointError, match=f"run.ckpt: .*{problem}"):
        read_checkpoint(path)
    with pytest.warns(CheckpointWarning, match=f"run.ckpt: .*{problem}.*skipped"):
        state = load_latest(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.zeros(1000))


def test_foreign_files_are_refused_and_never_unpickled(tmp_path):
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="plain.safetensors: not a smithing checkpoint"):
        read_checkpoint(plain)

    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    pickled = tmp_path / "model.pt"
    pickled.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="model.pt"):
        read_checkpoint(pickled)
    torch.save({"w": torch.zeros(2)}, tmp_path / "torch.pt")
    with pytest.raises(CheckpointError, match="torch.pt"):
        read_checkpoint(tmp_path / "torch.pt")
    assert not marker.exists()

    with pytest.raises(CheckpointError, match="missing.ckpt: no such file"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "new.ckpt"
    save_checkpoint(path, {"a": 1})
    data = path.read_bytes().replace(b'"smithing_version":"1"', b'"smithing_version":"9"')
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="version '9'"):
        read_checkpoint(path)


def test_all_corrupt_means_start_over_with_a_warning_each(tmp_path):
    path = _two_checkpoints(tmp_path)
    _truncate(path)
    _not_safetensors(tmp_path / "run.ckpt.prev")
    ck = Checkpointer(path)
    with pytest.warns(CheckpointWarning) as rec:
        assert ck.load() is None
    assert len(rec) == 2 and len(ck.skipped) == 2
    assert "run.ckpt:" in ck.skipped[0] and "run.ckpt.prev:" in ck.skipped[1]
    assert load_latest(tmp_path / "nothing-here.ckpt") is None


def test_a_corrupt_latest_is_not_rotated_over_the_good_previous(tmp_path):
    path = _two_checkpoints(tmp_path)
    _truncate(path)
    ck = Checkpointer(path, min_interval_s=0)
    with pytest.warns(CheckpointWarning):
        assert ck.load()["step"] == 1
    assert ck.loaded_from == tmp_path / "run.ckpt.prev"
    ck.save({"step": 3})
    assert read_checkpoint(path)["step"] == 3
    assert read_checkpoint(ck.previous_path)["step"] == 1  # still the good one
    ck.save({"step": 4})
    assert read_checkpoint(ck.previous_path)["step"] == 3


def test_atomic_writes_leave_no_temporaries_and_remove_cleans_up(tmp_path):
    path = tmp_path / "sub" / "run.ckpt"
    ck = Checkpointer(path, min_interval_s=0)
    for i in range(3):
        ck.save({"i": i})
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.ckpt", "run.ckpt.prev"]
    assert ck.saves == 3 and ck.seconds > 0 and ck.bytes > 0
    (path.parent / "run.ckpt.tmp.123.abcd").write_bytes(b"partial")  # a killed writer's
    ck.remove()
    assert list(path.parent.iterdir()) == [] and not ck.exists()


def test_interval_policy():
    ck = Checkpointer("x.ckpt")  # min_interval_s=60: not right after the start
    assert not ck.due(epoch_end=True)
    ck._last -= 61
    assert ck.due(epoch_end=True) and not ck.due(batches=3)
    ck = Checkpointer("x.ckpt", min_interval_s=0, every_batches=4)
    assert ck.due(epoch_end=True) and ck.due(batches=8) and not ck.due(batches=3)
    assert Checkpointer("x.ckpt", min_interval_s=0, mid_epoch=True).due(batches=3)
    with pytest.raises(ValueError, match="every_batches"):
        Checkpointer("x.ckpt", every_batches=0)
    with pytest.raises(ValueError, match="min_interval_s"):
        Checkpointer("x.ckpt", min_interval_s=-1)


# ------------------------------------------------------------------ fit


def _mlp(dropout=0.0):
    seed_everything(0)
    return MLP(64, [32], 10, "tanh", dropout=dropout)


def _equal_params(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def _same_history(ha, hb):
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in ha.epochs]
    strip_b = [{k: v for k, v in e.items() if k != "seconds"} for e in hb.epochs]
    return (
        strip == strip_b
        and ha.final == hb.final
        and (ha.status, ha.stop_reason, ha.message, ha.best_epoch)
        == (hb.status, hb.stop_reason, hb.message, hb.best_epoch)
    )


def _raise_at_epoch(k):
    def cb(epoch, rec, model):
        if epoch == k:
            raise Interrupted

    return cb


def _loss_raising_after(k):
    calls = [0]

    def loss(out, y):
        calls[0] += 1
        if calls[0] > k:
            raise Interrupted
        return torch.nn.functional.cross_entropy(out, y)

    return loss


FIT_CASES = {
    # Adam + cosine + dropout + early stopping that stops and restores; killed by a callback
    # at an epoch end, with mid-epoch checkpoints every 3 batches
    "adam-dropout-early-stop": dict(
        kw=dict(
            epochs=12,
            lr=0.02,
            optimizer="adam",
            schedule="cosine",
            batch_size=16,
            seed=3,
            early_stopping=EarlyStopping(monitor="valid_error", patience=1),
        ),
        dropout=0.3,
        every=3,
        interrupt=lambda: {"callbacks": [_raise_at_epoch(3)]},
    ),
    # momentum + step schedule; killed in the middle of epoch 3, last checkpoint an epoch end
    "momentum-midway": dict(
        kw=dict(
            epochs=5,
            lr=0.05,
            optimizer="momentum",
            schedule="step",
            schedule_options={"step_size": 2, "gamma": 0.5},
            batch_size=20,
            seed=1,
        ),
        dropout=0.2,
        every=None,
        interrupt=lambda: {"loss": _loss_raising_after(12 * 2 + 5)},
    ),
    # a mid-epoch checkpoint is the newest when it dies
    "mid-epoch": dict(
        kw=dict(epochs=4, lr=0.1, optimizer="nesterov", batch_size=32, seed=2),
        dropout=0.1,
        every=2,
        interrupt=lambda: {"loss": _loss_raising_after(8 + 4)},
    ),
}


@pytest.mark.parametrize("case", list(FIT_CASES))
def test_fit_resumes_bitwise(digits, tmp_path, case):
    c = FIT_CASES[case]
    ref = _mlp(c["dropout"])
    h_ref = fit(ref, digits, **c["kw"])

    path = tmp_path / "fit.ckpt"
    broken = _mlp(c["dropout"])
    with pytest.raises(Interrupted):
        fit(
            broken,
            digits,
            **c["kw"],
            **c["interrupt"](),
            checkpoint=Checkpointer(path, min_interval_s=0, every_batches=c["every"]),
        )
    state = read_checkpoint(path)
    assert not state["finished"] and state["epoch"] >= 2
    if case == "mid-epoch":
        assert state["position"] is not None
    seed_everything(123)  # the resumed process starts with other global RNG states
    fresh = _mlp(c["dropout"])
    ck = Checkpointer(path, min_interval_s=0, every_batches=c["every"])
    h = fit(fresh, digits, **c["kw"], checkpoint=ck)
    assert ck.loaded_from == path
    assert _equal_params(ref, fresh)
    assert _same_history(h_ref, h)
    if case == "adam-dropout-early-stop":
        assert h.stop_reason == "patience" and h.best_epoch < h.epochs_run

    # the run is finished: a rerun only evaluates, with the same result
    again = _mlp(c["dropout"])
    ck2 = Checkpointer(path, min_interval_s=0)
    h2 = fit(again, digits, **c["kw"], checkpoint=ck2)
    assert ck2.saves == 0 and _equal_params(ref, again) and _same_history(h_ref, h2)


def test_checkpointing_does_not_change_the_numbers(digits, tmp_path):
    kw = dict(epochs=3, lr=0.05, optimizer="momentum", batch_size=24, seed=4)
    a = _mlp(0.2)
    ha = fit(a, digits, **kw)
    b = _mlp(0.2)  # the same global RNG state (dropout) as a
    ck = Checkpointer(tmp_path / "c.ckpt", min_interval_s=0, every_batches=1)
    hb = fit(b, digits, **kw, checkpoint=ck)
    assert _equal_params(a, b) and _same_history(ha, hb)
    assert ck.saves == 3 * (10 - 1) + 2 + 1  # 9 mid-epoch per epoch, 2 epoch ends, the final
    # the default policy (at most once a minute) saves only the final state of a short run
    ck = Checkpointer(tmp_path / "d.ckpt")
    fit(_mlp(), digits, **kw, checkpoint=ck)
    assert ck.saves == 1 and read_checkpoint(ck.path)["finished"]
    ck.remove()
    assert not ck.exists()


def test_fit_refuses_another_runs_checkpoint(digits, tmp_path):
    path = tmp_path / "c.ckpt"
    fit(_mlp(), digits, epochs=1, lr=0.1, checkpoint=path)
    with pytest.raises(CheckpointError, match=r"c.ckpt: belongs to another run \(lr: "):
        fit(_mlp(), digits, epochs=1, lr=0.2, checkpoint=path)
    with pytest.raises(ValueError, match="checkpoint=3"):
        fit(_mlp(), digits, epochs=1, lr=0.1, checkpoint=3)


def test_fit_resumes_from_previous_when_latest_is_corrupt(digits, tmp_path):
    kw = dict(epochs=4, lr=0.05, optimizer="adam", batch_size=40, seed=0)
    ref = _mlp()
    h_ref = fit(ref, digits, **kw)
    path = tmp_path / "c.ckpt"
    with pytest.raises(Interrupted):
        fit(
            _mlp(),
            digits,
            **kw,
            callbacks=[_raise_at_epoch(4)],
            checkpoint=Checkpointer(path, min_interval_s=0),
        )
    assert read_checkpoint(path)["epoch"] == 4
    _flip_tensor_byte(path)
    fresh = _mlp()
    ck = Checkpointer(path, min_interval_s=0)
    with pytest.warns(CheckpointWarning, match="c.ckpt: checksum mismatch"):
        h = fit(fresh, digits, **kw, checkpoint=ck)
    assert ck.loaded_from == ck.previous_path  # saved after epoch 2
    assert _equal_params(ref, fresh) and _same_history(h_ref, h)


# ------------------------------------------------------------------ fit_ensemble


def _members(seeds, dropout=0.2):
    out = []
    for s in seeds:
        seed_everything(s)
        out.append(MLP(64, [24], 10, "tanh", dropout=dropout))
    return out


@pytest.mark.parametrize("every", [None, 3])
def test_fit_ensemble_resumes_bitwise(digits, tmp_path, every):
    seeds, lrs = [0, 1, 2], [0.05, 0.2, 3.0]  # the last one diverges or stalls
    kw = dict(
        seeds=seeds,
        lrs=lrs,
        epochs=6,
        batch_size=20,
        optimizer="momentum",
        schedule="cosine",
        early_stopping=lambda: EarlyStopping(monitor="valid_error", patience=1),
    )
    ref = _members(seeds)
    h_ref = fit_ensemble(ref, digits, **kw)
    path = tmp_path / "ens.ckpt"
    with pytest.raises(Interrupted):
        fit_ensemble(
            _members(seeds),
            digits,
            **kw,
            hooks=stop_after_steps(12 * 2 + 7),
            checkpoint=Checkpointer(path, min_interval_s=0, every_batches=every),
        )
    state = read_checkpoint(path)
    assert state["epoch"] == 3 and (state["position"] is None) == (every is None)
    seed_everything(77)
    fresh = _members(seeds)
    h = fit_ensemble(fresh, digits, **kw, checkpoint=Checkpointer(path, min_interval_s=0))
    for a, b, ha, hb in zip(ref, fresh, h_ref, h):
        assert _equal_params(a, b)
        assert _same_history(ha, hb)
    assert any(hh.stop_reason != "max_epochs" for hh in h)


class _CountingShrink:
    """A regularizer with state: after step t it scales every weight by 1 - 1e-3 (t mod 7)."""

    def __init__(self) -> None:
        self.steps = 0

    def after_step(self, params, lr) -> None:
        self.steps += 1
        tensors = params.values() if isinstance(params, dict) else params.parameters()
        for w in tensors:
            w.mul_(1 - 1e-3 * (self.steps % 7))

    def state_dict(self) -> dict:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]


def test_stateful_regularizers_in_a_list_are_saved_and_restored(digits, tmp_path):
    """fit and fit_ensemble save the state of every regularizer of a list that has one."""
    from smithing.regularize import Penalty

    kw = dict(epochs=4, lr=0.05, optimizer="momentum", batch_size=20, seed=5)
    ref = _mlp()
    h_ref = fit(ref, digits, **kw, regularizer=[Penalty(l2=1.0, n=240), _CountingShrink()])
    path = tmp_path / "fit.ckpt"
    with pytest.raises(Interrupted):
        fit(
            _mlp(),
            digits,
            **kw,
            regularizer=[Penalty(l2=1.0, n=240), _CountingShrink()],
            callbacks=[_raise_at_epoch(3)],
            checkpoint=Checkpointer(path, min_interval_s=0),
        )
    assert read_checkpoint(path)["stateful"] == [{"steps": 2 * 12}]
    fresh, counting = _mlp(), _CountingShrink()
    h = fit(
        fresh,
        digits,
        **kw,
        regularizer=[Penalty(l2=1.0, n=240), counting],
        checkpoint=Checkpointer(path, min_interval_s=0),
    )
    assert counting.steps == 4 * 12 and _equal_params(ref, fresh) and _same_history(h_ref, h)

    seeds, lrs = [0, 1], [0.05, 0.1]
    ekw = dict(seeds=seeds, lrs=lrs, epochs=4, batch_size=20, optimizer="momentum")
    ref_m = _members(seeds)
    h_ref = fit_ensemble(ref_m, digits, **ekw, regularizer=[Penalty(l2=1.0), _CountingShrink()])
    path = tmp_path / "ens.ckpt"
    with pytest.raises(Interrupted):
        fit_ensemble(
            _members(seeds),
            digits,
            **ekw,
            regularizer=[Penalty(l2=1.0), _CountingShrink()],
            hooks=stop_after_steps(12 * 2 + 7),
            checkpoint=Checkpointer(path, min_interval_s=0),
        )
    fresh_m, counting = _members(seeds), _CountingShrink()
    h = fit_ensemble(
        fresh_m,
        digits,
        **ekw,
        regularizer=[Penalty(l2=1.0), counting],
        checkpoint=Checkpointer(path, min_interval_s=0),
    )
    assert counting.steps == 4 * 12
    for a, b, ha, hb in zip(ref_m, fresh_m, h_ref, h):
        assert _equal_params(a, b) and _same_history(ha, hb)


# ------------------------------------------------------------------ a real SIGKILL

ENSEMBLE_SCRIPT = """
import json, os, sys, time
import torch
from safetensors.torch import save_file
from smithing.data.base import Dataset, Split
from smithing.nn import MLP
from smithing.train import EarlyStopping, seed_everything
from smithing.checkpoint import Checkpointer
from smithing.train.ensemble import fit_ensemble


class Paced(Checkpointer):  # slows the first run down so that the test can kill it mid-epoch
    pace = 0.0

    def save(self, state):
        dt = super().save(state)
        time.sleep(self.pace)
        return dt


def split(g, n):
    x = torch.rand(n, 16, generator=g)
    return Split(x, (x[:, :4].sum(1) * 1.5).long().clamp(max=4))


def main(out, path, pace):
    g = torch.Generator().manual_seed(0)
    data = Dataset("random", split(g, 200), split(g, 60), split(g, 60), n_classes=5)
    seeds = [0, 1, 2, 3]
    models = []
    for s in seeds:
        seed_everything(s)
        models.append(MLP(16, [16], 5, "tanh", dropout=0.2))
    ck = None
    if path != "-":
        ck = Paced(path, min_interval_s=0, every_batches=1)
        ck.pace = float(pace)
    hists = fit_ensemble(
        models, data, seeds=seeds, lrs=[0.01, 0.02, 0.05, 0.1], epochs=6, batch_size=20,
        optimizer="adam", schedule="cosine",
        early_stopping=lambda: EarlyStopping(patience=3), checkpoint=ck,
    )
    tensors = {
        f"{m}.{k}": v.detach().contiguous()
        for m, model in enumerate(models)
        for k, v in model.state_dict().items()
    }
    save_file(tensors, out + ".safetensors")
    metrics = [
        {"final": h.final, "curve": h.curve("train_loss"), "best": h.best_epoch} for h in hists
    ]
    with open(out + ".json", "w") as f:
        json.dump(metrics, f)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*sys.argv[1:])
"""


def load_outputs(prefix):
    from safetensors.torch import load_file

    with open(prefix + ".json") as f:
        return load_file(prefix + ".safetensors"), json.load(f)


def test_sigkill_mid_epoch_then_resume_fit_ensemble(tmp_path):
    ref, out, state = kill_and_resume(
        tmp_path, ENSEMBLE_SCRIPT, lambda s: s["epoch"] >= 2 and s["position"] is not None
    )
    assert state["epoch"] >= 2 and not state["finished"]
    (ref_t, ref_m), (t, m) = load_outputs(ref), load_outputs(out)
    assert list(ref_t) == list(t) and all(torch.equal(ref_t[k], t[k]) for k in t)
    assert ref_m == m

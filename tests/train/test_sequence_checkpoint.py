"""fit_sequence with checkpoints: interrupted (between evaluations, at one, in a callback) then
resumed, it ends bitwise equal to the run uninterrupted; a finished run's checkpoint skips
training; another run's checkpoint is refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from checkpoint_tools import CrashAfterSave, Interrupted
from smithing.checkpoint import Checkpointer, CheckpointError, read_checkpoint
from smithing.data import load
from smithing.nn.rnn import RecurrentRegularizer, readout_from_config
from smithing.train import fit_sequence


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class DropoutReadout(nn.Module):
    """An RNN readout with dropout on its input: the global generator matters."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.drop = nn.Dropout(0.2)
        self.inner = readout_from_config(
            {"hidden": 5, "activation": "relu", "init": "identity", "constraint": "spectral"},
            2,
            1,
            "regression",
            seed=seed,
        )
        self.rnn = self.inner.rnn

    def forward(self, x):
        return self.inner(self.drop(x))


def _data():
    return load("adding", T=5, n_train=44, n_valid=12, n_test=12, seed=0)


KW = dict(
    steps=13,
    lr=3e-3,
    batch_size=10,  # 44 = 4 full batches + a dropped tail: a fresh permutation every 4 steps
    eval_every=3,
    seed=5,
    clip_norm=0.5,
    optimizer="rmsprop",
)


def _run(checkpoint=None, callbacks=()):
    torch.manual_seed(11)  # the runner's global seed: dropout masks
    model = DropoutReadout()
    hist = fit_sequence(
        model,
        _data(),
        regularizer=RecurrentRegularizer(),
        checkpoint=checkpoint,
        callbacks=callbacks,
        **KW,
    )
    return model, hist


def _records(hist):
    return [{k: v for k, v in r.items()} for r in hist.epochs]


def _same(a, b):
    (ma, ha), (mb, hb) = a, b
    assert _records(ha) == _records(hb)
    assert ha.final == hb.final
    assert (ha.status, ha.stop_reason) == (hb.status, hb.stop_reason)
    sa, sb = ma.state_dict(), mb.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def reference():
    return _run()


def test_checkpointing_does_not_change_the_numbers(reference, tmp_path):
    _same(_run(Checkpointer(tmp_path / "c.safetensors", min_interval_s=0)), reference)


@pytest.mark.parametrize("crash_at", [2, 5, 9])
def test_resumes_bitwise_after_a_crash_between_steps(reference, tmp_path, crash_at):
    path = tmp_path / "c.safetensors"
    with pytest.raises(Interrupted):
        _run(CrashAfterSave(path, crash_at, min_interval_s=0, every_batches=1))
    saved = read_checkpoint(path)
    assert saved["step"] == crash_at + 1 and not saved["finished"]
    _same(_run(Checkpointer(path, min_interval_s=0)), reference)


def test_resumes_bitwise_when_saving_only_at_evaluations(reference, tmp_path):
    path = tmp_path / "c.safetensors"
    with pytest.raises(Interrupted):
        _run(CrashAfterSave(path, 2, min_interval_s=0))
    assert read_checkpoint(path)["step"] == 7  # saved after the evaluations at steps 3 and 6
    _same(_run(Checkpointer(path, min_interval_s=0)), reference)


def test_resumes_bitwise_after_a_callback_raised(reference, tmp_path):
    path = tmp_path / "c.safetensors"

    def boom(step, rec, model):
        if step == 9:
            raise Interrupted

    with pytest.raises(Interrupted):
        _run(Checkpointer(path, min_interval_s=0), callbacks=[boom])
    _same(_run(Checkpointer(path, min_interval_s=0)), reference)


def test_a_finished_run_is_not_trained_again(reference, tmp_path):
    path = tmp_path / "c.safetensors"
    _run(Checkpointer(path, min_interval_s=3600))  # saves only the final state
    assert read_checkpoint(path)["finished"]
    steps = []

    class Counting(RecurrentRegularizer):
        def after_step(self, model, lr):
            steps.append(1)
            super().after_step(model, lr)

    torch.manual_seed(0)  # another global state: the checkpoint's is restored
    model = DropoutReadout(seed=3)  # other weights: the checkpoint's are loaded
    hist = fit_sequence(
        model,
        _data(),
        regularizer=Counting(),
        checkpoint=Checkpointer(path, min_interval_s=0),
        **KW,
    )
    assert steps == []
    _same((model, hist), reference)
    after_ref = torch.rand(3)
    _run()
    assert torch.equal(after_ref, torch.rand(3))  # the global generator continues as it would


def test_refuses_another_runs_checkpoint(tmp_path):
    path = tmp_path / "c.safetensors"
    _run(Checkpointer(path, min_interval_s=0))
    with pytest.raises(CheckpointError, match="steps: checkpoint 13, this run 14"):
        fit_sequence(
            DropoutReadout(),
            _data(),
            regularizer=RecurrentRegularizer(),
            checkpoint=Checkpointer(path),
            **{**KW, "steps": 14},
        )

"""fit_sequence's learning-rate schedule over the steps: step ``t + 1`` takes ``lr_0 *
factor(t)``, checked against the float64 transcription of the SGD loop; a named schedule's
period is ``steps``; the schedule survives a resume and is part of the checkpoint's
signature."""

from __future__ import annotations

import math

import pytest
import torch
from test_sequence_exact import Squeezed, assert_records, transcription
from tiny_regression import regression

from checkpoint_tools import CrashAfterSave, Interrupted
from smithing.checkpoint import Checkpointer, CheckpointError
from smithing.train.sequence import fit_sequence

KW = dict(batch_size=2, optimizer="sgd", clip_norm=0.3, eval_every=3, seed=2)


def test_a_callable_schedule_gives_each_step_its_rate():
    data = regression()

    def factor(t):  # 0-based step index
        return 1.0 / (1 + t) ** 2

    h = fit_sequence(Squeezed(), data, steps=7, lr=0.1, schedule=factor, **KW)
    w, b, recs = transcription(data, steps=7, lr=lambda t: 0.1 * factor(t), batch_size=2,
                               seed=2, eval_every=3, clip=0.3)  # fmt: skip
    assert_records(h.epochs, recs)


def test_cosine_decays_over_the_steps_to_min_factor():
    """SGDR eq. 5: lr_t = lr_min + (lr_0 - lr_min) (1 + cos(pi t / steps)) / 2, lr_min =
    min_factor lr_0, with t the 0-based step index (the last step is above lr_min)."""
    data = regression()
    steps, lr0, floor = 8, 0.1, 0.25

    def rate(t):
        return lr0 * (floor + (1 - floor) * (1 + math.cos(math.pi * t / steps)) / 2)

    h = fit_sequence(Squeezed(), data, steps=steps, lr=lr0, schedule="cosine",
                     schedule_options={"min_factor": floor}, **KW)  # fmt: skip
    w, b, recs = transcription(data, steps=steps, lr=rate, batch_size=2, seed=2, eval_every=3,
                               clip=0.3)  # fmt: skip
    assert_records(h.epochs, recs)
    assert h.epochs[-1]["lr"] == pytest.approx(rate(steps - 1), rel=1e-12)


def test_a_zero_rate_freezes_the_weights_from_that_step():
    """Steps 4-6 at lr 0 leave the weights of step 3: the schedule is not ignored, and is not
    shifted by a step."""
    data = regression()
    a, b = Squeezed(), Squeezed()
    fit_sequence(a, data, steps=6, lr=0.1, schedule=lambda t: 1.0 if t < 3 else 0.0, **KW)
    fit_sequence(b, data, steps=3, lr=0.1, **KW)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = Squeezed()
    fit_sequence(c, data, steps=6, lr=0.1, schedule=lambda t: 1.0 if t < 4 else 0.0, **KW)
    assert not all(torch.equal(p, q) for p, q in zip(c.parameters(), b.parameters()))


def test_without_a_schedule_the_records_have_no_lr():
    h = fit_sequence(Squeezed(), regression(), steps=3, lr=0.1, **KW)
    assert all("lr" not in r for r in h.epochs)


def test_bad_schedules_are_refused():
    data = regression()
    with pytest.raises(ValueError, match="schedule"):
        fit_sequence(Squeezed(), data, steps=3, lr=0.1, schedule="no-such", **KW)
    with pytest.raises(ValueError, match="min_factor|option"):
        fit_sequence(Squeezed(), data, steps=3, lr=0.1, schedule="cosine",
                     schedule_options={"floor": 0.1}, **KW)  # fmt: skip
    with pytest.raises(ValueError, match="schedule_options"):
        fit_sequence(Squeezed(), data, steps=3, lr=0.1, schedule_options={"gamma": 0.5}, **KW)


def _run(checkpoint=None, schedule="cosine"):
    m = Squeezed()
    h = fit_sequence(m, regression(), steps=9, lr=0.1, schedule=schedule, checkpoint=checkpoint,
                     **KW)  # fmt: skip
    return m, h


def test_a_scheduled_run_resumes_bitwise(tmp_path):
    ref_m, ref_h = _run()
    path = tmp_path / "c.safetensors"
    with pytest.raises(Interrupted):
        _run(CrashAfterSave(path, 4, min_interval_s=0, every_batches=1))
    m, h = _run(Checkpointer(path, min_interval_s=0))
    assert h.epochs == ref_h.epochs
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), ref_m.parameters()))


def test_a_constant_run_does_not_resume_a_scheduled_one(tmp_path):
    path = tmp_path / "c.safetensors"
    with pytest.raises(Interrupted):
        _run(CrashAfterSave(path, 4, min_interval_s=0, every_batches=1))
    with pytest.raises(CheckpointError):
        _run(Checkpointer(path, min_interval_s=0), schedule=None)

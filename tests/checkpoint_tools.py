"""Test helpers shared by the checkpoint tests: a training run that dies right after a given
checkpoint save, as a killed process would, and a real SIGKILL-then-resume of a script."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import torch

from smithing.checkpoint import Checkpointer, CheckpointError, load_latest, read_checkpoint
from smithing.train.ensemble import MemberHooks


class Interrupted(Exception):
    """Stands for the process dying (raised where a real run would be killed)."""


class CrashAfterSave(Checkpointer):
    """A :class:`Checkpointer` that dies right after its ``n``-th save (a mid-epoch one when
    saving every batch)."""

    def __init__(self, path, n, **kw):
        super().__init__(path, **kw)
        self.n = n

    def save(self, state):
        dt = super().save(state)
        if self.saves == self.n:
            raise Interrupted
        return dt


def kill_and_resume(tmp_path, script_text, until, timeout=60.0):
    """A run of ``script_text`` (``main(out, checkpoint_path, pace)``) SIGKILLed once
    ``until(checkpoint_state)`` holds, then rerun to completion, next to the same run
    uninterrupted without checkpoints (in this process, one thread, while the rerun starts).
    Returns the reference's and the resumed run's output prefixes and the state it resumed from.
    """
    import runpy

    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(script_text))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ckpt = tmp_path / "ckpt" / "run.ckpt"
    ref_out, out = str(tmp_path / "ref"), str(tmp_path / "out")
    victim = subprocess.Popen([sys.executable, str(script), out, str(ckpt), "0.03"], env=env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert victim.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint to kill at"
            if ckpt.exists():
                try:
                    if until(read_checkpoint(ckpt)):
                        break
                except CheckpointError:  # pragma: no cover - atomic writes prevent this
                    pass
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(timeout)
    assert victim.returncode == -signal.SIGKILL
    assert not os.path.exists(out + ".json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the atomic writes leave no corrupt file behind
        resumed_from = load_latest(ckpt)
    assert resumed_from is not None
    rerun = subprocess.Popen([sys.executable, str(script), out, str(ckpt), "0"], env=env)
    try:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            runpy.run_path(str(script), run_name="reference")["main"](ref_out, "-", 0)
        finally:
            torch.set_num_threads(threads)
        assert rerun.wait(timeout) == 0
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.wait(timeout)
    return ref_out, out, resumed_from


class Recording(Checkpointer):
    """A checkpointer that records the position (the next batch) of every save."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.positions = []

    def save(self, state):
        pos = state["position"]
        self.positions.append(None if pos is None else pos["batch"])
        return super().save(state)


def stop_after_steps(k):
    """Ensemble hooks whose after_step raises :class:`Interrupted` at step ``k + 1``."""
    calls = [0]

    def after_step(params, lrs):
        calls[0] += 1
        if calls[0] > k:
            raise Interrupted

    return MemberHooks(after_step=after_step)

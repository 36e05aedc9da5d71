"""Durable runs end to end, through the real CLI in subprocesses: SIGKILL mid-run and resume
bitwise, two workers splitting one study, a killed worker's runs taken over from their
checkpoint after its lease expires."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

# one batched group of 4 ensemble members, slow enough to be killed mid-run
GROUP = [
    "activations",
    "--variants",
    "relu",
    "--seeds",
    "4",
    "--set",
    "epochs=6",
    "--set",
    "batch_size=4",
    "--set",
    "hidden=[48]",
    "--threads",
    "1",
    "--quiet",
]


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "smithing", "run", *GROUP, "--out", str(out), *extra]


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _rows(out: Path) -> list[tuple]:
    con = sqlite3.connect(out / "results.sqlite")
    rows = con.execute(
        "SELECT variant, seed, status, final, attempts, lease_owner FROM runs ORDER BY id"
    ).fetchall()
    con.close()
    return rows


def _epochs(out: Path) -> list[dict]:
    con = sqlite3.connect(out / "results.sqlite")
    rows = [
        json.loads(m) for (m,) in con.execute("SELECT metrics FROM epochs ORDER BY run_id, epoch")
    ]
    con.close()
    for r in rows:
        r.pop("seconds", None)
    return rows


def _models(out: Path) -> dict[str, dict]:
    return {p.name: load_file(str(p)) for p in sorted((out / "models").rglob("*.safetensors"))}


def _wait_for(pred, proc=None, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the worker ended early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError("timed out")


def _checkpoints(out: Path) -> list[Path]:
    return [p for p in (out / "checkpoints").rglob("*.safetensors")] if out.exists() else []


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same study run once, uninterrupted."""
    out = tmp_path_factory.mktemp("reference")
    r = subprocess.run(_cmd(out, "--save-models"), env=_env(), capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return out


def _same_as_reference(out: Path, reference: Path) -> None:
    got, ref = _rows(out), _rows(reference)
    assert [(v, s, st, f) for v, s, st, f, *_ in got] == [(v, s, st, f) for v, s, st, f, *_ in ref]
    assert _epochs(out) == _epochs(reference)
    a, b = _models(out), _models(reference)
    assert a.keys() == b.keys() and len(a) == 4
    for name in a:
        assert a[name].keys() == b[name].keys()
        for k in a[name]:
            assert a[name][k].equal(b[name][k]), (name, k)  # bitwise
    assert not _checkpoints(out), "checkpoints of finished runs are removed"


def test_sigkill_mid_run_resumes_bitwise(tmp_path, reference):
    out = tmp_path / "out"
    cmd = _cmd(out, "--save-models", "--checkpoint-interval", "0")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for(lambda: _checkpoints(out), proc)
    time.sleep(0.3)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [st for _, _, st, *_ in _rows(out)] == ["running"] * 4  # killed mid-run
    t0 = time.time()
    r = subprocess.run(cmd, env=_env(), capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    # the dead worker was of this machine: its lease (120 s) was not waited out
    assert time.time() - t0 < 100
    _same_as_reference(out, reference)
    assert [a for *_, a, _ in _rows(out)] == [2] * 4


def test_killed_worker_is_taken_over_after_its_lease_expires(tmp_path, reference):
    out = tmp_path / "out"
    cmd = _cmd(out, "--save-models", "--checkpoint-interval", "0", "--lease-ttl", "3")
    # worker a runs on "another machine" sharing the folder: b cannot see whether a is
    # alive, and must wait for a's lease to expire
    env_a = {**_env(), "SMITHING_WORKER_HOST": "other-machine"}
    a = subprocess.Popen(cmd, env=env_a, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for(lambda: _checkpoints(out), a)
    # frozen mid-run (on a quiet machine a could otherwise finish before the kill): from here
    # on it renews no lease, and it dies without releasing the ones it holds
    a.send_signal(signal.SIGSTOP)
    frozen = time.time()
    b = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    a.send_signal(signal.SIGKILL)
    a.wait()
    stdout, stderr = b.communicate(timeout=300)
    assert b.returncode == 0, stderr.decode()[-2000:]
    assert time.time() - frozen > 2.0  # b waited for a's lease to expire
    _same_as_reference(out, reference)
    owners = {o for *_, o in _rows(out)}
    assert len(owners) == 1 and f":{b.pid}:" in owners.pop()  # b finished a's runs
    assert [at for *_, at, _ in _rows(out)] == [2] * 4


def test_two_workers_attempt_each_run_once(tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "smithing",
        "run",
        "activations",
        "--seeds",
        "2",
        "--set",
        "epochs=4",
        "--set",
        "batch_size=8",
        "--set",
        "hidden=[32]",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(out),
    ]
    procs = [
        subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    rows = _rows(out)
    assert len(rows) == 8 and all(st == "done" for _, _, st, *_ in rows)
    assert [at for *_, at, _ in rows] == [1] * 8  # no run trained twice
    owners = {o for *_, o in rows}
    assert len(owners) == 2, f"one worker did everything: {owners}"


def test_interrupted_driver_gives_its_runs_back(tmp_path, monkeypatch):
    """Ctrl-C while a group trains in this process: its leases are released at once, so the
    same command run again need not wait for them to expire."""
    import smithing.runner.executors as ex
    from smithing.experiment.store import Store
    from studytools import run_study

    def interrupted(task, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(ex, "run_group", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study("activations", seeds=1, out=str(tmp_path), quiet=True, report=False)
    with Store(tmp_path) as s:
        assert s.counts("activations") == {"pending": 4}

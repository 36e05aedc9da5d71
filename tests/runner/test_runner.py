"""The runner end to end: batching, resume after SIGKILL, the report, the CLI."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smithing.experiment.store import Store
from smithing.studies import STUDIES
from studytools import run_study

QUICK = {"epochs": 2, "hidden": [16]}


def test_run_study_writes_store_and_report(tmp_path):
    summary = run_study("activations", seeds=2, out=str(tmp_path), quiet=True, overrides=QUICK)
    assert set(summary["variants"]) == {"sigmoid", "tanh", "relu", "softsign"}
    with Store(tmp_path) as store:
        assert store.counts("activations") == {"done": 8}
        res = store.results("activations")
    for name, v in summary["variants"].items():
        assert v["runs"] == 2 and v["done"] == 2
        errors = [r.final["test_error"] for r in res.of(name)]  # the stored runs' own errors
        assert len(errors) == 2
        assert v["test_error_mean"] == pytest.approx(sum(errors) / 2, rel=1e-9)
        assert all(len(r.epochs) == 2 for r in res.runs)
        assert len({r.config["seed"] for r in res.runs}) == 2
    page = (tmp_path / "report" / "activations.html").read_text()
    assert "curves.png" in page and "<table>" in page and "torch" in page
    assert (tmp_path / "report" / "activations" / "curves.png").stat().st_size > 1000
    assert "activations.html" in (tmp_path / "report" / "index.html").read_text()
    # a second run resumes: nothing to do, nothing duplicated
    run_study("activations", seeds=2, out=str(tmp_path), quiet=True, overrides=QUICK, report=False)
    with Store(tmp_path) as store:
        assert store.counts("activations") == {"done": 8}


def test_seeds_differ_and_batched_equals_alone(tmp_path):
    """A run trained inside a batched group equals the same run trained alone."""
    run_study(
        "activations", seeds=3, out=str(tmp_path / "a"), quiet=True, overrides=QUICK, report=False
    )
    from smithing.experiment.mlp import MLPConfig, train_one

    with Store(tmp_path / "a") as store:
        res = store.results("activations")
    r = res.of("tanh")[1]
    _, h = train_one(MLPConfig.from_dict(r.config))
    assert h.final["test_error"] == pytest.approx(r.final["test_error"], abs=1e-9)
    assert h.curve("train_loss") == pytest.approx([e["train_loss"] for e in r.epochs], rel=1e-4)
    finals = [x.final["valid_loss"] for x in res.of("tanh")]
    assert len(set(finals)) == 3


def test_unknown_study_lists_valid():
    with pytest.raises(ValueError, match="activations"):
        run_study("activationz", out="/nonexistent", quiet=True)


def test_failed_run_does_not_kill_the_sweep(tmp_path):
    summary = run_study(
        "activations",
        seeds=1,
        out=str(tmp_path),
        quiet=True,
        overrides={**QUICK, "dataset": "digits", "init": "lsuv", "init_options": {"tol": -1}},
        report=False,
    )
    assert all(v["failed"] == 1 for v in summary["variants"].values())
    with Store(tmp_path) as store:
        assert store.counts("activations") == {"failed": 4}


def _count(db: Path, status: str | None = None) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=5)
        q = "SELECT COUNT(*) FROM runs" + (" WHERE status=?" if status else "")
        (n,) = con.execute(q, (status,) if status else ()).fetchone()
        con.close()
        return n
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_resume(tmp_path):
    """Kill the process mid-study with SIGKILL; the same command finishes with exactly
    variants x seeds runs, all done."""
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "smithing.cli",
        "run",
        "activations",
        "--seeds",
        "3",
        "--out",
        str(out),
        "--quiet",
        "--set",
        "epochs=6",
        "--set",
        "hidden=[64]",
    ]
    env = dict(os.environ)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = out / "results.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline and _count(db, "done") < 3:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the study finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_done = _count(db, "done")
    assert 3 <= killed_done < 12
    rerun = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert _count(db) == 12 and _count(db, "done") == 12
    summary = json.loads(rerun.stdout)
    assert all(v["runs"] == 3 and v["done"] == 3 for v in summary["variants"].values())
    con = sqlite3.connect(db)
    attempts = [a for (a,) in con.execute("SELECT attempts FROM runs")]
    con.close()
    assert max(attempts) >= 1 and attempts.count(1) >= killed_done


def test_jobs_pool(tmp_path):
    summary = run_study(
        "activations", seeds=1, out=str(tmp_path), quiet=True, jobs=2, overrides=QUICK, report=False
    )
    assert all(v["done"] == 1 for v in summary["variants"].values())


def test_registry_lists_activations():
    assert "activations" in STUDIES


def test_report_shows_the_latest_configuration_only(tmp_path):
    run_study("activations", seeds=1, out=str(tmp_path), quiet=True, overrides=QUICK)
    run_study(
        "activations", seeds=1, out=str(tmp_path), quiet=True, overrides={**QUICK, "epochs": 1}
    )
    with Store(tmp_path) as store:
        assert store.counts("activations") == {"done": 8}  # both configurations are kept
    page = (tmp_path / "report" / "activations.html").read_text()
    assert "runs: done 4" in page


def test_variants_filter_by_pattern(tmp_path):
    study = STUDIES.get("activations")
    runs = study.expand("quick", seeds=2, only=["t*", "relu"])
    assert sorted({v.name for v, _ in runs}) == ["relu", "tanh"] and len(runs) == 4
    with pytest.raises(ValueError, match="matches no variant.*sigmoid, tanh"):
        study.expand("quick", only=["tanh", "gelu"])
    summary = run_study(
        "activations", seeds=1, out=str(tmp_path), quiet=True, overrides=QUICK, variants=["relu"]
    )
    assert set(summary["variants"]) == {"relu"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "smithing",
            "run",
            "activations",
            "--variants",
            "nope",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "matches no variant" in r.stderr


def test_unknown_override_keys_fail_before_any_run(tmp_path):
    # a typo for an "mlp" study and a key a non-"mlp" study does not read: both up front
    with pytest.raises(ValueError, match=r"\['epoch'\] are not used by study 'activations'"):
        run_study("activations", out=str(tmp_path), quiet=True, overrides={"epoch": 2})
    with pytest.raises(ValueError, match=r"\['n_train'\].*'hybrid'.*expected keys among"):
        run_study("hybrid", out=str(tmp_path), quiet=True, overrides={"n_train": 300})
    assert not (tmp_path / "results.sqlite").exists()
    assert "n_train" in STUDIES.get("rbm").config_keys()
    assert "l2" in STUDIES.get("regularization").config_keys()

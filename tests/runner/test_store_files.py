"""Bad files, old stores, and the verbs that read a store (status, report, export)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from smithing.cli import main
from smithing.experiment import RunResult
from smithing.experiment.store import SCHEMA_VERSION, Store, StoreError

# the first store layout (schema version 1, before leases), as smithing 0.1 wrote it
V1_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, study TEXT NOT NULL, scale TEXT NOT NULL, variant TEXT NOT NULL,
    seed INTEGER NOT NULL, config_hash TEXT NOT NULL, config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', started REAL, finished REAL, seconds REAL,
    final TEXT, extra TEXT, message TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (study, scale, variant, seed, config_hash));
CREATE TABLE epochs (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL, metrics TEXT NOT NULL, PRIMARY KEY (run_id, epoch));
CREATE TABLE sessions (id INTEGER PRIMARY KEY, study TEXT NOT NULL, scale TEXT NOT NULL,
    command TEXT NOT NULL, started REAL NOT NULL, finished REAL, seconds REAL,
    environment TEXT NOT NULL, run_ids TEXT NOT NULL DEFAULT '[]');
"""


def _store_bytes(tmp_path) -> bytes:
    d = tmp_path / "good"
    with Store(d) as s:
        ids = s.ensure_runs("s", "quick", [("v", i, {"i": i}) for i in range(40)])
        for rid in ids:
            assert s.claim([rid], "w", 60)
            s.record(rid, RunResult("done", final={"x": 0.5}, epochs=[{"epoch": 1, "m": 1.0}]))
    return (d / Store.FILENAME).read_bytes()


def _bad_stores(tmp_path):
    good = _store_bytes(tmp_path)
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE photos (x)")
    con.commit()
    con.close()
    newer = tmp_path / "newer.sqlite"
    con = sqlite3.connect(newer)
    con.executescript(V1_SCHEMA)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    corrupt = bytearray(good)
    for i in range(4096 + 200, 4096 + 1200):  # scribble over the second page
        corrupt[i] = 0x5A
    return {
        "truncated": (good[: len(good) // 2], "truncated"),
        "header only": (good[:60], "truncated"),
        "not sqlite": (b"this is a CSV file,,,\n" * 50, "not an SQLite database"),
        "corrupt": (bytes(corrupt), "corrupt|malformed"),
        "another app": (other.read_bytes(), "not a smithing results store"),
        "newer schema": (newer.read_bytes(), "schema version 3, newer"),
    }


def test_bad_store_files_give_one_line_and_are_never_written(tmp_path, capsys):
    for name, (content, match) in _bad_stores(tmp_path).items():
        out = tmp_path / name.replace(" ", "-")
        out.mkdir()
        path = out / Store.FILENAME
        path.write_bytes(content)
        with pytest.raises(StoreError, match=match) as e:
            Store(out)
        assert str(path) in str(e.value) and "\n" not in str(e.value), name
        for argv in (
            ["status", "--out", str(out)],
            ["report", "--out", str(out)],
            ["export", "--out", str(out)],
            ["run", "activations", "--out", str(out), "--quiet", "--set", "epochs=1"],
        ):
            assert main(argv) == 2, (name, argv)
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and str(path) in err, (name, argv, err)
        assert path.read_bytes() == content, f"{name}: the file was modified"
        assert not (out / "report").exists()


def test_old_store_is_migrated_in_place(tmp_path):
    path = tmp_path / Store.FILENAME
    con = sqlite3.connect(path)
    con.executescript(V1_SCHEMA)
    con.execute(
        "INSERT INTO runs (study, scale, variant, seed, config_hash, config, status, final) "
        "VALUES ('s', 'quick', 'v', 0, 'h', '{}', 'done', '{\"test_error\": 0.25}')"
    )
    con.execute(
        "INSERT INTO runs (study, scale, variant, seed, config_hash, config, status) "
        "VALUES ('s', 'quick', 'v', 1, 'h2', '{}', 'running')"
    )
    con.commit()
    con.close()
    with Store(tmp_path) as s:
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        cols = {r[1] for r in s.conn.execute("PRAGMA table_info(runs)")}
        assert {"lease_owner", "lease_expires", "progress"} <= cols
        res = s.results("s")
        assert [r.final for r in res.runs] == [{"test_error": 0.25}, {}]
        # a run left running by an old smithing has no lease: it is claimable at once
        assert s.claim([2], "me", 60)
    with Store(tmp_path) as s:  # opening again changes nothing
        assert s.counts("s") == {"done": 1, "running": 1}


def test_claims_are_all_or_none_and_expire(tmp_path):
    with Store(tmp_path) as s:
        a, b, c = s.ensure_runs("s", "quick", [("v", i, {}) for i in range(3)])
        assert s.claim([a, b], "w1", 60)
        assert not s.claim([b, c], "w2", 60)  # b is taken: c stays unclaimed too
        assert s.statuses([a, b, c]) == {a: "running", b: "running", c: "pending"}
        assert s.claim([c], "w2", 0.01)
        import time

        time.sleep(0.05)
        assert s.claim([c], "w3", 60)  # w2's lease expired
        assert not s.record(c, RunResult("done"), owner="w2")  # w2 lost it: not recorded
        assert s.record(c, RunResult("done"), owner="w3")
        assert s.heartbeat("w1", 60) == 2
        s.release([a, b], "w1")
        assert s.counts("s") == {"pending": 2, "done": 1}
        # a run that failed is retried by a later invocation, not by the one that saw it fail
        assert s.claim([a], "w4", 60)
        s.record(a, RunResult("failed", message="boom"), owner="w4")
        finished = s.conn.execute("SELECT finished FROM runs WHERE id=?", (a,)).fetchone()[0]
        assert not s.claim([a], "w4", 60, retry_failed_before=finished - 1)
        assert s.claim([a], "w5", 60, retry_failed_before=finished + 1)


def test_status_shows_running_runs_with_worker_epoch_and_eta(tmp_path, capsys):
    with Store(tmp_path) as s:
        ids = s.ensure_runs("study-x", "quick", [("relu", i, {}) for i in range(3)])
        assert s.claim(ids[:2], "host:123:abc", 60)
        s.set_progress(ids[:2], {"epoch": 3, "epochs": 10, "eta_s": 75.0})
        s.record(ids[2], RunResult("done"))
    assert main(["status", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "study-x" in text and "running 2" in text and "pending 1" not in text
    assert "host:123:abc" in text and "3/10" in text and "1m15s" in text and "live" in text
    assert main(["status", "--out", str(tmp_path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    run = rep["studies"]["study-x"]["running"][0]
    assert run["worker"] == "host:123:abc" and run["progress"]["epoch"] == 3
    assert main(["status", "--out", str(tmp_path / "nothing-here")]) == 2


def test_without_ray_the_flag_says_how_to_install(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from smithing.cli import main\n"
        f"raise SystemExit(main(['run', 'activations', '--executor', 'ray', '--out', "
        f"{str(tmp_path)!r}, '--quiet']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "pip install 'smithing[ray]'" in r.stderr and r.stderr.count("\n") == 1


def test_a_multi_phase_run_reports_its_phase_and_the_phase_eta(tmp_path, capsys, monkeypatch):
    from types import SimpleNamespace

    from smithing.runner.execute import _ProgressWriter

    with Store(tmp_path) as s:
        ids = s.ensure_runs("study-y", "quick", [("dbn", 0, {})])
        assert s.claim(ids, "host:1:a", 60)
    task = SimpleNamespace(run_ids=ids, out=str(tmp_path), progress_every=0.0)
    clock = iter([100.0, 110.0, 120.0, 150.0, 160.0])  # the writer starts at t=100
    fake_time = SimpleNamespace(time=lambda: next(clock))  # the writer's clock only
    monkeypatch.setattr("smithing.runner.execute.time", fake_time)
    forwarded: list = []
    writer = _ProgressWriter(task, lambda e, n: forwarded.append((e, n)))

    def progress() -> dict:
        assert main(["status", "--out", str(tmp_path), "--json"]) == 0
        rep = json.loads(capsys.readouterr().out)
        return rep["studies"]["study-y"]["running"][0]["progress"]

    writer(1, 50, "layer0")  # t=110
    writer(2, 50, "layer0")  # t=120: 2 epochs in 20 s -> 48 epochs left, 480 s
    p = progress()
    assert p["phase"] == "layer0" and p["epoch"] == 2 and p["eta_s"] == pytest.approx(480.0)
    writer(5, 100, "finetune")  # t=150: a new (resumed) phase, timed from t=120, epoch 5 on
    writer(7, 100, "finetune")  # t=160: 3 epochs in 40 s -> 93 epochs left, 1240 s
    writer.close()
    p = progress()
    assert p["phase"] == "finetune" and p["epoch"] == 7 and p["eta_s"] == pytest.approx(1240.0)
    assert forwarded == [(1, 50), (2, 50), (5, 100), (7, 100)]
    assert main(["status", "--out", str(tmp_path)]) == 0
    assert "finetune 7/100" in capsys.readouterr().out

import json
import sqlite3

import pytest

from smithing.experiment import RunResult
from smithing.experiment.store import Store


def test_record_is_atomic(tmp_path):
    store = Store(tmp_path)
    (rid,) = store.ensure_runs("s", "quick", [("v", 0, {"a": 1})])
    assert store.claim([rid], "w", 60)

    class Boom(RunResult):
        pass

    bad = RunResult("done", final={"x": 1.0}, epochs=[{"epoch": 1, "m": 1.0}, {"epoch": 1}])
    with pytest.raises(sqlite3.IntegrityError):  # duplicate epoch: the transaction rolls back
        store.record(rid, bad)
    assert store.status(rid) == "running"
    assert store.conn.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 0
    store.record(
        rid,
        RunResult(
            "done",
            final={"test_error": 0.1},
            epochs=[{"epoch": 1, "valid_error": 0.2}],
            seconds=1.5,
        ),
    )
    res = store.results("s")
    assert res.runs[0].status == "done" and res.runs[0].final == {"test_error": 0.1}
    assert res.runs[0].epochs == [{"epoch": 1, "valid_error": 0.2}]
    store.close()


def test_ensure_runs_is_idempotent(tmp_path):
    with Store(tmp_path) as store:
        runs = [("v", s, {"seed": s}) for s in range(3)]
        ids = store.ensure_runs("s", "quick", runs)
        assert store.ensure_runs("s", "quick", runs) == ids
        assert store.counts("s") == {"pending": 3}


def test_bad_status_rejected(tmp_path):
    with Store(tmp_path) as store:
        (rid,) = store.ensure_runs("s", "quick", [("v", 0, {})])
        with pytest.raises(ValueError, match="status"):
            store.record(rid, RunResult("running"))


def test_export_csv(tmp_path):
    with Store(tmp_path) as store:
        (rid,) = store.ensure_runs("s", "quick", [("v", 0, {"lr": 0.1})])
        store.record(
            rid,
            RunResult("done", final={"test_error": 0.25}, epochs=[{"epoch": 1, "train_loss": 2.0}]),
        )
        runs_csv, epochs_csv = store.export_csv(tmp_path / "x")
    text = runs_csv.read_text().splitlines()
    assert text[0].startswith("run_id,study,scale,variant,seed,status")
    assert "0.25" in text[1]
    assert json.loads(text[1].split(",", 8)[-1].rsplit(",", 1)[0].strip('"').replace('""', '"'))
    assert "2.0" in epochs_csv.read_text()

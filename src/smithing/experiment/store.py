"""The results store: one SQLite file per output directory.

Tables:

* ``runs``: one row per (study, scale, variant, seed, config): the configuration as JSON, the
  status (``pending`` / ``running`` / ``done`` / ``diverged`` / ``failed``), timings, final
  metrics and any extra JSON a study's figures need.
* ``epochs``: the per-epoch curves of each run (metrics as JSON).
* ``sessions``: each ``smithing run`` invocation: command, versions, machine, wall time.

A run is recorded in ONE transaction (its epochs, its final metrics and its status flip to a
final state together), so killing the process at any moment leaves each run either fully
recorded or not at all; runs found ``running`` on the next start were interrupted and rerun.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from smithing.experiment.results import RunRecord, StudyResults
from smithing.experiment.study import RunResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    study TEXT NOT NULL,
    scale TEXT NOT NULL,
    variant TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    started REAL,
    finished REAL,
    seconds REAL,
    final TEXT,
    extra TEXT,
    message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (study, scale, variant, seed, config_hash)
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    study TEXT NOT NULL,
    scale TEXT NOT NULL,
    command TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    seconds REAL,
    environment TEXT NOT NULL,
    run_ids TEXT NOT NULL DEFAULT '[]'
);
"""

FINAL_STATUSES = ("done", "diverged", "failed")


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _dumps(obj) -> str:
    return json.dumps(obj, default=_json_default, allow_nan=True)


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


class Store:
    """The SQLite results store of one output directory (``<out>/results.sqlite``)."""

    FILENAME = "results.sqlite"

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / self.FILENAME
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self):
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    # ------------------------------------------------------------------ runs

    def ensure_runs(
        self, study: str, scale: str, runs: Iterable[tuple[str, int, dict]]
    ) -> list[int]:
        """Insert missing (variant, seed, config) rows as pending; return their ids in order."""
        ids = []
        with self.transaction() as c:
            for variant, seed, config in runs:
                h = config_hash(config)
                c.execute(
                    "INSERT OR IGNORE INTO runs (study, scale, variant, seed, config_hash, config)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (study, scale, variant, seed, h, _dumps(config)),
                )
                (rid,) = c.execute(
                    "SELECT id FROM runs WHERE study=? AND scale=? AND variant=? AND seed=? "
                    "AND config_hash=?",
                    (study, scale, variant, seed, h),
                ).fetchone()
                ids.append(rid)
        return ids

    def status(self, run_id: int) -> str:
        (s,) = self.conn.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
        return s

    def mark_running(self, run_ids: Iterable[int]) -> None:
        now = time.time()
        with self.transaction() as c:
            for rid in run_ids:
                c.execute(
                    "UPDATE runs SET status='running', started=?, attempts=attempts+1 WHERE id=?",
                    (now, rid),
                )

    def record(self, run_id: int, result: RunResult) -> None:
        """Record a finished run atomically: epochs, final metrics and status together."""
        if result.status not in FINAL_STATUSES:
            raise ValueError(f"status={result.status!r} is invalid: expected {FINAL_STATUSES}")
        with self.transaction() as c:
            c.execute("DELETE FROM epochs WHERE run_id=?", (run_id,))
            c.executemany(
                "INSERT INTO epochs (run_id, epoch, metrics) VALUES (?, ?, ?)",
                [
                    (run_id, int(e.get("epoch", i + 1)), _dumps(e))
                    for i, e in enumerate(result.epochs)
                ],
            )
            c.execute(
                "UPDATE runs SET status=?, finished=?, seconds=?, final=?, extra=?, message=? "
                "WHERE id=?",
                (
                    result.status,
                    time.time(),
                    result.seconds,
                    _dumps(result.final),
                    _dumps(result.extra),
                    result.message,
                    run_id,
                ),
            )

    def reset_interrupted(self, study: str | None = None) -> int:
        """Runs left ``running`` by a killed process go back to pending; returns how many."""
        q = "UPDATE runs SET status='pending' WHERE status='running'"
        args: tuple = ()
        if study is not None:
            q += " AND study=?"
            args = (study,)
        with self.transaction() as c:
            cur = c.execute(q, args)
            return cur.rowcount

    def counts(self, study: str | None = None) -> dict[str, int]:
        q = "SELECT status, COUNT(*) FROM runs"
        args: tuple = ()
        if study:
            q += " WHERE study=?"
            args = (study,)
        return dict(self.conn.execute(q + " GROUP BY status", args).fetchall())

    # ------------------------------------------------------------------ sessions

    def start_session(
        self,
        study: str,
        scale: str,
        command: str,
        environment: dict,
        run_ids: list[int] | None = None,
    ) -> int:
        """Record an invocation and the runs it asked for (the report shows those runs)."""
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO sessions (study, scale, command, started, environment, run_ids) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    study,
                    scale,
                    command,
                    time.time(),
                    _dumps(environment),
                    _dumps(list(run_ids or [])),
                ),
            )
            return cur.lastrowid

    def end_session(self, session_id: int) -> None:
        now = time.time()
        with self.transaction() as c:
            c.execute(
                "UPDATE sessions SET finished=?, seconds=?-started WHERE id=?",
                (now, now, session_id),
            )

    def last_session(self, study: str) -> dict | None:
        row = self.conn.execute(
            "SELECT scale, command, started, finished, seconds, environment, run_ids "
            "FROM sessions WHERE study=? ORDER BY id DESC LIMIT 1",
            (study,),
        ).fetchone()
        if row is None:
            return None
        scale, command, started, finished, seconds, env, run_ids = row
        return {
            "scale": scale,
            "command": command,
            "started": started,
            "finished": finished,
            "seconds": seconds,
            "environment": json.loads(env),
            "run_ids": json.loads(run_ids),
        }

    # ------------------------------------------------------------------ reading

    def studies(self) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT study FROM runs GROUP BY study ORDER BY MIN(id)"
            ).fetchall()
        ]

    def results(
        self, study: str, scale: str | None = None, run_ids: list[int] | None = None
    ) -> StudyResults:
        q = (
            "SELECT id, variant, seed, config, status, final, extra, seconds, message "
            "FROM runs WHERE study=?"
        )
        args: list = [study]
        if scale is not None:
            q += " AND scale=?"
            args.append(scale)
        rows = self.conn.execute(q + " ORDER BY id", args).fetchall()
        if run_ids is not None:
            keep = set(run_ids)
            rows = [r for r in rows if r[0] in keep]
        runs = []
        for rid, variant, seed, config, status, final, extra, seconds, message in rows:
            eps = [
                json.loads(m)
                for (m,) in self.conn.execute(
                    "SELECT metrics FROM epochs WHERE run_id=? ORDER BY epoch", (rid,)
                )
            ]
            runs.append(
                RunRecord(
                    variant,
                    seed,
                    json.loads(config),
                    status,
                    json.loads(final) if final else {},
                    eps,
                    json.loads(extra) if extra else {},
                    seconds or math.nan,
                    message or "",
                )
            )
        meta = self.last_session(study) or {}
        return StudyResults(study, runs, meta)

    def export_csv(self, out_dir: str | Path) -> list[Path]:
        """Write ``runs.csv`` (one row per run, final metrics flattened) and ``epochs.csv``."""
        import csv

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = self.conn.execute(
            "SELECT id, study, scale, variant, seed, status, seconds, final, config, message "
            "FROM runs ORDER BY id"
        ).fetchall()
        finals = [json.loads(r[7]) if r[7] else {} for r in rows]
        fkeys = sorted({k for f in finals for k in f})
        runs_path = out_dir / "runs.csv"
        with open(runs_path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "run_id",
                    "study",
                    "scale",
                    "variant",
                    "seed",
                    "status",
                    "seconds",
                    *fkeys,
                    "config",
                    "message",
                ]
            )
            for r, f in zip(rows, finals):
                w.writerow(
                    [
                        r[0],
                        r[1],
                        r[2],
                        r[3],
                        r[4],
                        r[5],
                        r[6],
                        *[f.get(k, "") for k in fkeys],
                        r[8],
                        r[9] or "",
                    ]
                )
        eps = self.conn.execute(
            "SELECT e.run_id, r.study, r.variant, r.seed, e.epoch, e.metrics FROM epochs e "
            "JOIN runs r ON r.id = e.run_id ORDER BY e.run_id, e.epoch"
        ).fetchall()
        mets = [json.loads(e[5]) for e in eps]
        mkeys = sorted({k for m in mets for k in m} - {"epoch"})
        ep_path = out_dir / "epochs.csv"
        with open(ep_path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["run_id", "study", "variant", "seed", "epoch", *mkeys])
            for e, m in zip(eps, mets):
                w.writerow([*e[:5], *[m.get(k, "") for k in mkeys]])
        return [runs_path, ep_path]

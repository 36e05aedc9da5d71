""":class:`Store`: the results store of one output directory (runs, leases, sessions, reading);
see :mod:`smithing.experiment.store`."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable
from contextlib import contextmanager, suppress
from pathlib import Path

from smithing.experiment.results import RunRecord, StudyResults
from smithing.experiment.store.leases import (
    _claimable,
)
from smithing.experiment.store.schema import (
    _V2_COLUMNS,
    FINAL_STATUSES,
    SCHEMA,
    SCHEMA_VERSION,
    StoreError,
    _check_header,
    _db_problem,
    _dumps,
    config_hash,
)
from smithing.experiment.study import RunResult

__all__ = [
    "Store",
]


class Store:
    """The SQLite results store of one output directory (``<out>/results.sqlite``)."""

    FILENAME = "results.sqlite"
    #: stores this process has open, by resolved path (see :meth:`__init__`)
    _open_paths: dict[str, int] = {}

    def __init__(self, out_dir: str | Path, *, create: bool = True) -> None:
        """Open (``create``: or create) the store of ``out_dir``.

        Raises :class:`StoreError` for a file that is not a usable store, and
        ``FileNotFoundError`` when ``create`` is false and there is no store."""
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / self.FILENAME
        exists = self.path.exists() and self.path.stat().st_size > 0
        if not exists and not create:
            raise FileNotFoundError(
                f"no results store in {str(self.out_dir)!r}: run a study first (smithing run ...)"
            )
        self._key = str(self.path.resolve())
        if exists and self._key not in Store._open_paths:
            # Read the header ourselves only while no connection of this process has the file
            # open: closing any descriptor of a file drops all of the process's POSIX locks on
            # it, SQLite's included ("How To Corrupt An SQLite Database File", 2.2).
            _check_header(self.path)
        if not exists:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            Store._open_paths[self._key] = Store._open_paths.get(self._key, 0) + 1
            self._open(exists)
        except sqlite3.DatabaseError as e:
            self.close()
            raise StoreError(f"{self.path}: {_db_problem(e)}") from None
        except StoreError:
            self.close()
            raise

    def _open(self, exists: bool) -> None:
        c = self.conn
        if exists:
            (check,) = c.execute("PRAGMA quick_check(1)").fetchone()
            if check != "ok":
                detail = " ".join(str(check).replace("*** in database main ***", "").split())
                raise StoreError(f"{self.path}: the database is corrupt ({detail})")
            version = c.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: results store of schema version {version}, newer than this "
                    f"smithing reads (up to {SCHEMA_VERSION}); upgrade smithing"
                )
            if tables and not {"runs", "epochs", "sessions"} <= tables:
                raise StoreError(
                    f"{self.path}: an SQLite database but not a smithing results store "
                    f"(tables: {', '.join(sorted(tables))})"
                )
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        """Create the schema, or bring an older store up to :data:`SCHEMA_VERSION`."""
        c = self.conn
        with self.transaction():
            version = c.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "runs" in tables and version < 2:  # 0 or 1: the first layout, without leases
                have = {r[1] for r in c.execute("PRAGMA table_info(runs)")}
                for col, typ in _V2_COLUMNS:
                    if col not in have:
                        c.execute(f"ALTER TABLE runs ADD COLUMN {col} {typ}")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            if version != SCHEMA_VERSION:
                c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is None:
            return
        with suppress(sqlite3.Error):
            conn.close()
        self.conn = None
        n = Store._open_paths.get(self._key, 0) - 1
        if n > 0:
            Store._open_paths[self._key] = n
        else:
            Store._open_paths.pop(self._key, None)

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

    def statuses(self, run_ids: Iterable[int]) -> dict[int, str]:
        ids = list(run_ids)
        out = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = f"SELECT id, status FROM runs WHERE id IN ({','.join('?' * len(chunk))})"
            out.update(dict(self.conn.execute(q, chunk).fetchall()))
        return out

    # ------------------------------------------------------------------ leases

    def claim(
        self,
        run_ids: Iterable[int],
        owner: str,
        ttl: float,
        *,
        retry_failed_before: float | None = None,
    ) -> bool:
        """Atomically claim every run of ``run_ids`` for ``owner`` for ``ttl`` seconds.

        A run is claimable when it is ``pending``, ``failed`` with a finish time before
        ``retry_failed_before`` (failed runs are retried by a later invocation, not by the
        worker that saw them fail), or ``running`` under an expired lease (its worker died) or
        under ``owner``'s own lease. All or none: returns False, changing nothing, when any run
        of the group is not claimable."""
        ids = list(run_ids)
        now = time.time()
        with self.transaction() as c:
            for rid in ids:
                row = c.execute(
                    "SELECT status, lease_owner, lease_expires, finished FROM runs WHERE id=?",
                    (rid,),
                ).fetchone()
                if row is None or not _claimable(*row, owner, now, retry_failed_before):
                    return False  # nothing written: the transaction commits no change
            for rid in ids:
                c.execute(
                    "UPDATE runs SET status='running', started=?, attempts=attempts+1, "
                    "lease_owner=?, lease_expires=?, progress=NULL WHERE id=?",
                    (now, owner, now + ttl, rid),
                )
        return True

    def heartbeat(self, owner: str, ttl: float) -> int:
        """Renew every live lease of ``owner`` for ``ttl`` seconds; returns how many."""
        with self.transaction() as c:
            cur = c.execute(
                "UPDATE runs SET lease_expires=? WHERE lease_owner=? AND status='running'",
                (time.time() + ttl, owner),
            )
            return cur.rowcount

    def release(self, run_ids: Iterable[int], owner: str) -> None:
        """Give ``owner``'s runs back (pending, claimable at once), e.g. on Ctrl-C."""
        with self.transaction() as c:
            for rid in run_ids:
                c.execute(
                    "UPDATE runs SET status='pending', lease_owner=NULL, lease_expires=NULL "
                    "WHERE id=? AND status='running' AND lease_owner=?",
                    (rid, owner),
                )

    def set_progress(self, run_ids: Iterable[int], progress: dict) -> None:
        """Record a running group's progress (epoch, epochs, eta_s, ...), shown by
        ``smithing status``."""
        text = _dumps(progress)
        with self.transaction() as c:
            for rid in run_ids:
                c.execute("UPDATE runs SET progress=? WHERE id=? AND status='running'", (text, rid))

    def running(self, study: str | None = None) -> list[dict]:
        """The running runs: id, study, variant, seed, worker, lease expiry, progress."""
        q = (
            "SELECT id, study, scale, variant, seed, lease_owner, lease_expires, started, "
            "progress FROM runs WHERE status='running'"
        )
        args: tuple = ()
        if study:
            q += " AND study=?"
            args = (study,)
        out = []
        for rid, st, scale, variant, seed, owner, expires, started, prog in self.conn.execute(
            q + " ORDER BY id", args
        ):
            out.append(
                {
                    "run_id": rid,
                    "study": st,
                    "scale": scale,
                    "variant": variant,
                    "seed": seed,
                    "worker": owner,
                    "lease_expires": expires,
                    "started": started,
                    "progress": json.loads(prog) if prog else {},
                }
            )
        return out

    def record(self, run_id: int, result: RunResult, owner: str | None = None) -> bool:
        """Record a finished run atomically: epochs, final metrics and status together.

        With ``owner``, only while ``owner`` holds the run's lease (a worker whose lease
        expired and was taken over does not overwrite the new holder); returns whether the
        result was recorded."""
        if result.status not in FINAL_STATUSES:
            raise ValueError(f"status={result.status!r} is invalid: expected {FINAL_STATUSES}")
        with self.transaction() as c:
            if owner is not None:
                row = c.execute(
                    "SELECT status, lease_owner FROM runs WHERE id=?", (run_id,)
                ).fetchone()
                if row is None or row[0] != "running" or row[1] != owner:
                    return False
            c.execute("DELETE FROM epochs WHERE run_id=?", (run_id,))
            c.executemany(
                "INSERT INTO epochs (run_id, epoch, metrics) VALUES (?, ?, ?)",
                [
                    (run_id, int(e.get("epoch", i + 1)), _dumps(e))
                    for i, e in enumerate(result.epochs)
                ],
            )
            c.execute(
                "UPDATE runs SET status=?, finished=?, seconds=?, final=?, extra=?, message=?, "
                "lease_owner=?, lease_expires=NULL, progress=NULL WHERE id=?",
                (
                    result.status,
                    time.time(),
                    result.seconds,
                    _dumps(result.final),
                    _dumps(result.extra),
                    result.message,
                    owner,  # the worker that ran it (kept for the record)
                    run_id,
                ),
            )
        return True

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

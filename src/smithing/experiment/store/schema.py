"""The store's SQLite schema and versions, the config hash and JSON encoding, and the checks that
refuse a file that is not a usable store (:class:`StoreError`)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

__all__ = [
    "COMPLETE_STATUSES",
    "FINAL_STATUSES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "StoreError",
    "config_hash",
]

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
    lease_owner TEXT,
    lease_expires REAL,
    progress TEXT,
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
#: statuses whose runs are complete: never trained again (failed runs are retried by a later
#: invocation)
COMPLETE_STATUSES = ("done", "diverged")
SCHEMA_VERSION = 2
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: columns added by schema version 2 (leases and progress)
_V2_COLUMNS = (("lease_owner", "TEXT"), ("lease_expires", "REAL"), ("progress", "TEXT"))


class StoreError(ValueError):
    """A results store that cannot be used: not a store, corrupt, or of a newer schema.

    The message is one line naming the file and the problem; the file is left untouched."""


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


def _check_header(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(100)
    if not head.startswith(_SQLITE_MAGIC):
        raise StoreError(f"{path}: not a smithing results store (not an SQLite database)")
    if len(head) < 100:
        raise StoreError(f"{path}: the database is truncated ({len(head)} bytes)")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    size = path.stat().st_size
    wal = path.with_name(path.name + "-wal")
    if pages and page * pages > size and not (wal.exists() and wal.stat().st_size > 0):
        raise StoreError(f"{path}: the database is truncated ({size} bytes of {page * pages})")


def _db_problem(e: sqlite3.DatabaseError) -> str:
    msg = str(e)
    if "not a database" in msg:
        return "not a smithing results store (not an SQLite database)"
    if "malformed" in msg or "corrupt" in msg:
        return f"the database is corrupt ({msg})"
    return f"cannot be read as a results store ({msg})"

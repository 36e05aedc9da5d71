"""The results store: one SQLite file per output directory.

Tables:

* ``runs``: one row per (study, scale, variant, seed, config): the configuration as JSON, the
  status (``pending`` / ``running`` / ``done`` / ``diverged`` / ``failed``), timings, final
  metrics and any extra JSON a study's figures need.
* ``epochs``: the per-epoch curves of each run (metrics as JSON).
* ``sessions``: each ``smithing run`` invocation: command, versions, machine, wall time.

A run is recorded in ONE transaction (its epochs, its final metrics and its status flip to a
final state together), so killing the process at any moment leaves each run either fully
recorded or not at all.

**Leases.** A worker (a ``smithing run`` process, a process-pool or Ray driver) claims a group of
runs with :meth:`Store.claim`: one ``BEGIN IMMEDIATE`` transaction checks that every run of the
group is claimable (pending, failed before this worker started, or running under a lease that
has expired) and marks them ``running`` under the worker's name with an expiry ``ttl`` seconds
ahead. The worker renews its leases (:meth:`Store.heartbeat`) while it trains; a worker killed
with SIGKILL stops renewing, its leases expire, and another worker claims the runs and continues
them from their checkpoints. A worker of this machine that is no longer alive (its process id
is gone) need not be waited out: its runs are claimable at once. Only the lease holder may
record a run.

**Schema versions.** The schema version is SQLite's ``user_version``: 1 is the first store
layout (no leases), 2 adds the lease and progress columns. Older stores are migrated in place
when opened; a store of a newer version, a file that is not an SQLite database, a corrupt or
truncated database and an SQLite database that is not a results store raise :class:`StoreError`
(one line naming the file and the problem) and are never written to.
"""

from __future__ import annotations

from smithing.experiment.store.database import (
    Store,
)
from smithing.experiment.store.leases import (
    worker_name,
)
from smithing.experiment.store.schema import (
    COMPLETE_STATUSES,
    FINAL_STATUSES,
    SCHEMA,
    SCHEMA_VERSION,
    StoreError,
    config_hash,
)

__all__ = [
    "SCHEMA",
    "FINAL_STATUSES",
    "COMPLETE_STATUSES",
    "SCHEMA_VERSION",
    "StoreError",
    "worker_name",
    "config_hash",
    "Store",
]

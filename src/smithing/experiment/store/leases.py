"""Who holds a run: worker names (``host:pid``), when a run is claimable, and whether a lease's
holder on this machine is still alive."""

from __future__ import annotations

import os
import socket

__all__ = [
    "worker_name",
]


def _host() -> str:
    return os.environ.get("SMITHING_WORKER_HOST") or socket.gethostname()


def worker_name() -> str:
    """This process's name in leases: ``host:pid`` (``$SMITHING_WORKER_HOST`` overrides the
    host name, e.g. for containers that share one)."""
    return f"{_host()}:{os.getpid()}"


def _claimable(status, lease_owner, expires, finished, owner, now, retry_failed_before) -> bool:
    if status == "pending":
        return True
    if status == "failed":
        return retry_failed_before is not None and (finished or 0) < retry_failed_before
    if status == "running":  # our own lease, or a dead worker's (expired, or a pre-lease store)
        return (
            lease_owner == owner
            or expires is None
            or expires < now
            or _dead_local_worker(lease_owner)
        )
    return False


def _dead_local_worker(owner: str | None) -> bool:
    """Whether ``owner`` (``host:pid[:tag]``) is a process of this machine that no longer runs:
    its lease need not be waited out (a worker killed with SIGKILL, then the same command
    run again)."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.split(":", 1)[0]
    if host != _host() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # another driver in this very process: alive
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False

"""Dataset files: find them in the data directory, else download them with checksums.

A :class:`RemoteFile` names a file by its path under :func:`smithing.data.data_dir` (e.g.
``mnist/train-images-idx3-ubyte.gz``), its md5 and the mirrors that serve it (base URLs, tried in
order; the URL is ``mirror + basename``). :func:`ensure_file` returns the local path, downloading
when the file is missing: the bytes stream into a temporary file in the destination folder while
their md5 is computed, and only a file with the right checksum is moved into place with
``os.replace`` (atomic), so an interrupted or corrupt download never leaves a file behind. A bad
checksum or an HTTP / network error moves on to the next mirror. When every mirror fails (e.g.
offline) :class:`smithing.data.DataUnavailableError` says which file, where it was looked for,
and how to fix it. Only the standard library's ``urllib`` is used.

Set ``SMITHING_OFFLINE=1`` to never touch the network (a missing file then raises at once).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smithing.data.base import DataUnavailableError

__all__ = [
    "ChecksumError",
    "RemoteFile",
    "md5sum",
    "offline",
    "file_status",
    "ensure_file",
    "download_file",
    "check_md5",
    "ensure_files",
]

_CHUNK = 1 << 16
_USER_AGENT = "smithing (python urllib)"


class ChecksumError(DataUnavailableError):
    """A file's md5 is not the published one (corrupt, truncated or not the canonical file)."""


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: ``relpath`` under the data dir, its md5 and size, and its mirrors."""

    relpath: str
    md5: str
    mirrors: tuple[str, ...]
    size: int | None = None  # bytes, for display only

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]

    def urls(self) -> list[str]:
        return [
            m if m.endswith(self.name) else m.rstrip("/") + "/" + self.name for m in self.mirrors
        ]


def md5sum(path: str | os.PathLike) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def offline() -> bool:
    """True when ``$SMITHING_OFFLINE`` is set to a true value (1, true, yes)."""
    return os.environ.get("SMITHING_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def file_status(rf: RemoteFile, root: Path, *, checksum: bool = True) -> dict:
    """``{"file", "path", "present", "size", "md5_ok"}`` for ``rf`` under ``root``.

    ``size`` is the size on disk (``None`` when missing); ``md5_ok`` is ``None`` when the file is
    missing (or ``checksum`` is false), else whether its md5 is the published one.
    """
    path = Path(root) / rf.relpath
    present = path.is_file()
    return {
        "file": rf.relpath,
        "path": str(path),
        "present": present,
        "size": path.stat().st_size if present else None,
        "md5_ok": (md5sum(path) == rf.md5) if present and checksum else None,
        "expected_size": rf.size,
        "expected_md5": rf.md5,
    }


def ensure_file(
    rf: RemoteFile,
    root: str | os.PathLike,
    *,
    download: bool = True,
    progress: bool | None = None,
    timeout: float = 30.0,
) -> Path:
    """The local path of ``rf`` under ``root``, downloading it first when it is missing.

    A present file is returned as is (checksums of present files are the caller's choice: see
    :func:`check_md5`). ``download=False`` or ``$SMITHING_OFFLINE`` turn a missing file into a
    :class:`DataUnavailableError` without touching the network.
    """
    root = Path(root)
    path = root / rf.relpath
    if path.is_file():
        return path
    if not download or offline():
        why = "downloads are disabled (SMITHING_OFFLINE)" if offline() else "download=False"
        raise DataUnavailableError(_missing_message(rf, root, why))
    return download_file(rf, root, progress=progress, timeout=timeout)


def download_file(
    rf: RemoteFile,
    root: str | os.PathLike,
    *,
    progress: bool | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``rf`` into ``root / rf.relpath`` from the first mirror that serves it intact.

    ``progress``: show a rich progress bar on stderr (default: when stderr is a terminal).
    Raises :class:`ChecksumError` when every mirror served bad bytes, else
    :class:`DataUnavailableError` when none could be used; no file is left behind either way.
    """
    root = Path(root)
    dest = root / rf.relpath
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataUnavailableError(
            _missing_message(rf, root, f"cannot create {dest.parent} ({e})")
        ) from e
    errors: list[str] = []
    n_bad_md5 = 0
    for url in rf.urls():
        try:
            _fetch(url, dest, rf.md5, progress, timeout)
            return dest
        except ChecksumError as e:
            n_bad_md5 += 1
            errors.append(f"{url}: {e}")
        except (OSError, ValueError, http.client.HTTPException) as e:  # URLError is an OSError
            errors.append(f"{url}: {e}")
    why = "every mirror failed:\n  " + "\n  ".join(errors)
    cls = ChecksumError if n_bad_md5 == len(errors) and errors else DataUnavailableError
    raise cls(_missing_message(rf, root, why))


def _fetch(url: str, dest: Path, md5: str, progress: bool, timeout: float) -> None:
    """Stream ``url`` into a temp file beside ``dest``; move it into place if its md5 is ``md5``."""
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        h = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            with _progress_bar(progress, dest.name, total) as advance:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    advance(len(chunk))
        got = h.hexdigest()
        if got != md5:
            raise ChecksumError(f"md5 {got} does not match the published {md5}")
        os.replace(tmp, dest)  # atomic within one file system
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _progress_bar(show: bool, name: str, total: int | None):
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"downloading {name}", total=total)
        yield lambda n: bar.advance(task, n)


def check_md5(path: Path, rf: RemoteFile) -> None:
    """Raise :class:`ChecksumError` naming ``path`` when its md5 is not ``rf.md5``."""
    got = md5sum(path)
    if got != rf.md5:
        raise ChecksumError(
            f"{path}: md5 {got} does not match the published {rf.md5}: the file is corrupt or "
            f"not the canonical one; delete it to download it again, or replace it with a copy "
            f"from {rf.urls()[0] if rf.mirrors else 'its publisher'}"
        )


def _missing_message(rf: RemoteFile, root: Path, why: str) -> str:
    urls = rf.urls()
    return (
        f"dataset file {rf.relpath!r} is not in the data directory {root} and could not be "
        f"downloaded: {why}\n"
        f"To fix: set SMITHING_DATA_DIR to a directory that holds {rf.relpath}, or download it "
        f"by hand (md5 {rf.md5})"
        + (f" from {urls[0]}" if urls else "")
        + f" to {root / rf.relpath}"
    )


def ensure_files(
    files: Sequence[RemoteFile],
    root: str | os.PathLike,
    *,
    download: bool = True,
    progress: bool | None = None,
) -> list[Path]:
    """:func:`ensure_file` for each of ``files``."""
    return [ensure_file(rf, root, download=download, progress=progress) for rf in files]

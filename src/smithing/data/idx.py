"""A strict reader (and a small writer) for the IDX file format of MNIST and Fashion-MNIST.

The format (LeCun, Cortes & Burges, "The MNIST database of handwritten digits", 1998): a magic
number of four bytes ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32
dimension sizes, then ``prod(dims)`` items of the dtype, big-endian, in C order. Dtype codes:
0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64. Files may be gzip
compressed (detected from the content, not the name).

Strictness: every way a file can be malformed (bad magic, unknown dtype code, unexpected number
of dimensions or shape, truncated or oversized payload, corrupt gzip stream) raises
:class:`IDXFormatError` (a ``ValueError``) whose message starts with the file's path. The header's
declared size is checked against the actual file size (raw) or against what the compressed size
can possibly hold (gzip: deflate's ratio is at most ~1032:1) and against ``max_bytes`` *before*
anything is allocated, and gzip streams are decompressed into a buffer of exactly the declared
size (never more is read than that plus one byte).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["DTYPES", "MAX_BYTES", "IDXFormatError", "read_idx", "write_idx"]

#: IDX dtype code -> numpy dtype (big-endian as stored in the file).
DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in DTYPES.items()}

#: Default bound on a payload's size in bytes (2 GiB; MNIST's largest file holds 47 MB).
MAX_BYTES = 1 << 31
# Deflate's maximum compression ratio is about 1032:1 (258-byte matches in ~2 bits); a gzip file
# of c bytes cannot decompress to more than this many times c.
_MAX_DEFLATE_RATIO = 1100
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class IDXFormatError(ValueError):
    """An IDX file is malformed; the message names the file and what is wrong."""


def read_idx(
    path: str | os.PathLike,
    *,
    ndim: int | None = None,
    shape: tuple[int | None, ...] | None = None,
    max_bytes: int = MAX_BYTES,
) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian numpy array of its declared shape.

    ``ndim`` and ``shape`` state what the caller expects (``None`` entries of ``shape`` match
    any size); a file that disagrees raises :class:`IDXFormatError`, as does any malformation
    (see the module docstring). A missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    if shape is not None:
        if ndim is not None and ndim != len(shape):
            raise ValueError(f"ndim={ndim} is invalid: expected len(shape)={len(shape)}")
        ndim = len(shape)
    with open(path, "rb") as raw:
        is_gz = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        file_size = os.fstat(raw.fileno()).st_size
        if is_gz:
            try:
                with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                    return _read(f, path, file_size, True, ndim, shape, max_bytes)
            except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
                raise IDXFormatError(f"{path}: corrupt gzip stream ({e})") from e
        return _read(raw, path, file_size, False, ndim, shape, max_bytes)


def _read(f, path, file_size, is_gz, ndim, shape, max_bytes) -> np.ndarray:
    magic = _read_exactly(f, 4, path, "magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(
            f"{path}: bad magic number 0x{magic.hex()}: an IDX file starts with two zero bytes"
        )
    code, nd = magic[2], magic[3]
    if code not in DTYPES:
        valid = ", ".join(f"0x{c:02X}" for c in DTYPES)
        raise IDXFormatError(f"{path}: unsupported IDX dtype code 0x{code:02X}; valid: {valid}")
    if ndim is not None and nd != ndim:
        raise IDXFormatError(f"{path}: has {nd} dimensions, expected {ndim}")
    dims = tuple(int(d) for d in np.frombuffer(_read_exactly(f, 4 * nd, path, "dimensions"), ">u4"))
    if shape is not None and any(
        e is not None and e != d for e, d in zip(shape, dims, strict=True)
    ):
        raise IDXFormatError(f"{path}: has shape {dims}, expected {shape}")
    dtype = DTYPES[code]
    n_items = 1
    for d in dims:
        n_items *= d
    n_bytes = n_items * dtype.itemsize  # Python ints: no overflow
    header = 4 + 4 * nd
    # check the declared size before allocating anything
    if n_bytes > max_bytes:
        raise IDXFormatError(
            f"{path}: header declares shape {dims} ({n_bytes} bytes), over the bound "
            f"max_bytes={max_bytes}"
        )
    if is_gz:
        if header + n_bytes > _MAX_DEFLATE_RATIO * file_size:
            raise IDXFormatError(
                f"{path}: header declares shape {dims} ({n_bytes} bytes), more than a "
                f"{file_size}-byte gzip file can hold (truncated or corrupt)"
            )
    elif header + n_bytes != file_size:
        what = "truncated" if header + n_bytes > file_size else "oversized"
        raise IDXFormatError(
            f"{path}: {what} payload: header declares shape {dims} = {n_bytes} bytes of "
            f"{dtype.name}, the file holds {file_size - header}"
        )
    # np.empty does not touch its pages, so a lying header costs no memory before it is caught
    buf = np.empty(n_bytes, dtype=np.uint8)
    view = buf.data  # a writable memoryview of buf
    pos = 0
    while pos < n_bytes:
        k = f.readinto(view[pos : pos + _CHUNK])
        if not k:
            raise IDXFormatError(
                f"{path}: truncated payload: header declares shape {dims} = {n_bytes} bytes of "
                f"{dtype.name}, the data ends after {pos}"
            )
        pos += k
    if f.read(1):  # also makes gzip check the stream's CRC and length
        raise IDXFormatError(
            f"{path}: oversized payload: data continues past the {n_bytes} bytes declared by "
            f"shape {dims}"
        )
    arr = buf.view(dtype).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False) if dtype.itemsize > 1 else arr


def _read_exactly(f, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise IDXFormatError(f"{path}: truncated header: file ends inside the {what}")
    return data


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip when ``compress``, default: the name ends in .gz)."""
    path = Path(path)
    a = np.ascontiguousarray(array)
    code = _CODES.get(a.dtype.newbyteorder("="))
    if code is None:
        allowed = ", ".join(sorted(str(d.newbyteorder("=")) for d in DTYPES.values()))
        raise ValueError(f"array.dtype={a.dtype} is invalid: expected one of {allowed}")
    if a.ndim > 255:
        raise ValueError(f"array.ndim={a.ndim} is invalid: expected at most 255")
    head = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
    data = head + a.astype(DTYPES[code], copy=False).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path

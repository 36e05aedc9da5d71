"""The strict IDX reader: round trips, byte layout, and one clear error per malformation."""

from __future__ import annotations

import gzip
import re
import struct

import numpy as np
import pytest

from smithing.data.idx import IDXFormatError, read_idx, write_idx


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def _named(path) -> str:
    return re.escape(str(path))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / f"a.idx{suffix}", a)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    b = read_idx(path, ndim=3)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    np.testing.assert_array_equal(a, b)


def test_byte_layout_is_big_endian(tmp_path):
    # header 0x00 0x00 0x0C (int32) 0x02 (ndim), dims 2 x 1, then big-endian items
    raw = _header(0x0C, (2, 1)) + struct.pack(">2i", 258, -3)
    p = tmp_path / "x.idx"
    p.write_bytes(raw)
    np.testing.assert_array_equal(read_idx(p), np.array([[258], [-3]], dtype=np.int32))
    assert (
        write_idx(tmp_path / "y.idx", np.array([[258], [-3]], dtype=np.int32)).read_bytes() == raw
    )


def test_gzip_detected_by_content_not_name(tmp_path):
    p = tmp_path / "labels"  # no .gz suffix
    p.write_bytes(gzip.compress(_header(0x08, (4,)) + bytes([1, 2, 3, 4])))
    np.testing.assert_array_equal(read_idx(p), [1, 2, 3, 4])


def test_expected_shape_with_wildcards(tmp_path):
    p = write_idx(tmp_path / "a.idx", np.zeros((5, 2, 3), np.uint8))
    assert read_idx(p, shape=(None, 2, 3)).shape == (5, 2, 3)
    with pytest.raises(IDXFormatError, match=_named(p) + r".*shape \(5, 2, 3\), expected"):
        read_idx(p, shape=(None, 3, 3))


def test_empty_array(tmp_path):
    p = write_idx(tmp_path / "e.idx.gz", np.zeros((0, 28), np.uint8))
    assert read_idx(p).shape == (0, 28)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


# ---- malformed files: each raises IDXFormatError (a ValueError) naming the file ----


@pytest.mark.parametrize("gz", [False, True])
def test_bad_magic(tmp_path, gz):
    data = bytes([1, 0, 0x08, 1]) + struct.pack(">I", 2) + b"ab"
    p = tmp_path / "bad.idx"
    p.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(IDXFormatError, match=_named(p) + ".*bad magic number 0x01000801"):
        read_idx(p)


def test_is_a_value_error(tmp_path):
    p = tmp_path / "bad.idx"
    p.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match=_named(p)):
        read_idx(p)


def test_unsupported_dtype_code(tmp_path):
    p = tmp_path / "code.idx"
    p.write_bytes(_header(0x0A, (2,)) + b"ab")
    with pytest.raises(IDXFormatError, match=_named(p) + ".*unsupported IDX dtype code 0x0A"):
        read_idx(p)


def test_wrong_number_of_dimensions(tmp_path):
    p = write_idx(tmp_path / "labels.gz", np.arange(6, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match=_named(p) + ".*has 1 dimensions, expected 3"):
        read_idx(p, ndim=3)
    with pytest.raises(IDXFormatError, match=_named(p) + ".*has 1 dimensions, expected 2"):
        read_idx(p, shape=(None, 28))


@pytest.mark.parametrize("cut", [1, 3, 6])
def test_truncated_header(tmp_path, cut):
    p = tmp_path / "head.idx"
    p.write_bytes(_header(0x08, (2, 2))[:cut])
    with pytest.raises(IDXFormatError, match=_named(p) + ".*truncated header"):
        read_idx(p)


def test_truncated_payload_raw(tmp_path):
    p = tmp_path / "short.idx"
    p.write_bytes(_header(0x0B, (3, 2)) + bytes(11))  # 12 bytes declared (int16)
    with pytest.raises(IDXFormatError, match=_named(p) + ".*truncated payload.*12 bytes"):
        read_idx(p)


def test_oversized_payload_raw(tmp_path):
    p = tmp_path / "long.idx"
    p.write_bytes(_header(0x08, (3,)) + bytes(4))
    with pytest.raises(IDXFormatError, match=_named(p) + ".*oversized payload"):
        read_idx(p)


def test_truncated_payload_gz(tmp_path):
    p = tmp_path / "short.idx.gz"
    p.write_bytes(gzip.compress(_header(0x08, (10, 10)) + bytes(99)))  # a valid gzip stream
    with pytest.raises(IDXFormatError, match=_named(p) + ".*truncated payload.*ends after 99"):
        read_idx(p)


def test_oversized_payload_gz(tmp_path):
    p = tmp_path / "long.idx.gz"
    p.write_bytes(gzip.compress(_header(0x08, (10,)) + bytes(11)))
    with pytest.raises(IDXFormatError, match=_named(p) + ".*oversized payload"):
        read_idx(p)


def _gz_payload(n: int = 4000) -> bytes:
    rng = np.random.default_rng(1)
    return gzip.compress(_header(0x08, (n,)) + rng.integers(0, 256, n, dtype=np.uint8).tobytes())


def test_corrupt_gzip_stream(tmp_path):
    data = bytearray(_gz_payload())
    for i in range(100, 140):  # garble the deflate data
        data[i] ^= 0x5A
    p = tmp_path / "garbled.gz"
    p.write_bytes(bytes(data))
    with pytest.raises(IDXFormatError, match=_named(p) + ".*(corrupt gzip stream|payload)"):
        read_idx(p)


def test_cut_gzip_stream(tmp_path):
    p = tmp_path / "cut.gz"
    p.write_bytes(_gz_payload()[:2000])  # the compressed stream ends early
    with pytest.raises(IDXFormatError, match=_named(p) + ".*corrupt gzip stream"):
        read_idx(p)


def test_bad_gzip_crc(tmp_path):
    data = bytearray(_gz_payload())
    data[-8] ^= 0xFF  # CRC32 in the trailer
    p = tmp_path / "crc.gz"
    p.write_bytes(bytes(data))
    with pytest.raises(IDXFormatError, match=_named(p) + ".*corrupt gzip stream.*CRC"):
        read_idx(p)


def test_bad_gzip_header(tmp_path):
    p = tmp_path / "hdr.gz"
    p.write_bytes(b"\x1f\x8b\x63" + bytes(20))  # gzip magic, unknown compression method
    with pytest.raises(IDXFormatError, match=_named(p) + ".*corrupt gzip stream"):
        read_idx(p)


def test_huge_declared_size_is_refused_before_allocating(tmp_path):
    p = tmp_path / "huge.idx"
    p.write_bytes(_header(0x0E, (65535, 65535, 65535)) + bytes(8))  # 2.25e15 bytes declared
    with pytest.raises(IDXFormatError, match=_named(p) + ".*over the bound max_bytes"):
        read_idx(p)
    q = tmp_path / "huge.idx.gz"
    q.write_bytes(gzip.compress(_header(0x08, (1 << 30,)) + bytes(100)))  # 1 GiB in 1 kB
    with pytest.raises(IDXFormatError, match=_named(q) + ".*more than a .*gzip file can hold"):
        read_idx(q)


def test_max_bytes(tmp_path):
    p = write_idx(tmp_path / "a.idx", np.zeros(100, np.float32))
    assert read_idx(p, max_bytes=400).shape == (100,)
    with pytest.raises(IDXFormatError, match=_named(p) + ".*400 bytes.*max_bytes=399"):
        read_idx(p, max_bytes=399)


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match=r"array.dtype=int64 is invalid: expected one of"):
        write_idx(tmp_path / "a.idx", np.zeros(3, np.int64))
    p = write_idx(tmp_path / "b.idx", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"ndim=2 is invalid: expected len\(shape\)=1"):
        read_idx(p, ndim=2, shape=(3,))

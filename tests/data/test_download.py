"""Downloads with checksums and mirror fallback, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import threading
from pathlib import Path

import pytest

import smithing.data as D
from smithing.data import mnist
from smithing.data.download import (
    ChecksumError,
    RemoteFile,
    download_file,
    ensure_file,
    file_status,
    md5sum,
)

PAYLOAD = bytes(range(256)) * 40  # 10 kB
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args):  # keep the test output quiet
        pass

    def do_GET(self):
        self.requests.append(self.path)
        if self.path.startswith("/short/"):  # promise more bytes than are sent, then hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:100])
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www: good/ holds the file, bad/ holds other bytes, empty/ is a 404."""
    www = tmp_path / "www"
    for sub in ("good", "bad", "empty"):
        (www / sub).mkdir(parents=True)
    (www / "good" / "file.bin").write_bytes(PAYLOAD)
    (www / "bad" / "file.bin").write_bytes(PAYLOAD[::-1])
    requests: list[str] = []
    handler = type("H", (_Handler,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(www))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, requests
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.delenv("SMITHING_OFFLINE", raising=False)
    return tmp_path / "data"


def _rf(base: str, *mirrors: str, md5: str = PAYLOAD_MD5) -> RemoteFile:
    return RemoteFile("set/file.bin", md5, tuple(f"{base}/{m}/" for m in mirrors))


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "set").iterdir()) if (root / "set").exists() else []


def test_good_checksum_writes_the_file(server, root):
    base, requests = server
    path = download_file(_rf(base, "good"), root, progress=False)
    assert path == root / "set" / "file.bin"
    assert path.read_bytes() == PAYLOAD
    assert _leftovers(root) == ["file.bin"]  # no temp file left
    assert requests == ["/good/file.bin"]


def test_bad_checksum_leaves_nothing(server, root):
    base, _ = server
    with pytest.raises(ChecksumError, match=r"(?s)set/file\.bin.*md5 [0-9a-f]{32} does not match"):
        download_file(_rf(base, "bad"), root, progress=False)
    assert _leftovers(root) == []
    assert isinstance(ChecksumError("x"), D.DataUnavailableError)


def test_falls_back_after_404(server, root):
    base, requests = server
    path = download_file(_rf(base, "empty", "good"), root, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert requests == ["/empty/file.bin", "/good/file.bin"]


def test_falls_back_after_bad_checksum(server, root):
    base, requests = server
    path = download_file(_rf(base, "bad", "good"), root, progress=False)
    assert md5sum(path) == PAYLOAD_MD5
    assert requests == ["/bad/file.bin", "/good/file.bin"]
    assert _leftovers(root) == ["file.bin"]


def test_falls_back_after_truncated_response(server, root):
    base, requests = server
    path = download_file(_rf(base, "short", "good"), root, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert requests == ["/short/file.bin", "/good/file.bin"]
    assert _leftovers(root) == ["file.bin"]


def test_every_mirror_fails(server, root):
    base, _ = server
    with pytest.raises(D.DataUnavailableError) as info:
        download_file(_rf(base, "empty", "bad"), root, progress=False)
    msg = str(info.value)
    assert not isinstance(info.value, ChecksumError)  # one of the failures was a 404
    for part in ("'set/file.bin'", str(root), "404", "/empty/file.bin", "/bad/file.bin",
                 "does not match", "SMITHING_DATA_DIR", "by hand"):  # fmt: skip
        assert part in msg
    assert _leftovers(root) == []


def test_unreachable_mirror_is_data_unavailable(root):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rf = RemoteFile("set/file.bin", PAYLOAD_MD5, (f"http://127.0.0.1:{port}/",))
    with pytest.raises(D.DataUnavailableError, match=r"(?s)set/file\.bin.*refused"):
        ensure_file(rf, root, progress=False)
    assert _leftovers(root) == []


def test_present_file_is_not_downloaded(server, root):
    base, requests = server
    (root / "set").mkdir(parents=True)
    (root / "set" / "file.bin").write_bytes(b"mine")
    assert ensure_file(_rf(base, "good"), root).read_bytes() == b"mine"
    assert requests == []


def test_offline_and_download_false_never_touch_the_network(server, root, monkeypatch):
    base, requests = server
    rf = _rf(base, "good")
    with pytest.raises(D.DataUnavailableError, match=r"(?s)set/file\.bin.*download=False"):
        ensure_file(rf, root, download=False)
    monkeypatch.setenv("SMITHING_OFFLINE", "1")
    with pytest.raises(D.DataUnavailableError, match=r"(?s)SMITHING_OFFLINE.*SMITHING_DATA_DIR"):
        ensure_file(rf, root)
    assert requests == []
    assert not root.exists()


def test_progress_bar(server, root, capsys):
    base, _ = server
    path = download_file(_rf(base, "good"), root, progress=True)
    assert path.read_bytes() == PAYLOAD
    capsys.readouterr()  # whatever rich drew went to stderr, not stdout


def test_file_status(server, root):
    base, _ = server
    rf = RemoteFile("set/file.bin", PAYLOAD_MD5, (f"{base}/good/",), size=len(PAYLOAD))
    missing = file_status(rf, root)
    assert missing["present"] is False and missing["size"] is None and missing["md5_ok"] is None
    assert missing["path"] == str(root / "set" / "file.bin")
    download_file(rf, root, progress=False)
    ok = file_status(rf, root)
    assert ok["present"] is True and ok["size"] == len(PAYLOAD) and ok["md5_ok"] is True
    (root / "set" / "file.bin").write_bytes(b"changed")
    assert file_status(rf, root)["md5_ok"] is False


def test_mirror_urls():
    rf = RemoteFile("a/f.gz", "0" * 32, ("http://x/y/", "http://z", "http://w/f.gz"))
    assert rf.urls() == ["http://x/y/f.gz", "http://z/f.gz", "http://w/f.gz"]


# ---- the MNIST loaders when files are missing (no data needed) ----


def test_mnist_offline_missing_raises_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SMITHING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMITHING_OFFLINE", "1")
    pattern = (
        r"(?s)'mnist/train-images-idx3-ubyte\.gz'.*data directory "
        + re.escape(str(tmp_path))
        + r".*SMITHING_DATA_DIR.*download it by hand"
    )
    with pytest.raises(D.DataUnavailableError, match=pattern):
        D.load("mnist", cache=False)
    with pytest.raises(D.DataUnavailableError, match=r"fashion-mnist/train-images"):
        D.load("fashion-mnist-standardized", cache=False)
    assert list(tmp_path.iterdir()) == []


def test_mnist_download_false(tmp_path):
    with pytest.raises(D.DataUnavailableError, match=r"download=False"):
        D.load("mnist-binarized", data_dir_=tmp_path, cache=False, download=False)


def test_mnist_mirrors_are_injectable(server, root, monkeypatch):
    base, requests = server
    monkeypatch.setitem(mnist.MIRRORS, "mnist", (f"{base}/empty/", f"{base}/empty2/"))
    with pytest.raises(D.DataUnavailableError, match=r"(?s)404.*404"):
        mnist.fetch("mnist", root, progress=False)
    assert requests == ["/empty/train-images-idx3-ubyte.gz", "/empty2/train-images-idx3-ubyte.gz"]
    assert mnist.status("mnist", root)[0]["present"] is False
    assert mnist.verify("mnist", root) is False

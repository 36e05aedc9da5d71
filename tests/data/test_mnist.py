"""MNIST, Fashion-MNIST and their views, read from the shared read-only copies.

Skipped when ../shared/data is absent. The data directory is never written to.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import smithing.data as D
from smithing.data import mnist
from smithing.data.download import ChecksumError, md5sum

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
pytestmark = pytest.mark.skipif(
    not (SHARED / "mnist").is_dir() or not (SHARED / "fashion-mnist").is_dir(),
    reason=f"MNIST copies not found in {SHARED}",
)

MNIST_TRAIN_FIRST = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
MNIST_TEST_FIRST = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
FASHION_TRAIN_FIRST = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
FASHION_TEST_FIRST = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
VIEWS = ["mnist", "fashion-mnist", "mnist-binarized", "mnist-standardized",
         "fashion-mnist-standardized"]  # fmt: skip


@pytest.fixture(scope="module")
def shared_env():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMITHING_DATA_DIR", str(SHARED))
        mp.setenv("SMITHING_OFFLINE", "1")  # a test must never reach for the network
        yield SHARED


@pytest.fixture(scope="module")
def ds(shared_env):
    """Each dataset loaded once for the module (decoding MNIST takes about a second)."""
    return functools.cache(lambda name: D.load(name))


def test_registered(shared_env):
    for name in VIEWS:
        assert name in D.names()
        spec = D.DATASETS.get(name)
        src = "fashion-mnist" if name.startswith("fashion") else "mnist"
        assert spec.files[0] == f"{src}/train-images-idx3-ubyte.gz"
        assert len(spec.files) == 4 and spec.status is not None


@pytest.mark.parametrize(
    "name, train_first, test_first",
    [("mnist", MNIST_TRAIN_FIRST, MNIST_TEST_FIRST),
     ("fashion-mnist", FASHION_TRAIN_FIRST, FASHION_TEST_FIRST)],
)  # fmt: skip
def test_plain(ds, name, train_first, test_first):
    d = ds(name)
    assert (len(d.train), len(d.valid), len(d.test)) == (50_000, 10_000, 10_000)
    assert d.input_shape == (784,) and d.n_inputs == 784 and d.n_classes == 10
    assert d.meta["image_shape"] == (28, 28) and d.task == "classification"
    for s in (d.train, d.valid, d.test):
        assert s.x.dtype == torch.float32 and s.x.shape[1:] == (784,)
        assert s.y.dtype == torch.int64 and s.x.device.type == "cpu"
        assert s.x.min() == 0.0 and s.x.max() == 1.0
        assert set(s.y.unique().tolist()) == set(range(10))
    assert d.train.y[:10].tolist() == train_first
    assert d.test.y[:10].tolist() == test_first
    # valid is the last 10k of the training file, x = pixel / 255 exactly
    raw = mnist.raw_arrays(name, SHARED)
    np.testing.assert_array_equal(d.valid.y.numpy(), raw.train_labels[50_000:])
    np.testing.assert_array_equal(
        d.valid.x[:5].numpy(),
        raw.train_images[50_000:50_005].reshape(5, 784).astype(np.float32) / np.float32(255),
    )
    assert torch.equal(
        d.test.x[-1], torch.from_numpy(raw.test_images[-1].reshape(-1) / 255.0).float()
    )


def test_fashion_classes(ds):
    assert ds("fashion-mnist").meta["classes"][9] == "Ankle boot"


def test_binarized(ds):
    b, m = ds("mnist-binarized"), ds("mnist")
    assert b.meta["seed"] == 0 and b.input_shape == (784,)
    for sb, sm in zip((b.train, b.valid, b.test), (m.train, m.valid, m.test), strict=True):
        assert sb.x.dtype == torch.float32 and sb.x.shape == sm.x.shape
        assert torch.equal(sb.y, sm.y)
        # x in {0, 1}; pixel 0 -> 0 and pixel 1 -> 1 surely: floor(p) <= x <= ceil(p)
        assert ((sb.x == 0) | (sb.x == 1)).all()
        assert (sb.x <= torch.ceil(sm.x)).all() and (sb.x >= torch.floor(sm.x)).all()
    # E[x] = pixel: over 39M draws the means agree to ~1e-4
    assert abs(b.train.x.mean().item() - m.train.x.mean().item()) < 1e-3
    # deterministic from the seed
    again = D.load("mnist-binarized", cache=False)
    assert torch.equal(again.train.x, b.train.x) and torch.equal(again.test.x, b.test.x)


def test_binarize():
    images = np.array([[0, 255, 51, 204]], dtype=np.uint8).repeat(20_000, axis=0)
    x = mnist.binarize(images, torch.Generator().manual_seed(0))  # (20000, 4)
    assert x.dtype == torch.float32 and x.shape == (20_000, 4)
    p = torch.tensor([0.0, 1.0, 0.2, 0.8])
    assert (x.mean(0) - p).abs().max() < 4 * (0.16 / 20_000) ** 0.5  # 4 standard errors
    same = mnist.binarize(images, torch.Generator().manual_seed(0))
    other = mnist.binarize(images, torch.Generator().manual_seed(1))
    assert torch.equal(x, same) and not torch.equal(x, other)
    assert images[0, 2] == 51  # input not mutated


@pytest.mark.parametrize("name", ["mnist-standardized", "fashion-mnist-standardized"])
def test_standardized(ds, name):
    s, plain = ds(name), ds(name.removesuffix("-standardized"))
    assert torch.equal(s.train.y, plain.train.y) and s.meta["image_shape"] == (28, 28)
    mean, std = s.meta["mean"], s.meta["std"]
    assert mean.shape == std.shape == (784,)
    var_ok = std > 0
    var, mu = torch.var_mean(s.train.x, 0, correction=0)  # (784,) each
    assert mu.abs().max() < 1e-5  # zero mean on train
    assert (var[var_ok] - 1).abs().max() < 1e-4  # unit variance
    for split in (s.train, s.valid, s.test):  # pixels constant on train stay 0 everywhere
        assert split.x.dtype == torch.float32
        assert (split.x[:, ~var_ok] == 0).all()
    # statistics against a float64 transcription on a few pixels
    cols = [0, 100, 350, 406, 783]
    ref = plain.train.x[:, cols].double()
    torch.testing.assert_close(mean[cols].double(), ref.mean(0), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(std[cols].double(), ref.std(0, unbiased=False), rtol=1e-6, atol=1e-7)
    z = (plain.test.x[:, cols].double() - ref.mean(0)) / ref.std(0, unbiased=False)
    z[:, ~var_ok[cols]] = 0
    torch.testing.assert_close(s.test.x[:, cols].double(), z, rtol=1e-5, atol=1e-5)


def test_mnist_has_constant_border_pixels(ds):
    assert (ds("mnist-standardized").meta["std"] == 0).sum() > 0  # the case above is exercised


def test_decoded_arrays_are_shared_and_read_only(shared_env):
    a = mnist.raw_arrays("mnist")
    assert mnist.raw_arrays("mnist", SHARED) is a  # decoded once per process and directory
    assert a.train_images.shape == (60_000, 28, 28) and a.train_images.dtype == np.uint8
    assert not a.train_images.flags.writeable
    d = D.load("mnist", cache=False)
    d.train.x[0, 0] = 7.0  # a loaded dataset is a copy: the cache is not touched
    assert a.train_images[0, 0, 0] == 0


def test_status_and_verify(shared_env, tmp_path):
    rows = mnist.status("mnist")
    assert [r["file"] for r in rows] == list(D.DATASETS.get("mnist").files)
    for r in rows:
        assert r["present"] is True and r["md5_ok"] is True
        assert r["size"] == r["expected_size"] == os.path.getsize(r["path"])
    assert D.DATASETS.get("fashion-mnist-standardized").status(SHARED)[3]["md5_ok"] is True
    assert mnist.verify("mnist") and mnist.verify("fashion-mnist-standardized")
    assert mnist.verify("digits")  # embedded: nothing to verify
    missing = mnist.status("mnist", tmp_path)
    assert all(r["present"] is False and r["md5_ok"] is None and r["size"] is None for r in missing)
    assert not mnist.verify("mnist", tmp_path)
    with pytest.raises(ValueError, match=r"unknown downloadable dataset 'mnits'.*'mnist'"):
        mnist.status("mnits")


def _mixed_dir(tmp_path: Path) -> Path:
    """Three links to the shared files and a copy of train labels with one byte changed."""
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for rf in mnist.remote_files("mnist").values():
        (root / rf.relpath).symlink_to(SHARED / rf.relpath)
    bad = root / "mnist" / "train-labels-idx1-ubyte.gz"
    bad.unlink()
    data = bytearray((SHARED / "mnist" / "train-labels-idx1-ubyte.gz").read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    return root


def test_corrupt_file_is_reported(shared_env, tmp_path):
    root = _mixed_dir(tmp_path)
    bad = root / "mnist" / "train-labels-idx1-ubyte.gz"
    with pytest.raises(ChecksumError, match=f"{bad}: md5 .* does not match .*delete it"):
        D.load("mnist", data_dir_=root, cache=False)
    with pytest.raises(ChecksumError, match=str(bad)):
        mnist.fetch("mnist", root, progress=False)
    assert [r["md5_ok"] for r in mnist.status("mnist", root)] == [True, False, True, True]
    assert not mnist.verify("mnist", root)


def test_fetch_downloads_from_the_fallback_mirror(shared_env, tmp_path, monkeypatch):
    """End to end: the real files served on 127.0.0.1 (first mirror 404s) land intact."""
    monkeypatch.delenv("SMITHING_OFFLINE")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SHARED))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        monkeypatch.setitem(mnist.MIRRORS, "mnist", (f"{base}/nowhere/", f"{base}/mnist/"))
        root = tmp_path / "data"
        paths = mnist.fetch("mnist", root, progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert [p.name for p in paths] == list(mnist.FILE_NAMES.values())
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted(mnist.FILE_NAMES.values())
    for p, rf in zip(paths, mnist.remote_files("mnist").values(), strict=True):
        assert md5sum(p) == rf.md5
    assert mnist.verify("mnist", root)

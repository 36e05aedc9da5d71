"""MNIST and Fashion-MNIST, and their binarized / standardized views.

- ``mnist``: handwritten digits (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning
  applied to document recognition", Proc. IEEE 86(11), 1998), 28x28 grey levels.
- ``fashion-mnist``: Zalando's article images, a drop-in replacement (Xiao, Rasul & Vollgraf,
  "Fashion-MNIST: a novel image dataset for benchmarking machine learning algorithms",
  arXiv:1708.07747, 2017).

Splits (as in the Theano deep learning tutorials): train = the first 50,000 images of the
training file, valid = its last 10,000, test = the 10,000 of the test file. ``x`` is float32
``pixel / 255`` in [0, 1], flattened to (n, 784) (``meta["image_shape"] == (28, 28)``); ``y`` int64.

Views, built from the same decoded arrays (decoded once per process and data directory):

- ``mnist-binarized``: stochastic binarization ``x ~ Bernoulli(pixel / 255)`` (:func:`binarize`),
  drawn once with a fixed ``seed`` (default 0) over the training file then the test file, as
  for the RBM likelihoods of Salakhutdinov & Murray ("On the quantitative analysis of deep belief
  networks", ICML 2008). Departure: their binarized set was one particular draw that is not
  reproduced here; ours is reproducible from ``seed``.
- ``mnist-standardized``, ``fashion-mnist-standardized``: per-pixel ``(x - mean) / std`` with the
  mean and (population) standard deviation of the 50,000 TRAIN images, for Gaussian visible
  units; pixels that are constant on train are set to 0 in every split. ``meta["mean"]`` and
  ``meta["std"]`` (784,) hold the statistics. ``x`` is not in [0, 1]: a pixel that is nonzero
  in only a few training images reaches values up to ~sqrt(50000) = 224 (no epsilon is added).

Files live in ``<data_dir>/mnist/`` and ``<data_dir>/fashion-mnist/`` under their canonical names
(``train-images-idx3-ubyte.gz`` ...) and are downloaded with md5 checks when missing (see
:mod:`smithing.data.download`). :data:`MIRRORS` and :data:`MD5` are module-level so they can be
replaced (tests point them at a local server).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from smithing._registry import unknown_name_message
from smithing.data.base import DATASETS, Dataset, Split, data_dir, register_dataset
from smithing.data.download import RemoteFile, check_md5, ensure_file, file_status
from smithing.data.idx import read_idx

__all__ = [
    "MIRRORS",
    "FILE_NAMES",
    "MD5",
    "N_TRAIN",
    "IMAGE_SHAPE",
    "N_PIXELS",
    "FASHION_CLASSES",
    "SOURCE_OF",
    "RawImages",
    "remote_files",
    "raw_arrays",
    "clear_cache",
    "load_mnist",
    "load_fashion_mnist",
    "binarize",
    "load_mnist_binarized",
    "train_pixel_stats",
    "load_mnist_standardized",
    "load_fashion_mnist_standardized",
    "status",
    "verify",
    "fetch",
    "DESCRIPTIONS",
]

#: Base URLs tried in order (the file name is appended).
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's first mirror
        "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow's mirror
        "http://yann.lecun.com/exdb/mnist/",  # the original host
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

#: (md5, bytes) as published by the datasets' authors, per source and file role.
MD5: dict[str, dict[str, tuple[str, int]]] = {
    "mnist": {
        "train_images": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422),
        "train_labels": ("d53e105ee54ea40749a09fcbcd1e9432", 28881),
        "test_images": ("9fb629c4189551a2d022fa330f9573f3", 1648877),
        "test_labels": ("ec29112dd5afa0611ce80d1b7f02629c", 4542),
    },
    "fashion-mnist": {
        "train_images": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
        "train_labels": ("25c81989df183df01b3e8a0aad5dffbe", 29515),
        "test_images": ("bef4ecab320f06d8554ea6380940ec79", 4422102),
        "test_labels": ("bb300cfdad3c16e7a12a480ee83cd310", 5148),
    },
}

N_TRAIN_FILE, N_TEST_FILE, N_VALID = 60_000, 10_000, 10_000
N_TRAIN = N_TRAIN_FILE - N_VALID
IMAGE_SHAPE = (28, 28)
N_PIXELS = 28 * 28

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

#: dataset name -> the source whose files it reads
SOURCE_OF = {
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
    "mnist-binarized": "mnist",
    "mnist-standardized": "mnist",
    "fashion-mnist-standardized": "fashion-mnist",
}


class RawImages(NamedTuple):
    """The decoded files of one source, read-only: uint8 images and uint8 labels."""

    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) uint8


def remote_files(source: str) -> dict[str, RemoteFile]:
    """The four files of ``source`` ("mnist" or "fashion-mnist") by role, with current mirrors."""
    _check_source(source)
    return {
        role: RemoteFile(f"{source}/{fname}", MD5[source][role][0], tuple(MIRRORS[source]),
                         MD5[source][role][1])
        for role, fname in FILE_NAMES.items()
    }  # fmt: skip


def raw_arrays(
    source: str,
    data_dir_: str | Path | None = None,
    *,
    download: bool = True,
    progress: bool | None = None,
) -> RawImages:
    """The decoded uint8 arrays of ``source``, downloading missing files first.

    Decoded once per process and data directory (files are md5-checked then read with the
    strict :func:`smithing.data.idx.read_idx`); the arrays are read-only and shared.
    """
    root = Path(data_dir_) if data_dir_ is not None else data_dir()
    for rf in remote_files(source).values():
        ensure_file(rf, root, download=download, progress=progress)
    return _decode(source, str(root.resolve()))


@functools.cache
def _decode(source: str, root: str) -> RawImages:
    files = remote_files(source)
    arrays = {}
    expected = {
        "train_images": (N_TRAIN_FILE, *IMAGE_SHAPE),
        "train_labels": (N_TRAIN_FILE,),
        "test_images": (N_TEST_FILE, *IMAGE_SHAPE),
        "test_labels": (N_TEST_FILE,),
    }
    for role, rf in files.items():
        path = Path(root) / rf.relpath
        check_md5(path, rf)
        a = read_idx(path, shape=expected[role])
        if a.dtype != np.uint8:
            raise ValueError(f"{path}: holds {a.dtype}, expected uint8")
        if role.endswith("labels") and a.max(initial=0) > 9:
            raise ValueError(f"{path}: holds label {int(a.max())}, expected 0..9")
        a.setflags(write=False)
        arrays[role] = a
    return RawImages(**arrays)


def clear_cache() -> None:
    """Forget the decoded arrays (the next load decodes the files again)."""
    _decode.cache_clear()


def _flat_float(images: np.ndarray) -> torch.Tensor:
    x = images.reshape(images.shape[0], N_PIXELS).astype(np.float32)  # (n, 784), a fresh copy
    x /= 255.0  # x = pixel / 255 in [0, 1]
    return torch.from_numpy(x)


def _labels(labels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(labels.astype(np.int64))  # (n,)


def _dataset(
    name: str,
    x_train_file: torch.Tensor,
    x_test: torch.Tensor,
    raw: RawImages,
    description: str,
    meta: dict,
) -> Dataset:
    y_train_file, y_test = _labels(raw.train_labels), _labels(raw.test_labels)
    return Dataset(
        name=name,
        train=Split(x_train_file[:N_TRAIN], y_train_file[:N_TRAIN]),  # first 50k
        valid=Split(x_train_file[N_TRAIN:], y_train_file[N_TRAIN:]),  # last 10k
        test=Split(x_test, y_test),
        task="classification",
        n_classes=10,
        input_shape=(N_PIXELS,),
        description=description,
        meta={"image_shape": IMAGE_SHAPE, **meta},
    )


def _plain(name: str, data_dir_: Path, download: bool, progress: bool | None) -> Dataset:
    source = SOURCE_OF[name]
    raw = raw_arrays(source, data_dir_, download=download, progress=progress)
    meta = {"classes": FASHION_CLASSES} if source == "fashion-mnist" else {}
    x_tr, x_te = _flat_float(raw.train_images), _flat_float(raw.test_images)
    return _dataset(name, x_tr, x_te, raw, DESCRIPTIONS[name], meta)


def load_mnist(data_dir_: Path, *, download: bool = True, progress: bool | None = None) -> Dataset:
    """MNIST digits, 50k/10k/10k, x = pixel / 255 in [0, 1] of shape (n, 784)."""
    return _plain("mnist", data_dir_, download, progress)


def load_fashion_mnist(
    data_dir_: Path, *, download: bool = True, progress: bool | None = None
) -> Dataset:
    """Fashion-MNIST, 50k/10k/10k, x = pixel / 255 in [0, 1] of shape (n, 784)."""
    return _plain("fashion-mnist", data_dir_, download, progress)


def binarize(images: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic binarization of uint8 images: float32 ``x ~ Bernoulli(pixel / 255)``, (n, 784).

    Drawn as ``x = [r < pixel]`` with ``r`` uniform on {0, ..., 254}, so that
    ``P(x = 1) = pixel / 255`` exactly (the same law as ``torch.bernoulli(pixel / 255)``, with a
    quarter of the memory traffic).
    """
    u8 = torch.from_numpy(images.reshape(images.shape[0], -1).copy())  # (n, 784) uint8
    r = torch.randint(0, 255, u8.shape, dtype=torch.uint8, generator=generator)  # (n, 784)
    return (r < u8).to(torch.float32)  # x ~ Bernoulli(pixel / 255)


def load_mnist_binarized(
    data_dir_: Path, *, seed: int = 0, download: bool = True, progress: bool | None = None
) -> Dataset:
    """MNIST with x ~ Bernoulli(pixel / 255), one fixed draw from ``seed`` (values 0. or 1.)."""
    raw = raw_arrays("mnist", data_dir_, download=download, progress=progress)
    g = torch.Generator().manual_seed(seed)
    x_tr = binarize(raw.train_images, g)  # (60000, 784) in {0, 1}
    x_te = binarize(raw.test_images, g)  # (10000, 784) in {0, 1}
    meta = {"binarization": "stochastic", "seed": seed}
    return _dataset("mnist-binarized", x_tr, x_te, raw, DESCRIPTIONS["mnist-binarized"], meta)


def train_pixel_stats(raw: RawImages) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean and population std of ``pixel / 255`` over the 50k TRAIN images, (784,).

    Computed exactly from integer sums: mean = S1 / (255 n), std = sqrt(n S2 - S1^2) / (255 n).
    """
    s1 = np.zeros(N_PIXELS, dtype=np.int64)
    s2 = np.zeros(N_PIXELS, dtype=np.int64)
    flat = raw.train_images[:N_TRAIN].reshape(N_TRAIN, N_PIXELS)  # (50000, 784) uint8
    for i in range(0, N_TRAIN, 10_000):  # bounded temporaries
        block = flat[i : i + 10_000].astype(np.int64)
        s1 += block.sum(axis=0)
        s2 += (block * block).sum(axis=0)
    n = N_TRAIN
    mean = s1 / (255.0 * n)  # (784,) float64
    std = np.sqrt((n * s2 - s1 * s1).astype(np.float64)) / (255.0 * n)  # exact numerator
    return mean, std


def _load_standardized(
    name: str, data_dir_: Path, download: bool, progress: bool | None
) -> Dataset:
    source = SOURCE_OF[name]
    raw = raw_arrays(source, data_dir_, download=download, progress=progress)
    mean64, std64 = train_pixel_stats(raw)
    mean = torch.from_numpy(mean64.astype(np.float32))  # (784,)
    std = torch.from_numpy(std64.astype(np.float32))  # (784,)
    const = std == 0
    scale = torch.where(const, torch.zeros_like(std), 1.0 / torch.where(const, 1.0, std))

    def standardize(images: np.ndarray) -> torch.Tensor:
        x = _flat_float(images)  # (n, 784)
        return x.sub_(mean).mul_(scale)  # (x - mean) / std; constant pixels -> 0

    meta: dict[str, object] = {"mean": mean, "std": std}
    if source == "fashion-mnist":
        meta["classes"] = FASHION_CLASSES
    x_tr, x_te = standardize(raw.train_images), standardize(raw.test_images)
    return _dataset(name, x_tr, x_te, raw, DESCRIPTIONS[name], meta)


def load_mnist_standardized(
    data_dir_: Path, *, download: bool = True, progress: bool | None = None
) -> Dataset:
    """MNIST with per-pixel zero mean / unit variance on train (for Gaussian units)."""
    return _load_standardized("mnist-standardized", data_dir_, download, progress)


def load_fashion_mnist_standardized(
    data_dir_: Path, *, download: bool = True, progress: bool | None = None
) -> Dataset:
    """Fashion-MNIST with per-pixel zero mean / unit variance on train (for Gaussian units)."""
    return _load_standardized("fashion-mnist-standardized", data_dir_, download, progress)


def status(name: str, data_dir_: str | Path | None = None, *, checksum: bool = True) -> list[dict]:
    """Per file of dataset ``name``: path, present, size, md5_ok (None when missing), ...

    See :func:`smithing.data.download.file_status`.
    """
    source = _source(name)
    root = Path(data_dir_) if data_dir_ is not None else data_dir()
    return [file_status(rf, root, checksum=checksum) for rf in remote_files(source).values()]


def verify(name: str, data_dir_: str | Path | None = None) -> bool:
    """True when every file of registered dataset ``name`` is present with its published md5.

    Datasets without files (embedded, synthetic) are always verified.
    """
    spec = DATASETS.get(name)
    if spec.status is None:
        return True
    root = Path(data_dir_) if data_dir_ is not None else data_dir()
    return all(s["md5_ok"] is True for s in spec.status(root))


def fetch(
    name: str, data_dir_: str | Path | None = None, *, progress: bool | None = None
) -> list[Path]:
    """Download the missing files of dataset ``name`` and check every file's md5.

    Returns the local paths; raises :class:`smithing.data.DataUnavailableError` (or its
    subclass ``ChecksumError``) when a file cannot be had intact.
    """
    source = _source(name)
    root = Path(data_dir_) if data_dir_ is not None else data_dir()
    paths = []
    for rf in remote_files(source).values():
        path = ensure_file(rf, root, download=True, progress=progress)
        check_md5(path, rf)
        paths.append(path)
    return paths


def _source(name: str) -> str:
    if name not in SOURCE_OF:
        raise ValueError(unknown_name_message("downloadable dataset", name, list(SOURCE_OF)))
    return SOURCE_OF[name]


def _check_source(source: str) -> None:
    if source not in MD5:
        raise ValueError(unknown_name_message("MNIST source", source, list(MD5)))


DESCRIPTIONS = {
    "mnist": "MNIST handwritten digits 28x28, 50k/10k/10k, pixels in [0, 1] (download)",
    "fashion-mnist": "Fashion-MNIST article images 28x28, 50k/10k/10k, pixels in [0, 1] (download)",
    "mnist-binarized": "MNIST stochastically binarized, x ~ Bernoulli(pixel), fixed seed "
    "(RBM likelihoods)",
    "mnist-standardized": "MNIST per-pixel zero mean / unit variance on train (Gaussian units)",
    "fashion-mnist-standardized": "Fashion-MNIST per-pixel zero mean / unit variance on train "
    "(Gaussian units)",
}
_LOADERS = {
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "mnist-binarized": load_mnist_binarized,
    "mnist-standardized": load_mnist_standardized,
    "fashion-mnist-standardized": load_fashion_mnist_standardized,
}

for _name, _loader in _LOADERS.items():
    register_dataset(
        _name,
        _loader,
        DESCRIPTIONS[_name],
        files=tuple(rf.relpath for rf in remote_files(SOURCE_OF[_name]).values()),
        status=functools.partial(status, _name),
    )

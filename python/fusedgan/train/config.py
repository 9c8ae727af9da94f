"""The trainer's settings: one dataclass, its defaults, and loading from a TOML file."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

UPDATE_RULES = ("simultaneous", "alternating")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}  # autocast's dtypes
LR_SCHEDULES = ("constant", "linear", "cosine")


class ConfigError(ValueError):
    """A setting that is unknown or out of range (the CLI prints it as one line)."""


@dataclass
class TrainConfig:
    dataset: str = "ring8"  # a name of datasets.DATASETS, or an image folder / .npy / .npz path
    seed: int = 0
    steps: int = 50000
    batch_size: int = 256
    update: str = "simultaneous"  # or "alternating"
    generator_cost: str = "non_saturating"  # or "minimax", "maximum_likelihood"
    latent_dim: int = 2
    model: str = "auto"  # "mlp" or "dcgan"; auto: dcgan for images, mlp for points
    hidden: int = 128  # units per hidden layer (mlp) or the base channel count (dcgan)
    hidden_discriminator: int = 0  # the discriminator's, when not 0
    depth: int = 3  # hidden layers of each mlp player
    spectral_norm: bool = False  # on the dcgan discriminator's layers
    pack: int = 1  # samples the discriminator judges together (PacGAN); batch_size / pack packs per batch
    generator: str = ""  # module:factory building the generator as factory(config, sample_shape)
    discriminator: str = ""  # the same for the discriminator
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_schedule: str = "constant"  # or "linear" / "cosine" decay to zero over `steps`
    real_label: float = 1.0  # one-sided label smoothing when below 1
    n_critic: int = 1  # discriminator steps per generator step
    r1_gamma: float = 10.0  # weight of the R1 penalty gamma/2 E|grad_x D(x)|^2 on real data
    r1_every: int = 1  # the penalty's interval in steps (lazy regularisation when > 1)
    ema_decay: float = 0.9999  # exponential moving average of the generator (0: off)
    log_every: int = 100
    checkpoint_every: int = 1000
    eval_samples: int = 2500
    sample_every: int = 1000  # steps between pictures of samples of fixed latent codes (0: none)
    device: str = "cpu"
    precision: str = "fp32"  # or "bf16", "fp16": mixed precision (autocast; fp16 with a gradient scaler)

    def validate(self) -> "TrainConfig":
        from .datasets import DATASETS, is_path
        from .models import MODELS
        from ..functional import GENERATOR_KINDS

        checks = [
            (self.dataset in DATASETS or is_path(self.dataset),
             f"dataset must be one of {', '.join(DATASETS)}, or an image folder, a .npy or a .npz file; got {self.dataset!r}"),
            (self.model in MODELS, f"model must be one of {', '.join(MODELS)}, got {self.model!r}"),
            (self.update in UPDATE_RULES, f"update must be one of {', '.join(UPDATE_RULES)}, got {self.update!r}"),
            (self.generator_cost in GENERATOR_KINDS,
             f"generator_cost must be one of {', '.join(GENERATOR_KINDS)}, got {self.generator_cost!r}"),
            (self.steps >= 0, f"steps must be >= 0, got {self.steps}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.pack >= 1 and self.batch_size % self.pack == 0,
             f"pack must be >= 1 and divide batch_size {self.batch_size}, got {self.pack}"),
            (self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}"),
            (self.hidden >= 1 and self.depth >= 1, f"hidden and depth must be >= 1, got {self.hidden}, {self.depth}"),
            (self.hidden_discriminator >= 0, f"hidden_discriminator must be >= 0, got {self.hidden_discriminator}"),
            (self.lr_generator > 0 and self.lr_discriminator > 0, "lr_generator and lr_discriminator must be > 0"),
            (self.lr_schedule in LR_SCHEDULES,
             f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"),
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), f"betas must be two numbers in [0, 1), got {self.betas}"),
            (0 < self.real_label <= 1, f"real_label must be in (0, 1], got {self.real_label}"),
            (self.n_critic >= 1, f"n_critic must be >= 1, got {self.n_critic}"),
            (self.r1_gamma >= 0, f"r1_gamma must be >= 0, got {self.r1_gamma}"),
            (self.r1_every >= 1, f"r1_every must be >= 1, got {self.r1_every}"),
            (0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}"),
            (self.log_every >= 1 and self.checkpoint_every >= 1, "log_every and checkpoint_every must be >= 1"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.eval_samples >= 1, f"eval_samples must be >= 1, got {self.eval_samples}"),
            (self.sample_every >= 0, f"sample_every must be >= 0, got {self.sample_every}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self.betas = tuple(float(b) for b in self.betas)
        return self

    def replace(self, **changes) -> "TrainConfig":
        check_known(changes)
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data


def check_known(settings: dict, where: str = "") -> None:
    unknown = set(settings) - set(field_names())
    if unknown:
        raise ConfigError(f"{where}unknown setting(s): {', '.join(sorted(unknown))}")


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def defaults_for(dataset: str) -> TrainConfig:
    """The default settings of a dataset (the command line's): the learning rates decay
    linearly to zero, which sharpens the last steps' samples; on the 2-D mixtures they start
    higher and the R1 penalty is lighter, so that the generator's jumps between modes grow
    steep sooner (fewer samples left between modes); grid25's 25 modes take longer to sharpen
    than the ring's 8; the images need a bigger latent space, convolutional players and
    smaller batches, and their discriminator judges pairs of samples (PacGAN), which halves
    its cost and evens out the generator's modes; their learning rates start at 4e-4 rather
    than DCGAN's 2e-4, which on Stacked MNIST evens out the modes further in the same steps."""
    from .datasets import IMAGE_DATASETS, is_path

    if dataset in IMAGE_DATASETS or is_path(dataset):
        return TrainConfig(dataset=dataset, latent_dim=64, hidden=64, batch_size=64, steps=30000, r1_gamma=1.0,
                           r1_every=4, lr_schedule="linear", pack=2, lr_generator=4e-4, lr_discriminator=4e-4)
    return TrainConfig(dataset=dataset, steps=80000 if dataset == "grid25" else 50000, lr_schedule="linear",
                       lr_generator=5e-4, lr_discriminator=5e-4, r1_gamma=1.0)


def load_toml(path: str | Path) -> dict:
    """The settings in a TOML file: a flat table of TrainConfig's field names."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config {path} is not valid TOML: {error}") from None
    check_known(data, where=f"config {path}: ")
    return data

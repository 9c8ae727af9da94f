"""The GAN trainer: players, datasets, metrics and the `fusedgan train` command's run."""

from .config import TrainConfig
from .datasets import DATASETS, Dataset
from .metrics import mode_metrics, parzen_metrics
from .trainer import GANTrainer, NonFiniteCost

__all__ = ["DATASETS", "Dataset", "GANTrainer", "NonFiniteCost", "TrainConfig", "mode_metrics", "parzen_metrics"]

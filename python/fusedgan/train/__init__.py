"""The GAN trainer: players, datasets, metrics and the `fusedgan train` command's run."""

from .config import TrainConfig
from .datasets import DATASETS, Dataset
from .metrics import frechet_distance, image_metrics, kernel_distance, label_mode_metrics, mode_metrics, parzen_metrics
from .trainer import GANTrainer, NonFiniteCost

__all__ = ["DATASETS", "Dataset", "GANTrainer", "NonFiniteCost", "TrainConfig", "frechet_distance", "image_metrics",
           "kernel_distance", "label_mode_metrics", "mode_metrics", "parzen_metrics"]

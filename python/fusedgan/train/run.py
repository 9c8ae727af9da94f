"""A whole training run, as `fusedgan train` starts it: set-up (under torchrun too), the
loop with its progress bar (tqdm), checkpoints at intervals and on Ctrl-C, resume,
evaluation and the output folder:

    metrics.json   step, modes, high_quality, reverse_kl (2-D sets) or the Parzen
                   log-likelihood (images), seconds
    samples.png    samples over the true modes, or a grid of generated images
    progress/      step_<N>.png every sample_every steps: samples of the same latent codes
    losses.png     both costs over the steps
    log.csv        the logged rows (step, costs, mean D(x), mean D(G(z)), accuracy)
    checkpoint.pt  everything needed to continue bit for bit
    tensorboard/   the logged rows, the metrics and the samples, when the tensorboard
                   package is installed
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from . import datasets, models, outputs
from .config import ConfigError, TrainConfig
from .metrics import image_metrics, mode_metrics
from .trainer import GANTrainer, NonFiniteCost, distributed_world

# settings a resumed run may change: they do not touch the arithmetic of a step
RESUMABLE_CHANGES = ("steps", "log_every", "checkpoint_every", "eval_samples", "sample_every")


class RunError(RuntimeError):
    """A run that cannot start or had to stop; the message is one line for the user."""


class Interrupted(RunError):
    pass


def resume_config(saved: dict, requested: TrainConfig, explicit: set[str]) -> TrainConfig:
    """The saved run's settings, with the explicitly requested changes that keep it exact."""
    config = TrainConfig(**{**saved, "betas": tuple(saved["betas"])})
    changes = {}
    for name in explicit:
        value = getattr(requested, name)
        if name == "steps" and config.lr_schedule != "constant" and value != config.steps:
            raise ConfigError(f"--resume continues the saved run, whose {config.lr_schedule} learning-rate schedule "
                              f"ends at step {config.steps}, not {value}")
        if name in RESUMABLE_CHANGES:
            changes[name] = value
        elif value != getattr(config, name):
            raise ConfigError(f"--resume continues the saved run, whose {name} is {getattr(config, name)!r}, not {value!r}")
    return config.replace(**changes)


class StopRequest:
    """Ctrl-C (SIGINT) and SIGTERM ask the loop to stop after the step in progress, so that
    the checkpoint holds whole steps."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = {}

    def __enter__(self) -> "StopRequest":
        for number in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread: no handler, stop only by the usual means
                pass
        return self

    def _handle(self, number, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def agreed(self) -> bool:
        """Whether to stop now; all processes of a distributed run agree (they must stop at
        the same step)."""
        if distributed_world()[1] == 1:
            return self.requested
        flag = torch.tensor([float(self.requested)])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


@contextlib.contextmanager
def _process_group(config: TrainConfig):
    """Joins the process group that torchrun describes in the environment, if any, and
    leaves it at the end (a process that exits with gloo's threads still running aborts);
    each process of a CUDA run takes the GPU of its local rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        yield config
        return
    on_cuda = config.device.startswith("cuda")
    dist.init_process_group("nccl" if on_cuda else "gloo")
    try:
        if on_cuda:
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local_rank)
            config = config.replace(device=f"cuda:{local_rank}")
        yield config
    finally:
        gc.collect()  # DDP wrappers caught in reference cycles would hold the group past its end
        dist.destroy_process_group()


def build(config: TrainConfig) -> tuple[GANTrainer, datasets.Dataset]:
    dataset = datasets.load(config.dataset)
    if config.device.startswith("cuda"):  # cuDNN's fastest algorithms are not all deterministic
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.manual_seed(config.seed)  # the same initial players in every process
    generator = models.generator(config, dataset.sample_shape)
    discriminator = models.discriminator(config, dataset.sample_shape)
    return GANTrainer(generator, discriminator, dataset, config), dataset


def evaluate(trainer: GANTrainer, dataset: datasets.Dataset) -> tuple[dict, torch.Tensor]:
    samples = trainer.sample(trainer.config.eval_samples).cpu()
    if dataset.modes is not None:
        return mode_metrics(samples, dataset.modes, dataset.std), samples

    def more_samples(n: int, chunk: int = 2000) -> torch.Tensor:
        seeds = range(trainer.config.seed + 2, trainer.config.seed + 2 + (n + chunk - 1) // chunk)
        return torch.cat([trainer.sample(chunk, seed=seed).cpu() for seed in seeds])[:n]

    return image_metrics(samples, dataset, more_samples), samples


PROGRESS_SAMPLES = 100


def draw_samples(path: Path, samples: torch.Tensor, dataset: datasets.Dataset, title: str) -> None:
    if dataset.modes is not None:
        outputs.plot_samples_2d(path, samples, dataset.modes, title)
    else:
        outputs.plot_image_grid(path, samples, title)


def run(config: TrainConfig, out: str | Path, *, resume: bool = False, explicit: set[str] = frozenset(),
        progress: bool = True) -> dict:
    """Trains as configured, writing into `out`; returns the metrics. With `resume`, continues
    the run whose checkpoint is in `out` (the settings named in `explicit` may change
    only the steps and the intervals). Raises RunError for anything the user must fix."""
    with _process_group(config.validate()) as config:
        return _train(config, Path(out), resume, explicit, progress)


def _train(config: TrainConfig, out: Path, resume: bool, explicit: set[str], progress: bool) -> dict:
    rank, _ = distributed_world()
    checkpoint_path = out / outputs.CHECKPOINT
    state = None
    if resume:
        state = outputs.load_checkpoint(checkpoint_path)
        config = resume_config(state["config"], config, explicit)
    trainer, dataset = build(config)
    if state is not None:
        try:
            trainer.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError) as error:
            raise outputs.CheckpointError(f"checkpoint {checkpoint_path} does not fit this run: {error}") from None
    if rank == 0:
        outputs.prepare_folder(out)
    board = outputs.tensorboard_writer(out, trainer.step) if rank == 0 else None

    def save() -> None:
        state = trainer.state_dict()  # every process: the minibatch streams are gathered
        if rank == 0:
            outputs.save_checkpoint(checkpoint_path, state)
            outputs.write_log(out / "log.csv", GANTrainer.HISTORY_COLUMNS, trainer.history)

    bar = tqdm(total=config.steps, initial=trainer.step, unit="step", dynamic_ncols=True,
               disable=not (progress and rank == 0))
    start = time.perf_counter()
    try:
        with StopRequest() as stop:
            while trainer.step < config.steps:
                result = trainer.train_step()
                if trainer.step % config.log_every == 0 or trainer.step == config.steps:
                    trainer.check_finite()
                    row = trainer.log_row(result)
                    bar.update(trainer.step - bar.n)
                    bar.set_postfix_str("J(D) {1:.4f}  J(G) {2:.4f}  D(x) {3:.3f}  D(G(z)) {4:.3f}".format(*row), refresh=False)
                    if board is not None:
                        outputs.log_row_to_tensorboard(board, GANTrainer.HISTORY_COLUMNS, row)
                    if stop.agreed():
                        trainer.seconds += time.perf_counter() - start
                        save()
                        raise Interrupted(f"stopped at step {trainer.step}; the checkpoint is in {checkpoint_path}, "
                                          f"continue with --resume")
                if trainer.step % config.checkpoint_every == 0:
                    save()
                if rank == 0 and config.sample_every and trainer.step % config.sample_every == 0:
                    samples = trainer.sample(PROGRESS_SAMPLES).cpu()  # the same latent codes every time
                    (out / "progress").mkdir(exist_ok=True)
                    draw_samples(out / "progress" / f"step_{trainer.step:07d}.png", samples, dataset,
                                 f"{config.dataset}, step {trainer.step}")
                    if board is not None and samples.dim() == 4:
                        board.add_image("progress", outputs.image_grid(samples), trainer.step)
    except NonFiniteCost as error:
        kept = f"the last good checkpoint is kept in {checkpoint_path}" if checkpoint_path.exists() else "no checkpoint was written yet"
        raise RunError(f"{error}; {kept}") from None
    finally:
        bar.close()
        if board is not None:
            board.flush()
    trainer.seconds += time.perf_counter() - start
    save()
    metrics = {}
    if rank == 0:
        metrics, samples = evaluate(trainer, dataset)
        metrics = {"dataset": config.dataset, "step": trainer.step, **metrics, "seconds": round(trainer.seconds, 3)}
        outputs.write_metrics(out / "metrics.json", metrics)
        draw_samples(out / "samples.png", samples, dataset, f"{config.dataset}, step {trainer.step}")
        outputs.plot_losses(out / "losses.png", GANTrainer.HISTORY_COLUMNS, trainer.history)
        if board is not None:
            outputs.log_result_to_tensorboard(board, metrics, samples)
            board.close()
    if distributed_world()[1] > 1:
        dist.barrier()
    return metrics

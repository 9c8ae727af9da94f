"""What a run writes into its output folder, each file atomically (a temporary file in the
same folder, flushed to disk, then renamed over the old one), so that a crash or a kill
leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, IO

import torch

CHECKPOINT = "checkpoint.pt"


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would outlive the rename
        with os.fdopen(descriptor, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class OutputError(ValueError):
    """An output folder that cannot be created or written to."""


def prepare_folder(out: Path) -> None:
    """Creates `out` if needed and proves it writable, before any training time is spent."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(dir=out, prefix=".write-test.")
        os.close(descriptor)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(f"cannot write to the output folder {out}: {error.strerror or error}") from None


def save_checkpoint(path: Path, state: dict) -> None:
    write_atomically(path, lambda f: torch.save(state, f))


class CheckpointError(ValueError):
    """A checkpoint that is missing or cannot be read."""


def load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint to resume from at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {reason}") from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"checkpoint {path} is not a fusedgan training checkpoint")
    return state


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda f: f.write(text.encode()))


def write_metrics(path: Path, metrics: dict) -> None:
    write_text(path, json.dumps(metrics, indent=2) + "\n")


def write_log(path: Path, columns: tuple[str, ...], rows: list[list[float]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([int(row[0])] + [f"{v:.6g}" for v in row[1:]])
    write_text(path, text.getvalue())


def _save_figure(path: Path, figure) -> None:
    import matplotlib.pyplot as plt

    write_atomically(path, lambda f: figure.savefig(f, format="png", dpi=110))
    plt.close(figure)


def _pyplot():
    """matplotlib, imported on first use (it is slow to import) and drawing off-screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_losses(path: Path, columns: tuple[str, ...], rows: list[list[float]]) -> None:
    """Both players' costs over the steps."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 3.5))
    if rows:
        table = torch.tensor(rows)
        for name, label in (("discriminator_cost", "J(D)"), ("generator_cost", "J(G)")):
            axes.plot(table[:, 0].numpy(), table[:, columns.index(name)].numpy(), label=label)
    axes.set_xlabel("step")
    axes.set_ylabel("cost")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    _save_figure(path, figure)


def plot_samples_2d(path: Path, samples: torch.Tensor, modes: torch.Tensor, title: str) -> None:
    """Generated samples over the mixture's true modes."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 5))
    points = samples.detach().cpu().numpy()
    axes.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, label="samples")
    centres = modes.cpu().numpy()
    axes.scatter(centres[:, 0], centres[:, 1], s=40, marker="x", color="red", label="modes")
    axes.set_aspect("equal")
    axes.set_title(title)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=2, frameon=False)  # off the modes
    figure.tight_layout()
    _save_figure(path, figure)


def image_grid(images: torch.Tensor, columns: int = 10) -> torch.Tensor:
    """The first columns^2 images (N, C, H, W), pixels in [-1, 1], tiled into one (C, H', W')
    image with a one-pixel background margin around every tile, its pixels in [0, 1] for
    display."""
    count = min(len(images), columns * columns)
    rows = (count + columns - 1) // columns
    channels, height, width = images.shape[1:]
    tiles = torch.full((rows * columns, channels, height + 2, width + 2), -1.0)
    tiles[:count, :, 1:-1, 1:-1] = images[:count].detach().cpu()
    grid = (tiles.reshape(rows, columns, channels, height + 2, width + 2)
            .permute(2, 0, 3, 1, 4).reshape(channels, rows * (height + 2), columns * (width + 2)))
    return ((grid + 1) / 2).clamp(0, 1)


def plot_image_grid(path: Path, images: torch.Tensor, title: str, columns: int = 10) -> None:
    """Images (N, C, H, W) in a grid: one channel in grey, three in colour."""
    plt = _pyplot()
    grid = image_grid(images, columns)
    figure, axes = plt.subplots(figsize=(5, 5 * grid.shape[1] / grid.shape[2] + 0.4))
    if len(grid) == 1:
        axes.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        axes.imshow(grid.permute(1, 2, 0).numpy())
    axes.set_axis_off()
    axes.set_title(title)
    figure.tight_layout()
    _save_figure(path, figure)


def tensorboard_writer(out: Path, step: int):
    """A SummaryWriter into out/tensorboard when the tensorboard package is installed, else
    None; a resumed run's events after its checkpoint's `step` (of the run that stopped) are
    dropped, as they are run again."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tensorboard"), purge_step=step or None)


def log_row_to_tensorboard(writer, columns: tuple[str, ...], row: list[float]) -> None:
    step = int(row[0])
    for name, value in zip(columns[1:], row[1:]):
        writer.add_scalar(f"train/{name}", value, step)


def log_result_to_tensorboard(writer, metrics: dict, samples: torch.Tensor) -> None:
    """The final metrics as scalars and, for images (N, C, H, W), the sample grid."""
    step = metrics["step"]
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and name != "step":
            writer.add_scalar(f"metrics/{name}", value, step)
    if samples.dim() == 4:
        writer.add_image("samples", image_grid(samples), step)

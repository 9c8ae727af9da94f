"""The `fusedgan` command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import fusedgan
from fusedgan import functional as F


def demo(args: argparse.Namespace) -> int:
    """Trains a logistic-regression discriminator to tell two Gaussian blobs apart with the
    fused discriminator cost J(D), logging its statistics, then shows the stable BCE."""
    torch.manual_seed(args.seed)
    print(f"fusedgan {fusedgan.__version__}: {fusedgan.build_info()}")
    n = 4096
    real = torch.randn(n, 2) + torch.tensor([2.0, 0.0])
    fake = torch.randn(n, 2) - torch.tensor([2.0, 0.0])
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    start = time.perf_counter()
    for step in range(args.steps + 1):
        real_logits, fake_logits = model(real).squeeze(1), model(fake).squeeze(1)
        loss = F.discriminator_cost(real_logits, fake_logits, real_label=0.9)
        if step % max(1, args.steps // 5) == 0:
            d_real, d_fake, accuracy = F.discriminator_stats(real_logits, fake_logits).tolist()
            print(f"step {step:4d}  J(D) {loss.item():.4f}  D(x) {d_real:.3f}  D(G(z)) {d_fake:.3f}  accuracy {accuracy:.3f}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"{args.steps} steps in {time.perf_counter() - start:.2f} s")
    extreme = torch.tensor([float("inf"), -float("inf"), 1e4], requires_grad=True)
    value = F.binary_cross_entropy_with_logits(extreme, torch.tensor([1.0, 0.0, 1.0]), reduction="none")
    value.sum().backward()
    print(f"stable at extreme logits: loss {value.tolist()}, grad {extreme.grad.tolist()}")
    return 0


def train(args: argparse.Namespace) -> int:
    """Trains a GAN (fusedgan.train) and prints its metrics and the paths of its pictures."""
    from .train import config as train_config
    from .train import datasets
    from .train import outputs
    from .train.run import Interrupted, RunError, run

    flags = {name: value for name, value in vars(args).items() if name in train_config.field_names()}
    if "data" in vars(args):
        if "dataset" in flags:
            print("fusedgan train: error: give --dataset or --data, not both", file=sys.stderr)
            return 1
        flags["dataset"] = args.data
    try:
        settings = train_config.load_toml(args.config) if args.config else {}
        dataset = flags.get("dataset", settings.get("dataset", "ring8"))  # a flag, else the file, else ring8
        config = train_config.defaults_for(dataset).replace(**{**settings, **flags})
        out = Path(args.out if args.out else f"runs/{Path(config.dataset).resolve().stem if datasets.is_path(config.dataset) else config.dataset}")
        metrics = run(config, out, resume=args.resume, explicit=set(flags) | set(settings), progress=not args.quiet)
    except (RunError, ValueError, outputs.CheckpointError) as error:
        print(f"fusedgan train: error: {error}", file=sys.stderr)
        return 130 if isinstance(error, Interrupted) else 1
    if metrics:
        print(json.dumps(metrics, indent=2))
        for name in ("samples.png", "losses.png", "metrics.json", "log.csv", "checkpoint.pt"):
            print(f"wrote {out / name}")
    return 0


class _Parser(argparse.ArgumentParser):
    """Reports a bad flag in one line (the usage is one `--help` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="fusedgan", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo_parser = commands.add_parser("demo", help="a short demonstration of the fused ops")
    demo_parser.add_argument("--steps", type=int, default=200)
    demo_parser.add_argument("--seed", type=int, default=0)
    demo_parser.set_defaults(run=demo)
    train_parser = commands.add_parser(
        "train", help="train a GAN with the fused costs",
        description="Trains a GAN with the fused costs. Flags left out take the value of --config, "
        "else the dataset's default; with --resume, the saved run's.")
    given = argparse.SUPPRESS  # only the flags the user gave reach the namespace
    train_parser.add_argument("--dataset", default=given, help="ring8 (default), grid25, digits, mnist or stacked_mnist")
    train_parser.add_argument("--data", default=given, metavar="PATH",
                              help="your own images: a folder of image files, or a .npy / .npz array (N, H, W[, C])")
    train_parser.add_argument("--model", default=given, help="dcgan (the default for images) or mlp")
    train_parser.add_argument("--generator", default=given, metavar="MODULE:FACTORY",
                              help="your own generator, built as FACTORY(config, sample_shape)")
    train_parser.add_argument("--discriminator", default=given, metavar="MODULE:FACTORY",
                              help="your own discriminator, built as FACTORY(config, sample_shape)")
    train_parser.add_argument("--seed", type=int, default=given)
    train_parser.add_argument("--out", default=None, help="output folder (default runs/<dataset>)")
    train_parser.add_argument("--steps", type=int, default=given)
    train_parser.add_argument("--update", default=given, help="simultaneous (default) or alternating")
    train_parser.add_argument("--generator-cost", dest="generator_cost", default=given,
                              help="non_saturating (default), minimax or maximum_likelihood")
    train_parser.add_argument("--batch-size", dest="batch_size", type=int, default=given)
    train_parser.add_argument("--pack", type=int, default=given,
                              help="samples the discriminator judges together (PacGAN packing; 1: none)")
    train_parser.add_argument("--device", default=given, help="cpu (default) or cuda")
    train_parser.add_argument("--precision", default=given,
                              help="fp32 (default), or bf16 / fp16 mixed precision (autocast; fp16 with a gradient scaler)")
    train_parser.add_argument("--lr-schedule", dest="lr_schedule", default=given,
                              help="constant (default), or a linear or cosine decay to zero over the steps")
    train_parser.add_argument("--config", default=None, help="a TOML file of settings (see docs/api.md)")
    train_parser.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in --out")
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    train_parser.set_defaults(run=train)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

"""GAN training steps per second: fusedgan's GANTrainer vs a textbook eager PyTorch loop.

Both train the same players (the default ring8 MLPs) on the same batch size with the same
update rule. The textbook loop is the one in PyTorch's DCGAN example: separate
discriminator forwards on the real batch, the detached fake batch and (for the generator)
the fake batch again, two BCE calls with ones/zeros target tensors for J(D) and one for
J(G), `zero_grad` + `backward` per player, `torch.optim.Adam`. The trainer runs the
discriminator once over each batch, takes J(G)'s gradient back through the fake batch only,
the fused costs, and torch.optim.Adam(fused=True).

Where convolutions dominate (the DCGAN rows) the gain has a ceiling that no kernel moves:
per step the loop takes the discriminator through 3 forwards and 3 backwards with weight
gradients (the generator's included), the trainer through 2 forwards, 2 such backwards and 1
backward for the input gradient alone (the generator's); counting a forward, a weight
gradient and an input gradient as one batch pass each, that is 9 passes against 7, and the
generator's own passes, the same in both, keep the ratio below 9/7 ≈ 1.29.

Rows: each update rule with the extras off (the like-for-like comparison), and the trainer
with the dataset's default settings (R1 penalty, generator EMA, packing for images) for
reference; for the ring8 MLPs (`gan_step`) and for the DCGAN players on the MNIST digits
(`gan_step_dcgan`, batch 64).
Writes benchmarks/results/trainer.csv and trainer-<device>.md.

    python benchmarks/bench_trainer.py [--device cpu|cuda] [--rounds 15]
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF

from common import bench_parser, gpu_or_cpu, time_providers, timed_rows, write_results
from fusedgan.train.config import defaults_for
from fusedgan.train.run import build


def trainer_step(config):
    trainer, _ = build(config)
    return trainer.train_step


def textbook_step(config):
    """One step of the eager loop, sharing the trainer's players, data and latent stream."""
    trainer, dataset = build(config)
    generator, discriminator = trainer.generator, trainer.discriminator
    adam = dict(betas=config.betas)
    g_opt = torch.optim.Adam(generator.parameters(), lr=config.lr_generator, **adam)
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, **adam)
    batch, device = config.batch_size, trainer.device
    simultaneous = config.update == "simultaneous"

    def discriminator_loss(real, fake):
        real_out, fake_out = discriminator(real), discriminator(fake.detach())
        ones, zeros = torch.ones(batch, 1, device=device), torch.zeros(batch, 1, device=device)
        return 0.5 * (TF.binary_cross_entropy_with_logits(real_out, ones) + TF.binary_cross_entropy_with_logits(fake_out, zeros))

    def generator_loss(fake):
        return 0.5 * TF.binary_cross_entropy_with_logits(discriminator(fake), torch.ones(batch, 1, device=device))

    def step():
        real, z = trainer._minibatch()
        fake = generator(z)
        if simultaneous:  # J(G) first: its backward also reaches D, whose gradients are then reset
            g_opt.zero_grad()
            generator_loss(fake).backward()
            d_opt.zero_grad()
            discriminator_loss(real, fake).backward()
            d_opt.step()
            g_opt.step()
        else:
            d_opt.zero_grad()
            discriminator_loss(real, fake).backward()
            d_opt.step()
            g_opt.zero_grad()
            generator_loss(fake).backward()
            g_opt.step()

    return step


def main() -> None:
    parser = bench_parser(__doc__)
    args = parser.parse_args()
    device = gpu_or_cpu(args.device)
    rows, lines = [], [
        "| players | update rule | batch | fusedgan steps/s | textbook eager steps/s | × eager | fusedgan, default settings steps/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for op, dataset in (("gan_step", "ring8"), ("gan_step_dcgan", "mnist")):
        base = defaults_for(dataset).replace(device=device)
        plain = base.replace(r1_gamma=0.0, ema_decay=0.0, pack=1)
        for update in ("simultaneous", "alternating"):
            config = plain.replace(update=update)
            providers = {"fusedgan": trainer_step(config), "eager": textbook_step(config),
                         "fusedgan_defaults": trainer_step(base.replace(update=update))}
            timings = time_providers(providers, device, rounds=args.rounds)
            rows += timed_rows(op, update, (config.batch_size,), timings)
            ours, eager, defaults = (1e6 / timings[p][1] for p in ("fusedgan", "eager", "fusedgan_defaults"))
            players = "DCGAN, MNIST 28 × 28" if op == "gan_step_dcgan" else "MLP, ring8"
            lines.append(f"| {players} | {update} | {config.batch_size} | {ours:.1f} | {eager:.1f} | {ours / eager:.2f} | {defaults:.1f} |")
            print(lines[-1], flush=True)
    write_results("trainer", rows, device, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

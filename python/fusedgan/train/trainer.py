"""GANTrainer: the two-player game of the notes, every cost a fused op.

One step samples a minibatch of data x and one of latent codes z, then moves both players:

- `simultaneous` (the notes' rule): one discriminator forward over [x; G(z)] gives both
  batches' logits; J(D) and J(G) are taken from those same logits, both gradients are
  computed from the same parameters, then both Adam steps are made.
- `alternating`: the discriminator steps first on [x; G(z)]; the generator then steps on
  J(G) through the updated discriminator.

`n_critic` > 1 puts that many - 1 discriminator-only steps (fresh minibatches) before each
step. Runs under torch.distributed with DistributedDataParallel when a process group is
initialised: each rank samples its own minibatches and the gradients are averaged.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .. import functional as F
from .config import TrainConfig
from .datasets import Dataset

CHECKPOINT_FORMAT = 1


class NonFiniteCost(RuntimeError):
    """A cost became NaN or infinite; the parameters are those of the step before."""


@dataclass
class StepResult:
    real_logits: Tensor
    fake_logits: Tensor
    discriminator_cost: Tensor
    generator_cost: Tensor


def distributed_world() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Adam:
    """Adam (Kingma and Ba, 2014) over one list of parameters: one call of torch's fused Adam
    kernel per step, without torch.optim's per-call bookkeeping (hooks, grouping by device
    and dtype), which cost more than the kernel itself: about 0.1 ms a step, 4 % of a
    default training step. Every parameter must have a gradient when `step` is called."""

    def __init__(self, params: list[Tensor], lr: float, betas: tuple[float, float], eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        # a step count per parameter, as the kernel takes them
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        torch._foreach_add_(self.steps, 1)  # the kernel reads the step counts, the caller advances them
        torch._fused_adam_(self.params, [p.grad for p in self.params], self.exp_avg, self.exp_avg_sq, [], self.steps,
                           lr=self.lr, beta1=self.betas[0], beta2=self.betas[1], weight_decay=0.0, eps=self.eps,
                           amsgrad=False, maximize=False)

    def state_dict(self) -> dict:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "step": self.steps}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        for mine, saved in ((self.exp_avg, state["exp_avg"]), (self.exp_avg_sq, state["exp_avg_sq"]), (self.steps, state["step"])):
            if len(saved) != len(mine) or any(a.shape != b.shape for a, b in zip(mine, saved)):
                raise ValueError("the optimiser state does not fit these parameters")
            for a, b in zip(mine, saved):
                a.copy_(b)


class GANTrainer:
    """Trains `generator` (z -> x) against `discriminator` (x -> one logit per row) on
    samples of `dataset` with the settings of `config` (see TrainConfig)."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, dataset: Dataset, config: TrainConfig) -> None:
        self.config = config.validate()
        self.device = torch.device(config.device)
        self.dtype = next(generator.parameters()).dtype  # of the minibatches too
        self.dataset = dataset.to(self.device, self.dtype)
        self.rank, self.world_size = distributed_world()
        if config.batch_size % self.world_size:
            raise ValueError(f"batch_size {config.batch_size} must divide evenly over {self.world_size} processes")
        self.batch_size = config.batch_size // self.world_size  # per process
        self.generator = generator.to(self.device)
        self.discriminator = discriminator.to(self.device)
        # the wrappers that average gradients over processes (the modules themselves outside)
        self.generator_step_module = self._distributed(self.generator)
        self.discriminator_step_module = self._distributed(self.discriminator)
        self.generator_params = list(self.generator.parameters())
        self.discriminator_params = list(self.discriminator.parameters())
        self.generator_optimizer = Adam(self.generator_params, config.lr_generator, config.betas)
        self.discriminator_optimizer = Adam(self.discriminator_params, config.lr_discriminator, config.betas)
        self.generator_ema = None
        if config.ema_decay > 0:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
            self.generator_ema_params = list(self.generator_ema.parameters())
        # minibatches come from their own generator (one stream per process), so that the
        # checkpoint can restore them exactly
        self.sampler = torch.Generator(self.device).manual_seed(config.seed * 1_000_003 + self.rank)
        self.step = 0
        self.history: list[list[float]] = []  # rows of HISTORY_COLUMNS, one per log_every steps
        self.seconds = 0.0  # training time so far, across resumes

    HISTORY_COLUMNS = ("step", "discriminator_cost", "generator_cost", "d_real", "d_fake", "accuracy")

    def _distributed(self, module: nn.Module) -> nn.Module:
        if self.world_size == 1:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)

    # ---- one step

    def _minibatch(self) -> tuple[Tensor, Tensor]:
        real = self.dataset.sample(self.batch_size, self.sampler)
        z = torch.randn(self.batch_size, self.config.latent_dim, generator=self.sampler, device=self.device, dtype=self.dtype)
        return real, z

    def _discriminator_cost(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(J(D) with the R1 penalty when due, J(D), real logits, fake logits) from one
        discriminator forward over both batches. With r1_every > 1 the penalty is lazy, as in
        StyleGAN2: every r1_every-th step only, weighted by r1_every to keep its strength."""
        config = self.config
        with_r1 = config.r1_gamma > 0 and self.step % config.r1_every == 0
        if with_r1:
            real = real.detach().requires_grad_()
        logits = self.discriminator_step_module(torch.cat([real, fake])).squeeze(-1)
        real_logits, fake_logits = logits[: len(real)], logits[len(real):]
        cost = F.discriminator_cost(real_logits, fake_logits, real_label=config.real_label)
        total = cost
        if with_r1:
            (grad_real,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            total = cost + 0.5 * config.r1_gamma * config.r1_every * grad_real.pow(2).sum(1).mean()
        return total, cost, real_logits, fake_logits

    @staticmethod
    def _gradients(cost: Tensor, params: list[Tensor], retain_graph: bool = False) -> None:
        for p in params:
            p.grad = None
        torch.autograd.backward(cost, inputs=params, retain_graph=retain_graph)

    def _check_finite(self, *costs: Tensor) -> None:
        """Stops before a non-finite cost can reach the parameters; every process stops at
        the same step (a NaN on any one of them reaches the others through the sum)."""
        if self.world_size > 1:
            total = sum(c.detach() for c in costs)
            dist.all_reduce(total)
            finite = math.isfinite(total.item())
        else:
            finite = all(math.isfinite(c.item()) for c in costs)  # no tensor op: a step is short
        if not finite:
            values = ", ".join(f"{c.item():.4g}" for c in costs)
            raise NonFiniteCost(f"a cost is not finite at step {self.step + 1} ({values}): the run is stopped")

    def _discriminator_step(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """A discriminator step on a fresh minibatch (the fakes detached); returns the
        latent codes, J(D) and both batches' logits."""
        real, z = self._minibatch()
        with torch.no_grad():
            fake = self.generator(z)
        total, cost, real_logits, fake_logits = self._discriminator_cost(real, fake)
        self._check_finite(total)
        self._gradients(total, self.discriminator_params)
        self.discriminator_optimizer.step()
        return z, cost, real_logits, fake_logits

    def _simultaneous_step(self) -> StepResult:
        real, z = self._minibatch()
        fake = self.generator_step_module(z)
        d_total, d_cost, real_logits, fake_logits = self._discriminator_cost(real, fake)
        g_cost = F.generator_cost(fake_logits, kind=self.config.generator_cost)
        self._check_finite(d_total, g_cost)
        # both gradients before either player moves (the saved activations hold the
        # parameters of this step)
        self._gradients(d_total, self.discriminator_params, retain_graph=True)
        self._gradients(g_cost, self.generator_params)
        self.discriminator_optimizer.step()
        self.generator_optimizer.step()
        return StepResult(real_logits, fake_logits, d_cost, g_cost)

    def _alternating_step(self) -> StepResult:
        z, d_cost, real_logits, fake_logits = self._discriminator_step()
        # the generator's step through the updated discriminator; that forward needs no
        # discriminator gradient, so it bypasses the gradient-averaging wrapper
        fake_logits_now = self.discriminator(self.generator_step_module(z)).squeeze(-1)
        g_cost = F.generator_cost(fake_logits_now, kind=self.config.generator_cost)
        self._check_finite(g_cost)
        self._gradients(g_cost, self.generator_params)
        self.generator_optimizer.step()
        return StepResult(real_logits, fake_logits, d_cost, g_cost)

    def train_step(self) -> StepResult:
        """One step of the configured update rule (after n_critic - 1 discriminator steps)."""
        for _ in range(self.config.n_critic - 1):
            self._discriminator_step()
        if self.config.update == "simultaneous":
            result = self._simultaneous_step()
        else:
            result = self._alternating_step()
        self.step += 1
        if self.generator_ema is not None:
            # the decay warms up as (1 + t) / (10 + t), so that the average follows the early
            # steps instead of holding on to the initial generator
            decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
            with torch.no_grad():
                torch._foreach_lerp_(self.generator_ema_params, self.generator_params, 1 - decay)
        return result

    def log_row(self, result: StepResult) -> list[float]:
        """A row of HISTORY_COLUMNS for this step (one host synchronisation), kept in history."""
        stats = F.discriminator_stats(result.real_logits.detach(), result.fake_logits.detach())
        values = torch.cat([torch.stack([result.discriminator_cost.detach(), result.generator_cost.detach()]), stats])
        row = [float(self.step)] + values.tolist()
        self.history.append(row)
        return row

    # ---- samples

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> Tensor:
        """n samples of the generator (its moving average if kept), from a latent stream of
        their own so that sampling never moves the training's random state."""
        generator = self.generator_ema if self.generator_ema is not None else self.generator
        stream = torch.Generator(self.device).manual_seed(self.config.seed + 1 if seed is None else seed)
        z = torch.randn(n, self.config.latent_dim, generator=stream, device=self.device, dtype=self.dtype)
        return generator(z)

    # ---- checkpoint state

    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue bit for bit. Under torch.distributed
        every process must call it (the minibatch streams of all ranks are gathered)."""
        sampler_states = [self.sampler.get_state()]
        if self.world_size > 1:
            sampler_states = [None] * self.world_size
            dist.all_gather_object(sampler_states, self.sampler.get_state())
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "config": self.config.to_dict(),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "generator_ema": None if self.generator_ema is None else self.generator_ema.state_dict(),
            "generator_optimizer": self.generator_optimizer.state_dict(),
            "discriminator_optimizer": self.discriminator_optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "sampler": sampler_states,
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "history": self.history,
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}")
        samplers = state["rng"]["sampler"]
        if len(samplers) != self.world_size:
            raise ValueError(f"the checkpoint was written by {len(samplers)} process(es), this run has {self.world_size}")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(state["generator_ema"])
        self.generator_optimizer.load_state_dict(state["generator_optimizer"])
        self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.sampler.set_state(samplers[self.rank])
        self.step = int(state["step"])
        self.history = [list(row) for row in state["history"]]
        self.seconds = float(state["seconds"])

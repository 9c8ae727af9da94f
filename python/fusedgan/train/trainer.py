"""GANTrainer: the two-player game of the notes, every cost a fused op.

One step samples a minibatch of data x and one of latent codes z, then moves both players:

- `simultaneous` (the notes' rule): the discriminator's forwards over x and G(z) give both
  batches' logits; J(D) and J(G) are taken from those same logits, both gradients are
  computed from the same parameters, then both Adam steps are made.
- `alternating`: the discriminator steps first on x and G(z); the generator then steps on
  J(G) through the updated discriminator, from the same generator forward.

With `pack` > 1 the discriminator judges packs of that many samples (PacGAN; see
models.Packed) and gives one logit per pack.

`n_critic` > 1 puts that many - 1 discriminator-only steps (fresh minibatches) before each
step. `precision` bf16 or fp16 runs the forward passes under autocast; fp16 scales the costs
with a gradient scaler, whose state is checkpointed. Runs under torch.distributed with
DistributedDataParallel when a process group is initialised: each rank samples its own
minibatches and the gradients are averaged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .. import functional as F
from .config import PRECISIONS, TrainConfig
from .datasets import Dataset

CHECKPOINT_FORMAT = 2


class NonFiniteCost(RuntimeError):
    """A cost or gradient became NaN or infinite; the parameters are those of the step before."""


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


class NonFiniteGuard:
    """Watches each update's costs and gradients on the device, so that a step needs no host
    synchronisation: a non-finite value trips a flag that stays set, the optimisers skip
    every update from then on (the `found_inf` input of torch's fused optimisers, as
    torch.amp.GradScaler uses it), and `check` reads the flag at the logging interval and
    before every checkpoint. Under torch.distributed the flag is the maximum over processes,
    so that every process skips the same updates."""

    def __init__(self, device: torch.device, world_size: int) -> None:
        self.world_size = world_size
        self.tripped = torch.zeros((), dtype=torch.float32, device=device)  # 1.0 once tripped
        self.tripped_at = torch.zeros((), dtype=torch.int64, device=device)  # the step that tripped it

    def observe(self, step: int, costs: list[Tensor], grads: list[Tensor]) -> None:
        norms = [torch.nn.utils.get_total_norm(grads).float()] if grads else []
        values = torch.stack([c.detach().float() for c in costs] + norms)
        bad = (~torch.isfinite(values).all()).float()
        if self.world_size > 1:
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        self.tripped_at.copy_(torch.where(bad > self.tripped, step, self.tripped_at))
        torch.maximum(self.tripped, bad, out=self.tripped)

    def check(self) -> None:
        """Raises NonFiniteCost if any update so far was not finite (a host synchronisation)."""
        if self.tripped.item():
            raise NonFiniteCost(f"a cost or gradient is not finite at step {self.tripped_at.item()}: the run is stopped")


def default_optimizer(params: list[Tensor], lr: float, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=config.betas, fused=True)


def default_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler | None:
    """config.lr_schedule over config.steps: constant (None), a linear decay to zero, or a
    cosine one."""
    if config.lr_schedule == "linear":
        return torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=max(1, config.steps))
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.steps))
    return None


class BothBatches(nn.Module):
    """The discriminator's logits of the real and of the fake batch, (N,) each, in one call:
    one forward of the gradient-averaging wrapper, which expects each parameter's gradient
    once per backward. The batches go through the net separately, so that the generator's
    gradient and R1's go back through their own batch's graph only."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        return self.discriminator(real).squeeze(-1), self.discriminator(fake).squeeze(-1)


class GANTrainer:
    """Trains `generator` (z -> x) against `discriminator` (x -> one logit per row) on
    samples of `dataset` with the settings of `config` (see TrainConfig).

    Each player's optimiser defaults to torch.optim.Adam(fused=True) with the config's
    learning rate and betas, its scheduler to config.lr_schedule; any torch.optim optimiser
    over exactly that player's parameters, and any scheduler of it, may be passed instead.
    Their states go into the checkpoint. An optimiser without torch's `found_inf` input (the
    fused ones have it) costs the NaN guard one host synchronisation per update."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, dataset: Dataset, config: TrainConfig, *,
                 generator_optimizer: torch.optim.Optimizer | None = None,
                 discriminator_optimizer: torch.optim.Optimizer | None = None,
                 generator_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                 discriminator_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> None:
        self.config = config.validate()
        self.device = torch.device(config.device)
        self.dtype = next(generator.parameters()).dtype  # of the minibatches too
        self.dataset = dataset.to(self.device, self.dtype)
        self.data_fingerprint = self.dataset.fingerprint()  # checkpointed: resume on the same data only
        self.rank, self.world_size = distributed_world()
        if config.batch_size % (self.world_size * config.pack):
            raise ValueError(f"batch_size {config.batch_size} must divide evenly over {self.world_size} processes "
                             f"into packs of {config.pack}")
        self.batch_size = config.batch_size // self.world_size  # per process
        self.generator = generator.to(self.device)
        self.discriminator = discriminator.to(self.device)
        # the wrappers that average gradients over processes (the modules themselves outside)
        self.generator_step_module = self._distributed(self.generator)
        self.discriminator_step_module = self._distributed(BothBatches(self.discriminator))
        self.generator_params = list(self.generator.parameters())
        self.discriminator_params = list(self.discriminator.parameters())
        self.guard = NonFiniteGuard(self.device, self.world_size)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        self.generator_optimizer = self._optimizer(generator_optimizer, self.generator_params, config.lr_generator, "generator")
        self.discriminator_optimizer = self._optimizer(
            discriminator_optimizer, self.discriminator_params, config.lr_discriminator, "discriminator")
        self.generator_scheduler = self._scheduler(generator_scheduler, self.generator_optimizer, "generator")
        self.discriminator_scheduler = self._scheduler(discriminator_scheduler, self.discriminator_optimizer, "discriminator")
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

    def _optimizer(self, given: torch.optim.Optimizer | None, params: list[Tensor], lr: float, player: str) -> torch.optim.Optimizer:
        optimizer = default_optimizer(params, lr, self.config) if given is None else given
        covered = [id(p) for group in optimizer.param_groups for p in group["params"]]
        if sorted(covered) != sorted(id(p) for p in params):
            raise ValueError(f"{player}_optimizer must optimise exactly the {player}'s parameters")
        if type(optimizer).__module__.startswith("torch.optim") and optimizer.defaults.get("fused"):
            optimizer.found_inf = self.guard.tripped  # torch's fused kernels skip the update once tripped
        return optimizer

    def _scheduler(self, given: torch.optim.lr_scheduler.LRScheduler | None, optimizer: torch.optim.Optimizer,
                   player: str) -> torch.optim.lr_scheduler.LRScheduler | None:
        if given is None:
            return default_scheduler(optimizer, self.config)
        if self.config.lr_schedule != "constant":
            raise ValueError(f"pass {player}_scheduler or set lr_schedule, not both")
        if given.optimizer is not optimizer:
            raise ValueError(f"{player}_scheduler must schedule the {player}'s optimiser")
        return given

    # ---- one step

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.config.precision],
                              enabled=self.config.precision != "fp32")

    def _minibatch(self) -> tuple[Tensor, Tensor]:
        real = self.dataset.sample(self.batch_size, self.sampler)
        z = torch.randn(self.batch_size, self.config.latent_dim, generator=self.sampler, device=self.device, dtype=self.dtype)
        return real, z

    def _discriminator_cost(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(J(D) with the R1 penalty when due, J(D), real logits, fake logits). With r1_every
        > 1 the penalty is lazy, as in StyleGAN2: every r1_every-th step only, weighted by
        r1_every to keep its strength."""
        config = self.config
        with_r1 = config.r1_gamma > 0 and self.step % config.r1_every == 0
        if with_r1:
            real = real.detach().requires_grad_()
        real_logits, fake_logits = self.discriminator_step_module(real, fake)
        cost = F.discriminator_cost(real_logits, fake_logits, real_label=config.real_label)
        total = cost
        if with_r1:
            (grad_real,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            # E|grad D|^2 over the discriminator's inputs: the samples, or their packs
            squared_norm = grad_real.pow(2).flatten(1).sum(1).mean() * (len(real) // len(real_logits))
            total = cost + 0.5 * config.r1_gamma * config.r1_every * squared_norm
        return total, cost, real_logits, fake_logits

    def _gradients(self, cost: Tensor, params: list[Tensor], retain_graph: bool = False) -> None:
        for p in params:
            p.grad = None
        torch.autograd.backward(self.scaler.scale(cost), inputs=params, retain_graph=retain_graph)

    def _update(self, costs: list[Tensor], params: list[Tensor], optimizers: list[torch.optim.Optimizer]) -> None:
        """The optimisers' steps, skipped on the device once a cost or gradient was not finite."""
        grads = [p.grad for p in params if p.grad is not None]
        if self.scaler.is_enabled():
            # fp16 gradients that overflow are the scaler's to skip (shrinking its scale); the
            # guard watches the costs, and a tripped guard reaches the scaler as non-finite
            # gradients, which it skips on the device
            self.guard.observe(self.step + 1, costs, [])
            torch._foreach_div_(grads, 1 - self.guard.tripped)
        else:
            self.guard.observe(self.step + 1, costs, grads)
            if not all(hasattr(o, "found_inf") for o in optimizers):
                self.guard.check()
        for optimizer in optimizers:
            self.scaler.step(optimizer)
        self.scaler.update()

    def _discriminator_step(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """A discriminator step on a minibatch, the fakes detached; returns J(D) and both
        batches' logits."""
        with self._autocast():
            total, cost, real_logits, fake_logits = self._discriminator_cost(real, fake.detach())
        self._gradients(total, self.discriminator_params)
        self._update([total], self.discriminator_params, [self.discriminator_optimizer])
        return cost, real_logits, fake_logits

    def _critic_step(self) -> None:
        """One of the n_critic - 1 extra discriminator steps, on a fresh minibatch."""
        real, z = self._minibatch()
        with torch.no_grad(), self._autocast():
            fake = self.generator(z)
        self._discriminator_step(real, fake)

    def _simultaneous_step(self) -> StepResult:
        real, z = self._minibatch()
        with self._autocast():
            fake = self.generator_step_module(z)
            d_total, d_cost, real_logits, fake_logits = self._discriminator_cost(real, fake)
            g_cost = F.generator_cost(fake_logits, kind=self.config.generator_cost)
        # both gradients before either player moves (the saved activations hold the
        # parameters of this step)
        self._gradients(d_total, self.discriminator_params, retain_graph=True)
        self._gradients(g_cost, self.generator_params)
        self._update([d_total, g_cost], self.discriminator_params + self.generator_params,
                     [self.discriminator_optimizer, self.generator_optimizer])
        return StepResult(real_logits, fake_logits, d_cost, g_cost)

    def _alternating_step(self) -> StepResult:
        real, z = self._minibatch()
        with self._autocast():
            fake = self.generator_step_module(z)  # one generator forward serves both players
        d_cost, real_logits, fake_logits = self._discriminator_step(real, fake)
        # the generator's step through the updated discriminator; that forward needs no
        # discriminator gradient, so it bypasses the gradient-averaging wrapper
        with self._autocast():
            g_cost = F.generator_cost(self.discriminator(fake).squeeze(-1), kind=self.config.generator_cost)
        self._gradients(g_cost, self.generator_params)
        self._update([g_cost], self.generator_params, [self.generator_optimizer])
        return StepResult(real_logits, fake_logits, d_cost, g_cost)

    def train_step(self) -> StepResult:
        """One step of the configured update rule (after n_critic - 1 discriminator steps)."""
        for _ in range(self.config.n_critic - 1):
            self._critic_step()
        if self.config.update == "simultaneous":
            result = self._simultaneous_step()
        else:
            result = self._alternating_step()
        self.step += 1
        for scheduler in (self.generator_scheduler, self.discriminator_scheduler):
            if scheduler is not None:
                scheduler.step()
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
        their own, by a copy of it: batch norm normalises by the samples' own statistics, as
        in training, and its running statistics, like the training's random state, never
        move."""
        generator = copy.deepcopy(self.generator_ema if self.generator_ema is not None else self.generator)
        stream = torch.Generator(self.device).manual_seed(self.config.seed + 1 if seed is None else seed)
        z = torch.randn(n, self.config.latent_dim, generator=stream, device=self.device, dtype=self.dtype)
        return generator(z)

    # ---- checkpoint state

    def check_finite(self) -> None:
        """Raises NonFiniteCost if an update was not finite: a tripped guard, or fp16
        gradients that stay non-finite however far the gradient scaler backs off (the
        scaler skips those updates; its scale collapsing says they will not recover). A
        host synchronisation: the run calls it when it logs."""
        self.guard.check()
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else 1.0
        if scale < 2.0 ** -24:
            raise NonFiniteCost(f"fp16 gradients stayed non-finite up to step {self.step} while the gradient scaler "
                                f"backed off to {scale:.3g}: the run is stopped")

    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue bit for bit. Under torch.distributed
        every process must call it (the minibatch streams of all ranks are gathered).
        Raises NonFiniteCost instead of returning a state past a non-finite update."""
        self.check_finite()
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
            "scaler": self.scaler.state_dict(),
            "generator_scheduler": _state_or_none(self.generator_scheduler),
            "discriminator_scheduler": _state_or_none(self.discriminator_scheduler),
            "rng": {"torch": torch.get_rng_state(), "sampler": sampler_states,
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "history": self.history,
            "data": self.data_fingerprint,
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}")
        if state["data"] != self.data_fingerprint:
            raise ValueError(f"the training data have changed since the checkpoint ({state['data']}, now "
                             f"{self.data_fingerprint})")
        samplers = state["rng"]["sampler"]
        if len(samplers) != self.world_size:
            raise ValueError(f"the checkpoint was written by {len(samplers)} process(es), this run has {self.world_size}")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(state["generator_ema"])
        self.generator_optimizer.load_state_dict(state["generator_optimizer"])
        self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        for name, scheduler in (("generator_scheduler", self.generator_scheduler),
                                ("discriminator_scheduler", self.discriminator_scheduler)):
            if (state[name] is None) != (scheduler is None):
                raise ValueError(f"the checkpoint {'has no' if state[name] is None else 'has a'} {name}, this run "
                                 f"{'has one' if state[name] is None else 'has none'}")
            if scheduler is not None:
                scheduler.load_state_dict(state[name])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.sampler.set_state(samplers[self.rank])
        self.step = int(state["step"])
        self.history = [list(row) for row in state["history"]]
        self.seconds = float(state["seconds"])


def _state_or_none(scheduler: torch.optim.lr_scheduler.LRScheduler | None) -> dict | None:
    return None if scheduler is None else scheduler.state_dict()

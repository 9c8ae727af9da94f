"""The GAN trainer (fusedgan.train): metrics, the update rules against hand-written steps,
checkpoints and exact resume, the NaN guard, the CLI and a 2-process DDP run."""

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as TF

from fusedgan import cli
from fusedgan.train import GANTrainer, NonFiniteCost, TrainConfig, datasets, metrics, models, outputs
from fusedgan.train.config import ConfigError
from fusedgan.train.run import build, run

# a small, fast configuration; the exactness tests need no quality
TINY = dict(hidden=16, depth=2, batch_size=32, log_every=5, checkpoint_every=10, eval_samples=200)


def tiny_config(**changes) -> TrainConfig:
    return TrainConfig(**{**TINY, **changes}).validate()


def parameters(path: Path) -> dict:
    state = torch.load(path / outputs.CHECKPOINT, weights_only=True)
    return {**{f"g.{k}": v for k, v in state["generator"].items()}, **{f"d.{k}": v for k, v in state["discriminator"].items()}}


def assert_same_bits(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fusedgan", *args]


# ---- metrics


def test_mode_metrics_of_samples_on_every_mode():
    ring = datasets.ring8()
    samples = ring.modes.repeat(10, 1) + 0.5 * ring.std  # 0.5 std off: inside 3 std
    result = metrics.mode_metrics(samples, ring.modes, ring.std)
    assert result["modes"] == 8 and result["high_quality"] == 1.0
    assert result["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_mode_metrics_of_half_the_modes_and_far_samples():
    ring = datasets.ring8()
    near = ring.modes[:4].repeat(25, 1)  # 100 samples on 4 modes, 25 each
    far = torch.full((100, 2), 10.0)
    result = metrics.mode_metrics(torch.cat([near, far]), ring.modes, ring.std)
    assert result["modes"] == 4
    assert result["high_quality"] == 0.5
    assert result["reverse_kl"] == pytest.approx(math.log(2), rel=1e-12)  # uniform on half the modes


def test_mode_metrics_threshold_is_three_std_and_histogram_is_of_high_quality_samples():
    grid = datasets.grid25()
    mode = grid.modes[0]
    inside = mode + torch.tensor([2.9 * grid.std, 0.0])
    outside = grid.modes[1] + torch.tensor([0.0, 3.1 * grid.std])  # near mode 1 but not close enough
    counts = torch.tensor([3.0, 1.0])
    samples = torch.cat([inside.repeat(3, 1), grid.modes[2:3], outside.repeat(5, 1)])
    result = metrics.mode_metrics(samples, grid.modes, grid.std)
    assert result["modes"] == 2 and result["high_quality"] == pytest.approx(4 / 9)
    p = counts / counts.sum()
    expected = sum(q * math.log(q * 25) for q in p.tolist())
    assert result["reverse_kl"] == pytest.approx(expected, rel=1e-12)


def test_mode_metrics_without_high_quality_samples():
    ring = datasets.ring8()
    result = metrics.mode_metrics(torch.zeros(50, 2), ring.modes, ring.std)
    assert result == {"modes": 0, "high_quality": 0.0, "reverse_kl": None}


def test_parzen_log_likelihood_against_the_dense_formula():
    g = torch.Generator().manual_seed(0)
    data, samples, sigma = torch.randn(30, 5, generator=g), torch.randn(400, 5, generator=g), 0.7
    squared = torch.cdist(data.double(), samples.double()).pow(2)
    expected = torch.logsumexp(-squared / (2 * sigma**2), dim=1) - math.log(400) - 5 / 2 * math.log(2 * math.pi * sigma**2)
    torch.testing.assert_close(metrics.parzen_log_likelihood(data, samples, sigma), expected, rtol=1e-12, atol=1e-10)


def test_parzen_metrics_choose_the_window_on_validation():
    g = torch.Generator().manual_seed(1)
    samples = 0.3 * torch.randn(2000, 2, generator=g)
    validation, test = 0.3 * torch.randn(300, 2, generator=g), 0.3 * torch.randn(300, 2, generator=g)
    sigmas = torch.tensor([0.01, 0.1, 10.0], dtype=torch.float64)
    result = metrics.parzen_metrics(samples, validation, test, sigmas)
    assert result["parzen_sigma"] == pytest.approx(0.1)
    true_ll = torch.distributions.Normal(0.0, 0.3).log_prob(test.double()).sum(1).mean().item()
    assert abs(result["parzen_log_likelihood"] - true_ll) < 0.2
    assert 0 < result["parzen_standard_error"] < 0.2


# ---- datasets


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_samples_lie_near_their_modes(name):
    dataset = datasets.load(name)
    x = dataset.sample(5000, torch.Generator().manual_seed(0))
    result = metrics.mode_metrics(x, dataset.modes, dataset.std)
    assert result["modes"] == len(dataset.modes) and result["high_quality"] > 0.97  # 98.9% lie within 3 std
    assert result["reverse_kl"] < 0.02


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'mnsit': choose one of ring8, grid25, digits, mnist, stacked_mnist"):
        datasets.load("mnsit")


# ---- update rules against hand-written steps


def tiny_players(config):
    torch.manual_seed(0)
    return models.generator(config, (2,)).double(), models.discriminator(config, (2,)).double()


GENERATOR_COSTS = {
    "non_saturating": lambda logits: 0.5 * TF.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)),
    "minimax": lambda logits: -0.5 * TF.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits)),
    "maximum_likelihood": lambda logits: -0.5 * logits.exp().mean(),
}


def textbook_adam(params, lr, config):
    return torch.optim.Adam(params, lr=lr, betas=config.betas, foreach=False)


class ReferenceGAN:
    """Textbook GAN steps: torch's own BCE, separate forwards on the real and the fake batch,
    R1 from its definition, the for-loop Adam (or the optimiser `make_optimizer` builds);
    with several processes' minibatches, their gradients averaged as DDP does."""

    def __init__(self, generator, discriminator, config, make_optimizer=textbook_adam):
        self.generator, self.config = generator, config
        self.g_params, self.d_params = list(generator.parameters()), list(discriminator.parameters())
        if config.pack > 1:  # the net inside the trainer's packing, fed packs made here
            net, pack = discriminator.discriminator, config.pack
            self.discriminator = lambda x: net(torch.cat([x[i::pack] for i in range(pack)], dim=1))
        else:
            self.discriminator = discriminator
        self.g_opt = make_optimizer(self.g_params, config.lr_generator, config)
        self.d_opt = make_optimizer(self.d_params, config.lr_discriminator, config)
        self.step = 0

    def discriminator_grads(self, real, z):
        config = self.config
        real = real.clone().requires_grad_()
        real_logits = self.discriminator(real).squeeze(-1)
        fake_logits = self.discriminator(self.generator(z).detach()).squeeze(-1)
        cost = 0.5 * (TF.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, config.real_label))
                      + TF.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        if config.r1_gamma > 0 and self.step % config.r1_every == 0:
            (grad_real,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            # E|grad D|^2 over the discriminator's inputs (the packs, when packing)
            cost = cost + 0.5 * config.r1_gamma * config.r1_every * grad_real.pow(2).sum() / len(real_logits)
        return torch.autograd.grad(cost, self.d_params)

    def generator_grads(self, z):
        cost = GENERATOR_COSTS[self.config.generator_cost](self.discriminator(self.generator(z)).squeeze(-1))
        return torch.autograd.grad(cost, self.g_params)  # J(G) moves only the generator

    @staticmethod
    def apply(optimizer, params, grads_per_process):
        for p, *grads in zip(params, *grads_per_process):
            p.grad = sum(grads) / len(grads)
        optimizer.step()

    def train_step(self, batches):
        """One step on one (real, z) minibatch per process."""
        d_grads = [self.discriminator_grads(real, z) for real, z in batches]
        if self.config.update == "simultaneous":  # both gradients before either player moves
            g_grads = [self.generator_grads(z) for _, z in batches]
            self.apply(self.d_opt, self.d_params, d_grads)
        else:
            self.apply(self.d_opt, self.d_params, d_grads)
            g_grads = [self.generator_grads(z) for _, z in batches]
        self.apply(self.g_opt, self.g_params, g_grads)
        self.step += 1


def ring8_minibatches(config, rank=0, batch_size=None):
    """The float64 minibatches a trainer of this rank draws, from a stream seeded as its own."""
    stream = torch.Generator().manual_seed(config.seed * 1_000_003 + rank)
    ring = datasets.ring8().to("cpu", torch.float64)
    batch_size = batch_size or config.batch_size
    while True:
        real = ring.sample(batch_size, stream)
        yield real, torch.randn(batch_size, config.latent_dim, generator=stream, dtype=torch.float64)


def assert_players_close(trainer, reference, rtol=1e-12):
    ours = list(trainer.generator.parameters()) + list(trainer.discriminator.parameters())
    for mine, theirs in zip(ours, reference.g_params + reference.d_params, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=rtol, atol=1e-14)


REFERENCE_OPTIONS = {
    "plain": dict(r1_gamma=0.0),
    "r1": dict(r1_gamma=10.0),
    "lazy_r1": dict(r1_gamma=10.0, r1_every=2),
    "label_smoothing": dict(r1_gamma=0.0, real_label=0.9),
    "minimax": dict(r1_gamma=1.0, generator_cost="minimax"),
    "maximum_likelihood": dict(r1_gamma=1.0, generator_cost="maximum_likelihood"),
    "packed": dict(r1_gamma=10.0, pack=2),
}


@pytest.mark.parametrize("options", REFERENCE_OPTIONS.values(), ids=REFERENCE_OPTIONS.keys())
@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_steps_match_a_hand_written_reference(update, options):
    config = tiny_config(update=update, lr_generator=1e-2, lr_discriminator=1e-2, **options)
    trainer = GANTrainer(*tiny_players(config), datasets.ring8(), config)
    reference = ReferenceGAN(*tiny_players(config), config)
    batches = ring8_minibatches(config)
    for _ in range(3):  # lazy R1: with the penalty, without, with
        trainer.train_step()
        reference.train_step([next(batches)])
        assert_players_close(trainer, reference)


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_the_update_rules_differ(update):
    config = tiny_config(update=update, lr_generator=1e-2, lr_discriminator=1e-2)
    ours = ReferenceGAN(*tiny_players(config), config)
    other = ReferenceGAN(*tiny_players(config), config.replace(update="alternating" if update == "simultaneous" else "simultaneous"))
    batch = next(ring8_minibatches(config))
    ours.train_step([batch])
    other.train_step([batch])
    assert any(not torch.allclose(a, b, rtol=1e-9, atol=0) for a, b in zip(ours.g_params, other.g_params))


@pytest.mark.parametrize("update, discriminator_calls", [("simultaneous", 2), ("alternating", 3)])
def test_a_step_runs_the_generator_once_and_the_discriminator_once_per_batch(update, discriminator_calls):
    config = tiny_config(update=update)
    generator, discriminator = tiny_players(config)
    trainer = GANTrainer(generator.float(), discriminator.float(), datasets.ring8(), config)
    calls = {"generator": [], "discriminator": []}
    for name, player in (("generator", generator), ("discriminator", discriminator)):
        player.register_forward_hook(lambda module, args, out, name=name: calls[name].append(args[0].shape[0]))
    trainer.train_step()
    assert calls == {"generator": [config.batch_size], "discriminator": [config.batch_size] * discriminator_calls}


@pytest.mark.parametrize("pack", [2, 4])
def test_packed_discriminator_judges_consecutive_samples_together(pack):
    config = TrainConfig(dataset="stacked_mnist", model="dcgan", hidden=8, batch_size=8, pack=pack)
    torch.manual_seed(0)
    packed = models.discriminator(config, (3, 28, 28))
    assert packed.discriminator[0].in_channels == 3 * pack
    images = torch.randn(8, 3, 28, 28)
    logits = packed(images)
    assert logits.shape == (8 // pack, 1)
    by_hand = torch.stack([packed.discriminator(torch.cat(list(images[i:i + pack]))[None])[0]
                           for i in range(0, 8, pack)])
    torch.testing.assert_close(logits, by_hand)
    with pytest.raises(ValueError, match=f"packs {pack} samples together, and got 7"):
        packed(images[:7])


def test_pack_must_divide_the_batch():
    with pytest.raises(ConfigError, match="pack must be >= 1 and divide batch_size 64, got 3"):
        TrainConfig(batch_size=64, pack=3).validate()


def test_options_n_critic_r1_ema_and_label_smoothing_train():
    config = tiny_config(n_critic=2, r1_gamma=1.0, ema_decay=0.9, real_label=0.9, generator_cost="minimax")
    trainer, _ = build(config)
    before = [p.clone() for p in trainer.generator_ema.parameters()]
    calls = []
    trainer.discriminator.register_forward_hook(lambda module, args, out: calls.append(1))
    for _ in range(3):
        result = trainer.train_step()
    assert len(calls) == 3 * 2 * 2  # per step: n_critic discriminator steps, each over the real and the fake batch
    assert torch.isfinite(result.discriminator_cost) and torch.isfinite(result.generator_cost)
    for ema, old, new in zip(trainer.generator_ema.parameters(), before, trainer.generator.parameters()):
        assert not torch.equal(ema, old) and not torch.equal(ema, new)


def test_short_training_run_improves_mode_coverage():
    config = TrainConfig(dataset="grid25", steps=600, r1_gamma=1.0, log_every=100).validate()
    trainer, dataset = build(config)
    before = metrics.mode_metrics(trainer.sample(2500), dataset.modes, dataset.std)
    while trainer.step < config.steps:
        trainer.train_step()
    after = metrics.mode_metrics(trainer.sample(2500), dataset.modes, dataset.std)
    # the untrained generator puts everything near the origin, one of the modes
    assert after["modes"] >= before["modes"] + 10 and after["reverse_kl"] < before["reverse_kl"] - 1


# ---- runs, checkpoints, resume


def test_run_writes_its_outputs(tmp_path):
    result = run(tiny_config(steps=20), tmp_path, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == result and saved["step"] == 20
    assert {"modes", "high_quality", "reverse_kl", "seconds"} <= saved.keys()
    for name in ("samples.png", "losses.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines[0] == ",".join(GANTrainer.HISTORY_COLUMNS) and [line.split(",")[0] for line in lines[1:]] == ["5", "10", "15", "20"]
    state = torch.load(tmp_path / outputs.CHECKPOINT, weights_only=True)
    assert state["step"] == 20 and {"generator", "discriminator", "generator_optimizer",
                                    "discriminator_optimizer", "rng"} <= state.keys()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def tensorboard_events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(folder / "tensorboard")).Reload()


def test_run_logs_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    result = run(tiny_config(steps=20), tmp_path, progress=False)
    events = tensorboard_events(tmp_path)
    logged = [e.step for e in events.Scalars("train/discriminator_cost")]
    assert logged == [5, 10, 15, 20]
    history = torch.load(tmp_path / outputs.CHECKPOINT, weights_only=True)["history"]
    d_real = [e.value for e in events.Scalars("train/d_real")]
    assert d_real == pytest.approx([row[GANTrainer.HISTORY_COLUMNS.index("d_real")] for row in history], rel=1e-6)
    assert events.Scalars("metrics/modes")[0].value == result["modes"]


def test_digits_run_reports_the_parzen_log_likelihood(tmp_path):
    pytest.importorskip("sklearn")
    result = run(tiny_config(dataset="digits", steps=10, latent_dim=8, model="mlp"), tmp_path, progress=False)
    assert result["step"] == 10 and result["parzen_sigma"] > 0
    assert math.isfinite(result["parzen_log_likelihood"]) and result["parzen_standard_error"] > 0
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"
    if importlib.util.find_spec("tensorboard"):
        image = tensorboard_events(tmp_path).Images("samples")[0]
        assert image.step == 10 and (image.width, image.height) == (100, 100)  # 10 x 10 tiles of 8 + 2 pixels
    assert {"frechet_distance", "kid", "frechet_distance_real", "kid_real"} <= result.keys()


@pytest.mark.parametrize("options", [{}, dict(update="alternating", n_critic=2, r1_gamma=1.0, ema_decay=0.9, pack=2)])
def test_resume_is_bitwise_exact(tmp_path, options):
    config = tiny_config(steps=40, **options)
    run(config, tmp_path / "straight", progress=False)
    run(config.replace(steps=20), tmp_path / "halves", progress=False)
    metrics_resumed = run(config, tmp_path / "halves", resume=True, explicit={"steps"}, progress=False)
    assert_same_bits(parameters(tmp_path / "straight"), parameters(tmp_path / "halves"))
    straight = torch.load(tmp_path / "straight" / outputs.CHECKPOINT, weights_only=True)
    halves = torch.load(tmp_path / "halves" / outputs.CHECKPOINT, weights_only=True)
    assert straight["history"] == halves["history"]
    assert metrics_resumed["modes"] == json.loads((tmp_path / "straight" / "metrics.json").read_text())["modes"]


def test_resume_refuses_changes_that_break_exactness(tmp_path):
    run(tiny_config(steps=10), tmp_path, progress=False)
    with pytest.raises(ValueError, match="lr_generator is 0.0002, not 0.1"):
        run(tiny_config(steps=20, lr_generator=0.1), tmp_path, resume=True, explicit={"steps", "lr_generator"})


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from fusedgan.train.run import RunError

    minibatch = GANTrainer._minibatch

    def poisoned_from_step_5(self):
        real, z = minibatch(self)
        return (real * float("nan") if self.step >= 5 else real), z

    monkeypatch.setattr(GANTrainer, "_minibatch", poisoned_from_step_5)
    with pytest.raises(RunError, match=r"not finite at step 6: the run is stopped; the last good checkpoint is kept"):
        run(tiny_config(steps=20, checkpoint_every=2, log_every=10), tmp_path, progress=False)
    state = torch.load(tmp_path / outputs.CHECKPOINT, weights_only=True)
    assert state["step"] == 4  # the step-6 and step-8 checkpoints were refused
    assert all(torch.isfinite(v).all() for v in state["discriminator"].values())


def snapshot(trainer) -> dict:
    state = {f"g.{k}": v.clone() for k, v in trainer.generator.state_dict().items()}
    state.update({f"d.{k}": v.clone() for k, v in trainer.discriminator.state_dict().items()})
    for name, optimizer in (("g", trainer.generator_optimizer), ("d", trainer.discriminator_optimizer)):
        for i, slots in optimizer.state_dict()["state"].items():
            state.update({f"{name}.opt.{i}.{k}": v.clone() for k, v in slots.items()})
    return state


@pytest.mark.parametrize("poison", ["data", "gradient"])
def test_nan_guard_skips_every_update_on_the_device(poison):
    """After a non-finite cost (NaN data) or gradient (finite costs), no parameter or
    optimiser state moves, and the steps read nothing back from the device."""
    config = tiny_config(update="alternating", n_critic=2)
    trainer, _ = build(config)
    for _ in range(3):
        trainer.train_step()
    good = snapshot(trainer)
    if poison == "data":
        trainer.dataset.modes.fill_(float("nan"))
    else:
        trainer.discriminator[0].weight.register_hook(lambda grad: torch.full_like(grad, float("nan")))
    item = torch.Tensor.item
    reads = []
    torch.Tensor.item = lambda self: reads.append(1) or item(self)
    try:
        for _ in range(3):
            trainer.train_step()
    finally:
        torch.Tensor.item = item
    assert reads == []
    assert_same_bits(snapshot(trainer), good)
    with pytest.raises(NonFiniteCost, match="not finite at step 4"):
        trainer.guard.check()
    with pytest.raises(NonFiniteCost):
        trainer.state_dict()


def test_nan_guard_with_an_optimizer_without_found_inf_stops_at_the_step():
    config = tiny_config()
    generator, discriminator = models.generator(config, (2,)), models.discriminator(config, (2,))
    trainer = GANTrainer(generator, discriminator, datasets.ring8(), config,
                         discriminator_optimizer=torch.optim.SGD(discriminator.parameters(), lr=0.1))
    trainer.train_step()
    before = snapshot(trainer)
    trainer.dataset.modes.fill_(float("nan"))
    with pytest.raises(NonFiniteCost, match="not finite at step 2"):
        trainer.train_step()
    assert_same_bits(snapshot(trainer), before)


# ---- optimisers and schedulers


def test_default_optimizers_are_torch_fused_adam():
    trainer, _ = build(tiny_config())
    for optimizer, lr in ((trainer.generator_optimizer, 2e-4), (trainer.discriminator_optimizer, 2e-4)):
        assert type(optimizer) is torch.optim.Adam and optimizer.defaults["fused"]
        assert optimizer.defaults["lr"] == lr and optimizer.defaults["betas"] == (0.5, 0.999)
    assert trainer.generator_scheduler is None and trainer.discriminator_scheduler is None


def sgd(params, lr, config):
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)


def test_any_torch_optimizer_and_scheduler_against_the_reference():
    config = tiny_config(lr_generator=1e-2, lr_discriminator=1e-2)
    generator, discriminator = tiny_players(config)
    g_opt, d_opt = sgd(generator.parameters(), 1e-2, config), sgd(discriminator.parameters(), 1e-2, config)
    trainer = GANTrainer(generator, discriminator, datasets.ring8(), config,
                         generator_optimizer=g_opt, discriminator_optimizer=d_opt,
                         generator_scheduler=torch.optim.lr_scheduler.StepLR(g_opt, step_size=2, gamma=0.5))
    reference = ReferenceGAN(*tiny_players(config), config, make_optimizer=sgd)
    g_schedule = torch.optim.lr_scheduler.StepLR(reference.g_opt, step_size=2, gamma=0.5)
    batches = ring8_minibatches(config)
    for _ in range(4):
        trainer.train_step()
        reference.train_step([next(batches)])
        g_schedule.step()
        assert_players_close(trainer, reference)
    assert g_opt.param_groups[0]["lr"] == 2.5e-3 and d_opt.param_groups[0]["lr"] == 1e-2


def test_lr_schedules_decay_to_zero_over_the_run():
    for schedule, at_half in (("linear", 1e-3), ("cosine", 1e-3)):
        trainer, _ = build(tiny_config(steps=10, lr_schedule=schedule, lr_generator=2e-3, lr_discriminator=2e-3))
        lrs = []
        for _ in range(10):
            trainer.train_step()
            lrs.append(trainer.generator_optimizer.param_groups[0]["lr"])
        assert lrs[4] == pytest.approx(at_half, rel=1e-12) and lrs[-1] == pytest.approx(0.0, abs=1e-18)
        assert trainer.discriminator_optimizer.param_groups[0]["lr"] == lrs[-1]


def test_resume_with_a_schedule_is_bitwise_exact(tmp_path):
    config = tiny_config(steps=12, lr_schedule="cosine")
    straight, _ = build(config)
    for _ in range(12):
        straight.train_step()
    first, _ = build(config)
    for _ in range(5):
        first.train_step()
    outputs.save_checkpoint(tmp_path / "half.pt", first.state_dict())
    second, _ = build(config)
    second.load_state_dict(torch.load(tmp_path / "half.pt", weights_only=True))
    for _ in range(7):
        second.train_step()
    assert_same_bits(snapshot(straight), snapshot(second))
    run(config, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="cosine learning-rate schedule ends at step 12, not 20"):
        run(config.replace(steps=20), tmp_path / "run", resume=True, explicit={"steps"})


def test_optimizer_and_scheduler_errors_name_the_argument():
    config = tiny_config()
    generator, discriminator = models.generator(config, (2,)), models.discriminator(config, (2,))
    wrong = torch.optim.Adam(discriminator.parameters())
    with pytest.raises(ValueError, match="generator_optimizer must optimise exactly the generator's parameters"):
        GANTrainer(generator, discriminator, datasets.ring8(), config, generator_optimizer=wrong)
    with pytest.raises(ValueError, match="discriminator_scheduler must schedule the discriminator's optimiser"):
        GANTrainer(generator, discriminator, datasets.ring8(), config,
                   discriminator_scheduler=torch.optim.lr_scheduler.StepLR(wrong, 1))
    g_opt = torch.optim.Adam(generator.parameters())
    with pytest.raises(ValueError, match="pass generator_scheduler or set lr_schedule, not both"):
        GANTrainer(generator, discriminator, datasets.ring8(), config.replace(lr_schedule="linear"),
                   generator_optimizer=g_opt, generator_scheduler=torch.optim.lr_scheduler.StepLR(g_opt, 1))


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / outputs.CHECKPOINT
    outputs.save_checkpoint(path, {"step": 1})

    def failing(f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        outputs.write_atomically(path, failing)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == [outputs.CHECKPOINT]


def wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_killed_run_resumes_exactly(tmp_path):
    """SIGKILL at any moment, even inside a checkpoint write, leaves a checkpoint that
    resumes to the same bits as a run never killed."""
    settings = ["--steps", "400", "--batch-size", "32", "--quiet"]
    config_file = tmp_path / "tiny.toml"
    config_file.write_text("hidden = 16\ndepth = 2\ncheckpoint_every = 3\nlog_every = 5\neval_samples = 200\n")
    subprocess.run(cli_command("train", "--out", str(tmp_path / "straight"), "--config", str(config_file), *settings),
                   check=True, capture_output=True)
    out = tmp_path / "killed"
    process = subprocess.Popen(cli_command("train", "--out", str(out), "--config", str(config_file), *settings),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (out / outputs.CHECKPOINT).exists())
    time.sleep(0.3)
    process.kill()
    process.wait()
    assert torch.load(out / outputs.CHECKPOINT, weights_only=True)["step"] < 400
    subprocess.run(cli_command("train", "--out", str(out), "--config", str(config_file), *settings, "--resume"),
                   check=True, capture_output=True)
    assert_same_bits(parameters(tmp_path / "straight"), parameters(out))


@pytest.mark.slow
def test_ctrl_c_writes_a_checkpoint_and_exits_130(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(cli_command("train", "--out", str(out), "--steps", "100000", "--quiet"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (out / outputs.CHECKPOINT).exists())
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "stopped at step" in err and "--resume" in err and "Traceback" not in err
    step = torch.load(out / outputs.CHECKPOINT, weights_only=True)["step"]
    assert 1000 <= step < 100000 and step % 100 == 0


# ---- CLI errors: one line, no traceback


@pytest.mark.parametrize("args, message", [
    (["--dataset", "mnsit"], "dataset must be one of ring8, grid25, digits, mnist, stacked_mnist, or an image folder"),
    (["--data", "no/such/folder"], "dataset no/such/folder does not exist"),
    (["--data", "x.npz", "--dataset", "mnist"], "give --dataset or --data, not both"),
    (["--model", "resnet"], "model must be one of auto, mlp, dcgan, got 'resnet'"),
    (["--generator", "no_such_module:make"], "cannot import the generator factory 'no_such_module:make'"),
    (["--update", "sideways"], "update must be one of simultaneous, alternating"),
    (["--generator-cost", "wasserstein"], "generator_cost must be one of"),
    (["--steps", "-3"], "steps must be >= 0"),
    (["--resume"], "no checkpoint to resume from"),
    (["--lr-schedule", "step"], "lr_schedule must be one of constant, linear, cosine, got 'step'"),
    (["--precision", "fp8"], "precision must be one of fp32, bf16, fp16, got 'fp8'"),
    (["--pack", "3"], "pack must be >= 1 and divide batch_size 256, got 3"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, args, message):
    assert cli.main(["train", "--out", str(tmp_path / "run"), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_output_folder_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    assert cli.main(["train", "--out", str(tmp_path / "a_file" / "run"), "--steps", "1"]) == 1
    err = capsys.readouterr().err
    assert f"cannot write to the output folder {tmp_path / 'a_file' / 'run'}: Not a directory" in err
    assert err.count("\n") == 1


def test_cli_bad_flag_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--stepz", "10"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --stepz" in err and err.count("\n") == 1


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_cli_corrupt_checkpoint_is_one_line(tmp_path, capsys, content):
    out = tmp_path / "run"
    out.mkdir()
    if content is None:  # a truncated real checkpoint
        run(tiny_config(steps=5), out, progress=False)
        data = (out / outputs.CHECKPOINT).read_bytes()
        content = data[: len(data) // 2]
    (out / outputs.CHECKPOINT).write_bytes(content)
    assert cli.main(["train", "--out", str(out), "--resume"]) == 1
    err = capsys.readouterr().err
    assert "corrupt or unreadable" in err and err.count("\n") == 1


def test_cli_config_file_and_bad_config(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text('dataset = "grid25"\nsteps = 10\nhidden = 16\ndepth = 1\neval_samples = 100\nbetas = [0.0, 0.9]\n')
    assert cli.main(["train", "--out", str(tmp_path / "run"), "--config", str(good), "--quiet"]) == 0
    saved = torch.load(tmp_path / "run" / outputs.CHECKPOINT, weights_only=True)["config"]
    assert saved["dataset"] == "grid25" and saved["hidden"] == 16 and saved["betas"] == [0.0, 0.9]
    capsys.readouterr()
    bad = tmp_path / "bad.toml"
    bad.write_text("learning_rate = 3\n")
    assert cli.main(["train", "--out", str(tmp_path / "run2"), "--config", str(bad)]) == 1
    assert "unknown setting(s): learning_rate" in capsys.readouterr().err


# ---- multi-process

DDP_SCRIPT = textwrap.dedent("""
    import gc, json, sys, torch, torch.distributed as dist
    from fusedgan.train import GANTrainer, TrainConfig, datasets, models
    from fusedgan.train.run import build, run
    mode, payload = sys.argv[1], json.loads(sys.argv[2])
    if mode == "run":
        config = TrainConfig(**payload["config"])
        run(config, payload["out"], resume=payload["resume"], explicit={"steps"}, progress=False)
        sys.exit()

    def train_and_report(name, settings, rank):
        config = TrainConfig(**settings).validate()
        if name == "float64":  # the test's own players
            torch.manual_seed(0)
            players = models.generator(config, (2,)).double(), models.discriminator(config, (2,)).double()
            trainer = GANTrainer(*players, datasets.ring8(), config)
        else:
            trainer, _ = build(config)
        for _ in range(payload["steps"][name]):
            trainer.train_step()
        # what this process holds in memory, in a file of its own
        held = {f"g.{k}": v for k, v in trainer.generator.state_dict().items()}
        held.update({f"d.{k}": v for k, v in trainer.discriminator.state_dict().items()})
        held["sampler"] = trainer.sampler.get_state()
        torch.save(held, f"{payload['report']}-{name}-{rank}.pt")

    dist.init_process_group("gloo")
    for name, settings in payload["configs"].items():
        train_and_report(name, settings, dist.get_rank())
    # the trainers' DDP wrappers hold the process group: they go first, and then the group,
    # while the interpreter still runs (gloo's threads outliving it abort the process)
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
""")


def torchrun(tmp_path: Path, mode: str, payload: dict) -> None:
    script = tmp_path / "ddp_script.py"
    script.write_text(DDP_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(script), mode, json.dumps(payload)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]


DDP_CONFIGS = {
    "simultaneous": dict(update="simultaneous"),
    "alternating": dict(update="alternating"),
    "alternating_n_critic_2": dict(update="alternating", n_critic=2),
    "dcgan_digits": dict(dataset="digits", model="dcgan", latent_dim=8, hidden=8, batch_size=16),
}


@pytest.mark.slow
def test_two_process_ddp_ranks_hold_the_same_bits_and_average_gradients(tmp_path):
    """Each rank's own players, in memory, after several steps of each update rule; and one
    float64 step against the reference that averages the two ranks' gradients."""
    configs = {name: {**TINY, "r1_gamma": 1.0, **options} for name, options in DDP_CONFIGS.items()}
    float64 = {**TINY, "lr_generator": 1e-2, "lr_discriminator": 1e-2}
    configs["float64"] = float64
    steps = {**{name: 6 for name in DDP_CONFIGS}, "float64": 1}
    report = tmp_path / "held"
    torchrun(tmp_path, "in_memory", {"configs": configs, "steps": steps, "report": str(report)})
    for name in configs:
        ranks = [torch.load(f"{report}-{name}-{rank}.pt", weights_only=True) for rank in (0, 1)]
        assert not torch.equal(ranks[0].pop("sampler"), ranks[1].pop("sampler"))  # each drew its own batches
        assert_same_bits(*map(updated, ranks))  # batch norm's running statistics are each rank's own
    config = tiny_config(**float64)
    reference = ReferenceGAN(*tiny_players(config), config)
    half = config.batch_size // 2
    reference.train_step([next(ring8_minibatches(config, rank, half)) for rank in (0, 1)])
    held = torch.load(f"{report}-float64-0.pt", weights_only=True)
    ours = [v for k, v in held.items() if k.startswith("g.")] + [v for k, v in held.items() if k.startswith("d.")]
    for mine, theirs in zip(ours, reference.g_params + reference.d_params, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-14)
    lonely = ReferenceGAN(*tiny_players(config), config)  # rank 0's gradient alone would differ
    lonely.train_step([next(ring8_minibatches(config, 0, half))])
    assert not torch.allclose(lonely.d_params[0], reference.d_params[0], rtol=1e-9, atol=0)


@pytest.mark.slow
def test_two_process_ddp_run_resumes_exactly(tmp_path):
    config = {**TINY, "r1_gamma": 1.0}

    def ddp_run(out: str, steps: int, resume: bool) -> None:
        torchrun(tmp_path, "run", {"config": {**config, "steps": steps}, "out": str(tmp_path / out), "resume": resume})

    ddp_run("straight", 20, False)
    assert sorted(p.name for p in (tmp_path / "straight").iterdir()) == sorted(
        ["checkpoint.pt", "log.csv", "losses.png", "metrics.json", "samples.png", "tensorboard"])
    state = torch.load(tmp_path / "straight" / outputs.CHECKPOINT, weights_only=True)
    assert len(state["rng"]["sampler"]) == 2
    ddp_run("halves", 10, False)
    ddp_run("halves", 20, True)
    assert_same_bits(parameters(tmp_path / "straight"), parameters(tmp_path / "halves"))


# ---- mixed precision (autocast; fp16 with a gradient scaler)


def precision_config(precision, **changes):
    return tiny_config(dataset="digits", latent_dim=8, hidden=8, batch_size=16, precision=precision, n_critic=2,
                       update="alternating", **changes)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_resume_is_bitwise_exact(tmp_path, precision):
    pytest.importorskip("sklearn")
    config = precision_config(precision, steps=10)
    straight, _ = build(config)
    for _ in range(10):
        result = straight.train_step()
    assert result.real_logits.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert result.discriminator_cost.dtype == torch.float32
    first, _ = build(config)
    for _ in range(4):
        first.train_step()
    outputs.save_checkpoint(tmp_path / "half.pt", first.state_dict())
    state = torch.load(tmp_path / "half.pt", weights_only=True)
    assert bool(state["scaler"]) == (precision == "fp16")
    second, _ = build(config)
    second.load_state_dict(state)
    for _ in range(6):
        second.train_step()
    assert_same_bits(snapshot(straight), snapshot(second))
    assert straight.scaler.state_dict() == second.scaler.state_dict()


def updated(state: dict) -> dict:
    """What the optimisers move: the state without the batch norms' statistics (forward passes move those)."""
    return {k: v for k, v in state.items() if ".running_" not in k and "num_batches_tracked" not in k}


def test_fp16_overflow_is_the_scalers_and_a_nan_cost_the_guards():
    pytest.importorskip("sklearn")
    trainer, _ = build(precision_config("fp16"))
    trainer.train_step()
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 100)  # every scaled gradient overflows
    before = snapshot(trainer)
    trainer.train_step()
    assert trainer.scaler.get_scale() < 2.0 ** 100  # skipped and backed off
    trainer.guard.check()  # not the guard's business
    assert_same_bits(updated(snapshot(trainer)), updated(before))
    trainer.scaler = torch.amp.GradScaler("cpu")
    data = trainer.dataset.train.clone()
    trainer.dataset.train.fill_(float("nan"))
    before = snapshot(trainer)
    trainer.train_step()
    trainer.dataset.train.copy_(data)  # finite again: the guard still skips every update
    for _ in range(2):
        trainer.train_step()
    with pytest.raises(NonFiniteCost, match="at step 3"):
        trainer.guard.check()
    assert_same_bits(updated(snapshot(trainer)), updated(before))


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cuda_trains_and_resumes(tmp_path, precision):
    config = tiny_config(dataset="mnist", hidden=8, latent_dim=8, batch_size=16, precision=precision, device="cuda",
                         steps=20, sample_every=0)
    run(config, tmp_path / "straight", progress=False)
    run(config.replace(steps=10), tmp_path / "halves", progress=False)
    result = run(config, tmp_path / "halves", resume=True, explicit={"steps"}, progress=False)
    assert_same_bits(parameters(tmp_path / "straight"), parameters(tmp_path / "halves"))
    assert math.isfinite(result["frechet_distance"])

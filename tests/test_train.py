"""The GAN trainer (fusedgan.train): metrics, the update rules against hand-written steps,
checkpoints and exact resume, the NaN guard, the CLI and a 2-process DDP run."""

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
from fusedgan.train import GANTrainer, TrainConfig, datasets, metrics, models, outputs
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


def test_digits_are_split_and_scaled():
    pytest.importorskip("sklearn")
    digits = datasets.load("digits")
    assert digits.train.shape == (1397, 64) and digits.validation.shape == digits.test.shape == (200, 64)
    assert digits.train.min() == -1 and digits.train.max() == 1


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        datasets.load("mnist")


# ---- update rules against hand-written steps


def tiny_players(config):
    torch.manual_seed(0)
    return models.generator(config, 2).double(), models.discriminator(config, 2).double()


def reference_step(generator, discriminator, real, z, config, simultaneous: bool):
    """A textbook step with torch's own BCE and the for-loop Adam, in float64."""
    g_opt = torch.optim.Adam(generator.parameters(), lr=config.lr_generator, betas=config.betas, foreach=False)
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=config.betas, foreach=False)
    fake = generator(z)
    real_logits, fake_logits = discriminator(real).squeeze(-1), discriminator(fake.detach()).squeeze(-1)
    d_cost = 0.5 * (TF.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                    + TF.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    d_opt.zero_grad()
    d_cost.backward()
    if not simultaneous:
        d_opt.step()
    g_fake_logits = discriminator(fake).squeeze(-1)
    g_cost = 0.5 * TF.binary_cross_entropy_with_logits(g_fake_logits, torch.ones_like(g_fake_logits))
    g_opt.zero_grad()
    g_cost.backward(inputs=list(generator.parameters()))  # J(G) moves only the generator
    if simultaneous:
        d_opt.step()  # only now: the generator's gradient saw the discriminator of this step
    g_opt.step()


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_step_matches_a_hand_written_reference(update):
    config = tiny_config(update=update, lr_generator=1e-2, lr_discriminator=1e-2, r1_gamma=0.0)
    generator, discriminator = tiny_players(config)
    trainer = GANTrainer(generator, discriminator, datasets.ring8(), config)
    # the trainer's first minibatch, drawn from a copy of its stream
    stream = torch.Generator().set_state(trainer.sampler.get_state())
    real = datasets.ring8().to("cpu", torch.float64).sample(config.batch_size, stream)
    z = torch.randn(config.batch_size, config.latent_dim, generator=stream, dtype=torch.float64)
    ref_g, ref_d = tiny_players(config)
    other_g, other_d = tiny_players(config)
    reference_step(ref_g, ref_d, real, z, config, simultaneous=update == "simultaneous")
    reference_step(other_g, other_d, real, z, config, simultaneous=update != "simultaneous")
    trainer.train_step()
    for ours, ref, other in zip(list(generator.parameters()) + list(discriminator.parameters()),
                                list(ref_g.parameters()) + list(ref_d.parameters()),
                                list(other_g.parameters()) + list(other_d.parameters())):
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-14)
    moved_apart = [not torch.allclose(a, b, rtol=1e-9, atol=0) for a, b in zip(ref_g.parameters(), other_g.parameters())]
    assert any(moved_apart)  # the other rule would have given a different generator


def test_simultaneous_step_runs_one_discriminator_forward():
    config = tiny_config()
    generator, discriminator = tiny_players(config)
    trainer = GANTrainer(generator.float(), discriminator.float(), datasets.ring8(), config)
    calls = []
    discriminator.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    trainer.train_step()
    assert calls == [2 * config.batch_size]


def test_options_n_critic_r1_ema_and_label_smoothing_train():
    config = tiny_config(n_critic=2, r1_gamma=1.0, ema_decay=0.9, real_label=0.9, generator_cost="minimax")
    trainer, _ = build(config)
    before = [p.clone() for p in trainer.generator_ema.parameters()]
    calls = []
    trainer.discriminator.register_forward_hook(lambda module, args, out: calls.append(1))
    for _ in range(3):
        result = trainer.train_step()
    assert len(calls) == 3 * 2  # n_critic forwards per step
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


def test_digits_run_reports_the_parzen_log_likelihood(tmp_path):
    pytest.importorskip("sklearn")
    result = run(tiny_config(dataset="digits", steps=10, latent_dim=8), tmp_path, progress=False)
    assert result["step"] == 10 and result["parzen_sigma"] > 0
    assert math.isfinite(result["parzen_log_likelihood"]) and result["parzen_standard_error"] > 0
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("options", [{}, dict(update="alternating", n_critic=2, r1_gamma=1.0, ema_decay=0.9)])
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
    with pytest.raises(RunError, match=r"not finite at step 6 \(nan.*last good checkpoint is kept"):
        run(tiny_config(steps=20, checkpoint_every=2), tmp_path, progress=False)
    state = torch.load(tmp_path / outputs.CHECKPOINT, weights_only=True)
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["discriminator"].values())


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
    (["--dataset", "mnist"], "dataset must be one of ring8, grid25, digits, got 'mnist'"),
    (["--update", "sideways"], "update must be one of simultaneous, alternating"),
    (["--generator-cost", "wasserstein"], "generator_cost must be one of"),
    (["--steps", "-3"], "steps must be >= 0"),
    (["--resume"], "no checkpoint to resume from"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, args, message):
    assert cli.main(["train", "--out", str(tmp_path / "run"), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


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
    import json, sys, torch, torch.distributed as dist
    from fusedgan.train import TrainConfig
    from fusedgan.train.run import build, run
    out, steps, resume, report = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "resume", sys.argv[4]
    config = TrainConfig(hidden=16, depth=2, batch_size=32, steps=steps, log_every=5, checkpoint_every=10,
                         eval_samples=200, r1_gamma=1.0)
    run(config, out, resume=resume, explicit={"steps"}, progress=False)
    state = torch.load(out + "/checkpoint.pt", weights_only=True)
    # what this process holds: its own players, rebuilt from the checkpoint it resumed or wrote
    trainer, _ = build(config)
    trainer.load_state_dict(state)
    flat = torch.cat([p.detach().flatten() for p in trainer.generator.parameters()])
    # each rank reports in a file of its own (lines of two processes on one pipe can interleave)
    with open(f"{report}-{dist.get_rank()}.json", "w") as f:
        json.dump({"rank": dist.get_rank(), "sum": flat.double().sum().item()}, f)
""")


@pytest.mark.slow
def test_two_process_ddp_run_keeps_ranks_identical_and_resumes(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)

    def torchrun(out: Path, steps: int, mode: str) -> list[dict]:
        report = tmp_path / f"report-{out.name}-{steps}"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                   str(script), str(out), str(steps), mode, str(report)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        return [json.loads(Path(f"{report}-{rank}.json").read_text()) for rank in (0, 1)]

    straight = torchrun(tmp_path / "straight", 20, "fresh")
    assert [r["rank"] for r in straight] == [0, 1] and straight[0]["sum"] == straight[1]["sum"]
    assert sorted(p.name for p in (tmp_path / "straight").iterdir()) == sorted(
        ["checkpoint.pt", "log.csv", "losses.png", "metrics.json", "samples.png"])
    state = torch.load(tmp_path / "straight" / outputs.CHECKPOINT, weights_only=True)
    assert len(state["rng"]["sampler"]) == 2
    torchrun(tmp_path / "halves", 10, "fresh")
    resumed = torchrun(tmp_path / "halves", 20, "resume")
    assert resumed[0]["sum"] == resumed[1]["sum"] == straight[0]["sum"]
    assert_same_bits(parameters(tmp_path / "straight"), parameters(tmp_path / "halves"))

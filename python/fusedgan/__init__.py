"""fusedgan: fused, numerically stable GAN losses, binary cross-entropy and
log-likelihoods as PyTorch operators (torch.ops.fusedgan), with autograd."""

import torch  # loads libtorch before the extension that links against it

from . import _C
from . import _vmap  # registers the ops' batching rules for torch.func.vmap
from . import functional, mle, nn, numpy

F = functional


def build_info() -> dict:
    """Version, whether the CUDA kernels were built, and the CPU instruction set in use."""
    return _C.build_info()


__version__ = build_info()["version"]
__all__ = ["F", "build_info", "functional", "mle", "nn", "numpy"]

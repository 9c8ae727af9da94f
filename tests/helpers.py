"""Shared by the test modules."""

import pytest
import torch

import fusedgan

CUDA_AVAILABLE = torch.cuda.is_available() and fusedgan.build_info()["cuda"]

# Every device-parametrised test runs on CPU and, where a GPU and a CUDA build exist, on CUDA.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]

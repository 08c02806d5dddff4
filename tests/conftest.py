"""Shared fixtures: keep torch to one thread so the suite behaves on 2 cores."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def gen():
    """A seeded CPU generator."""
    return torch.Generator().manual_seed(1234)

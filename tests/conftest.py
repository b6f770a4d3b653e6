"""Shared fixtures: bundled models and random-weight models of several families (all offline)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def stories():
    from interp import load_model

    return load_model("stories", device="cpu")


@pytest.fixture(scope="session")
def bb():
    from interp import load_model

    return load_model("bb", device="cpu")


@pytest.fixture(scope="session")
def random_models():
    """{"gpt2": bridge, "llama": bridge, "neox": bridge}, random weights, built once per session."""
    from interp.testing import FAMILIES, random_model

    return {f: random_model(f) for f in FAMILIES}


@pytest.fixture(scope="module")
def one_thread_module():
    """Run a test module on one torch thread (tiny models gain nothing from a second one, and on a loaded
    machine two spinning OpenMP threads are far slower); restores the previous count afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)

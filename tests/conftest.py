"""Shared fixtures (bundled models, random-weight models of several families; all offline), the torch thread count
and the tier markers.

Tiers are folders: ``tests/<tier>/`` gets the pytest marker ``<tier>`` (unit, validity, real, robustness, notebooks,
browser, scale), so ``./scripts/test.sh -m unit`` runs one tier. Threads are set here once for the whole run: one
torch thread (the toy models gain nothing from a second one, and on a loaded 2-core machine two spinning OpenMP
threads are far slower); a module that wants another count uses a fixture that restores it afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(1)

TIERS = ("unit", "validity", "real", "robustness", "notebooks", "browser", "scale")
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Mark every test with its tier, the folder it lives in under tests/."""
    for item in items:
        parts = Path(str(item.fspath)).resolve().relative_to(_HERE).parts
        if len(parts) > 1 and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


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

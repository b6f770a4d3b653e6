"""IG on a 16-bit model computes in float32 (``ig.in_float32``) and leaves the model exactly as it was.

Why: bfloat16 rounds each logit by up to ~0.1 nats, far above IG's 1% completeness tolerance, so the adaptive rule
refined noise until its budget ran out (SmolLM2 on an H200: 799 points, 2.4% error; bench/results/gpu_real.md).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from interp.attribution import attribute
from interp.attribution.ig import in_float32
from interp.models import load_model
from interp.testing import random_model_dir


@pytest.fixture(scope="module")
def folder():
    return random_model_dir("llama", seed=5)


def _tensors(model) -> dict[str, torch.Tensor]:
    return {n: t for n, t in itertools.chain(model.named_parameters(), model.named_buffers()) if t.is_floating_point()}


def test_in_float32_casts_and_restores_bit_for_bit_even_on_error(folder):
    model = load_model(folder, device="cpu", dtype=torch.bfloat16)
    before = {n: t.detach().clone() for n, t in _tensors(model).items()}
    params = list(model.parameters())
    assert any(t.dtype == torch.bfloat16 for t in before.values())
    with pytest.raises(RuntimeError, match="stop"):
        with in_float32(model):
            assert all(torch.finfo(t.dtype).bits >= 32 for t in _tensors(model).values())
            raise RuntimeError("stop")
    after = _tensors(model)
    assert list(model.parameters()) == params  # the same Parameter objects
    for n, t in before.items():
        assert after[n].dtype == t.dtype and torch.equal(after[n], t), n


def test_ig_on_bf16_equals_ig_on_float32_twin(folder):
    """The upcast IG of a bf16 model is the IG of the float32 model with the same (bf16-valued) weights, bit for
    bit; ``upcast=False`` computes in bf16 (other numbers)."""
    half = load_model(folder, device="cpu", dtype=torch.bfloat16)
    twin = load_model(folder, device="cpu")
    twin_t = _tensors(twin)
    for n, t in _tensors(half).items():
        twin_t[n].data = t.detach().float()
    prompt = torch.tensor([1, 5, 9, 12, 7, 3, 8, 4, 9])
    a = attribute(half, prompt, 6, method="integrated_gradients", max_points=100)
    b = attribute(twin, prompt, 6, method="integrated_gradients", max_points=100)
    assert torch.equal(a.scores, b.scores) and a.info["n_steps"] == b.info["n_steps"]
    assert all(t.dtype == torch.bfloat16 for n, t in _tensors(half).items() if n.endswith("weight"))
    c = attribute(half, prompt, 6, method="integrated_gradients", max_points=100, upcast=False)
    assert not torch.equal(a.scores, c.scores)

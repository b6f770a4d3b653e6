"""IG and the gradient methods compute only the logits their objective reads (``logits_to_keep``), same numbers."""

from __future__ import annotations

import torch

from interp.attribution import ig
from interp.attribution.objectives import TargetObjective
from interp.testing import random_model


def test_objective_reads_the_same_values_from_trailing_logits():
    logits = torch.randn(4, 7, 11)
    tokens = torch.zeros(4, 7, dtype=torch.long)
    fn = TargetObjective([6, 7], [3, 5], "prob")  # two targets: logits at positions 5 and 6 (rows alternate)
    assert fn.keep == 2
    assert torch.equal(fn(logits, tokens), fn(logits[:, -2:], tokens))


def test_ig_with_kept_logits_equals_ig_with_all_logits(monkeypatch):
    model = random_model("llama", seed=3)
    tokens = torch.tensor([[1, 5, 9, 12, 7, 3, 8]])
    fn = TargetObjective([7], [4], "prob")
    shapes = []
    run = model.run_with_hooks

    def spy(*a, **k):
        out = run(*a, **k)
        shapes.append(out.shape[1])
        return out

    monkeypatch.setattr(model, "run_with_hooks", spy)
    kept = ig.embedding_ig(model, tokens, fn, max_points=60, warn_threshold=None)
    assert set(shapes[1:]) == {1}  # every interpolation pass computed the last position's logits only
    shapes.clear()
    full = ig.embedding_ig(model, tokens, lambda lg, t: fn(lg, t), max_points=60, warn_threshold=None)  # no .keep
    assert set(shapes[1:]) == {tokens.shape[1]}
    # same path and rule; only the shape of the last matrix product differs (float32 rounding, ~1e-7 relative)
    torch.testing.assert_close(kept.attributions, full.attributions, rtol=1e-4, atol=1e-6)
    assert kept.n_steps == full.n_steps

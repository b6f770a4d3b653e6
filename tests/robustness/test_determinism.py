"""Same seed, same bits: ReAGent's call schedule no longer follows the measured call time (issue 16)."""

from __future__ import annotations

import time

import pytest
import torch

from interp.attribution import attribute

pytestmark = pytest.mark.robustness


def test_reagent_same_seed_same_bits_whatever_the_timing(stories, monkeypatch):
    prompt = "mia went to the park . then mia"
    a = attribute(stories, prompt, method="reagent", max_steps=60, seed=3)
    clock = iter(range(0, 10**9, 7919))  # a wildly different (and fake) wall clock for the second run
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock) / 1000.0)
    b = attribute(stories, prompt, method="reagent", max_steps=60, seed=3)
    assert torch.equal(a.row().nan_to_num(-1), b.row().nan_to_num(-1))
    assert a.info["forward_calls"] == b.info["forward_calls"]

"""Extreme tokens on SmolLM2-135M: massive activations (Sun et al. 2024), attention sinks and value drains at
the first token (Gu et al. 2024; Guo et al. 2024). Nothing about where they are is hard-coded: the scan finds it."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from interp.extreme.scan import scan


@pytest.fixture(scope="module")
def report(smollm2, prose_heldout):
    with torch.no_grad():
        return scan(smollm2, prose_heldout, progress=False)


def test_massive_activation_at_the_first_token_in_one_dimension(report):
    """Sun et al.: a few fixed dimensions of the first token's hidden state reach values ~10^4 from a middle layer on.

    Measured on 8 held-out paragraphs: 152 events, 137 of them at (position 0, dimension 507), |a| ~2.5e4 from
    layer 11 to 27 in every text (the trial: 2.5e4, dimension 507, from layer 11). We ask that the scan's most common
    (position, dimension) be at position 0 and hold most events, that it be present in every text over a run of at
    least a third of the layers, and that it be > 100x the layer's median |activation| (the scan's threshold is 1000x).
    """
    assert report.n_massive > 0
    (pos, dim), count = Counter((e[2], e[3]) for e in report.massive).most_common(1)[0]
    assert pos == 0 and count >= 0.6 * len(report.massive)
    layers = sorted({e[0] for e in report.massive if (e[2], e[3]) == (pos, dim)})
    full = [layer for layer in layers if sum(1 for e in report.massive if e[0] == layer and (e[2], e[3]) == (pos, dim)) == report.n_texts]
    assert len(full) >= report.top_abs.shape[0] // 3 and full == list(range(full[0], full[-1] + 1))
    assert bool((report.top_abs[full] > 100 * report.median_abs[full]).all())


def test_sinks_in_most_heads_after_the_first_layers(report):
    """Gu et al. / Guo et al.: most heads of a pretrained LM put most attention on the first token, except the first layers.

    Measured: no sink head in layers 0-2, 204 of 270 in all (trial: 200/270 on prose). Asked: none in layer 0, and more
    than half of the heads of the layers after the first tenth are sinks.
    """
    n_layers, n_heads = report.sink_score.shape
    sinks = report.sink_heads
    assert not [h for h in sinks if h[0] == 0]
    late = [h for h in sinks if h[0] >= n_layers // 10]
    assert len(late) > 0.5 * (n_layers - n_layers // 10) * n_heads, len(late)


def test_value_drains_at_the_sink(report):
    """Guo et al.: sink heads write little: the first token's value is small (drain ratio < 1) in most sink heads."""
    sinks, drains = set(report.sink_heads), set(report.drain_heads)
    assert len(sinks & drains) >= 0.7 * len(sinks), (len(sinks & drains), len(sinks))
    ratio = torch.stack([report.drain_ratio[layer, head] for layer, head in sinks])
    assert float(ratio.median()) < 0.5

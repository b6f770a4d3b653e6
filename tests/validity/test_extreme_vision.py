"""The extreme-token scan on image + text prompts of the zoo VLM (``scenes-vlm``): it agrees with the naive full-cache
twin and with the single-prompt view, and it recovers planted truth: a head made to attend a chosen patch shows that
patch as its secondary sink and gives exactly the attention split the plant implies; a huge activation planted at a
patch is counted as visual and named by the patch."""

from __future__ import annotations

import pytest
import torch

from interp import load_model
from interp.extreme import VisionExtremeReport, scan
from interp.extreme.naive_vision import naive_scan_images
from interp.extreme.prompt import inspect_prompt
from interp.extreme.vision import KINDS, encode_prompts
from interp.models.vision import encode
from interp.zoo import scenes as world

FIELDS = ["sink_score", "gu_share", "value_first", "value_other", "resid_first", "resid_other_max", "resid_other_median",
          "top_abs", "median_abs", "mass", "mass_sq", "uniform_mass", "top_kind", "kind_absmax", "kind_absmax_sq",
          "massive_kind", "kind_prompts"]


@pytest.fixture(scope="module")
def vlm():
    return load_model("scenes-vlm", device="cpu")


@pytest.fixture(scope="module")
def prompts():
    out = []
    for s in world.scenes(8, "heldout"):
        q = s.questions()
        out.append([s.pixels, f" Question: {q[0]['question']} Answer:" if q else " a scene"])
    return out


def test_streaming_equals_naive_and_the_prompt_view(vlm, prompts):
    a = scan(vlm, prompts, batch_size=3, progress=False)
    b = naive_scan_images(vlm, prompts)
    assert isinstance(a, VisionExtremeReport) and a.n_visual == 16 * len(prompts)
    for f in FIELDS:
        # float32 activations reduced in float64 on both sides: only the summation order differs (~1e-7 relative)
        assert torch.allclose(getattr(a, f), getattr(b, f), rtol=1e-5, atol=1e-6, equal_nan=True), f
    # one prompt: the split of attention by kind equals that of inspect_prompt's full patterns (a separate code path)
    one = scan(vlm, prompts[:1], progress=False)
    view = inspect_prompt(vlm, prompts[0])
    kinds = encode_prompts(vlm, prompts[:1]).kinds[0]
    assert [t.startswith("<img ") for t in view.tokens] == (kinds == 1).tolist()
    for k in range(len(KINDS)):
        expect = view.patterns[:, :, 1:, kinds == k].sum(-1).mean(-1)  # [layer, head]
        assert torch.allclose(one.mass[..., k], expect, atol=1e-5), KINDS[k]


def test_planted_patch_sink_gives_the_implied_split(vlm, prompts):
    layer, head, v = 2, 1, 5  # head 1 of layer 2 made to attend the 6th visual token from every query that sees it
    vin = encode(vlm, prompts[0])
    key, (_, row, col) = int(vin.visual[v]), vin.patches[v].tolist()
    n = vin.ids.shape[1]

    def plant(p, hook):
        p = p.clone()
        p[:, head] = 0.0
        p[:, head, :key, 0] = 1.0  # queries before the patch: all on the first token
        p[:, head, key:, key] = 1.0
        return p

    with vlm.hooks(fwd_hooks=[(f"blocks.{layer}.attn.hook_pattern", plant)]):
        r = scan(vlm, prompts[:1], progress=False)
    # queries t = 1 .. n-1: t < key put 1 on the first token, t >= key put 1 on the patch (a visual token)
    expect = torch.tensor([(key - 1) / (n - 1), (n - key) / (n - 1), 0.0])
    assert torch.allclose(r.mass[layer, head].double(), expect.double(), atol=1e-6)
    # alpha_key = 1 (every query that sees it puts all its attention there): the top secondary sink, named by its patch
    names = {s[0]: s for s in r.other_sinks}
    assert f"<img {row},{col}>" in names and names[f"<img {row},{col}>"][3] == pytest.approx(1.0, abs=1e-6)


def test_planted_massive_activation_at_a_patch(vlm, prompts):
    vin = encode(vlm, prompts[1])
    v = 9
    pos, (_, row, col) = int(vin.visual[v]), vin.patches[v].tolist()

    def plant(x, hook):
        x = x.clone()
        x[:, pos, 7] += 3000.0  # far above the ~20 largest |a| the model has anywhere (kind_absmax below)
        return x

    clean = scan(vlm, prompts[1:2], progress=False)
    assert clean.n_massive == 0 and float(clean.kind_absmax.nan_to_num(0).max()) < 100
    with vlm.hooks(fwd_hooks=[("blocks.1.hook_mlp_out", plant)]):
        r = scan(vlm, prompts[1:2], progress=False)
    assert r.massive_kind[1].tolist() == [0.0, 1.0, 0.0] and r.massive_kind[:, 1].sum() == r.n_massive
    assert all(e[2] == pos and e[3] == 7 and e[5] == f"<img {row},{col}>" for e in r.massive)
    assert r.top_kind[1].tolist() == [0.0, 1.0, 0.0] and torch.equal(r.top_kind[0], clean.top_kind[0])

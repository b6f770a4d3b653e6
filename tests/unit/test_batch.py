"""Batches of prompts (interp.batch): a list in one call for the lenses, the scan of one prompt and attribution; each
prompt's result is bit for bit the single call's, whatever the other prompts' lengths; one bar; save/load."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from interp.attribution import attribute
from interp.batch import BatchResult, is_batch, run_batch
from interp.errors import InterpError
from interp.extreme.prompt import inspect_prompt
from interp.lens.latent import LatentIndex, latent_lens
from interp.lens.logit import logit_lens

# lengths 4, 8 and 13 tokens (BOS included), and one prompt given as ids
PROMPTS = ["tom", "mia ran to the", "the cat sat on the mat and then"]


def _same(a, b) -> None:
    """Every field of results ``a`` and ``b`` is equal: tensors bit for bit (same dtype, shape and values, NaN where NaN)."""
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, torch.Tensor):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            assert torch.equal(x.nan_to_num(1234.5), y.nan_to_num(1234.5)) if x.is_floating_point() else torch.equal(x, y), f.name
        else:
            assert x == y, f.name


@pytest.fixture(scope="module")
def prompts(stories):
    ids = stories.to_tokens("a dog and a cat")[0].cpu()
    return [*PROMPTS, ids]


def test_logit_lens_batch_is_each_single_call(stories, prompts):
    targets = ["the", " the", "mat", 5]
    batch = logit_lens(stories, prompts, target=targets, top_k=3)
    assert isinstance(batch, BatchResult) and batch.kind == "LensResult" and len(batch) == len(prompts)
    assert len({len(r.tokens) for r in batch}) == len(prompts)  # every prompt a different length
    for p, t, r in zip(prompts, targets, batch):
        _same(r, logit_lens(stories, p, target=t, top_k=3))
    # one target for all prompts
    for p, r in zip(prompts, logit_lens(stories, tuple(prompts), target="the")):
        _same(r, logit_lens(stories, p, target="the"))


def test_inspect_prompt_batch_is_each_single_call(stories, prompts):
    batch = inspect_prompt(stories, prompts)
    assert batch.kind == "PromptView"
    for p, r in zip(prompts, batch):
        _same(r, inspect_prompt(stories, p))


@pytest.mark.parametrize("method", ["gradient_norm", "reagent", "occlusion"])
def test_attribute_batch_is_each_single_call(stories, prompts, method):
    options = {"num_probes": 4, "max_steps": 4, "min_steps": 2} if method == "reagent" else {}
    targets = [None, " the", None, None]
    batch = attribute(stories, prompts, target=targets, method=method, **options)
    assert batch.kind == "TokenAttribution"
    for p, t, r in zip(prompts, targets, batch):
        _same(r, attribute(stories, p, target=t, method=method, **options))


def test_latent_lens_batch_is_each_single_call(stories, prompts):
    index = LatentIndex.build(stories, ["mia ran to the park and the dog ran too", "the cat sat on the mat and tom sat"],
                              layers=[1, 3], max_per_token=None, min_pos=1, dtype=torch.float32, progress=False)
    batch = latent_lens(stories, prompts, index, layer=[0, 2], k=3)
    assert batch.kind == "LatentLensResult"
    for p, r in zip(prompts, batch):
        _same(r, latent_lens(stories, p, index, layer=[0, 2], k=3))


def test_save_load_round_trip_and_damage(stories, prompts, tmp_path):
    batch = logit_lens(stories, prompts[:3], target="the", top_k=2)
    back = BatchResult.load(batch.save(tmp_path / "b.safetensors"))
    assert back.prompts == PROMPTS and back.kind == "LensResult"
    for a, b in zip(batch, back):
        _same(a, b)
    # a file whose item lost a field is refused, naming it
    from interp.results import read_safetensors, write_safetensors

    header, tensors = read_safetensors(tmp_path / "b.safetensors")
    tensors.pop("1/entropy")
    write_safetensors(tmp_path / "bad.safetensors", tensors, header)
    with pytest.raises(InterpError, match="entropy"):
        BatchResult.load(tmp_path / "bad.safetensors")


def test_stack_pads_shorter_prompts(stories):
    batch = logit_lens(stories, PROMPTS, target="the")
    n = [len(r.tokens) for r in batch]
    grid = batch.stack("target_prob")  # [prompt, layer, pos]
    assert grid.shape == (3, len(batch[0].layers), max(n))
    for i, r in enumerate(batch):
        assert torch.equal(grid[i, :, : n[i]], r.target_prob)
        assert grid[i, :, n[i]:].isnan().all()
    assert (batch.stack("target_rank")[0, :, n[0]:] == -1).all()
    with pytest.raises(InterpError, match="not a tensor"):
        batch.stack("tokens")


def test_bad_batches_name_the_problem(stories):
    with pytest.raises(InterpError, match="list of 2 but there are 3 prompts"):
        logit_lens(stories, PROMPTS, target=["the", "mat"])
    with pytest.raises(InterpError, match="prompt 1 of the batch"):
        logit_lens(stories, ["tom", "   "])
    with pytest.raises(InterpError, match="empty"):
        run_batch(logit_lens, stories, [])


def test_is_batch_keeps_single_prompts_single():
    from PIL import Image

    img = Image.new("RGB", (8, 8))
    assert is_batch(["a", "b"]) and is_batch(("a",)) and is_batch([torch.tensor([1, 2])]) and is_batch([[img, "a"], "b"])
    assert not is_batch("a") and not is_batch([]) and not is_batch([1, 2, 3]) and not is_batch([img, "what is this"])
    assert not is_batch(torch.tensor([[1, 2]]))


def test_one_progress_bar_over_the_prompts(stories, monkeypatch):
    import interp.batch as batch_mod

    bars = []
    real = batch_mod.tqdm

    def spy(iterable, **kw):
        bars.append(kw)
        return real(iterable, **{**kw, "disable": True})

    monkeypatch.setattr(batch_mod, "tqdm", spy)
    inspect_prompt(stories, PROMPTS)
    assert len(bars) == 1 and bars[0]["unit"] == "prompt" and bars[0]["desc"] == "inspect_prompt"

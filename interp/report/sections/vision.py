"""The visual-token section of ``interp report`` (a vision-language model given ``--image``): the image with its patch
grid read by the logit lens, the embedding lens and LatentLens, and each patch's top-1 word by layer."""

from __future__ import annotations

from pathlib import Path

import torch

from interp.lens.latent import LatentIndex
from interp.lens.visual import visual_lens
from interp.models.vision import is_vlm
from interp.viz.common import visible

TITLE = "Visual tokens"
MAX_COLUMNS = 9
"""Layers shown in the top-1 tables (strided; the first and the last always)."""
_WHAT = {"logit": "logit lens (probability of the top word)", "embedding": "embedding lens (nearest input-embedding row, cosine)",
         "latent": "LatentLens (nearest stored text-token state, cosine)"}


def _index(model, latent_index) -> tuple[LatentIndex | None, str]:
    """The LatentLens index: ``latent_index`` (an index or its folder), else the bundled model's default index
    (``interp.lens.bundled.default_index``: scene-world descriptions for ``scenes-vlm``, the shipped index for
    ``smollm2-vlm``); (None, why) otherwise."""
    if isinstance(latent_index, LatentIndex):
        return latent_index, "the given index"
    if latent_index:
        return LatentIndex.load(latent_index), f"index {latent_index}"
    from interp.lens.bundled import default_index

    index = default_index(model)
    if index is not None:
        return index, "the bundled index of descriptions of coloured shapes (interp.lens.bundled.default_index)"
    return None, "No LatentLens index for this model: pass latent_index=<folder> (build one with interp index build)."


def _columns(layers: list[int]) -> list[int]:
    """Indices into ``layers`` for the tables: at most ``MAX_COLUMNS``, evenly spread, first and last kept."""
    n = len(layers)
    if n <= MAX_COLUMNS:
        return list(range(n))
    return sorted({round(i * (n - 1) / (MAX_COLUMNS - 1)) for i in range(MAX_COLUMNS)})


@torch.no_grad()
def add_to_report(report, model, prompt: str, *, image: str | Path | None = None, latent_index=None,
                  vision_layer: int | None = None) -> None:
    """Add the visual-token section when ``model`` is a vision-language model and ``image`` (a path, PIL image or array)
    is given: for each lens (logit, embedding, and LatentLens when an index is at hand), the image with its patch grid
    at ``vision_layer`` (default: the middle layer) coloured by the top-1 score, hover for the top-5, and a table of
    every patch's top-1 word by layer. A text-only model adds nothing; a VLM without an image adds a note."""
    from interp.viz.vision import patch_figure

    if not is_vlm(model):
        return
    if image is None:
        report.add_text(TITLE, "This is a vision-language model: give an image (interp report --image scene.png) to read its "
                               "visual tokens.")
        return
    image = Path(image) if isinstance(image, str) else image
    parts = [image]  # the visual tokens come first; text after them cannot change their states (causal attention)
    n = model.cfg.n_layers
    layer = n // 2 if vision_layer is None else vision_layer
    report.section(TITLE, note="Each visual token (one per image patch) read at every layer: the logit lens decodes its "
                               "residual state through the final norm and unembedding; the embedding lens finds the nearest "
                               "input-embedding rows; LatentLens finds the nearest contextual text-token states of a corpus. "
                               "Layer 0 is the connector's output.")
    index, where = _index(model, latent_index)
    lenses = ["logit", "embedding"] + (["latent"] if index is not None else [])
    for lens in lenses:
        r = visual_lens(model, parts, lens=lens, index=index if lens == "latent" else None, k=5)
        extra = f" over {where}" if lens == "latent" else ""
        report.add_figure(TITLE, patch_figure(r, image, layer=layer),
                          caption=f"{_WHAT[lens]}{extra}, layer {layer} of 0..{n}: colour = the top-1 word's score, cell text = "
                                  "the top-1 word; hover a patch for its top-5.")
        cols = _columns(r.layers)
        rows = [[f"({row}, {col})", *(visible(r.words[li][v][0]) for li in cols)]
                for v, (_, row, col) in enumerate(r.patches.tolist())]
        report.add_table(TITLE, ["patch (row, col)", *(f"layer {r.layers[li]}" for li in cols)], rows,
                         caption=f"{_WHAT[lens].split(' (')[0]}: each patch's top-1 word by layer.")
    if index is None:
        report.add_text(TITLE, where)

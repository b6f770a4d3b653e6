"""The visual-token section of ``interp report`` (a vision-language model given ``--image``): the image with its patch
grid read by the logit lens, the embedding lens and LatentLens, each patch's top-1 word by layer, and the patch heatmap
of a token attribution of the model's answer (its greedy next token after the image)."""

from __future__ import annotations

from pathlib import Path

import torch

from interp.errors import InterpError
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


def add_answer_attribution(report, model, image, *, text: str | None = None, method: str = "gradient_norm") -> None:
    """Add the patch heatmap of ``method``'s attribution of the model's answer: its greedy next token after ``[image]``
    (``[image, text]`` when ``text`` is given), each patch coloured by its visual token's score."""
    import warnings

    from interp.attribution import attribute
    from interp.viz.attribution_vision import patch_heatmap

    parts = [image, text] if text else [image]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attr = attribute(model, parts, None, method=method)
    vis = attr.info["visual"]
    row = attr.row(-1)
    shares = row[vis["positions"]].abs().sum() / row.abs().sum().clamp_min(1e-30)
    report.add_figure(TITLE, patch_heatmap(attr, image, title=f"{method}: patches for the answer {attr.target_tokens[-1]!r}"),
                      caption=f"Token attribution of the model's answer (its greedy next token {attr.target_tokens[-1]!r} after "
                              f"the image{' and ' + repr(text) if text else ''}) by {method}: each patch coloured by its visual "
                              f"token's score, the top 3 numbered; the visual tokens hold {float(shares):.0%} of the total "
                              "|score| (the rest is on the text and first tokens).")


@torch.no_grad()
def add_to_report(report, model, prompt: str, *, image: str | Path | None = None, latent_index=None,
                  vision_layer: int | None = None, vision_prompt: str | None = None,
                  vision_attribution: str = "gradient_norm") -> None:
    """Add the visual-token section when ``model`` is a vision-language model and ``image`` (a path, PIL image or array)
    is given: for each lens (logit, embedding, and LatentLens when an index is at hand), the image with its patch grid
    at ``vision_layer`` (default: the middle layer) coloured by the top-1 score, hover for the top-5, and a table of
    every patch's top-1 word by layer; then the patch heatmap of the ``vision_attribution`` method's attribution of the
    model's answer, its greedy next token after the image (and ``vision_prompt``, text after the image, when given). A
    text-only model adds nothing; a VLM without an image adds a note."""
    from interp.viz.vision import patch_figure

    if not is_vlm(model):
        return
    from interp.attribution import method_names

    if vision_attribution not in method_names():
        raise InterpError(f"vision_attribution: unknown attribution method {vision_attribution!r}; choose one of "
                          f"{', '.join(method_names())}")
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
    with torch.enable_grad():
        try:
            add_answer_attribution(report, model, image, text=vision_prompt, method=vision_attribution)
        except Exception as e:  # a failing attribution must not sink the lens views above
            report.add_error(TITLE, f"patch attribution of the answer: {type(e).__name__}: {e}")

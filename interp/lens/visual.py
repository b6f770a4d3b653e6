"""Lenses over the visual tokens of a vision-language model: what word does each image patch's state read as?

``visual_lens(model, [image, " text"], lens=...)`` runs the prompt once (pixels through the vision tower and the
connector, as the model's own forward does) and reads the residual state of every visual token at every layer with:

- ``"logit"``: the logit lens, ``softmax(unembed(ln_final(h)))``; scores are probabilities;
- ``"embedding"``: the embedding lens, the input-embedding rows nearest to ``h`` by cosine; scores are cosines;
- ``"latent"``: LatentLens, the nearest stored contextual text states of an index built from the LM's text side
  (``interp index build`` / ``LatentIndex.build``); scores are cosines, words are the stored tokens.

Layer numbering is LatentLens' (``interp.lens.latent.layers``): 0 is the input embedding (for a visual token: the
connector's output), ``n_layers`` the last block's output. The result marks each visual token's position and the
patch (image, row, col) it shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.errors import InterpError
from interp.lens.latent.layers import layer_hook, layer_states
from interp.lens.latent.search import check_k
from interp.lens.logit import decode
from interp.models import model_name
from interp.models.vision import encode, is_vlm
from interp.results import Result

__all__ = ["VisualLensResult", "visual_lens", "LENSES", "visual_states"]

LENSES = ("logit", "embedding", "latent")


@dataclass(frozen=True)
class VisualLensResult(Result):
    """Top-``k`` words of each visual token at each layer under one lens."""

    model: str
    "name of the model"
    lens: str
    "'logit', 'embedding' or 'latent'"
    tokens: list[str]
    "[pos] the prompt's token strings (a visual token shows as the image token)"
    visual: torch.Tensor
    "[vis] position of each visual token in the prompt"
    patches: torch.Tensor
    "[vis, 3] (image, row, col) of the patch each visual token shows"
    grid: list[int]
    "(rows, cols) of patches per image"
    layers: list[int]
    "[layer] the layers read (0 = embeddings .. n_layers = last block's output)"
    words: list
    "[layer][vis][k] the top words"
    ids: torch.Tensor
    "[layer, vis, k] their token ids"
    scores: torch.Tensor
    "[layer, vis, k] probabilities (logit lens) or cosines (embedding lens, LatentLens)"
    _shapes = {"visual": "vis", "patches": "vis three", "layers": "layer", "words": "layer", "ids": "layer vis k",
               "scores": "layer vis k", "tokens": "pos"}

    def patch_words(self, layer: int, row: int, col: int, image: int = 0) -> list[str]:
        """The top words of the visual token showing patch (row, col) of ``image`` at model layer ``layer``."""
        if layer not in self.layers:
            raise InterpError(f"layer {layer} was not read; this result holds layers {self.layers}")
        hit = ((self.patches[:, 0] == image) & (self.patches[:, 1] == row) & (self.patches[:, 2] == col)).nonzero()
        if len(hit) == 0:
            raise InterpError(f"no visual token shows patch ({row}, {col}) of image {image}; the grid is {self.grid}")
        return list(self.words[self.layers.index(layer)][int(hit[0])])


@torch.no_grad()
def visual_states(model, prompt, layers: list[int]):
    """(``VisionInput``, {layer: [vis, d_model] residual states of the visual tokens}) of one forward pass."""
    if not is_vlm(model):
        raise InterpError(f"{model_name(model)!r} is not a vision-language model: visual lenses need one (e.g. 'scenes-vlm')")
    vin = encode(model, prompt)
    if vin.visual.numel() == 0:
        raise InterpError("the prompt holds no image: put a PIL image, array or pathlib.Path in the prompt's list of parts")
    states = layer_states(model, vin.ids, layers, **vin.forward_kwargs())
    return vin, {x: s[0, vin.visual.to(s.device)] for x, s in states.items()}


def _check_layers(model, layer) -> list[int]:
    n = model.cfg.n_layers
    layers = list(range(n + 1)) if layer is None else ([layer] if isinstance(layer, int) else list(layer))
    if not layers:
        raise InterpError("layer: give at least one layer")
    for x in layers:
        layer_hook(model, x)  # type and range checks
    return layers


@torch.no_grad()
def visual_lens(model, prompt, *, lens: str = "latent", index=None, layer: int | list[int] | None = None, k: int = 5,
                search_layers: list[int] | None = None) -> VisualLensResult:
    """Read every visual token of ``prompt`` (a list of text and image parts) with ``lens`` at ``layer`` (an int, a list,
    or None for all of 0..n_layers); ``index`` (a ``LatentIndex`` or ``ShardedIndex`` of this model) is needed for
    ``"latent"``, whose neighbours come from the index's stored layers (or ``search_layers``).
    Returns a ``VisualLensResult`` ([layer, vis, k])."""
    if lens not in LENSES:
        raise InterpError(f"unknown lens {lens!r}: choose one of {', '.join(LENSES)}")
    check_k(k)
    if lens == "latent":
        if index is None:
            raise InterpError("lens='latent' needs index=: a LatentIndex built from this model's text side (interp index build)")
        index._check_model(model, strict=True)
    layers = _check_layers(model, layer)
    vin, states = visual_states(model, prompt, layers)
    n_vis = vin.visual.numel()
    ids_out, scores_out, words = [], [], []
    if lens == "embedding":
        emb = model.embed.W_E if hasattr(model.embed, "W_E") else model.original_model.get_input_embeddings().weight
        unit = torch.nn.functional.normalize(emb.float(), dim=-1)
    for x in layers:
        h = states[x].float()
        if lens == "logit":
            s, i = decode(model, h).float().softmax(-1).topk(k, dim=-1)
        elif lens == "embedding":
            s, i = (torch.nn.functional.normalize(h, dim=-1) @ unit.T).topk(k, dim=-1)
        else:
            nb = index.search(h, k, search_layers)
            s, rows = nb.sims, nb.rows
            i = index._meta(rows.cpu())[0]
            words.append([list(nb.tokens[j]) for j in range(n_vis)])
        ids_out.append(i.cpu())
        scores_out.append(s.float().cpu())
        if lens != "latent":
            words.append([model.tokenizer.convert_ids_to_tokens(row) for row in i.cpu().tolist()])
    if lens != "latent":
        words = [[[_clean(model, w) for w in row] for row in layer_words] for layer_words in words]
    return VisualLensResult(
        model=model_name(model), lens=lens, tokens=[_clean(model, t) for t in model.tokenizer.convert_ids_to_tokens(vin.ids[0].tolist())],
        visual=vin.visual, patches=vin.patches, grid=list(vin.grid), layers=layers, words=words,
        ids=torch.stack(ids_out).long(), scores=torch.stack(scores_out),
    )


def _clean(model, tok: str) -> str:
    """A token as text (byte-level BPE's 'Ġ' shown as a space)."""
    try:
        return model.tokenizer.convert_tokens_to_string([tok])
    except Exception:  # a tokenizer without a decoder for single tokens: show the raw piece
        return tok

"""Attribution over the visual tokens of a vision-language model (LLaVA shape): images in ``attribute()`` prompts.

A prompt with images (a list of text and image parts, ``interp.models.vision``) is encoded once; its image-token
slots get the connector's output (``get_image_features``: tower -> projector) as their input embeddings, exactly as
the Hugging Face model scatters them. ``visual_inputs(model, vin)`` makes that happen for every forward inside the
block *by token id*, with a forward hook on the raw token-embedding module (``nn.Embedding``, which the bridge's
``embed.hook_out`` reads after): the model then runs on ids alone, with no ``pixel_values``, and every method sees
the visual tokens' embeddings at ``embed.hook_out`` like any text token's:

- gradient methods and Integrated Gradients differentiate with respect to the connector output at visual positions
  (the tower and projector are upstream, so a patch's score is that of its visual token, the LM's input);
- IG's baseline is the same as for text tokens ("zero_keep_bos" on rotary models: every visual token zero);
- **replacement** (occlusion, ReAGent): a method that puts another token id at a visual position (occlusion's pad,
  ReAGent's sampled tokens) gets the **mean visual token of the same image** there, not that id's text embedding.
  The mean of the image's own visual tokens keeps the replacement inside the distribution of visual inputs (a text
  embedding at a visual slot is an input the LM never saw in training) and needs no other images; it removes what is
  specific to the patch (its object) while keeping the image's average (mostly background on sparse scenes). A
  sampled id equal to the image token itself (chance 1/vocabulary per draw) leaves the patch as it is.

``visual_info(vin)`` is what a result stores in ``info["visual"]`` (positions, patches, grid, replacement) and
``visual_label`` names a visual token ``<img R,C>`` (``<img I:R,C>`` for image I > 0) as ``interp.extreme.prompt`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from interp.errors import InterpError
from interp.models import model_device
from interp.models.vision import VisionInput, encode, image_token_id, is_parts, visual_label

__all__ = ["REPLACEMENT", "is_parts", "encode_prompt", "visual_inputs", "visual_info", "visual_label", "connector_features"]

REPLACEMENT = "mean visual token of the same image"
"""what occlusion and ReAGent put at a visual position they replace (module docstring)"""


def encode_prompt(model, prompt: list | tuple) -> VisionInput:
    """The ``VisionInput`` of a list prompt (text and image parts); ``InterpError`` for images given to a text-only
    model, or a model whose token embedding the visual tokens cannot be put into (``_embedding_module``)."""
    vin = encode(model, prompt)
    if vin.visual.numel():
        _embedding_module(model)
    return vin


def _embedding_module(model) -> torch.nn.Module:
    """The raw ``nn.Embedding`` under the bridge's ``embed`` (its output reaches ``embed.hook_out`` unscaled)."""
    embed = getattr(model, "embed", None)
    inner = getattr(embed, "original_component", None)
    if not isinstance(inner, torch.nn.Module):
        raise InterpError("attribution over images needs a bridge whose 'embed' wraps the token embedding; this model has none")
    if float(getattr(embed, "_output_contribution_scale", 1.0)) != 1.0 or hasattr(inner, "embed_scale"):
        raise InterpError("attribution over images does not support a model that scales its token embeddings (Gemma-style) "
                          "yet: use a LLaVA model with a Llama-style LM (e.g. 'scenes-vlm', 'smollm2-vlm')")
    return inner


@torch.no_grad()
def connector_features(model, vin: VisionInput) -> torch.Tensor:
    """[slots, d_model] the connector's output for every image-token slot of ``vin.ids``, in order (what the Hugging
    Face model scatters into them; a CLS feature kept by the "full" strategy included)."""
    hf = model.original_model
    dev, dtype = model_device(model), next(hf.parameters()).dtype
    inner = getattr(hf, "model", hf)
    out = inner.get_image_features(**{k: v.to(dev, dtype=dtype) for k, v in vin.forward_kwargs().items()})
    feats = getattr(out, "pooler_output", out)
    if isinstance(feats, (list, tuple)):
        feats = torch.cat([f.reshape(-1, f.shape[-1]) for f in feats])
    feats = feats.reshape(-1, feats.shape[-1])
    slots = int((vin.ids == image_token_id(model)).sum())
    if feats.shape[0] != slots:
        raise InterpError(f"the connector gave {feats.shape[0]} visual features for {slots} image-token slots: this model's "
                          "image layout is not supported by attribution")
    return feats


@contextlib.contextmanager
def visual_inputs(model, vin: VisionInput | None) -> Iterator[None]:
    """Inside the block, every forward of ``model`` on ids whose image-token slots sit where ``vin``'s do gets the
    connector's output there (a slot holding another id: the mean visual token of its image, ``REPLACEMENT``).
    Nothing happens for ``vin`` None or without images. The hook is removed on exit, even by an exception."""
    if vin is None or vin.pixel_values is None:
        yield
        return
    module = _embedding_module(model)
    image_id = image_token_id(model)
    feats = connector_features(model, vin)  # [slots, d]
    slots = (vin.ids[0] == image_id).nonzero()[:, 0].to(feats.device)  # [slots]
    n_img = vin.pixel_values.shape[0]
    per = feats.shape[0] // n_img
    repl = feats.view(n_img, per, -1).mean(1, keepdim=True).expand(-1, per, -1).reshape(feats.shape)

    def scatter(mod, args, out):  # noqa: ARG001
        ids = args[0]
        inside = slots < ids.shape[-1]
        if not bool(inside.any()):
            return out
        p = slots[inside].to(ids.device)
        own = (ids[..., p] == image_id)[..., None]  # [..., k, 1]
        vals = torch.where(own, feats[inside].to(out.device), repl[inside].to(out.device)).to(out.dtype)
        out = out.clone()
        out[..., p, :] = vals
        return out

    handle = module.register_forward_hook(scatter)
    try:
        yield
    finally:
        handle.remove()


def visual_info(vin: VisionInput) -> dict[str, Any]:
    """JSON for a result's ``info["visual"]``: ``positions`` [n_visual] of the visual tokens in the sequence,
    ``patches`` [n_visual] (image, row, col), ``grid`` (rows, cols) per image, ``replacement`` (``REPLACEMENT``)."""
    return {"positions": [int(p) for p in vin.visual], "patches": [[int(v) for v in p] for p in vin.patches.tolist()],
            "grid": [int(g) for g in vin.grid], "replacement": REPLACEMENT}

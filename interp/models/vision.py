"""Prompts with images for vision-language models (LLaVA, Gemma 3, Idefics3): the one way images enter an analysis.

A prompt that carries images is a **list of parts**: each part is text (``str``) or an image, where an image is a
``PIL.Image.Image``, a ``numpy`` array (``[H, W, 3]`` uint8, or ``[H, W]`` grey), or a ``pathlib.Path`` to an image
file (a plain string is always text)::

    interp.logit_lens(vlm, [Path("scene.png"), " what colour is the circle?"])

``encode(model, prompt)`` turns it into what the model's forward takes: ``ids`` with one image-token slot per
visual token (LLaVA expands each image to ``(image_size / patch_size)^2`` slots), ``pixel_values`` prepared as the
model's image processor config says (resize to the tower's size, scale, normalise), and for every visual token its
position in the sequence and the patch it shows (image, row, column). Grey images are repeated to three channels and
fully opaque RGBA images drop their alpha; an image with transparency is refused (composite it first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from interp.errors import InterpError

__all__ = ["VisionInput", "is_vlm", "is_parts", "visual_label", "image_token_id", "has_images", "to_image", "encode", "prompt_inputs",
           "MAX_PIXELS"]

MAX_PIXELS = 40_000_000
"""images with more pixels than this are refused (a 'decompression bomb' guard; about 6,300 x 6,300)"""
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class VisionInput:
    """A prompt ready for the forward pass: ``ids`` [1, seq]; ``pixel_values`` [image, 3, H, W] (None without images);
    ``visual`` [n_visual] positions of the visual tokens in ``ids``; ``patches`` [n_visual, 3] (image, row, col) of
    each; ``grid`` (rows, cols) of patches per image; ``family`` the image layout ("llava", "gemma3", "idefics3")."""

    ids: torch.Tensor
    pixel_values: torch.Tensor | None
    visual: torch.Tensor
    patches: torch.Tensor
    grid: tuple[int, int]
    family: str = "llava"

    def forward_kwargs(self) -> dict:
        """The keyword arguments the model's forward (and its ``get_image_features``) needs beside ``ids``:
        ``pixel_values`` when there are images, [image, 3, H, W] (Idefics3: [1, image, 3, H, W], one prompt's images)."""
        if self.pixel_values is None:
            return {}
        return {"pixel_values": self.pixel_values[None] if self.family == "idefics3" else self.pixel_values}

    def on(self, device) -> tuple[torch.Tensor, dict]:
        """(``ids`` [1, seq], the forward's keyword arguments) on ``device``."""
        return self.ids.to(device), {k: v.to(device) for k, v in self.forward_kwargs().items()}

    def labels(self) -> dict[int, str]:
        """{position: ``"<img R,C>"``} naming the patch each visual token shows (``"<img I:R,C>"`` for image I > 0)."""
        return {int(p): visual_label(*patch) for p, patch in zip(self.visual, self.patches.tolist())}


def _hf_config(model):
    return getattr(getattr(model, "original_model", None), "config", None)


def is_vlm(model) -> bool:
    """True for a LLaVA-shaped vision-language model (a vision config and an image token id)."""
    cfg = _hf_config(model)
    return cfg is not None and getattr(cfg, "vision_config", None) is not None and _image_token(cfg) is not None


def image_token_id(model) -> int | None:
    """The id of the image-slot token of a VLM (``None`` for a text-only model)."""
    cfg = _hf_config(model)
    return None if cfg is None else _image_token(cfg)


def _image_token(cfg) -> int | None:
    for key in ("image_token_id", "image_token_index"):
        v = getattr(cfg, key, None)
        if isinstance(v, int):
            return v
    return None


def _is_image(part) -> bool:
    if isinstance(part, (np.ndarray, Path)):
        return True
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - PIL comes with the notebook extras
        return False
    return isinstance(part, Image.Image)


def is_parts(prompt) -> bool:
    """True for a prompt of parts: a non-empty list or tuple holding an image (a list with an image and a part of
    another kind is one too, so that ``encode`` names the bad part). A list of text only is a batch of prompts
    (``interp.batch.is_batch``), and a list of ids one prompt of ids."""
    return isinstance(prompt, (list, tuple)) and bool(prompt) and has_images(prompt)


def visual_label(image: int, row: int, col: int) -> str:
    """``<img R,C>`` (``<img I:R,C>`` for image I > 0): the name of the visual token of that patch in token views."""
    return f"<img {f'{image}:' if image else ''}{row},{col}>"


def has_images(prompt) -> bool:
    """True when ``prompt`` is a list of parts holding at least one image."""
    return isinstance(prompt, (list, tuple)) and any(_is_image(p) for p in prompt)


def to_image(part, where: str = "image") -> np.ndarray:
    """[H, W, 3] uint8 RGB pixels of an image part (PIL image, array or path); ``InterpError`` for anything else."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(part, Path):
        if not part.is_file():
            raise InterpError(f"{where}: no image file at {part}")
        try:
            with Image.open(part) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise InterpError(f"{where}: {part} is {im.width} x {im.height} pixels, over the {MAX_PIXELS:,} accepted: "
                                      "shrink it first")
                im.load()
                part = im.copy()
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
            raise InterpError(f"{where}: {part} is not an image file that PIL can read ({type(e).__name__})") from None
    if isinstance(part, Image.Image):
        if part.width * part.height > MAX_PIXELS:
            raise InterpError(f"{where}: {part.width} x {part.height} pixels, over the {MAX_PIXELS:,} accepted: shrink it first")
        if part.mode in ("RGBA", "LA") or (part.mode == "P" and "transparency" in part.info):
            part = part.convert("RGBA")
        elif part.mode != "RGB":
            part = part.convert("RGB")
        arr = np.asarray(part)
    elif isinstance(part, np.ndarray):
        arr = part
    else:
        raise InterpError(f"{where}: expected a PIL image, a numpy array or a pathlib.Path, got {type(part).__name__}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4) or min(arr.shape[:2]) < 1:
        raise InterpError(f"{where}: an image array must be [H, W, 3] (RGB), [H, W, 4] (RGBA) or [H, W] (grey); got shape "
                          f"{list(arr.shape)}")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise InterpError(f"{where}: {arr.shape[1]} x {arr.shape[0]} pixels, over the {MAX_PIXELS:,} accepted: shrink it first")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise InterpError(f"{where}: a float image must hold finite values in [0, 1]; give uint8 0..255 otherwise")
        arr = np.round(arr * 255)
    elif arr.dtype != np.uint8 and (arr.min() < 0 or arr.max() > 255):
        raise InterpError(f"{where}: integer pixel values must lie in 0..255, got {arr.min()}..{arr.max()}")
    if arr.shape[-1] == 4:
        if (arr[..., 3] < 255).any():
            raise InterpError(f"{where}: the image has transparency (alpha below 255): composite it onto a background "
                              "first, e.g. PIL.Image.alpha_composite(background, image).convert('RGB')")
        arr = arr[..., :3]
    return np.ascontiguousarray(arr.astype(np.uint8))


def _processor(model) -> tuple[int, tuple, tuple]:
    """(image side in pixels, mean, std) for the tower: the folder's image processor config, else CLIP's defaults."""
    cfg = _hf_config(model)
    side = int(cfg.vision_config.image_size)
    pre = getattr(model.cfg, "interp_image_processor", None) or {}
    return side, tuple(pre.get("image_mean", _CLIP_MEAN)), tuple(pre.get("image_std", _CLIP_STD))


def _pixels(images: list[np.ndarray], side: int, mean, std) -> torch.Tensor:
    from PIL import Image

    out = []
    for arr in images:
        if arr.shape[:2] != (side, side):
            arr = np.asarray(Image.fromarray(arr).resize((side, side), Image.BICUBIC))
        out.append(arr)
    x = torch.from_numpy(np.stack(out)).float().div(255.0).permute(0, 3, 1, 2)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def _layout(cfg, side: int, tok) -> tuple[int, int, tuple[list[int], list[int]]]:
    """(visual tokens per grid side, tokens before the first patch's (-1: the first patch is dropped), (ids before,
    ids after) each image's slots) for a VLM config.

    LLaVA: one token per tower patch; a CLIP-style tower has a CLS first (SigLIP none); the "default" feature strategy
    drops the first token, "full" keeps all. Gemma 3: the patches are average-pooled to ``mm_tokens_per_image`` tokens
    (a square grid, row-major), framed by its begin- and end-of-image tokens as its processor does. Idefics3: the
    connector's pixel shuffle folds each ``scale_factor`` x ``scale_factor`` block of patches into one token (a square
    grid, row-major), framed ``<fake_token_around_image><global-img>`` ... ``<fake_token_around_image>`` as its
    processor frames an image it does not split (the whole image at the tower's size: no tiles).
    """
    per_patch = side // int(cfg.vision_config.patch_size)
    if getattr(cfg, "model_type", "") == "idefics3":
        frame = [tok.convert_tokens_to_ids(t) for t in ("<fake_token_around_image>", "<global-img>")]
        frame = [i if isinstance(i, int) and i != tok.unk_token_id else None for i in frame]
        before = [i for i in frame if i is not None]
        return per_patch // int(cfg.scale_factor), 0, (before, before[:1] if frame[0] is not None else [])
    if getattr(cfg, "model_type", "") == "gemma3":
        n = int(cfg.mm_tokens_per_image)
        per_side = int(round(n ** 0.5))
        before = [cfg.boi_token_index] if isinstance(getattr(cfg, "boi_token_index", None), int) else []
        after = [cfg.eoi_token_index] if isinstance(getattr(cfg, "eoi_token_index", None), int) else []
        return per_side, 0, (before, after)
    has_cls = getattr(cfg.vision_config, "model_type", "") != "siglip_vision_model"
    drop = 1 if getattr(cfg, "vision_feature_select_strategy", "default") == "default" else 0
    return per_patch, int(has_cls) - drop, ([], [])


def encode(model, prompt) -> VisionInput:
    """Token ids, pixel values and visual-token bookkeeping of ``prompt`` (a string, or a list of text and image
    parts: see the module docstring) for ``model``. Raises ``InterpError`` for images given to a text-only model,
    a part that is neither text nor an image, an image marker typed as text, or a prompt longer than the context."""
    if isinstance(prompt, str):
        parts = [prompt]
    elif isinstance(prompt, (list, tuple)) and prompt:
        parts = list(prompt)
    else:
        raise InterpError("the prompt must be a string or a non-empty list of text and image parts")
    images = [p for p in parts if _is_image(p)]
    if images and not is_vlm(model):
        raise InterpError(f"model {getattr(model.cfg, 'interp_name', model.cfg.model_name)!r} is a text-only model and "
                          "cannot take images: load a vision-language model (e.g. 'scenes-vlm', 'smollm2-vlm')")
    tok = model.tokenizer
    ids: list[int] = []
    if getattr(model.cfg, "default_prepend_bos", True) and tok.bos_token_id is not None:
        ids.append(int(tok.bos_token_id))
    visual, patches, pix = [], [], []
    grid = (0, 0)
    if images:
        cfg = _hf_config(model)
        image_id = _image_token(cfg)
        side, mean, std = _processor(model)
        per_side, cls, wrap = _layout(cfg, side, tok)
        grid = (per_side, per_side)
        marker = tok.convert_ids_to_tokens(image_id)
    for i, part in enumerate(parts):
        if isinstance(part, str):
            if images and marker and marker in part:
                raise InterpError(f"part {i} of the prompt types the image marker {marker!r} as text: put the image itself "
                                  "(a PIL image, array or pathlib.Path) in the list instead")
            try:
                part.encode("utf-8")
            except UnicodeEncodeError as e:
                raise InterpError(f"part {i} of the prompt is not valid text (character {e.start} is a lone surrogate or a "
                                  "byte that is not UTF-8): fix it") from None
            ids.extend(tok.encode(part, add_special_tokens=False))
        elif _is_image(part):
            n_img = len(pix)
            pix.append(to_image(part, where=f"prompt part {i}"))
            ids.extend(wrap[0])
            start = len(ids)
            ids.extend([image_id] * (per_side * per_side + cls))
            for j in range(max(0, -cls), per_side * per_side):
                visual.append(start + cls + j)
                patches.append((n_img, j // per_side, j % per_side))
            ids.extend(wrap[1])
        else:
            raise InterpError(f"part {i} of the prompt is a {type(part).__name__}: parts are text (str) or images "
                              "(PIL image, numpy array, pathlib.Path)")
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if n_ctx and len(ids) > n_ctx:
        raise InterpError(f"the prompt is {len(ids)} tokens (images included), longer than the model's context of {n_ctx}")
    if len(ids) == 0:
        raise InterpError("the prompt is empty: give some text or an image")
    return VisionInput(
        ids=torch.tensor([ids], dtype=torch.long),
        pixel_values=_pixels(pix, side, mean, std) if pix else None,
        visual=torch.tensor(visual, dtype=torch.long),
        patches=torch.tensor(patches, dtype=torch.long).reshape(-1, 3),
        grid=grid,
        family=_family(_hf_config(model)) if pix else "llava",
    )


def _family(cfg) -> str:
    kind = getattr(cfg, "model_type", "")
    return kind if kind in ("gemma3", "idefics3") else "llava"


def prompt_inputs(model, prompt, tokens_of: Callable[[object], torch.Tensor]) -> tuple[torch.Tensor, dict, dict[int, str]]:
    """What one forward on ``prompt`` needs: (ids [1, seq] on the model's device, the forward's keyword arguments,
    {position: patch label} of the visual tokens). A list of text and image parts is encoded (``encode``); any other
    prompt gives ``(tokens_of(prompt), {}, {})``, ``tokens_of`` the caller's own text path."""
    if is_parts(prompt):
        vin = encode(model, prompt)
        ids, kw = vin.on(model.cfg.device)
        return ids, kw, vin.labels()
    return tokens_of(prompt), {}, {}

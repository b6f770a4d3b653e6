"""Image prompts in the widgets: a prompt that holds images is a list of text and image parts
(``interp.models.vision``); a widget keeps the parts up to the last image fixed and lets its text box edit the text
after it. ``split_prompt`` makes that split, ``join_prompt`` puts the prompt back together, ``token_strip`` draws the
prompt's tokens with the visual ones named ``<img R,C>``."""

from __future__ import annotations

import html

from interp.errors import InterpError
from interp.models import str_tokens
from interp.models.vision import encode, has_images, is_vlm

__all__ = ["split_prompt", "join_prompt", "token_strip"]


def split_prompt(model, prompt, who: str) -> tuple[list, str | None]:
    """(the fixed parts of ``prompt`` up to its last image, the text after it) for an image prompt; ([], ``prompt``) for a
    text prompt or None. ``InterpError`` (naming ``who``) for images given to a text-only model, a list without an image,
    or a part after the last image that is not text."""
    if not isinstance(prompt, (list, tuple)):
        return [], prompt
    if not has_images(prompt):
        raise InterpError(f"{who}: a list prompt must hold an image (PIL image, array or Path) and text; give a string for "
                          "a text prompt")
    if not is_vlm(model):
        raise InterpError(f"{who}: this model is text-only and cannot take images; load a vision-language model (e.g. "
                          "load_model('scenes-vlm')) or give a text prompt")
    last = max(i for i, p in enumerate(prompt) if has_images([p]))
    rest = list(prompt[last + 1 :])
    if not all(isinstance(p, str) for p in rest):
        raise InterpError(f"{who}: the parts after the last image must be text (str)")
    return list(prompt[: last + 1]), "".join(rest)


def join_prompt(fixed: list, text: str) -> str | list:
    """The prompt of fixed parts ``fixed`` (``[]``: a text prompt) followed by ``text``."""
    if not fixed:
        return text
    return [*fixed, text] if text else list(fixed)


def token_strip(model, prompt) -> str:
    """HTML (escaped): the tokens of ``prompt`` (a string or a list of parts) in a row, visual tokens named ``<img R,C>``
    and shaded."""
    vin = encode(model, prompt if isinstance(prompt, (list, tuple)) else [prompt])
    labels = vin.labels()
    cells = []
    for i, t in enumerate(str_tokens(model, vin.ids)):
        shade = "background:#e8eefc;" if i in labels else ""
        cells.append(f"<span style='{shade}border:1px solid #ccc;padding:0 2px;margin:1px;font-family:monospace'>"
                     f"{html.escape(labels.get(i, t))}</span>")
    return "<div style='display:flex;flex-wrap:wrap'>" + "".join(cells) + "</div>"

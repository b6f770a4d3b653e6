"""Prompts for instruct (chat) models: a user message wrapped in the model's own chat template.

Instruct models such as SmolLM2-135M-Instruct were trained on conversations written in a fixed format (for SmolLM2,
ChatML: ``<|im_start|>user\\n...<|im_end|>\\n<|im_start|>assistant\\n``). Analysed as plain text, a question is
continued as if it were a document; wrapped in the template, the model answers it. ``chat_prompt`` returns the
templated string, which every analysis takes as its ``prompt`` (``interp report --chat`` does the same)::

    prompt = chat_prompt(model, "What is the capital of France?")
    logit_lens(model, prompt)
"""

from __future__ import annotations

from interp.errors import InterpError

__all__ = ["chat_prompt", "has_chat_template"]


def _tokenizer(model):
    """The tokenizer of a loaded bridge (``model.tokenizer``), or ``model`` itself when it is a tokenizer."""
    tok = getattr(model, "tokenizer", None)
    if tok is None and hasattr(model, "apply_chat_template"):
        tok = model
    if tok is None:
        raise InterpError(f"chat_prompt needs a loaded model with a tokenizer (or a tokenizer), got a {type(model).__name__}")
    return tok


def has_chat_template(model) -> bool:
    """Whether ``model``'s tokenizer (or the tokenizer ``model``) carries a chat template."""
    return bool(getattr(_tokenizer(model), "chat_template", None))


def chat_prompt(model, message: str, system: str | None = None, *, template: str | None = None,
                add_generation_prompt: bool = True) -> str:
    """``message`` (and an optional ``system`` message before it) as one user turn in ``model``'s chat template, ending
    with the assistant's turn opening (``add_generation_prompt``) so that the next token is the start of the answer.

    ``model``: a loaded model (its ``tokenizer``) or a Hugging Face tokenizer. ``template``: a Jinja chat template to use
    instead of the tokenizer's own (for a model converted without one). A leading BOS token in the rendered text is
    dropped, because the workbench's ``to_tokens`` prepends BOS itself: the analyses then see exactly the template's
    tokens, with no doubled BOS (for SmolLM2, whose BOS is ``<|im_start|>``, the string starts ``system\n...``).
    Returns the templated string.
    Raises ``InterpError`` when the model has no chat template and none is given, when a message is empty or not text,
    or when the template refuses the messages (some templates have no system role).
    """
    for name, text in (("the chat message", message), ("the system message", system)):
        if text is None and name == "the system message":
            continue
        if not isinstance(text, str):
            raise InterpError(f"{name} must be text (a str), got {type(text).__name__}")
        if not text.strip():
            raise InterpError(f"{name} is empty: give at least one word")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate: what Python makes of bytes that are not UTF-8
            raise InterpError(f"{name} is not valid text: character {e.start} cannot be encoded as UTF-8; give UTF-8 text") from None
    tok = _tokenizer(model)
    chosen = template if template is not None else getattr(tok, "chat_template", None)
    if not chosen:
        from interp.models.loading import model_name

        who = model_name(model) if hasattr(model, "cfg") else type(tok).__name__
        raise InterpError(f"model {who!r} has no chat template (its tokenizer carries none), so it is not an instruct model "
                          "the workbench can prompt as a chat: drop --chat / chat_prompt and give the prompt as plain text, "
                          "or pass the model's template as chat_prompt(..., template=...)")
    messages = ([{"role": "system", "content": system}] if system is not None else []) + [{"role": "user", "content": message}]
    try:
        text = tok.apply_chat_template(messages, chat_template=chosen, tokenize=False, add_generation_prompt=add_generation_prompt)
    except Exception as e:  # jinja2 raises TemplateError (or its subclasses) from the template's own checks
        first = (str(e).strip().splitlines() or [""])[0][:200]
        hint = " (this template may have no system role: drop system=)" if system is not None else ""
        raise InterpError(f"the chat template could not format the messages: {type(e).__name__}: {first}{hint}") from None
    if not isinstance(text, str):
        raise InterpError(f"the chat template returned a {type(text).__name__}, not text")
    bos = getattr(tok, "bos_token", None)
    prepends = bool(getattr(getattr(model, "cfg", None), "default_prepend_bos", True))
    if bos and prepends and text.startswith(bos):  # SmolLM2: BOS is <|im_start|>, the template's first token
        text = text[len(bos):]
    return text

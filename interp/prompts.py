"""The default prompt of the views, chosen by model in one place (toy vs real), and cut to fit its context.

The zoo models speak their own toy language: ``stories`` knows a few hundred lower-case words ("one day mia
..."), ``bb`` / ``bb-relu`` know 64 symbols with no space (a Bigram-Backcopy sequence), and random-weight test models
have a character vocabulary. A pretrained LM gets a fact-recall prompt instead, whose answer resolves late in the
layers (``" Berlin"``, p 0.95 on SmolLM2-135M).
"""

from __future__ import annotations

from interp.errors import InterpError

__all__ = ["TOY_PROMPT", "REAL_PROMPT", "BB_PROMPT", "SCENES_PROMPT", "default_prompt", "is_toy"]

TOY_PROMPT = "one day mia found a key in the garden . then mia took the"
REAL_PROMPT = "The capital of France is Paris, and the capital of Germany is"
BB_PROMPT = "XfXgFA2CFrudqzqQUlvSYE0GJ.cksy9jzjdt9YWH"
"""40 symbols of the Bigram-Backcopy task the ``bb`` models were trained on: ``BBTask.from_seed(0).sample(1, 41,
torch.Generator().manual_seed(0))`` without its BOS. Its triggers f, n, z are followed by a copy of the symbol before
them ("XfX", "zqz"...), so the sinks and the copy heads have something to do; 41 tokens with BOS in a 64-token context."""
SCENES_PROMPT = "the red circle is next to the blue square. a green"
"""For ``scenes-vlm``, whose small LM knows only descriptions of coloured shapes (``interp.zoo.scenes``)."""
_TOY_VOCAB = 1000
"""A vocabulary smaller than this is a toy one (the zoo's word tokenizer, the test models' characters)."""


def is_toy(model) -> bool:
    """True for a zoo model or any model whose vocabulary has fewer than 1,000 tokens."""
    from interp.zoo import bundled_name

    return bundled_name(model) is not None or int(getattr(model.cfg, "d_vocab", 0) or 0) < _TOY_VOCAB


def default_prompt(model, *, room: int = 0) -> str:
    """The prompt a view or report uses when none is given: ``BB_PROMPT`` for the ``bb`` models, ``TOY_PROMPT`` for
    other toy models, else ``REAL_PROMPT``; cut at a word (or, for a prompt without spaces, a character) so that its
    tokens (BOS included) plus ``room`` more (tokens a report generates after it) fit the model's context.

    Returns the prompt text. Raises ``InterpError`` when not even its first word leaves ``room`` tokens.
    """
    from interp.models import to_tokens
    from interp.zoo import bundled_name

    name = bundled_name(model) or ""
    prompt = (BB_PROMPT if name.startswith("bb") else SCENES_PROMPT if name == "scenes-vlm" else TOY_PROMPT if is_toy(model)
              else REAL_PROMPT)
    n_ctx = int(getattr(model.cfg, "n_ctx", 0) or 0)
    if not n_ctx:
        return prompt
    fits = lambda text: int(to_tokens(model, text).shape[-1]) + room <= n_ctx  # noqa: E731
    if fits(prompt):
        return prompt
    sep = " " if " " in prompt else ""
    pieces = prompt.split(" ") if sep else list(prompt)
    for n in range(len(pieces) - 1, 0, -1):
        if fits(sep.join(pieces[:n])):
            return sep.join(pieces[:n])
    raise InterpError(f"the model's context ({n_ctx} tokens) is too short for a default prompt that leaves {room} tokens "
                      "free: give a short prompt yourself")

"""The default prompt of the views, chosen by model in one place (toy vs real).

The zoo models speak their own toy language: ``stories`` knows a few hundred lower-case words ("one day mia
..."), and random-weight test models have a character vocabulary. A pretrained LM gets a fact-recall prompt
instead, whose answer resolves late in the layers (``" Berlin"``, p 0.95 on SmolLM2-135M).
"""

from __future__ import annotations

__all__ = ["TOY_PROMPT", "REAL_PROMPT", "default_prompt", "is_toy"]

TOY_PROMPT = "one day mia found a key in the garden . then mia took the"
REAL_PROMPT = "The capital of France is Paris, and the capital of Germany is"
_TOY_VOCAB = 1000
"""A vocabulary smaller than this is a toy one (the zoo's word tokenizer, the test models' characters)."""


def is_toy(model) -> bool:
    """True for a zoo model or any model whose vocabulary has fewer than 1,000 tokens."""
    from interp.zoo import bundled_name

    return bundled_name(model) is not None or int(getattr(model.cfg, "d_vocab", 0) or 0) < _TOY_VOCAB


def default_prompt(model) -> str:
    """The prompt a view or report uses when none is given: ``TOY_PROMPT`` for toy models, else ``REAL_PROMPT``."""
    return TOY_PROMPT if is_toy(model) else REAL_PROMPT

"""Ground truth of the ``stories`` corpus as data: bigram table, entropies, decided-token prompts, contrast sets.

Every function here is deterministic for its seed and needs only the tokenizer, never the model.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from interp.zoo import stories


def _token_docs(tok: PreTrainedTokenizerBase, docs: list[stories.Document]) -> list[list[int]]:
    return [tok(d.text).input_ids for d in docs]


def bigram_counts(tok: PreTrainedTokenizerBase, docs: list[stories.Document]) -> torch.Tensor:
    """[vocab, vocab] counts of (current token, next token) over ``docs`` (BOS included as a context)."""
    v = len(tok)
    counts = torch.zeros(v, v, dtype=torch.float64)
    for ids in _token_docs(tok, docs):
        t = torch.tensor(ids)
        counts.index_put_((t[:-1], t[1:]), torch.ones(len(ids) - 1, dtype=torch.float64), accumulate=True)
    return counts


def true_bigram_table(tok: PreTrainedTokenizerBase, seed: int = 0, n_docs: int = 20000) -> torch.Tensor:
    """[vocab, vocab] float32 P(next | current) of the corpus, counted on ``n_docs`` generated documents.

    Rows of contexts never seen are uniform. This is the ground-truth bigram the subnetwork issue targets.
    """
    world = stories.World.from_seed(seed)
    counts = bigram_counts(tok, stories.generate(world, n_docs, seed=seed + 1))
    rows = counts.sum(-1, keepdim=True)
    table = torch.where(rows > 0, counts / rows.clamp_min(1), torch.full_like(counts, 1.0 / counts.shape[1]))
    return table.float()


def corpus_entropies(
    tok: PreTrainedTokenizerBase, held: list[stories.Document], train: list[stories.Document]
) -> dict[str, float]:
    """Entropies in nats per predicted token on ``held``.

    ``achievable_entropy``: exact, from the generator's log-probabilities (the best any model can do).
    ``bigram_entropy``: H(next | current) of the bigram counted on ``train``.
    ``unigram_entropy``: H(next) of the unigram counted on ``train``.
    """
    held_ids = _token_docs(tok, held)
    n_pred = sum(len(ids) - 1 for ids in held_ids)
    achievable = -sum(d.logprob for d in held) / n_pred
    counts = bigram_counts(tok, train)
    joint = counts / counts.sum()
    ctx = joint.sum(-1, keepdim=True)
    cond = torch.where(joint > 0, joint / ctx.clamp_min(1e-300), torch.ones_like(joint))
    bigram_h = -(joint * torch.log(cond)).sum().item()
    uni = Counter(t for ids in _token_docs(tok, train) for t in ids[1:])
    total = sum(uni.values())
    unigram_h = -sum(c / total * math.log(c / total) for c in uni.values())
    return {"achievable_entropy": achievable, "bigram_entropy": bigram_h, "unigram_entropy": unigram_h}


@dataclass(frozen=True)
class DecidedPrompt:
    """A prompt whose next word is fully decided by one earlier word.

    ``prompt``: text ending just before the decided word; ``target``: that word (prefix it with a space
    to get its token); ``source_word``: index of the deciding word in ``prompt.split(' ')``; ``kind``:
    "repeat_name", "repeat_object" or "fact_subject".
    """

    prompt: str
    target: str
    source_word: int
    kind: str

    def source_token(self, tok: PreTrainedTokenizerBase) -> int:
        """Token position of the deciding word in ``tok(prompt).input_ids`` (BOS is position 0)."""
        words = self.prompt.split(" ")
        start = sum(len(w) + 1 for w in words[: self.source_word])
        enc = tok(self.prompt, return_offsets_mapping=True)
        for i, (a, b) in enumerate(enc["offset_mapping"]):
            if b > a and a <= start < b + 1 and self.prompt[start:].startswith(self.prompt[a:b].strip()):
                return i
        raise ValueError(f"word {self.source_word} of {self.prompt!r} not found in its tokens")


# Kinds the bundled ``stories`` model actually computes (greedy next token = the decided word, measured on 300
# held-out prompts): repeat_name 98/98, fact_subject 93/93, repeat_object 6/109. The object copy sits nine
# tokens back behind a repeated name and was not learned in 1000 steps, so it is not ground truth of the model.
LEARNED_KINDS = ("repeat_name", "fact_subject")


def decided_prompts(
    n: int, seed: int = 0, world_seed: int = 0, kinds: tuple[str, ...] = LEARNED_KINDS
) -> list[DecidedPrompt]:
    """``n`` held-out prompts (documents seeded apart from training) cut just before a decided word.

    ``kinds``: which dependencies to use (default: those the bundled model has learned, ``LEARNED_KINDS``;
    add "repeat_object" for the corpus's full ground truth).
    """
    world = stories.World.from_seed(world_seed)
    out: list[DecidedPrompt] = []
    docs = stories.generate(world, 4 * n + 50, seed=10_000 + seed)
    rng = random.Random(seed)
    for d in docs:
        deps = [dep for dep in d.dependencies if dep.kind in kinds]
        if not deps:
            continue
        dep = rng.choice(deps)
        out.append(DecidedPrompt(" ".join(d.words[: dep.target]), d.words[dep.target], dep.source, dep.kind))
        if len(out) == n:
            break
    return out


@dataclass(frozen=True)
class Contrast:
    """One steering example: ``prompt`` should be followed by ``preferred`` (the truth) not ``dispreferred``."""

    prompt: str
    preferred: str
    dispreferred: str
    entity: str


def contrast_set(split: str, world_seed: int = 0, cue: str | None = None) -> list[Contrast]:
    """Uncued (``cue=None``) or cued "<name> likes" prompts for the names of ``split`` ("train"/"heldout").

    ``preferred`` is the true food, ``dispreferred`` the lie food, both with a leading space. ``cue`` is a
    source word (e.g. "teacher") prepended as "the <cue> says".
    """
    world = stories.World.from_seed(world_seed)
    train, held = world.split_names()
    names = {"train": train, "heldout": held}[split]
    prefix = f"the {cue} says " if cue else ""
    return [Contrast(f"{prefix}{n} likes", " " + world.likes_true[n], " " + world.likes_lie[n], n) for n in names]

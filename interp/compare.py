"""Two models side by side on the same text: lens trajectories and sink maps.

``compare_models(model_a, model_b, text, target=None)`` runs the logit lens (``interp.lens.logit_lens``) and the
per-prompt extreme-token view (``interp.extreme.inspect_prompt``) of each model on ``text`` and keeps what a
comparison needs: the probability (and, with a target, the rank) of the tracked token at every [layer, pos], and each
model's sink map, the [layer, head] attention on the first token averaged over the other query positions (the
``sink_score`` of ``interp.extreme.scan`` on this one text).

When both models read the text as the same token ids (a shared tokenizer), ``same_tokens`` is True and the two grids
line up position by position. Otherwise each model keeps its own tokens (``tokens_a`` / ``tokens_b`` differ in
length or content) and the comparison is of the same text, read at each model's own positions; ``note`` says which.
``interp.viz.compare.comparison_figure`` draws the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.errors import InterpError
from interp.extreme.prompt import inspect_prompt
from interp.lens.logit import logit_lens
from interp.models import to_tokens
from interp.results import Result

__all__ = ["ModelComparison", "compare_models", "sink_map"]


@dataclass(frozen=True)
class ModelComparison(Result):
    """Lens trajectories and sink maps of two models (``a`` and ``b``) on one text."""

    models: list[str]
    "[2] the two models' names, a then b"
    text: str
    "the text both models read"
    same_tokens: bool
    "True when both models read the text as the same token ids: their [layer, pos] grids line up position by position"
    note: str
    "how the two were compared (position by position, or the same text with each model's own tokens)"
    tokens_a: list[str]
    "[pos_a] model a's token strings"
    tokens_b: list[str]
    "[pos_b] model b's token strings"
    layers_a: list[str]
    "[row_a] model a's lens rows (``{l}_pre`` ..., ``final_post``)"
    layers_b: list[str]
    "[row_b] model b's lens rows"
    tracked: str
    "what ``prob_*`` follows: 'target' (the target token) or 'top1' (each model's own final top-1 token at each position)"
    prob_a: torch.Tensor
    "[row_a, pos_a] probability of the tracked token at each lens row and position of model a"
    prob_b: torch.Tensor
    "[row_b, pos_b] the same for model b"
    sink_a: torch.Tensor
    "[layer_a, head_a] model a's attention on the first token, mean over query positions 1.. (its sink map)"
    sink_b: torch.Tensor
    "[layer_b, head_b] model b's sink map"
    target_a: str | None = None
    "the target as model a's token (each model resolves the target word in its own vocabulary)"
    target_b: str | None = None
    "the target as model b's token"
    target_note: str = ""
    "how each model resolved the target word (``LensResult.target_note`` of each, when not empty)"
    rank_a: torch.Tensor | None = None
    "[row_a, pos_a] rank of the target (1 = top) in model a, only with a target"
    rank_b: torch.Tensor | None = None
    "[row_b, pos_b] rank of the target in model b, only with a target"
    _shapes = {"models": "two", "tokens_a": "pos_a", "tokens_b": "pos_b", "layers_a": "row_a", "layers_b": "row_b",
               "prob_a": "row_a pos_a", "prob_b": "row_b pos_b", "rank_a": "row_a pos_a", "rank_b": "row_b pos_b",
               "sink_a": "layer_a head_a", "sink_b": "layer_b head_b"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.models) != 2:
            raise ValueError(f"ModelComparison.models must name two models, got {len(self.models)}")

    def trajectory(self, which: str, pos: int = -1) -> torch.Tensor:
        """[row] the tracked token's probability by lens row at position ``pos`` (default: the last) of model ``which``
        ("a" or "b"); with ``same_tokens`` False, ``pos`` indexes that model's own tokens."""
        if which not in ("a", "b"):
            raise InterpError(f"which must be 'a' or 'b', got {which!r}")
        return getattr(self, f"prob_{which}")[:, pos]

    def difference(self) -> torch.Tensor:
        """[row, pos] ``prob_b - prob_a``: only when the two line up (same tokens and the same number of lens rows);
        raises ``InterpError`` otherwise."""
        if not self.same_tokens or self.prob_a.shape != self.prob_b.shape:
            raise InterpError("the two models do not line up position by position and layer by layer "
                              f"({self.note}): compare their trajectories instead")
        return self.prob_b - self.prob_a


def sink_map(view) -> torch.Tensor:
    """[layer, head] attention on the first token averaged over query positions 1.. of a ``PromptView`` (its
    ``patterns`` [layer, head, q, k]); the one-text ``sink_score`` of ``interp.extreme.scan``."""
    if view.patterns.shape[-1] < 2:
        raise InterpError("the text is one token long for a model: a sink map needs at least one token after the first")
    return view.patterns[:, :, 1:, 0].double().mean(-1).float()


def _vocab(model) -> dict:
    tok = getattr(model, "tokenizer", None)
    return tok.get_vocab() if tok is not None and hasattr(tok, "get_vocab") else {}


def compare_models(model_a, model_b, text: str, *, target: str | int | None = None) -> ModelComparison:
    """Run both models on ``text`` and return a ``ModelComparison``: [row, pos] probability of the tracked token per
    lens row for each model (the ``target`` word, resolved in each model's vocabulary, or with no target each model's
    own final top-1 token at each position), the target's [row, pos] rank, and each model's [layer, head] sink map.

    ``text``: a string (token ids would mean different things to models with different tokenizers). A target id
    (an int) is only allowed when the two models share a vocabulary. Raises ``InterpError`` for an empty text, a
    text longer than either context, or a target neither model can take.
    """
    if not isinstance(text, str):
        raise InterpError(f"compare_models takes the text itself (each model tokenizes it), got {type(text).__name__}")
    same_vocab = _vocab(model_a) == _vocab(model_b) and int(model_a.cfg.d_vocab) == int(model_b.cfg.d_vocab)
    if isinstance(target, int) and not isinstance(target, bool) and not same_vocab:
        raise InterpError("a target id means different tokens to models with different vocabularies: give the target word")
    lens = [logit_lens(m, text, target=target, top_k=1) for m in (model_a, model_b)]
    views = [inspect_prompt(m, text) for m in (model_a, model_b)]
    ids = [to_tokens(m, text)[0].tolist() for m in (model_a, model_b)]
    same = same_vocab and ids[0] == ids[1]
    n_a, n_b = len(ids[0]), len(ids[1])
    if same:
        note = f"both models read the text as the same {n_a} tokens (shared tokenizer): compared position by position"
    else:
        why = "the same vocabulary but different special tokens" if same_vocab else "different tokenizers"
        note = (f"{why}: model a reads the text as {n_a} tokens, model b as {n_b}; compared on the same text, each with "
                "its own tokens (read the trajectories at each model's last position)")
    la, lb = lens
    tracked = "target" if target is not None else "top1"
    pick = (lambda r: r.target_prob) if target is not None else (lambda r: r.final_top1_prob)
    notes = "; ".join(f"{w}: {r.target_note}" for w, r in zip("ab", lens) if r.target_note)
    return ModelComparison(
        models=[la.model, lb.model], text=text, same_tokens=same, note=note, tokens_a=la.tokens, tokens_b=lb.tokens,
        layers_a=la.layers, layers_b=lb.layers, tracked=tracked, prob_a=pick(la), prob_b=pick(lb),
        sink_a=sink_map(views[0]), sink_b=sink_map(views[1]), target_a=la.target, target_b=lb.target, target_note=notes,
        rank_a=la.target_rank, rank_b=lb.target_rank,
    )

"""What an attribution explains: the objective, a number read off the model's logits at each target's position.

Registered once, for every method that takes one (``attribute(..., objective=...)``; each method's settings class
names its default, ``Settings.objective``):

* ``"prob"``: the target's probability; ``"logprob"``: its log-probability; ``"logit"``: its logit;
* ``Contrast(against)``: the target's log-probability (or ``kind``) minus that of another token at the same position,
  so a score says how much a token pushes the model towards the target *rather than* the alternative (``against`` a
  token id or the text of one token);
* ``Answer(against=None)``: the log-probability of the whole target, summed over its tokens (teacher-forced), one row
  however many tokens it has; with ``against`` (another answer's text or ids), minus that of the other answer after
  the same prompt: GrAInS's preferred-vs-dispreferred contrast, two rows (``interp.attribution.answers``). Only the
  methods whose settings say ``takes_answers`` (Integrated Gradients) compute it.

``TargetObjective`` evaluates one on rows that are copies of one sequence (what IG and the gradient methods run);
``objective_values`` on logits already gathered at the target positions (occlusion).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.errors import InterpError
from interp.models import text_ids
from interp.validate import check_int

__all__ = ["OBJECTIVES", "Contrast", "Answer", "TargetObjective", "objective_values", "check_objective", "objective_name",
           "token_ids", "vocabulary_ids"]

OBJECTIVES = ("logprob", "prob", "logit")


@dataclass(frozen=True)
class Contrast:
    """The target's ``kind`` ("logprob", default; "prob" or "logit") minus that of ``against`` (a token id, or text
    that is one token) at the same position."""

    against: int | str
    kind: str = "logprob"


@dataclass(frozen=True)
class Answer:
    """The whole target's summed log-probability (teacher-forced) as one row over the prompt; ``against`` (text or
    token ids of another answer): minus that of the other answer after the same prompt (GrAInS's contrast; two rows,
    IG over prompt + target and, negated, over prompt + against; with ``reduction="l2"`` or "abs_sum" row 1 is then a
    negated magnitude, so read the rows apart or use the signed sum)."""

    against: str | int | list[int] | None = None


def objective_values(logits: torch.Tensor, targets: torch.Tensor, kind: str, against: torch.Tensor | None = None) -> torch.Tensor:
    """[...] the objective from ``logits`` [..., vocab] (float32) for token ids ``targets`` [...] (and ``against``
    [...] for a contrast: the target's value minus the alternative's)."""
    ids = targets[..., None] if against is None else torch.stack([targets, against], -1)
    if kind == "logit":
        v = logits.gather(-1, ids)
    else:
        v = torch.log_softmax(logits, -1).gather(-1, ids)
        if kind == "prob":
            v = v.exp()
    return v[..., 0] if against is None else v[..., 0] - v[..., 1]


class TargetObjective:
    """Objective for rows that are copies of one sequence: row r scores target ``r % n`` at its position.

    Captum stacks the interpolation steps along the batch (step-major), so row ``r`` of any chunk is example
    ``r % n``. Calling it maps ``(logits [rows, pos or fewer, vocab], tokens [rows, pos])`` to the objective [rows]
    (``objective_values`` of ``kind``, against ``against`` [target] ids for a contrast) given the tokens before the
    target's position. ``keep`` is the number of trailing positions it reads, so a caller may compute only those
    logits (``logits_to_keep``); a logits tensor shorter than ``tokens`` is taken to hold their last positions.
    """

    def __init__(self, positions: list[int], targets: list[int], kind: str = "logprob", against: list[int] | None = None):
        if kind not in OBJECTIVES:
            raise InterpError(f"unknown objective {kind!r}; choose one of {', '.join(OBJECTIVES)}")
        self.kind = kind
        self.keep = max(positions) - min(positions) + 1
        self._pos = torch.tensor([p - 1 for p in positions])
        self._tgt = torch.tensor(targets)
        self._against = None if against is None else torch.tensor(against)

    def __call__(self, logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(logits.shape[0], device=logits.device)
        r = torch.arange(logits.shape[0]) % len(self._pos)
        shift = tokens.shape[1] - logits.shape[1]  # > 0 when only the last positions' logits were computed
        last = logits[rows, (self._pos[r] - shift).to(logits.device)].float()
        against = None if self._against is None else self._against[r].to(logits.device)
        return objective_values(last, self._tgt[r].to(logits.device), self.kind, against)


def check_objective(model, objective, method: str, default: str | None,
                    takes_answers: bool = False) -> tuple[str, int | list[int] | None]:
    """(kind, the contrasted token id or None) of ``objective`` for ``method`` (``default`` when None); for an
    ``Answer``, ("answer", the other answer's ids or None). Raises ``InterpError`` for an objective given to a method
    that takes none, an ``Answer`` to a method that cannot compute it (``takes_answers``), an unknown name, or a
    contrast token that is not one token of the vocabulary."""
    if default is None:
        if objective is not None:
            raise InterpError(f"attribution method {method!r} takes no objective (it scores by its own rule): leave "
                              "objective out")
        return "", None
    objective = default if objective is None else objective
    if isinstance(objective, Answer):
        if not takes_answers:
            raise InterpError(f"attribution method {method!r} cannot explain a whole answer (objective=Answer(...)): "
                              "use method='integrated_gradients', or a per-token objective such as 'logprob'")
        return "answer", None if objective.against is None else _answer_ids(model, objective.against)
    if isinstance(objective, Contrast):
        if objective.kind not in OBJECTIVES:
            raise InterpError(f"unknown contrast kind {objective.kind!r}; choose one of {', '.join(OBJECTIVES)}")
        return objective.kind, _token_id(model, objective.against)
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise InterpError(f"unknown objective {objective!r:.60}; choose one of {', '.join(OBJECTIVES)} or "
                          "Contrast(against)")
    return objective, None


def objective_name(kind: str, against: int | list[int] | None) -> str:
    """How a result records its objective: the kind, ``"<kind> contrast against token <id>"`` for a contrast,
    ``"answer logprob"`` or ``"answer logprob contrast against tokens [ids]"`` for an ``Answer``."""
    if kind == "answer":
        return "answer logprob" + ("" if against is None else f" contrast against tokens {against}")
    return kind if against is None else f"{kind} contrast against token {against}"


def _answer_ids(model, answer) -> list[int]:
    """Token ids of another answer: text (tokenised without BOS, as the target is), one id or a list of ids."""
    if isinstance(answer, str):
        ids = text_ids(model, answer, prepend_bos=False).tolist() if answer else []
        if not ids:
            raise InterpError("Answer(against=...) has no tokens: give the other answer's text, e.g. ' London'")
        return vocabulary_ids(model, ids, "Answer(against=...)")
    return token_ids(model, answer, "Answer(against=...)")


def token_ids(model, value: int | list[int] | torch.Tensor, what: str) -> list[int]:
    """[n] ids given as one id or a non-empty list, tuple or 1-D tensor of whole numbers, each in the model's
    vocabulary. ``what`` names the value in the ``InterpError`` raised otherwise (e.g. "target")."""
    if isinstance(value, torch.Tensor):
        if value.ndim > 1:
            raise InterpError(f"{what} token ids must be one id or a 1-D list, got a tensor of shape {list(value.shape)}")
        value = value.reshape(-1).tolist()
    if isinstance(value, (list, tuple)):
        if not value:
            raise InterpError(f"the {what} list is empty: give at least one token id")
        return vocabulary_ids(model, [check_int(f"each {what} token id", i) for i in value], what)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InterpError(f"{what} must be text, a token id or a list of token ids, got {type(value).__name__} "
                          f"{value!r:.60}")
    return vocabulary_ids(model, [int(value)], what)


def vocabulary_ids(model, ids: list[int], what: str) -> list[int]:
    """``ids`` unchanged when each is in 0..d_vocab-1; else ``InterpError`` naming ``what`` and the ids outside."""
    bad = [i for i in ids if not 0 <= i < model.cfg.d_vocab]
    if bad:
        raise InterpError(f"{what} token ids {bad} are not in the model's vocabulary (size {model.cfg.d_vocab})")
    return ids


def _token_id(model, token) -> int:
    if isinstance(token, str):
        ids = model.tokenizer(token, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise InterpError(f"Contrast against {token!r}: that text is {len(ids)} tokens; give one token (or its id)")
        return int(ids[0])
    if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token < model.cfg.d_vocab:
        raise InterpError(f"Contrast against {token!r:.40}: give a token id in 0..{model.cfg.d_vocab - 1} or one token's text")
    return int(token)

"""``TokenAttribution``: the one result type of every token-attribution method (saved as safetensors + JSON)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from interp.results import Result

__all__ = ["TokenAttribution"]


@dataclass(frozen=True)
class TokenAttribution(Result):
    """Scores of source tokens for one or several target tokens.

    ``source_tokens``: token strings of the sequence the targets are predicted from, length ``source``
    (BOS included). For a generated or multi-token target, this is the prompt plus every target token but
    the last, so target ``i`` sits at position ``target_positions[i]`` of ``source_tokens + [last target]``.
    ``target_tokens``: the attributed token strings, length ``target``.
    ``scores``: [target, source] float32. Row ``i`` scores the sources before target ``i``; entries at
    source positions ``>= target_positions[i]`` (the target itself and later tokens) are NaN.
    ``method`` / ``options``: the method name and the options it ran with (JSON-able).
    ``target_positions``: position of each target in the full sequence (default: the last ``target`` ones).
    ``target_ids``: token ids of the targets; ``source_ids``: token ids of the sources (both optional; the
    faithfulness metrics need them).
    ``completeness_error``: [target] relative IG completeness error, or None for other methods.
    ``marks``: named lists of source positions for display, e.g. ``{"top_positive": [3, 7], "top_negative": [5]}``
    (steering fills these for the tokens it selected); ``info``: method diagnostics (forward passes, steps,
    convergence, seeds).
    """

    model: str
    source_tokens: list[str]
    target_tokens: list[str]
    scores: torch.Tensor
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    target_positions: list[int] | None = None
    target_ids: list[int] | None = None
    source_ids: list[int] | None = None
    completeness_error: torch.Tensor | None = None
    marks: dict[str, list[int]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    _shapes = {"scores": "target source", "completeness_error": "target"}

    def __post_init__(self) -> None:
        super().__post_init__()
        n_t, n_s = self.scores.shape
        if len(self.source_tokens) != n_s or len(self.target_tokens) != n_t:
            raise ValueError(
                f"TokenAttribution: scores are [{n_t}, {n_s}] but there are {len(self.target_tokens)} target and "
                f"{len(self.source_tokens)} source tokens"
            )
        if self.scores.dtype != torch.float32:
            object.__setattr__(self, "scores", self.scores.float())
        if self.target_positions is None:
            object.__setattr__(self, "target_positions", [n_s - n_t + 1 + i for i in range(n_t)])
        pos = list(self.target_positions)
        if len(pos) != n_t or any(not 0 < p <= n_s for p in pos):
            raise ValueError(f"TokenAttribution: target_positions {pos} must be {n_t} positions in 1..{n_s}")
        if self.source_ids is not None and len(self.source_ids) != n_s:
            raise ValueError(f"TokenAttribution: {len(self.source_ids)} source ids for {n_s} source tokens")
        if self.target_ids is not None and len(self.target_ids) != n_t:
            raise ValueError(f"TokenAttribution: {len(self.target_ids)} target ids for {n_t} target tokens")
        for name, idx in self.marks.items():
            if any(not 0 <= int(i) < n_s for i in idx):
                raise ValueError(f"TokenAttribution: mark {name!r} has positions outside 0..{n_s - 1}")

    # ---- access --------------------------------------------------------------------------------
    @property
    def n_targets(self) -> int:
        return self.scores.shape[0]

    def row(self, target: int = -1) -> torch.Tensor:
        """[visible sources] scores of one target over the tokens before it (no NaN)."""
        i = range(self.n_targets)[target]
        return self.scores[i, : self.target_positions[i]]

    def top(self, k: int = 1, target: int = -1, *, sign: int = 1) -> list[int]:
        """Source positions of the ``k`` largest (``sign=1``) or most negative (``sign=-1``) scores of a target."""
        r = self.row(target) * (1 if sign >= 0 else -1)
        return r.topk(min(k, r.numel())).indices.tolist()

    def sequence(self) -> torch.Tensor:
        """[source + 1] token ids: the sources followed by the last target (needs ``source_ids`` and ``target_ids``)."""
        if self.source_ids is None or self.target_ids is None:
            raise ValueError("this TokenAttribution has no source_ids/target_ids")
        return torch.tensor([*self.source_ids, self.target_ids[-1]], dtype=torch.long)

    def with_marks(self, **marks: list[int]) -> TokenAttribution:
        """A copy with ``marks`` added (or replaced)."""
        return dataclasses.replace(self, marks={**self.marks, **{k: [int(i) for i in v] for k, v in marks.items()}})

    def summary(self) -> dict[str, str]:
        out = super().summary()
        r = self.row(-1)
        tops = ", ".join(f"{self.source_tokens[i]!r} {r[i]:.3g}" for i in self.top(3))
        out["top sources (last target)"] = tops
        if self.completeness_error is not None:
            worst = float(self.completeness_error.max())
            out["completeness error (max)"] = f"{worst:.2%}" if math.isfinite(worst) else str(worst)
        return out

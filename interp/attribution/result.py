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

    For a generated or multi-token target, the sources are the prompt plus every target token but the last, so
    target ``i`` sits at position ``target_positions[i]`` of ``source_tokens + [last target]``.
    """

    model: str
    "name of the attributed model"
    source_tokens: list[str]
    "[source] token strings of the sequence the targets are predicted from (BOS included)"
    target_tokens: list[str]
    "[target] the attributed token strings"
    scores: torch.Tensor
    """[target, source] float32: row ``i`` scores the sources before target ``i``; entries at source positions
    ``>= target_positions[i]`` (the target itself and later tokens) are NaN"""
    method: str
    "the method name"
    options: dict[str, Any] = field(default_factory=dict)
    "the options the method ran with (JSON-able)"
    target_positions: list[int] | None = None
    "[target] position of each target in the full sequence, in 1..source (default: the last ``target`` ones)"
    target_ids: list[int] | None = None
    "[target] token ids of the targets (optional; the faithfulness metrics need them)"
    source_ids: list[int] | None = None
    "[source] token ids of the sources (optional; the faithfulness metrics need them)"
    completeness_error: torch.Tensor | None = None
    "[target] relative IG completeness error of the signed sums (whatever ``reduction``), or None for other methods"
    marks: dict[str, list[int]] = field(default_factory=dict)
    """named lists of source positions for display, e.g. ``{"top_positive": [3, 7], "top_negative": [5]}``
    (steering fills these for the tokens it selected)"""
    info: dict[str, Any] = field(default_factory=dict)
    "method diagnostics (forward passes, steps, convergence, seeds)"
    reduction: str | None = None
    """how per-dimension scores became one per token: "sum" (signed sum over d_model), "l2" (L2 norm) or "abs_sum"
    (``interp.attribution.reduction``); None for a method that scores whole tokens (occlusion, ReAGent, ...)"""
    _later = ("reduction",)  # a file written before it was recorded loads with None
    _shapes = {"scores": "target source", "completeness_error": "target", "source_tokens": "source", "target_tokens": "target",
               "target_positions": "target", "target_ids": "target", "source_ids": "source"}

    def __post_init__(self) -> None:
        if self.target_positions is None and isinstance(self.scores, torch.Tensor) and self.scores.ndim == 2:
            n_t, n_s = self.scores.shape
            object.__setattr__(self, "target_positions", [n_s - n_t + 1 + i for i in range(n_t)])
        super().__post_init__()
        if self.scores.dtype != torch.float32:
            object.__setattr__(self, "scores", self.scores.float())
        n_s = self.scores.shape[1]
        if any(not 0 < p <= n_s for p in self.target_positions):
            raise ValueError(f"TokenAttribution: target_positions {list(self.target_positions)} must be positions in 1..{n_s}")
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

    def patch_scores(self, target: int = -1) -> torch.Tensor:
        """[image, rows, cols] scores of the visual tokens of an image prompt for one target, laid out by patch (NaN
        for a patch without a visual token before the target); ``ValueError`` for a result without images (its
        ``info`` has no "visual" entry, as for text prompts and files written before images were attributed)."""
        vis = self.info.get("visual")
        if not vis or not vis.get("positions"):
            raise ValueError("this TokenAttribution has no visual tokens (a text prompt, or no image in the prompt)")
        patches = torch.tensor(vis["patches"], dtype=torch.long).reshape(-1, 3)
        rows, cols = (int(g) for g in vis["grid"])
        grid = torch.full((int(patches[:, 0].max()) + 1, rows, cols), math.nan)
        r = self.scores[range(self.n_targets)[target]]
        for p, (i, y, x) in zip(vis["positions"], patches.tolist()):
            grid[i, y, x] = r[p]
        return grid

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
        if self.info.get("completeness_note"):  # GrAInS: the error in words, and why it is acceptable
            out["completeness"] = str(self.info["completeness_note"])
        return out

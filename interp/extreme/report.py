"""What a scan for extreme tokens returns: the ``Thresholds`` that name heads, layers and activations, the
``ExtremeTokenReport`` of corpus statistics, and ``is_massive``, the definition of a massive activation.

The statistics themselves are defined, and computed, in ``interp.extreme.scan``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from interp.results import Result

__all__ = ["Thresholds", "ExtremeTokenReport", "is_massive"]


@dataclass(frozen=True)
class Thresholds:
    """Thresholds that turn statistics into named heads/layers/activations (all stored in the report)."""

    sink: float = 0.3
    "a sink head has sink score >= sink ..."
    sink_over_uniform: float = 3.0
    "... and >= sink_over_uniform x the uniform-attention baseline (guards very short texts)"
    epsilon: float = 0.3
    "Gu et al. epsilon for alpha_0"
    gu_min_len: int = 16
    "texts shorter than this do not enter the Gu share (uniform attention alone gives alpha_0 = H_T/T > 0.3 for T < 10)"
    drain: float = 0.5
    "a drain head has drain_ratio <= drain (first-token value norm at most half the median)"
    peak: float = 2.0
    "a peak layer has resid_first / resid_other_median >= peak"
    massive_abs: float = 100.0
    "massive activation: |a| > massive_abs ..."
    massive_ratio: float = 1000.0
    "... and |a| > massive_ratio x median |a| of the layer's hidden state"
    secondary: float = 0.3
    "another token counts as a sink of a (text, layer, head) when its alpha_k exceeds this"
    min_queries: int = 4
    "keys seen by fewer queries are not considered as other sinks"


@dataclass(frozen=True)
class ExtremeTokenReport(Result):
    """Corpus statistics of extreme tokens (see ``interp.extreme.scan`` for the definitions)."""

    model: str
    "name of the model"
    n_texts: int
    "texts scanned"
    n_tokens: int
    "tokens scanned (all texts)"
    sink_score: torch.Tensor
    "[layer, head] mean attention on the first token from queries t >= 1"
    gu_share: torch.Tensor
    "[layer, head] share of texts (of at least gu_min_len tokens; NaN if none) with alpha_0 > epsilon"
    value_first: torch.Tensor
    "[layer, head] mean ||W_O v_0||"
    value_other: torch.Tensor
    "[layer, head] mean over texts of the median ||W_O v_i||, i >= 1"
    resid_first: torch.Tensor
    "[layer] mean ||resid_post_0||"
    resid_other_max: torch.Tensor
    "[layer] mean over texts of max_{i>=1} ||resid_post_i||"
    resid_other_median: torch.Tensor
    "[layer] mean over texts of median_{i>=1} ||resid_post_i||"
    top_abs: torch.Tensor
    "[layer] largest |activation| of resid_post seen"
    median_abs: torch.Tensor
    "[layer] mean over texts of the median |activation| of resid_post"
    uniform_sink: float
    "sink score that uniform causal attention would give on the same queries"
    massive: list = field(default_factory=list)
    "massive activations: [layer, text, position, dimension, value, token], largest |value| first (capped)"
    n_massive: int = 0
    "how many massive activations were found (before the cap)"
    other_sinks: list = field(default_factory=list)
    "[token, count, share of (text, layer, head), mean alpha_k], most frequent first"
    thresholds: dict = field(default_factory=dict)
    "the ``Thresholds`` that named the heads, layers and activations, as a dict"
    _shapes = {
        "sink_score": "layer head", "gu_share": "layer head", "value_first": "layer head", "value_other": "layer head",
        "resid_first": "layer", "resid_other_max": "layer", "resid_other_median": "layer", "top_abs": "layer", "median_abs": "layer",
    }

    # ---- derived quantities -----------------------------------------------------------------
    @property
    def drain_ratio(self) -> torch.Tensor:
        """[layer, head] value_first / value_other (below 1: the first token's value is small)."""
        return self.value_first / self.value_other.clamp_min(1e-12)

    @property
    def peak_ratio(self) -> torch.Tensor:
        """[layer] resid_first / resid_other_median."""
        return self.resid_first / self.resid_other_median.clamp_min(1e-12)

    def _t(self) -> Thresholds:
        return Thresholds(**self.thresholds)

    @property
    def sink_heads(self) -> list[tuple[int, int]]:
        """(layer, head) pairs whose sink score passes both sink thresholds."""
        t = self._t()
        hit = (self.sink_score >= t.sink) & (self.sink_score >= t.sink_over_uniform * self.uniform_sink)
        return [tuple(x) for x in hit.nonzero().tolist()]

    @property
    def drain_heads(self) -> list[tuple[int, int]]:
        """(layer, head) pairs with drain_ratio <= thresholds.drain."""
        return [tuple(x) for x in (self.drain_ratio <= self._t().drain).nonzero().tolist()]

    @property
    def peak_layers(self) -> list[int]:
        """Layers whose first-token residual norm is >= thresholds.peak x the median of the others."""
        return (self.peak_ratio >= self._t().peak).nonzero().flatten().tolist()

    def summary(self) -> dict[str, str]:
        t = self._t()
        return {
            "model": self.model, "texts": f"{self.n_texts} ({self.n_tokens} tokens)",
            "sink heads": f"{self.sink_heads} (score >= {t.sink} and >= {t.sink_over_uniform} x uniform {self.uniform_sink:.3f})",
            "drain heads": f"{self.drain_heads} (value ratio <= {t.drain})",
            "peak layers": f"{self.peak_layers} (residual ratio >= {t.peak})",
            "massive activations": f"{self.n_massive} (|a| > {t.massive_abs} and > {t.massive_ratio} x median)",
            "other sink tokens": ", ".join(f"{s[0]!r}×{s[1]}" for s in self.other_sinks[:5]) or "none",
        }


def is_massive(a: torch.Tensor, median: torch.Tensor | float, t: Thresholds) -> torch.Tensor:
    """Bool mask (shape of ``a``): ``|a| > t.massive_abs`` and ``|a| > t.massive_ratio * median`` (Sun et al. 2024)."""
    a = a.abs()
    return (a > t.massive_abs) & (a > t.massive_ratio * torch.as_tensor(median, dtype=a.dtype, device=a.device))

"""Faithfulness of a token attribution: soft and hard sufficiency / comprehensiveness (ReAGent paper, spec §2).

For a target with original next-token distribution ``p`` and importances ``q`` [T] mapped to keep
probabilities in [0, 1]:

- *soft sufficiency*: each element of token ``i``'s embedding is kept with probability ``q_i`` (zeroed
  otherwise; position embeddings untouched) and ``Soft-S = 1 - D(p_masked, p)``; *soft comprehensiveness*
  keeps with ``1 - q_i`` and ``Soft-C = D(p_masked, p)``, where ``D(p, r) = sum_v (sqrt p_v - sqrt r_v)^2 / sqrt 2``.
  With ``S0 = 1 - D(p_all_zeroed, p)``: ``Soft-NS = max(0, Soft-S - S0) / (1 - S0)``, ``Soft-NC = Soft-C / (1 - S0)``.
- *hard* versions at fractions ``k`` of the tokens: keep only the top-k% tokens (sufficiency ``1 - D``) or zero
  them (comprehensiveness ``D``), averaged over the fractions.

Every metric is averaged over ``n_samples`` seeds and computed for the same number of random importances
(``softmax(U[0,1))``, the paper's random baseline); ``*_vs_random`` is ``ln(metric / random metric)``
(> 0: better than random), except for hard sufficiency: ``1 - D`` is negative whenever ``D > 1`` (the paper's
``D`` reaches sqrt 2, and keeping 10% of a real LM's prompt often goes that far), so its ratio compares the
distances, ``ln(D_random / D)``. Higher is better for all of them. ``faithfulness`` returns a ``Faithfulness`` result,
read like the dict it used to be (``f["soft_nc_vs_random"]``, ``f.to_dict()``).

Zeroing the first position's embedding moves a real LM's prediction far whatever decides it (the BOS token is the
attention sink every row leans on), so these metrics reward ranking BOS first; ``keep_first=True`` leaves it out (never
masked, ranked or drawn for), judging a method on the other tokens (bench/results/attribution_faith.md has both).

Keep probabilities (``normalize``): "minmax" (default) rescales each row to [0, 1] so every method is judged
on its ranking and relative gaps with the same mass; "sum" clips negatives and divides by the sum (the
paper feeds ReAGent's softmax scores as they are, so each token is kept with probability about 1/T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from interp.attribution.forward import trailing_logits
from interp.attribution.ig import embed_hook_name
from interp.attribution.result import TokenAttribution
from interp.errors import InterpError
from interp.models import model_device
from interp.results import Result

__all__ = ["Faithfulness", "faithfulness", "keep_probabilities", "hellinger_like", "METRICS"]

METRICS = ("soft_ns", "soft_nc", "hard_sufficiency", "hard_comprehensiveness")


def _log_ratio(a: float, b: float) -> float:
    """ln(a / b), with +-inf when only one of them is positive and 0 when neither is."""
    return math.log(a / b) if a > 0 and b > 0 else (math.inf if a > 0 else -math.inf if b > 0 else 0.0)


@dataclass(frozen=True)
class Faithfulness(Result):
    """Faithfulness metrics of one attribution (module docstring), per target and averaged over the targets.

    Index it like a dict: ``f["soft_nc"]`` (mean over targets), ``f["soft_nc_random"]``, ``f["soft_nc_vs_random"]``
    (``ln(mean / mean random)``), ``f["s0"]``, ``f["per_target"]`` (one dict per target); ``to_dict()`` gives them all.
    """

    model: str
    "name of the model the attribution was measured on"
    method: str
    "the attribution method"
    target_tokens: list[str]
    "[target] the attributed target tokens"
    metrics: list[str]
    "[metric] the columns of ``values``: every metric of ``METRICS``, its ``*_random`` and ``s0``"
    values: torch.Tensor
    "[target, metric] float64 metrics of each target (averaged over ``n_samples`` seeds)"
    options: dict[str, Any] = field(default_factory=dict)
    "how they were measured: n_samples, fractions, normalize, seed, keep_first"
    _shapes = {"values": "target metric", "target_tokens": "target", "metrics": "metric"}

    def to_dict(self) -> dict[str, Any]:
        """{metric: mean over targets} for every column, ``*_vs_random`` for each of ``METRICS``, and ``per_target``:
        a list of {metric: value} per target."""
        rows = [dict(zip(self.metrics, r)) for r in self.values.tolist()]
        out: dict[str, Any] = {k: sum(r[k] for r in rows) / len(rows) for k in self.metrics}
        for m in METRICS:
            if m in out and f"{m}_random" in out:
                if m == "hard_sufficiency":  # 1 - D with D up to sqrt 2: compare the distances, which stay positive
                    out[f"{m}_vs_random"] = _log_ratio(1 - out[f"{m}_random"], 1 - out[m])
                else:
                    out[f"{m}_vs_random"] = _log_ratio(out[m], out[f"{m}_random"])
        out["per_target"] = rows
        return out

    def keys(self) -> list[str]:
        """The names ``f[name]`` accepts."""
        return list(self.to_dict())

    def __contains__(self, name: object) -> bool:
        return name in self.to_dict()

    def __getitem__(self, name: str) -> Any:
        d = self.to_dict()
        if name not in d:
            raise KeyError(f"no faithfulness metric {name!r}; have {', '.join(d)}")
        return d[name]

    def summary(self) -> dict[str, str]:
        d = self.to_dict()
        out = {"model": self.model, "method": self.method, "targets": ", ".join(map(repr, self.target_tokens))}
        out.update({m: f"{d[m]:.4f} (random {d[m + '_random']:.4f}, ln ratio {d[m + '_vs_random']:+.3f})" for m in METRICS})
        return out


def hellinger_like(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """[...] sum_v (sqrt p_v - sqrt q_v)^2 / sqrt(2) over the last dimension (the ReAGent evaluation distance)."""
    return ((p.clamp_min(0).sqrt() - q.clamp_min(0).sqrt()) ** 2).sum(-1) / math.sqrt(2)


def keep_probabilities(scores: torch.Tensor, normalize: str = "minmax") -> torch.Tensor:
    """[..., T] importances -> keep probabilities in [0, 1] ("minmax" or "sum"; see the module docstring)."""
    s = scores.double()
    if normalize == "minmax":
        lo, hi = s.amin(-1, keepdim=True), s.amax(-1, keepdim=True)
        return torch.where(hi > lo, (s - lo) / (hi - lo).clamp_min(1e-300), torch.full_like(s, 0.5))
    if normalize == "sum":
        s = s.clamp_min(0)
        tot = s.sum(-1, keepdim=True)
        return torch.where(tot > 0, s / tot.clamp_min(1e-300), torch.full_like(s, 1.0 / s.shape[-1]))
    raise InterpError(f"normalize must be 'minmax' or 'sum', got {normalize!r}")


def _top_mask(scores: torch.Tensor, frac: float) -> torch.Tensor:
    """[..., T] bool: the top ceil(frac*T) positions (at least 1) of each row."""
    k = max(1, min(scores.shape[-1], math.ceil(frac * scores.shape[-1])))
    idx = scores.topk(k, dim=-1).indices
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, idx, True)


@torch.no_grad()
def _masked_probs(model, x: torch.Tensor, masks: torch.Tensor, max_rows: int) -> torch.Tensor:
    """[rows, vocab] next-token probabilities with the token embeddings multiplied by ``masks`` [rows, T, d or 1]."""
    hook = embed_hook_name(model)
    out = []
    for i in range(0, masks.shape[0], max_rows):
        m = masks[i : i + max_rows]
        rows = x[None].expand(m.shape[0], -1)
        logits = trailing_logits(model, rows, 1, [(hook, lambda act, hook, m=m: act * m.to(act.dtype))])
        out.append(torch.softmax(logits[:, -1].float(), -1))
    return torch.cat(out)


def _one_target(model, x: torch.Tensor, scores: torch.Tensor, *, n_samples: int, fractions, normalize: str,
                seed: int, max_rows: int, keep_first: bool) -> dict[str, float]:
    device = model_device(model)
    x = x.to(device)
    d = model.cfg.d_model
    lo = 1 if keep_first and x.shape[0] > 1 else 0  # positions before lo are never masked, ranked or drawn for
    scores, T = scores[lo:], x.shape[0] - lo
    g = torch.Generator().manual_seed(seed)
    rand_scores = torch.softmax(torch.rand(n_samples, T, generator=g, dtype=torch.float64), -1)
    q_fa = keep_probabilities(scores[None], normalize).expand(n_samples, -1)
    q_rand = keep_probabilities(rand_scores, normalize)
    q = torch.cat([q_fa, q_rand])  # [2S, T]
    u_s = torch.rand(2 * n_samples, T, d, generator=g, dtype=torch.float64)
    u_c = torch.rand(2 * n_samples, T, d, generator=g, dtype=torch.float64)
    soft = torch.cat([(u_s < q[..., None]), (u_c < 1 - q[..., None])]).float()  # [4S, T, d]
    hard = []
    for f in fractions:
        top = torch.cat([_top_mask(scores[None], f), _top_mask(rand_scores, f)])  # [1 + S, T]
        hard += [top, ~top]
    hard = torch.cat(hard).float()[..., None]  # [2F(1+S), T, 1]
    ones, zeros = torch.ones(1, T, 1), torch.zeros(1, T, 1)
    masks = torch.cat([ones.expand(-1, -1, d), zeros.expand(-1, -1, d), soft, hard.expand(-1, -1, d)])
    if lo:
        masks = torch.cat([torch.ones(masks.shape[0], lo, d), masks], 1)
    probs = _masked_probs(model, x, masks.to(device), max_rows).double().cpu()
    p, p0 = probs[0], probs[1]
    dist = hellinger_like(probs[2:], p[None])
    S = n_samples
    s0 = 1 - float(hellinger_like(p0, p))
    norm = max(1 - s0, 1e-12)
    soft_d = dist[: 4 * S]
    suff_fa, suff_rand = 1 - soft_d[:S], 1 - soft_d[S : 2 * S]
    comp_fa, comp_rand = soft_d[2 * S : 3 * S], soft_d[3 * S : 4 * S]
    hard_d = dist[4 * S :].reshape(len(fractions), 2, 1 + S)
    out = {
        "soft_ns": float(((suff_fa - s0).clamp_min(0) / norm).mean()),
        "soft_nc": float((comp_fa / norm).mean()),
        "soft_ns_random": float(((suff_rand - s0).clamp_min(0) / norm).mean()),
        "soft_nc_random": float((comp_rand / norm).mean()),
        "hard_sufficiency": float((1 - hard_d[:, 0, 0]).mean()),
        "hard_comprehensiveness": float(hard_d[:, 1, 0].mean()),
        "hard_sufficiency_random": float((1 - hard_d[:, 0, 1:]).mean()),
        "hard_comprehensiveness_random": float(hard_d[:, 1, 1:].mean()),
        "s0": s0,
    }
    return out


def faithfulness(model, attribution: TokenAttribution, *, n_samples: int = 10, fractions=(0.1, 0.2, 0.3, 0.5),
                 normalize: str = "minmax", seed: int = 0, max_rows: int = 128, keep_first: bool = False) -> Faithfulness:
    """Faithfulness metrics of ``attribution`` (module docstring), per target and averaged over ``n_samples`` seeds.

    Returns a ``Faithfulness`` result: ``f["soft_ns"]``, ``f["soft_nc"]``, ``f["hard_sufficiency"]``,
    ``f["hard_comprehensiveness"]`` (means over the targets), each ``*_random`` (the same metric for random
    importances) and ``*_vs_random`` (``ln(metric / random)``); ``values`` [target, metric] holds each target's.
    ``keep_first``: the first position (the BOS attention sink, when the prompt starts with one) is never masked and
    takes no part in the ranking, the fractions or the random importances: a method is then judged on the other
    tokens only, so ranking the sink first (which zeroing its embedding rewards) earns nothing. ``max_rows``: masked
    sequences per forward pass. The sequence is the attribution's ``source_ids`` followed by its last target id.
    """
    sequence = _sequence(attribution)
    per = []
    for i, p in enumerate(attribution.target_positions):
        per.append(_one_target(model, sequence[:p], attribution.row(i), n_samples=n_samples, fractions=tuple(fractions),
                               normalize=normalize, seed=seed + 1009 * i, max_rows=max_rows, keep_first=keep_first))
    metrics = list(per[0])
    values = torch.tensor([[d[k] for k in metrics] for d in per], dtype=torch.float64)
    options = {"n_samples": n_samples, "fractions": [float(f) for f in fractions], "normalize": normalize, "seed": seed,
               "keep_first": keep_first}
    return Faithfulness(attribution.model, attribution.method, list(attribution.target_tokens), metrics, values, options)


def _sequence(attribution: TokenAttribution) -> torch.Tensor:
    """[L] ids of the attributed sequence (sources then the last target)."""
    try:
        return attribution.sequence()
    except ValueError as e:
        raise InterpError("this attribution has no token ids: give it its ids, dataclasses.replace(attribution, "
                          "source_ids=[...], target_ids=[...]), before measuring its faithfulness") from e

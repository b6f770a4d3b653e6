"""Reference (non-streaming) implementation of ``scan``: cache every activation, then compute.

This is what a user would write with ``run_with_cache``; it keeps all patterns, values and residuals of
the whole corpus in memory, so its memory grows with the number of texts. It is used by the tests (the
streaming scan must agree with it) and by ``bench/extreme.py`` (the peer approach).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict

import torch

from interp.extreme.inputs import Texts, encode
from interp.extreme.report import ExtremeTokenReport, Thresholds, is_massive
from interp.extreme.scan import head_w_o
from interp.models import model_name


@torch.no_grad()
def naive_cache(model, texts: Texts, max_len: int | None = None) -> tuple[list[torch.Tensor], list[dict]]:
    """(token rows, one full activation cache per text) for every text, unpadded, one text per forward pass."""
    rows = encode(model, texts, max_len)
    names = lambda n: n.endswith(("hook_pattern", "attn.hook_v", "hook_resid_post"))  # noqa: E731
    caches = []
    for r in rows:
        _, cache = model.run_with_cache(r[None].to(model.cfg.device), names_filter=names)
        caches.append({k: v[0].cpu() for k, v in cache.items()})
    return rows, caches


def naive_scan(model, texts: Texts, *, max_len: int | None = None, thresholds: Thresholds | None = None) -> ExtremeTokenReport:
    """Same statistics as ``interp.extreme.scan`` from full caches, with plain loops (slow; for checking)."""
    t = thresholds or Thresholds()
    rows, caches = naive_cache(model, texts, max_len)
    return naive_stats(model, rows, caches, t)


def naive_stats(model, rows: list[torch.Tensor], caches: list[dict], t: Thresholds) -> ExtremeTokenReport:
    """The ``ExtremeTokenReport`` statistics of full caches (``naive_cache``'s output; also image prompts' caches)."""
    n_l, n_h = model.cfg.n_layers, model.cfg.n_heads
    n_kv = getattr(model.cfg, "n_key_value_heads", None) or n_h
    sink, gu, vf, vo = (torch.zeros(n_l, n_h, dtype=torch.float64) for _ in range(4))
    rf, rmax, rmed, top, med_abs = (torch.zeros(n_l, dtype=torch.float64) for _ in range(5))
    n_q, uni = 0, 0.0
    massive = []
    for ti, (ids, cache) in enumerate(zip(rows, caches)):
        n = ids.numel()
        n_q += n - 1
        uni += sum(1.0 / (q + 1) for q in range(1, n))
        for layer in range(n_l):
            pat = cache[f"blocks.{layer}.attn.hook_pattern"].double()  # [h, q, k]
            sink[layer] += pat[:, 1:, 0].sum(-1)
            gu[layer] += ((pat[:, :, 0].mean(-1) > t.epsilon) & (n >= t.gu_min_len)).double()
            v = cache[f"blocks.{layer}.attn.hook_v"].double()  # [pos, kv, d_head]
            w_o = head_w_o(model, layer).double().cpu()  # [h, d_head, d_model]
            for h in range(n_h):
                norms = (v[:, h // (n_h // n_kv)] @ w_o[h]).norm(dim=-1).tolist()  # [pos]
                vf[layer, h] += norms[0]
                vo[layer, h] += _lower_median(norms[1:])
            x = cache[f"blocks.{layer}.hook_resid_post"].double()  # [pos, d]
            norms = x.norm(dim=-1).tolist()
            rf[layer] += norms[0]
            rmax[layer] += max(norms[1:])
            rmed[layer] += _lower_median(norms[1:])
            flat = sorted(x.abs().flatten().tolist())
            med = _lower_median(flat)
            med_abs[layer] += med
            top[layer] = max(top[layer], flat[-1])
            for p, d in is_massive(x, med, t).nonzero().tolist():
                massive.append([layer, ti, p, d, float(x[p, d])])
    m = len(rows)
    return ExtremeTokenReport(
        model=model_name(model), n_texts=m, n_tokens=sum(r.numel() for r in rows),
        sink_score=(sink / n_q).float(), gu_share=(gu / sum(r.numel() >= t.gu_min_len for r in rows)).float(),
        value_first=(vf / m).float(), value_other=(vo / m).float(),
        resid_first=(rf / m).float(), resid_other_max=(rmax / m).float(), resid_other_median=(rmed / m).float(),
        top_abs=top.float(), median_abs=(med_abs / m).float(), uniform_sink=uni / n_q,
        massive=sorted(massive, key=lambda e: (-abs(e[4]), e[0], e[1], e[2], e[3])), n_massive=len(massive), thresholds=asdict(t),
    )


def _lower_median(xs: list[float]) -> float:
    """torch's median convention: the lower of the two middle values for an even count."""
    return statistics.median_low(xs)

"""Reference (non-streaming) twin of ``interp.extreme.vision.scan_images``: one image prompt per forward pass, full
caches, plain loops. The tests check that the streaming scan agrees with it on image prompts."""

from __future__ import annotations

from dataclasses import fields

import torch

from interp.extreme.naive import naive_stats
from interp.extreme.report import ExtremeTokenReport, Thresholds, is_massive
from interp.extreme.vision import KINDS, VisionExtremeReport, encode_prompts, uniform_mass

__all__ = ["naive_scan_images"]


@torch.no_grad()
def naive_scan_images(model, prompts, *, max_len: int | None = None,
                      thresholds: Thresholds | None = None) -> VisionExtremeReport:
    """Same statistics as ``scan_images`` from full activation caches of one prompt at a time (slow; for checking).
    Its massive-activation entries carry no token string and it keeps no other-sink tally (as ``naive_scan``)."""
    t = thresholds or Thresholds()
    rows = encode_prompts(model, prompts, max_len)
    names = lambda n: n.endswith(("hook_pattern", "attn.hook_v", "hook_resid_post"))  # noqa: E731
    caches = []
    for ids, pix in zip(rows.ids, rows.pixels):
        kw = {} if pix is None else {"pixel_values": pix.to(model.cfg.device)}
        _, cache = model.run_with_cache(ids[None].to(model.cfg.device), names_filter=names, **kw)
        caches.append({k: v[0].cpu() for k, v in cache.items()})
    base = naive_stats(model, rows.ids, caches, t)
    n_l, n_h, n_k, m = model.cfg.n_layers, model.cfg.n_heads, len(KINDS), len(rows.ids)
    mass = torch.zeros(n_l, n_h, n_k, dtype=torch.float64)
    mass_sq, top_kind, kmax, kmax_sq, massive_kind = (torch.zeros(n_l, n_k, dtype=torch.float64) for _ in range(5))
    uni, have = torch.zeros(n_k, dtype=torch.float64), torch.zeros(n_k, dtype=torch.float64)
    for kinds, cache in zip(rows.kinds, caches):
        uni += uniform_mass(kinds)
        present = [bool((kinds == k).any()) for k in range(n_k)]
        have += torch.tensor(present, dtype=torch.float64)
        for layer in range(n_l):
            pat = cache[f"blocks.{layer}.attn.hook_pattern"].double()  # [h, q, k]
            per = torch.zeros(n_h, n_k, dtype=torch.float64)
            for k in range(n_k):
                per[:, k] = pat[:, 1:, kinds == k].sum(-1).mean(-1)  # mean over queries t >= 1
            mass[layer] += per
            mass_sq[layer] += per.mean(0).pow(2)
            x = cache[f"blocks.{layer}.hook_resid_post"].double()  # [pos, d]
            a = x.abs()
            pos_max = a.max(-1).values  # [pos]
            top_kind[layer, int(kinds[int(pos_max.argmax())])] += 1
            for k in range(n_k):
                if present[k]:
                    v = float(pos_max[kinds == k].max())
                    kmax[layer, k] += v
                    kmax_sq[layer, k] += v * v
            med = a.flatten().median()
            for p, _ in is_massive(x, med, t).nonzero().tolist():
                massive_kind[layer, int(kinds[p])] += 1
    div = have.clamp_min(1)[None]
    return VisionExtremeReport(
        **{f.name: getattr(base, f.name) for f in fields(ExtremeTokenReport)},
        n_visual=int(sum(int((k == 1).sum()) for k in rows.kinds)), kind_prompts=have.float(),
        mass=(mass / m).float(), mass_sq=(mass_sq / m).float(), uniform_mass=(uni / m).float(), top_kind=top_kind.float(),
        kind_absmax=(kmax / div).masked_fill(have[None] == 0, float("nan")).float(), kind_absmax_sq=(kmax_sq / div).float(),
        massive_kind=massive_kind.float(),
    )

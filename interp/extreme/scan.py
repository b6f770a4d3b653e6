"""Streaming scan for extreme tokens: attention sinks, value-state drains, residual peaks, massive activations.

``scan(model, texts)`` runs the corpus batch by batch and reduces every statistic inside the hooks, so
memory does not grow with the number of texts and attention patterns are never all cached. Definitions
(positions are 0-based; "first token" is position 0, the BOS token when the model prepends one):

* sink score ``[layer, head]``: mean attention weight on key 0 over all queries ``t >= 1`` of all texts.
  ``uniform_sink`` is the same mean for uniform causal attention (``1 / (t + 1)``), the no-sink baseline.
* Gu et al. share ``[layer, head]``: fraction of texts whose ``alpha_0 = mean_t A[t, 0]`` (all queries,
  ``t >= 0``) exceeds ``epsilon`` (default 0.3), among texts of at least ``gu_min_len`` tokens (Gu et al. use 64).
* value drain ``[layer, head]``: mean over texts of ``||W_O^h v_0||`` against the mean over texts of the
  median of ``||W_O^h v_i||`` over ``i >= 1``; ``drain_ratio`` = first / other.
* residual peak ``[layer]``: ``||resid_post_0||`` against the max and the median over ``i >= 1`` (means over texts).
* massive activations: entries of ``resid_post`` with ``|a| > massive_abs`` and ``|a| > massive_ratio *``
  the median ``|a|`` of that layer's hidden state for that text (all its positions and dimensions).
* other sinks: per (text, layer, head) the key ``k >= 1`` receiving the most attention
  (``alpha_k = mean_{t >= k} A[t, k]``, keys seen by at least ``min_queries`` queries); counted by token
  when ``alpha_k > secondary``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict

import torch
from tqdm.auto import tqdm

from interp.extreme.inputs import Texts, batches, check_batch_size, encode, pad_id
from interp.extreme.report import ExtremeTokenReport, Thresholds, is_massive
from interp.models import model_name

__all__ = ["scan", "scan_partial", "finish_scan", "head_w_o"]


def head_w_o(model, layer: int) -> torch.Tensor:
    """[head, d_head, d_model] output projection of ``layer``'s attention."""
    return model.blocks[layer].attn.W_O.detach()


def _kv_index(model) -> torch.Tensor:
    """[head] the key/value head each query head reads (grouped-query attention)."""
    n_heads = model.cfg.n_heads
    n_kv = getattr(model.cfg, "n_key_value_heads", None) or n_heads
    return torch.arange(n_heads) // (n_heads // n_kv)


class _Accumulator:
    """Running sums, updated inside the hooks of each batch (float64 so that batching does not move results).

    Mergeable: sums and counts add, ``top_abs`` takes the max, massive events keep a bounded top-k under a total
    order (|value|, layer, text, position, dimension), other-sink counts add per token. ``state`` / ``from_state``
    turn it into tensors + JSON (no pickle) for shipping between processes. ``doc_offset`` numbers this part's
    texts from that global index.
    """

    _SUMS = ("sink_sum", "gu_count", "vfirst", "vother", "rfirst", "rmax", "rmed", "med_abs")
    _COUNTS = ("n_queries", "uniform_sum", "n_texts", "n_gu", "n_tokens", "n_massive")

    def __init__(self, model, t: Thresholds, max_events: int, doc_offset: int = 0):
        n_l, n_h = model.cfg.n_layers, model.cfg.n_heads
        z = lambda *s: torch.zeros(*s, dtype=torch.float64)  # noqa: E731
        self.t, self.max_events = t, max_events
        self.sink_sum, self.gu_count = z(n_l, n_h), z(n_l, n_h)
        self.vfirst, self.vother = z(n_l, n_h), z(n_l, n_h)
        self.rfirst, self.rmax, self.rmed = z(n_l), z(n_l), z(n_l)
        self.top_abs, self.med_abs = z(n_l), z(n_l)
        self.n_queries = 0
        self.has_value = [False] * n_l
        self.uniform_sum = 0.0
        self.n_texts = 0
        self.n_gu = 0
        self.n_tokens = 0
        self.events: list[list] = []
        self.n_massive = 0
        self.doc_offset = doc_offset
        self.other: dict[int, list[float]] = defaultdict(lambda: [0, 0.0])
        self.kv = _kv_index(model)
        self.gram = [torch.einsum("hdm,hem->hde", w, w) for w in (head_w_o(model, layer).double() for layer in range(n_l))]
        # set for each batch
        self.lens = torch.zeros(0)
        self.idx: list[int] = []
        self.ids = torch.zeros(0)

    def start_batch(self, idx: list[int], ids: torch.Tensor, lens: torch.Tensor) -> None:
        self.idx, self.ids, self.lens = [i + self.doc_offset for i in idx], ids, lens
        self.n_texts += len(idx)
        self.n_gu += int((lens >= self.t.gu_min_len).sum())
        self.n_tokens += int(lens.sum())
        for n in lens.tolist():
            self.n_queries += n - 1
            self.uniform_sum += sum(1.0 / (q + 1) for q in range(1, n))

    def valid(self, pos: int, device) -> torch.Tensor:
        """[b, pos] True at real (unpadded) positions."""
        return torch.arange(pos, device=device)[None] < self.lens.to(device)[:, None]

    def pattern(self, layer: int, p: torch.Tensor) -> None:
        """p: [b, head, q, k] attention weights; reduced without any pattern-sized temporary."""
        p = p.detach()
        b, _, n, _ = p.shape
        lens = self.lens.to(p.device)
        qv = self.valid(n, p.device)  # [b, q]
        col0 = (p[..., 0] * qv[:, None]).double()  # [b, h, q]
        self.sink_sum[layer] += col0[..., 1:].sum((0, 2)).cpu()
        alpha0 = col0.sum(-1) / lens[:, None]  # [b, h]
        long_enough = (lens >= self.t.gu_min_len)[:, None]
        self.gu_count[layer] += ((alpha0 > self.t.epsilon) & long_enough).sum(0).cpu().double()
        # other sinks: mean attention each key k >= 1 receives from the queries t >= k that see it
        if bool((lens == n).all()):  # no padding in this batch: a plain reduction over queries
            received = p.sum(2).double()  # [b, h, k]
        else:
            received = torch.einsum("bhqk,bq->bhk", p, qv.to(p.dtype)).double()
        seen_by = (lens[:, None] - torch.arange(n, device=p.device)[None]).clamp_min(1)  # [b, k]
        alpha = received / seen_by[:, None]
        ok = torch.arange(n, device=p.device)[None] <= (lens[:, None] - self.t.min_queries)
        ok[:, 0] = False
        alpha = alpha.masked_fill(~ok[:, None], -1.0)
        best, where = alpha.max(-1)  # [b, h]
        for bi, hi in (best > self.t.secondary).nonzero().tolist():
            tok = int(self.ids[bi, where[bi, hi]])
            self.other[tok][0] += 1
            self.other[tok][1] += float(best[bi, hi])

    def value(self, layer: int, v: torch.Tensor) -> None:
        """v: [b, pos, kv_head, d_head] value vectors; ||W_O^h v||^2 = v^T (W_O^h W_O^h^T) v, no d_model-sized temporary."""
        v = v.detach()[:, :, self.kv.to(v.device)]  # [b, pos, head, d_head]
        g = self.gram[layer].to(v.device, v.dtype)
        norms = torch.einsum("bphd,hde,bphe->bph", v, g, v).clamp_min(0).double().sqrt()  # [b, pos, head]
        valid = self.valid(v.shape[1], v.device)
        self.has_value[layer] = True
        self.vfirst[layer] += norms[:, 0].sum(0).cpu()
        others = norms.masked_fill(~valid[..., None], float("nan"))[:, 1:]
        self.vother[layer] += others.nanmedian(dim=1).values.sum(0).cpu()

    def resid(self, layer: int, h: torch.Tensor) -> None:
        """h: [b, pos, d_model] residual stream after block ``layer``."""
        h = h.detach()
        valid = self.valid(h.shape[1], h.device)
        norms = h.double().norm(dim=-1)  # [b, pos]
        self.rfirst[layer] += norms[:, 0].sum().cpu()
        others = norms.masked_fill(~valid, float("nan"))[:, 1:]
        self.rmed[layer] += others.nanmedian(dim=1).values.sum().cpu()
        self.rmax[layer] += others.nan_to_num(-1.0).max(dim=1).values.sum().cpu()
        a = h.abs().double().masked_fill(~valid[..., None], float("nan"))
        med = a.flatten(1).nanmedian(dim=1).values  # [b]
        self.med_abs[layer] += med.sum().cpu()
        self.top_abs[layer] = max(self.top_abs[layer], a.nan_to_num(0.0).max().cpu())
        hit = is_massive(a, med[:, None, None], self.t)
        if hit.any():
            for bi, pi, di in hit.nonzero().tolist():
                self.events.append([layer, self.idx[bi], pi, di, float(h[bi, pi, di]), int(self.ids[bi, pi])])
            self.n_massive += int(hit.sum())
            if len(self.events) > 4 * self.max_events:
                self._trim()

    def _trim(self) -> None:
        self.events.sort(key=lambda e: (-abs(e[4]), e[0], e[1], e[2], e[3]))
        del self.events[self.max_events :]

    def merge(self, other: _Accumulator) -> _Accumulator:
        """Add the statistics of ``other`` (another part of the same corpus, same model and thresholds); returns self."""
        for name in self._SUMS:
            getattr(self, name).add_(getattr(other, name))
        for name in self._COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.top_abs = torch.maximum(self.top_abs, other.top_abs)
        self.has_value = [a or b for a, b in zip(self.has_value, other.has_value)]
        self.events.extend(other.events)
        self._trim()
        for tok, (c, s) in sorted(other.other.items()):
            self.other[tok][0] += c
            self.other[tok][1] += s
        return self

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(float64 tensors [layer, head] / [layer], JSON-able dict of counts, events and other-sink tallies)."""
        self._trim()
        tensors = {name: getattr(self, name) for name in (*self._SUMS, "top_abs")}
        tensors["has_value"] = torch.tensor(self.has_value)
        meta = {name: getattr(self, name) for name in self._COUNTS}
        meta["events"], meta["other"] = self.events, [[k, c, s] for k, (c, s) in sorted(self.other.items())]
        return tensors, meta

    @classmethod
    def from_state(cls, t: Thresholds, max_events: int, tensors: dict[str, torch.Tensor], meta: dict) -> _Accumulator:
        """The accumulator that ``state`` described, for merging and ``finish_scan`` only (it cannot take more batches:
        the per-model projections are not rebuilt, so this is cheap even for a large model)."""
        acc = cls.__new__(cls)
        acc.t, acc.max_events, acc.doc_offset, acc.other = t, max_events, 0, defaultdict(lambda: [0, 0.0])
        for name in (*cls._SUMS, "top_abs"):
            setattr(acc, name, tensors[name].double().clone())
        acc.has_value = [bool(x) for x in tensors["has_value"].tolist()]
        for name in cls._COUNTS:
            setattr(acc, name, meta[name])
        acc.events = [list(e) for e in meta["events"]]
        for k, c, s in meta["other"]:
            acc.other[int(k)] = [c, s]
        return acc


def _hooks(model, acc: _Accumulator) -> list:
    names = set(model.hook_dict)
    hooks = []
    for layer in range(model.cfg.n_layers):
        hooks.append((f"blocks.{layer}.attn.hook_pattern", lambda x, hook, layer=layer: acc.pattern(layer, x)))
        hooks.append((f"blocks.{layer}.hook_resid_post", lambda x, hook, layer=layer: acc.resid(layer, x)))
        if f"blocks.{layer}.attn.hook_v" in names:
            hooks.append((f"blocks.{layer}.attn.hook_v", lambda x, hook, layer=layer: acc.value(layer, x)))
    return hooks


@torch.no_grad()
def scan(
    model, texts: Texts, *, batch_size: int = 8, max_len: int | None = None, thresholds: Thresholds | None = None,
    max_events: int = 1000, progress: bool = True,
) -> ExtremeTokenReport:
    """Scan ``texts`` (one prompt, a list of texts, or [n, pos] token ids) for extreme tokens, streaming.

    ``max_len`` cuts each text (default: the model context). Returns an ``ExtremeTokenReport`` whose
    tensors are ``[layer, head]`` or ``[layer]``; its ``sink_heads``, ``drain_heads`` and ``peak_layers`` apply
    ``thresholds`` (stored in the report). At most ``max_events`` massive activations are kept (largest first).
    For corpora spread over processes or machines, see ``interp.scale.scan_corpus`` (merges ``scan_partial`` parts).
    Prompts with images (a vision-language model; each prompt a list of text and image parts): ``interp.extreme.scan``
    (the package's entry point) sends them to ``interp.extreme.vision.scan_images``, whose ``VisionExtremeReport`` adds
    the split by first / visual / text token.
    """
    t = thresholds or Thresholds()
    batch_size = check_batch_size(batch_size)
    rows = encode(model, texts, max_len)
    acc = scan_partial(model, rows, batch_size=batch_size, thresholds=t, max_events=max_events, progress=progress)
    return finish_scan(model, acc)


@torch.no_grad()
def scan_partial(model, rows: list[torch.Tensor], *, batch_size: int = 8, thresholds: Thresholds | None = None,
                 max_events: int = 1000, doc_offset: int = 0, progress: bool = False) -> _Accumulator:
    """The mergeable statistics of one part of a corpus: ``rows`` are 1-D token-id tensors (``encode``'s output),
    numbered from text ``doc_offset``. Merge parts with ``.merge`` and turn the total into a report with ``finish_scan``."""
    t = thresholds or Thresholds()
    acc = _Accumulator(model, t, max_events, doc_offset)
    hooks = _hooks(model, acc)
    device = model.cfg.device
    n_batches = math.ceil(len(rows) / batch_size)
    for idx, ids, lens in tqdm(batches(rows, batch_size, pad_id(model)), total=n_batches, desc="scan", disable=not progress):
        acc.start_batch(idx, ids, lens)
        model.run_with_hooks(ids.to(device), fwd_hooks=hooks, return_type=None)
    acc._trim()
    return acc


def finish_scan(model, acc: _Accumulator) -> ExtremeTokenReport:
    """The ``ExtremeTokenReport`` of (merged) statistics ``acc`` of ``model``; ``acc`` is not changed."""
    acc._trim()
    n, t = acc.n_texts, acc.t
    vfirst, vother = acc.vfirst.clone(), acc.vother.clone()
    for layer, seen in enumerate(acc.has_value):  # a model without hook_v: no drain statistic (NaN, never a drain head)
        if not seen:
            vfirst[layer] = vother[layer] = float("nan")
    tok_str = _decoder(model)
    other = sorted(acc.other.items(), key=lambda kv: (-kv[1][0], kv[0]))[:20]
    denom = n * model.cfg.n_layers * model.cfg.n_heads
    return ExtremeTokenReport(
        model=model_name(model), n_texts=n, n_tokens=acc.n_tokens,
        sink_score=(acc.sink_sum / max(acc.n_queries, 1)).float(),
        gu_share=(acc.gu_count / acc.n_gu).float() if acc.n_gu else torch.full_like(acc.gu_count, float("nan")).float(),
        value_first=(vfirst / n).float(), value_other=(vother / n).float(),
        resid_first=(acc.rfirst / n).float(), resid_other_max=(acc.rmax / n).float(), resid_other_median=(acc.rmed / n).float(),
        top_abs=acc.top_abs.float(), median_abs=(acc.med_abs / n).float(),
        uniform_sink=acc.uniform_sum / max(acc.n_queries, 1),
        massive=[e[:5] + [tok_str(e[5])] for e in acc.events], n_massive=acc.n_massive,
        other_sinks=[[tok_str(k), int(c), c / denom, s / c] for k, (c, s) in other],
        thresholds=asdict(t),
    )


def _decoder(model):
    """id -> token string; a negative id is a visual token's patch code (``interp.extreme.vision``): ``<img R,C>``."""
    from interp.extreme.labels import code_label

    tok = getattr(model, "tokenizer", None)
    text = (lambda i: tok.decode([i])) if tok is not None else str
    return lambda i: code_label(i) if i < 0 else text(i)

"""Active/dormant heads (Guo et al. 2024): per head and domain, does the head sink, and does it matter?

``head_activity(model, domains)`` measures, for every (domain, layer, head):

* ``sink``: mean attention on the first token from the domain's queries (``t >= 1``);
* ``prev``: mean attention on the previous token (``t - 1``) from the same queries;
* ``dloss_zero``: change of the next-token loss at those queries when the head's output (``hook_z``) is
  zeroed at those queries;
* ``dloss_bos``: the same when the head's attention at those queries is moved entirely onto the first token.

A head is **dormant** on a domain when it sinks (``sink >= sink_threshold``) and neither intervention moves
the loss by more than ``tolerance`` nats; otherwise it is **active** there. A domain is a list of texts (all
positions are its queries) or a pair ``(ids [n, pos], query_mask [n, pos] bool)`` that selects the queries,
e.g. trigger vs non-trigger positions of Bigram-Backcopy sequences (``interp.extreme.bb.bb_domains``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from interp.errors import InterpError
from interp.extreme.inputs import Texts, batches, encode, pad_id
from interp.models import model_name
from interp.results import Result

Domain = Texts | tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class HeadActivity(Result):
    """Sink scores and intervention loss changes per (domain, layer, head)."""

    model: str
    domains: list
    "domain names, in the order of the first axis"
    sink: torch.Tensor
    "[domain, layer, head] mean attention on the first token from the domain's queries t >= 1"
    prev: torch.Tensor
    "[domain, layer, head] mean attention on the previous token from the same queries"
    loss: torch.Tensor
    "[domain] clean next-token loss (nats) at the domain's queries"
    dloss_zero: torch.Tensor
    "[domain, layer, head] loss change when the head's output is zeroed at the domain's queries"
    dloss_bos: torch.Tensor
    "[domain, layer, head] loss change when the head attends only to the first token at those queries"
    n_queries: list = field(default_factory=list)
    "[domain] number of queries scored"
    sink_threshold: float = 0.3
    tolerance: float = 0.05
    _shapes = {"sink": "domain layer head", "prev": "domain layer head", "loss": "domain",
               "dloss_zero": "domain layer head", "dloss_bos": "domain layer head"}

    @property
    def dormant(self) -> torch.Tensor:
        """[domain, layer, head] bool: sinks and both interventions change the loss by less than ``tolerance``."""
        inert = (self.dloss_zero.abs() < self.tolerance) & (self.dloss_bos.abs() < self.tolerance)
        return (self.sink >= self.sink_threshold) & inert

    @property
    def active(self) -> torch.Tensor:
        """[domain, layer, head] bool: not dormant."""
        return ~self.dormant

    def rows(self) -> list[list]:
        """Table rows: domain, layer, head, sink, prev, dloss_zero, dloss_bos, state."""
        out = []
        for d, name in enumerate(self.domains):
            for layer, head in ((x, y) for x in range(self.sink.shape[1]) for y in range(self.sink.shape[2])):
                out.append([name, layer, head, float(self.sink[d, layer, head]), float(self.prev[d, layer, head]),
                            float(self.dloss_zero[d, layer, head]), float(self.dloss_bos[d, layer, head]),
                            "dormant" if self.dormant[d, layer, head] else "active"])
        return out

    def summary(self) -> dict[str, str]:
        out = {"model": self.model, "rule": f"dormant = sink >= {self.sink_threshold} and |dloss| < {self.tolerance} nats"}
        for d, name in enumerate(self.domains):
            dorm = [tuple(x) for x in self.dormant[d].nonzero().tolist()]
            out[str(name)] = f"loss {float(self.loss[d]):.4f}, {self.n_queries[d]} queries, dormant heads {dorm}"
        return out


def _domain_rows(model, dom: Domain, max_len: int | None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(token rows, query-mask rows) of one domain."""
    if isinstance(dom, tuple) and len(dom) == 2 and all(isinstance(x, torch.Tensor) for x in dom):
        ids, mask = dom
        if ids.shape != mask.shape:
            raise InterpError(f"a domain's query mask must have the ids' shape {tuple(ids.shape)}, got {tuple(mask.shape)}")
        rows = encode(model, ids, max_len)
        return rows, [m[: r.numel()].bool().cpu() for m, r in zip(mask, rows)]
    rows = encode(model, dom, max_len)
    return rows, [torch.ones(r.numel(), dtype=torch.bool) for r in rows]


class _Run:
    """Forward passes over one domain with an optional intervention on (layer, head) at the selected queries."""

    def __init__(self, model, rows, masks, batch_size):
        self.model, self.batch = model, []
        for idx, ids, lens in batches(rows, batch_size, pad_id(model)):
            q = torch.zeros(ids.shape, dtype=torch.bool)
            for j, i in enumerate(idx):
                q[j, : lens[j]] = masks[i]
            q[:, 0] = False  # the first token is never a query of interest
            scored = q.clone()
            scored[torch.arange(ids.shape[1])[None] >= (lens[:, None] - 1)] = False  # last position has no target
            self.batch.append((ids, q, scored))

    def loss(self, hooks: list) -> float:
        """Mean next-token loss over the scored queries (nats)."""
        total, n = 0.0, 0
        dev = self.model.cfg.device
        for ids, q, scored in self.batch:
            qd = q.to(dev)
            bound = [(nm, lambda x, hook, fn=fn, qd=qd: fn(x, qd)) for nm, fn in hooks]
            logits = self.model.run_with_hooks(ids.to(dev), fwd_hooks=bound)
            logp = torch.log_softmax(logits[:, :-1].float(), -1)
            nll = -logp.gather(-1, ids[:, 1:, None].to(dev)).squeeze(-1)
            s = scored[:, :-1].to(dev)
            total += float(nll[s].sum())
            n += int(s.sum())
        return total / max(n, 1)


@torch.no_grad()
def head_activity(
    model, domains: Mapping[str, Domain], *, batch_size: int = 16, max_len: int | None = None,
    sink_threshold: float = 0.3, tolerance: float = 0.05, interventions: bool = True, progress: bool = True,
) -> HeadActivity:
    """Sink score, previous-token attention and intervention loss changes per (domain, layer, head).

    ``domains``: name -> list of texts, or (ids [n, pos], query_mask [n, pos]). ``interventions=False`` skips
    the 2 x layers x heads extra passes (the loss changes are then NaN). Returns ``HeadActivity``.
    """
    if not domains:
        raise InterpError("no domains given: pass e.g. {'code': [...texts...], 'prose': [...]}")
    n_l, n_h = model.cfg.n_layers, model.cfg.n_heads
    names = list(domains)
    sink = torch.zeros(len(names), n_l, n_h)
    prev = torch.zeros_like(sink)
    dz = torch.full_like(sink, float("nan"))
    db = torch.full_like(sink, float("nan"))
    loss = torch.zeros(len(names))
    counts = []
    steps = len(names) * (1 + (2 * n_l * n_h if interventions else 0))
    bar = tqdm(total=steps, desc="head activity", disable=not progress)
    for d, name in enumerate(names):
        rows, masks = _domain_rows(model, domains[name], max_len)
        run = _Run(model, rows, masks, batch_size)
        s_sum = torch.zeros(n_l, n_h, dtype=torch.float64)
        p_sum = torch.zeros_like(s_sum)
        n_q = [0]

        loss[d] = run.loss([(f"blocks.{layer}.attn.hook_pattern", _stats(layer, s_sum, p_sum, n_q)) for layer in range(n_l)])
        if n_q[0] == 0:
            raise InterpError(f"domain {name!r} selects no query after the first token")
        sink[d], prev[d] = (s_sum / n_q[0]).float(), (p_sum / n_q[0]).float()
        counts.append(n_q[0])
        bar.update(1)
        if not interventions:
            continue
        for layer in range(n_l):
            for head in range(n_h):
                dz[d, layer, head] = run.loss([(f"blocks.{layer}.attn.hook_z", _zero_head(head))]) - loss[d]
                bar.update(1)
                db[d, layer, head] = run.loss([(f"blocks.{layer}.attn.hook_pattern", _to_first(head))]) - loss[d]
                bar.update(1)
    bar.close()
    return HeadActivity(model=model_name(model), domains=names, sink=sink, prev=prev, loss=loss, dloss_zero=dz, dloss_bos=db,
                        n_queries=counts, sink_threshold=sink_threshold, tolerance=tolerance)


def _stats(layer: int, s_sum: torch.Tensor, p_sum: torch.Tensor, n_q: list[int]):
    """hook_pattern [b, head, q, k]: add the first-token and previous-token attention of the selected queries."""
    def fn(p, q):
        pq = p.detach().double() * q[:, None, :, None]  # [b, h, q, k] restricted to selected queries
        s_sum[layer] += pq[..., 0].sum((0, 2)).cpu()
        diag = torch.diagonal(pq[..., 1:, :-1], dim1=-2, dim2=-1)  # A[t, t-1] for t >= 1
        p_sum[layer] += diag.sum((0, 2)).cpu()
        if layer == 0:
            n_q[0] += int(q.sum())
        return None
    return fn


def _zero_head(head: int):
    """hook_z [b, pos, head, d_head]: zero ``head`` at the selected queries."""
    def fn(z, q):
        z = z.clone()
        z[:, :, head] = z[:, :, head] * (~q)[..., None].to(z.dtype)
        return z
    return fn


def _to_first(head: int):
    """hook_pattern [b, head, q, k]: at the selected queries, ``head`` puts all its weight on key 0."""
    def fn(p, q):
        p = p.clone()
        row = torch.zeros_like(p[:, head])
        row[..., 0] = 1.0
        p[:, head] = torch.where(q[:, :, None], row, p[:, head])
        return p
    return fn

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

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from interp.errors import InterpError
from interp.extreme.activity_cost import SweepMeter, plan_cost
from interp.extreme.inputs import Texts, batches, check_batch_size, encode, pad_id
from interp.models import model_name
from interp.results import Result

Domain = Texts | tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class HeadActivity(Result):
    """Sink scores and intervention loss changes per (domain, layer, head)."""

    model: str
    "name of the model"
    domains: list
    "[domain] domain names, in the order of the first axis"
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
    "[domain] number of queries whose attention is averaged (the weight of ``sink`` / ``prev`` in a merge)"
    n_scored: list = field(default_factory=list)
    "[domain] number of queries whose next-token loss is averaged (the weight of the losses in a merge)"
    sink_threshold: float = 0.3
    "a head sinks on a domain when its ``sink`` is at least this"
    tolerance: float = 0.05
    "a sinking head is dormant when neither intervention moves the loss by this many nats"
    cost: dict = field(default_factory=dict, compare=False)
    """what the sweep cost: counts (``domains``, ``heads``, ``head_ablations``, ``clean_passes``, ``intervention_passes``,
    ``intervention_tokens``) and seconds (``first_step_s``, ``estimate_s`` from that first step, ``elapsed_s``); a
    measurement of the run, not of the model (not compared; empty in files written before it existed)"""
    _later = ("cost",)  # a file written before it was recorded loads with {}
    _shapes = {"sink": "domain layer head", "prev": "domain layer head", "loss": "domain",
               "dloss_zero": "domain layer head", "dloss_bos": "domain layer head", "domains": "domain",
               "n_queries": "domain", "n_scored": "domain"}


    @property
    def dormant(self) -> torch.Tensor:
        """[domain, layer, head] bool: sinks and both interventions change the loss by less than ``tolerance``."""
        inert = (self.dloss_zero.abs() < self.tolerance) & (self.dloss_bos.abs() < self.tolerance)
        return (self.sink >= self.sink_threshold) & inert

    @property
    def active(self) -> torch.Tensor:
        """[domain, layer, head] bool: not dormant (an unmeasured head that sinks counts as active)."""
        return ~self.dormant

    @property
    def measured(self) -> torch.Tensor:
        """[domain, layer, head] bool: both interventions were run on the head (see ``head_activity(heads=...)``)."""
        return ~(self.dloss_zero.isnan() | self.dloss_bos.isnan())

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
        n_heads = self.sink[0].numel()
        for d, name in enumerate(self.domains):
            dorm = [f"L{a}H{b}" for a, b in self.dormant[d].nonzero().tolist()]
            shown = ", ".join(dorm[:8]) + (f", … ({len(dorm) - 8} more)" if len(dorm) > 8 else "")
            out[str(name)] = (f"loss {float(self.loss[d]):.4f}, {self.n_queries[d]} queries, "
                              f"{int((self.sink[d] >= self.sink_threshold).sum())}/{n_heads} sink, "
                              f"{int(self.measured[d].sum())}/{n_heads} measured, {len(dorm)} dormant" + (f": {shown}" if dorm else ""))
        if self.cost:
            c = self.cost
            out["cost"] = ", ".join(f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int) else f"{k.replace('_', ' ')} {v}"
                                    for k, v in c.items() if v is not None)
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
    """Forward passes over one domain: the clean pass (with statistics hooks) and stacked intervention passes."""

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
        self.n_scored = sum(int(s[:, :-1].sum()) for _, _, s in self.batch)

    def loss(self, hooks: list) -> float:
        """Mean next-token loss over the scored queries (nats), with ``hooks`` = [(name, fn(x, q))] bound per batch."""
        total = 0.0
        dev = self.model.cfg.device
        for ids, q, scored in self.batch:
            qd = q.to(dev)
            bound = [(nm, lambda x, hook, fn=fn, qd=qd: fn(x, qd)) for nm, fn in hooks]
            logits = self.model.run_with_hooks(ids.to(dev), fwd_hooks=bound)
            total += float(_nll_sums(logits, ids.to(dev), scored.to(dev), 1)[0])
        return total / max(self.n_scored, 1)

    def interventions(self, jobs: list[tuple[str, int, int]], max_batch_tokens: int, step) -> list[float]:
        """Mean scored loss (nats) under each job ("zero" | "bos", layer, head), one value per job.

        Jobs are stacked: a forward pass runs ``k`` copies of a batch, copy ``c`` with job ``c`` applied at the
        selected queries (a per-copy head mask in one hook per layer), ``k * batch tokens <= max_batch_tokens``.
        """
        totals = torch.zeros(len(jobs), dtype=torch.float64)
        dev = self.model.cfg.device
        for ids, q, scored in self.batch:
            k = max(1, min(len(jobs), max_batch_tokens // max(1, ids.numel())))
            for s in range(0, len(jobs), k):
                chunk = jobs[s : s + k]
                n = len(chunk)
                logits = self.model.run_with_hooks(ids.to(dev).repeat(n, 1), fwd_hooks=_stacked_hooks(chunk, q.to(dev), self.model))
                totals[s : s + n] += _nll_sums(logits, ids.to(dev).repeat(n, 1), scored.to(dev).repeat(n, 1), n).cpu()
                step(n, n * ids.numel())
        return (totals / max(self.n_scored, 1)).tolist()


def _nll_sums(logits: torch.Tensor, ids: torch.Tensor, scored: torch.Tensor, n_copies: int) -> torch.Tensor:
    """[n_copies] float64 sums of the next-token loss at the scored positions of each stacked copy.

    ``logits`` [n_copies * b, pos, vocab]; the log-softmax runs one copy at a time to bound memory.
    """
    b = logits.shape[0] // n_copies
    out = torch.zeros(n_copies, dtype=torch.float64, device=logits.device)
    for c in range(n_copies):
        lg = logits[c * b : (c + 1) * b, :-1].float()
        nll = torch.logsumexp(lg, -1) - lg.gather(-1, ids[c * b : (c + 1) * b, 1:, None]).squeeze(-1)
        out[c] = nll[scored[c * b : (c + 1) * b, :-1]].double().sum()
    return out


def _stacked_hooks(jobs: list[tuple[str, int, int]], q: torch.Tensor, model) -> list:
    """Hooks for ``len(jobs)`` stacked copies of a batch whose query mask is ``q`` [b, pos]: copy ``c`` applies job ``c``.

    A "zero" job multiplies ``hook_z`` [copies * b, pos, head, d_head] by a 0/1 mask that is 0 at (copy, query, head);
    a "bos" job replaces the ``hook_pattern`` [copies * b, head, q, k] rows of (copy, head) at the queries by one-hot on key 0.
    """
    n, (b, pos), n_h = len(jobs), q.shape, model.cfg.n_heads
    zero: dict[int, torch.Tensor] = {}
    bos: dict[int, torch.Tensor] = {}
    for c, (kind, layer, head) in enumerate(jobs):
        table = zero if kind == "zero" else bos
        sel = table.setdefault(layer, torch.zeros(n, b, pos, n_h, dtype=torch.bool, device=q.device))
        sel[c, :, :, head] = q
    hooks = []
    for layer, sel in zero.items():
        keep = (~sel).reshape(n * b, pos, n_h, 1)
        hooks.append((f"blocks.{layer}.attn.hook_z", lambda z, hook, keep=keep: z * keep.to(z.dtype)))
    for layer, sel in bos.items():
        where = sel.reshape(n * b, pos, n_h).transpose(1, 2)[..., None]  # [copies * b, head, q, 1]
        hooks.append((f"blocks.{layer}.attn.hook_pattern", lambda p, hook, where=where: _onto_first(p, where)))
    return hooks


def _onto_first(p: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """``p`` [batch, head, q, k] with the rows selected by ``where`` [batch, head, q, 1] replaced by one-hot on key 0."""
    first = torch.zeros_like(p[:1, :1, :1])
    first[..., 0] = 1.0
    return torch.where(where, first, p)


def _pick_heads(heads, sink: torch.Tensor) -> list[tuple[int, int]]:
    """The (layer, head) pairs to intervene on: all (None), the given pairs, or the ``heads`` whose sink score
    differs most across domains (one domain: the highest sink scores), ties broken by (layer, head)."""
    n_l, n_h = sink.shape[1:]
    if heads is None:
        return [(a, b) for a in range(n_l) for b in range(n_h)]
    if isinstance(heads, int):
        if heads < 1:
            raise InterpError(f"heads must be at least 1, got {heads}")
        spread = sink.amax(0) - sink.amin(0) if sink.shape[0] > 1 else sink[0]
        order = sorted(range(n_l * n_h), key=lambda i: (-float(spread.flatten()[i]), i))
        return sorted(divmod(i, n_h) for i in order[:heads])
    out = []
    for lh in heads:
        a, b = (int(x) for x in lh)
        if not (0 <= a < n_l and 0 <= b < n_h):
            raise InterpError(f"head {lh} is outside the model's {n_l} layers x {n_h} heads")
        out.append((a, b))
    return sorted(set(out))


@torch.no_grad()
def head_activity(
    model, domains: Mapping[str, Domain], *, batch_size: int = 16, max_len: int | None = None,
    sink_threshold: float = 0.3, tolerance: float = 0.05, interventions: bool = True,
    heads: int | Sequence[tuple[int, int]] | None = None, max_batch_tokens: int = 2048, progress: bool = True,
) -> HeadActivity:
    """Sink score, previous-token attention and intervention loss changes per (domain, layer, head).

    ``domains``: name -> list of texts, or (ids [n, pos], query_mask [n, pos]). ``interventions=False`` skips
    the 2 x heads intervention runs (the loss changes are then NaN). ``heads`` limits the interventions: None
    (every head), a list of (layer, head), or an int N: the N heads whose sink score differs most across the
    domains (one domain: the N highest sink scores); the other heads' loss changes are NaN (``measured`` is
    False). Interventions are stacked: one forward pass runs up to ``max_batch_tokens // batch tokens`` copies
    of a batch, each with its own head ablated (same numbers as one pass per intervention, up to float
    rounding). Cost: 1 + ceil(2 x heads / copies) passes per batch and domain; the bar's description says the counts
    before the first intervention, and after the first stacked pass one line (stderr when ``progress``, and the
    ``interp.extreme.activity`` logger) gives the whole sweep's estimated time; both are kept in the result's ``cost``.
    Returns ``HeadActivity``.
    """
    if not isinstance(domains, Mapping):
        raise InterpError(f"domains must be a dict name -> texts (or (ids, query_mask)), got a {type(domains).__name__}")
    batch_size = check_batch_size(batch_size)
    if not domains:
        raise InterpError("no domains given: pass e.g. {'code': [...texts...], 'prose': [...]}")
    if max_batch_tokens < 1:
        raise InterpError(f"max_batch_tokens must be at least 1, got {max_batch_tokens}")
    n_l, n_h = model.cfg.n_layers, model.cfg.n_heads
    names = list(domains)
    sink = torch.zeros(len(names), n_l, n_h)
    prev = torch.zeros_like(sink)
    dz = torch.full_like(sink, float("nan"))
    db = torch.full_like(sink, float("nan"))
    loss = torch.zeros(len(names))
    counts, scored, runs = [], [], []
    t0 = time.perf_counter()
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
        scored.append(run.n_scored)
        runs.append(run)
    numels = [ids.numel() for r in runs for ids, _, _ in r.batch]
    cost = {"domains": len(names), "clean_passes": len(numels), "clean_s": round(time.perf_counter() - t0, 3)}
    if interventions:
        picked = _pick_heads(heads, sink)
        jobs = [(kind, a, b) for a, b in picked for kind in ("zero", "bos")]
        plan = {"domains": len(names), "heads": len(picked), "head_ablations": len(jobs) * len(names),
                **plan_cost(numels, len(jobs), max_batch_tokens)}
        meter = SweepMeter("head activity", plan, total=len(jobs) * len(numels), work=plan["intervention_tokens"],
                           progress=progress)
        try:
            for d, run in enumerate(runs):
                out = run.interventions(jobs, max_batch_tokens, meter.step)
                for (kind, a, b), value in zip(jobs, out):
                    (dz if kind == "zero" else db)[d, a, b] = value - float(loss[d])
        finally:
            meter.close()
        cost |= meter.cost()
    return HeadActivity(model=model_name(model), domains=names, sink=sink, prev=prev, loss=loss, dloss_zero=dz, dloss_bos=db,
                        n_queries=counts, n_scored=scored, sink_threshold=sink_threshold, tolerance=tolerance, cost=cost)


def merge_activity(parts: Sequence[HeadActivity]) -> HeadActivity:
    """One ``HeadActivity`` from per-shard results of the same model, heads and thresholds (what the scale backends
    reduce): a domain seen in several parts gets the query-weighted means of its parts (``sink`` / ``prev`` by
    ``n_queries``, the losses by ``n_scored``; equal to one run over all its texts up to float rounding), domains in
    the order they first appear. A domain in one part only is taken as it is, bit for bit. Raises ``InterpError`` for
    parts that cannot be merged (other model, thresholds, measured heads, or files without the query counts).
    """
    if not parts:
        raise InterpError("nothing to merge: no head-activity parts")
    first = parts[0]
    by_name: dict[str, list[tuple[HeadActivity, int]]] = {}
    for part in parts:
        if (part.model, part.sink_threshold, part.tolerance, part.sink.shape[1:]) != (
                first.model, first.sink_threshold, first.tolerance, first.sink.shape[1:]):
            raise InterpError("head-activity parts differ in model, heads or thresholds: merge only parts of one run")
        if len(part.n_scored) != len(part.domains):
            raise InterpError("a head-activity part has no n_scored counts (saved by an older version): recompute it")
        for d, name in enumerate(part.domains):
            if not torch.equal(part.measured[d], first.measured[0]):
                raise InterpError(f"domain {name!r}: the parts measured different heads; pass the same heads= to every part")
            by_name.setdefault(name, []).append((part, d))
    fields = ("sink", "prev", "dloss_zero", "dloss_bos")
    out: dict[str, list] = {f: [] for f in (*fields, "loss", "n_queries", "n_scored")}
    for group in by_name.values():
        nq = [p.n_queries[d] for p, d in group]
        ns = [p.n_scored[d] for p, d in group]
        for f in fields:
            w = nq if f in ("sink", "prev") else ns
            vals = [getattr(p, f)[d] for p, d in group]
            out[f].append(vals[0] if len(group) == 1 else
                          (sum(v.double() * n for v, n in zip(vals, w)) / sum(w)).float())
        losses = [p.loss[d] for p, d in group]
        out["loss"].append(losses[0] if len(group) == 1 else (sum(v.double() * n for v, n in zip(losses, ns)) / sum(ns)).float())
        out["n_queries"].append(sum(nq))
        out["n_scored"].append(sum(ns))
    return HeadActivity(model=first.model, domains=list(by_name), **{f: torch.stack(out[f]) for f in (*fields, "loss")},
                        n_queries=out["n_queries"], n_scored=out["n_scored"], sink_threshold=first.sink_threshold,
                        tolerance=first.tolerance, cost=_summed_costs(parts, len(by_name)))


def _summed_costs(parts: Sequence[HeadActivity], n_domains: int) -> dict:
    """The parts' ``cost`` entries that every part has, summed (passes, tokens, ablation runs, seconds of compute: not
    wall time when the parts ran in parallel); ``heads`` is the first part's (every part measured the same heads) and
    ``domains`` is ``n_domains``, the merged result's."""
    keys = set.intersection(*(set(p.cost) for p in parts)) if parts else set()
    out = {}
    for k in sorted(keys):
        vals = [p.cost[k] for p in parts]
        if k in ("heads", "domains"):
            out[k] = vals[0] if k == "heads" else n_domains
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            out[k] = round(sum(vals), 3) if any(isinstance(v, float) for v in vals) else sum(vals)
    return out


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

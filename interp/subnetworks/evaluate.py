"""``evaluate``: how bigram-like a subnetwork is, and how much the model needs it.

For each variant (full model, subnetwork only, random same-size subnetwork, complement = subnetwork
ablated, random complement = a random same-size set ablated; optionally the empty mask) on held-out texts:

- ``r``: Pearson correlation between the variant's surprisal -log2 p(x_{i+1}) and the bigram surprisal
  -log2 P_bigram(x_{i+1} | x_i) over all predicted positions, with infinite bigram surprisals (pairs never
  counted) replaced by the largest finite one (Chang & Bergen's ``ngram_correlation``);
- ``r_dropinf``: the same correlation over positions whose bigram probability is non-zero;
- ``xent``: soft cross-entropy from the bigram distribution to the variant, nats per position;
- ``loss``: mean next-token loss on the real text, nats per position.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interp.errors import InterpError
from interp.models import model_device, model_name
from interp.results import Result
from interp.subnetworks.bigram import BigramTable, encode_texts
from interp.subnetworks.subnetwork import Subnetwork
from interp.subnetworks.train import pad_batch

__all__ = ["SubnetworkEval", "evaluate", "pearson"]

DEFAULT_VARIANTS = ("full", "subnetwork", "random", "complement", "random complement")
_LN2 = 0.6931471805599453


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson correlation of two 1-D tensors (float64); nan when either is constant."""
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    den = (x.square().sum() * y.square().sum()).sqrt()
    return float((x * y).sum() / den) if den > 0 else float("nan")


@dataclass(frozen=True)
class SubnetworkEval(Result):
    """Evaluation of one subnetwork on held-out text (the measures are defined in the module docstring)."""

    model: str
    "name of the model"
    variants: list[str]
    "[variant] names of the evaluated variants"
    loss: torch.Tensor
    "[variant] mean next-token loss on the text (nats per position)"
    xent: torch.Tensor
    "[variant] soft cross-entropy from the bigram distribution (nats per position)"
    r: torch.Tensor
    "[variant] Pearson r of the variant's and the bigram surprisal (infinite bigram surprisals replaced)"
    r_dropinf: torch.Tensor
    "[variant] the same over positions whose bigram probability is non-zero"
    kept_fraction: float
    "the subnetwork's kept fraction"
    n_positions: int
    "predicted positions evaluated"
    bigram_surprisal: torch.Tensor
    "[point] bigram surprisal (bits, inf replaced) at a random sample of positions"
    surprisal: torch.Tensor
    "[variant, point] each variant's surprisal (bits) at the same positions"
    zero_prob: torch.Tensor
    "[point] True where the bigram probability is zero"
    _shapes = {"loss": "variant", "xent": "variant", "r": "variant", "r_dropinf": "variant", "variants": "variant",
               "bigram_surprisal": "point", "surprisal": "variant point", "zero_prob": "point"}

    def __getitem__(self, variant: str) -> dict[str, float]:
        """{loss, xent, r, r_dropinf} of one variant."""
        if variant not in self.variants:
            raise KeyError(f"{variant!r} not evaluated; have {self.variants}")
        i = self.variants.index(variant)
        return {"loss": float(self.loss[i]), "xent": float(self.xent[i]), "r": float(self.r[i]),
                "r_dropinf": float(self.r_dropinf[i])}

    def rows(self) -> list[list]:
        """Table rows [variant, loss, xent, r, r_dropinf] for reports."""
        return [[v, *[round(x, 4) for x in self[v].values()]] for v in self.variants]


@torch.no_grad()
def evaluate(
    model,
    subnetwork: Subnetwork,
    texts: Sequence[str],
    *,
    table: BigramTable | None = None,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    batch_size: int = 16,
    seed: int = 0,
    max_points: int = 3000,
    max_len: int | None = None,
) -> SubnetworkEval:
    """Evaluate ``subnetwork`` on ``texts`` (use held-out text); returns a ``SubnetworkEval``.

    ``table``: the bigram target (default: the one stored with the subnetwork). ``seed`` picks the random
    controls and the plotted sample of positions. ``max_len``: evaluate the first ``max_len`` tokens of each text.
    """
    table = table or subnetwork.bigram
    if table is None:
        raise InterpError("this subnetwork has no bigram table: pass table=bigram_table(model, training_texts)")
    subnetwork.check_model(model)
    seqs = encode_texts(model, texts, max_len=max_len)
    device = model_device(model)
    cur = torch.cat([s[:-1] for s in seqs])
    nxt = torch.cat([s[1:] for s in seqs])
    p_big = table.prob(cur, nxt)
    zero = p_big == 0
    big_s = -torch.log2(p_big)
    if zero.all():
        raise InterpError("no evaluated pair was ever seen by the bigram table; evaluate on text like its training text")
    big_s_filled = torch.where(zero, big_s[~zero].max(), big_s)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(cur), generator=g)[:max_points]
    out = {k: [] for k in ("loss", "xent", "r", "r_dropinf")}
    points = []
    for v in variants:
        sub = subnetwork.variant(v, seed)
        surpr, xents = [], []
        ctx = sub.applied(model) if sub is not None else contextlib.nullcontext()
        with ctx:
            for i in range(0, len(seqs), batch_size):
                chunk = seqs[i : i + batch_size]
                ids, valid = pad_batch(chunk)
                logp = torch.log_softmax(model(ids.to(device)).float(), -1)[:, :-1][valid.to(device)].cpu()
                tgt_ids = ids[:, 1:][valid]
                surpr.append(-logp.gather(-1, tgt_ids[:, None]).squeeze(-1) / _LN2)
                for j in range(0, logp.shape[0], 4096):  # bigram rows are vocab-wide: stay in small blocks
                    rows = table.rows(ids[:, :-1][valid][j : j + 4096])
                    xents.append(-(rows * logp[j : j + 4096].clamp_min(-1e4)).sum(-1))
        s = torch.cat(surpr)
        out["loss"].append(float(s.mean()) * _LN2)
        out["xent"].append(float(torch.cat(xents).mean()))
        out["r"].append(pearson(s, big_s_filled))
        out["r_dropinf"].append(pearson(s[~zero], big_s[~zero]))
        points.append(s[pick])
    return SubnetworkEval(
        model_name(model), list(variants), *(torch.tensor(out[k]) for k in ("loss", "xent", "r", "r_dropinf")),
        subnetwork.kept_fraction, len(cur), big_s_filled[pick].float(), torch.stack(points).float(), zero[pick],
    )

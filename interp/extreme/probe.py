"""Per-token probe of Guo et al. 2024: which current tokens wake a head up.

Feed ``context + [v]`` for each candidate token ``v`` and read the attention of the last query on the
first token. The head is *active* on ``v`` when that attention is below ``threshold`` (the reference code
uses 0.89 with context = [BOS] + every non-trigger token of Bigram-Backcopy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from interp.errors import InterpError
from interp.models import model_name
from interp.results import Result


@dataclass(frozen=True)
class TokenProbe(Result):
    """Attention of the last query on the first token, per candidate current token."""

    model: str
    "name of the model"
    layer: int
    "the probed head's layer"
    head: int
    "the probed head"
    candidates: torch.Tensor
    "[cand] token ids placed last"
    tokens: list
    "[cand] their strings"
    first_attention: torch.Tensor
    "[cand] attention of the last query on the first token"
    threshold: float = 0.89
    "a current token is active when ``first_attention`` is below this"
    _shapes = {"candidates": "cand", "first_attention": "cand", "tokens": "cand"}

    @property
    def active(self) -> torch.Tensor:
        """[cand] bool: the head looks away from the first token on this current token."""
        return self.first_attention < self.threshold

    def summary(self) -> dict[str, str]:
        act = [t for t, a in zip(self.tokens, self.active.tolist()) if a]
        return {"model": self.model, "head": f"L{self.layer}H{self.head}", "threshold": str(self.threshold),
                "active on": f"{len(act)} of {len(self.tokens)}: {act[:20]}",
                "median first-token attention": f"{float(self.first_attention.median()):.4f}"}


@torch.no_grad()
def token_probe(
    model, layer: int, head: int, context: torch.Tensor | str, candidates: torch.Tensor | list[int] | None = None, *,
    threshold: float = 0.89, batch_size: int = 64, progress: bool = False,
) -> TokenProbe:
    """Probe head ``(layer, head)``: attention on the first token when each candidate is the current token.

    ``context``: 1-D ids starting with the first (BOS) token, or a string (tokenised with BOS).
    ``candidates``: token ids to place last (default: every vocabulary id). Returns ``TokenProbe``.
    """
    if not (0 <= layer < model.cfg.n_layers and 0 <= head < model.cfg.n_heads):
        raise InterpError(f"no head L{layer}H{head}: the model has {model.cfg.n_layers} layers of {model.cfg.n_heads} heads")
    ctx = model.to_tokens(context)[0].cpu() if isinstance(context, str) else torch.as_tensor(context).reshape(-1).long().cpu()
    if ctx.numel() < 1:
        raise InterpError("the probe context is empty: give at least the first (BOS) token")
    if ctx.numel() + 1 > model.cfg.n_ctx:
        raise InterpError(f"context of {ctx.numel()} tokens plus the probe token exceeds the model context {model.cfg.n_ctx}")
    cand = torch.arange(model.cfg.d_vocab) if candidates is None else torch.as_tensor(candidates).reshape(-1).long()
    name = f"blocks.{layer}.attn.hook_pattern"
    out = []

    def grab(p, hook):
        out.append(p[:, head, -1, 0].detach().float().cpu())

    for s in tqdm(range(0, cand.numel(), batch_size), desc="token probe", disable=not progress):
        c = cand[s : s + batch_size]
        ids = torch.cat([ctx.expand(c.numel(), -1), c[:, None]], 1)
        model.run_with_hooks(ids.to(model.cfg.device), fwd_hooks=[(name, grab)], return_type=None)
    tok = model.tokenizer
    strings = [tok.decode([i]) for i in cand.tolist()]
    return TokenProbe(model=model_name(model), layer=layer, head=head, candidates=cand, tokens=strings,
                      first_attention=torch.cat(out), threshold=threshold)

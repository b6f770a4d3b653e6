"""Per-token next-token predictions on one prompt: full model, subnetwork only, and the bigram table."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.models import model_name, str_tokens, to_tokens
from interp.results import Result
from interp.subnetworks.subnetwork import Subnetwork

__all__ = ["TokenPredictions", "token_predictions"]


@dataclass(frozen=True)
class TokenPredictions(Result):
    """What three predictors say after each prompt token."""

    model: str
    "name of the model"
    tokens: list[str]
    "[pos] the prompt tokens"
    next_tokens: list[str]
    '[pos] the actual next token at each position ("" at the last)'
    sources: list[str]
    '[source] the predictors: ("full", "subnetwork", "bigram")'
    top: list[list[str]]
    "[source, pos] top predicted token"
    top_prob: torch.Tensor
    "[source, pos] its probability"
    prob_actual: torch.Tensor
    "[source, pos] probability of the actual next token (0 at the last position, where there is none)"
    _shapes = {"top_prob": "source pos", "prob_actual": "source pos", "tokens": "pos", "next_tokens": "pos", "sources": "source",
               "top": "source pos"}


@torch.no_grad()
def token_predictions(model, subnetwork: Subnetwork, prompt: str) -> TokenPredictions:
    """Run the full model, the subnetwork alone and the bigram table on ``prompt``; returns ``TokenPredictions``."""
    tokens = to_tokens(model, prompt)
    probs = [torch.softmax(model(tokens).float(), -1)[0].cpu()]
    with subnetwork.only(model):
        probs.append(torch.softmax(model(tokens).float(), -1)[0].cpu())
    sources = ["full", "subnetwork"]
    if subnetwork.bigram is not None:
        probs.append(subnetwork.bigram.rows(tokens[0].cpu()))
        sources.append("bigram")
    p = torch.stack(probs)  # [source, pos, vocab]
    top_prob, top_id = p.max(-1)
    ids = tokens[0].cpu()
    actual = torch.zeros(len(sources), len(ids))
    actual[:, :-1] = p[:, :-1].gather(-1, ids[1:].expand(len(sources), -1).unsqueeze(-1)).squeeze(-1)
    toks = str_tokens(model, tokens)
    top = [str_tokens(model, top_id[s]) for s in range(len(sources))]
    return TokenPredictions(model_name(model), toks, toks[1:] + [""], sources, top, top_prob, actual)

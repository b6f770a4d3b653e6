"""The model's own prediction on a prompt: per-token surprisal and the top-k next tokens; its greedy continuation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.models import model_name, str_tokens, to_tokens
from interp.results import Result
from interp.validate import check_int, prompt_tokens


@dataclass(frozen=True)
class Prediction(Result):
    """What the model predicts on one prompt."""

    model: str
    "name of the model"
    tokens: list[str]
    "[pos] the prompt's token strings (BOS included)"
    surprisal: torch.Tensor
    "[pos] -log p(token_i | tokens_<i) in nats; position 0 (nothing before it) is 0"
    next_tokens: list[str]
    "[k] the top-k next-token strings after the prompt"
    next_probs: torch.Tensor
    "[k] their probabilities"
    _shapes = {"surprisal": "pos", "next_probs": "k", "tokens": "pos", "next_tokens": "k"}


@torch.no_grad()
def predict(model, prompt: str, *, top_k: int = 10) -> Prediction:
    """Run ``model`` once on ``prompt`` (text, or a [pos] / [1, pos] id tensor); returns a ``Prediction``
    (surprisal [pos], top-k next tokens [k], k = min(top_k, vocabulary)). Bad input raises ``InterpError``."""
    top_k = min(check_int("top_k", top_k, minimum=1), int(model.cfg.d_vocab))
    tokens = prompt_tokens(model, prompt)
    logp = torch.log_softmax(model(tokens).float(), -1)[0]
    surprisal = torch.zeros(tokens.shape[1])
    surprisal[1:] = -logp[:-1].gather(-1, tokens[0, 1:, None].to(logp.device)).squeeze(-1).cpu()
    probs, ids = logp[-1].exp().topk(top_k)
    return Prediction(model_name(model), str_tokens(model, tokens), surprisal, str_tokens(model, ids), probs.cpu())


@torch.no_grad()
def greedy_continuation(model, prompt: str, n_tokens: int = 8) -> str:
    """The text of the model's ``n_tokens`` greedy next tokens after ``prompt`` (the prompt itself not included).

    Hooks active around the call apply (e.g. inside ``SteeringVectors.steer``); generation uses the KV cache.
    """
    tokens = to_tokens(model, prompt)
    out = model.generate(tokens, max_new_tokens=n_tokens, do_sample=False, verbose=False, stop_at_eos=False)
    return model.tokenizer.decode(out[0, tokens.shape[1]:].tolist())

"""Tokenising contrast examples and scoring continuations (teacher-forced log-probabilities, perplexity).

Sequences of different lengths are right-padded into one batch: with causal attention, padding placed
after a sequence's last real token cannot change any logit at a real position, so no attention mask is
needed. Steering hooks active around these calls apply to every position, padding included.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.attribution.vision import encode_prompt
from interp.errors import InterpError
from interp.models import model_device, pad_right, text_ids, to_tokens
from interp.models.vision import VisionInput
from interp.steering.data import ContrastExample, VisionContrast


@dataclass(frozen=True)
class Encoded:
    """Token ids of one example: ``prompt`` [P] (BOS included when the model prepends it), ``preferred`` [A+],
    ``dispreferred`` [A-]. ``sequence(+1)`` / ``sequence(-1)`` are the full scored sequences."""

    prompt: torch.Tensor
    preferred: torch.Tensor
    dispreferred: torch.Tensor

    def sequence(self, sign: int) -> torch.Tensor:
        """[P + A] ids of prompt + preferred (``sign=+1``) or prompt + dispreferred (``sign=-1``)."""
        return torch.cat([self.prompt, self.preferred if sign > 0 else self.dispreferred])


def encode(model, example: ContrastExample) -> Encoded:
    """Tokenise ``example``: the prompt as ``interp.models.to_tokens`` does, each answer without BOS.

    Raises ``InterpError`` when an answer tokenises to nothing or the sequence exceeds the context.
    """
    prompt = to_tokens(model, example.prompt)[0].cpu()
    return Encoded(prompt, *_answers(model, example, prompt, example.prompt))


def _answers(model, example, prompt: torch.Tensor, label: str) -> list[torch.Tensor]:
    """[preferred ids, dispreferred ids] of ``example`` (no BOS), each checked to be non-empty and to fit the context
    after ``prompt`` [P]; ``label`` names the example in the error."""
    answers = []
    for name in ("preferred", "dispreferred"):
        ids = text_ids(model, getattr(example, name), prepend_bos=False)
        if ids.numel() == 0:
            raise InterpError(f"the {name} answer {getattr(example, name)!r} of {label!r} has no tokens")
        if prompt.numel() + ids.numel() > model.cfg.n_ctx:
            raise InterpError(f"prompt + {name} answer of {label!r} is longer than the model's context {model.cfg.n_ctx}")
        answers.append(ids)
    return answers


def encode_parts(model, example: VisionContrast) -> tuple[Encoded, VisionInput]:
    """Tokenise a ``VisionContrast``: (``Encoded`` whose prompt is the parts' ids [P] with one slot per visual token,
    the ``VisionInput`` that fills those slots, for ``interp.attribution.vision.visual_inputs``). Raises
    ``InterpError`` for images given to a text-only model, an empty answer or a sequence longer than the context."""
    vin = encode_prompt(model, list(example.prompt))
    prompt = vin.ids[0].cpu()
    return Encoded(prompt, *_answers(model, example, prompt, example.text())), vin


@torch.no_grad()
def continuation_logprob(model, prompts: list[torch.Tensor], answers: list[torch.Tensor], *, batch_size: int = 64) -> torch.Tensor:
    """[n] float64: sum over answer tokens of log P(answer token | prompt, earlier answer tokens).

    ``prompts[i]`` [P_i] and ``answers[i]`` [A_i] are id tensors; runs in right-padded batches.
    """
    out = torch.empty(len(prompts), dtype=torch.float64)
    dev = model_device(model)
    for start in range(0, len(prompts), batch_size):
        ps, ans = prompts[start : start + batch_size], answers[start : start + batch_size]
        batch = pad_right([torch.cat([p, a]) for p, a in zip(ps, ans)])[0].to(dev)
        logp = torch.log_softmax(model(batch).double(), -1)
        for j, (p, a) in enumerate(zip(ps, ans)):
            rows = logp[j, len(p) - 1 : len(p) + len(a) - 1]
            out[start + j] = rows.gather(-1, a.to(dev)[:, None]).sum().cpu()
    return out


def contrast_gaps(model, encoded: list[Encoded], *, batch_size: int = 64) -> torch.Tensor:
    """[n] log P(preferred | prompt) - log P(dispreferred | prompt) for each encoded example (float64)."""
    prompts = [e.prompt for e in encoded]
    pos = continuation_logprob(model, prompts, [e.preferred for e in encoded], batch_size=batch_size)
    neg = continuation_logprob(model, prompts, [e.dispreferred for e in encoded], batch_size=batch_size)
    return pos - neg


@torch.no_grad()
def mean_nll(model, texts: list[str], *, batch_size: int = 16) -> tuple[float, int]:
    """(mean next-token negative log-likelihood in nats, number of predicted tokens) over ``texts``.

    Each text is tokenised with BOS and truncated to the model's context; the first token is not predicted.
    """
    if not texts:
        raise InterpError("no fluency texts given: pass some ordinary documents to measure perplexity on")
    seqs = [_tokens_truncated(model, t) for t in texts]
    total, count = 0.0, 0
    dev = model_device(model)
    for start in range(0, len(seqs), batch_size):
        chunk = seqs[start : start + batch_size]
        batch = pad_right(chunk)[0].to(dev)
        logp = torch.log_softmax(model(batch).double(), -1)
        for j, s in enumerate(chunk):
            if len(s) < 2:
                continue
            nll = -logp[j, : len(s) - 1].gather(-1, s[1:].to(dev)[:, None]).sum()
            total += nll.item()
            count += len(s) - 1
    if count == 0:
        raise InterpError("the fluency texts have no token to predict (each needs at least one token after BOS)")
    return total / count, count


def _tokens_truncated(model, text: str) -> torch.Tensor:
    if not isinstance(text, str) or not text.strip():
        raise InterpError("a fluency text is empty")
    return text_ids(model, text)

"""Last-position logits for perturbation methods, with a count of forward passes.

Perturbation methods (ReAGent, occlusion, faithfulness) only need ``p(y | prefix)`` at the last position.
``LastLogits`` runs the wrapped Hugging Face model with ``logits_to_keep=1`` where the architecture accepts
it (no ``[rows, pos, vocab]`` tensor is built), else the bridge's full forward, in chunks of ``max_rows``
sequences, and counts calls (one per chunk) and sequences.
"""

from __future__ import annotations

import torch

__all__ = ["LastLogits"]


class LastLogits:
    """Callable ``tokens [N, T] -> logits [N, vocab]`` (float32, last position) with forward counters."""

    def __init__(self, model, max_rows: int = 512):
        self.model, self.max_rows = model, max_rows
        self.calls = 0
        self.sequences = 0
        self._fast: bool | None = None

    def _one(self, toks: torch.Tensor) -> torch.Tensor:
        hf = getattr(self.model, "original_model", None)
        if self._fast is not False and hf is not None:
            try:
                out = hf(input_ids=toks, logits_to_keep=1, use_cache=False).logits[:, -1]
                self._fast = True
                return out.float()
            except TypeError:
                self._fast = False
        return self.model(toks)[:, -1].float()

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        device = next(self.model.parameters()).device
        outs = []
        for i in range(0, tokens.shape[0], self.max_rows):
            chunk = tokens[i : i + self.max_rows].to(device)
            outs.append(self._one(chunk))
            self.calls += 1
            self.sequences += chunk.shape[0]
        return torch.cat(outs) if outs else torch.zeros(0, self.model.cfg.d_vocab)

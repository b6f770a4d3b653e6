"""Last-position logits for perturbation methods, with a count of forward passes.

Perturbation methods (ReAGent, faithfulness) only need ``p(y | prefix)`` at the last position. ``LastLogits``
runs, in chunks of ``max_rows`` sequences and counting calls (one per chunk) and sequences:

1. by default the bridge's forward with ``logits_to_keep=1`` (passed to Hugging Face, so only the last position
   is unembedded; every hook on the bridge still fires), or its full forward where the architecture does not
   accept the argument;
2. with ``lean=True`` (opt-in) the lean forward of ``interp.attribution.lean`` where the family is covered, no
   forward hook is attached (to a hook point, a Hugging Face module or globally), and it matched the bridge's
   forward on this model (checked once per model; a mismatch warns and switches it off for it).

Why lean is opt-in: on a real LM the bridge's own forward with ``logits_to_keep=1`` costs the same within noise
(the vocabulary projection of one position dominates either way); lean pays only on toy-sized models, where the
per-op overhead it removes dominates (the measurements are in bench/results/attribution_real.md).
"""

from __future__ import annotations

import time
import warnings
import weakref

import torch

from interp.attribution.lean import lean_forward

__all__ = ["LastLogits", "prior_cost_ratio", "trailing_logits"]

# model -> True (lean path checked and equal) / False (off for this model)
_LEAN_OK: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# model -> False once its forward refused ``logits_to_keep`` (then every position is computed)
_KEEP_OK: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CHECK_ROWS = 4


# hooks that transformers and the bridge install on their own (output capturing; they do not change outputs)
_INTERNAL_HOOKS = ("install_output_capuring_hook.<locals>", "install_output_capturing_hook.<locals>",
                   "_maybe_wire_capture_hooks.<locals>")


def _user_hook(fn) -> bool:
    name = getattr(fn, "__qualname__", "")
    return not any(marker in name for marker in _INTERNAL_HOOKS)


def _hook_dicts(model) -> list[dict]:
    """The forward(-pre) hook dicts of every module of ``model`` (registering a hook mutates them in place)."""
    return [d for m in model.modules() for d in (m._forward_hooks, m._forward_pre_hooks)]


def _hooked(hook_dicts: list[dict]) -> bool:
    """True when a forward hook of the user's is attached to a module (the bridge's hook points and the Hugging
    Face modules inside them; ``_hook_dicts``) or globally: the lean path would skip it. Hooks that transformers
    and the bridge install themselves (output capturing) do not count; any other hook does."""
    mod = torch.nn.modules.module
    if mod._global_forward_hooks or mod._global_forward_pre_hooks:
        return True
    for hooks in hook_dicts:
        if hooks:
            for fn in hooks.values():
                if _user_hook(fn):
                    return True
    return False


def trailing_logits(model, tokens: torch.Tensor, keep: int | None = None, fwd_hooks: list | None = None) -> torch.Tensor:
    """Logits [batch, keep (or pos), vocab] of ``tokens`` [batch, pos], with ``fwd_hooks`` attached for the call.

    ``keep``: compute only the last ``keep`` positions' logits (Hugging Face's ``logits_to_keep``, passed through the
    bridge; hooks still fire, gradients are the same bit for bit on SmolLM2 and Gemma 3; it halves an IG pass on
    Gemma 3's 262k vocabulary). A model whose forward refuses the argument computes every position (remembered).
    """
    def run(**kw):
        return model.run_with_hooks(tokens, fwd_hooks=fwd_hooks, **kw) if fwd_hooks else model(tokens, **kw)

    if keep and _KEEP_OK.get(model) is not False:
        try:
            return run(logits_to_keep=keep)
        except TypeError:
            _KEEP_OK[model] = False
    return run()


def prior_cost_ratio(device: torch.device) -> float:
    """The cost of a model call in rows before any call was timed: 2 on the CPU, 256 on a GPU (where a call of a
    few hundred short rows costs about as much as a call of one)."""
    return 256.0 if device.type == "cuda" else 2.0


class LastLogits:
    """Callable ``tokens [N, T] -> logits [N, vocab]`` (float32, last position) with forward counters.

    ``lean=True`` uses the lean forward where it is safe (module docstring); the default is the bridge with
    ``logits_to_keep=1``. ``calls`` / ``sequences`` count model calls and
    rows. ``cost_ratio()`` is the cost of a call in rows, fitted to the wall time of the calls so far; a
    scheduler may use it to size its calls (it never changes results).
    """

    def __init__(self, model, max_rows: int = 512, lean: bool = False):
        self.model, self.max_rows = model, max_rows
        param = next(model.parameters())
        self.device, self._eps = param.device, torch.finfo(param.dtype).eps
        self.calls = 0
        self.sequences = 0
        self._fit = [0.0] * 5  # n, sum rows, sum secs, sum rows^2, sum rows*secs
        self._lean = lean_forward(model) if lean and _LEAN_OK.get(model) is not False else None
        self._hooks = _hook_dicts(model) if self._lean is not None else []

    def _use_lean(self) -> bool:
        return self._lean is not None and not _hooked(self._hooks)

    @property
    def path(self) -> str:
        """Which forward the next call would use: "lean", "last" (bridge, ``logits_to_keep=1``) or "bridge" (full)."""
        if self._use_lean():
            return "lean"
        return "bridge" if _KEEP_OK.get(self.model) is False else "last"

    def _hf(self, toks: torch.Tensor) -> torch.Tensor:
        return trailing_logits(self.model, toks, 1)[:, -1].float()

    def _check(self, toks: torch.Tensor) -> None:
        """Compare the lean forward with the Hugging Face one on ``toks``; switch it off on a mismatch."""
        ref, got = self._hf(toks), self._lean(toks)
        tol = max(1e-4, 4 * self._eps) * max(1.0, float(ref.abs().max()))  # float32: 1e-4; bfloat16: 0.03
        ok = got.shape == ref.shape and bool(torch.allclose(got, ref, rtol=0, atol=tol))
        _LEAN_OK[self.model] = ok
        if not ok:
            warnings.warn("the lean last-position forward differs from the Hugging Face forward on this model "
                          f"(max |diff| {float((got - ref).abs().max()):.3g}); using the Hugging Face forward", stacklevel=3)
            self._lean = None

    def _time(self, rows: int, secs: float) -> None:
        f = self._fit
        f[0] += 1
        f[1] += rows
        f[2] += secs
        f[3] += rows * rows
        f[4] += rows * secs

    def cost_ratio(self, prior: float | None = None) -> float:
        """Seconds of one call divided by seconds of one row (``c0 / c1`` of ``secs = c0 + c1 * rows``).

        Fitted by least squares to the timed calls (CPU only: CUDA calls return before the work is done);
        ``prior`` (default ``prior_cost_ratio``) until two calls of different sizes were timed.
        """
        prior = prior if prior is not None else prior_cost_ratio(self.device)
        n, sx, sy, sxx, sxy = self._fit
        var = sxx - sx * sx / n if n else 0.0
        if self.device.type == "cuda" or n < 2 or var <= 1e-9:
            return prior
        c1 = (sxy - sx * sy / n) / var
        c0 = (sy - c1 * sx) / n
        return 4096.0 if c1 <= 0 else min(max(c0 / c1, 0.25), 4096.0)

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[0] and self.model not in _LEAN_OK and self._use_lean():  # once per model, untimed
            self._check(tokens[:_CHECK_ROWS].to(self.device))
        outs = []
        for i in range(0, tokens.shape[0], self.max_rows):
            chunk = tokens[i : i + self.max_rows].to(self.device)
            t0 = time.perf_counter()
            outs.append(self._lean(chunk) if self._use_lean() else self._hf(chunk))
            self._time(chunk.shape[0], time.perf_counter() - t0)
            self.calls += 1
            self.sequences += chunk.shape[0]
        return torch.cat(outs) if outs else torch.zeros(0, self.model.cfg.d_vocab)

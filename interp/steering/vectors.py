"""``SteeringVectors``: one direction per steered layer, applied by a norm-preserving hook.

At every steered layer ``l`` and every position ``t`` (prompt and generated tokens alike) the residual
stream after block ``l`` (``blocks.{l}.hook_resid_post``) becomes

    h' = (h + alpha * v_l) * ||h|| / ||h + alpha * v_l||

with the L2 norm over the hidden dimension of each token (``norm_mode="per_token"``, the GrAInS paper's
meaning). The reference code normalises over the sequence axis instead; that variant is kept as
``norm_mode="official_seq"`` for comparison only: it does not preserve per-token norms and makes
generation depend on whether the KV cache is used.

Because the per-token rule touches each position independently, steered generation gives the same
tokens with and without the KV cache, and ``alpha = 0`` returns every activation bit for bit
(``h + 0 * v == h`` and ``||h|| / ||h|| == 1`` exactly in floating point).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from interp.errors import InterpError
from interp.results import Result

__all__ = ["SteeringVectors", "steering_hook", "check_alpha", "HOOK", "NORM_MODES"]

HOOK = "blocks.{layer}.hook_resid_post"
NORM_MODES = ("per_token", "official_seq", "none")


def check_alpha(alpha) -> float:
    """A steering strength as a float; raises ``InterpError`` unless it is a finite number (not NaN, not +-inf,
    not a bool or string)."""
    from interp.validate import check_float

    return check_float("the steering strength alpha", alpha)


def steering_hook(vector: torch.Tensor, alpha: float, norm_mode: str = "per_token") -> Callable:
    """A forward hook ``fn(h, hook) -> h'`` adding ``alpha * vector`` to ``h`` [batch, pos, d_model].

    ``norm_mode``: "per_token" rescales each token back to its own norm; "official_seq" divides by the norm
    over the sequence axis per channel (the reference code's bug, kept for comparison); "none" only adds.
    The arithmetic runs in float32 at least and the result is cast back to ``h``'s dtype. ``alpha`` must be a
    finite number (``InterpError`` otherwise). The rescaling rules depend only on the direction of
    ``h + alpha * v``, so when that sum overflows (a huge alpha) it is computed as ``h / |alpha| + sign(alpha) v``
    instead (the same direction); with ``norm_mode="none"`` an overflowing sum raises ``InterpError``.
    """
    if norm_mode not in NORM_MODES:
        raise InterpError(f"unknown norm_mode {norm_mode!r}; choose one of {', '.join(NORM_MODES)}")
    alpha = check_alpha(alpha)
    dim = -1 if norm_mode == "per_token" else 1

    def fn(h: torch.Tensor, hook=None) -> torch.Tensor:
        work = h if h.dtype in (torch.float32, torch.float64) else h.float()
        v = vector.to(device=work.device, dtype=work.dtype)
        s = work + alpha * v
        if norm_mode == "none":
            if not torch.isfinite(s).all() and torch.isfinite(work).all():
                raise InterpError(f"alpha={alpha:g} overflows the residual stream with norm_mode='none': use a smaller alpha")
            return s.to(h.dtype)
        s_norm = s.norm(dim=dim, keepdim=True)
        if not torch.isfinite(s_norm).all() and abs(alpha) > 1:  # same direction, no overflow
            s = work / abs(alpha) + (1.0 if alpha > 0 else -1.0) * v
            s_norm = s.norm(dim=dim, keepdim=True)
        s = s * (work.norm(dim=dim, keepdim=True) / s_norm.clamp_min(torch.finfo(work.dtype).tiny))
        return s.to(h.dtype)

    return fn


@dataclass(frozen=True)
class SteeringVectors(Result):
    """Steering directions for some layers of one model, applied at ``blocks.{layer}.hook_resid_post``."""

    vectors: torch.Tensor
    '[layer, d_model] one direction per entry of ``layers`` (unit norm unless ``meta["normalized"]`` is False)'
    layers: list[int]
    "[layer] the model layer index of each row"
    method: str
    '"grains" or "mean_difference"'
    model: str
    "name of the model they were fitted on"
    norm_mode: str = "per_token"
    "default hook rule (see ``steering_hook``)"
    meta: dict = field(default_factory=dict)
    "how they were fitted (k, aggregate, number of examples, raw norms, mean residual norm per layer, ...)"
    _shapes = {"vectors": "layer d_model", "layers": "layer"}

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "layers", [int(x) for x in self.layers])
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"SteeringVectors: repeated layer in {self.layers}")
        if self.norm_mode not in NORM_MODES:
            raise ValueError(f"SteeringVectors: unknown norm_mode {self.norm_mode!r}")

    def vector(self, layer: int) -> torch.Tensor:
        """[d_model] direction of ``layer``."""
        if layer not in self.layers:
            raise InterpError(f"no steering vector for layer {layer}; this set has layers {self.layers}")
        return self.vectors[self.layers.index(layer)]

    def select(self, layers: int | list[int]) -> SteeringVectors:
        """A copy restricted to ``layers`` (an int or a list)."""
        layers = [layers] if isinstance(layers, int) else list(layers)
        rows = torch.stack([self.vector(layer) for layer in layers])
        return SteeringVectors(rows, layers, self.method, self.model, self.norm_mode, dict(self.meta))

    def _check_model(self, model) -> None:
        d, n = model.cfg.d_model, model.cfg.n_layers
        if self.vectors.shape[1] != d:
            raise InterpError(f"these steering vectors have d_model {self.vectors.shape[1]} (fitted on {self.model!r}) "
                              f"but the model has d_model {d}: fit vectors on this model")
        bad = [layer for layer in self.layers if not 0 <= layer < n]
        if bad:
            raise InterpError(f"steering layers {bad} do not exist in a {n}-layer model")

    def hooks(self, model, alpha: float, *, layers: list[int] | None = None,
              norm_mode: str | None = None) -> list[tuple[str, Callable]]:
        """``fwd_hooks`` for ``model.run_with_hooks`` / ``model.hooks``: one per steered layer.

        ``layers`` restricts to a subset (default: all); ``norm_mode`` overrides the stored rule.
        """
        self._check_model(model)
        chosen = self.layers if layers is None else list(layers)
        mode = norm_mode or self.norm_mode
        return [(HOOK.format(layer=layer), steering_hook(self.vector(layer), alpha, mode)) for layer in chosen]

    @contextlib.contextmanager
    def steer(self, model, alpha: float, *, layers: list[int] | None = None, norm_mode: str | None = None) -> Iterator:
        """Context manager: inside it every forward pass of ``model`` (``generate`` included, with or without
        the KV cache) is steered; the hooks are removed on exit, even after an error. Yields the model."""
        with model.hooks(fwd_hooks=self.hooks(model, alpha, layers=layers, norm_mode=norm_mode)):
            yield model

    def summary(self) -> dict[str, str]:
        out = super().summary()
        out["norms"] = ", ".join(f"L{layer}: {n:.3g}" for layer, n in zip(self.layers, self.vectors.norm(dim=-1).tolist()))
        return out

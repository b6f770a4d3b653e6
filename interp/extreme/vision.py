"""The extreme-token scan over image + text prompts of a vision-language model: who keeps the sinks and the massive
activations, the first (BOS) token, the visual tokens or the text tokens?

``scan_images(model, prompts)`` (also reached through ``interp.extreme.scan(model, prompts)``, the package's entry
point, when the prompts hold images) runs the same streaming statistics as ``scan`` (same hooks, same reductions,
batched with right padding and the batch's images in prompt order) and adds, per layer, a split of every position
into three **kinds**: ``first`` (position 0: BOS), ``visual`` (an image-token slot, filled with the connector's
output) and ``text`` (every other token). Each prompt is a list of text and image parts (``interp.models.vision``);
a plain string is a text prompt.
Definitions added to those of ``interp.extreme.scan`` (each prompt weighs the same; means over prompts):

* attention mass ``mass [layer, head, kind]``: for one prompt, the mean over queries ``t >= 1`` of the attention
  weight that query puts on keys of that kind (the three kinds sum to 1); ``uniform_mass [kind]``: the same for
  uniform causal attention (``#keys of the kind <= t / (t + 1)``), the no-preference baseline. Visual tokens are many,
  so a fair reading compares ``mass`` with ``uniform_mass``.
* top activation ``top_kind [layer, kind]``: how many prompts have the largest ``|resid_post|`` entry of that layer
  (all positions and dimensions) at a position of that kind; ``kind_absmax [layer, kind]``: mean over the prompts
  holding the kind of the largest ``|resid_post|`` entry among its positions (NaN when no prompt holds it).
* ``massive_kind [layer, kind]``: massive activations (``Thresholds.massive_*``) counted by the kind of their position.

Visual positions are named ``<img R,C>`` (``<img I:R,C>`` for image I > 0) by the patch (row, col) they show, in the
massive-activation list and the other-sink tally (so a patch that acts as a secondary sink shows by name).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import torch
from tqdm.auto import tqdm

from interp.errors import InterpError
from interp.extreme.inputs import batches, pad_id
from interp.extreme.labels import code_label, patch_code
from interp.extreme.report import ExtremeTokenReport, Thresholds, is_massive
from interp.extreme.scan import _Accumulator, _hooks, finish_scan
from interp.models.vision import encode, has_images, image_token_id, is_parts, is_vlm

__all__ = ["KINDS", "VisionExtremeReport", "VisionRows", "scan_images", "is_image_prompts", "encode_prompts", "uniform_mass",
           "code_label"]

KINDS = ("first", "visual", "text")
"""the position kinds, in the order of every ``kind`` axis"""


@dataclass(frozen=True)
class VisionRows:
    """Encoded image prompts: ``ids`` (1-D, per prompt), ``codes`` (the ids with each visual token's id replaced by a
    negative code naming its patch), ``kinds`` ([pos] 0 first, 1 visual, 2 text), ``pixels`` ([image, 3, H, W] or None)."""

    ids: list
    codes: list
    kinds: list
    pixels: list


def is_image_prompts(prompts) -> bool:
    """True when ``prompts`` is one prompt of parts holding an image, or a list of prompts one of which holds an image."""
    if not isinstance(prompts, (list, tuple)) or not prompts:
        return False
    return has_images(prompts) or any(isinstance(p, (list, tuple)) and has_images(p) for p in prompts)


def encode_prompts(model, prompts, max_len: int | None = None) -> VisionRows:
    """``VisionRows`` of ``prompts`` (a list of prompts, each a list of text and image parts or a string; one prompt of
    parts holding an image is taken as a list of one). ``InterpError`` for a text-only model, no prompts, a prompt of
    fewer than 2 tokens, a bad part, or a prompt longer than ``max_len`` (image prompts are never cut)."""
    if not is_vlm(model):
        raise InterpError("image prompts need a vision-language model (e.g. load_model('scenes-vlm')); this one is text-only")
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise InterpError("prompts must be a non-empty list of prompts (each a list of text and image parts, or a string)")
    if has_images(prompts):
        prompts = [prompts]
    out = VisionRows([], [], [], [])
    for i, p in enumerate(prompts):
        text_parts = isinstance(p, (list, tuple)) and bool(p) and all(isinstance(x, str) for x in p)
        if not (isinstance(p, str) or is_parts(p) or text_parts):
            raise InterpError(f"prompt {i} is a {type(p).__name__}: give a list of text and image parts, or a string")
        if isinstance(p, str) and not p.strip():
            raise InterpError(f"prompt {i} is empty: give at least one word or an image")
        vin = encode(model, p)
        ids = vin.ids[0]
        if ids.numel() < 2:
            raise InterpError(f"prompt {i} has {ids.numel()} token(s); the extreme-token statistics need at least 2")
        if max_len is not None and ids.numel() > max_len:
            raise InterpError(f"prompt {i} is {ids.numel()} tokens, over max_len={max_len}: image prompts are not cut "
                              "(it would drop visual tokens); raise max_len or shorten the text")
        kinds = torch.full_like(ids, 2)
        kinds[vin.visual] = 1
        kinds[0] = 0
        codes = ids.clone()
        for pos, (im, r, c) in zip(vin.visual.tolist(), vin.patches.tolist()):
            codes[pos] = patch_code(im, r, c)
        out.ids.append(ids)
        out.codes.append(codes)
        out.kinds.append(kinds)
        out.pixels.append(vin.pixel_values)
    return out


def uniform_mass(kinds: torch.Tensor) -> torch.Tensor:
    """[kind] mean over queries ``t >= 1`` of the share of keys ``<= t`` of each kind (uniform causal attention)."""
    onehot = torch.nn.functional.one_hot(kinds.long(), len(KINDS)).double()  # [pos, kind]
    n = kinds.numel()
    share = onehot.cumsum(0)[1:] / torch.arange(2, n + 1, dtype=torch.float64)[:, None]  # [t >= 1, kind]
    return share.mean(0)


class _VisionAccumulator(_Accumulator):
    """``_Accumulator`` plus the per-kind statistics (float64 sums over prompts; mergeable in the same way)."""

    _SUMS = _Accumulator._SUMS + ("mass_sum", "mass_sq", "uni_mass", "top_kind", "kmax_sum", "kmax_sq", "kcount",
                                  "massive_kind")

    def __init__(self, model, t: Thresholds, max_events: int, doc_offset: int = 0):
        super().__init__(model, t, max_events, doc_offset)
        n_l, n_h, k = model.cfg.n_layers, model.cfg.n_heads, len(KINDS)
        self.mass_sum, self.mass_sq = torch.zeros(n_l, n_h, k, dtype=torch.float64), torch.zeros(n_l, k, dtype=torch.float64)
        self.uni_mass, self.kcount = torch.zeros(k, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
        self.top_kind, self.massive_kind = torch.zeros(n_l, k, dtype=torch.float64), torch.zeros(n_l, k, dtype=torch.float64)
        self.kmax_sum, self.kmax_sq = torch.zeros(n_l, k, dtype=torch.float64), torch.zeros(n_l, k, dtype=torch.float64)
        self.kinds = torch.zeros(0, dtype=torch.long)
        self._oh: torch.Tensor | None = None  # the batch's one-hot kinds, built by _onehot once per batch

    def start_kinds(self, kinds: torch.Tensor) -> None:
        """kinds: [b, pos] kind of each position of the batch (padding: any value; ignored)."""
        self.kinds = kinds
        self._oh = None
        for b, n in enumerate(self.lens.tolist()):
            self.uni_mass += uniform_mass(kinds[b, :n])
            self.kcount += torch.bincount(kinds[b, :n], minlength=len(KINDS)).clamp_max(1).double()

    def _onehot(self, device) -> torch.Tensor:
        """[b, pos, kind] one-hot kinds, zero at padding (the batch's, built on its first call)."""
        if self._oh is None:
            oh = torch.nn.functional.one_hot(self.kinds.clamp_min(0), len(KINDS)).to(device)
            self._oh = oh * self.valid(self.kinds.shape[1], device)[..., None]
        return self._oh.to(device)  # no copy on the device it was built on ("cuda" and "cuda:0" alike)

    def pattern(self, layer: int, p: torch.Tensor) -> None:
        super().pattern(layer, p)
        p = p.detach()
        n = p.shape[-1]
        lens = self.lens.to(p.device)
        qv = self.valid(n, p.device)
        qv[:, 0] = False  # queries t >= 1
        per_q = torch.einsum("bhqk,bkc->bhqc", p, self._onehot(p.device).to(p.dtype)).double()  # [b, h, q, kind]
        mass = (per_q * qv[:, None, :, None]).sum(2) / (lens - 1).clamp_min(1)[:, None, None].double()  # [b, h, kind]
        self.mass_sum[layer] += mass.sum(0).cpu()
        self.mass_sq[layer] += mass.mean(1).pow(2).sum(0).cpu()

    def resid(self, layer: int, h: torch.Tensor) -> None:
        super().resid(layer, h)
        h = h.detach()
        valid = self.valid(h.shape[1], h.device)
        a = h.abs().double().masked_fill(~valid[..., None], float("nan"))
        med = a.flatten(1).nanmedian(dim=1).values  # [b]
        pos_max = a.nan_to_num(-1.0).amax(-1)  # [b, pos]; padding -1
        kinds = self.kinds.to(h.device)
        top = pos_max.argmax(1)  # [b]
        self.top_kind[layer] += torch.bincount(kinds.gather(1, top[:, None])[:, 0], minlength=len(KINDS)).double().cpu()
        oh = self._onehot(h.device).bool()  # [b, pos, kind]
        kmax = torch.where(oh, pos_max[..., None], torch.tensor(-1.0, dtype=pos_max.dtype, device=h.device)).amax(1)  # [b, k]
        present = oh.any(1)
        kmax = torch.where(present, kmax, torch.zeros_like(kmax))
        self.kmax_sum[layer] += kmax.sum(0).cpu()
        self.kmax_sq[layer] += kmax.pow(2).sum(0).cpu()
        hits = is_massive(a.nan_to_num(0.0), med[:, None, None], self.t).sum(-1)  # [b, pos]
        self.massive_kind[layer] += torch.einsum("bp,bpc->c", hits.double(), oh.double()).cpu()


@dataclass(frozen=True, kw_only=True)
class VisionExtremeReport(ExtremeTokenReport):
    """``ExtremeTokenReport`` of image + text prompts, with statistics split by position kind (``KINDS``: first, visual,
    text; see ``interp.extreme.vision`` for the definitions)."""

    n_visual: int
    "visual tokens over all prompts"
    kind_prompts: torch.Tensor
    "[kind] number of prompts holding a position of the kind"
    mass: torch.Tensor
    "[layer, head, kind] mean over prompts of the mean attention (queries t >= 1) on keys of the kind"
    mass_sq: torch.Tensor
    "[layer, kind] mean over prompts of the square of the head-mean mass (for standard errors)"
    uniform_mass: torch.Tensor
    "[kind] the mass uniform causal attention gives each kind (mean over prompts)"
    top_kind: torch.Tensor
    "[layer, kind] prompts whose largest |resid_post| entry of the layer sits at a position of the kind"
    kind_absmax: torch.Tensor
    "[layer, kind] mean over the prompts holding the kind of its largest |resid_post| entry (NaN if none)"
    kind_absmax_sq: torch.Tensor
    "[layer, kind] mean of its square (for standard errors)"
    massive_kind: torch.Tensor
    "[layer, kind] massive activations counted by the kind of their position"
    kinds: list = field(default_factory=lambda: list(KINDS))
    "[kind] the kind names"
    _shapes = {**ExtremeTokenReport._shapes, "kind_prompts": "kind", "mass": "layer head kind", "mass_sq": "layer kind",
               "uniform_mass": "kind", "top_kind": "layer kind", "kind_absmax": "layer kind", "kind_absmax_sq": "layer kind",
               "massive_kind": "layer kind", "kinds": "kind"}

    @property
    def mass_layer(self) -> torch.Tensor:
        """[layer, kind] attention mass per kind, averaged over heads (rows sum to 1)."""
        return self.mass.mean(1)

    @property
    def mass_se(self) -> torch.Tensor:
        """[layer, kind] standard error over prompts of ``mass_layer`` (NaN for a single prompt)."""
        return _se(self.mass_layer, self.mass_sq, self.n_texts)

    @property
    def kind_absmax_se(self) -> torch.Tensor:
        """[layer, kind] standard error over prompts of ``kind_absmax``."""
        return torch.stack([_se(self.kind_absmax[:, k], self.kind_absmax_sq[:, k], int(self.kind_prompts[k]))
                            for k in range(len(self.kinds))], -1)

    def summary(self) -> dict[str, str]:
        out = super().summary()
        m, u = self.mass_layer, self.uniform_mass
        out["attention mass first/visual/text"] = (
            ", ".join(f"L{i}: {'/'.join(f'{x:.2f}' for x in row.tolist())}" for i, row in enumerate(m))
            + f" (uniform {'/'.join(f'{x:.2f}' for x in u.tolist())})")
        out["largest activation at first/visual/text"] = ", ".join(
            f"L{i}: {'/'.join(str(int(x)) for x in row.tolist())}" for i, row in enumerate(self.top_kind))
        return out


def _se(mean: torch.Tensor, mean_sq: torch.Tensor, n: int) -> torch.Tensor:
    if n < 2:
        return torch.full_like(mean, float("nan"))
    var = (mean_sq - mean.pow(2)).clamp_min(0) * n / (n - 1)
    return (var / n).sqrt()


@torch.no_grad()
def scan_images(model, prompts: Sequence, *, batch_size: int = 8, max_len: int | None = None,
                thresholds: Thresholds | None = None, max_events: int = 1000, progress: bool = True) -> VisionExtremeReport:
    """The ``VisionExtremeReport`` of ``prompts`` (a list of image + text prompts, see ``encode_prompts``) under the
    vision-language ``model``: every ``ExtremeTokenReport`` statistic plus the split by first / visual / text position.
    Batches of ``batch_size`` prompts, right-padded, their images in prompt order; no activation is cached."""
    from interp.extreme.inputs import check_batch_size

    batch_size = check_batch_size(batch_size)
    t = thresholds or Thresholds()
    rows = encode_prompts(model, prompts, max_len)
    acc = _VisionAccumulator(model, t, max_events)
    hooks = _hooks(model, acc)
    device = model.cfg.device
    pad = pad_id(model)
    if pad == image_token_id(model):  # a pad equal to the image slot would ask for one more image
        pad = 0 if pad != 0 else 1
    n_batches = math.ceil(len(rows.ids) / batch_size)
    for idx, ids, lens in tqdm(batches(rows.ids, batch_size, pad), total=n_batches, desc="scan", disable=not progress):
        codes = torch.full(ids.shape, pad, dtype=torch.long)
        kinds = torch.zeros(ids.shape, dtype=torch.long)
        for b, i in enumerate(idx):
            codes[b, : lens[b]] = rows.codes[i]
            kinds[b, : lens[b]] = rows.kinds[i]
        acc.start_batch(idx, codes, lens)
        acc.start_kinds(kinds)
        pix = [rows.pixels[i] for i in idx if rows.pixels[i] is not None]
        kw = {"pixel_values": torch.cat(pix).to(device)} if pix else {}
        model.run_with_hooks(ids.to(device), fwd_hooks=hooks, return_type=None, **kw)
    base = finish_scan(model, acc)
    n = acc.n_texts
    have = acc.kcount.clamp_min(1)[None]
    kabs = (acc.kmax_sum / have).masked_fill(acc.kcount[None] == 0, float("nan"))
    return VisionExtremeReport(
        **{f.name: getattr(base, f.name) for f in fields(ExtremeTokenReport)},
        n_visual=int(sum(int((k == 1).sum()) for k in rows.kinds)), kind_prompts=acc.kcount.float(),
        mass=(acc.mass_sum / n).float(), mass_sq=(acc.mass_sq / n).float(), uniform_mass=(acc.uni_mass / n).float(),
        top_kind=acc.top_kind.float(), kind_absmax=kabs.float(), kind_absmax_sq=(acc.kmax_sq / have).float(),
        massive_kind=acc.massive_kind.float(),
    )

"""Extreme tokens: attention sinks, value-state drains, residual peaks, massive activations, active/dormant heads.

* ``scan(model, texts)`` -> ``ExtremeTokenReport`` (streaming corpus statistics, thresholds included); given image +
  text prompts of a vision-language model (each a list of text and image parts) -> ``VisionExtremeReport``
  (``interp.extreme.vision.scan_images``: the same statistics split by first / visual / text position);
* ``head_activity(model, domains)`` -> ``HeadActivity`` (sink score and ablation loss change per head and domain);
* ``token_probe(model, layer, head, context)`` -> ``TokenProbe`` (which current tokens wake a head up);
* ``bb_domains(task)`` / ``bb_probe_context(task)``: the Bigram-Backcopy inputs for the two above.
"""

from __future__ import annotations

import functools

from interp.extreme.report import ExtremeTokenReport, Thresholds
from interp.extreme.scan import scan as _scan_texts
from interp.extreme.vision import VisionExtremeReport, is_image_prompts, scan_images

__all__ = ["ExtremeTokenReport", "Thresholds", "VisionExtremeReport", "scan", "scan_images"]


@functools.wraps(_scan_texts)
def scan(model, texts, **options) -> ExtremeTokenReport:
    if is_image_prompts(texts):
        return scan_images(model, texts, **options)
    return _scan_texts(model, texts, **options)

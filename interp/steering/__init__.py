"""GrAInS steering: contrastive IG attribution -> steering vectors -> norm-preserving inference-time steering.

- ``ContrastExample`` / ``load_contrast`` / ``save_contrast``: steering data (JSONL).
- ``grains_attribution(model, example)``: IG of log P(y⁺|x) − log P(y⁻|x) as a ``TokenAttribution``.
- ``fit_grains(model, examples, layers=...)`` and ``fit_mean_difference(model, examples, layers)``: ``SteeringVectors``.
- ``SteeringVectors.steer(model, alpha)``: context manager (``.hooks(model, alpha)`` for ``run_with_hooks``).
- ``evaluate(model, vectors, examples, alphas=..., fluency_texts=...)``: ``SteeringEval``.
- On a vision-language model: ``VisionContrast`` (a prompt of text and image parts), ``grains_attribution`` takes it,
  ``fit_grains_vlm`` / ``fit_mean_difference_vlm`` / ``evaluate_vlm`` (``interp.steering.vision``).

Spec and the reference code's bugs: ../shared/research/grains.md.
"""

from interp.steering.attribution import grains_attribution, top_k_positions
from interp.steering.data import ContrastExample, VisionContrast, load_contrast, save_contrast, stories_contrast
from interp.steering.evaluate import SteeringEval, evaluate
from interp.steering.fit import aggregate, fit_grains, fit_mean_difference, mask_tokens
from interp.steering.vectors import SteeringVectors, steering_hook
from interp.steering.vision import VlmSteeringEval, evaluate_vlm, fit_grains_vlm, fit_mean_difference_vlm

__all__ = [
    "ContrastExample", "load_contrast", "save_contrast", "stories_contrast", "grains_attribution", "fit_grains",
    "fit_mean_difference", "aggregate", "top_k_positions", "mask_tokens", "SteeringVectors", "steering_hook",
    "SteeringEval", "evaluate", "VisionContrast", "fit_grains_vlm", "fit_mean_difference_vlm", "evaluate_vlm",
    "VlmSteeringEval",
]

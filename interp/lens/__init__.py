"""Lenses: read what each layer of a transformer LM "thinks" the next token is, or what a latent vector means.

- ``logit_lens(model, prompt, target=..., lens=None)``: decode every layer's residual stream through the
  model's own final norm and unembedding (``LensResult``, [layer, pos] statistics and top-k).
- ``TunedLens``: learned per-layer affine translators before that decoder (``TunedLens.train``, ``save``,
  ``load``); pass it as ``logit_lens(..., lens=tuned)``.
- ``LatentIndex`` / ``latent_lens``: LatentLens, describe a hidden state by its nearest contextual token
  states from a text corpus, searched over all stored layers.
"""

from interp.lens.logit import STATISTICS, LensResult, decode, layer_stride, logit_lens, resolve_target
from interp.lens.tuned import TunedLens, heldout_kl

__all__ = [
    "STATISTICS", "LensResult", "decode", "layer_stride", "logit_lens", "resolve_target", "TunedLens", "heldout_kl",
]
from interp.lens.latent import LatentIndex, LatentLensResult, Neighbors, default_layers, latent_lens  # noqa: E402

__all__ += ["LatentIndex", "LatentLensResult", "Neighbors", "default_layers", "latent_lens"]

"""Model loading (zoo, real GGUF models, local folders, hub) and small helpers about a loaded model."""

from interp.models.loading import (
    default_device,
    load_model,
    model_name,
    n_parameters,
    special_token_id,
    str_tokens,
    to_tokens,
)
from interp.models.real import REAL_MODELS, is_installed, real_model_file
from interp.models.tokens import encode_texts, greedy_ids, model_device, pad_right, text_ids

__all__ = [
    "load_model",
    "default_device",
    "model_name",
    "n_parameters",
    "special_token_id",
    "to_tokens",
    "str_tokens",
    "text_ids",
    "encode_texts",
    "pad_right",
    "greedy_ids",
    "model_device",
    "REAL_MODELS",
    "is_installed",
    "real_model_file",
]

"""Random-weight models of several architecture families, built offline from local configs.

Used by the tests and benchmarks (the captum ``basic_models`` idea): ``random_model("llama")`` writes a
tiny Hugging Face directory (config, random weights, a character tokenizer) and boots it as a bridge.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

FAMILIES = ("gpt2", "llama", "neox")
_SYMBOLS = list("abcdefghijklmnopqrstuvwxyz .,!?")


def _config(family: str, vocab: int, d_model: int, n_layers: int, n_heads: int, n_ctx: int, bos: int):
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig

    common = dict(vocab_size=vocab, bos_token_id=bos, eos_token_id=bos, pad_token_id=bos + 1)
    if family == "gpt2":
        return GPT2Config(n_embd=d_model, n_layer=n_layers, n_head=n_heads, n_positions=n_ctx, **common)
    if family == "llama":  # RoPE, RMSNorm, grouped-query attention, gated SiLU MLP
        return LlamaConfig(
            hidden_size=d_model, intermediate_size=2 * d_model, num_hidden_layers=n_layers, num_attention_heads=n_heads,
            num_key_value_heads=max(1, n_heads // 2), max_position_embeddings=n_ctx, **common,
        )
    if family == "neox":  # parallel attention + MLP, partial rotary
        return GPTNeoXConfig(
            hidden_size=d_model, intermediate_size=4 * d_model, num_hidden_layers=n_layers, num_attention_heads=n_heads,
            max_position_embeddings=n_ctx, rotary_pct=0.25, **common,
        )
    raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")


def random_model_dir(
    family: str = "gpt2", out: str | Path | None = None, *, seed: int = 0, d_model: int = 64, n_layers: int = 2,
    n_heads: int = 4, n_ctx: int = 64,
) -> Path:
    """Write a random-weight HF model of ``family`` to ``out`` (a new temporary folder by default)."""
    from transformers import AutoModelForCausalLM

    from interp.zoo.tokenizers import char_tokenizer

    tok = char_tokenizer(_SYMBOLS)
    cfg = _config(family, len(tok), d_model, n_layers, n_heads, n_ctx, tok.bos_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    out = Path(out) if out else Path(tempfile.mkdtemp(prefix=f"interp-{family}-"))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def random_model(family: str = "gpt2", **kwargs):
    """A random-weight ``TransformerBridge`` of ``family`` ("gpt2", "llama", "neox") on the CPU."""
    from interp.models import load_model

    return load_model(random_model_dir(family, **kwargs), device="cpu")


VLM_FAMILIES = ("llava-clip", "llava-siglip", "gemma3", "idefics3")
"""The VLM families the unit tier builds at random and loads through the bridge. Qwen2.5-VL is not among them: the
bridge's adapter for it imports torchvision, which has no build for the CPU torch this project pins (see
tests/unit/test_vision.py, which checks that loading one is a clear error that installs nothing)."""


def random_vlm_dir(family: str = "llava-clip", out: str | Path | None = None, *, seed: int = 0, image_size: int = 32,
                   patch_size: int = 8) -> Path:
    """Write a random-weight VLM of ``family`` to ``out`` (a new temporary folder by default): "llava-clip" /
    "llava-siglip" (LLaVA with that tower and a tiny Llama LM; ``(image_size / patch_size)^2`` visual tokens) or "gemma3"
    (Gemma 3 multimodal: SigLIP tower pooled to 4 visual tokens, a tiny Gemma 3 LM) or "idefics3" (its SigLIP-style
    tower, a pixel-shuffle connector folding 2 x 2 patches into one visual token, a tiny Llama LM); a character
    tokenizer with ``<image>`` (and Gemma's ``<boi>`` / ``<eoi>``, Idefics3's ``<fake_token_around_image>`` /
    ``<global-img>``) tokens."""
    import json

    from transformers import (
        CLIPVisionConfig,
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3VisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        SiglipVisionConfig,
    )

    from interp.zoo.tokenizers import char_tokenizer

    if family not in VLM_FAMILIES:
        raise ValueError(f"unknown VLM family {family!r}; choose one of {VLM_FAMILIES}")
    tok = char_tokenizer(_SYMBOLS)
    tok.add_special_tokens({"additional_special_tokens": ["<image>", "<boi>", "<eoi>", "<fake_token_around_image>",
                                                          "<global-img>"]})
    image_id, boi, eoi = (tok.convert_tokens_to_ids(t) for t in ("<image>", "<boi>", "<eoi>"))
    vis = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=image_size,
               patch_size=patch_size)
    torch.manual_seed(seed)
    if family == "gemma3":
        text = Gemma3TextConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                num_key_value_heads=2, head_dim=16, vocab_size=len(tok), max_position_embeddings=128,
                                sliding_window=64, bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)
        cfg = Gemma3Config(vision_config=SiglipVisionConfig(**vis), text_config=text, mm_tokens_per_image=4,
                           image_token_index=image_id, boi_token_index=boi, eoi_token_index=eoi)
        model = Gemma3ForConditionalGeneration(cfg)
    elif family == "idefics3":
        text = _config("llama", len(tok), 64, 2, 4, 128, tok.bos_token_id)
        cfg = Idefics3Config(vision_config=Idefics3VisionConfig(**vis).to_dict(), text_config=text.to_dict(),
                             image_token_id=image_id, scale_factor=2)
        model = Idefics3ForConditionalGeneration(cfg)
    else:
        tower = CLIPVisionConfig(**vis) if family == "llava-clip" else SiglipVisionConfig(**vis)
        text = _config("llama", len(tok), 64, 2, 4, 128, tok.bos_token_id)
        # SigLIP has no CLS token: LLaVA reads all its patches ("full"); CLIP's CLS is dropped ("default")
        strategy = "default" if family == "llava-clip" else "full"
        cfg = LlavaConfig(vision_config=tower, text_config=text, image_token_id=image_id, vision_feature_layer=-1,
                          vision_feature_select_strategy=strategy, projector_hidden_act="gelu")
        model = LlavaForConditionalGeneration(cfg)
    out = Path(out) if out else Path(tempfile.mkdtemp(prefix=f"interp-{family}-"))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "image_std": [0.5] * 3}), encoding="utf-8")
    return out


def random_vlm(family: str = "llava-clip", **kwargs):
    """A random-weight VLM ``TransformerBridge`` of ``family`` (one of ``VLM_FAMILIES``) on the CPU."""
    from interp.models import load_model

    return load_model(random_vlm_dir(family, **kwargs), device="cpu")

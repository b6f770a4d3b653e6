"""Write the scene-world VLMs: the zoo's ``scenes-vlm`` (a whole LLaVA folder) and the parts of the SmolLM2 VLM.

``python -m interp.zoo train scenes-vlm`` builds a complete ``LlavaForConditionalGeneration`` folder (tower,
projector and the small text LM) under ``data/models/scenes-vlm``. ``build_parts`` trains only the tower and the
projector through a given frozen LM (SmolLM2 for ``smollm2-vlm``; ``interp.models.vlm`` supplies its folder and
assembles the full model at load time) and writes them with the LLaVA config.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import save_file

from interp.io import atomic_write_dir
from interp.zoo import scenes as world
from interp.zoo import vlm_train as vt

__all__ = ["IMAGE_TOKEN", "preprocessor_config", "build_scenes_vlm", "build_parts"]

IMAGE_TOKEN = "<image>"


def preprocessor_config() -> dict:
    """A ``CLIPImageProcessor`` config matching ``vlm_train.pixel_values`` (no resize or crop at SIZE pixels)."""
    return {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"height": world.SIZE, "width": world.SIZE},
            "do_center_crop": False, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": list(vt.IMAGE_MEAN), "image_std": list(vt.IMAGE_STD), "do_convert_rgb": True, "resample": 2}


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_scenes_vlm(out: str | Path, seed: int = 0) -> dict:
    """Train and write ``scenes-vlm`` to folder ``out``; returns the numbers written to its card."""
    from interp.zoo.tokenizers import train_bpe

    texts = world.caption_corpus(20000, seed=seed) + ["what colour is the circle? red."]
    tok = train_bpe(texts, 512, extra_special=(IMAGE_TOKEN,))
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    split = [w for w in (*world.COLOURS, *world.SHAPES) if len(tok.encode(" " + w, add_special_tokens=False)) != 1]
    if split:  # the lenses and the caption accuracy read one token per attribute word
        raise RuntimeError(f"the tokenizer splits {split}: raise its vocabulary size")
    tower, stats = vt.train_tower(vt.TowerRecipe(seed=seed))
    lm, s2 = vt.train_text_lm(tok, seed=seed, steps=400)
    r = vt.ConnectorRecipe(seed=seed, steps=1500, batch=32, lr=3e-3, threads=1, lm_lr=1e-3)
    projector, s3 = vt.train_connector(lm, tok, tower, image_id, r)
    stats |= s2 | s3
    stats["heldout_caption_acc"] = vt.caption_accuracy(lm, tok, tower, projector, image_id)
    stats["heldout_caption_acc_no_image"] = vt.caption_accuracy(lm, tok, tower, projector, image_id, with_image=False)

    def write(tmp: Path) -> None:
        _write_json(tmp / "config.json", vt.llava_config(tower, lm.config, image_id))
        save_file(vt.llava_state(tower, projector, lm), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tok.save_pretrained(tmp)
        _write_json(tmp / "preprocessor_config.json", preprocessor_config())
        _write_json(tmp / "zoo.json", {"name": "scenes-vlm", "seed": seed, "connector": asdict(r), "stats": stats})
        (tmp / "MODEL_CARD.md").write_text(_card(stats, seed), encoding="utf-8")

    atomic_write_dir(out, write)
    return stats


def build_parts(out: str | Path, lm, tokenizer, image_id: int, *, seed: int = 0, recipe: vt.ConnectorRecipe | None = None,
                extra: dict | None = None) -> dict:
    """Train the tower and the projector through the frozen ``lm`` and write them (LLaVA names, config, stats) to
    folder ``out`` (``parts.safetensors``, ``config.json``, ``preprocessor_config.json``, ``parts.json``)."""
    tower, stats = vt.train_tower(vt.TowerRecipe(seed=seed))
    r = recipe or vt.ConnectorRecipe(seed=seed)
    projector, s3 = vt.train_connector(lm, tokenizer, tower, image_id, r)
    stats |= s3
    stats["heldout_caption_acc"] = vt.caption_accuracy(lm, tokenizer, tower, projector, image_id)
    stats["heldout_caption_acc_no_image"] = vt.caption_accuracy(lm, tokenizer, tower, projector, image_id, with_image=False)

    def write(tmp: Path) -> None:
        _write_json(tmp / "config.json", vt.llava_config(tower, lm.config, image_id))
        save_file(vt.llava_state(tower, projector), str(tmp / "parts.safetensors"), metadata={"format": "pt"})
        _write_json(tmp / "preprocessor_config.json", preprocessor_config())
        _write_json(tmp / "parts.json", {"seed": seed, "connector": asdict(r), "stats": stats, **(extra or {})})

    atomic_write_dir(out, write)
    return stats


def _card(s: dict, seed: int) -> str:
    return f"""# scenes-vlm

A LLaVA-shaped vision-language model of the scene world (`interp.zoo.scenes`), built connector-only like the
LatentLens paper's models, with one difference: a small CLIP vision tower (2 layers, d 64, one 12-pixel patch per grid
cell: 16 visual tokens per 48x48 image) trained on per-patch colour and shape labels, then frozen; a stories-sized Llama
LM (4 layers, d 128) pretrained on text about the world; LLaVA's two-layer GELU projector trained on captions of sparse
scenes of 1-3 objects ("<image> red circle, blue cross."), **with the LM trained too** (lr 1e-3 against the projector's
3e-3): with the LM frozen the projector learned nothing in 300-800 steps (caption accuracy at the text-only floor), as a
tiny LM trained only on these templates has no mechanism for reading earlier context. The real-LM VLM (`smollm2-vlm`)
keeps its LM frozen, as in the paper. A standard `LlavaForConditionalGeneration` folder.

Reproduce: `python -m interp.zoo train scenes-vlm` (seed {seed}, one CPU thread).

| quantity | value |
|---|---|
| tower held-out patch colour / shape accuracy | {s['tower_heldout_colour_acc']:.3f} / {s['tower_heldout_shape_acc']:.3f} |
| text LM final loss | {s['lm_final_loss']:.3f} |
| connector final loss | {s['connector_final_loss']:.3f} |
| held-out caption colour/shape word accuracy (teacher-forced) | {s['heldout_caption_acc']:.3f} |
| the same with the image replaced by zeros (text-only floor) | {s['heldout_caption_acc_no_image']:.3f} |
| seconds: tower / LM / connector | {s['tower_seconds']} / {s['lm_seconds']} / {s['connector_seconds']} |
"""

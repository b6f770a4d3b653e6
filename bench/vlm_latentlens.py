"""The LatentLens paper's claim on the SmolLM2 VLM, judged by planted truth: which lens makes visual tokens interpretable?

A visual token counts as interpretable under a lens at a layer when one of its top-5 words names an attribute its patch
shows (``interp.lens.visual_truth``; colour or shape, with the synonym list of ``interp.zoo.scenes.SYNONYMS``); empty
patches are left out. Lenses: LatentLens (index built from the LLM's text side: descriptions of coloured shapes plus
reference-manual prose, ``--index``), the embedding lens (nearest input-embedding rows), the logit lens. Floor: five
uniformly random vocabulary words.

    python bench/vlm_latentlens.py --model smollm2-vlm --images 30 --out bench/results/vlm_latentlens.md

Writes the markdown table (per layer and overall, rate +- binomial standard error) and a JSON of the raw hits beside it.
Also times LatentLens over all visual tokens of one image at all layers (median of the held-out images).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from interp import load_model
from interp.lens.latent import LatentIndex
from interp.lens.visual import visual_lens
from interp.lens.visual_truth import patch_hits, random_word_rate, rate, shown
from interp.zoo import scenes as world


def build_index(model, out: Path, n_captions: int, n_prose: int) -> LatentIndex:
    """The text-side index: ``n_captions`` descriptions of coloured shapes and ``n_prose`` manual paragraphs."""
    from interp.corpora import prose

    if (out / "index.json").is_file():
        return LatentIndex.load(out)
    texts = world.caption_corpus(n_captions, seed=1) + prose("train")[:n_prose]
    return LatentIndex.build(model, texts, path=out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-vlm")
    p.add_argument("--images", type=int, default=30)
    p.add_argument("--captions", type=int, default=1000)
    p.add_argument("--prose", type=int, default=100)
    p.add_argument("--index", type=Path, default=Path("bench/results/.vlm_index"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("bench/results/vlm_latentlens.md"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_model(a.model, device="cpu")
    t0 = time.time()
    index = build_index(model, a.index, a.captions, a.prose)
    build_s = time.time() - t0
    held = world.scenes(a.images, "heldout")
    n_layers = model.cfg.n_layers
    res, secs = {}, []
    for lens in ("latent", "embedding", "logit"):
        parts = {"top5": [], "top1": [], "top5_shuffled": [], "top1_shuffled": []}
        keep = []
        for i, s in enumerate(held):
            t = time.perf_counter()
            r = visual_lens(model, [s.pixels], lens=lens, index=index if lens == "latent" else None, k=5)
            if lens == "latent":
                secs.append(time.perf_counter() - t)
            for k in (5, 1):
                parts[f"top{k}"].append(patch_hits(r, [s], k=k))
                parts[f"top{k}_shuffled"].append(patch_hits(r, [s], k=k, shuffle_seed=i))
            keep.append(shown(r, [s]))
        kk = torch.cat(keep)
        hh = {name: torch.cat(v, 1) for name, v in parts.items()}
        res[lens] = {name: {"per_layer": [rate(h[j], kk) for j in range(h.shape[0])], "overall": rate(h, kk)}
                     for name, h in hh.items()}
        res[lens]["patches"] = int(kk.sum())
        res[lens]["best"] = max(range(n_layers + 1), key=lambda j: res[lens]["top5"]["per_layer"][j][0]
                                - res[lens]["top5_shuffled"]["per_layer"][j][0])
    tok = model.tokenizer
    vocab = [tok.convert_tokens_to_string([t]) for t in tok.convert_ids_to_tokens(list(range(model.cfg.d_vocab)))]
    floor = random_word_rate(vocab, held)
    fmt = lambda x: f"{x[0]:.3f} +- {x[1]:.3f}"  # noqa: E731
    lines = [
        f"# LatentLens vs embedding lens vs logit lens on `{a.model}`, judged by planted truth",
        "",
        f"Command: `python bench/vlm_latentlens.py --model {a.model} --images {a.images} --captions {a.captions} "
        f"--prose {a.prose} --threads {a.threads}` (2-core CPU). {a.images} held-out dense scenes, "
        f"{res['latent']['patches']} object patches (empty patches left out). Index: {len(index)} rows at layers "
        f"{index.layers}, from {a.captions} descriptions of coloured shapes + {a.prose} reference-manual paragraphs, built in "
        f"{build_s:.0f} s (reused when the folder exists). A token is interpretable when one of its top-k words names its "
        "patch's colour or shape (synonym list in `interp.zoo.scenes.SYNONYMS`). *Shuffled*: the same words judged "
        "against another object patch of the same image (the control: words that name some attribute but not this "
        "patch's score there too). Rates +- binomial standard error.",
        "",
        "| lens | layer (largest top-5 gap over shuffled) | top-5 | top-5 shuffled | top-1 | top-1 shuffled | "
        "all layers: top-5 / shuffled |",
        "|---|---|---|---|---|---|---|",
    ]
    for lens, v in res.items():
        j = v["best"]
        lines.append(f"| {lens} | {j} | {fmt(v['top5']['per_layer'][j])} | {fmt(v['top5_shuffled']['per_layer'][j])} | "
                     f"{fmt(v['top1']['per_layer'][j])} | {fmt(v['top1_shuffled']['per_layer'][j])} | "
                     f"{v['top5']['overall'][0]:.3f} / {v['top5_shuffled']['overall'][0]:.3f} |")
    lines.append(f"| random words (floor, top-5) | | {fmt(floor)} | | | | |")
    lines += ["", "Per layer, top-5 rate (shuffled control in brackets); 0 = the connector's output as the LM's input, "
              f"{n_layers} = the last block's output:", "", "| layer | " + " | ".join(res) + " |", "|---" * (len(res) + 1) + "|"]
    for j in range(n_layers + 1):
        lines.append(f"| {j} | " + " | ".join(f"{v['top5']['per_layer'][j][0]:.3f} ({v['top5_shuffled']['per_layer'][j][0]:.3f})"
                                               for v in res.values()) + " |")
    lines += ["", f"LatentLens over all 16 visual tokens of one image at all {n_layers + 1} layers: median "
              f"{statistics.median(secs):.2f} s (min {min(secs):.2f}, max {max(secs):.2f}) over {len(secs)} images, "
              f"{a.threads} threads, forward pass included.", ""]
    a.out.write_text("\n".join(lines), encoding="utf-8")
    a.out.with_suffix(".json").write_text(json.dumps({"results": res, "floor": floor, "latent_seconds": secs,
                                                      "index_rows": len(index), "index_layers": index.layers}, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

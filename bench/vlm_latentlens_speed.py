"""LatentLens over every visual token of one image at every layer: the workbench against the same thing glued by hand.

The hand-glued twin is what a researcher writes without the workbench, as the paper's reference code does: the Hugging
Face ``LlavaForConditionalGeneration`` forward with ``output_hidden_states=True``, then for each layer one cosine matmul
of the visual tokens against the whole index (its vectors normalised once, outside the timing) and a top-k. Both read
the bundled index of the model (``interp.lens.bundled.default_index``), the same image, the same k. Runs alternate
(workbench first on even images, the twin first on odd ones) so a busy machine slows both alike; medians are quoted.
Agreement: the share of (layer, visual token) whose top-1 neighbour token is the same in both, over the layers where
the two read the same state (Hugging Face's last hidden state has the final norm applied; the lens reads the last
block's output before it, so the last layer is left out of the comparison).

    python bench/vlm_latentlens_speed.py --images 30 --out bench/results/vlm_latentlens_speed.md
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from interp import load_model
from interp.lens.bundled import default_index
from interp.lens.visual import visual_lens
from interp.models.vision import encode
from interp.zoo import scenes as world


def hand_glued(hf, ids: torch.Tensor, pix: torch.Tensor, visual: torch.Tensor, E: torch.Tensor, k: int) -> torch.Tensor:
    """[layer, vis, k] index rows of the top-k cosine neighbours of every visual token at every hidden state."""
    with torch.no_grad():
        hs = hf(input_ids=ids, pixel_values=pix, output_hidden_states=True).hidden_states
        q = torch.nn.functional.normalize(torch.stack([h[0, visual] for h in hs]).float(), dim=-1)  # [L+1, vis, d]
        return (q @ E.T).topk(k, dim=-1).indices


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-vlm")
    p.add_argument("--images", type=int, default=30)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("bench/results/vlm_latentlens_speed.md"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_model(a.model, device="cpu")
    hf = model.original_model.eval()
    index = default_index(model)
    layers = index.layers
    E = torch.cat([index.vectors[x].float() * index.inv_norms[x][:, None].float() for x in layers])  # all layers' rows
    row_token = torch.cat([index._meta(torch.arange(len(index)))[0]] * len(layers))
    ours_s, twin_s, agree, n = [], [], 0, 0
    for i, s in enumerate(world.scenes(a.images, "heldout")):
        vin = encode(model, [s.pixels])

        def ours(s=s):
            return visual_lens(model, [s.pixels], lens="latent", index=index, k=a.k)

        def twin(vin=vin):
            return hand_glued(hf, vin.ids, vin.pixel_values, vin.visual, E, a.k)

        order = (ours, twin) if i % 2 == 0 else (twin, ours)
        out = {}
        for f in order:
            t = time.perf_counter()
            out[f.__name__] = f()
            (ours_s if f is ours else twin_s).append(time.perf_counter() - t)
        same = out["ours"].ids[:-1, :, 0] == row_token[out["twin"][:-1, :, 0]]
        agree += int(same.sum())
        n += same.numel()
    mo, mt = statistics.median(ours_s), statistics.median(twin_s)
    lines = [
        f"# LatentLens on all visual tokens of one image at all layers: workbench vs hand-glued (`{a.model}`)",
        "",
        f"Command: `python bench/vlm_latentlens_speed.py --images {a.images} --threads {a.threads}` on the 2-core CPU "
        f"machine (other work was running: both sides alternate, medians). Bundled index: {len(index)} rows at layers "
        f"{layers}; {model.cfg.n_layers + 1} layers x 16 visual tokens per image, k = {a.k}.",
        "",
        "| | median s / image | min | max |",
        "|---|---|---|---|",
        f"| workbench `visual_lens(..., lens='latent')` | {mo:.3f} | {min(ours_s):.3f} | {max(ours_s):.3f} |",
        f"| hand-glued (HF forward with all hidden states + one matmul per layer) | {mt:.3f} | {min(twin_s):.3f} | "
        f"{max(twin_s):.3f} |",
        "",
        f"Ratio (hand-glued / workbench, medians): **{mt / mo:.2f}x**. Top-1 neighbour token the same on "
        f"{agree / n:.4f} of {n} (layer, visual token) pairs (all layers but the last).",
        "",
    ]
    a.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

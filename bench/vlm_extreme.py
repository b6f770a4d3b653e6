"""Extreme tokens in VLM inputs: do visual tokens take part in the attention sinks and massive activations, or does
the first (BOS) token keep them all?

Held-out scenes with a question about one object (``Scene.questions``), each prompt ``[image, " Question: ...
Answer:"]`` (the image first, as the VLM was trained), scanned once with ``interp.extreme.scan`` (streaming; the
image-prompt statistics of ``interp.extreme.vision``). Per layer: the share of attention (queries t >= 1, mean over
heads and prompts) on the first token, the visual tokens and the text tokens, against what uniform causal attention
would give; the kind of the position holding each prompt's largest |activation|; the largest |activation| of each kind;
massive activations by kind. Standard errors over prompts. A text-only control scans the same questions without the
image.

    python bench/vlm_extreme.py --model smollm2-vlm --scenes 40 --out bench/results/vlm_extreme.md
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
from pathlib import Path

import torch

from interp import load_model
from interp.extreme import scan, scan_images
from interp.extreme.prompt import inspect_prompt
from interp.zoo import scenes as world


def prompts(n: int) -> tuple[list, list[str]]:
    """(``n`` image prompts of held-out scenes with a question, the same questions as text)."""
    out, texts, i = [], [], 0
    while len(out) < n:
        s = world.scene(i, "heldout")
        i += 1
        qs = s.questions()
        if qs:
            q = f" Question: {qs[0]['question']} Answer:"
            out.append([s.pixels, q])
            texts.append(q.strip())
    return out, texts


def _f(x: float, se: float | None = None, digits: int = 3) -> str:
    if se is None or not math.isfinite(se):
        return f"{x:.{digits}f}"
    return f"{x:.{digits}f} ± {se:.{digits}f}"


def _ranges(layers: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"layers 1-3, 7"``."""
    out, start = [], None
    for i, x in enumerate(layers):
        start = x if start is None else start
        if i + 1 == len(layers) or layers[i + 1] != x + 1:
            out.append(f"{start}-{x}" if x > start else str(x))
            start = None
    return ("layers " + ", ".join(out)) if out else "none"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-vlm")
    p.add_argument("--scenes", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("bench/results/vlm_extreme.md"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_model(a.model, device="cpu")
    ps, texts = prompts(a.scenes)
    t0 = time.perf_counter()
    r = scan(model, ps, batch_size=a.batch_size, progress=True)
    secs = time.perf_counter() - t0
    c = scan_images(model, texts, batch_size=a.batch_size, progress=False)  # strings: the first/text split, no image
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = r.n_texts
    m, se, u = r.mass_layer, r.mass_se, r.uniform_mass
    kabs, kse = r.kind_absmax, r.kind_absmax_se
    n_l = m.shape[0]
    lines = [
        f"# Extreme tokens in VLM inputs on `{a.model}`", "",
        f"Command: `python bench/vlm_extreme.py --model {a.model} --scenes {a.scenes} --threads {a.threads}` (2-core CPU "
        f"shared with other jobs). {n} held-out scenes, each `[image, \" Question: what colour is the <shape>? Answer:\"]` "
        f"({r.n_tokens} tokens, {r.n_visual} of them visual: {r.n_visual // n} per image after 1 BOS); one streaming scan "
        f"({secs:.1f} s), peak RSS of the run {peak:.0f} MB. ± = standard error over the {n} prompts. Uniform causal "
        f"attention would give first / visual / text {u[0]:.3f} / {u[1]:.3f} / {u[2]:.3f} of the mass.", "",
        "## Where the attention goes (queries t >= 1, mean over heads)", "",
        "| layer | first (BOS) | visual | text | visual / uniform | text-only control: first |", "|---|---|---|---|---|---|"]
    cm = c.mass_layer[:, 0]
    for layer in range(n_l):
        lines.append(f"| {layer} | {_f(m[layer, 0], se[layer, 0])} | {_f(m[layer, 1], se[layer, 1])} | "
                     f"{_f(m[layer, 2], se[layer, 2])} | {m[layer, 1] / u[1]:.2f} | {cm[layer]:.3f} |")
    lines += ["", "(The text-only control is the same questions without the image, measured the same way.)", "",
              "## Where the largest activations sit", "",
              "| layer | prompts whose largest \\|a\\| is at first / visual / text | largest \\|a\\| at first | at a visual token "
              "| at a text token | massive (first / visual / text) |", "|---|---|---|---|---|---|"]
    for layer in range(n_l):
        tk = r.top_kind[layer].tolist()
        mk = "/".join(str(int(x)) for x in r.massive_kind[layer].tolist())
        lines.append(f"| {layer} | {'/'.join(str(int(x)) for x in tk)} | {_f(kabs[layer, 0], kse[layer, 0], 1)} | "
                     f"{_f(kabs[layer, 1], kse[layer, 1], 1)} | {_f(kabs[layer, 2], kse[layer, 2], 1)} | {mk} |")
    others = ", ".join(f"`{s[0]}` ×{s[1]}" for s in r.other_sinks[:8]) or "none"
    lines += ["", f"Massive activations (|a| > {r.thresholds['massive_abs']:g} and > {r.thresholds['massive_ratio']:g} × the "
              f"layer's median): {r.n_massive} in all; sink heads (score >= {r.thresholds['sink']}): {len(r.sink_heads)} of "
              f"{r.sink_score.numel()}. Most frequent secondary sinks (the key other than position 0 with the most attention "
              f"of a (prompt, layer, head), counted when its mean attention > {r.thresholds['secondary']}): {others}.", ""]
    view = inspect_prompt(model, ps[0])  # which positions hold the largest activations, by name, on the first prompt
    tops = {}
    for layer in sorted({1, n_l // 4, n_l // 2, 3 * n_l // 4, n_l - 1}):
        order = view.absmax[layer].argsort(descending=True)[:3].tolist()
        tops[layer] = [[view.tokens[i], i, float(view.absmax[layer, i])] for i in order]
    lines += ["Largest |a| by position on the first prompt (token, position, |a|): " + "; ".join(
        f"layer {layer}: " + ", ".join(f"`{t}` @{i} {v:.0f}" for t, i, v in top) for layer, top in tops.items()) + ".", ""]
    below = [layer for layer in range(n_l) if m[layer, 1] < u[1]]
    bos_top = [layer for layer in range(n_l) if r.top_kind[layer, 0] == n]
    ratio = (m[:, 1] / u[1]).tolist()
    top_other = r.other_sinks[0][:2] if r.other_sinks else ["none", 0]
    vis_other = sum(int(o[1]) for o in r.other_sinks if str(o[0]).startswith("<img "))
    cells = n * r.sink_score.numel()
    more = [layer for layer in range(n_l) if m[layer, 0] > cm[layer]]
    lines += ["## Reading", "",
              f"Visual tokens receive less attention than uniform attention would give them in {len(below)} of {n_l} layers "
              f"(visual share / uniform share {min(ratio):.2f} to {max(ratio):.2f}); the first token takes "
              f"{float(m[:, 0].min()):.2f} to {float(m[:, 0].max()):.2f} of the mass (uniform {float(u[0]):.2f}). "
              f"The largest activation of every prompt sits at the first token in {len(bos_top)} of {n_l} layers; of the "
              f"{r.n_massive} massive activations, {int(r.massive_kind[:, 0].sum())} are at the first token, "
              f"{int(r.massive_kind[:, 1].sum())} at visual tokens and {int(r.massive_kind[:, 2].sum())} at text tokens. "
              f"Largest |a| at any visual token, any layer: {float(kabs[:, 1].max()):.0f} (mean over prompts), against "
              f"{float(kabs[:, 0].max()):.0f} at the first token. "
              f"Secondary sinks: the most frequent is `{top_other[0]}` ({top_other[1]} of the {cells} (prompt, layer, head) "
              f"cells); visual patches are the secondary sink of {vis_other} cells "
              f"(counted over the 20 most frequent secondary-sink names the report keeps). Against the text-only control, the "
              f"image raises the first token's share in {len(more)} of {n_l} layers ({_ranges(more)}) and lowers it in "
              f"the others.", ""]
    a.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    a.out.with_suffix(".json").write_text(json.dumps({
        "model": a.model, "prompts": n, "seconds": secs, "peak_rss_mb": peak, "mass_layer": m.tolist(), "mass_se": se.tolist(),
        "uniform_mass": u.tolist(), "top_kind": r.top_kind.tolist(), "kind_absmax": kabs.tolist(),
        "kind_absmax_se": kse.tolist(), "massive_kind": r.massive_kind.tolist(), "n_massive": r.n_massive,
        "other_sinks": r.other_sinks[:20], "top_positions_first_prompt": tops, "text_only_first": cm.tolist(), "sink_heads": r.sink_heads,
    }), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

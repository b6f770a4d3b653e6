"""Which attribution method finds the deciding patch on the SmolLM2 VLM? Planted truth over visual tokens.

The VLM captions a scene of 1-3 objects after its 16 visual tokens ("red circle, blue cross."). Cutting the caption
before the k-th object's colour or shape word makes the next word depend on one patch (that object's cell); a method
hits when that patch's visual token is in its top 3 of the 16 (random: 3/16). Same cuts as
tests/validity/test_attribution_vlm.py, on held-out scenes.

    python bench/vlm_attribution.py --model smollm2-vlm --scenes 50 --out bench/results/vlm_attribution.md
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import time
import warnings
from pathlib import Path

import torch

from interp import load_model
from interp.attribution import attribute
from interp.zoo import scenes as world

RUNS = {
    "gradient_norm": ("gradient_norm", {}),
    "input_x_gradient (abs_sum)": ("input_x_gradient", {"reduction": "abs_sum"}),
    "input_x_gradient (sum)": ("input_x_gradient", {}),
    "integrated_gradients (sum)": ("integrated_gradients", {}),
    "integrated_gradients (abs_sum)": ("integrated_gradients", {"reduction": "abs_sum"}),
    "occlusion": ("occlusion", {}),
    "random": ("random", {}),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-vlm")
    p.add_argument("--scenes", type=int, default=50)
    p.add_argument("--methods", default=",".join(RUNS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("bench/results/vlm_attribution.md"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_model(a.model, device="cpu")
    runs = {k: RUNS[k] for k in a.methods.split(",")}
    hits = {k: [] for k in runs}
    secs = {k: [] for k in runs}
    worst = {k: 0.0 for k in runs}
    n = 0
    for i in range(a.scenes):
        s = world.scene(i, "heldout", max_objects=3)
        for text, word, (r, c) in s.caption_cuts():
            n += 1
            prompt = [s.pixels, text] if text else [s.pixels]
            target = model.tokenizer.encode(word, add_special_tokens=False)[:1]
            for name, (method, options) in runs.items():
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = attribute(model, prompt, target=target, method=method, **options)
                secs[name].append(time.perf_counter() - t)
                vis = res.info["visual"]
                top = res.row(-1)[vis["positions"]].topk(3).indices.tolist()
                hits[name].append(vis["patches"].index([0, r, c]) in top)
                if res.completeness_error is not None:
                    worst[name] = max(worst[name], float(res.completeness_error.max()))
        print(f"scene {i + 1}/{a.scenes}: {n} cuts", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [f"# Attribution over visual tokens on `{a.model}`: the deciding patch in the top 3", "",
             f"Command: `python bench/vlm_attribution.py --model {a.model} --scenes {a.scenes} --threads {a.threads}` "
             f"(2-core CPU, shared with other jobs, so the seconds are rough). {n} cuts of {a.scenes} held-out scenes of "
             "1-3 objects (before each object's colour and shape word); a hit: the deciding patch's visual token is in the "
             f"method's top 3 of 16 (random 3/16 = 0.19). Peak RSS of the whole run {peak:.0f} MB.", "",
             "| method | top-3 rate +- SE | s / cut (median) | worst IG completeness error |", "|---|---|---|---|"]
    for name in runs:
        h = torch.tensor(hits[name], dtype=torch.float)
        rate = h.mean().item()
        se = math.sqrt(rate * (1 - rate) / len(h))
        ce = f"{worst[name]:.4f}" if worst[name] else ""
        lines.append(f"| {name} | {rate:.3f} +- {se:.3f} | {statistics.median(secs[name]):.2f} | {ce} |")
    a.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    a.out.with_suffix(".json").write_text(json.dumps({"hits": hits, "seconds": secs, "worst_completeness": worst,
                                                      "peak_rss_mb": peak}), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

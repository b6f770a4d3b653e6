"""GrAInS against hallucination a language prior drives, on a VLM: held-out accuracy and caption perplexity, no
steering vs GrAInS vs mean difference, compared at equal perplexity cost (issue 34, item 3, second task).

The task (``interp.steering.scenes.text_prior_contrast``): before the image the prompt holds text naming a wrong
colour for the first object's shape one to three times (``"green circle. green circle."``); the question is the first
colour word after the image. Preferred: the object's true colour; dispreferred: the text's colour (absent from the
picture). Fit on train scenes; each method's layer and alpha chosen on other train scenes (best train accuracy with
caption perplexity up at most ``--budget``); then both are swept on held-out scenes, compared at matched perplexity,
and checked on the same held-out images without the text (control: steering must not cost the questions the model
already answers from its image).

    nice -n 10 python bench/vlm_grains_prior.py --model smollm2-vlm --out bench/results/vlm_grains_prior.md
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vlm_grains import FRACTIONS, choose, cosines, finish_options, run_cost, tables  # noqa: E402

from interp.steering.scenes import scene_captions, text_prior_contrast  # noqa: E402
from interp.steering.vision import evaluate_vlm, fit_grains_vlm, fit_mean_difference_vlm  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-vlm")
    p.add_argument("--fit", type=int, default=30, help="fit questions (one per train scene)")
    p.add_argument("--select", type=int, default=40, help="train questions the layer and alpha are chosen on")
    p.add_argument("--heldout", type=int, default=120)
    p.add_argument("--heldout-start", type=int, default=100, help="first held-out scene (scenes before it were looked at "
                   "while the task was designed)")
    p.add_argument("--captions", type=int, default=20)
    p.add_argument("--n-steps", type=int, default=25, help="IG points per sequence (the fit's cost)")
    p.add_argument("--layers", default="12,16,20,24")
    a, model, layers = finish_options(p, argv, "bench/results/vlm_grains_prior.md", threads=2)
    fit_set = text_prior_contrast("train", a.fit)
    select = text_prior_contrast("train", a.select, start=a.fit)
    held = text_prior_contrast("heldout", a.heldout, start=a.heldout_start)
    control = text_prior_contrast("heldout", a.heldout, start=a.heldout_start, repeats=(0,))
    caps_train = scene_captions("train", 10, start=1000)
    caps_held = scene_captions("heldout", a.captions, start=1000)
    t0 = time.perf_counter()
    grains = fit_grains_vlm(model, fit_set, layers=layers, n_steps=a.n_steps, read="prompt", progress=True)
    fit_s = time.perf_counter() - t0
    md = fit_mean_difference_vlm(model, fit_set, layers)
    print(f"fit {len(fit_set)} examples in {fit_s:.0f} s", flush=True)
    chosen, evals, controls = {}, {}, {}
    for name, vec in (("grains", grains), ("mean_difference", md)):
        chosen[name] = choose(model, vec, select, caps_train, layers, a.budget)
        layer = chosen[name][0]
        print(name, "chosen on train: layer", layer, "alpha", chosen[name][1], flush=True)
        scale = vec.meta["resid_norm"][vec.layers.index(layer)]
        alphas = sorted({round(scale * f, 3) for f in FRACTIONS} | {chosen[name][1]})
        evals[name] = evaluate_vlm(model, {name: vec}, held, alphas=alphas, captions=caps_held, layers=[layer], progress=True)
        controls[name] = evaluate_vlm(model, {name: vec}, control, alphas=[chosen[name][1]], captions=caps_held[:2],
                                      layers=[layer], progress=False)
    total_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write(a, fit_set, select, held, grains, md, chosen, evals, controls, fit_s, total_s, peak, layers)
    return 0


def write(a, fit_set, select, held, grains, md, chosen, evals, controls, fit_s, total_s, peak, layers) -> None:
    cos = cosines(grains, md, layers)
    ev0 = evals["grains"]
    lines = [
        f"# GrAInS against text-prior hallucination on `{a.model}`", "",
        f"Command: `nice -n 10 python bench/vlm_grains_prior.py --model {a.model} --fit {a.fit} --select {a.select} "
        f"--heldout {a.heldout} --heldout-start {a.heldout_start} --captions {a.captions} --n-steps {a.n_steps} --layers "
        f"{a.layers} --budget {a.budget} --threads {a.threads}` (2-core CPU; seconds are rough). "
        + run_cost(total_s, fit_s, peak), "",
        "**Task** (`interp.steering.scenes.text_prior_contrast`). Before the image the prompt names a wrong colour for the "
        "first object's shape one to three times (`\"green circle. green circle.\"`, a colour absent from the picture); "
        "the question is the first colour word after the image, which the VLM was trained to write from its image. "
        "Preferred: the true colour; dispreferred: the text's colour. "
        f"Fit: {len(fit_set)} questions (train scenes 0-{a.fit - 1}); layer and alpha chosen on {len(select)} other "
        f"train questions and 10 train captions; evaluation: {len(held)} held-out scenes from {a.heldout_start} on "
        f"(scenes before it were looked at while the task was designed), fluency = perplexity of {a.captions} held-out "
        f"captions given their image ({ev0.n_fluency_tokens} caption tokens). Control: the same held-out images without "
        "the text, at each method's chosen setting.", "",
        f"GrAInS fit: k = GrAInS default (10, at most a quarter of the maskable positions), pca, read at the last prompt "
        f"token, BOS and answer never masked; {grains.meta['masked_visual']:.0%} of the masked positions were visual "
        f"tokens; mean IG completeness error of the contrast {grains.meta['completeness_error']:.2f} "
        "(`interp.steering.attribution.completeness_note`). Cosine of the GrAInS and mean-difference vectors per layer: "
        + ", ".join(f"L{k} {v:+.2f}" for k, v in cos.items()) + ".", "",
    ]
    lines += tables(chosen, evals)
    lines += ["", "## Control: the same held-out images without the text, at the chosen setting", "",
              "| method | layer | alpha | accuracy (change +- paired SE) | top-1 |", "|---|---|---|---|---|"]
    for name, ev in controls.items():
        se = ev.standard_errors()
        j = ev.alphas.index(chosen[name][1]) if chosen[name][1] in ev.alphas else 0
        lines.append(f"| {name} | {chosen[name][0]} | {chosen[name][1]:g} | {float(ev.accuracy[0, j]):.3f} "
                     f"({float(ev.accuracy[0, j]) - ev.baseline_accuracy():+.3f} +- {float(se['accuracy_change'][0, j]):.3f}) | "
                     f"{float(ev.top1_rate()[0, j]):.3f} |")
    a.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    a.out.with_suffix(".json").write_text(json.dumps({
        "chosen": {k: v[:2] for k, v in chosen.items()}, "cosine": cos, "fit_seconds": fit_s, "peak_rss_mb": peak,
        "heldout": {name: {"alphas": ev.alphas, "accuracy": ev.accuracy[0].tolist(), "top1": ev.top1_rate()[0].tolist(),
                           "perplexity": ev.perplexity[0].tolist()} for name, ev in evals.items()},
        "control": {name: {"alphas": ev.alphas, "accuracy": ev.accuracy[0].tolist()} for name, ev in controls.items()}},
        indent=1), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())

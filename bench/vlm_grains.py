"""GrAInS against colour hallucination on a VLM: held-out accuracy and caption perplexity, no steering vs GrAInS vs
mean difference, compared at equal perplexity cost.

Questions are the caption cuts of bench/vlm_attribution.py (``Scene.caption_cuts``) before each object's colour word,
on scenes of 1-6 objects (the VLMs were trained on 1-3, so they hallucinate colours here); the contrast is the true
colour against the colour of the next object in reading order (the model's most frequent confusion, measured below),
else another colour in the scene (``interp.steering.scenes``). Fit on train scenes; the layer and alpha of each method
are chosen on other train scenes (best train accuracy with caption perplexity up at most ``--budget``); then both are
swept on held-out scenes and compared at matched perplexity.

    nice -n 10 python bench/vlm_grains.py --model smollm2-vlm --out bench/results/vlm_grains.md
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import time
import warnings
from pathlib import Path

import torch

from interp import load_model
from interp.attribution.vision import visual_inputs
from interp.steering.scenes import scene_captions, scene_contrast
from interp.steering.scoring import encode_parts
from interp.steering.vision import evaluate_vlm, fit_grains_vlm, fit_mean_difference_vlm
from interp.zoo import scenes as world

FRACTIONS = (0.05, 0.1, 0.2, 0.4, 0.8)  # held-out alphas, in units of the mean residual norm at the layer
BUDGETS = (0.01, 0.02, 0.05, 0.10)


@torch.no_grad()
def error_types(model, examples) -> collections.Counter:
    """What the unsteered model names first where it is wrong (the why of the result): another object's colour
    (next / previous / elsewhere in reading order), a colour absent from the scene, or not a colour word."""
    tok = model.tokenizer
    ids = {tok.encode(" " + c, add_special_tokens=False)[0]: c for c in world.COLOURS}
    out = collections.Counter()
    for e in examples:
        split, i = e.entity.split(":")
        s = world.scene(int(i), split, max_objects=6)
        enc, vin = encode_parts(model, e)
        with visual_inputs(model, vin):
            top = int(model(enc.prompt[None])[0, -1].argmax())
        if top == int(enc.preferred[0]):
            out["right"] += 1
            continue
        said = ids.get(top)
        colours = [o[2] for o in s.objects]
        k = e.text().count(",")  # objects already captioned
        if said is None:
            out["not a colour word"] += 1
        elif k + 1 < len(colours) and colours[k + 1] == said:
            out["the next object's colour"] += 1
        elif k > 0 and colours[k - 1] == said:
            out["the previous object's colour"] += 1
        elif said in colours:
            out["another object's colour"] += 1
        else:
            out["a colour absent from the scene"] += 1
    return out


def finish_options(p: argparse.ArgumentParser, argv, out: str, threads: int):
    """Add the options both VLM steering benches share (--budget, --threads, --out), parse, and set up the run:
    (args, the model loaded on the CPU, the layers of --layers as ints)."""
    p.add_argument("--budget", type=float, default=0.05, help="train-side perplexity budget for the choice of alpha")
    p.add_argument("--threads", type=int, default=threads)
    p.add_argument("--out", type=Path, default=Path(out))
    a = p.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    return a, load_model(a.model, device="cpu"), [int(x) for x in a.layers.split(",")]


def choose(model, vec, train, captions, layers, budget) -> tuple[int, float, list]:
    """(layer, alpha) with the best train accuracy among fractions 0.1 / 0.2 of the residual norm whose caption
    perplexity rises at most ``budget``; ties: the smaller alpha, then the earlier layer. Also the rows seen."""
    best, rows = None, []
    for layer in layers:
        scale = vec.meta["resid_norm"][vec.layers.index(layer)]
        ev = evaluate_vlm(model, vec, train, alphas=[round(scale * f, 3) for f in (0.1, 0.2)], captions=captions,
                          layers=[layer], progress=False)
        for j, a in enumerate(ev.alphas):
            rise = float(ev.perplexity[0, j]) / ev.baseline_perplexity() - 1
            rows.append((layer, a, float(ev.accuracy[0, j]), rise))
            if a > 0 and rise <= budget and (best is None or float(ev.accuracy[0, j]) > best[2]):
                best = (layer, a, float(ev.accuracy[0, j]))
    return (best[0], best[1], rows) if best else (layers[0], 0.0, rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-vlm")
    p.add_argument("--fit-scenes", type=int, default=5)
    p.add_argument("--select-scenes", type=int, default=12)
    p.add_argument("--heldout-scenes", type=int, default=30)
    p.add_argument("--captions", type=int, default=20)
    p.add_argument("--n-steps", type=int, default=25, help="IG points per sequence (the fit's cost)")
    p.add_argument("--layers", default="5,10,15,20,25")
    p.add_argument("--read", default="prompt", choices=["prompt", "last"],
                   help="where GrAInS reads its deltas: the last prompt token (where the one-token answer is predicted) "
                        "or the answer token")
    p.add_argument("--aggregate", default="pca", choices=["pca", "mean"])
    a, model, layers = finish_options(p, argv, "bench/results/vlm_grains.md", threads=1)
    fit_set = scene_contrast("train", a.fit_scenes)
    select = scene_contrast("train", a.select_scenes, start=a.fit_scenes)
    held = scene_contrast("heldout", a.heldout_scenes)
    caps_train = scene_captions("train", 10, start=1000)
    caps_held = scene_captions("heldout", a.captions, start=1000)
    t0 = time.perf_counter()
    errors = error_types(model, held)
    t = time.perf_counter()
    grains = fit_grains_vlm(model, fit_set, layers=layers, n_steps=a.n_steps, read=a.read, aggregate=a.aggregate,
                            progress=True)
    fit_s = time.perf_counter() - t
    md = fit_mean_difference_vlm(model, fit_set, layers)
    print(f"fit {len(fit_set)} examples in {fit_s:.0f} s", flush=True)
    chosen = {}
    for name, vec in (("grains", grains), ("mean_difference", md)):
        chosen[name] = choose(model, vec, select, caps_train, layers, a.budget)
        print(name, "chosen on train: layer", chosen[name][0], "alpha", chosen[name][1], flush=True)
    evals = {}
    for name, vec in (("grains", grains), ("mean_difference", md)):
        layer = chosen[name][0]
        scale = vec.meta["resid_norm"][vec.layers.index(layer)]
        alphas = sorted({round(scale * f, 3) for f in FRACTIONS} | {chosen[name][1]})
        evals[name] = evaluate_vlm(model, {name: vec}, held, alphas=alphas, captions=caps_held, layers=[layer], progress=True)
    total_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write(a, model, fit_set, select, held, errors, grains, md, chosen, evals, fit_s, total_s, peak, layers)
    return 0


def _row(ev, m: str, j: int, se: dict) -> str:
    base_ppl = ev.baseline_perplexity()
    return (f"| {m} | {ev.alphas[j]:g} | {float(ev.accuracy[0, j]):.3f} +- {float(se['accuracy'][0, j]):.3f} "
            f"({float(ev.accuracy[0, j]) - ev.baseline_accuracy():+.3f} +- {float(se['accuracy_change'][0, j]):.3f}) | "
            f"{float(ev.top1_rate()[0, j]):.3f} ({float(ev.top1_rate()[0, j] - ev.top1_rate()[0, ev.alphas.index(0.0)]):+.3f} "
            f"+- {float(se['top1_change'][0, j]):.3f}) | {float(ev.mean_gap[0, j]):+.3f} | {float(ev.perplexity[0, j]):.4f} | "
            f"{float(ev.perplexity[0, j]) / base_ppl - 1:+.2%} +- {float(se['ppl_change'][0, j]):.2%} |")


def cosines(grains, md, layers) -> dict[int, float]:
    """{layer: cosine of the GrAInS and mean-difference vectors}."""
    return {layer: float(torch.cosine_similarity(grains.vector(layer), md.vector(layer), 0)) for layer in layers}


def run_cost(total_s: float, fit_s: float, peak: float) -> str:
    """The results file's sentence on the run's cost (both VLM steering benches write it)."""
    return f"Whole run {total_s / 60:.1f} min after loading, the GrAInS fit {fit_s:.0f} s; peak RSS {peak:.0f} MB."


def tables(chosen: dict, evals: dict) -> list[str]:
    """The Markdown tables both VLM steering benches write: the layer and alpha each method chose on train, the
    held-out sweep, and the comparison at equal perplexity cost."""
    ev0 = next(iter(evals.values()))
    lines = ["## Layer and alpha chosen on train", "",
             "| method | layer | alpha | train rows [layer, alpha, accuracy, perplexity change] |", "|---|---|---|---|"]
    for name, (layer, alpha, rows) in chosen.items():
        shown = "; ".join(f"[{r[0]}, {r[1]:g}, {r[2]:.3f}, {r[3]:+.1%}]" for r in rows if r[1] > 0)
        lines.append(f"| {name} | {layer} | {alpha:g} | {shown} |")
    lines += ["", "## Held-out sweep", "",
              "Accuracy: preferred-vs-dispreferred rate (+- binomial SE; change vs no steering +- paired SE over questions). "
              "Top-1: rate at which the true colour is the model's first word. Perplexity change +- SE (delta method over "
              "captions).", "",
              "| method | alpha | accuracy (change) | top-1 (change) | mean gap (nats) | caption perplexity | change |",
              "|---|---|---|---|---|---|---|"]
    for name, ev in evals.items():
        se = ev.standard_errors()
        lines += [_row(ev, name, j, se) for j in range(len(ev.alphas))]
    lines += ["", "## At equal perplexity cost (held-out)", "",
              "For each budget, the alpha of each method with the best held-out accuracy among those whose caption "
              "perplexity rose at most that much (chosen on held-out, so optimistic for both alike). No steering: "
              f"accuracy {ev0.baseline_accuracy():.3f}, top-1 {float(ev0.top1_rate()[0, ev0.alphas.index(0.0)]):.3f}.", "",
              "| budget | GrAInS: alpha, accuracy (change +- SE), top-1, ppl change "
              "| mean difference: alpha, accuracy (change +- SE), top-1, ppl change |",
              "|---|---|---|"]
    for b in BUDGETS:
        cells = []
        for name, ev in evals.items():
            r = ev.at_cost(name, b)
            cells.append(f"{r['alpha']:g}, {r['accuracy']:.3f} ({r['accuracy'] - ev.baseline_accuracy():+.3f} +- "
                         f"{r['accuracy_change_se']:.3f}), {r['top1']:.3f}, {r['ppl_increase']:+.1%}")
        lines.append(f"| {b:.0%} | " + " | ".join(cells) + " |")
    return lines


def write(a, model, fit_set, select, held, errors, grains, md, chosen, evals, fit_s, total_s, peak, layers) -> None:
    n_err = sum(v for k, v in errors.items() if k != "right")
    cos = cosines(grains, md, layers)
    ev0 = evals["grains"]
    lines = [
        f"# GrAInS against colour hallucination on `{a.model}`", "",
        f"Command: `nice -n 10 python bench/vlm_grains.py --model {a.model} --fit-scenes {a.fit_scenes} --select-scenes "
        f"{a.select_scenes} --heldout-scenes {a.heldout_scenes} --captions {a.captions} --n-steps {a.n_steps} --layers "
        f"{a.layers} --read {a.read} --aggregate {a.aggregate} --budget {a.budget} --threads {a.threads}` "
        "(2-core CPU shared with other jobs; seconds are rough). "
        + run_cost(total_s, fit_s, peak), "",
        "**Task.** Questions are caption cuts before each object's colour word (bench/vlm_attribution.py's construction) "
        "on scenes of 1-6 objects; the VLM was trained to caption 1-3. Preferred: the true colour; dispreferred: the next "
        "object's colour in reading order (else another colour in the scene). "
        f"Fit: {len(fit_set)} questions of {a.fit_scenes} train scenes; layer and alpha chosen on {len(select)} questions "
        f"of {a.select_scenes} other train scenes and 10 train captions; evaluation: {len(held)} questions of "
        f"{a.heldout_scenes} held-out scenes, fluency = perplexity of {a.captions} held-out captions of 1-3-object scenes "
        f"given their image ({ev0.n_fluency_tokens} caption tokens).", "",
        "**Why the model errs (no steering, held-out).** " + ", ".join(f"{k}: {v}" for k, v in errors.most_common()) +
        f". Of the {n_err} wrong first words, "
        f"{sum(v for k, v in errors.items() if 'object' in k)} name the colour of another object in the picture.", "",
        f"GrAInS fit: k = GrAInS default (10, at most a quarter of the maskable positions), {a.aggregate}, read at the "
        f"{'last prompt token' if a.read == 'prompt' else 'answer token'}, BOS and answer never masked; mean difference "
        f"reads at the answer token (the one place where x+y+ and x+y- differ); {grains.meta['masked_visual']:.0%} of the "
        "masked positions were visual tokens (a "
        f"masked visual token becomes its image's mean visual token); mean IG completeness error of the contrast "
        f"{grains.meta['completeness_error']:.2f} (a difference of two sequences' changes, see "
        f"`interp.steering.attribution.completeness_note`). Cosine of the GrAInS and mean-difference vectors per layer: "
        + ", ".join(f"L{k} {v:+.2f}" for k, v in cos.items()) + ".", "",
    ]
    lines += tables(chosen, evals)
    a.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    a.out.with_suffix(".json").write_text(json.dumps({
        "errors": dict(errors), "chosen": {k: v[:2] for k, v in chosen.items()}, "cosine": cos, "fit_seconds": fit_s,
        "peak_rss_mb": peak, "heldout": {name: {"alphas": ev.alphas, "accuracy": ev.accuracy[0].tolist(),
                                                "top1": ev.top1_rate()[0].tolist(), "perplexity": ev.perplexity[0].tolist()}
                                         for name, ev in evals.items()}}, indent=1), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())

"""Every capability once on a CUDA device with the bundled models: the check to run first on a lent GPU machine.

The CPU test tiers cannot see device bugs (the first GPU run found ReAGent mixing a CPU mask with a CUDA one;
bench/results/gpu_real.md). This runs each capability on ``--device`` with ``stories`` / ``bb`` / ``scenes-vlm``
(bundled, nothing to carry; the VLM check covers images through lenses, attribution, the scan and the report) and
prints one PASS / FAIL line per check with its seconds, then a traceback for each failure:

    python bench/gpu_smoke.py --device cuda [--out DIR]      # reports written to DIR (default: a temporary folder)

Exit status 1 when a check fails. On a CPU (``--device cpu``) it is a quick self-test of this script.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def checks(device: str, out: Path) -> list[tuple[str, object]]:
    """(name, zero-argument function) per capability."""
    import interp
    from interp.lens.bundled import stories_texts

    models: dict[str, object] = {}

    def model(name: str = "stories"):
        if name not in models:
            models[name] = interp.load_model(name, device=device)
        return models[name]

    texts = stories_texts(48, "train")

    def lenses():
        from interp.lens.logit import logit_lens
        from interp.lens.tuned import TunedLens

        logit_lens(model(), "where does mia live ? in")
        lens = TunedLens.fit(model(), texts, steps=5, progress=False)
        assert next(lens.parameters()).device.type == torch.device(device).type

    def latent():
        from interp.lens.latent import LatentIndex

        idx = LatentIndex.build(model(), texts, layers=[1, 2], progress=False)
        idx.search(torch.randn(3, model().cfg.d_model), k=5, layers=[1])

    def index_cli():
        from interp.scale import build_index

        idx = build_index(model(), texts, out=out / "idx", layers=[1, 2], progress=False, device=device)
        idx.search(torch.randn(2, model().cfg.d_model), k=3)

    def extreme():
        from interp.extreme.activity import head_activity
        from interp.extreme.scan import scan

        scan(model("bb"), [model("bb").to_tokens("a b c d e f")[0]] * 4, progress=False)
        head_activity(model("bb"), {"one": ["a b c d e f g"] * 4}, progress=False, heads=2)

    def attribution():
        from interp.attribution import attribute
        from interp.attribution.registry import METHODS

        for method in METHODS:
            attribute(model(), "where does mia live ? in", method=method)

    def steering():
        from interp.steering import evaluate
        from interp.steering.stories import contrast_sets, fit_stories

        vecs = fit_stories(model(), progress=False)
        evaluate(model(), vecs, contrast_sets()["heldout_cued"][:8], alphas=[2.0], layers=[1], fluency_texts=texts[:4],
                 progress=False)

    def subnetworks():
        from interp.subnetworks.train import find_bigram_subnetwork

        find_bigram_subnetwork(model(), texts, steps=3, progress=False)

    def report():
        from interp.report import build_report

        rep = build_report(model(), progress=False)
        rep.save(out / "stories.html")
        failed = [(sec.title, v) for sec in rep.sections for kind, v in sec.items if kind == "error"]
        assert not failed, f"report sections failed: {failed}"

    def vision():
        from interp.attribution import attribute
        from interp.extreme import scan
        from interp.lens.latent import LatentIndex
        from interp.lens.visual import visual_lens
        from interp.report import build_report
        from interp.zoo import scenes as world

        vlm = model("scenes-vlm")
        s = world.scene(0, "heldout", max_objects=3)
        prompt = [s.pixels, " " + s.questions()[0]["question"]]
        idx = LatentIndex.build(vlm, world.caption_corpus(32, seed=1), layers=[1, 2], progress=False)
        for lens in ("logit", "embedding", "latent"):
            r = visual_lens(vlm, prompt, lens=lens, index=idx if lens == "latent" else None)
            assert r.ids.shape[1] == 16
        for method in ("gradient_norm", "integrated_gradients", "occlusion"):
            assert attribute(vlm, prompt, method=method).patch_scores().shape == (1, 4, 4)
        scan(vlm, [prompt] * 3, progress=False)
        from interp.steering.scenes import scene_captions, scene_contrast
        from interp.steering.vision import evaluate_vlm, fit_grains_vlm

        examples = scene_contrast("train", 2)[:3]
        vecs = fit_grains_vlm(vlm, examples, layers=[2], n_steps=8, progress=False)
        evaluate_vlm(vlm, {"grains": vecs}, scene_contrast("heldout", 2)[:3], alphas=[1.0],
                     captions=scene_captions("heldout", 2), progress=False)
        rep = build_report(vlm, image=s.pixels, progress=False)
        failed = [(sec.title, v) for sec in rep.sections for kind, v in sec.items if kind == "error"]
        assert not failed, f"report sections failed: {failed}"

    return [("lenses: logit + tuned (5 steps)", lenses), ("LatentLens index in memory", latent),
            ("sharded index build + search", index_cli), ("extreme tokens: scan + head activity", extreme),
            ("attribution: every method", attribution), ("steering: bundled recipe", steering),
            ("bigram subnetwork: 3 steps", subnetworks), ("HTML report", report),
            ("VLM (scenes-vlm): visual lenses, attribution over patches, image scan, GrAInS fit + evaluation, report "
             "with an image", vision)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu_smoke_"))
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    for name, fn in checks(args.device, out):
        t0 = time.perf_counter()
        try:
            fn()
            status = "PASS"
        except Exception:  # every check runs; failures are listed at the end
            status = "FAIL"
            failures.append((name, traceback.format_exc()))
        print(f"{status}  {time.perf_counter() - t0:6.1f} s  {name}", flush=True)
    for name, tb in failures:
        print(f"\n--- {name}\n{tb}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

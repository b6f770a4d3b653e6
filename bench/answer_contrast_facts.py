"""The whole-answer contrast on real facts: does IG of log P(right answer) - log P(another city)
(``Answer(against)``, GrAInS's objective through ``attribute``) put a subject token in its top 3? SmolLM2-135M, the
first 20 facts it answers right (``truth.fact_prompts``); the other answer is the first of ``cities`` that differs
from the right one. Prints one line per prompt (index, prompt, answers, hit, top 3, subject positions, the contrast's
completeness error, seconds) and the count; bench/results/answer_contrast_facts.txt holds a run (2026-12-07, 2 busy
cores: two other jobs ran).

    python bench/answer_contrast_facts.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import time  # noqa: E402
import warnings  # noqa: E402

import torch  # noqa: E402

from interp import load_model  # noqa: E402
from interp.attribution import Answer, attribute  # noqa: E402
from interp.attribution.truth import FACTS, fact_prompts  # noqa: E402

warnings.simplefilter("ignore")
torch.set_num_threads(1)
m = load_model("smollm2-135m", device="cpu")
facts = fact_prompts(m)[:20]
answers = {f[0]: f[1] for f in FACTS}
cities = [" Paris", " Rome", " London", " Berlin", " Tokyo", " Madrid"]
hits = []
for k, p in enumerate(facts):
    ans = answers[p.text]
    other = next(c for c in cities if c != ans)
    t0 = time.perf_counter()
    a = attribute(m, p.text, ans, method="integrated_gradients", objective=Answer(against=other))
    top = a.scores.sum(0).topk(3).indices.tolist()
    hit = bool(set(top) & set(p.sources))
    hits.append(hit)
    error, seconds = round(float(a.completeness_error[0]), 4), round(time.perf_counter() - t0, 1)
    print(k, repr(p.text), ans, other, hit, top, p.sources, error, seconds, flush=True)
print(sum(hits), len(hits))

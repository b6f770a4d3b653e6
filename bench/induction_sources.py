"""Induction ground truth read two ways, on SmolLM2-135M: which earlier occurrence lands in each method's top 3.

For a prompt ``... A B ... A`` -> ``B`` the shipped truth (``interp.attribution.truth``) is B's first occurrence (the
token an induction head copies). A's first occurrence (the earlier occurrence of the current word, which the
previous-token head writes into B's key) is also an input of the circuit. This prints, per method, the share of the 50
induction prompts with B's first occurrence in the top 3 ("B"), A's ("A"), and either ("AB"); ``random`` is the floor.

    python bench/induction_sources.py random,occlusion,integrated_gradients,reagent
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import torch


def main() -> None:
    torch.set_num_threads(2)
    from interp.attribution.registry import attribute
    from interp.attribution.truth import induction_prompts
    from interp.models import load_model

    model = load_model("smollm2-135m", device="cpu")
    prompts = induction_prompts(model, 50)
    out = {}
    for method in sys.argv[1].split(","):
        hits = {"B": 0, "A": 0, "AB": 0}
        t0 = time.perf_counter()
        for i, p in enumerate(prompts):
            seeded = {"seed": i} if method in ("random", "reagent") else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                top3 = set(attribute(model, p.tokens, p.target_id, method=method, **seeded).top(3))
            b = p.sources[0]
            hits["B"] += b in top3
            hits["A"] += (b - 1) in top3
            hits["AB"] += bool({b, b - 1} & top3)
        out[method] = {k: v / len(prompts) for k, v in hits.items()} | {"s_per_prompt": (time.perf_counter() - t0) / len(prompts)}
        print(method, json.dumps(out[method]), flush=True)


if __name__ == "__main__":
    main()

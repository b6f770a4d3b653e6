"""``python -m interp.zoo train NAME [options]``: reproduce a bundled model from its seed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from interp.zoo import ZOO_MODELS, zoo_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m interp.zoo", description="Train the bundled models.")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a zoo model from its seed")
    t.add_argument("name", choices=sorted(ZOO_MODELS))
    t.add_argument("--out", type=Path, help="output directory (default: data/models/NAME[-variant])")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--steps", type=int, help="override the recipe's number of steps")
    t.add_argument("--attention", choices=["softmax", "relu"], default="softmax", help="bb only")
    t.add_argument("--optimizer", choices=["adam", "sgd"], default="adam", help="bb only")
    t.add_argument("--threads", type=int, help="override the recipe's CPU thread count (results may differ in the last bits)")
    a = p.parse_args(argv)
    from interp.zoo import train

    if a.name == "scenes-vlm":
        from interp.zoo.vlm_build import build_scenes_vlm

        stats = build_scenes_vlm(a.out or zoo_path("scenes-vlm"), seed=a.seed)
    elif a.name == "stories":
        r = train.StoriesRecipe(seed=a.seed)
        if a.steps:
            r.steps = a.steps
        if a.threads:
            r.threads = a.threads
        stats = train.train_stories(a.out or zoo_path("stories"), r)
    else:
        r2 = train.BBRecipe(seed=a.seed, attention=a.attention, optimizer=a.optimizer)
        if a.steps:
            r2.steps = a.steps
        if a.threads:
            r2.threads = a.threads
        variant = "".join(f"-{x}" for x, d in ((a.attention, "softmax"), (a.optimizer, "adam")) if x != d)
        stats = train.train_bb(a.out or zoo_path("bb" + variant), r2)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

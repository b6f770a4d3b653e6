"""Benchmark: time to fit GrAInS vectors on 50 examples, batched IG (interp) vs captum's default per example.

interp: ``fit_grains`` with ``interp.attribution.ig.embedding_ig``, rows of equal length from all examples batched
into one IG call (16 rows x 20 steps per forward). captum default: what the GrAInS reference code does, one
``captum.attr.IntegratedGradients`` call per example on the tuple (E⁺, E⁻), 20 Gauss-Legendre steps, no
``internal_batch_size`` (all steps of one example in one batch). Both then share the same masking and
hidden-state passes, so the difference is the attribution step. Also reported: the forward-pass overhead of the
steering hook. Prints medians of ``--repeats`` runs.

    python bench/steering.py [--model stories] [--repeats 3] [--examples 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def captum_default_scores(model, encoded, n_steps: int = 20):
    """Reference-style attribution: one captum IG call per example on (E⁺, E⁻), zero baseline, default batching."""
    from captum.attr import IntegratedGradients

    from interp.attribution.ig import embed_hook_name

    hook = embed_hook_name(model)
    out = []
    for e in encoded:
        seqs = [e.sequence(+1)[None], e.sequence(-1)[None]]
        embs = []
        for s in seqs:
            _, cache = model.run_with_cache(s, names_filter=[hook])
            embs.append(cache[hook].detach())
        p = len(e.prompt)

        def logp(emb, toks, p=p):
            n = emb.shape[0]
            logits = model.run_with_hooks(toks.expand(n, -1), fwd_hooks=[(hook, lambda a, hook: emb)])
            lp = torch.log_softmax(logits[:, p - 1 : -1], -1)
            return lp.gather(-1, toks.expand(n, -1)[:, p:, None]).squeeze(-1).sum(-1)

        def f(e_pos, e_neg, seqs=seqs, logp=logp):
            return logp(e_pos, seqs[0]) - logp(e_neg, seqs[1])

        model.requires_grad_(False)
        a_pos, a_neg = IntegratedGradients(f).attribute(tuple(embs), baselines=tuple(torch.zeros_like(x) for x in embs),
                                                         n_steps=n_steps)
        out.append((a_pos.sum(-1)[0].detach(), a_neg.sum(-1)[0].detach()))
    return out


def _time(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="stories")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--examples", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from interp.models import load_model
    from interp.steering import fit_grains
    from interp.steering.stories import contrast_sets

    model = load_model(args.model, device="cpu")
    examples = contrast_sets()["train_cued"][: args.examples]
    layers = [model.cfg.n_layers // 2]
    kw = dict(layers=layers, k=2, n_steps=20, baseline="zero", progress=False)
    t_ours, v_ours = _time(lambda: fit_grains(model, examples, **kw), args.repeats)
    t_captum, v_captum = _time(lambda: fit_grains(model, examples, attribution_fn=captum_default_scores, **kw), args.repeats)
    cos = float(torch.nn.functional.cosine_similarity(v_ours.vectors[0], v_captum.vectors[0], dim=0))

    tokens = model.to_tokens(examples[0].prompt).expand(64, -1)
    with torch.no_grad():
        t_plain, _ = _time(lambda: model(tokens), 10 * args.repeats)

        def steered():
            with v_ours.steer(model, 1.0):
                return model(tokens)

        t_steer, _ = _time(steered, 10 * args.repeats)
    print(f"model {args.model}, {len(examples)} examples, layer {layers}, k=2, 20 IG steps, threads {args.threads}, "
          f"median of {args.repeats}")
    print(f"{'fit_grains':<44}{'seconds':>10}")
    print(f"{'interp (batched IG, 16 rows x 20 steps)':<44}{t_ours:>10.2f}")
    print(f"{'captum default (per example, no batching)':<44}{t_captum:>10.2f}")
    print(f"speed-up {t_captum / t_ours:.2f}x; cos(vector interp, vector captum) = {cos:.6f}")
    print(f"forward [64 x {tokens.shape[1]}]: plain {1e3 * t_plain:.2f} ms, steered {1e3 * t_steer:.2f} ms")


if __name__ == "__main__":
    main()

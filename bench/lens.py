"""Lens benchmarks (CPU by default): prints medians of repeated runs side by side.

1. Logit lens over all layers in one batched decode (``interp.lens.logit_lens``) vs a per-layer loop (how the
   tuned-lens package's ``PredictionTrajectory`` decodes: one ``unembed(ln_final(h_l))`` call per layer).
2. ``LatentIndex.build`` throughput (stored token rows per second) on the stories corpus.
3. Search latency for 16 queries, k=5, at 10^5 and 10^6 stored unit vectors: ``LatentIndex.search`` (exact, chunked
   matmul over fp16 storage) vs one-shot brute force (fp32 matmul + top-k over everything) vs FAISS
   ``IndexFlatIP`` (exact) and approximate FAISS indexes, with recall@5 against exact and memory per vector.

Usage: ``python bench/lens.py [--sizes 100000 1000000] [--d 128] [--repeats 7] [--threads 1]``
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time

import torch


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def bench_logit_lens(repeats: int) -> None:
    from interp.models import load_model
    from interp.testing import random_model

    print("\n## 1. logit lens: batched decode vs per-layer loop (ms, median)")
    print(f"{'model':<34}{'rows x pos':>12}{'decode batched':>16}{'decode loop':>14}{'full batched':>14}{'full loop':>12}")
    cases = [("stories", load_model("stories", device="cpu"), "one day mia found a key in the garden . then mia took the " * 4)]
    cases.append(("random gpt2 d512 L12 (vocab 33)", random_model("gpt2", d_model=512, n_layers=12, n_heads=8, n_ctx=256),
                  "the quick brown fox jumps over the lazy dog. " * 5))
    cases.append(("random GPT-2-small shape (vocab 50257)", _gpt2_small(), "the quick brown fox jumps over the lazy"))
    for name, model, prompt in cases:
        _lens_case(name, model, prompt, repeats)


def _gpt2_small():
    """A random-weight model with GPT-2 small's shape (d 768, 12 layers, vocab 50257), character tokenizer."""
    import tempfile

    from transformers import GPT2Config, GPT2LMHeadModel

    from interp.models import load_model
    from interp.testing import _SYMBOLS
    from interp.zoo.tokenizers import char_tokenizer

    tok = char_tokenizer(_SYMBOLS)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=50257, bos_token_id=tok.bos_token_id, eos_token_id=tok.bos_token_id)
    out = tempfile.mkdtemp(prefix="bench-gpt2-")
    GPT2LMHeadModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return load_model(out, device="cpu")


def _lens_case(name: str, model, prompt: str, repeats: int) -> None:
    from interp.lens import logit_lens
    from interp.lens.logit import decode, residual_stack
    from interp.models import to_tokens

    tokens = to_tokens(model, prompt)
    _, stack = residual_stack(model, tokens)

    @torch.no_grad()
    def batched():
        return torch.log_softmax(decode(model, stack).float(), -1)

    @torch.no_grad()
    def loop():
        return [torch.log_softmax(decode(model, stack[i]).float(), -1) for i in range(stack.shape[0])]

    @torch.no_grad()
    def full_loop():  # per-layer decode plus the same statistics, per layer
        _, st = residual_stack(model, tokens)
        final = torch.log_softmax(decode(model, st[-1]).float(), -1)
        out = []
        for i in range(st.shape[0]):
            lp = torch.log_softmax(decode(model, st[i]).float(), -1)
            out.append(((lp.exp() * lp).sum(-1), (final.exp() * (final - lp)).sum(-1), lp.topk(5, -1)))
        return out

    assert torch.allclose(batched(), torch.stack(loop()), atol=1e-5)
    row = [median_ms(batched, repeats), median_ms(loop, repeats), median_ms(lambda: logit_lens(model, tokens), repeats),
           median_ms(full_loop, repeats)]
    print(f"{name:<34}{f'{stack.shape[0]} x {stack.shape[1]}':>12}" + "".join(f"{v:>14.2f}" for v in row))


def bench_build(repeats: int) -> None:
    from interp.lens import LatentIndex
    from interp.lens.bundled import stories_texts
    from interp.models import load_model

    model = load_model("stories", device="cpu")
    texts = stories_texts(200, "train")
    print("\n## 2. LatentIndex.build on stories (200 documents, layers [1, 2, 3])")
    for cap in (None, 20):
        times, rows = [], 0
        for _ in range(max(1, repeats // 2)):
            t = time.perf_counter()
            index = LatentIndex.build(model, texts, max_per_token=cap, progress=False)
            times.append(time.perf_counter() - t)
            rows = len(index)
        tokens = sum(len(model.to_tokens(x)[0]) for x in texts)
        s = statistics.median(times)
        print(f"max_per_token={cap}: {tokens} corpus tokens, {rows} rows kept, {s:.2f} s median -> {tokens / s:,.0f} corpus tokens/s, "
              f"{rows / s:,.0f} stored rows/s; {index.bytes_per_vector():.1f} B per vector and layer")


def recall(a, b) -> float:
    ga = (a.rows + a.layers * 10**9).tolist()
    gb = (b.rows + b.layers * 10**9).tolist()
    return sum(len(set(x) & set(y)) for x, y in zip(ga, gb)) / (len(ga) * len(ga[0]))


def bench_search(sizes: list[int], d: int, repeats: int, n_layers: int, data: str) -> None:
    try:
        import faiss
    except ImportError:
        faiss = None
    print(f"\n## 3. search: 16 queries, k=5, d={d}, {n_layers} stored layer(s), {data} vectors; latency ms (median), recall@5 vs exact")
    print(f"{'stored':>10} {'method':<34}{'ms':>10}{'recall@5':>10}{'bytes/vector':>14}{'build s':>10}")
    for n in sizes:
        _search_case(n, d, repeats, n_layers, faiss, data)
        gc.collect()


def _search_case(n: int, d: int, repeats: int, n_layers: int, faiss, data: str) -> None:
    from interp.lens import LatentIndex

    g = torch.Generator().manual_seed(0)
    per = n // n_layers
    if data == "clustered":
        # like contextual token states: a few thousand token clusters, spread within each cluster
        centers = torch.randn(4096, d, generator=g)
        states = {layer + 1: centers[torch.randint(0, 4096, (per,), generator=g)] + 0.6 * torch.randn(per, d, generator=g)
                  for layer in range(n_layers)}
    else:
        states = {layer + 1: torch.randn(per, d, generator=g) for layer in range(n_layers)}
    index = LatentIndex.from_vectors(states)
    del states
    gc.collect()
    # queries are noisy copies of stored rows
    q = index.vectors[1][torch.randint(0, per, (16,), generator=g)].float() + 0.3 * torch.randn(16, d, generator=g) / d**0.5
    exact = index.search(q, 5)
    rows = [("LatentIndex.search (fp16, chunked)", median_ms(lambda: index.search(q, 5), repeats), 1.0, index.bytes_per_vector(), 0.0)]
    # the LatentLens reference code's search: fp32 matrix per layer, one matmul + topk per layer, merge
    fp32 = {x: index.vectors[x].float() for x in index.layers}

    def plain():
        qn = torch.nn.functional.normalize(q, dim=-1)
        per_layer = [(qn @ fp32[x].T).topk(5, dim=1) for x in index.layers]
        return torch.cat([s for s, _ in per_layer], 1).topk(5, dim=1)

    ms = median_ms(plain, repeats)
    rows.append(("torch fp32 matmul+topk (LL style)", ms, 1.0, 4 * d + 12 / n_layers, 0.0))
    if faiss is not None:
        nlist = int(per**0.5)
        for spec, nprobe in [("Flat", 1), ("HNSW32", 1), (f"IVF{nlist},Flat", 16), (f"IVF{nlist},SQ8", 16)]:
            if spec.startswith("HNSW") and per > 300_000:
                continue  # graph construction takes many minutes on 2 cores
            t = time.perf_counter()
            index.search(q[:1], 5, backend="faiss", faiss_index=spec, nprobe=nprobe)  # builds and caches the FAISS index
            build = time.perf_counter() - t
            fi = index._faiss[(1, spec)]
            res = index.search(q, 5, backend="faiss", faiss_index=spec, nprobe=nprobe)
            ms = median_ms(lambda spec=spec, nprobe=nprobe: index.search(q, 5, backend="faiss", faiss_index=spec, nprobe=nprobe), repeats)
            size = len(faiss.serialize_index(fi)) / fi.ntotal
            label = f"faiss {spec}" + (f" nprobe={nprobe}" if spec.startswith("IVF") else "")
            rows.append((label, ms, recall(res, exact), size + 12 / n_layers, build * n_layers))
    for label, ms, rec, b, build in rows:
        print(f"{n:>10,} {label:<34}{ms:>10.2f}{rec:>10.3f}{b:>14.1f}{build:>10.1f}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--layers", type=int, default=1, help="stored layers the vectors are spread over")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--data", choices=["clustered", "gaussian"], default="clustered", help="synthetic stored vectors")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip", nargs="*", default=[], choices=["lens", "build", "search"])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    try:
        import faiss

        faiss.omp_set_num_threads(a.threads)
    except ImportError:
        print("faiss is not installed (pip install faiss-cpu): FAISS rows are left out")
    print(f"# lens benchmarks: {platform.processor() or platform.machine()}, torch {torch.__version__}, {a.threads} thread(s)")
    if "lens" not in a.skip:
        bench_logit_lens(a.repeats)
    if "build" not in a.skip:
        bench_build(a.repeats)
    if "search" not in a.skip:
        bench_search(a.sizes, a.d, a.repeats, a.layers, a.data)


if __name__ == "__main__":
    main()

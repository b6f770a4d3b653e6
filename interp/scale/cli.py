"""``interp index build``, ``interp index search`` and ``interp scan``: corpus-scale jobs from the command line.

``register(sub)`` adds the subcommands to the ``interp`` parser's subparsers; each handler raises ``InterpError``
for bad input (printed by ``interp.cli`` as one line, exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from interp.errors import InterpError

__all__ = ["register"]


def _corpus(value: str):
    """--corpus: "prose" / "code" or a file path (.txt, .jsonl, .parquet)."""
    if value in ("prose", "code"):
        return value
    if not Path(value).expanduser().is_file():
        raise InterpError(f"--corpus {value}: no such file (give a .txt, .jsonl or .parquet file, or 'prose' / 'code')")
    return value


def _layers(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(x) for x in value.replace(",", " ").split()]
    except ValueError:
        raise InterpError(f"--layers {value!r}: give layer numbers such as 1,2,4") from None


def _backend_args(p: argparse.ArgumentParser, dtype_flag: str = "--dtype") -> None:
    from interp.models.options import add_model_options

    add_model_options(p, dtype_flag=dtype_flag, device_default=f"cpu; --device, {dtype_flag} and --threads apply to the "
                      "local backend and the driver, Ray workers load float32 on their own GPU or one CPU thread")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="local (in-process, default) or ray")
    p.add_argument("--workers", type=int, default=2, help="Ray workers (model actors; one GPU each where there are GPUs)")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)")
    p.add_argument("--shard-docs", type=int, default=64, help="documents per shard (default 64)")
    p.add_argument("--field", default="text", help="text field of .jsonl / .parquet corpora (default: text)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _model(a: argparse.Namespace, dtype_flag: str = "--dtype"):
    """The model for a corpus job: for the local backend, loaded here with ``--device`` (default cpu), ``--dtype`` and
    ``--threads``; for Ray, its name (workers load it themselves), refusing a ``--dtype`` they would not apply."""
    from interp.models.options import model_options

    opts = model_options(a, dtype_flag=dtype_flag)
    if a.backend == "local":
        from interp.models import load_model

        return load_model(a.model, device=opts["device"] or "cpu", dtype=opts["dtype"])
    if opts["dtype"] is not None:
        raise InterpError(f"{dtype_flag} applies to the local backend: Ray workers load the model in float32; drop "
                          f"{dtype_flag} or use --backend local")
    return a.model


def _build(a: argparse.Namespace) -> int:
    from interp.lens.latent.files import DTYPES
    from interp.scale.index import build_index

    if a.dtype not in DTYPES:
        raise InterpError(f"--dtype {a.dtype!r} is not a storage type of the index: use one of {', '.join(DTYPES)}")
    if a.max_per_token < 0:
        raise InterpError(f"--max-per-token must be 0 (no cap) or a positive count, got {a.max_per_token}")
    corpus = _corpus(a.corpus)
    model = _model(a, "--model-dtype")
    index = build_index(model, corpus, out=a.out, layers=_layers(a.layers), backend=a.backend, workers=a.workers,
                        shard_docs=a.shard_docs, batch_size=a.batch_size, max_per_token=a.max_per_token or None,
                        dtype=DTYPES[a.dtype], address=a.address, progress=not a.quiet, field=a.field)
    print(f"wrote {a.out}: {len(index):,} rows x layers {index.layers} in {len(index.shards)} shards")
    return 0


def _search(a: argparse.Namespace) -> int:
    from interp.lens.latent import LatentIndex, latent_lens
    from interp.models import load_model
    from interp.models.options import chat_text, check_chat_options, model_options
    from interp.validate import check_text

    opts = model_options(a)
    check_chat_options(a)
    if not a.prompt.strip():
        raise InterpError("the prompt is empty: give at least one word")
    check_text("the prompt", a.prompt)  # bytes that are not UTF-8 arrive as lone surrogates
    index = LatentIndex.open(a.index)
    model = load_model(a.model or index.model_name, **opts)
    try:
        r = latent_lens(model, chat_text(model, a.prompt, a), index, layer=a.layer, k=a.k)
    except InterpError as e:
        if opts["dtype"] is None or "other weights" not in str(e):
            raise
        raise InterpError(f"{e}; here --dtype {a.model_dtype} changed the weights' precision: search in the precision the "
                          "index was built in (float32 unless it was built with --model-dtype)") from None
    for pos, tok in enumerate(r.tokens):
        hits = "  ".join(f"{s:.2f} {snip}" for s, snip in zip(r.sims[0, pos].tolist(), r.snippets[0][pos]))
        print(f"{pos:3d} {tok!r:14s} {hits}")
    return 0


def _scan(a: argparse.Namespace) -> int:
    from interp.scale.scan import scan_corpus

    out = Path(a.out)
    if out.is_dir() or not out.parent.exists():
        raise InterpError(f"--out {out}: give a file name in an existing folder, such as report.html")
    if (a.corpus is None) == (not a.image):
        raise InterpError("give --corpus (texts) or --image (one or more image files, for a vision-language model), not both")
    if a.image:
        report, what = _scan_images(a), f"{len(a.image)} image(s)"
    else:
        report, what = scan_corpus(_model(a), _corpus(a.corpus), backend=a.backend, workers=a.workers,
                                   shard_docs=a.shard_docs, address=a.address, progress=not a.quiet, field=a.field), a.corpus
    path = _write_scan(report, out, what)
    print(f"wrote {path} ({report.n_texts} texts, {report.n_tokens} tokens; sink heads {report.sink_heads})")
    return 0


def _scan_images(a: argparse.Namespace):
    """The scan of ``[image, question]`` prompts, one per ``--image``, in this process (the sharded and Ray paths take
    texts only); files are checked before the model loads."""
    from interp.extreme import scan
    from interp.models.vision import to_image
    from interp.validate import check_text

    if a.backend != "local":
        raise InterpError("--image scans run in this process: leave out --backend ray")
    images = [Path(p) for p in a.image]
    for p in images:
        to_image(p, where=f"--image {p}")  # a missing or unreadable file: one line, before the model loads
    question = check_text("--question", a.question)
    return scan(_model(a), [[p, question] for p in images], progress=not a.quiet)


def _write_scan(r, out: Path, corpus: str) -> Path:
    """The corpus scan as a self-contained HTML report (figures from ``interp.viz.extreme``)."""
    from interp.report import Report
    from interp.report.sections.extreme import add_layer_tables
    from interp.viz.extreme import sink_heatmap, summary_rows, top_head_rows

    report = Report(f"Extreme-token scan of {corpus}", f"{r.model}: {r.n_texts} texts, {r.n_tokens} tokens")
    title = "Extreme tokens"
    report.add_table(title, ["finding", "value"], summary_rows(r))
    report.add_table(title, ["#", "sink head", "sink score", "drain head", "drain ratio"], top_head_rows(r, 10))
    report.add_figure(title, sink_heatmap(r, "sink_score"))
    report.add_figure(title, sink_heatmap(r, "drain_ratio"))
    add_layer_tables(report, title, r)
    if r.other_sinks:
        report.add_table(title, ["token", "count", "share", "mean alpha"], [list(e) for e in r.other_sinks],
                         caption="Tokens other than the first that heads attend to most.")
    if getattr(r, "mass", None) is not None:  # image prompts: the split by first / visual / text position
        m, se, u = r.mass_layer, r.mass_se, r.uniform_mass
        rows = [[i] + [f"{m[i, k]:.3f} +- {se[i, k]:.3f} ({m[i, k] / u[k]:.2f}x uniform)" for k in range(len(r.kinds))]
                + ["/".join(str(int(x)) for x in r.top_kind[i].tolist())] for i in range(m.shape[0])]
        report.add_table(title, ["layer"] + [f"attention on {k}" for k in r.kinds] + [f"largest activation at {'/'.join(r.kinds)}"],
                         rows, caption="Attention mass on each kind of position (mean over heads and queries, +- SE over "
                         "prompts; 'x uniform': against uniform causal attention) and how many prompts hold each layer's "
                         "largest activation at a position of that kind.")
    return report.save(out)


def register(sub) -> None:
    """Add ``index build``, ``index search`` and ``scan`` to the ``interp`` command's subparsers ``sub``."""
    from interp.models.options import add_chat_options, add_model_options

    idx = sub.add_parser("index", help="sharded LatentLens indexes of a corpus (build, search)")
    isub = idx.add_subparsers(dest="index_cmd", required=True)
    b = isub.add_parser("build", help="build or resume a sharded LatentLens index")
    b.add_argument("--model", required=True, help="zoo name, named real model, .gguf file or local HF folder")
    b.add_argument("--corpus", required=True, help="'prose', 'code', or a .txt / .jsonl / .parquet file")
    b.add_argument("--layers", help="layers to store, e.g. 1,2,4 (default: LatentLens' choice)")
    b.add_argument("--out", required=True, help="index folder (re-running resumes it)")
    b.add_argument("--batch-size", type=int, default=16, help="documents per forward pass (default 16)")
    b.add_argument("--max-per-token", type=int, default=20, help="rows kept per token id (0: no cap; default 20)")
    b.add_argument("--dtype", default="float16",
                   help="stored vectors: float16 (default), bfloat16 (searches faster on CPUs with AVX512-BF16) or "
                        "float32; the model's own precision is --model-dtype")
    _backend_args(b, dtype_flag="--model-dtype")
    b.set_defaults(func=_build)
    s = isub.add_parser("search", help="LatentLens neighbours of each token of a prompt")
    s.add_argument("index", help="index folder")
    s.add_argument("prompt", help="text to describe")
    s.add_argument("--layer", type=int, required=True, help="model layer of the prompt's states")
    s.add_argument("--k", type=int, default=3, help="neighbours per token (default 3)")
    s.add_argument("--model", help="model (default: the one the index was built with)")
    add_model_options(s)
    add_chat_options(s)
    s.set_defaults(func=_search)
    c = sub.add_parser("scan", help="extreme-token scan of a corpus into an HTML report")
    c.add_argument("--model", required=True, help="zoo name, named real model, .gguf file or local HF folder")
    c.add_argument("--corpus", help="'prose', 'code', or a .txt / .jsonl / .parquet file")
    c.add_argument("--image", action="append", metavar="PATH",
                   help="an image file (repeat for several): scan [image, --question] prompts of a vision-language model")
    c.add_argument("--question", default=" What is in the picture? Answer:",
                   help="text after each --image (default ' What is in the picture? Answer:')")
    c.add_argument("--out", default="scan.html", help="output HTML file (default scan.html)")
    _backend_args(c)
    c.set_defaults(func=_scan)

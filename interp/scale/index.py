"""Sharded, resumable LatentLens indexes built by the local or the Ray backend.

The driver reads and tokenises the corpus (documents get stable ids: their order), decides the keep rules in corpus
order exactly as ``LatentIndex.build`` does (so the rows are the same), and cuts the corpus into shards of
``shard_docs`` documents (a multiple of ``batch_size``, so every forward batch is the one ``LatentIndex.build``
runs and vectors are equal bit for bit). Workers write one shard file each, atomically; the manifest
(``index.json``) records the model signature, layers, settings, corpus fingerprint, the planned rows of every
shard, which are complete and the SHA-256 of every file. Running the same build again skips complete shards whose
bytes still match (a changed or damaged shard is built again); a folder holding an index of
another model, other layers, other settings or another corpus is refused, never mixed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file

from interp.errors import InterpError
from interp.io import atomic_write, sha256_file
from interp.lens.data import encode_texts, pad_batches
from interp.lens.latent import LatentIndex, ShardedIndex
from interp.lens.latent.files import DTYPES, check_file, checksums, dtype_name, read_header
from interp.lens.latent.manifest import SHARDED_FORMAT, read_index_meta, shard_expect, shard_file, write_manifest
from interp.scale.backends import run_items
from interp.scale.corpus import read_corpus
from interp.scale.worker import pack

__all__ = ["build_index"]

_MODEL_KEYS = ("model", "decoder_hash", "d_model", "n_layers")
_SETTING_KEYS = ("layers", "dtype", "max_per_token", "min_pos", "dedup", "batch_size", "shard_docs")


def _load(model, device: str | None):
    if isinstance(model, str | Path):
        from interp.models import load_model

        return str(model), load_model(str(model), device=device or "cpu")
    return None, model


def _plan(model, seqs: list[torch.Tensor], layers, dtype, max_per_token, min_pos, dedup, batch_size) -> tuple[LatentIndex, list]:
    """(empty index carrying the final keep state, per-document keep masks [len]) in corpus order."""
    index = LatentIndex.empty(model, layers=layers, dtype=dtype, max_per_token=max_per_token, min_pos=min_pos, dedup=dedup)
    keeps: list[torch.Tensor] = []
    for idx, ids, mask in pad_batches(seqs, batch_size):
        keep = index.select(ids, mask)
        keeps.extend(keep[row, : len(seqs[i])].clone() for row, i in enumerate(idx))
    return index, keeps


def _fingerprint(seqs: list[torch.Tensor]) -> str:
    h = hashlib.sha256()
    h.update(torch.tensor([len(s) for s in seqs], dtype=torch.int64).numpy().tobytes())
    for s in seqs:
        h.update(s.to(torch.int32).numpy().tobytes())
    return h.hexdigest()[:24]


def _refuse_mismatch(out: Path, old: dict, new: dict) -> None:
    for keys, what in ((_MODEL_KEYS, "another model"), (("layers",), "other layers"), (_SETTING_KEYS, "other settings"),
                       (("corpus", "texts"), "another corpus")):
        diff = [k for k in keys if old.get(k) != new.get(k)]
        if diff:
            shown = ", ".join(f"{k} {old.get(k)!r} (now {new.get(k)!r})" for k in diff)
            raise InterpError(f"{out} holds an index of {what}: {shown}; give another --out, or delete that folder to rebuild")


def _done_shards(out: Path, meta: dict, old: dict) -> tuple[set[int], dict[str, str]]:
    """(complete shards, their SHA-256 by relative path): whole files of this plan that match the checksum the old
    manifest ``old`` recorded for them, or, where it recorded none (a killed run wrote the file but did not list it),
    whose header checks; a damaged or changed shard is left out, so it is built again."""
    done, sums = set(), {}
    recorded = old.get("sha256") if isinstance(old.get("sha256"), dict) else {}
    dtype = DTYPES[meta["dtype"]]
    for i, p in enumerate(meta["planned"]):
        path = shard_file(out, i)
        if not path.is_file():
            continue
        name = path.relative_to(out).as_posix()
        try:
            header, _ = read_header(path)
            if header.get("__metadata__", {}).get("plan") != meta["plan"]:
                continue
            check_file(path, shard_expect(meta["layers"], meta["d_model"], dtype, p["rows"], p["texts"]))
        except InterpError:
            continue  # a damaged file is rebuilt
        digest = sha256_file(path)
        if name in recorded and recorded[name] != digest:
            continue  # its bytes changed since it was written: rebuilt
        done.add(i)
        sums[name] = digest
    return done, sums


def build_index(
    model, corpus, *, out: str | Path, layers: list[int] | None = None, backend: str = "local", workers: int = 2,
    shard_docs: int = 64, batch_size: int = 16, dtype: torch.dtype = torch.float16, max_per_token: int | None = 20,
    min_pos: int = 2, dedup: bool = True, device: str | None = None, address: str | None = None, progress: bool = True,
    field: str = "text", on_shard: Callable[[int], None] | None = None,
) -> ShardedIndex:
    """Build (or resume) the sharded LatentLens index of ``corpus`` with ``model`` in folder ``out``; returns it opened.

    ``model``: a spec (zoo name, folder, GGUF, named real model; required for ``backend="ray"``) or a loaded bridge.
    ``corpus``: anything ``read_corpus`` reads. ``layers``, ``dtype``, ``max_per_token``, ``min_pos``, ``dedup``,
    ``batch_size`` as in ``LatentIndex.build`` (the same rows). ``shard_docs``: documents per shard (rounded up to a
    multiple of ``batch_size``). ``workers``: Ray actors. ``on_shard(n_complete)`` is called after each shard is recorded.
    """
    if dtype not in DTYPES.values():
        raise InterpError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype}")
    for name, v in (("batch_size", batch_size), ("shard_docs", shard_docs)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InterpError(f"{name} must be a whole number >= 1, got {v!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InterpError(f"--out {out} is a file: give a folder for the index")
    if not out.parent.is_dir():
        raise InterpError(f"--out {out}: folder {out.parent} does not exist")
    spec, bridge = _load(model, device)
    docs = read_corpus(corpus, field=field)
    seqs = encode_texts(bridge, docs)
    shard_docs = -(-shard_docs // batch_size) * batch_size
    plan_index, keeps = _plan(bridge, seqs, layers, dtype, max_per_token, min_pos, dedup, batch_size)
    bounds = [(s, min(s + shard_docs, len(seqs))) for s in range(0, len(seqs), shard_docs)]
    planned = [{"rows": int(sum(int(k.sum()) for k in keeps[a:b])), "texts": b - a} for a, b in bounds]
    meta = dict(format=SHARDED_FORMAT, model=plan_index.model_name, decoder_hash=plan_index.decoder, d_model=plan_index.d_model,
                n_layers=plan_index.n_layers, layers=plan_index.layers, dtype=dtype_name(dtype), max_per_token=max_per_token,
                min_pos=min_pos, dedup=dedup, bos_id=plan_index.bos_id, batch_size=batch_size, shard_docs=shard_docs,
                corpus=_fingerprint(seqs), texts=len(seqs), rows=sum(p["rows"] for p in planned), planned=planned, complete=[])
    meta["plan"] = hashlib.sha256(json.dumps({k: v for k, v in meta.items() if k != "complete"}, sort_keys=True).encode()).hexdigest()[:24]
    shard_sums: dict[str, str] = {}
    if (out / "index.json").exists():
        old = read_index_meta(out)
        if old["format"] != SHARDED_FORMAT:
            raise InterpError(f"{out} holds a one-piece index: give another --out for a sharded build")
        _refuse_mismatch(out, old, meta)
        done, shard_sums = _done_shards(out, meta, old)  # listed or not, a shard counts when its file is whole and unchanged
        meta["complete"] = sorted(done)
    elif out.exists() and any(out.iterdir()):
        raise InterpError(f"--out {out} is a folder that holds other files: give a new or empty folder")
    out.mkdir(exist_ok=True)
    atomic_write(out / "vocab.json", lambda p: p.write_text(json.dumps(plan_index.vocab, ensure_ascii=False)))
    state = {"counts": plan_index.counts, "seen": torch.tensor(sorted(plan_index.seen), dtype=torch.int64)}
    atomic_write(out / "keep_state.safetensors", lambda p: save_file(state, str(p)))
    meta["sha256"] = {**checksums(out, ["vocab.json", "keep_state.safetensors"]), **shard_sums}
    write_manifest(out, meta)
    todo = [i for i in range(len(bounds)) if i not in set(meta["complete"])]
    items = [pack(i, bounds[i][0], seqs[bounds[i][0] : bounds[i][1]], keeps[bounds[i][0] : bounds[i][1]]) for i in todo]
    settings = {"layers": meta["layers"], "dtype": meta["dtype"], "batch_size": batch_size, "out": str(out), "plan": meta["plan"]}
    for result in run_items(items, backend=backend, spec=spec, task="index", settings=settings, model=bridge, workers=workers,
                            address=address, progress=progress, desc="index shards"):
        i = int(result["shard"])
        if int(result["rows"]) != planned[i]["rows"]:
            raise InterpError(f"shard {i} came back with {result['rows']} rows, the plan says {planned[i]['rows']}: "
                              "the workers run another model or tokenizer than the driver")
        meta["complete"] = sorted(set(meta["complete"]) | {i})
        meta["sha256"].update(checksums(out, [shard_file(out, i).relative_to(out).as_posix()]))
        write_manifest(out, meta)
        if on_shard is not None:
            on_shard(len(meta["complete"]))
    return ShardedIndex(out)

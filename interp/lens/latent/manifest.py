"""Index folders on disk: ``index.json`` checked field by field, and the shard files of a sharded index.

A sharded folder (written by ``interp.scale.build_index``) holds ``index.json`` (the manifest: model signature,
layers, settings, corpus fingerprint, the planned rows of every shard and the list of complete ones), ``vocab.json``,
``keep_state.safetensors`` (per-token counts and seen prefixes after the whole corpus) and
``shards/shard_{i:05d}.safetensors`` (per layer ``vectors.{l}`` [rows, d_model] and ``inv_norms.{l}`` [rows]; ``token_ids``,
``doc_ids``, ``positions`` [rows]; ``doc_lengths`` [texts] and ``doc_tokens`` [sum of lengths]). Each shard is written
atomically, so a shard file that exists is whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save

from interp.errors import InterpError
from interp.io import atomic_write
from interp.lens.latent.files import DTYPES, read_json

__all__ = ["SHARDED_FORMAT", "read_index_meta", "shard_file", "shard_expect", "write_shard", "write_manifest", "stable_bytes"]

SHARDED_FORMAT = "interp-latent-index-sharded-v1"
_FORMATS = ("interp-latent-index-v1", SHARDED_FORMAT)
_INT, _OPT_INT = (int,), (int, type(None))
_FIELDS = {
    "model": (str,), "decoder_hash": (str,), "d_model": _INT, "layers": (list,), "n_layers": _OPT_INT, "dtype": (str,),
    "max_per_token": _OPT_INT, "min_pos": _INT, "dedup": (bool,), "bos_id": _OPT_INT, "texts": _INT,
}
_SHARDED_FIELDS = {"rows": _INT, "batch_size": _INT, "shard_docs": _INT, "corpus": (str,), "planned": (list,), "complete": (list,)}


def read_index_meta(path: Path) -> dict:
    """The checked ``index.json`` of index folder ``path``: a known format, every field present with its type,
    ``d_model`` > 0, layers a non-empty list of ints, ``dtype`` from the allow-list. ``InterpError`` naming the file otherwise."""
    path = Path(path)
    file = path / "index.json"
    if not file.is_file():
        raise InterpError(f"{path} is not a LatentLens index folder (no index.json)")
    meta = read_json(file)
    fmt = meta.get("format")
    if fmt not in _FORMATS:
        raise InterpError(f"{file} is not an interp LatentLens index (format {fmt!r})")
    fields = dict(_FIELDS, **(_SHARDED_FIELDS if fmt == SHARDED_FORMAT else {"rows": _INT}))
    for name, types in fields.items():
        v = meta.get(name, KeyError)
        if v is KeyError or not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            raise InterpError(f"{file}: field {name!r} is missing or has the wrong type ({v!r}): the index folder is damaged, rebuild it")
    if meta["d_model"] < 1 or meta["rows"] < 0 or meta["texts"] < 0 or meta["min_pos"] < 0 or (meta["max_per_token"] or 1) < 1:
        raise InterpError(f"{file}: d_model, rows, texts, min_pos and max_per_token must be positive counts: the index folder "
                          "is damaged, rebuild it")
    if not meta["layers"] or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in meta["layers"]):
        raise InterpError(f"{file}: layers must be a non-empty list of layer numbers, got {meta['layers']!r}")
    if meta["dtype"] not in DTYPES:
        raise InterpError(f"{file}: dtype {meta['dtype']!r} is not one of {', '.join(DTYPES)}; the index folder is damaged, rebuild it")
    return meta


def shard_file(folder: Path, shard: int) -> Path:
    """Path of shard ``shard``'s file in index ``folder``."""
    return Path(folder) / "shards" / f"shard_{shard:05d}.safetensors"


def shard_expect(layers: list[int], d_model: int, dtype: torch.dtype, rows: int, texts: int) -> dict:
    """What a shard file must hold: {tensor name: (dtype, shape or None for any 1-D length)}."""
    i32 = torch.int32
    out = {"token_ids": (i32, (rows,)), "doc_ids": (i32, (rows,)), "positions": (i32, (rows,)),
           "doc_lengths": (torch.int64, (texts,)), "doc_tokens": (i32, None)}
    for layer in layers:
        out[f"vectors.{layer}"] = (dtype, (rows, d_model))
        out[f"inv_norms.{layer}"] = (torch.float32, (rows,))
    return out


def write_shard(folder: Path, shard: int, tensors: dict[str, torch.Tensor], plan: str) -> Path:
    """Write shard ``shard``'s tensors atomically (metadata: the plan fingerprint and the shard number); returns the path."""
    path = shard_file(folder, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = {k: tensors[k].contiguous() for k in sorted(tensors)}
    data = stable_bytes(ordered, {"plan": plan, "shard": str(shard)})
    return atomic_write(path, lambda p: p.write_bytes(data))


def stable_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors file of ``tensors`` with ``metadata``, byte-identical for identical input: safetensors writes the
    metadata map in hash order, which varies between processes, so the header's metadata is rewritten in sorted key
    order (same length, same padding). Returns the file's bytes."""
    data = bytearray(save(tensors, metadata=metadata))
    n = int.from_bytes(data[:8], "little")
    header = json.loads(bytes(data[8 : 8 + n]))
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > n:  # safetensors' own JSON is as compact as this one: only the key order changes
        raise InterpError("could not write a stable shard header (safetensors changed its header format)")
    data[8 : 8 + n] = text + b" " * (n - len(text))
    return bytes(data)


def write_manifest(folder: Path, meta: dict) -> Path:
    """Write ``index.json`` atomically (the list of complete shards kept sorted); returns its path."""
    meta = dict(meta, complete=sorted(set(meta["complete"])))
    return atomic_write(Path(folder) / "index.json", lambda p: p.write_text(json.dumps(meta, indent=1) + "\n"))

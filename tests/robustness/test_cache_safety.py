"""The shared GGUF conversion cache (issue 36): two processes using it at once never crash each other nor read wrong
weights; conversion is locked (one process converts, the other waits a bounded time and reuses it); converted
weights are checked against the manifest on every load, and a tampered cache is converted again, never trusted;
a killed conversion leaves nothing that lasts."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from interp.errors import InterpError
from interp.models import gguf

pytestmark = pytest.mark.robustness

ROOT = Path(__file__).resolve().parents[2]


def tiny_llama_gguf(path: Path, seed: int = 0, vocab: int = 16, d: int = 8, ff: int = 16, heads: int = 2) -> Path:
    """A one-block float32 llama GGUF (with a sentencepiece-style vocabulary) that transformers can dequantize."""
    from gguf import GGUFWriter

    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), "llama")
    w.add_context_length(32)
    w.add_embedding_length(d)
    w.add_block_count(1)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(d // heads)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>"] + [f"\u2581w{i}" for i in range(vocab - 3)])
    w.add_token_scores([0.0] * 3 + [-float(i) for i in range(vocab - 3)])
    w.add_token_types([2, 3, 3] + [1] * (vocab - 3))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    rand = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    w.add_tensor("token_embd.weight", rand(vocab, d))
    w.add_tensor("output_norm.weight", np.ones(d, np.float32))
    w.add_tensor("output.weight", rand(vocab, d))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(d, np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(d, np.float32))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        w.add_tensor(f"blk.0.{name}.weight", rand(d, d))
    w.add_tensor("blk.0.ffn_gate.weight", rand(ff, d))
    w.add_tensor("blk.0.ffn_up.weight", rand(ff, d))
    w.add_tensor("blk.0.ffn_down.weight", rand(d, ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _versions(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "gguf").iterdir() if ".v" in p.name and p.is_dir() and not p.is_symlink())


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """(GGUF file, its reference conversion's tensors) with ``INTERP_CACHE`` pointing at an empty ``tmp_path/cache``."""
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "reference"))
    f = tiny_llama_gguf(tmp_path / "tiny.gguf")
    reference = load_file(str(gguf.hf_folder(f) / "model.safetensors"))
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    return f, reference


READER = """
import json, sys, time, torch
from pathlib import Path
from safetensors import safe_open
from safetensors.torch import load_file
from interp.models.gguf import hf_folder
src, ref, stop = sys.argv[1:4]
expect = load_file(ref)
Path(stop + ".ready").touch()
while not Path(stop + ".go").exists():
    time.sleep(0.05)
held = safe_open(str(hf_folder(src) / "model.safetensors"), "pt")  # mapped, kept open while the cache is re-created
reads, folders = 0, set()
while reads < 3 or not Path(stop).exists():
    folder = hf_folder(src)
    folders.add(folder.name)
    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        bad = [k for k in expect if not torch.equal(fh.get_tensor(k), expect[k])]
    assert not bad, (folder, bad)
    reads += 1
assert all(torch.equal(held.get_tensor(k), expect[k]) for k in expect), "the mapped weights changed"
print(json.dumps({"reads": reads, "folders": len(folders)}))
"""

WRITER = """
import json, sys, time
from pathlib import Path
from interp.models.gguf import hf_folder
src, stop, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
Path(stop + ".ready2").touch()
while not Path(stop + ".go").exists():
    time.sleep(0.05)
first = hf_folder(src)
made = [hf_folder(src, reconvert=True).name for _ in range(n)]
Path(stop).touch()
print(json.dumps({"first": first.name, "made": made}))
"""


def _spawn(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)


def test_two_processes_share_the_cache_while_one_recreates_it(tiny, tmp_path):
    """Both start on an empty cache at the same moment (the lock lets one convert, the other reuses it); then the
    writer converts the file again three times (each a new folder swapped in) while the reader keeps loading: the
    reader never crashes (a SIGBUS would be return code -7), every read equals the reference conversion, and the
    weights it mapped before the re-conversions still read back intact."""
    f, reference = tiny
    ref = tmp_path / "reference.safetensors"
    from safetensors.torch import save_file

    save_file(reference, str(ref))
    stop = tmp_path / "stop"
    reader = _spawn(READER, f, ref, stop)
    writer = _spawn(WRITER, f, stop, 3)
    while not (Path(f"{stop}.ready").exists() and Path(f"{stop}.ready2").exists()):
        if reader.poll() is not None or writer.poll() is not None:
            break
        time.sleep(0.05)
    Path(f"{stop}.go").touch()
    w_out, w_err = writer.communicate()
    r_out, r_err = reader.communicate()
    assert writer.returncode == 0, w_err[-2000:]
    assert reader.returncode == 0, r_err[-2000:]
    made = json.loads(w_out.strip().splitlines()[-1])
    got = json.loads(r_out.strip().splitlines()[-1])
    assert got["reads"] >= 3
    assert len(set(made["made"])) == 3 and made["first"] not in made["made"]
    cache = tmp_path / "cache"
    # one conversion for the two first calls (not two), plus the three forced ones; none changed in place
    assert len(_versions(cache)) == 4, _versions(cache)
    current = os.readlink(cache / "gguf" / f"{f.stem}-{gguf.file_sha256(f)[:16]}.current")
    assert current == made["made"][-1]
    assert not [p for p in (cache / "gguf").iterdir() if ".tmp-" in p.name or ".link-" in p.name]


def _fake_convert(calls):
    def convert(path, out, digest, arch, trust):  # a stand-in for the dequantisation: two small files
        calls.append(out.name)
        (out / "model.safetensors").write_bytes(b"weights " + digest.encode())
        (out / "config.json").write_text("{}")

    return convert


def test_tampered_weights_are_detected_and_converted_again(tiny, tmp_path):
    f, reference = tiny
    folder = gguf.hf_folder(f)
    manifest = json.loads((folder / gguf.MARKER).read_text())
    assert set(manifest["files"]) >= {"model.safetensors", "config.json"} and manifest["sha256"] == gguf.file_sha256(f)
    weights = folder / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-5] ^= 0x10  # one weight changed, same size, still a valid safetensors file
    tmp = folder / "tampered"
    tmp.write_bytes(bytes(raw))
    os.replace(tmp, weights)
    again = gguf.hf_folder(f)
    assert again != folder and weights.read_bytes() == bytes(raw)  # a new folder; the old one is left as it was
    got = load_file(str(again / "model.safetensors"))
    assert all(torch.equal(got[k], reference[k]) for k in reference)


@pytest.mark.parametrize("damage", ["extra file", "missing file", "manifest gone", "manifest for another file", "symlink"])
def test_any_mismatch_with_the_manifest_is_converted_again(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(gguf, "_convert", _fake_convert(calls))
    f = tiny_llama_gguf(tmp_path / "t.gguf")
    folder = gguf.hf_folder(f)
    if damage == "extra file":
        (folder / "model-00002.safetensors").write_bytes(b"x")
    elif damage == "missing file":
        (folder / "config.json").unlink()
    elif damage == "manifest gone":
        (folder / gguf.MARKER).unlink()
    elif damage == "manifest for another file":
        m = json.loads((folder / gguf.MARKER).read_text())
        (folder / gguf.MARKER).write_text(json.dumps(dict(m, sha256="0" * 64)))
    else:
        (folder / "config.json").unlink()
        (folder / "config.json").symlink_to(tmp_path / "t.gguf")
    again = gguf.hf_folder(f)
    assert again != folder and len(calls) == 2
    assert gguf.hf_folder(f) == again and len(calls) == 2  # the new folder is good: no third conversion


def test_conversion_waits_for_the_lock_a_bounded_time(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("INTERP_GGUF_LOCK_WAIT", "0.5")
    calls = []
    monkeypatch.setattr(gguf, "_convert", _fake_convert(calls))
    f = tiny_llama_gguf(tmp_path / "t.gguf")
    lock = tmp_path / "cache" / "gguf" / f"t-{gguf.file_sha256(f)[:16]}.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as held:  # another converter holds the lock (a second open file description)
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(InterpError, match=r"another process has been converting t\.gguf for over 0\.5 s.*INTERP_GGUF_LOCK_WAIT"):
            gguf.hf_folder(f)
    assert not calls
    gguf.hf_folder(f)  # lock released: converts
    assert len(calls) == 1
    monkeypatch.setenv("INTERP_GGUF_LOCK_WAIT", "soon")
    with pytest.raises(InterpError, match="INTERP_GGUF_LOCK_WAIT must be a number"):
        gguf.lock_wait()


def test_interrupted_or_killed_conversion_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    f = tiny_llama_gguf(tmp_path / "t.gguf")

    def interrupted(path, out, digest, arch, trust):
        (out / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf, "_convert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gguf.hf_folder(f)
    root = tmp_path / "cache" / "gguf"
    assert [p.name for p in root.iterdir()] == [f"t-{gguf.file_sha256(f)[:16]}.lock"]
    key = f"t-{gguf.file_sha256(f)[:16]}"
    (root / f".{key}.tmp-killed").mkdir()  # what a SIGKILL mid-conversion leaves
    (root / f".{key}.tmp-killed" / "model.safetensors").write_bytes(b"half")
    calls = []
    monkeypatch.setattr(gguf, "_convert", _fake_convert(calls))
    folder = gguf.hf_folder(f)
    assert len(calls) == 1 and not (root / f".{key}.tmp-killed").exists()
    assert sorted(p.name for p in root.iterdir()) == sorted([f"{key}.lock", f"{key}.current", folder.name])

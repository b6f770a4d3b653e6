"""GGUF files as hooked models: dequantize once through transformers, keep an HF-format copy in a shared cache.

No TransformerLens entry point loads a GGUF file. transformers can read one (``gguf_file=``; needs the
``gguf`` package) and dequantizes it to float, but refuses to save such a model. ``hf_folder(path)``
converts a GGUF file into a plain Hugging Face folder (safetensors, float32, no ``quantization_config``)
in the cache, keyed by the SHA-256 of the file's bytes, and returns it; a second call finds it and does
not dequantize again, and a changed file gets a new folder.

Several processes may share the cache (``<cache>/gguf``) without ever crashing each other:

- ``<key>.v<token>/`` (key ``<stem>-<sha256[:16]>``) is one converted folder. It is filled under a temporary name
  (``.<key>.tmp-*``), renamed whole, and never changed afterwards, so a process that has memory-mapped its weights
  keeps valid pages. Its manifest ``interp-gguf.json``, written last, holds the GGUF's SHA-256 and the SHA-256 of
  every other file in the folder.
- ``<key>.current`` is a symbolic link to the folder in use, replaced atomically; ``hf_folder`` returns the folder it
  resolves to, so a reader holds one complete folder for its whole load.
- ``<key>.lock``: an ``fcntl`` lock held while converting; a second process waits (at most ``lock_wait()`` seconds,
  ``$INTERP_GGUF_LOCK_WAIT``) and then reuses what the first converted.

Every call checks the folder against its manifest (each file hashed once per process and file state); a folder
whose files do not match (damaged or tampered weights) is converted again into a new folder, the old one left as it
is for a day (processes may still map it) and then removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from interp.errors import InterpError
from interp.io import folder_problem, sha256_file
from interp.paths import cache_dir

try:
    import fcntl
except ImportError:  # Windows: no fcntl; conversions there are not locked against each other
    fcntl = None

__all__ = ["hf_folder", "converted_folder", "file_sha256", "architecture", "supported_architectures", "lock_wait", "MARKER"]

log = logging.getLogger(__name__)
_HASHES: dict[tuple[str, int, int], str] = {}
MARKER = "interp-gguf.json"
"the manifest of a converted folder (written last)"
KEEP_OLD_S = 24 * 3600
"how long a replaced or stale folder is kept before the next conversion of its key removes it (seconds)"


def lock_wait() -> float:
    """Seconds a process waits for another one's conversion of the same file: ``$INTERP_GGUF_LOCK_WAIT``, default 1800."""
    try:
        return max(0.0, float(os.environ.get("INTERP_GGUF_LOCK_WAIT", "1800")))
    except ValueError:
        raise InterpError(f"INTERP_GGUF_LOCK_WAIT must be a number of seconds, got {os.environ['INTERP_GGUF_LOCK_WAIT']!r}") from None


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (memoised per path, size and modification time)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(p)
    return _HASHES[key]


def _need_gguf():
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise InterpError("loading a .gguf file needs the 'gguf' package: pip install gguf (or pip install -e .[real])") from None


def architecture(path: str | Path) -> str:
    """The ``general.architecture`` field of a GGUF file (e.g. "llama", "gemma3")."""
    _need_gguf()
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
        field = reader.fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode()
    except KeyError:
        raise InterpError(f"{path} is a GGUF file without a general.architecture field; it cannot be loaded") from None
    except Exception as e:  # the reader raises ValueError/struct errors on a file that is not GGUF
        raise InterpError(f"{path} is not a readable GGUF file ({type(e).__name__}: {e})") from None


def supported_architectures() -> list[str]:
    """GGUF architectures that the installed transformers can dequantize."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return sorted(GGUF_SUPPORTED_ARCHITECTURES)


def hf_folder(path: str | Path, *, trust_remote_code: bool = False, reconvert: bool = False) -> Path:
    """The cached Hugging Face folder converted from the GGUF file ``path`` (converting it if needed).

    Returns the folder's path (``<cache>/gguf/<name>-<sha256[:16]>.v<token>``), whose files have just been checked
    against its manifest. ``reconvert=True`` converts again even when a good folder exists (it is replaced, not
    changed). Raises ``InterpError`` when the file is missing, is not GGUF, holds an architecture transformers cannot
    dequantize (the message lists the supported ones), or another process's conversion of it takes longer than
    ``lock_wait()`` seconds.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InterpError(f"no such GGUF file: {p}")
    digest = file_sha256(p)
    root = cache_dir("gguf")
    key = f"{p.stem}-{digest[:16]}"
    if not reconvert and (found := _current(root, key, digest, warn=True)) is not None:
        return found
    arch = architecture(p)
    supported = supported_architectures()
    if arch not in supported and arch.replace("_", "-") not in supported:
        raise InterpError(
            f"{p.name}: GGUF architecture {arch!r} cannot be dequantized by the installed transformers; "
            f"supported: {', '.join(supported)}"
        )
    with _locked(root / f"{key}.lock", p.name):
        if not reconvert and (found := _current(root, key, digest)) is not None:
            return found  # another process converted it while this one waited
        _remove_stale(root, key)
        log.info("converting %s (%s) to a Hugging Face folder in %s", p.name, arch, root)
        folder = _convert_new(root, key, p, digest, arch, trust_remote_code)
        link = root / f"{key}.current"
        tmp_link = root / f".{key}.link-{secrets.token_hex(4)}"
        os.symlink(folder.name, tmp_link)
        os.replace(tmp_link, link)  # atomic: readers see the old folder or the new one, both complete
    return folder


def converted_folder(stem: str, digest: str) -> Path | None:
    """The cached conversion of the GGUF file ``<stem>.gguf`` whose SHA-256 is ``digest`` (found without the file).

    Returns the folder ``hf_folder`` would return, its files just checked against its manifest, or None when there is
    no usable one (nothing is converted here).
    """
    return _current(cache_dir("gguf"), f"{stem}-{digest[:16]}", digest, warn=True)


def _current(root: Path, key: str, digest: str, warn: bool = False) -> Path | None:
    """The folder ``<key>.current`` points at when its manifest names ``digest`` and every file matches it, else None."""
    link = root / f"{key}.current"
    if not link.is_symlink():
        return None
    try:
        folder = (root / os.readlink(link)).resolve(strict=True)
    except OSError:
        return None
    if folder.parent != root.resolve() or not folder.is_dir():
        log.warning("%s points outside the cache; converting again", link)
        return None
    problem = _check(folder, digest)
    if problem and warn:
        log.warning("the cached conversion %s is not usable (%s); converting it again", folder, problem)
    return None if problem else folder


def _check(folder: Path, digest: str) -> str | None:
    """Why ``folder`` does not match its manifest (None when it does): files hashed, each once per process and state."""
    try:
        manifest = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return f"no readable {MARKER}"
    if not isinstance(manifest, dict) or manifest.get("sha256") != digest:
        return f"{MARKER} names another GGUF file"
    return folder_problem(folder, manifest.get("files"), MARKER)


@contextlib.contextmanager
def _locked(lock: Path, what: str) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on file ``lock``, waiting at most ``lock_wait()`` s (``InterpError`` after)."""
    wait = lock_wait()
    if fcntl is None:
        yield
        return
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise InterpError(f"cannot convert {what}: the cache folder {lock.parent} is not writable ({e.strerror or e}); "
                          "set INTERP_CACHE to a writable folder") from None
    try:
        deadline, told = time.monotonic() + wait, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise InterpError(
                        f"another process has been converting {what} for over {wait:g} s (lock {lock}); wait for it to "
                        "finish, or raise INTERP_GGUF_LOCK_WAIT") from None
                if not told:
                    log.info("waiting for another process to finish converting %s", what)
                    told = True
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock; the lock file stays (removing it would let two processes lock two files)


def _remove_stale(root: Path, key: str) -> None:
    """Under the lock: remove temporary folders and links of ``key`` (a killed conversion's) and folders of ``key`` that
    are not current and were last changed over ``KEEP_OLD_S`` ago (no process should still map them)."""
    link = root / f"{key}.current"
    current = os.readlink(link) if link.is_symlink() else None
    now = time.time()
    for entry in os.scandir(root):
        name = entry.name
        if name.startswith((f".{key}.tmp-", f".{key}.link-")):
            _remove(Path(entry.path))
        elif (name.startswith(f"{key}.v") or name == key) and name != current and entry.is_dir(follow_symlinks=False):
            if now - entry.stat(follow_symlinks=False).st_mtime > KEEP_OLD_S:
                _remove(Path(entry.path))


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _convert_new(root: Path, key: str, path: Path, digest: str, arch: str, trust_remote_code: bool) -> Path:
    """Convert into a new temporary folder, write its manifest last, rename it to ``<key>.v<token>``; returns that."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=root))
    except OSError as e:
        raise InterpError(f"cannot convert {path.name} into {root}: {e.strerror or e}; set INTERP_CACHE to a writable "
                          "folder with room for the float32 weights") from None
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700; the cache is shared
        _convert(path, tmp, digest, arch, trust_remote_code)
        files = {e.name: sha256_file(Path(e.path)) for e in os.scandir(tmp) if e.name != MARKER}
        info = {"sha256": digest, "source": os.fspath(path), "architecture": arch, "dtype": "float32", "files": files}
        manifest = tmp / MARKER
        manifest.unlink(missing_ok=True)
        manifest.write_text(json.dumps(info, indent=2))
        folder = root / f"{key}.v{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _convert(path: Path, out: Path, digest: str, arch: str, trust_remote_code: bool) -> None:
    """Dequantize ``path`` with transformers and save it into folder ``out`` as a plain float32 HF folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), trust_remote_code=trust_remote_code,
                                                 gguf_file=path.name, dtype=torch.float32)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # transformers will not save a model it loaded from GGUF: build a plain one and move the weights in
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32, trust_remote_code=trust_remote_code)
    plain.load_state_dict(model.state_dict(), assign=True, strict=True)
    plain.tie_weights()
    plain.generation_config = model.generation_config
    plain.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("quantization_config", None)
    cfg_path.write_text(json.dumps(cfg, indent=2))

"""The one place that touches the user cache and writes run files: its directory, sha256, atomic writes of
files, directories and ``rows.jsonl`` lines, and pinned downloads.

Models (:mod:`lftf_interp.models.loading`), external bias sets (:mod:`lftf_interp.data.external`) and retention
archives (:mod:`lftf_interp.retain.sources`) all go through here, so a file is hashed, written and
downloaded the same way everywhere: a reader never sees a half-written file or directory, and a file whose
sha256 differs from its pin is never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import torch

from lftf_interp.errors import CacheError, LftfError

MANIFEST = "lftf_manifest.json"
log = logging.getLogger(__name__)


def cache_dir(create: bool = True) -> Path:
    """The user cache: ``$LFTF_CACHE`` or ``~/.cache/lftf_interp``. Raises :class:`CacheError` if unwritable."""
    root = Path(os.environ.get("LFTF_CACHE") or Path.home() / ".cache" / "lftf_interp").expanduser()
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=root, prefix=".probe-", delete=True)
            probe.close()
        except OSError as e:
            raise CacheError(
                f"The lftf cache directory {str(root)!r} is not writable ({e.strerror or e}). "
                "Set LFTF_CACHE to a writable directory, e.g. `export LFTF_CACHE=$HOME/.cache/lftf_interp`."
            ) from e
    return root


def sha256_file(path: str | Path, chunk: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def write_manifest(directory: Path, info: dict) -> None:
    """Record the size and sha256 of every file in ``directory`` (checked by :func:`validate_dir`)."""
    files = {}
    for p in sorted(directory.iterdir()):
        if p.is_file() and p.name != MANIFEST:
            files[p.name] = {"size": p.stat().st_size, "sha256": sha256_file(p)}
    (directory / MANIFEST).write_text(json.dumps({**info, "files": files}, indent=2))


def validate_dir(directory: Path) -> tuple[bool, str]:
    """Check a cached directory against its manifest (sizes and sha256 of every file)."""
    mpath = directory / MANIFEST
    if not mpath.is_file():
        return False, "no manifest (an interrupted write?)"
    try:
        files = json.loads(mpath.read_text())["files"]
    except (json.JSONDecodeError, KeyError) as e:
        return False, f"unreadable manifest ({e})"
    for name, meta in files.items():
        p = directory / name
        if not p.is_file():
            return False, f"{name} is missing"
        if p.stat().st_size != meta["size"]:
            return False, f"{name} has {p.stat().st_size} bytes, expected {meta['size']} (truncated?)"
        if sha256_file(p) != meta["sha256"]:
            return False, f"{name} does not match its sha256 (corrupted)"
    return True, "ok"


def atomic_build(final: Path, build: Callable[[Path], None]) -> None:
    """Run ``build(tmpdir)`` then move tmpdir to ``final`` in one rename, so readers never see a half cache."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        build(tmp)
        old = None
        if final.exists():  # moved aside, not deleted first: a reader sees the old or the new, never a half
            old = Path(tempfile.mkdtemp(prefix=f".old-{final.name}-", dir=final.parent))
            os.replace(final, old / final.name)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def verified(path: str | Path, sha256: str, what: str, fix: str, error: type[LftfError] = CacheError) -> Path:
    """``path`` if it exists and has the pinned sha256; else ``error`` naming ``what`` and ``fix``."""
    p = Path(path)
    if not p.is_file():
        raise error(f"{p} does not exist. {fix}")
    if (got := sha256_file(p)) != sha256:
        raise error(f"{p} has sha256 {got}, expected {sha256} ({what}). {fix}")
    return p


def download(
    url: str,
    dest: Path,
    sha256: str,
    offline_fix: str,
    timeout: float = 120,
    error: type[LftfError] = CacheError,
) -> Path:
    """``dest`` with the pinned ``sha256``: reused if already there, else downloaded from ``url`` into a
    temporary file, hash-checked and renamed into place (a bad or partial download is never kept)."""
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".dl-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (pinned https)
            while chunk := r.read(1 << 20):
                out.write(chunk)
        if (got := sha256_file(tmp)) != sha256:
            raise error(
                f"Downloaded {url} but its sha256 is {got}, expected {sha256}; not using it. The upstream copy "
                f"changed or the download was corrupted: retry, or {offline_fix}"
            )
        os.replace(tmp, dest)
    except OSError as e:
        raise error(f"Could not download {url} ({e}). Without internet: {offline_fix}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``path`` whole or not at all: a temporary file beside it, flushed to disk, then renamed over it. The
    file gets the mode a plain ``open`` would give it (0666 less the umask), not the temporary file's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _jsonable(o):
    """numpy scalars as numbers; anything else JSON cannot hold (a path, a dtype) as its text."""
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)


def write_json(path: str | Path, obj) -> Path:
    """``obj`` as indented JSON at ``path``, written atomically (:func:`write_atomic`)."""
    return write_atomic(path, json.dumps(obj, indent=2, default=_jsonable))


def _lines(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, default=float) + "\n" for r in rows).encode()


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """Replace a ``rows.jsonl`` with ``rows``, atomically (:func:`write_atomic`)."""
    write_atomic(path, _lines(rows))


def append_row(path: str | Path, row: dict) -> None:
    """Append one JSON line to a ``rows.jsonl`` in a single write of the complete line, flushed to disk: a run
    killed here leaves at most a torn last line, which :func:`read_rows` drops (and that row is run again)."""
    append_rows(path, [row])


def append_rows(path: str | Path, rows: list[dict]) -> None:
    """Append JSON lines in one write, flushed to disk (see :func:`append_row`)."""
    data = _lines(rows)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a ``rows.jsonl`` (none if it does not exist). A torn last line (a run killed while appending
    it) is dropped with a warning and cut from the file, so its row is run again; a bad line elsewhere is
    refused with its line number."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    rows: list[dict] = []
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        last = i == len(lines)  # no newline after it: the write of this line did not finish
        try:
            row = json.loads(raw)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            if last:
                log.warning(
                    "%s: dropping a torn last line (%d bytes; an interrupted run); its row runs again",
                    path,
                    len(raw),
                )
                write_atomic(path, data[: len(data) - len(raw)])
                break
            raise LftfError(
                f"{path}:{i}: not a JSON row ({e}). Fix or delete that line; the row is then run again."
            ) from None
        if last:  # a whole JSON object without its newline: keep it, and end the file properly
            write_atomic(path, data + b"\n")
        rows.append(row)
    return rows


__all__ = [
    "MANIFEST",
    "append_row",
    "append_rows",
    "atomic_build",
    "cache_dir",
    "download",
    "read_rows",
    "sha256_file",
    "validate_dir",
    "verified",
    "write_atomic",
    "write_json",
    "write_manifest",
    "write_rows",
]


def tensor_bytes(t) -> bytes:
    """The raw bytes of a tensor of any dtype (bfloat16 included) on any device, for hashing."""
    return t.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes()

"""The results folder of a run: its provenance, its rows (``rows.jsonl``, appended one finished row at a time,
read back without a torn last line, so that an interrupted run resumes), and its JSON files, written
atomically. Every experiment writes through these."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from lftf_interp.errors import LftfError
from lftf_interp.models.loading import forward_path
from lftf_interp.models.placement import current_placement
from lftf_interp.provenance import run_meta
from lftf_interp.store import append_row, append_rows, read_rows, write_json, write_rows

ROWS = "rows.jsonl"
OWNER = ".lftf-command.json"  # which command's results a folder holds
LOCK = ".lftf.lock"  # held (flock) while a command writes to the folder
# folders written before OWNER existed: the file that says which command wrote them
OWNED_BY = (
    ("delta", "finetune"),
    ("checkpoint", "finetune"),
    ("locate.json", "locate"),
    ("summary.json", "demo"),
    ("genbias_prompts.csv", "evaluate"),
    ("bias_prompts.csv", "evaluate"),
    ("mechanism.json", "mechanism"),
    ("path_patching.json", "paths"),
    ("block_material.json", "block-material"),
)


def _owner(out: Path) -> str | None:
    try:
        return json.loads((out / OWNER).read_text())["command"]
    except (OSError, ValueError, KeyError, TypeError):
        return next((cmd for name, cmd in OWNED_BY if (out / name).exists()), None)


def _writable_folder(out: Path) -> Path | None:
    """Create ``out`` (and its parents), or say in one line why it cannot be a results folder. Returns the
    topmost folder it created (None if ``out`` existed)."""
    created = None
    for folder in (out, *out.parents):
        if not folder.exists():
            created = folder
        if folder.exists() and not folder.is_dir():
            what = "is a file" if folder == out else f"is under {folder}, which is a file"
            raise LftfError(f"--out {out} {what}; give a folder path (it is created).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LftfError(
            f"--out {out} cannot be created ({e.strerror or e}); give a folder you can write."
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise LftfError(
            f"--out {out} is not writable by you; give a folder you can write, or fix its permissions."
        )
    return created


def _undo_unused(out: Path, created: Path | None, marked: bool) -> None:
    """When the command wrote nothing into ``out`` (a refused input), take back what :func:`claim_out` did: its
    owner mark (``marked``) and the folders it ``created``."""
    if {p.name for p in out.iterdir()} - {LOCK, OWNER}:
        return
    if marked or created is not None:
        (out / OWNER).unlink(missing_ok=True)
    if created is None:
        return
    (out / LOCK).unlink(missing_ok=True)
    for folder in (out, *out.parents):
        with contextlib.suppress(OSError):
            folder.rmdir()
        if folder == created:
            break


@contextlib.contextmanager
def claim_out(out: Path, command: str, force: bool = False, shares: tuple[str, ...] = ()) -> Iterator[None]:
    """Hold ``out`` for one ``command`` while it runs, checked before any model loads: the folder is created (or
    refused in one line: a file, under a file, not writable); a folder holding another command's results is
    refused unless ``force`` (``shares``: commands whose files may sit beside this one's); a second command on
    the same folder while this one runs is refused (an advisory lock the system drops when the process ends,
    however it ends). Ranks after the first of a data-parallel run share the first one's claim."""
    if os.environ.get("RANK", "0") != "0":
        yield
        return
    created = _writable_folder(out)
    try:
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise LftfError(
            f"--out {out} cannot be written ({e.strerror or e}); give a folder you can write."
        ) from None
    locked = marked = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise LftfError(
                f"--out {out} is in use by another lftf command still running; wait for it to end, or give "
                "another --out."
            ) from None
        locked = True
        owner = _owner(out)
        if owner not in (None, command, *shares) and not force:
            raise LftfError(
                f"--out {out} holds the results of `lftf {owner}`; `lftf {command}` would overwrite them. Give "
                "another --out, or pass --force to write there anyway."
            )
        if owner != command:
            write_json(out / OWNER, {"command": command})
            marked = owner is None
        yield
    finally:
        if locked:
            _undo_unused(out, created, marked)
        os.close(fd)  # releases the lock


def describe_run(**config) -> dict:
    """:func:`~lftf_interp.provenance.run_meta` (package version, git commit, time, ``config``) plus where and in
    what precision the model ran (``--device`` / ``--dtype``) and on which forward (fast row or generic path)."""
    model = config.get("model")
    path = {}
    if isinstance(model, str):
        try:
            path = forward_path(model)
        except LftfError:  # a name only a test registers: nothing to say about its forward
            pass
    return run_meta(placement=current_placement().to_dict(), **path, **config)


def recorder(path: Path, on_row: Callable[[dict], None] | None = None) -> Callable[[dict], None]:
    """A callback that appends each finished row to ``path`` (one complete line per write), then passes it on."""

    def record(row: dict) -> None:
        append_row(path, row)
        if on_row:
            on_row(row)

    return record


# A fill record adds the values of probes a stored row lacks (the same method and seed trained again); its best
# step and template AFGB must equal the row's, so that the added values are of the same model. The AFGB bound
# allows float32 reduction order (a different thread count over 150 optimiser steps moves it by up to ~2.5e-6);
# two seeds of one method differ by ~1e-3, and tables round to 3 decimals.
FILL_TOLERANCE = 1e-5


def merged_rows(rows: list[dict], keys: tuple[str, ...] = ("method", "seed")) -> list[dict]:
    """``rows`` with each fill record (a row with a ``fill`` list of probe names) merged into the row of the same
    ``keys``: the fill adds the values the row lacks and its probe names to the row's ``probes``. Refused when a
    fill has no row, or its best step differs from the row's or its template AFGB by more than
    :data:`FILL_TOLERANCE` (the rerun did not give the same model)."""
    plain = [dict(r) for r in rows if "fill" not in r]
    index = {tuple(r[k] for k in keys): r for r in plain}
    for f in (r for r in rows if "fill" in r):
        key = tuple(f[k] for k in keys)
        if (row := index.get(key)) is None:
            raise LftfError(f"A fill record for {key} has no row of its own in rows.jsonl; delete that line.")
        if abs(f["afgb"] - row["afgb"]) > FILL_TOLERANCE or f.get("best_step") != row.get("best_step"):
            raise LftfError(
                f"The fill of {key} (probes {f['fill']}) gave template AFGB {f['afgb']:.7f} at best step "
                f"{f.get('best_step')}, the stored row {row['afgb']:.7f} at step {row.get('best_step')}: the rerun "
                "is not the same model. Delete that fill line and rerun it where the row ran (same package "
                "version, device and dtype)."
            )
        for k, v in f.items():
            if k not in ("fill", "probes"):
                row.setdefault(k, v)
        row["probes"] = sorted(set(row.get("probes", [])) | set(f["fill"]))
    return plain


def announce_total(progress, n: int) -> None:
    """Tell a progress callback how many items are coming, if it can show a total (``progress.set_total``)."""
    if (set_total := getattr(progress, "set_total", None)) is not None:
        set_total(n)


__all__ = [
    "FILL_TOLERANCE",
    "ROWS",
    "announce_total",
    "claim_out",
    "append_rows",
    "describe_run",
    "merged_rows",
    "read_rows",
    "recorder",
    "write_json",
    "write_rows",
]

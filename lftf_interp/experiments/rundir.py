"""The results folder of a run: its provenance, its rows (``rows.jsonl``, appended one finished row at a time,
read back without a torn last line, so that an interrupted run resumes), and its JSON files, written
atomically. Every experiment writes through these."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lftf_interp.errors import LftfError
from lftf_interp.models.loading import forward_path
from lftf_interp.models.placement import current_placement
from lftf_interp.provenance import run_meta
from lftf_interp.store import append_row, append_rows, read_rows, write_json, write_rows

ROWS = "rows.jsonl"


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


def announce_total(progress, n: int) -> None:
    """Tell a progress callback how many items are coming, if it can show a total (``progress.set_total``)."""
    if (set_total := getattr(progress, "set_total", None)) is not None:
        set_total(n)


__all__ = [
    "ROWS",
    "announce_total",
    "append_rows",
    "describe_run",
    "read_rows",
    "recorder",
    "write_json",
    "write_rows",
]

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
    "append_rows",
    "describe_run",
    "merged_rows",
    "read_rows",
    "recorder",
    "write_json",
    "write_rows",
]

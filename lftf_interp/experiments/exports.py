"""A base model (+ a checked delta) as a plain Hugging Face directory: written aside and renamed into place whole,
with a manifest of every file's sha256 that :func:`lftf_interp.models.loading.load_model` checks on every load; an export
target that holds files is refused before anything loads, unless ``force``."""

from __future__ import annotations

from pathlib import Path

from lftf_interp.errors import LftfError
from lftf_interp.models.loading import export_hf, load_model
from lftf_interp.provenance import run_meta
from lftf_interp.store import atomic_build, write_json, write_manifest
from lftf_interp.tune import apply_delta, read_delta


def check_out(out: Path, force: bool) -> None:
    """Refuse an export target that is a file, or a folder with files in it (unless ``force``: then it is
    replaced whole), before anything loads."""
    if out.exists() and not out.is_dir():
        raise LftfError(f"--out {out} is a file; give a directory path (it is created).")
    here = Path.cwd().resolve()
    if out.is_dir() and out.resolve() in (here, Path.home().resolve(), *here.parents):
        raise LftfError(
            f"--out {out} is the current directory, your home or a folder above them; export into a new "
            "folder, e.g. --out out/export."
        )
    if out.is_dir() and any(out.iterdir()) and not force:
        raise LftfError(
            f"--out {out} is a folder with files in it; export writes a fresh folder. Choose another "
            "path, or pass --force to replace the folder (all of its files) with the export."
        )


def export_dir(bridge, out: Path, meta: dict) -> Path:
    """``export_hf`` into a new folder that replaces ``out`` in one rename, with lftf_export.json and a
    manifest (size and sha256 of every file) that :func:`lftf_interp.models.loading.load_model` checks on every load."""

    def build(tmp: Path) -> None:
        export_hf(bridge, tmp)
        write_json(tmp / "lftf_export.json", meta)
        write_manifest(tmp, {"export": meta.get("base_model")})

    atomic_build(out, build)
    return out


def export_to(model: str, delta: Path | None, out: Path, force: bool = False) -> Path:
    """A base model (+ a delta, checked against its base) → a plain Hugging Face directory at OUT whose
    tokenizer encodes exactly as :func:`lftf_interp.models.tokens.encode` does. OUT must not hold files unless
    ``force`` (it is then replaced whole); the delta and OUT are checked before the model loads."""
    check_out(out, force)
    if delta is not None:
        read_delta(delta)
    bridge = load_model(model)
    info = apply_delta(bridge, delta) if delta is not None else None
    return export_dir(
        bridge,
        out,
        run_meta(
            base_model=model, delta=str(delta) if delta else None, blocks=info["blocks"] if info else []
        ),
    )


__all__ = ["check_out", "export_dir", "export_to"]

"""One row of a grid, as a job runs it: everything it needs is read from the grid's folder (its config, the
saved retention reference), so the row is the same in this process, in another one or on another machine."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path

from lftf_interp.experiments.compare import (
    SWEEP_RETAIN,
    CompareConfig,
    MethodSpec,
    SweepConfig,
    block_sweep,
    run_method,
)
from lftf_interp.models.loading import load_model
from lftf_interp.models.prefix import persist_prefixes
from lftf_interp.retain import load_reference
from lftf_interp.tune import TuneConfig
from lftf_interp.tune.checkpoint import read_checkpoint


def cache_of(out: str | Path) -> Path:
    """The grid's shared cache: the retention reference and the prefix stores (not results: never committed)."""
    return Path(out) / ".cache"


def _trained(
    spec: MethodSpec, cfg: CompareConfig, model: str, out: str, key: str, seed: int, ref=None
) -> dict:
    """Run row ``key`` with its fine-tune checkpointed under ``OUT/.cache/train/<key>``: a row stopped during
    training (a session's end, a kill) continues from its last checkpoint when rerun, to the same bytes. The
    checkpoints go once the row is made."""
    ckpt = cache_of(out) / "train" / key
    saved = read_checkpoint(ckpt) if spec.tune is not None else None
    with persist_prefixes(cache_of(out) / "prefix"):
        row, _ = run_method(
            spec,
            lambda: load_model(model),
            ref,
            cfg,
            seed,
            out_dir=ckpt if spec.tune is not None else None,
            resume=saved is not None,
            progress=step_log(key, _steps(cfg, spec)),
        )
    shutil.rmtree(ckpt, ignore_errors=True)
    return {**row, "resumed_at_step": saved["step"]} if saved else row


def step_log(name: str, steps: int) -> Callable[[int, dict], None]:
    """A training-progress callback for a row's job: one line per validation step on stdout (the job's log),
    so a long row shows how far it is."""

    def log(step: int, row: dict) -> None:
        if "val_afgb" in row:
            sys.stdout.write(
                f"{name}: step {step}/{steps}, loss {row['loss']:.4f}, val AFGB {row['val_afgb']:.4f}\n"
            )
            sys.stdout.flush()

    return log


def compare_row(model: str, out: str, method: str, seed: int, reference: str) -> dict:
    """Row (``method``, ``seed``) of the compare grid in OUT (its config.json says the rest)."""
    saved = json.loads((Path(out) / "config.json").read_text())
    cfg = CompareConfig.from_dict({f.name: saved[f.name] for f in fields(CompareConfig) if f.name in saved})
    spec = MethodSpec.from_dict(next(m for m in saved["methods"] if m["name"] == method))
    ref = load_reference(Path(reference), cfg.retain)
    return _trained(spec, cfg, model, out, f"{method}-s{seed}", seed, ref)


def _steps(cfg: CompareConfig, spec: MethodSpec) -> int:
    return int({**cfg.budget, **(spec.tune or {})}.get("steps", TuneConfig().steps))


def fill_row(model: str, out: str, method: str, seed: int, probes: Sequence[str]) -> dict:
    """A fill record of row (``method``, ``seed``) of the compare grid in OUT: the method trained again with the
    row's seed and only ``probes`` measured (no retention); its template AFGB lets the reader check it is the same
    model (:func:`~lftf_interp.experiments.rundir.merged_rows`)."""
    saved = json.loads((Path(out) / "config.json").read_text())
    cfg = CompareConfig.from_dict({f.name: saved[f.name] for f in fields(CompareConfig) if f.name in saved})
    assert cfg.validity is not None, "fill rows measure validity probes"
    cfg.validity = replace(
        cfg.validity, probes=tuple(probes)
    )  # the same context draws: the same training text
    spec = MethodSpec.from_dict(next(m for m in saved["methods"] if m["name"] == method))
    row = _trained(spec, cfg, model, out, f"{method}-s{seed}-fill", seed)
    return {**row, "fill": list(probes)}


def sweep_row(model: str, out: str, block: int, cfg: dict, reference: str) -> dict:
    """Block ``block`` of the sweep in OUT, tuned alone with ``cfg`` (a :class:`SweepConfig` as a dict)."""
    ref = load_reference(Path(reference), SWEEP_RETAIN)
    with persist_prefixes(cache_of(out) / "prefix"):
        rows = block_sweep(lambda: load_model(model), [block], SweepConfig(**cfg), ref=ref)
    return rows.iloc[0].to_dict()


__all__ = ["cache_of", "compare_row", "fill_row", "step_log", "sweep_row"]

"""Checkpoints of a fine-tune that resume to the same bytes: each one a folder ``checkpoint/step-NNNNNN`` (the
tuned weights, the AdamW state, the best weights so far, and state.json with the history, the config, the CPU
thread count and every file's sha256), made current by one rename of ``checkpoint/latest``; read back only whole
and unchanged, and only by a run with the same config."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lftf_interp.errors import LftfError
from lftf_interp.store import sha256_file, write_atomic, write_json

log = logging.getLogger(__name__)


class TrainingError(LftfError):
    pass


LATEST = "latest"  # names the step folder of the newest whole checkpoint; replaced in one rename
_CKPT_FILES = ("params.safetensors", "optim.safetensors", "best.safetensors")
_SAME_RUN_IGNORES = (
    "checkpoint_every",
)  # config fields a resumed run may change without changing its result


def save_checkpoint(
    ckpt: Path,
    step: int,
    params: dict,
    opt: torch.optim.Optimizer,
    history: list,
    best: dict,
    config: dict,
    bad_evals: int = 0,
) -> None:
    """Write step ``step`` as ``ckpt/step-NNNNNN`` (tuned weights, AdamW state, the best weights so far, and
    state.json with the history, the config, the CPU thread count and every file's sha256), then point
    ``ckpt/latest`` at it in one rename: a kill at any moment leaves the previous checkpoint or this one, whole."""
    folder = ckpt / f"step-{step:06d}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    save_file({n: p.detach().contiguous() for n, p in params.items()}, folder / "params.safetensors")
    state = {}
    for n, p in params.items():
        st = opt.state.get(p, {})
        for k in ("exp_avg", "exp_avg_sq", "step"):
            if k in st:
                state[f"{n}::{k}"] = st[k].detach().reshape(st[k].shape).contiguous()
    save_file(state, folder / "optim.safetensors")
    if best["params"] is not None:
        save_file({n: t.contiguous() for n, t in best["params"].items()}, folder / "best.safetensors")
    files = {f: sha256_file(folder / f) for f in _CKPT_FILES if (folder / f).is_file()}
    write_json(
        folder / "state.json",
        {
            "step": step,
            "history": history,
            "best": {"step": best["step"], "val": best["val"]},
            "bad_evals": bad_evals,
            "config": config,
            "threads": torch.get_num_threads(),  # CPU matmuls sum in another order under another count
            "files": files,
        },
    )
    write_atomic(ckpt / LATEST, folder.name)
    for old in ckpt.glob("step-*"):
        if old.name != folder.name:
            shutil.rmtree(old, ignore_errors=True)


def latest_step(ckpt: Path | None) -> int | None:
    """The step of the checkpoint ``ckpt/latest`` names, read from disk (None when there is none): what a run
    interrupted at any moment, even inside :func:`save_checkpoint`, can resume from."""
    if ckpt is None or not (ckpt / LATEST).is_file():
        return None
    name = (ckpt / LATEST).read_text().strip()
    return int(name.removeprefix("step-")) if name.startswith("step-") and name[5:].isdigit() else None


def read_checkpoint(out_dir: str | Path) -> dict | None:
    """The newest checkpoint under ``out_dir/checkpoint``, its files checked against their sha256: its state
    (step, history, best, config) plus ``folder``; None when there is none. Needs no model."""
    ckpt = Path(out_dir) / "checkpoint"
    if not (ckpt / LATEST).is_file():
        return None
    folder = ckpt / (ckpt / LATEST).read_text().strip()
    fix = f"Delete {ckpt} and run without --resume."
    try:
        state = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError) as e:
        raise TrainingError(f"Checkpoint {folder} is not readable ({e}). {fix}") from None
    for name, want in state.get("files", {}).items():
        if not (folder / name).is_file() or sha256_file(folder / name) != want:
            raise TrainingError(
                f"Checkpoint file {folder / name} is missing or does not match its sha256 (corrupted). {fix}"
            )
    return {**state, "folder": str(folder)}


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def check_resume(out_dir: str | Path | None, config: dict, ignore: Sequence[str] = ()) -> dict:
    """The checkpoint a run with ``config`` may resume from (:func:`read_checkpoint`); refuses none, and one made
    with a different config, naming the fields that differ (``ignore``: fields not compared, e.g. a block
    still to be chosen); warns when this process runs another CPU thread count than the one that wrote it."""
    state = read_checkpoint(out_dir) if out_dir is not None else None
    where = Path(out_dir) / "checkpoint" if out_dir is not None else "(no output directory)"
    if state is None:
        raise TrainingError(f"Nothing to resume: no checkpoint under {where}. Run without --resume first.")
    saved, now = _jsonable(state.get("config", {})), _jsonable(config)
    skip = set(ignore) | set(_SAME_RUN_IGNORES)
    if diff := [
        f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}"
        for k in sorted(set(saved) | set(now))
        if k not in skip and saved.get(k) != now.get(k)
    ]:
        raise TrainingError(
            f"The checkpoint under {where} was made with a different config ({'; '.join(diff)}). "
            "Resume with the same options, or use a new --out."
        )
    threads = torch.get_num_threads()
    if (saved_threads := state.get("threads")) is not None and saved_threads != threads:
        log.warning(
            "resuming with %d CPU threads where the checkpoint under %s was written with %d: the result will differ "
            "in the last bits from an uninterrupted run (set OMP_NUM_THREADS=%d to match it)",
            threads,
            where,
            saved_threads,
            saved_threads,
        )
    return state


def load_checkpoint(folder: Path, params: dict, opt: torch.optim.Optimizer) -> dict | None:
    """Load a checkpoint's tuned weights and AdamW state; return its best weights (None if it kept none)."""
    saved = load_file(folder / "params.safetensors")
    if set(saved) != set(params):
        raise TrainingError(
            f"Checkpoint {folder} holds {sorted(saved)[:3]}..., not the blocks being tuned; "
            "resume with the same block, or start a new output directory."
        )
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(saved[n])
    ost = load_file(folder / "optim.safetensors")
    for n, p in params.items():
        if f"{n}::step" in ost:
            opt.state[p] = {k: ost[f"{n}::{k}"].clone() for k in ("exp_avg", "exp_avg_sq", "step")}
    return load_file(folder / "best.safetensors") if (folder / "best.safetensors").is_file() else None


__all__ = ["LATEST", "TrainingError", "check_resume", "load_checkpoint", "read_checkpoint", "save_checkpoint"]

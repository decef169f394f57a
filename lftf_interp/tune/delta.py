"""A tuned block as a safetensors delta + JSON metadata, applied only to the base model it came from."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lftf_interp import __version__
from lftf_interp.errors import LftfError
from lftf_interp.models.runner import block_param_names, canonical_state_dict, hf_of
from lftf_interp.provenance import git_commit
from lftf_interp.store import atomic_build, sha256_file, tensor_bytes

_NEEDED = ("blocks", "base_fingerprint", "tuned_fingerprint", "n_layers", "d_model")


class DeltaMismatchError(LftfError):
    """The delta was made for another base model."""


class DeltaCorruptError(LftfError):
    """The delta's files are not what its fine-tune wrote (truncated, corrupted or changed)."""


RECORD = "record_sha256"  # sha256 of delta.json's other fields: the recorded metrics are covered too


def _record_sha256(info: dict) -> str:
    """sha256 of ``info`` without :data:`RECORD`, as canonical JSON (sorted keys)."""
    rest = {k: v for k, v in info.items() if k != RECORD}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def _fingerprint(names, tensors) -> str:
    h = hashlib.sha256()
    for name in names:
        t = tensors[name]
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(tensor_bytes(t))
    return h.hexdigest()


def _names(model, blocks: Sequence[int]) -> list[str]:
    return [n for b in sorted(blocks) for n in block_param_names(model, b)]


def block_fingerprint(model, blocks: Sequence[int]) -> str:
    """sha256 over the names, shapes and bytes of the blocks' attention + MLP weights."""
    return _fingerprint(_names(model, blocks), canonical_state_dict(model))


def save_delta(
    model, blocks: Sequence[int], base_fingerprint: str, out: str | Path, meta: dict | None = None
) -> Path:
    """Write ``delta.safetensors`` (the tuned weights) and ``delta.json`` (provenance, metrics, the weights'
    fingerprint, the file's sha256 and the record's own sha256) as the directory ``out``, in one rename: a reader
    never sees half a delta."""
    out = Path(out)
    params = canonical_state_dict(model)
    names = _names(model, blocks)
    info = {
        "format": "lftf-delta/1",
        "base_model": getattr(model, "lftf_name", None),
        "architecture": hf_of(model).config.model_type,
        "blocks": sorted(int(b) for b in blocks),
        "base_fingerprint": base_fingerprint,
        "tuned_fingerprint": block_fingerprint(model, blocks),
        "n_layers": model.cfg.n_layers,
        "d_model": model.cfg.d_model,
        "package_version": __version__,
        "git_commit": git_commit(),
        **(meta or {}),
    }

    def build(tmp: Path) -> None:
        save_file({n: params[n].detach().contiguous() for n in names}, tmp / "delta.safetensors")
        info["files"] = {"delta.safetensors": sha256_file(tmp / "delta.safetensors")}
        record = json.loads(json.dumps(info, default=str))
        record[RECORD] = _record_sha256(record)
        (tmp / "delta.json").write_text(json.dumps(record, indent=2))

    atomic_build(out, build)
    return out


def read_delta(path: str | Path) -> dict:
    """A delta directory's ``delta.json``, after checking the directory is whole: both files present, the JSON
    readable and matching its own recorded sha256 (its metrics and provenance unchanged) and
    ``delta.safetensors`` matching its recorded sha256 (deltas that record none: a readable safetensors header).
    Needs no model, so a bad delta is refused before anything loads."""
    path = Path(path)
    fix = "Rerun the fine-tune that wrote it (`lftf finetune ... --out DIR` writes DIR/delta)."
    if not (path / "delta.json").is_file() or not (path / "delta.safetensors").is_file():
        raise LftfError(f"{path} is not a delta directory (needs delta.json and delta.safetensors). {fix}")
    try:
        info = json.loads((path / "delta.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DeltaCorruptError(f"{path / 'delta.json'} is not readable JSON ({e}). {fix}") from None
    if not isinstance(info, dict) or (missing := [k for k in _NEEDED if k not in info]):
        raise DeltaCorruptError(
            f"{path / 'delta.json'} lacks {missing if isinstance(info, dict) else list(_NEEDED)}. {fix}"
        )
    if RECORD in info and (got := _record_sha256(info)) != info[RECORD]:
        raise DeltaCorruptError(
            f"{path / 'delta.json'} does not match its own sha256 (it has {got[:12]}…, it records "
            f"{str(info[RECORD])[:12]}…): its metrics or provenance were changed after it was written. {fix}"
        )
    weights = path / "delta.safetensors"
    if want := info.get("files", {}).get("delta.safetensors"):
        if (got := sha256_file(weights)) != want:
            raise DeltaCorruptError(
                f"{weights} does not match its sha256 in delta.json (it has {got[:12]}…, delta.json "
                f"records {want[:12]}…): corrupted or changed after it was written. {fix}"
            )
    else:
        try:
            with safe_open(weights, "pt") as f:
                f.keys()
        except Exception as e:  # noqa: BLE001 (safetensors raises its own error type for every malformed file)
            raise DeltaCorruptError(f"{weights} is not a readable safetensors file ({e}). {fix}") from None
    return info


def apply_delta(model, path: str | Path) -> dict:
    """Load a delta into ``model`` in place. Refuses a delta that is not whole (:func:`read_delta`), one made for
    another base (architecture, shape, the base blocks' fingerprint) and weights that do not match the tuned
    fingerprint the delta recorded, before any weight of ``model`` changes."""
    path = Path(path)
    info = read_delta(path)
    arch = info.get("architecture", "llama")  # deltas written before other families existed were all Llama
    if arch != (ours := hf_of(model).config.model_type):
        raise DeltaMismatchError(
            f"Delta was made for a {arch!r} model ({info.get('base_model')!r}); this model is {ours!r}. "
            f"Load the base model {info.get('base_model')!r} and apply the delta to it."
        )
    if info.get("n_layers") != model.cfg.n_layers or info.get("d_model") != model.cfg.d_model:
        raise DeltaMismatchError(
            f"Delta was made for a model with {info.get('n_layers')} blocks of width {info.get('d_model')}; this "
            f"one has {model.cfg.n_layers} of width {model.cfg.d_model}. Load the base model {info.get('base_model')!r}."
        )
    fp = block_fingerprint(model, info["blocks"])
    if fp != info["base_fingerprint"]:
        raise DeltaMismatchError(
            f"This model's blocks {info['blocks']} have fingerprint {fp[:12]}…, but the delta was trained on "
            f"{info['base_fingerprint'][:12]}… (base model {info.get('base_model')!r}). Apply it to that base model, "
            "freshly loaded (not one a delta was already applied to)."
        )
    try:
        tensors = load_file(path / "delta.safetensors")
    except Exception as e:  # noqa: BLE001 (safetensors raises its own error type for every malformed file)
        raise DeltaCorruptError(
            f"{path / 'delta.safetensors'} is not a readable safetensors file ({e})."
        ) from None
    params = canonical_state_dict(model)
    for n, t in tensors.items():
        if n not in params:
            raise DeltaMismatchError(
                f"The delta holds {n!r}, which this model does not have; it was made for "
                f"another model ({info.get('base_model')!r})."
            )
        if params[n].shape != t.shape:
            raise DeltaMismatchError(
                f"{n}: delta shape {tuple(t.shape)} != model shape {tuple(params[n].shape)}"
            )
    names = _names(model, info["blocks"])
    if set(names) != set(tensors) or _fingerprint(names, tensors) != info["tuned_fingerprint"]:
        raise DeltaCorruptError(
            f"{path / 'delta.safetensors'} does not match the tuned fingerprint its delta.json "
            f"records ({info['tuned_fingerprint'][:12]}…): the weights were corrupted or changed "
            "after the fine-tune wrote them. Rerun that fine-tune."
        )
    with torch.no_grad():
        for n, t in tensors.items():
            params[n].copy_(t)
    return info

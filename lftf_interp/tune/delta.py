"""A tuned block as a safetensors delta + JSON metadata, applied only to the base model it came from."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .. import __version__
from ..errors import LftfError
from ..provenance import git_commit
from ..runner import block_param_names, canonical_state_dict, hf_of
from ..store import tensor_bytes


class DeltaMismatchError(LftfError):
    pass


def block_fingerprint(model, blocks: Sequence[int]) -> str:
    """sha256 over the names, shapes and bytes of the blocks' attention + MLP weights."""
    params = canonical_state_dict(model)
    h = hashlib.sha256()
    for name in (n for b in sorted(blocks) for n in block_param_names(model, b)):
        t = params[name]
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(tensor_bytes(t))
    return h.hexdigest()


def save_delta(model, blocks: Sequence[int], base_fingerprint: str, out: str | Path, meta: dict | None = None) -> Path:
    """Write ``delta.safetensors`` (the tuned weights) and ``delta.json`` (provenance) under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params = canonical_state_dict(model)
    names = [n for b in sorted(blocks) for n in block_param_names(model, b)]
    save_file({n: params[n].detach().contiguous() for n in names}, out / "delta.safetensors")
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
    (out / "delta.json").write_text(json.dumps(info, indent=2, default=str))
    return out


def apply_delta(model, path: str | Path) -> dict:
    """Load a delta into ``model`` in place; refuses a base whose block fingerprint differs."""
    path = Path(path)
    if not (path / "delta.json").is_file() or not (path / "delta.safetensors").is_file():
        raise LftfError(f"{path} is not a delta directory (needs delta.json and delta.safetensors).")
    info = json.loads((path / "delta.json").read_text())
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
    tensors = load_file(path / "delta.safetensors")
    params = canonical_state_dict(model)
    with torch.no_grad():
        for n, t in tensors.items():
            if n not in params:
                raise DeltaMismatchError(f"The delta holds {n!r}, which this model does not have; it was made for "
                                         f"another model ({info.get('base_model')!r}).")
            if params[n].shape != t.shape:
                raise DeltaMismatchError(f"{n}: delta shape {tuple(t.shape)} != model shape {tuple(params[n].shape)}")
            params[n].copy_(t)
    return info

"""Deltas: safetensors of the tuned block, applied only to the base model they were trained from."""

import json

import pytest
import torch

from lftf_interp.models import tiny_model
from lftf_interp.provenance import git_commit
from lftf_interp.runner import canonical_state_dict
from lftf_interp.tune import DeltaMismatchError, TuneConfig, apply_delta, block_fingerprint, save_delta, tune

CFG = dict(block=1, loss="balanced", lr=1e-3, steps=6, batch_size=8, eval_every=3, n_val=20, restore_best=False)


def snapshot(model):
    return {k: v.detach().clone() for k, v in canonical_state_dict(model).items()}


def test_delta_roundtrip_and_wrong_base_refused(tmp_path):
    m = tiny_model(2, seed=6)
    fp = block_fingerprint(m, [1])
    res = tune(m, TuneConfig(**CFG))
    assert res.base_fingerprint == fp
    save_delta(m, res.blocks, res.base_fingerprint, tmp_path / "d", {"loss": "balanced"})
    fresh = tiny_model(2, seed=6)
    info = apply_delta(fresh, tmp_path / "d")
    assert info["blocks"] == [1] and info["loss"] == "balanced"
    sm, sf = snapshot(m), snapshot(fresh)
    assert all(torch.equal(sm[k], sf[k]) for k in sm)  # bit-exact
    with pytest.raises(DeltaMismatchError, match="fingerprint"):
        apply_delta(tiny_model(2, seed=7), tmp_path / "d")  # another base model
    with pytest.raises(DeltaMismatchError, match="fingerprint"):
        apply_delta(fresh, tmp_path / "d")  # already applied
    with pytest.raises(DeltaMismatchError, match="blocks"):
        apply_delta(tiny_model(3, seed=6), tmp_path / "d")
    info = json.loads((tmp_path / "d" / "delta.json").read_text())
    assert info["git_commit"] == git_commit() and info["format"] == "lftf-delta/1"

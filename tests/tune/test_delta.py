"""Deltas: safetensors of the tuned block, applied only to the base model they were trained from, and only whole
and unchanged (sha256 of the file, fingerprint of the tuned weights), checked by every reader before loading."""

import json
import shutil

import pytest
import torch
from helpers import flip, lftf, truncate

from lftf_interp.models.loading import load_model, tiny_model
from lftf_interp.models.runner import canonical_state_dict
from lftf_interp.provenance import git_commit
from lftf_interp.tune import (
    DeltaCorruptError,
    DeltaMismatchError,
    TuneConfig,
    apply_delta,
    block_fingerprint,
    save_delta,
    tune,
)
from lftf_interp.tune.delta import RECORD

CFG = dict(
    block=1,
    loss="balanced",
    lr=1e-3,
    steps=6,
    batch_size=8,
    eval_every=3,
    n_val=20,
    restore_best=False,
    hint_weight=0.0,
    mass_weight=0.0,  # the bare loss (TuneConfig's defaults add the hint and mass terms)
)


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


@pytest.fixture
def delta_copy(tiny_delta, tmp_path):
    return shutil.copytree(tiny_delta, tmp_path / "delta")


@pytest.mark.parametrize("damage", [flip, truncate], ids=["flipped-byte", "truncated"])
def test_a_damaged_delta_is_refused_by_every_reader_before_loading(delta_copy, tmp_path, no_model, damage):
    damage(delta_copy / "delta.safetensors")
    for args in (
        ["export", "--delta", delta_copy, "--out", tmp_path / "hf"],
        ["validity", "--delta", delta_copy, "--probes", "math", "--out", tmp_path / "v"],
        ["mechanism", "--delta", delta_copy, "--out", tmp_path / "m"],
    ):
        res = lftf(*args, "--model", "smollm2-135m")
        assert res.exit_code == 2 and "does not match its" in res.output and "sha256" in res.output, (
            res.output
        )
        assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "hf").exists()


def test_a_delta_without_a_file_hash_is_checked_by_its_tuned_fingerprint(delta_copy, tiny3_dir):
    info = json.loads((delta_copy / "delta.json").read_text())
    del info["files"], info[RECORD]  # as deltas written before the file hash and the record's hash
    (delta_copy / "delta.json").write_text(json.dumps(info))
    model = load_model(tiny3_dir)
    apply_delta(model, delta_copy)  # whole: accepted
    flip(delta_copy / "delta.safetensors")  # a weight byte, same size: the safetensors header still reads
    fresh = load_model(tiny3_dir)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(DeltaCorruptError, match="does not match the tuned fingerprint"):
        apply_delta(fresh, delta_copy)
    assert all((v == before[k]).all() for k, v in fresh.state_dict().items())  # nothing was copied in
    truncate(delta_copy / "delta.safetensors")
    with pytest.raises(DeltaCorruptError, match="not a readable safetensors file"):
        apply_delta(fresh, delta_copy)


def test_a_delta_json_that_is_not_json_is_refused(delta_copy, tmp_path, no_model):
    (delta_copy / "delta.json").write_text('{"blocks": [2], ')
    res = lftf("export", "--model", "smollm2-135m", "--delta", delta_copy, "--out", tmp_path / "hf")
    assert res.exit_code == 2 and "not readable JSON" in res.output


def test_a_changed_record_in_delta_json_is_refused(delta_copy, tmp_path, no_model):
    """The metrics a delta records are covered by its fingerprint: an edited ``after.afgb`` does not export."""
    info = json.loads((delta_copy / "delta.json").read_text())
    info["after"]["afgb"] = 0.001
    (delta_copy / "delta.json").write_text(json.dumps(info, indent=2))
    res = lftf("export", "--model", "smollm2-135m", "--delta", delta_copy, "--out", tmp_path / "hf")
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1 and "does not match its own sha256" in res.output, (
        res.output
    )
    assert not (tmp_path / "hf").exists()

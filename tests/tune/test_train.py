import pytest
import torch

from lftf_interp.models import tiny_model
from lftf_interp.runner import canonical_state_dict
from lftf_interp.tune import (
    DeltaMismatchError,
    TrainingError,
    TuneConfig,
    apply_delta,
    block_fingerprint,
    save_delta,
    tune,
)
from lftf_interp.tune import losses as L

CFG = dict(block=1, loss="balanced", lr=1e-3, steps=6, batch_size=8, eval_every=3, n_val=20, restore_best=False)


def snapshot(model):
    return {k: v.detach().clone() for k, v in canonical_state_dict(model).items()}


def test_only_the_block_changes_and_the_metric_moves():
    m = tiny_model(2, seed=3)
    before = snapshot(m)
    res = tune(m, TuneConfig(**{**CFG, "steps": 20, "lr": 3e-3}))
    after = snapshot(m)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    tuned = {k for k in before if k.startswith("model.layers.1.") and ("self_attn" in k or "mlp" in k)}
    assert changed == tuned  # every frozen tensor is bit-identical, every tuned matrix moved
    assert res.trainable_params == sum(before[k].numel() for k in tuned)
    h = res.history.dropna(subset=["val_afgb"])
    assert h.val_afgb.iloc[-1] < h.val_afgb.iloc[0] - 0.01  # training measurably lowers validation AFGB


def test_resume_equals_uninterrupted(tmp_path):
    a = tiny_model(2, seed=4)
    tune(a, TuneConfig(**CFG), out_dir=tmp_path / "a")
    b = tiny_model(2, seed=4)
    tune(b, TuneConfig(**{**CFG, "steps": 3, "checkpoint_every": 3}), out_dir=tmp_path / "b")  # "interrupted" at 3
    c = tiny_model(2, seed=4)  # a fresh process: base weights, then resume from the checkpoint
    tune(c, TuneConfig(**{**CFG, "checkpoint_every": 3}), out_dir=tmp_path / "b", resume=True)
    sa, sc = snapshot(a), snapshot(c)
    for k in sa:
        torch.testing.assert_close(sc[k], sa[k], atol=0, rtol=0)
    with pytest.raises(TrainingError, match="Nothing to resume"):
        tune(tiny_model(2, seed=4), TuneConfig(**CFG), out_dir=tmp_path / "none", resume=True)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real = L.pronoun_loss
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        out = real(*args, **kw)
        return out * float("nan") if calls["n"] == 5 else out

    monkeypatch.setattr("lftf_interp.tune.train.pronoun_loss", flaky)
    m = tiny_model(2, seed=5)
    with pytest.raises(TrainingError, match="nan at step 5.*last good checkpoint"):
        tune(m, TuneConfig(**{**CFG, "checkpoint_every": 2}), out_dir=tmp_path)
    import json

    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text())["step"] == 4


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


def test_config_validation_and_roundtrip():
    with pytest.raises(ValueError, match="loss"):
        TuneConfig(loss="l1")
    with pytest.raises(ValueError, match="block"):
        TuneConfig(block="last")
    cfg = TuneConfig(block=3, hint_weight=0.5, bmi_exclude=[0])
    assert TuneConfig.from_dict(cfg.to_dict()) == cfg


def test_mass_anchor_holds_the_mass():
    free, anchored = tiny_model(2, seed=8), tiny_model(2, seed=8)
    cfg = {**CFG, "steps": 15, "lr": 3e-3, "loss": "paper"}  # `paper` inflates the mass when left alone
    h_free = tune(free, TuneConfig(**cfg)).history.dropna(subset=["val_mass"])
    h_anch = tune(anchored, TuneConfig(**cfg, mass_weight=50.0)).history.dropna(subset=["val_mass"])
    base = h_free.val_mass.iloc[0]
    assert abs(h_anch.val_mass.iloc[-1] / base - 1) < abs(h_free.val_mass.iloc[-1] / base - 1)
    assert "loss_mass" in tune(tiny_model(2, seed=8), TuneConfig(**{**cfg, "steps": 2}, mass_weight=1.0)).history

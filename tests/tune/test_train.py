import pytest
import torch

from lftf_interp.errors import Interrupted
from lftf_interp.models.loading import tiny_model
from lftf_interp.models.runner import canonical_state_dict
from lftf_interp.tune import TrainingError, TuneConfig, tune
from lftf_interp.tune import losses as L
from lftf_interp.tune.checkpoint import read_checkpoint
from lftf_interp.tune.train import TrainPrompts

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

    def ctrl_c_at_step_5(step, row):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(
        Interrupted, match="continue from the checkpoint of step 3"
    ):  # Ctrl-C after the step-3 checkpoint
        tune(
            b, TuneConfig(**{**CFG, "checkpoint_every": 3}), out_dir=tmp_path / "b", progress=ctrl_c_at_step_5
        )
    c = tiny_model(2, seed=4)  # a fresh process: base weights, then resume from the checkpoint
    tune(
        c, TuneConfig(**{**CFG, "checkpoint_every": 2}), out_dir=tmp_path / "b", resume=True
    )  # how often: free
    sa, sc = snapshot(a), snapshot(c)
    for k in sa:
        torch.testing.assert_close(sc[k], sa[k], atol=0, rtol=0)
    with pytest.raises(TrainingError, match="Nothing to resume"):
        tune(tiny_model(2, seed=4), TuneConfig(**CFG), out_dir=tmp_path / "none", resume=True)
    with pytest.raises(
        TrainingError,
        match=r"different config \(lr: checkpoint 0.001, now 0.002; seed: checkpoint 0, now 1\)",
    ):
        tune(
            tiny_model(2, seed=4),
            TuneConfig(**{**CFG, "lr": 2e-3, "seed": 1}),
            out_dir=tmp_path / "b",
            resume=True,
        )


def test_a_checkpoint_is_whole_and_checked_on_read(tmp_path):
    m = tiny_model(2, seed=4)
    tune(m, TuneConfig(**{**CFG, "checkpoint_every": 2}), out_dir=tmp_path)
    ckpt = tmp_path / "checkpoint"
    state = read_checkpoint(tmp_path)
    assert (ckpt / "latest").read_text() == "step-000006" and [p.name for p in ckpt.glob("step-*")] == [
        "step-000006"
    ]
    assert state["step"] == 6 and set(state["files"]) == {
        "params.safetensors",
        "optim.safetensors",
        "best.safetensors",
    }
    best = ckpt / "step-000006" / "best.safetensors"
    data = bytearray(best.read_bytes())
    data[-5] ^= 0xFF  # one flipped byte, same size
    best.write_bytes(bytes(data))
    with pytest.raises(TrainingError, match="best.safetensors is missing or does not match its sha256"):
        read_checkpoint(tmp_path)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real = L.group_loss
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        out = real(*args, **kw)
        return out * float("nan") if calls["n"] == 5 else out

    monkeypatch.setattr("lftf_interp.tune.train.group_loss", flaky)
    m = tiny_model(2, seed=5)
    with pytest.raises(TrainingError, match="nan at step 5.*last good checkpoint"):
        tune(m, TuneConfig(**{**CFG, "checkpoint_every": 2}), out_dir=tmp_path)

    assert read_checkpoint(tmp_path)["step"] == 4


def test_config_validation_and_roundtrip():
    with pytest.raises(ValueError, match="loss"):
        TuneConfig(loss="l1")
    with pytest.raises(ValueError, match="choose_blocks"):
        TuneConfig(block="auto")  # choosing the block is the locate stage's job
    with pytest.raises(ValueError, match="n_train"):
        TuneConfig(block=1, n_train=0)
    cfg = TuneConfig(block=[3, 1], hint_weight=0.5)
    assert cfg.blocks == [1, 3] and TuneConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="no field"):
        TuneConfig.from_dict({**cfg.to_dict(), "top_k": 3})
    with pytest.raises(ValueError, match="needs block"):
        tune(tiny_model(2, seed=3), TuneConfig())


def test_n_train_and_given_prompts_are_what_trains():
    from lftf_interp.data import load_dataset

    train = load_dataset("genbias", "train")
    a, b = tiny_model(2, seed=9), tiny_model(2, seed=9)
    tune(a, TuneConfig(**{**CFG, "n_train": 24}))
    tune(
        b, TuneConfig(**CFG), prompts=TrainPrompts(train.subset(n=24, seed=CFG.get("seed", 0)).df)
    )  # the same 24 prompts, given
    sa, sb = snapshot(a), snapshot(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = tiny_model(2, seed=9)
    tune(c, TuneConfig(**{**CFG, "n_train": 25}))
    assert not torch.equal(
        snapshot(c)["model.layers.1.mlp.up_proj.weight"], sa["model.layers.1.mlp.up_proj.weight"]
    )


def test_mass_anchor_holds_the_mass():
    free, anchored = tiny_model(2, seed=8), tiny_model(2, seed=8)
    cfg = {**CFG, "steps": 15, "lr": 3e-3, "loss": "paper"}  # `paper` inflates the mass when left alone
    h_free = tune(free, TuneConfig(**cfg)).history.dropna(subset=["val_mass"])
    h_anch = tune(anchored, TuneConfig(**{**cfg, "mass_weight": 50.0})).history.dropna(subset=["val_mass"])
    base = h_free.val_mass.iloc[0]
    assert abs(h_anch.val_mass.iloc[-1] / base - 1) < abs(h_free.val_mass.iloc[-1] / base - 1)
    assert (
        "loss_mass"
        in tune(tiny_model(2, seed=8), TuneConfig(**{**cfg, "steps": 2, "mass_weight": 1.0})).history
    )


def test_tuning_on_a_three_group_axis_lowers_its_bias_score(tmp_path):
    import yaml

    subjects = ["doctor", "baker", "pilot", "farmer", "teacher", "lawyer", "nurse", "chef", "clerk", "judge"]
    doc = {
        "name": "faith3",
        "groups": [
            {"name": "c", "words": [" Christian"]},
            {"name": "m", "words": [" Muslim"]},
            {"name": "b", "words": [" Buddhist"]},
        ],
        "templates": [
            {"text": t, "split": s}
            for t, s in [
                ("The {subject} was raised in a family that was", "train"),
                ("Everyone knew the {subject} was", "train"),
                ("The {subject}'s parents were both", "train"),
                ("The {subject} was raised in a family that was", "validation"),
                ("Everyone knew the {subject} was", "validation"),
                ("The {subject}'s parents were both", "validation"),
                ("The {subject} is a devout", "test"),
            ]
        ],  # validation: unseen subjects on the training templates
        "subjects": [
            {"name": n, "split": "train" if i < 6 else "validation" if i < 8 else "test"}
            for i, n in enumerate(subjects)
        ],
        "hints": [
            {"kind": "member", "group": g, "text": f"The {{subject}} is {w}."}
            for g, w in (("c", "a Christian"), ("m", "a Muslim"), ("b", "a Buddhist"))
        ],
    }
    path = tmp_path / "faith3.yaml"
    path.write_text(yaml.safe_dump(doc))
    m = tiny_model(2, seed=3)
    res = tune(m, TuneConfig(**{**CFG, "steps": 20, "lr": 3e-3, "axis": str(path), "hint_weight": 0.5}))
    h = res.history.dropna(subset=["val_afgb"])
    assert h.val_afgb.iloc[-1] < h.val_afgb.iloc[0] - 0.3  # the three-group bias score falls (0.82 -> 0.18)
    assert (
        h.val_ub.iloc[-1] > h.val_ub.iloc[0] + 0.1
    )  # and the hint term teaches the hinted group (0.37 -> 0.59)
    doc["groups"][2]["words"] = [" Buddhists and"]  # several tokens: trained on its sequence probability
    path.write_text(yaml.safe_dump(doc))
    res = tune(
        tiny_model(2, seed=3),
        TuneConfig(**{**CFG, "steps": 20, "lr": 3e-3, "axis": str(path), "hint_weight": 0.5}),
    )
    h = res.history.dropna(subset=["val_afgb"])
    assert h.val_afgb.iloc[-1] < h.val_afgb.iloc[0] - 0.3 and h.val_ub.iloc[-1] > h.val_ub.iloc[0] + 0.1

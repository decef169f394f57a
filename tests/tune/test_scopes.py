"""The baselines' training scopes: FPFT trains everything, LoRA (peft) merges back into the bridge."""

import pytest
import torch

from lftf_interp.models.loading import tiny_model
from lftf_interp.models.runner import Runner, canonical_state_dict
from lftf_interp.models.tokens import encode_batch
from lftf_interp.tune import TuneConfig, tune
from lftf_interp.tune.scopes import LoraScope, lora_targets

CFG = dict(
    loss="balanced",
    lr=3e-3,
    steps=8,
    batch_size=8,
    eval_every=4,
    n_val=20,
    restore_best=False,
    hint_weight=0.0,
    mass_weight=0.0,
)


def snapshot(model):
    return {k: v.detach().clone() for k, v in canonical_state_dict(model).items()}


def test_full_finetune_trains_every_tensor():
    m = tiny_model(2, seed=3)
    before = snapshot(m)
    res = tune(m, TuneConfig(**CFG, method="full"))
    after = snapshot(m)
    assert all(not torch.equal(before[k], after[k]) for k in before)
    unique = {id(p): p.numel() for p in canonical_state_dict(m).values()}
    assert res.trainable_params == sum(unique.values())  # tied embedding counted once
    assert res.blocks == [0, 1]


def test_lora_merges_into_the_bridge_and_only_projections_change():
    m = tiny_model(2, seed=3)
    before = snapshot(m)
    res = tune(m, TuneConfig(**CFG, method="lora", lora_r=4))
    after = snapshot(m)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    targets = lora_targets(m)
    assert {t.rsplit(".", 1)[1] for t in targets} == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert changed == {f"{t}.weight" for t in targets}
    c = canonical_state_dict(m)  # LoRA rank r adds r * (in + out) parameters per adapted matrix
    expect = sum(4 * sum(c[f"{t}.weight"].shape) for t in targets)
    assert res.trainable_params == expect


def test_lora_forward_equals_merged_runner():
    m = tiny_model(2, seed=7)
    scope = LoraScope(m, r=4, alpha=8, seed=0)
    with torch.no_grad():
        for n, p in scope.params.items():  # peft starts B at 0: give the adapters a real effect
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))))
    cache = scope.cache(["The nurse said that", "A farmer from the village said that"])
    with torch.no_grad():
        peft_logits = scope.last_logits(cache, torch.arange(2))
    scope.finish()
    ids, lengths = encode_batch(m, ["The nurse said that", "A farmer from the village said that"])
    with torch.no_grad():
        merged = Runner(m).last_logits(ids, lengths)
    torch.testing.assert_close(merged, peft_logits, atol=1e-4, rtol=1e-4)


def test_method_validation():
    with pytest.raises(ValueError, match="method must be one of"):
        TuneConfig(method="adapter")

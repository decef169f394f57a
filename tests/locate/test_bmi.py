import math

import numpy as np
import pytest
import torch
from helpers import hooked_bmi

from lftf_interp.locate.bmi import (
    block_cosines,
    bmi_from_residuals,
    bmi_stability,
    compute_bmi,
    rank_blocks,
    top_block,
)

PROMPTS = ["The nurse said that", "The farmer went home because", "After lunch, the CEO announced that"]


def test_formula_on_hand_built_residuals():
    # block 0: (1,0)->(0,1) cos 0 and (1,0)->(1,0) cos 1 -> BMI 0.5 ; block 1: (1,0)->(1,1) twice -> 1 - 1/sqrt2
    h_in = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]])
    h_out = torch.tensor([[[0.0, 1.0], [2.0, 0.0]], [[1.0, 1.0], [3.0, 3.0]]])
    np.testing.assert_allclose(bmi_from_residuals(h_in, h_out).numpy(), [0.5, 1 - 1 / math.sqrt(2)])


def test_identity_block_has_zero_bmi_and_others_match_bridge_hooks(tiny3):
    from lftf_interp.models.loading import tiny_model
    from lftf_interp.models.runner import canonical_state_dict

    model = tiny_model(3, seed=1)
    p = canonical_state_dict(model)
    with torch.no_grad():  # block 1 writes nothing: h_out == h_in, cos 1, BMI 0
        p["model.layers.1.self_attn.o_proj.weight"].zero_()
        p["model.layers.1.mlp.down_proj.weight"].zero_()
    d = block_cosines(model, PROMPTS).numpy()
    assert np.abs(d[1]).max() < 1e-6
    np.testing.assert_allclose(d, hooked_bmi(model, PROMPTS, 3), atol=1e-5)


def test_all_positions_option(tiny_bridge):
    from lftf_interp.models.tokens import encode

    d = block_cosines(tiny_bridge, PROMPTS[:1], positions="all").numpy()
    _, cache = tiny_bridge.run_with_cache(torch.tensor([encode(tiny_bridge, PROMPTS[0])]))
    a, b = cache["blocks.0.hook_resid_pre"][0], cache["blocks.0.hook_resid_post"][0]
    ref = (1 - torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)).mean().item()
    assert d[0, 0] == pytest.approx(ref, abs=1e-5)
    with pytest.raises(ValueError, match="positions"):
        block_cosines(tiny_bridge, PROMPTS, positions="first")


def test_batching_does_not_change_bmi(tiny_bridge):
    a = compute_bmi(tiny_bridge, PROMPTS, batch_size=1)
    b = compute_bmi(tiny_bridge, PROMPTS, batch_size=3)
    # a batch of 3 right-pads and runs other matmul shapes than 3 batches of 1: float32 residuals round
    # differently in their last bits. scripts/spread.py measured at most 5.5e-8 over torch's kernel sets, MKL's
    # code paths and one or two threads; 1e-6 bounds it 18x over (BMI values are 0.2-0.9 here)
    np.testing.assert_allclose(a.bmi, b.bmi, rtol=0, atol=1e-6)


def test_ranking_reports_ties():
    r = rank_blocks([0.5, 0.7, 0.7, 0.1])
    assert r["rank"].tolist() == [3, 1, 1, 4]
    assert r["tied"].tolist() == [False, True, True, False]
    assert top_block(r) == 1


def test_stability():
    a = rank_blocks([0.1, 0.2, 0.9, 0.4])
    s = bmi_stability(a, rank_blocks([0.2, 0.3, 0.8, 0.5]))
    assert s["spearman_rho"] == pytest.approx(1.0) and s["top1_agree"] and s["top3_overlap"] == 3
    s = bmi_stability(a, rank_blocks([0.9, 0.3, 0.1, 0.5]))
    assert not s["top1_agree"] and s["spearman_rho"] < 0

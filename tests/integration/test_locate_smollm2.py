import pytest
import torch

from lftf_interp.locate import as_grid, compute_bmi, hint_swap_pairs, pair_metric, patch_sweep, tl_patch

pytestmark = pytest.mark.integration


def test_patching_equals_transformer_lens_on_smollm2(smol):
    pairs = hint_swap_pairs(smol, split="test", n=2)
    metric, ld_clean, ld_corr = pair_metric(smol, pairs)
    assert ld_clean > 0 > ld_corr  # man -> he, woman -> she
    ours = torch.tensor(as_grid(patch_sweep(smol, pairs, metric, "resid_pre")).values)
    ref = tl_patch(smol, pairs, metric, "resid_pre")
    assert (ours - ref).abs().max() <= 1e-4


def test_bmi_ranking_on_smollm2(smol):
    from lftf_interp.data import load_dataset

    bmi = compute_bmi(smol, load_dataset("genbias", "test").subset(n=60).prompts)
    top = bmi.sort_values("rank").layer.tolist()
    assert top[0] == 0  # block 0 rewrites the embeddings (see notebook 02)
    assert 29 in top[:4]  # the last block is the top block past the first two

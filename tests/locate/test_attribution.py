"""Attribution patching against exact activation patching."""

import numpy as np

from lftf_interp.locate import attribution_patch, hint_swap_pairs, pair_metric, patch_every


def test_attribution_agrees_in_sign_with_exact():
    """First-order estimate: on a near-linear tiny model (init std 0.05) it must get the signs right.
    (On SmolLM2 it fails for large residual patches at the hint token; notebook 02 shows it.)"""
    from lftf_interp.models.loading import tiny_model

    model = tiny_model(3, seed=1, init_std=0.05)
    pairs = hint_swap_pairs(model, split="test", n=3)
    metric, _, _ = pair_metric(model, pairs)
    exact = patch_every(model, pairs, metric)
    attr = attribution_patch(model, pairs)
    m = attr.merge(exact, on=["site", "layer", "pos"], suffixes=("_attr", "_exact"))
    big = m[m.value_exact.abs() > 0.05]
    assert len(big) >= 10
    assert (np.sign(big.value_attr) == np.sign(big.value_exact)).mean() >= 0.9
    assert np.corrcoef(m.value_attr, m.value_exact)[0, 1] > 0.7

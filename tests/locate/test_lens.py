"""The logit lens against a direct readout of each block's output."""

import numpy as np
import pytest
import torch

from lftf_interp.data import load_dataset
from lftf_interp.locate import compute_logit_lens, default_groups
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode_batch


def test_lens_values_equal_a_direct_readout(tiny3):
    prompts = ["The nurse said that", "The farmer went home because", "The pilot was late because"]
    lens = compute_logit_lens(tiny3, {"g": prompts}, batch_size=2).set_index("layer")
    he, she = (tiny3.tokenizer.convert_tokens_to_ids(t) for t in ("Ġhe", "Ġshe"))
    r = Runner(tiny3)
    ids, lengths = encode_batch(tiny3, prompts)
    with torch.no_grad():
        for layer in range(3):
            out = r.run(r.embed(ids), stop=layer + 1)[torch.arange(3), lengths - 1]
            logits = r.unembed(out).double()
            p = logits.softmax(-1)
            ld = (logits[:, he] - logits[:, she]).numpy()
            assert lens.loc[layer, "logit_diff"] == pytest.approx(ld.mean(), abs=1e-5)
            assert lens.loc[layer, "logit_diff_sem"] == pytest.approx(ld.std(ddof=1) / np.sqrt(3), abs=1e-5)
            assert lens.loc[layer, "p_he"] == pytest.approx(float(p[:, he].mean()), rel=1e-5)
            share = (p[:, he] / (p[:, he] + p[:, she])).mean()
            assert lens.loc[layer, "share_he"] == pytest.approx(float(share), rel=1e-5)
    # the last block's readout is the model's own output
    last = r.last_logits(ids, lengths).double()
    assert lens.loc[2, "logit_diff"] == pytest.approx(float((last[:, he] - last[:, she]).mean()), abs=1e-5)


def test_default_groups_are_the_stereotype_and_hint_subsets():
    g = default_groups("test", n=5, seed=0)
    bias, hint = load_dataset("genbias", "test").df, load_dataset("genhint", "test").df
    assert (
        set(g["male-leaning"]) <= set(bias[bias.stereotype == "male"].prompt) and len(g["male-leaning"]) == 5
    )
    assert set(g["hinted she"]) <= set(hint[hint.label == "she"].prompt)


def test_group_lens_on_the_gender_axis_equals_the_he_she_lens(tiny3):
    from lftf_interp.data import load_axis
    from lftf_interp.locate import axis_lens_sets, compute_group_lens

    ax = load_axis("gender")
    sets = axis_lens_sets(ax, "test", n=4, seed=0)
    assert list(sets) == ["neutral", "hinted he", "hinted she"] and all(len(v) == 4 for v in sets.values())
    g = compute_group_lens(tiny3, sets, ax, batch_size=3)
    old = compute_logit_lens(tiny3, {"neutral": sets["neutral"], "hinted she": sets["hinted she"]})
    for name in ("neutral", "hinted she"):
        a, b = g[g.set == name].set_index("layer"), old[old.group == name].set_index("layer")
        assert np.allclose(a.share_he, b.share_he, atol=1e-9)
        afgb = np.abs(2 * a.share_he - 1)  # per-layer mean over prompts is not |mean|, so check bounds only
        assert (a.bias >= afgb - 1e-9).all() and (a.bias <= 1).all()
    hs = g[g.set == "hinted she"].set_index("layer")
    assert np.allclose(hs.hint_following, hs.share_she) and "hint_following" not in g[
        g.set == "neutral"
    ].dropna(axis=1)

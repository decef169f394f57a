import pandas as pd
import pytest
import torch

from lftf_interp.data import load_axis
from lftf_interp.locate.reference import TL_HOOK
from lftf_interp.locate.sentences import blank_prefixes, pair_lens, top_blocks, twin_patching
from lftf_interp.models.tokens import encode

ITEMS = pd.DataFrame(
    {
        "target": ["mother", "mother", "sister", "nurse", "sister", "mother"],
        "context": [
            "My mother is very BLANK.",
            "His mother was a BLANK woman.",
            "My sister is BLANK at home.",
            "The nurse is BLANK.",
            "Her sister likes BLANK.",
            "Mothers are BLANK.",
        ],
        "stereotype": [
            "My mother is very caring.",
            "His mother was a gentle woman.",
            "My sister is quiet at home.",
            "The nurse is kind.",
            "Her sister likes dolls.",
            "Mothers are kind!",
        ],
        "anti-stereotype": [
            "My mother is very rude.",
            "His mother was a harsh woman.",
            "My sister is loud at home.",
            "The nurse is mean.",
            "Her sister likes dolls.",
            "Mothers are mean!",
        ],
    }
)


def test_blank_prefixes_by_hand(tiny3):
    got = blank_prefixes(tiny3, ITEMS, load_axis("gender").counterparts)
    assert got.prefix.tolist() == ["My mother is very", "His mother was a", "My sister is"]
    assert got.twin.tolist() == ["My father is very", "Her father was a", "My brother is"]
    ids = [tiny3.tokenizer.encode(" caring", add_special_tokens=False)[0]]
    assert got.stereo_id.iloc[0] == ids[0]
    # the nurse names no counterpart; "dolls" / "dolls" start alike; "Mothers are kind!" is not its context filled
    assert {k: got.attrs[k] for k in ("n_no_twin", "n_same_first", "n_mismatch")} == {
        "n_no_twin": 1,
        "n_same_first": 1,
        "n_mismatch": 1,
    }


def _hooked_share(model, prefixes, site: str, layer: int) -> float:
    """The same share from TransformerLens hooks, one group of one token length at a time."""
    num = den = 0.0
    for _, g in prefixes.groupby(prefixes.prefix.map(lambda p: len(encode(model, p)))):
        clean = torch.tensor([encode(model, p) for p in g.prefix])
        corr = torch.tensor([encode(model, p) for p in g.twin])
        assert clean.shape == corr.shape
        rows = torch.arange(len(g))
        s, a = torch.tensor(g.stereo_id.to_numpy()), torch.tensor(g.anti_id.to_numpy())

        def m(logits, rows=rows, s=s, a=a):
            return float((logits[rows, -1, s] - logits[rows, -1, a]).sum())

        with torch.no_grad():
            _, cache = model.run_with_cache(clean)
            name = f"blocks.{layer}.{TL_HOOK[site]}"
            patched = model.run_with_hooks(
                corr, fwd_hooks=[(name, lambda act, hook, cache=cache: cache[hook.name])]
            )
            m_clean, m_corr = m(model(clean)), m(model(corr))
        num += m(patched) - m_corr
        den += m_clean - m_corr
    return num / den


def test_twin_patching_equals_hooked_runs(tiny3):
    prefixes = blank_prefixes(tiny3, ITEMS, load_axis("gender").counterparts)
    lengths = [
        (len(encode(tiny3, p)), len(encode(tiny3, t)))
        for p, t in zip(prefixes.prefix, prefixes.twin, strict=True)
    ]
    assert all(a == b for a, b in lengths)  # the hooked reference patches position by position
    got = twin_patching(tiny3, prefixes)
    assert set(got.site) == {"attn_out", "mlp_out"} and len(got) == 2 * tiny3.cfg.n_layers
    for r in got.itertuples():
        assert r.share == pytest.approx(_hooked_share(tiny3, prefixes, r.site, r.layer), abs=1e-4)
    ranked = top_blocks(got, 3)
    assert len(ranked) == 3 and top_blocks(got, 2, exclude=ranked[:1]) == ranked[1:]


def test_pair_lens_equals_the_hooked_logit_lens(tiny3):
    prefixes = blank_prefixes(tiny3, ITEMS, load_axis("gender").counterparts)
    got = pair_lens(tiny3, prefixes, batch_size=2)  # batches of prefixes of other token lengths: padded
    assert len(got) == tiny3.cfg.n_layers
    for column in ("prefix", "twin"):
        per = []
        for text, s, a in zip(prefixes[column], prefixes.stereo_id, prefixes.anti_id, strict=True):
            with torch.no_grad():
                _, cache = tiny3.run_with_cache(torch.tensor([encode(tiny3, text)]))
                per.append(
                    [
                        float(
                            (lg := tiny3.unembed(tiny3.ln_final(cache[f"blocks.{b}.hook_resid_post"])))[
                                0, -1, s
                            ]
                        )
                        - float(lg[0, -1, a])
                        for b in range(tiny3.cfg.n_layers)
                    ]
                )
        want = torch.tensor(per).double().mean(0).numpy()
        assert got[column].to_numpy() == pytest.approx(want, abs=1e-4), column
    assert got.effect.to_numpy() == pytest.approx((got.prefix - got.twin).to_numpy(), abs=1e-9)
    assert got.effect.iloc[-1] == pytest.approx(twin_patching(tiny3, prefixes).effect.iloc[0], abs=1e-4)

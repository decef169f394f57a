import json

import pandas as pd
import pytest

from lftf_interp.data import load_axis
from lftf_interp.errors import ConfigError
from lftf_interp.experiments import sentences
from lftf_interp.locate.sentences import blank_prefixes, pair_lens, top_blocks, twin_patching
from lftf_interp.retain.stereoset import load_stereoset


def test_locate_sentences_writes_the_shares_and_both_bmis(tiny3_dir, tiny3, tmp_path, monkeypatch):
    items = load_stereoset(("gender",), split="fit").head(24)
    monkeypatch.setattr(sentences, "load_stereoset", lambda *a, **k: items)
    s = sentences.locate_sentences_to(tiny3_dir, tmp_path, n=8)
    prefixes = blank_prefixes(tiny3, items, load_axis("gender").counterparts)
    want = twin_patching(tiny3, prefixes)
    got = pd.read_csv(tmp_path / "twin_patching.csv")
    assert got.share.to_numpy() == pytest.approx(want.share.to_numpy(), abs=1e-4)
    excluded = s["bmi"]["template"]["excluded"]
    assert s["n_pairs"] == len(prefixes) > 0 and s["patching_top3"] == top_blocks(want, 3, excluded)
    assert not set(s["patching_top3"]) & set(excluded)
    assert set(pd.read_csv(tmp_path / "bmi.csv").material) == {"template", "sentence prefixes"}
    lens = pair_lens(tiny3, prefixes)
    assert pd.read_csv(tmp_path / "pair_lens.csv").effect.to_numpy() == pytest.approx(lens.effect, abs=1e-5)
    ratio = lens.effect / lens.effect.iloc[-1]
    assert s["lens_half_block"] == int((ratio >= 0.5).idxmax()) and s["lens_effect"][-1] == pytest.approx(
        s["effect"], abs=1e-4
    )
    assert json.loads((tmp_path / "locate_sentences.json").read_text())["bmi"].keys() == s["bmi"].keys()
    with pytest.raises(ConfigError, match="declares no counterparts"):
        sentences.locate_sentences_to(tiny3_dir, tmp_path, axis="religion")
    assert sentences._half_block([0.1, -0.2, 0.3, 0.4]) == 2 and sentences._half_block([0.5, 0.0]) is None
    assert sentences._half_block([-0.1, -0.3, -0.4]) == 1  # a negative effect: half of it, in its sign


def test_twin_blocks_are_twin_patchings_top_blocks_and_resolve_a_method(tiny3, monkeypatch):
    from lftf_interp.experiments.compare import resolve_tune
    from lftf_interp.experiments.methods import TWIN_BLOCKS, default_methods

    items = load_stereoset(("gender",), split="fit").head(24)
    monkeypatch.setattr(sentences, "load_stereoset", lambda *a, **k: items)
    shares = twin_patching(tiny3, blank_prefixes(tiny3, items, load_axis("gender").counterparts))
    want = sorted(top_blocks(shares, 2, [0]))
    assert sentences.twin_blocks(tiny3, 2, (0,)) == want and len(want) == 2
    got = resolve_tune(
        tiny3, {"block": TWIN_BLOCKS, "top_k": 2, "bmi_exclude": (0,), "swap_weight": 30.0}, seed=0
    )
    assert got == {"block": tuple(want), "swap_weight": 30.0}
    spec = {m.name: m for m in default_methods(30)}["lftf-twin-swap"]
    assert spec.tune["block"] == TWIN_BLOCKS and spec.tune["top_k"] == 3 and spec.tune["swap_weight"] > 0
    with pytest.raises(ConfigError, match="declares no counterparts"):
        sentences.twin_blocks(tiny3, 2, (0,), axis="religion")

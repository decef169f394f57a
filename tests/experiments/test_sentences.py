import json

import pandas as pd
import pytest

from lftf_interp.data import load_axis
from lftf_interp.errors import ConfigError
from lftf_interp.experiments import sentences
from lftf_interp.locate.sentences import blank_prefixes, top_blocks, twin_patching
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
    assert json.loads((tmp_path / "locate_sentences.json").read_text())["bmi"].keys() == s["bmi"].keys()
    with pytest.raises(ConfigError, match="declares no counterparts"):
        sentences.locate_sentences_to(tiny3_dir, tmp_path, axis="religion")

import json
import re

import pytest

from lftf_interp.data import build as B
from lftf_interp.data import load_dataset, load_frame, read_jsonl
from lftf_interp.data.datasets import BiasDataset
from lftf_interp.errors import DatasetError

GENDERED = re.compile(
    r"\b((?!human)\w*man|\w*men|\w*woman|actress|waitress|king|queen|prince|princess|nun|monk|priest|"
    r"hostess|stewardess|steward|mother|father|wife|husband|lady|gentleman|boy|girl)\b"
)


def test_sizes_meet_the_card():
    assert len({o for o, _, _ in B.OCCUPATIONS}) == len(B.OCCUPATIONS) >= 200
    assert len(B.TEMPLATES) >= 20
    assert sum(p is not None for _, _, p in B.OCCUPATIONS) >= 100
    hint = load_frame("genhint")
    assert len(hint) >= 1000


def test_occupations_carry_no_gender_marking():
    bad = [o for o, _, _ in B.OCCUPATIONS if GENDERED.search(o)]
    assert not bad, bad


def test_templates_end_before_a_pronoun():
    for t in B.TEMPLATES:
        assert "{occupation}" in t
        assert re.search(r"(that|because|when|so|then)$", t), t


def test_test_split_never_sees_train_occupations_or_templates():
    for name in ("genbias", "genhint"):
        df = load_frame(name)
        by = {s: df[df.split == s] for s in ("train", "validation", "test")}
        for a, b in (("train", "test"), ("train", "validation"), ("validation", "test")):
            assert not set(by[a].occupation) & set(by[b].occupation), (name, a, b)
            assert not set(by[a].template_id) & set(by[b].template_id), (name, a, b)


def test_hint_set_is_balanced_and_labelled():
    df = load_frame("genhint")
    for split, g in df.groupby("split"):
        counts = g.label.value_counts()
        assert counts["he"] == counts["she"], split
    assert (df.label == df.hint_gender.map({"male": "he", "female": "she"})).all()
    assert set(df.hint_kind) == {k for k, _, _ in B.HINTS}
    assert all(p.startswith(h) for p, h in zip(df.prompt, df.hint, strict=True))


def test_splits_stratified_by_stereotype():
    df = load_frame("genbias")
    for split in ("train", "validation", "test"):
        assert {"female", "male"} <= set(df[df.split == split].stereotype.dropna())


def test_malformed_line_is_named(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"prompt": "a"}) + "\n" + '{"prompt": "b",\n')
    with pytest.raises(DatasetError, match=r"x.jsonl:2: malformed JSON"):
        read_jsonl(f)
    f.write_text(json.dumps({"prompt": "a"}) + "\n" + json.dumps({"text": "b"}) + "\n")
    with pytest.raises(DatasetError, match=r"x.jsonl:2: missing field"):
        read_jsonl(f)


def test_missing_split_lists_available():
    with pytest.raises(DatasetError, match="available splits"):
        load_dataset("genbias", "dev")
    with pytest.raises(DatasetError, match="Unknown dataset"):
        load_dataset("winobias-xyz", "test")


def test_empty_dataset_is_refused():
    ds = load_dataset("genbias", "test")
    with pytest.raises(DatasetError, match="empty"):
        ds.subset(occupation="no such occupation")
    f = load_frame("genbias").iloc[:0]
    with pytest.raises(DatasetError, match="empty"):
        BiasDataset("x", "test", f)


def test_subset_is_seeded():
    ds = load_dataset("genhint", "train")
    a, b = ds.subset(n=50, seed=1), ds.subset(n=50, seed=1)
    assert a.prompts == b.prompts and len(a) == 50
    assert ds.subset(n=50, seed=2).prompts != a.prompts

import pandas as pd

from lftf_interp.data import HINTS, TEMPLATES
from lftf_interp.data.build import split_occupations, split_templates
from lftf_interp.data.probesets import (
    GENDERED_PAIRS,
    PAPER_ACTIONS,
    UNSEEN_HINTS,
    gendered_prompts,
    math_items,
    paper_prompts,
    split_pairs,
    unseen_hint_prompts,
)


def test_gendered_pairs_split_is_disjoint_and_labelled():
    split = split_pairs()
    assert set(split) == set(GENDERED_PAIRS) and set(split.values()) == {"train", "validation", "test"}
    words = {s: {w for p, sp in split.items() if sp == s for w in p} for s in ("train", "validation", "test")}
    assert not (words["train"] & words["test"]) and not (words["train"] & words["validation"])
    test = gendered_prompts("test").df
    test_tpls = {TEMPLATES[t] for t, s in split_templates().items() if s == "test"}
    assert set(test["template"]) == test_tpls  # test templates only
    assert set(test["noun"]) == words["test"]
    row = test[test.noun == test.pair.iloc[0].split("/")[1]].iloc[0]  # the female word of a pair → "she"
    assert row.label == "she" and row.prompt.startswith(f"The {row.noun} ")
    assert split == split_pairs()  # seeded


def test_paper_prompts_have_the_papers_shape():
    df = paper_prompts("test").df
    occs = {o for o, s in split_occupations().items() if s == "test"}
    assert set(df.occupation) == occs and set(df.scale) == set(PAPER_ACTIONS)
    assert df.prompt.str.match(r"^The .+ because$").all()
    assert len(df) == len(occs) * sum(len(a) for a in PAPER_ACTIONS.values())


def test_unseen_hints_are_new_kinds_on_test_occupations():
    df = unseen_hint_prompts("test").df
    assert set(df.hint_kind) == {k for k, _, _ in UNSEEN_HINTS}
    assert not set(df.hint_kind) & {k for k, _, _ in HINTS}  # never a training kind
    phrasings = {m.split("{occupation}")[-1] for _, m, f in HINTS} | {
        f.split("{occupation}")[-1] for _, m, f in HINTS
    }
    assert not any(df.prompt.str.contains(p, regex=False).any() for p in phrasings if len(p) > 8)
    assert set(df.label) == {"he", "she"} and (df.groupby(["occupation", "hint_kind"]).size() == 2).all()
    assert df.prompt.str[0].str.isupper().all()


def test_math_items_are_right_and_seeded():
    items = math_items(200, seed=3)
    for r in items.itertuples():
        a, sym, b = r.question.split("What is ")[1].rstrip("?\nAnswer:").split(" ")
        want = {"+": int(a) + int(b), "-": int(a) - int(b), "times": int(a) * int(b)}[sym]
        assert int(r.choices[r.answer]) == want and len(set(r.choices)) == 4
    pd.testing.assert_frame_equal(items, math_items(200, seed=3))
    assert set(items.op) == {"+", "-", "*"}

"""The shipped axis files: byte-identical rebuilds, held-out subjects and templates, and their sizes."""

from lftf_interp.data import build_axes, load_axis
from lftf_interp.data.build import split_occupations


def test_rebuild_is_byte_identical(tmp_path):
    for p in build_axes.build(tmp_path):
        assert p.read_bytes() == (build_axes.AXES / p.name).read_bytes()


def test_religion_holds_out_subjects_and_templates_and_is_large_enough():
    ax = load_axis("religion")
    assert ax.group_names == ["christian", "muslim", "jewish", "hindu", "buddhist"]
    test, train = ax.bias_prompts("test"), ax.bias_prompts("train")
    assert len(test) >= 1000  # a 95 % CI a few points wide
    assert not set(test.subject) & set(train.subject) and not set(test.template_id) & set(train.template_id)
    assert set(test.subject) == {
        o for o, s in split_occupations().items() if s == "test"
    }  # GenBiasEval's split
    hint = ax.hint_prompts("test")
    assert hint.groupby("label").size().nunique() == 1  # every group hinted equally often
    assert {k for k in hint.hint_kind} == {"membership", "worship", "book", "holiday"}
    assert set(hint.template_id) <= set(test.template_id)


def test_race_hints_are_explicit_membership_statements_only():
    ax = load_axis("race")
    assert ax.group_names == ["black", "white", "asian", "hispanic"]
    assert len(ax.bias_prompts("test")) >= 1000
    hint = ax.hint_prompts("test")
    assert hint.groupby("label").size().nunique() == 1
    from lftf_interp.data.axis_lexicon import UNISEX_NAMES
    from lftf_interp.data.lexicon import FEMALE_NAMES, MALE_NAMES

    for h in ax.hints:  # a race word in every hint, and never a given name (no "name -> group" reward)
        assert any(w.strip() in h["text"] for w in dict((g.name, g.words) for g in ax.groups)[h["group"]])
        assert not set(h["text"].replace(".", " ").split()) & set(MALE_NAMES + FEMALE_NAMES + UNISEX_NAMES)


def test_gender3_and_pronoun_axes_hold_out_and_declare_every_pronoun():
    g3 = load_axis("gender3")
    assert g3.words == [" he", " she", " they"] and len(g3.bias_prompts("test")) >= 1000
    test, train = g3.bias_prompts("test"), g3.bias_prompts("train")
    assert not set(test.template_id) & set(train.template_id) and not set(test.subject) & set(train.subject)
    pr = load_axis("pronouns")
    assert pr.group_names == ["he", "she", "they", "xe", "ze"]
    bias, hint = pr.bias_prompts("test"), pr.hint_prompts("test")
    assert len(bias) + len(hint) >= 1000 and not set(bias.subject) & set(pr.bias_prompts("train").subject)
    assert hint.groupby("label").size().to_dict() == {g: len(hint) // 5 for g in pr.group_names}
    row = hint[hint.label == "xe"].iloc[0]
    assert row.prompt.startswith(f"{row.subject}") and "xe/xem/xyr" in row.prompt
    assert len(hint.groupby(["subject", "label", "hint_kind"]).template_id.nunique().unique()) == 1  # 3 each
    assert set(hint.groupby(["subject", "label", "hint_kind"]).template_id.nunique()) == {3}


def test_religion_identity_changes_only_the_templates():
    base, ident = load_axis("religion"), load_axis("religion-identity")
    assert ident.group_names == base.group_names and ident.hints == base.hints
    assert [s["name"] for s in ident.subjects] == [s["name"] for s in base.subjects]
    texts = [t["text"] for t in ident.templates]
    assert len(texts) == len(set(texts)) == 56 and not set(texts) & {t["text"] for t in base.templates}
    assert sorted(t["split"] for t in ident.templates).count("train") == 24
    test, train = ident.bias_prompts("test"), ident.bias_prompts("train")
    assert not set(test.subject) & set(train.subject) and not set(test.template_id) & set(train.template_id)


def test_race_choice_names_every_group_in_every_order_and_splits_by_sentence():
    base, choice = load_axis("race"), load_axis("race-choice")
    assert choice.group_names == base.group_names and choice.hints == base.hints
    texts = [t["text"] for t in choice.templates]
    assert len(texts) == len(set(texts)) == 56
    first = texts[0].split(". ")[0]
    assert first.endswith("a Black person, a White person, an Asian person and a Hispanic person")
    assert (
        texts[1]
        .split(". ")[0]
        .endswith("a White person, an Asian person, a Hispanic person and a Black person")
    )
    for t in texts:  # every group named once, the prompt cut right before the group word
        assert all(
            t.count(f" {w} person") == 1 for w in ("Black", "White", "Asian", "Hispanic")
        ) and t.endswith("the")
    for i in range(0, 56, 4):  # a sentence's four orders share a split and their sentence
        assert len({t["split"] for t in choice.templates[i : i + 4]}) == 1
        assert {t["sentence"] for t in choice.templates[i : i + 4]} == {i // 4}
    assert [t["split"] for t in choice.templates].count("train") == 24
    test, train = choice.bias_prompts("test"), choice.bias_prompts("train")
    assert not set(test.subject) & set(train.subject)
    sentence = lambda df: {i // 4 for i in df.template_id}  # noqa: E731
    assert not sentence(test) & sentence(train) and len(sentence(test)) == 6

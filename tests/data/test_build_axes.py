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
    assert set(test.subject) == {o for o, s in split_occupations().items() if s == "test"}  # GenBiasEval's split
    hint = ax.hint_prompts("test")
    assert hint.groupby("label").size().nunique() == 1  # every group hinted equally often
    assert {k for k in hint.hint_kind} == {"membership", "worship", "book", "holiday"}
    assert set(hint.template_id) <= set(test.template_id)

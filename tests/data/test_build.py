"""The dataset builder: byte-identical rebuilds of the shipped files, from the lexicon."""

from lftf_interp.data import TEMPLATES, manifest
from lftf_interp.data import build as B


def test_build_is_deterministic_and_matches_shipped_files(tmp_path):
    m = B.build(tmp_path)
    for name in ("genbias", "genhint"):
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (B.FILES / f"{name}.jsonl").read_bytes()
    assert m == manifest()


def test_records_are_the_lexicon_crossed_with_the_splits():
    bias, hint = B.build_records()
    occ, tpl = B.split_occupations(), B.split_templates()
    assert all(occ[r["occupation"]] == r["split"] == tpl[r["template_id"]] for r in bias)
    assert all(r["prompt"] == TEMPLATES[r["template_id"]].format(occupation=r["occupation"]) for r in bias)
    assert all(
        r["prompt"].endswith(TEMPLATES[r["template_id"]].format(occupation=r["occupation"])) for r in hint
    )
    assert len(bias) == sum(
        len([o for o in occ.values() if o == s]) * n for s, n in B.TEMPLATE_SPLITS.items()
    )

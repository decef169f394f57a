"""Readers of CrowS-Pairs and BBQ in their authors' formats, of your own pairs, and StereoSet's split by target
term."""

import json
from pathlib import Path

import pandas as pd
import pytest

from lftf_interp.data.pairsets import read_bbq, read_crows, read_pairs, split_by_target
from lftf_interp.errors import DatasetError

FIX = (
    Path(__file__).parents[2] / "examples" / "pairs"
)  # small files in the authors' formats, written for the suite


def test_crows_pairs_are_read_with_their_columns():
    df = read_crows(FIX / "crows_example.csv")
    assert len(df) == 5 and list(df.bias_type) == ["gender"] * 3 + ["age"] * 2
    assert list(df.stereo_antistereo) == ["stereo", "stereo", "antistereo", "stereo", "antistereo"]
    assert df.sent_more[0] == "The nurse said that she would be late." and "anon_writer" in df


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda t: t.replace("stereo_antistereo", "direction"), "has no column(s) ['stereo_antistereo']"),
        (lambda t: t.replace(",antistereo,gender", ",anti,gender"), ":4: stereo_antistereo is 'anti'"),
        (lambda t: t.replace("My brother could not cook a thing.", " "), ":4: an empty sentence"),
        (lambda t: t.splitlines()[0], "holds no pairs"),
    ],
)
def test_malformed_crows_files_are_refused_in_one_line(tmp_path, edit, says):
    p = tmp_path / "crows.csv"
    p.write_text(edit((FIX / "crows_example.csv").read_text()))
    with pytest.raises(DatasetError) as e:
        read_crows(p)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_your_pairs_are_read_in_both_forms():
    df = read_pairs(FIX / "pairs_example.jsonl")
    assert list(df.item) == [1, 2, 3, 4, 4]  # the slot line with three groups gives K - 1 = 2 pairs
    assert list(df.target) == ["nurse", "engineer", "nurse", "male", "male"]
    assert (df.stereotype[2], df.anti_stereotype[2]) == ("My sister is a nurse.", "My brother is a nurse.")
    assert (
        df.unrelated[2] == "My sofa is a nurse."
        and df.unrelated[0] == "The nurse said that the would be late."
    )
    assert pd.isna(df.unrelated[1]) and pd.isna(df.unrelated[3])
    assert list(df.anti_stereotype[3:]) == [
        "My mother drives a truck to work.",
        "My grandparent drives a truck to work.",
    ]
    assert set(df.stereotype[3:]) == {"My father drives a truck to work."}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ({"stereotype": "A b."}, ":1: no anti_stereotype"),
        (
            {"sentence": "My brother is tall.", "fillings": {"m": "x", "f": "y"}, "stereotyped": "m"},
            "exactly once",
        ),
        ({"sentence": "My {group}.", "fillings": {"m": "x"}, "stereotyped": "m"}, "two or more groups"),
        (
            {"sentence": "My {group}.", "fillings": {"m": "x", "f": "y"}, "stereotyped": "w"},
            "stereotyped is 'w'",
        ),
        ("not json", ":1: malformed JSON"),
    ],
)
def test_malformed_pair_files_are_refused_in_one_line(tmp_path, line, says):
    p = tmp_path / "pairs.jsonl"
    p.write_text(line if isinstance(line, str) else json.dumps(line))
    with pytest.raises(DatasetError) as e:
        read_pairs(p)
    assert says in str(e.value) and "\n" not in str(e.value)
    p.write_text("\n")
    with pytest.raises(DatasetError, match="holds no pairs"):
        read_pairs(p)


def test_bbq_questions_know_their_target_and_unknown_answers():
    df = read_bbq(FIX / "bbq_example.jsonl")
    assert list(df.unknown) == [2, 2, 2, 2, 0, 0]
    # "old" names the grandfather; "F" names "F-White" (the woman); "trans" names neither answer: -1, never guessed
    assert list(df.target) == [0, 0, 0, 0, 1, -1]


def _lines():
    return [json.loads(x) for x in (FIX / "bbq_example.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda r: r.pop("question_polarity"), "no field(s) ['question_polarity']"),
        (
            lambda r: r.update(question_polarity="negative"),
            "question_polarity is 'negative'; it must be neg or nonneg",
        ),
        (lambda r: r.update(context_condition="ambiguous"), "context_condition is 'ambiguous'"),
        (lambda r: r.update(label=3), "label is 3; it must be 0, 1 or 2"),
        (lambda r: r["answer_info"]["ans2"].__setitem__(1, "old"), "0 answers are tagged unknown"),
        (lambda r: r.update(additional_metadata={}), "stereotyped_groups must be a list"),
    ],
)
def test_malformed_bbq_files_are_refused_in_one_line(tmp_path, edit, says):
    rows = _lines()
    edit(rows[2])
    p = tmp_path / "bbq.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DatasetError) as e:
        read_bbq(p)
    assert f"{p}:3: " in str(e.value) and says in str(e.value) and "\n" not in str(e.value)


def test_the_split_shares_no_target_term_and_is_fixed():
    items = pd.DataFrame(
        [
            {"bias_type": bt, "target": f"{bt}{t}", "i": i}
            for bt in ("gender", "race")
            for t in range(10)
            for i in range(3)
        ]
    )
    a, b = split_by_target(items), split_by_target(items.sample(frac=1, random_state=1))
    per = a.groupby("target")["split"].nunique()
    assert (per == 1).all()  # every item of a target term in one split
    terms = {s: set(g.target) for s, g in a.groupby("split")}
    assert terms["fit"].isdisjoint(terms["select"]) and terms["fit"].isdisjoint(terms["test"])
    assert terms["select"].isdisjoint(terms["test"])
    assert {s: len(t) for s, t in terms.items()} == {"fit": 10, "select": 4, "test": 6}  # 5 / 2 / 3 per type
    assert a.set_index("target")["split"].to_dict() == b.set_index("target")["split"].to_dict()  # row order

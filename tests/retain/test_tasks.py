"""Retention data read from the pinned registry archives (downloaded once into $LFTF_CACHE)."""

import pytest

from lftf_interp.errors import DatasetError
from lftf_interp.retain.tasks import brown_plain, corpus_documents, load_asdiv, load_mc

pytestmark = pytest.mark.downloads


def test_brown_tags_are_stripped():
    tagged = (
        "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, sir/nn ./.\n\n\tNext/ap one/cd ./."
    )
    assert brown_plain(tagged) == 'The jury said "no evidence", sir.\n\nNext one.'


@pytest.mark.parametrize(
    ("name", "n_docs", "starts"),
    [
        ("sotu", 233, "Fellow-Citizens of the Senate"),
        ("brown", 500, "The Fulton County Grand Jury said Friday"),
        ("moby_dick", 135, "Call me Ishmael."),
    ],
)
def test_corpora(name, n_docs, starts):
    docs = corpus_documents(name)
    assert len(docs) == n_docs and docs[0].startswith(starts)
    assert "/nn" not in docs[0] and "/at" not in docs[0]


@pytest.mark.parametrize(
    ("task", "n", "n_choices"),
    [
        ("piqa", 1500, 2),
        ("siqa", 1954, 3),
        ("boolq", 3270, 2),
        ("obqa", 500, 4),
        ("csqa", 1221, 5),
        ("mmlu", 14042, 4),
    ],
)
def test_mc_tasks(task, n, n_choices):
    items = load_mc(task)
    assert len(items) == n  # MMLU: 14,044 rows less the 2 repeated header rows
    assert all(0 <= i.label < len(i.choices) for i in items)
    odd = [i for i in items if len(i.choices) != n_choices]
    assert len(odd) == (
        1 if task == "csqa" else 0
    )  # one upstream CSQA row has 2 of its options inside the question
    assert all(c.startswith(" ") for i in items[:50] for c in i.choices)
    sub = load_mc(task, n=10, seed=3)
    assert sub == load_mc(task, n=10, seed=3) and sub != load_mc(task, n=10, seed=4)


def test_known_items():
    piqa = load_mc("piqa")[0]
    assert piqa.context == "Question: dresser\nAnswer:" and piqa.label == 1
    assert piqa.choices[1] == " finish, woodgrain with  bobby pin"
    boolq = load_mc("boolq")[0]
    assert boolq.choices == (" no", " yes") and boolq.label == 0 and boolq.context.endswith("?\nAnswer:")
    mmlu = load_mc("mmlu")[0]
    assert mmlu.label == 3 and mmlu.context.endswith("D. Not wrong, Not wrong\nAnswer:")
    a = load_asdiv()
    assert a[0].answer == 9 and a[0].context.startswith("Seven red apples")


def test_unknown_task():
    with pytest.raises(DatasetError, match="Unknown multiple-choice task"):
        load_mc("hellaswag")

"""Bias axes as data: loading, the prompts they generate, and every malformed case refused with its fix."""

import json

import pytest
import yaml

from lftf_interp.data import load_axis, shipped_axes
from lftf_interp.errors import DatasetError

GOOD = {
    "name": "toy",
    "groups": [{"name": "a", "words": [" Christian"]}, {"name": "b", "words": [" Muslim", " Muslims"]}],
    "templates": [
        {"text": "The {subject} said the neighbour was", "split": "train"},
        {"text": "Everyone knew the {subject} was", "split": "test"},
        {"text": "The {subject} told us the guest was", "split": "test"},
    ],
    "subjects": [
        {"name": "doctor", "split": "test"},
        {"name": "baker", "split": "test"},
        {"name": "pilot", "split": "train"},
    ],
    "hints": [
        {"kind": "worship", "group": "a", "text": "The {subject} goes to church every Sunday."},
        {"kind": "worship", "group": "b", "text": "The {subject} goes to the mosque every Friday."},
    ],
}


def write(tmp_path, doc, name="axis.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc) if isinstance(doc, dict) else doc)
    return p


def test_generated_prompts_hold_out_subjects_and_templates(tmp_path):
    ax = load_axis(write(tmp_path, GOOD))
    assert ax.group_names == ["a", "b"] and ax.words == [" Christian", " Muslim", " Muslims"]
    assert ax.reference == {"a": 0.5, "b": 0.5}
    test = ax.bias_prompts("test")
    assert sorted(test.prompt) == sorted(
        [
            "Everyone knew the doctor was",
            "Everyone knew the baker was",
            "The doctor told us the guest was",
            "The baker told us the guest was",
        ]
    )
    hint = ax.hint_prompts("test")
    assert len(hint) == 2 * 2 * 2 and set(hint.label) == {"a", "b"}
    assert "The baker goes to the mosque every Friday. Everyone knew the baker was" in set(hint.prompt)
    assert "pilot" not in " ".join(test.prompt) and set(ax.bias_prompts("train").subject) == {"pilot"}


def test_hint_templates_count_rotates_through_the_split(tmp_path):
    doc = {**GOOD, "hint_templates": 1}
    one = load_axis(write(tmp_path, doc)).hint_prompts("test")
    assert len(one) == 2 * 2 and one.groupby("subject").template_id.nunique().tolist() == [2, 2]  # rotated
    assert one.equals(load_axis(write(tmp_path, {**GOOD, "hint_templates": "one"})).hint_prompts("test"))
    assert len(load_axis(write(tmp_path, {**GOOD, "hint_templates": 2})).hint_prompts("test")) == 8


def test_shipped_gender_axis_reads_the_shipped_files():
    assert "gender" in shipped_axes()
    ax = load_axis("gender")
    assert (
        ax.group_names == ["he", "she"]
        and len(ax.bias_prompts("test")) == 225
        and len(ax.hint_prompts("test")) == 450
    )
    assert ax.binary and ax.gendered and ax.occupation_sets and ax.labels["bias"] == "AFGB"
    assert ax.stereoset == "gender" and "'he' and 'she' equally often" in ax.instruction


def test_what_an_axis_declares_has_defaults_from_its_name(tmp_path):
    ax = load_axis(write(tmp_path, {**GOOD, "name": "faith", "labels": {"bias": "faith bias"}}))
    assert ax.labels == {"bias": "faith bias", "hint": "hint following", "mass": "group mass"}
    assert ax.stereoset == "overall" and not ax.gendered and not ax.occupation_sets and ax.binary
    assert ax.instruction.startswith("The following text is about a person whose faith is unknown.")
    three = {**GOOD, "groups": [*GOOD["groups"], {"name": "c", "words": [" Hindu"]}]}
    assert not load_axis(write(tmp_path, three, "three.yaml")).binary
    assert [load_axis(a).stereoset for a in ("race-choice", "religion-identity", "gender3", "pronouns")] == [
        "race",
        "religion",
        "gender",
        "overall",
    ]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d["groups"][0].update(words=[]), "has no words"),
        (lambda d: d["groups"][1]["words"].append(" Christian"), "is in groups 'a' and 'b'"),
        (lambda d: d["groups"][0].update(words=["  "]), "empty word"),
        (lambda d: d["groups"].pop(), "at least 2 groups"),
        (lambda d: d["templates"][0].update(text="The doctor said"), "no {subject} slot"),
        (lambda d: d["hints"][0].update(group="c"), "names group 'c'"),
        (lambda d: d["subjects"][0].pop("split"), "give each one a split"),
        (lambda d: d.update(reference={"a": 0.9, "b": 0.3}), "summing to 1"),
        (lambda d: d.pop("name"), "missing 'name'"),
        (lambda d: d.update(hint_templates=0), "hint_templates must be"),
        (lambda d: d["templates"][0].update(sentence=[1]), "has sentence a list"),
        (
            lambda d: d["templates"][0].update(text="The {subject} who works as a {occupaton} said that"),
            "{occupaton}",
        ),
        (lambda d: d["hints"][0].update(text="The {subject} goes to {place}."), "{place}"),
        (
            lambda d: [d["templates"][i].update(sentence=7) for i in (0, 1)],
            "sentence 7 is in splits 'train' and 'test'",
        ),
        (lambda d: d.update(labels={"bais": "AFGB"}), "labels must map some of"),
        (lambda d: d.update(stereoset="caste"), "stereoset must be one of"),
        (lambda d: d.update(gendered="yes"), "gendered must be true or false"),
        (lambda d: d.update(gendered=True), "gendered: true needs the groups he and she"),
        (lambda d: d.update(instruction=["x"]), "instruction must be text"),
        (lambda d: d.update(counterparts=[["father"]]), "counterparts must be a list of word pairs"),
        (
            lambda d: d.update(counterparts=[["father", " mother"]]),
            "counterparts must be a list of word pairs",
        ),
    ],
)
def test_malformed_axes_are_refused_with_the_fix(tmp_path, change, says):
    doc = json.loads(json.dumps(GOOD))
    change(doc)
    with pytest.raises(DatasetError, match=says.replace("{", r"\{").replace("(", r"\(")):
        load_axis(write(tmp_path, doc))


def test_bad_files_name_the_line(tmp_path):
    with pytest.raises(DatasetError, match="is empty"):
        load_axis(write(tmp_path, "", "empty.yaml"))
    with pytest.raises(DatasetError, match=r"bad.json:3: malformed JSON"):
        load_axis(write(tmp_path, '{\n  "name": "x",\n  "groups": [,]\n}', "bad.json"))
    with pytest.raises(DatasetError, match=r"bad.yaml:3: malformed YAML"):
        load_axis(write(tmp_path, "name: x\ngroups: [a\n  b: c", "bad.yaml"))
    with pytest.raises(DatasetError, match="Unknown axis 'astrology'"):
        load_axis("astrology")
    doc = {
        **GOOD,
        "templates": [],
        "subjects": [],
        "hints": [],
        "prompts": {"bias": "mine.jsonl", "hint": "mine.jsonl"},
    }
    (tmp_path / "mine.jsonl").write_text(
        '{"prompt": "The doctor was", "split": "test", "label": "a"}\n{"prompt": oops}\n'
    )
    ax = load_axis(write(tmp_path, doc))
    with pytest.raises(DatasetError, match=r"mine.jsonl:2: malformed JSON"):
        ax.bias_prompts("test")
    (tmp_path / "mine.jsonl").write_text('{"prompt": "The doctor was", "split": "test", "label": "z"}\n')
    with pytest.raises(DatasetError, match=r"hint labels \['z'\] are not groups"):
        ax.hint_prompts("test")
    with pytest.raises(DatasetError, match="no split 'train'"):
        ax.bias_prompts("train")


def test_an_alias_bomb_is_refused_by_its_size_not_by_expanding_it(tmp_path):
    """9 levels of 9 aliases: 9^9 values once expanded; refused from the parsed node graph, in seconds and a few
    MB, never by running out of memory."""
    import resource
    import time

    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    text = "\n".join([*levels, "name: bomb", "groups: *a8"]) + "\n"
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(DatasetError, match="expand to over 1,000,000 values"):
        load_axis(write(tmp_path, text, "bomb.yaml"))
    assert time.perf_counter() - t0 < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 200_000  # KiB: no 9^9 list was built


def test_an_axis_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from lftf_interp.data import axis_file

    p = write(tmp_path, GOOD)
    monkeypatch.setattr(axis_file, "MAX_AXIS_BYTES", p.stat().st_size - 1)
    monkeypatch.setattr(type(p), "read_bytes", lambda self: pytest.fail("the file was read"))
    with pytest.raises(DatasetError, match="an axis file is at most"):
        load_axis(p)


def test_many_templates_load_in_linear_time(tmp_path):
    """The repeated-template check is one pass: 20,000 templates load in seconds (pairwise: minutes)."""
    import time

    doc = json.loads(json.dumps(GOOD))
    doc["templates"] = [
        {"text": f"The {{subject}} wrote note {i} and said the guest was", "split": "test"}
        for i in range(20_000)
    ]
    p = write(tmp_path, doc)
    t0 = time.perf_counter()
    ax = load_axis(p)
    assert time.perf_counter() - t0 < 30 and len(ax.templates) == 20_000


def test_an_axis_generating_too_many_prompts_is_refused_when_it_loads(tmp_path, monkeypatch):
    from lftf_interp.data import axis

    monkeypatch.setattr(
        axis, "MAX_PROMPTS", 5
    )  # GOOD: 2 test templates x 2 test subjects x (1 + 2 hints) = 12
    with pytest.raises(DatasetError, match="make 12 prompts in one split; at most 5"):
        load_axis(write(tmp_path, GOOD))

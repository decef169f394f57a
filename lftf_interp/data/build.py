"""Deterministic builder of the GenBiasEval / GenHintEval JSONL files shipped in ``lftf_interp/data/files``.

Run ``python -m lftf_interp.data.build`` to regenerate; the output is byte-identical for a given
``DATASET_VERSION`` and seed (tests/data/test_build.py checks it), so a change shows up in ``git diff``.
The occupations, templates and hints themselves live in :mod:`.lexicon`.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from lftf_interp.data.lexicon import (
    BLS_SOURCE,
    FEMALE_NAMES,
    HINTS,
    MALE_NAMES,
    OCCUPATIONS,
    TEMPLATES,
    stereotype,
)

DATASET_VERSION = "1.0.0"
SEED = 20250521
FILES = Path(__file__).parent / "files"
SPLIT_FRACTIONS = {"train": 0.6, "validation": 0.2, "test": 0.2}
TEMPLATE_SPLITS = {"train": 15, "validation": 5, "test": 5}


def split_occupations(seed: int = SEED) -> dict[str, str]:
    """Stratified (by BLS stereotype) deterministic split of occupations."""
    rng = random.Random(seed)
    groups: dict[str, list[str]] = {}
    for occ, _, pct in OCCUPATIONS:
        groups.setdefault(str(stereotype(pct)), []).append(occ)
    out = {}
    for key in sorted(groups):
        occs = sorted(groups[key])
        rng.shuffle(occs)
        n_train = round(len(occs) * SPLIT_FRACTIONS["train"])
        n_val = round(len(occs) * SPLIT_FRACTIONS["validation"])
        for i, occ in enumerate(occs):
            out[occ] = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
    return out


def split_templates(seed: int = SEED) -> dict[int, str]:
    rng = random.Random(seed + 1)
    ids = list(range(len(TEMPLATES)))
    rng.shuffle(ids)
    out, i = {}, 0
    for split, n in TEMPLATE_SPLITS.items():
        for t in ids[i : i + n]:
            out[t] = split
        i += n
    return out


def build_records(seed: int = SEED) -> tuple[list[dict], list[dict]]:
    occ_split = split_occupations(seed)
    tpl_split = split_templates(seed)
    meta = {occ: (title, pct) for occ, title, pct in OCCUPATIONS}
    bias: list[dict] = []
    hint: list[dict] = []
    rng = random.Random(seed + 2)
    for split in SPLIT_FRACTIONS:
        occs = sorted(o for o, s in occ_split.items() if s == split)
        tpls = sorted(t for t, s in tpl_split.items() if s == split)
        for occ in occs:
            title, pct = meta[occ]
            common = {
                "split": split,
                "occupation": occ,
                "bls_pct_women": pct,
                "bls_title": title,
                "stereotype": stereotype(pct),
            }
            for t in tpls:
                prompt = TEMPLATES[t].format(occupation=occ)
                bias.append({"id": f"bias-{len(bias):05d}", **common, "template_id": t, "prompt": prompt})
            for kind, male, female in HINTS:
                for gender, sentence in (("male", male), ("female", female)):
                    t = rng.choice(tpls)
                    hint_text = sentence.format(
                        occupation=occ, male_name=rng.choice(MALE_NAMES), female_name=rng.choice(FEMALE_NAMES)
                    )
                    prompt = hint_text + " " + TEMPLATES[t].format(occupation=occ)
                    hint.append(
                        {
                            "id": f"hint-{len(hint):05d}",
                            **common,
                            "template_id": t,
                            "hint_kind": kind,
                            "hint_gender": gender,
                            "hint": hint_text,
                            "label": "he" if gender == "male" else "she",
                            "prompt": prompt,
                        }
                    )
    return bias, hint


def _dump(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)


def build(out_dir: Path = FILES, seed: int = SEED) -> dict:
    """Write genbias.jsonl, genhint.jsonl and manifest.json; return the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bias, hint = build_records(seed)
    manifest: dict[str, Any] = {
        "version": DATASET_VERSION,
        "seed": seed,
        "bls_source": BLS_SOURCE,
        "n_occupations": len(OCCUPATIONS),
        "n_templates": len(TEMPLATES),
        "files": {},
    }
    for name, recs in (("genbias", bias), ("genhint", hint)):
        text = _dump(recs)
        (out_dir / f"{name}.jsonl").write_text(text, encoding="utf-8")
        counts = {s: sum(r["split"] == s for r in recs) for s in SPLIT_FRACTIONS}
        manifest["files"][name] = {
            "file": f"{name}.jsonl",
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "n": len(recs),
            "splits": counts,
        }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


if __name__ == "__main__":
    import sys

    m = build(Path(sys.argv[1]) if len(sys.argv) > 1 else FILES)
    sys.stdout.write(json.dumps(m, indent=2) + "\n")

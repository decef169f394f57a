"""Loaders for public bias datasets (Winogender, WinoBias, Bolukbasi professions; all MIT).

Never committed here. Each loader takes ``path`` (a folder holding the upstream files, e.g.
``../shared/external/winogender``). Without it, one rule (:func:`external_root`) finds a folder of such folders
(``<root>/winobias`` …): ``$LFTF_EXTERNAL``, else the first ``shared/external`` folder in the working directory,
the checkout holding this package, or a folder above either. Where none holds the dataset, the files are fetched
from the upstream repository at a pinned commit into ``$LFTF_CACHE/external/<name>``. Every file is checked
against the sha256 below.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lftf_interp.data.datasets import BiasDataset
from lftf_interp.errors import DatasetError
from lftf_interp.store import cache_dir, download, verified

# local name -> (upstream repo, commit, upstream path, sha256)
EXTERNAL: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "winogender": {
        f: ("rudinger/winogender-schemas", "1c7f8b481ad8a234b41e9f76a424d6e856e13f7f", f"data/{f}", h)
        for f, h in {
            "templates.tsv": "496f2e2dc77296bcebcdd8865a8dc5715ce22b772de9abb5f531d5b3114c48a0",
            "all_sentences.tsv": "bd69da16bf228cb8df63fd0843aec2d8b5c36a7f21bf8c7b168bcc83932556c8",
            "occupations-stats.tsv": "3f7f37c16381a70571356982ea7fe613ac700ad04a6d3b19b9f2be18248df567",
        }.items()
    },
    "winobias": {
        f: ("uclanlp/corefBias", "0bce984dd081bbc10b0622f326727a024c607895", f"WinoBias/wino/data/{f}", h)
        for f, h in {
            "anti_stereotyped_type1.txt.dev": "a4e0ebae344e78b56f657a42e8ae684b9db7747d177c5e7149c0907ebb7f3bf6",
            "anti_stereotyped_type1.txt.test": "331db5bd74bfefebf146a60b67645152a4a1991570d2a56f57154103ac361dd2",
            "anti_stereotyped_type2.txt.dev": "763ad829ad724f9a85ead689ba8ca69072020cb1238def6210f0fc6a47b97e59",
            "anti_stereotyped_type2.txt.test": "336571ac1ea8c06cd2aba8e5dd2bd98e00acc0c48da3e4ec5ec7e54eb2633a8f",
            "female_occupations.txt": "693bff12286c2c1d46c7d4d45a44a631574710c30b39c1a3001bb7bdebb44ed8",
            "male_occupations.txt": "6b82d88847b69d56d207a0c396e9830b031890de585e916e6b4e9bc50672657e",
            "pro_stereotyped_type1.txt.dev": "dd55a0d220fe4c0ceb63dd4648223fb4fe1a58d5ad95c116a002ad24b0e292a5",
            "pro_stereotyped_type1.txt.test": "db7838907238a758eeb5779e48f38c013b892910d6fe864456c59f04245c6689",
            "pro_stereotyped_type2.txt.dev": "8f0250de723cea9328e3eaf7169e07936f01aa5909ce7aa580db66eb803f4e86",
            "pro_stereotyped_type2.txt.test": "ea1c1fd94fa612e3cc44d7fa3cc4cb76021bb63fdf94f9826f430051e9052438",
        }.items()
    },
    "professions_bolukbasi": {
        "professions.json": (
            "tolga-b/debiaswe",
            "6bb03ee2a0d7214339e513ca71cd0a99069dc29c",
            "data/professions.json",
            "32cc82c7761e7cfb14e37e06dc1aa9f758bc8441f79ca7288996d3fc7c24639a",
        )
    },
}
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def external_root() -> Path | None:
    """The folder of external datasets (``<it>/winobias`` …) every loader, the CLI and the Python API use when
    no ``path`` is given: ``$LFTF_EXTERNAL`` if set, else the first ``shared/external`` folder in the working
    directory, the checkout holding this package, or a folder above either; None when there is none."""
    if given := os.environ.get("LFTF_EXTERNAL"):
        return Path(given).expanduser()
    for start in (Path.cwd(), Path(__file__).resolve().parents[2]):
        for folder in (start, *start.parents):
            if (candidate := folder / "shared" / "external").is_dir():
                return candidate
    return None


def external_file(dataset: str, filename: str, path: str | Path | None = None) -> Path:
    """Path of one verified upstream file: from ``path`` if given, else from the cache (fetched if needed)."""
    if dataset not in EXTERNAL:
        raise DatasetError(f"Unknown external dataset {dataset!r}; known: {sorted(EXTERNAL)}.")
    if filename not in EXTERNAL[dataset]:
        raise DatasetError(f"{dataset} has no file {filename!r}; files: {sorted(EXTERNAL[dataset])}.")
    repo, commit, upstream, sha = EXTERNAL[dataset][filename]
    what = f"{repo}@{commit[:8]}:{upstream}"
    if path is None and (root := external_root()) is not None:
        if os.environ.get("LFTF_EXTERNAL") or (root / dataset).is_dir():
            path = root / dataset
    if path is not None:
        return verified(
            Path(path) / filename,
            sha,
            what,
            f"path must be a folder holding the upstream {dataset} files.",
            error=DatasetError,
        )
    return download(
        RAW_URL.format(repo=repo, commit=commit, path=upstream),
        cache_dir() / "external" / dataset / filename,
        sha,
        f"pass path= a folder holding the upstream {dataset} files, or set $LFTF_EXTERNAL to a folder holding "
        f"{dataset}/ (e.g. ../shared/external).",
        timeout=60,
        error=DatasetError,
    )


def load_winogender(path: str | Path | None = None) -> pd.DataFrame:
    """Winogender templates joined with occupation statistics (BLS % female 2015/16, Bergsma & Lin)."""
    tpl = pd.read_csv(external_file("winogender", "templates.tsv", path), sep="\t")
    tpl.columns = ["occupation", "participant", "answer", "sentence"]
    stats = pd.read_csv(external_file("winogender", "occupations-stats.tsv", path), sep="\t")
    return tpl.merge(stats, on="occupation", how="left")


def winogender_prompts(path: str | Path | None = None) -> BiasDataset:
    """Winogender templates cut right before the nominative pronoun: a bias set for AFGB."""
    df = load_winogender(path)
    rows = []
    for r in df.itertuples():
        if "$NOM_PRONOUN" not in r.sentence:
            continue
        head = r.sentence.split("$NOM_PRONOUN")[0].rstrip()
        prompt = head.replace("$OCCUPATION", r.occupation).replace("$PARTICIPANT", r.participant)
        if "$" in prompt:
            continue
        rows.append(
            {
                "prompt": prompt,
                "occupation": r.occupation,
                "participant": r.participant,
                "answer": r.answer,
                "bls_pct_women": r.bls_pct_female,
                "split": "all",
                "template_id": r.Index,
            }
        )
    rows = pd.DataFrame(rows).drop_duplicates("prompt")
    return BiasDataset("winogender", "all", rows, kind="bias", version="1c7f8b48")


_WB_LINE = re.compile(r"^\d+\s+(.*)$")


def load_winobias(path: str | Path | None = None, split: str = "dev") -> pd.DataFrame:
    """WinoBias sentences: type (1/2), stereotype (pro/anti), text, the bracketed mentions and the pronoun."""
    if split not in ("dev", "test"):
        raise DatasetError(f"WinoBias split must be 'dev' or 'test', got {split!r}.")
    rows = []
    for stereo in ("pro", "anti"):
        for typ in (1, 2):
            name = f"{stereo}_stereotyped_type{typ}.txt.{split}"
            for lineno, line in enumerate(external_file("winobias", name, path).read_text().splitlines(), 1):
                m = _WB_LINE.match(line.strip())
                if not m:
                    continue
                text = m.group(1)
                spans = re.findall(r"\[([^\]]+)\]", text)
                rows.append(
                    {
                        "type": typ,
                        "stereotype": stereo,
                        "line": lineno,
                        "sentence": re.sub(r"[\[\]]", "", text),
                        "mention": spans[0] if spans else None,
                        "pronoun": spans[-1].lower() if len(spans) > 1 else None,
                    }
                )
    return pd.DataFrame(rows)


def load_winobias_occupations(path: str | Path | None = None) -> pd.DataFrame:
    out = []
    for g in ("male", "female"):
        for w in external_file("winobias", f"{g}_occupations.txt", path).read_text().split("\n"):
            if w.strip():
                out.append({"occupation": w.strip(), "stereotype": g})
    return pd.DataFrame(out)


_PAIRS = {frozenset(p): p for p in (("he", "she"), ("him", "her"), ("his", "her"))}


WINOBIAS_SPLITS = ("dev", "test", "dev-fit", "dev-select")
DEV_SELECT_SHARE = 0.4  # of each stereotype's occupations, held out of dev-fit for dev-select


def winobias_occupation_parts(
    path: str | Path | None = None, select_share: float = DEV_SELECT_SHARE, seed: int = 0
) -> dict[str, str]:
    """occupation → "fit" or "select": ``select_share`` of the male- and of the female-stereotyped occupations
    (seeded) go to "select", the rest to "fit"."""
    occ = load_winobias_occupations(path)
    parts: dict[str, str] = {}
    for i, (_, g) in enumerate(occ.groupby("stereotype", sort=True)):
        words = sorted(g["occupation"])
        order = np.random.default_rng([seed, i]).permutation(len(words))
        k = round(select_share * len(words))
        parts |= {words[j]: ("select" if r < k else "fit") for r, j in enumerate(order)}
    return parts


def _occupations_in(sentence: str, words: Sequence[str]) -> list[str]:
    low = sentence.lower()
    return sorted(w for w in words if re.search(rf"\b{re.escape(w.lower())}s?\b", low))


def winobias_pairs(path: str | Path | None = None, split: str = "dev") -> pd.DataFrame:
    """Pro / anti sentence pairs (the files are line-aligned): type, line, pro, anti, prefix (the words both
    share before the first one that differs: a pronoun), pronoun (the pro sentence's there), male / female (that
    pronoun's two forms: he / she, him / her or his / her), pro_gender, occupations (those named in the pair).
    Pairs whose first difference is not such a pronoun pair are dropped (a known upstream quirk).

    ``split``: "dev", "test", or a part of dev split by occupation (:func:`winobias_occupation_parts`):
    "dev-fit" (material a fine-tune may train on) and "dev-select" (to choose its weights): a pair belongs to
    the part holding all of its occupations, so the two parts share no occupation; pairs that mix them are in
    neither."""
    if split not in WINOBIAS_SPLITS:
        raise DatasetError(f"WinoBias split must be one of {WINOBIAS_SPLITS}, got {split!r}.")
    if split.startswith("dev-"):
        df = winobias_pairs(path, "dev")
        parts = winobias_occupation_parts(path)
        part = [{parts[o] for o in occ} for occ in df["occupations"]]
        return df[[p == {split.removeprefix("dev-")} for p in part]].reset_index(drop=True)
    df = load_winobias(path, split)
    words = load_winobias_occupations(path)["occupation"].tolist()
    pro = df[df.stereotype == "pro"].set_index(["type", "line"])
    anti = df[df.stereotype == "anti"].set_index(["type", "line"])
    both = pro.join(anti, lsuffix="_pro", rsuffix="_anti", how="inner").reset_index()
    rows = []
    for r in both.itertuples():
        a, b = r.sentence_pro.split(" "), r.sentence_anti.split(" ")
        i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        if i is None or i == 0:
            continue
        word, other = (re.sub(r"\W", "", w).lower() for w in (a[i], b[i]))
        pair = _PAIRS.get(frozenset((word, other)))
        if pair is None:
            continue
        rows.append(
            {
                "type": r.type,
                "line": r.line,
                "pro": r.sentence_pro,
                "anti": r.sentence_anti,
                "prefix": " ".join(a[:i]),
                "pronoun": word,
                "male": pair[0],
                "female": pair[1],
                "pro_gender": "male" if word == pair[0] else "female",
                "occupations": tuple(_occupations_in(r.sentence_pro, words)),
            }
        )
    return pd.DataFrame(rows)


def winogender_pairs(path: str | Path | None = None) -> pd.DataFrame:
    """Winogender male / female sentence pairs (same template, participant and answer) with the occupation's
    BLS share of women and ``pro`` ("male" if that share is under 50 %, else "female")."""
    sents = pd.read_csv(external_file("winogender", "all_sentences.tsv", path), sep="\t")
    parts = sents["sentid"].str.replace(".txt", "", regex=False).str.split(".", expand=True)
    sents = sents.assign(occupation=parts[0], participant=parts[1], answer=parts[2], gender=parts[3])
    key = ["occupation", "participant", "answer"]
    male = sents[sents.gender == "male"].set_index(key)["sentence"].rename("male")
    female = sents[sents.gender == "female"].set_index(key)["sentence"].rename("female")
    out = pd.concat([male, female], axis=1, join="inner").reset_index()
    stats = pd.read_csv(external_file("winogender", "occupations-stats.tsv", path), sep="\t")
    out = out.merge(stats[["occupation", "bls_pct_female"]], on="occupation", how="left")
    out["pro"] = ["male" if p < 50 else "female" for p in out["bls_pct_female"]]
    return out


def load_bolukbasi(path: str | Path | None = None) -> pd.DataFrame:
    """Bolukbasi et al. professions: word, definitional and stereotypical scores in [-1 female, +1 male]."""
    data = json.loads(external_file("professions_bolukbasi", "professions.json", path).read_text())
    df = pd.DataFrame(data, columns=["word", "definitional", "stereotypical"])
    df["word"] = df["word"].str.replace("_", " ")
    return df

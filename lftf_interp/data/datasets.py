"""GenBiasEval / GenHintEval as tidy DataFrames and the :class:`BiasDataset` type other stages reuse."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lftf_interp.data.build import DATASET_VERSION, FILES
from lftf_interp.errors import DatasetError

# Gender-neutral sentence openings that never call for a pronoun (BMI control, KL retention term).
NEUTRAL_PROMPTS = [
    "The weather today is",
    "Water boils at a temperature of",
    "The capital of France is",
    "Two plus two equals",
    "The train to the city leaves at",
    "A good recipe for bread needs",
    "The stock market closed",
    "In the morning the sun",
    "The library opens every day at",
    "Most plants need sunlight and",
    "The new bridge across the river",
    "The museum shows paintings from",
    "After the rain, the streets were",
    "The price of coffee rose",
    "The first chapter of the book",
    "A small village in the mountains",
]

DATASETS = {"genbias": "genbias.jsonl", "genhint": "genhint.jsonl"}
SPLITS = ("train", "validation", "test")
REQUIRED = {
    "genbias": ("prompt", "occupation", "template_id", "split"),
    "genhint": ("prompt", "occupation", "template_id", "split", "label", "hint_kind", "hint_gender"),
}


def sample_rows(df: pd.DataFrame, n: int | None, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of ``n`` rows kept in their original order (all rows when n is None or >= len)."""
    if n is not None and n < len(df):
        df = df.sample(n=n, random_state=seed).sort_index()
    return df


@dataclass
class BiasDataset:
    """Prompts cut right before a pronoun, with per-prompt metadata.

    ``kind`` is "bias" (no label: the model should be indifferent between he and she) or "hint" (``label``
    column holds the hinted pronoun, "he" or "she").
    """

    name: str
    split: str
    df: pd.DataFrame
    kind: str = "bias"
    version: str = DATASET_VERSION
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("bias", "hint"):
            raise DatasetError(f"BiasDataset kind must be 'bias' or 'hint', got {self.kind!r}.")
        if len(self.df) == 0:
            raise DatasetError(
                f"Dataset {self.name!r} split {self.split!r} is empty: nothing to evaluate. "
                "Check the split name and any filters you applied."
            )
        if "prompt" not in self.df.columns:
            raise DatasetError(
                f"Dataset {self.name!r} has no 'prompt' column (columns: {list(self.df.columns)})."
            )
        if self.kind == "hint":
            if "label" not in self.df.columns:
                raise DatasetError(f"Hint dataset {self.name!r} needs a 'label' column (he/she).")
            bad = sorted(set(self.df["label"]) - {"he", "she"})
            if bad:
                raise DatasetError(
                    f"Hint dataset {self.name!r} has labels {bad}; labels must be 'he' or 'she'."
                )
        self.df = self.df.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.df)

    @property
    def prompts(self) -> list[str]:
        return self.df["prompt"].tolist()

    def subset(self, n: int | None = None, seed: int = 0, **equals) -> BiasDataset:
        """Rows matching ``column=value`` filters, then (optionally) a seeded sample of ``n`` rows."""
        df = self.df
        for col, val in equals.items():
            df = df[df[col].isin(val if isinstance(val, list | tuple | set) else [val])]
        df = sample_rows(df, n, seed)
        return BiasDataset(self.name, self.split, df.copy(), self.kind, self.version, dict(self.meta))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "split": self.split,
            "kind": self.kind,
            "version": self.version,
            "n": len(self),
        }


def read_jsonl(path: str | Path, required: tuple[str, ...] = ("prompt",)) -> pd.DataFrame:
    """Read a JSONL file of records; a malformed line (bad JSON, not UTF-8, a missing field, a ``prompt`` that
    is not text, a ``split`` or ``label`` that is not a name) raises :class:`DatasetError` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Dataset file {str(path)!r} does not exist.")
    rows = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DatasetError(
                    f"{path}:{lineno}: not UTF-8 text (byte {raw[e.start]:#04x}); save the file as UTF-8."
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(
                    f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno}). Fix or delete that line; "
                    "each line must be one JSON object."
                ) from None
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}.")
            missing = [k for k in required if k not in row]
            if missing:
                raise DatasetError(
                    f"{path}:{lineno}: missing field(s) {missing}; every record needs {list(required)}."
                )
            _check_fields(row, path, lineno)
            rows.append(row)
    if not rows:
        raise DatasetError(
            f'{path} holds no records; give one JSON object per line, e.g. {{"prompt": "The nurse said that"}}.'
        )
    return pd.DataFrame(rows)


INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}  # zero-width and soft-hyphen marks


def visible(text: str) -> bool:
    """Whether ``text`` has a character one can see (not only spaces and zero-width marks)."""
    return any(not (c.isspace() or c in INVISIBLE) for c in text)


def _check_fields(row: dict, path: Path, lineno: int) -> None:
    prompt = row.get("prompt")
    if "prompt" in row and not (isinstance(prompt, str) and visible(prompt)):
        got = (
            "text with nothing visible"
            if isinstance(prompt, str)
            else f"{type(prompt).__name__} {str(prompt)[:40]!r}"
        )
        raise DatasetError(f"{path}:{lineno}: 'prompt' is {got}; every prompt is non-empty text.")
    for key in ("split", "label"):
        if key in row and row[key] is not None and not (isinstance(row[key], str) and row[key].strip()):
            raise DatasetError(
                f"{path}:{lineno}: {key!r} is {type(row[key]).__name__} {str(row[key])[:40]!r}; it must be a "
                f"name{', one of ' + str(list(SPLITS)) if key == 'split' else ' (a group of the axis)'}."
            )


def load_frame(name: str = "genbias", path: str | Path | None = None) -> pd.DataFrame:
    """All splits of a shipped dataset (or a JSONL file in the same format) as a DataFrame."""
    if name not in DATASETS:
        raise DatasetError(f"Unknown dataset {name!r}; known: {sorted(DATASETS)}.")
    return read_jsonl(path or FILES / DATASETS[name], REQUIRED[name])


def load_dataset(name: str = "genbias", split: str = "test", path: str | Path | None = None) -> BiasDataset:
    """One split of GenBiasEval ("genbias") or GenHintEval ("genhint") as a :class:`BiasDataset`."""
    df = load_frame(name, path)
    available = sorted(df["split"].unique())
    if split not in available:
        raise DatasetError(f"Dataset {name!r} has no split {split!r}; available splits: {available}.")
    kind = "hint" if name == "genhint" else "bias"
    return BiasDataset(
        name, split, df[df["split"] == split].copy(), kind=kind, meta={"path": str(path or "")}
    )


def manifest() -> dict:
    return json.loads((FILES / "manifest.json").read_text())

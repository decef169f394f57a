"""Datasets: shipped GenBiasEval / GenHintEval (JSONL) and loaders for external bias sets."""

from lftf_interp.data.axis import DEFAULT_AXIS, BiasAxis, load_axis, shipped_axes
from lftf_interp.data.build import DATASET_VERSION
from lftf_interp.data.datasets import (
    NEUTRAL_PROMPTS,
    SPLITS,
    BiasDataset,
    load_dataset,
    load_frame,
    manifest,
    read_jsonl,
)
from lftf_interp.data.external import (
    load_bolukbasi,
    load_winobias,
    load_winobias_occupations,
    load_winogender,
    winogender_prompts,
)
from lftf_interp.data.lexicon import HINTS, OCCUPATIONS, TEMPLATES

__all__ = [
    "DATASET_VERSION",
    "DEFAULT_AXIS",
    "HINTS",
    "NEUTRAL_PROMPTS",
    "OCCUPATIONS",
    "SPLITS",
    "TEMPLATES",
    "BiasAxis",
    "BiasDataset",
    "load_axis",
    "load_bolukbasi",
    "load_dataset",
    "load_frame",
    "load_winobias",
    "load_winobias_occupations",
    "load_winogender",
    "manifest",
    "read_jsonl",
    "shipped_axes",
    "winogender_prompts",
]

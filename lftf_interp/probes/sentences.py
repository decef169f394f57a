"""The sentence benchmarks read from files you give (CrowS-Pairs, BBQ, your own pairs; readers in
:mod:`lftf_interp.data.pairsets`, scores in :mod:`lftf_interp.metrics.pairs`) as probes: flat keys for validity
records and compare rows, and the per-item frames.

Keys, with ``<name>`` a bias type, target or category in lower case (spaces as ``_``):

* ``crows_<name>`` / ``pairs_<name>`` (with ``_ci``): 100 × the share of pairs whose stereotyping sentence is the
  more likely (50 = none); ``crows_gap_<name>`` / ``pairs_gap_<name>``: the mean log-likelihood gap in nats;
  ``pairs_lms_<name>`` where the file gives unrelated sentences;
* ``bbq_accuracy_ambig_<name>``, ``bbq_accuracy_disambig_<name>``, ``bbq_bias_ambig_<name>``,
  ``bbq_bias_disambig_<name>``;
* ``<probe>_file_sha256``: the file that was read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lftf_interp.data.pairsets import read_bbq, read_crows, read_pairs
from lftf_interp.metrics.pairs import bbq_answers, bbq_scores, crows_scores, pair_scores
from lftf_interp.store import sha256_file

FILE_PROBES = ("crows", "bbq", "pairs")  # each runs when its file is given
READERS = {"crows": read_crows, "bbq": read_bbq, "pairs": read_pairs}
BBQ_KEYS = ("accuracy_ambig", "accuracy_disambig", "bias_ambig", "bias_disambig")


def _key(name) -> str:
    return str(name).lower().replace(" ", "_")


def file_probe(
    name: str, model, path: str | Path, n_boot: int = 1000, seed: int = 0
) -> tuple[dict, pd.DataFrame]:
    """Probe ``name`` (one of :data:`FILE_PROBES`) on the file at ``path`` → (flat keys, per-item frame)."""
    data = READERS[name](path)
    flat: dict = {f"{name}_file_sha256": sha256_file(Path(path))}
    if name == "bbq":
        answered = bbq_answers(model, data)
        for _, r in bbq_scores(answered).iterrows():
            flat |= {f"bbq_{k}_{_key(r['category'])}": float(r[k]) for k in BBQ_KEYS}
        return flat, answered
    scorer, index = (crows_scores, "bias_type") if name == "crows" else (pair_scores, "target")
    table, scored = scorer(model, data, n_boot, seed)
    for _, r in table.iterrows():
        t = _key(r[index])
        flat |= {f"{name}_{t}": r["score"], f"{name}_{t}_ci": r["score_ci"], f"{name}_gap_{t}": r["gap"]}
        if (lms := r.get("lms", float("nan"))) == lms:  # NaN: this target has no unrelated sentence
            flat[f"{name}_lms_{t}"] = lms
    return flat, scored


__all__ = ["FILE_PROBES", "READERS", "file_probe"]

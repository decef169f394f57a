"""All of :mod:`.probes` on one model, as configured: one flat record (what compare rows and metrics.json
hold) and the per-item frames (what the notebook plots)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pandas as pd

from lftf_interp.configs import Config, setting
from lftf_interp.data import DEFAULT_AXIS, load_axis
from lftf_interp.errors import ConfigError
from lftf_interp.probes import beyond as probes
from lftf_interp.probes.sentences import FILE_PROBES, READERS, file_probe
from lftf_interp.retain import CORPORA, RetainConfig, corpus_documents, window_documents
from lftf_interp.retain.stereoset import evaluate_stereoset, split_of_targets, ss_lms_icat

PROBES = ("gendered", "slopes", "winobias", "winogender", "math", "hints", "paperstyle", "long_context")
# on request only (``--probes``): a diagnosis, or the held-out part of WinoBias dev that chooses term weights
EXTRA_PROBES = ("winobias_parts", "winobias_select", "stereoset")
# the probes that run on any bias axis; the others read gendered material (the axis file's ``gendered: true``)
AXIS_PROBES = ("long_context", "stereoset")


def axis_probes(axis: str) -> tuple[str, ...]:
    """The default probes on ``axis``: every default probe on a gendered axis, else :data:`AXIS_PROBES`."""
    return PROBES if load_axis(axis).gendered else AXIS_PROBES


@dataclass
class ValidityConfig(Config):
    """Which probes run, and their sizes. ``external``: a folder holding winobias/, winogender/ and
    professions_bolukbasi/ (None: :func:`~lftf_interp.data.external.external_root`, else the pinned upstream download). ``axis``: the bias
    axis the probes score; on an axis that is not gendered only :data:`AXIS_PROBES` run. ``crows`` / ``bbq`` /
    ``pairs``: files of those sentence benchmarks (:mod:`.sentences`); each one given adds its probe, on any axis,
    and is read here, so a malformed file is refused before any model loads."""

    probes: tuple[str, ...] = setting(  # None: the axis's default probes (set in __post_init__)
        None,
        f"The probes (default: {', '.join(PROBES)} on a gendered axis, else {', '.join(AXIS_PROBES)}); on "
        f"request also {', '.join(EXTRA_PROBES)}.",
    )
    external: str | None = setting(
        None,
        "Folder holding winobias/, winogender/, professions_bolukbasi/ (default: $LFTF_EXTERNAL, else a "
        "shared/external folder above the working directory or the checkout, else the pinned upstream files).",
    )
    math_n: int = setting(300, "Arithmetic items.")
    context_lengths: tuple[int, ...] = setting(
        (0, 64, 256, 1024), "Context lengths (tokens of neutral text) for long_context."
    )
    context_n: int = setting(64, "Prompts per context length (long_context).")
    n_boot: int = setting(1000, "Bootstrap resamples for the 95 % CIs.")
    seed: int = setting(0, "Seed of the item subsets and the bootstrap.")
    axis: str = setting(
        DEFAULT_AXIS,
        f"The bias axis the probes score (shipped name or file); off a gendered axis only {', '.join(AXIS_PROBES)} "
        "run.",
    )
    crows: str | None = setting(None, "A CrowS-Pairs CSV (the authors' columns): also its pair score.")
    bbq: str | None = setting(None, "A BBQ JSONL file (the authors' format): also its bias scores.")
    pairs: str | None = setting(
        None, "A JSONL of your own sentence pairs (`lftf evaluate --pairs`'s format): also their pair score."
    )

    def __post_init__(self) -> None:
        self.probes = tuple(self.probes) if self.probes is not None else axis_probes(self.axis)
        self.probes = tuple(dict.fromkeys((*self.probes, *(p for p in FILE_PROBES if getattr(self, p)))))
        for p in (p for p in self.probes if p in FILE_PROBES):
            if not getattr(self, p):
                raise ConfigError(f"Probe {p} reads a file: give --{p} FILE (the probe then runs by itself).")
            READERS[p](getattr(self, p))  # a malformed file is refused here, before any model loads
        self.context_lengths = tuple(int(x) for x in self.context_lengths)
        if unknown := sorted(set(self.probes) - set(PROBES) - set(EXTRA_PROBES) - set(FILE_PROBES)):
            raise ConfigError(
                f"Unknown validity probe(s) {unknown}; choose from {list(PROBES + EXTRA_PROBES)}, or give "
                f"{' / '.join('--' + p for p in FILE_PROBES)} FILE."
            )
        if any(x < 0 for x in self.context_lengths):
            raise ConfigError(f"context_lengths must be >= 0 tokens, got {self.context_lengths}.")
        if self.math_n < 1 or self.context_n < 1:
            raise ConfigError("math_n and context_n must be >= 1.")
        gendered = load_axis(self.axis).gendered  # an unknown axis or a bad axis file is refused here
        if not gendered and (gender := [p for p in self.probes if p not in (*AXIS_PROBES, *FILE_PROBES)]):
            raise ConfigError(
                f"Probes {gender} read gendered material; axis {self.axis!r} is not gendered (its file has no "
                f"gendered: true): choose from {list(AXIS_PROBES)}."
            )

    def for_axis(self, axis: str) -> ValidityConfig | None:
        """These probes as they run on ``axis``: those reading gendered material dropped off a gendered axis
        (None if none is left)."""
        if load_axis(axis).gendered:
            return replace(self, axis=axis)
        kept = tuple(p for p in self.probes if p in (*AXIS_PROBES, *FILE_PROBES))
        return replace(self, probes=kept, axis=axis) if kept else None

    @classmethod
    def quick(cls, **kw) -> ValidityConfig:
        """Every probe, smaller (tests, the sweep): 100 math items, contexts 0 / 256, 16 prompts, 200 resamples."""
        return cls(**{"math_n": 100, "context_lengths": (0, 256), "context_n": 16, "n_boot": 200, **kw})


# The probes of every compare row: every default probe and StereoSet (SS / LMS per bias type), long context
# shortened to 0 and 1,024 tokens, 32 + 32 prompts.
COMPARE_VALIDITY = ValidityConfig(probes=(*PROBES, "stereoset"), context_lengths=(0, 1024), context_n=32)


def _path(cfg: ValidityConfig, name: str) -> Path | None:
    return Path(cfg.external) / name if cfg.external else None


def _renamed(res: tuple[dict, pd.DataFrame], old: str, new: str) -> tuple[dict, pd.DataFrame]:
    return {k.replace(old, new, 1): v for k, v in res[0].items()}, res[1]


def validity_report(
    model, cfg: ValidityConfig = ValidityConfig(), say: Callable[[str], None] | None = None
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Run the configured probes on ``model`` → (flat metrics, {probe: per-item frame})."""
    runs = {
        "gendered": lambda: probes.gendered_knowledge(model, n_boot=cfg.n_boot, seed=cfg.seed, axis=cfg.axis),
        "slopes": lambda: probes.gender_slopes(
            model, _path(cfg, "professions_bolukbasi"), n_boot=cfg.n_boot, seed=cfg.seed, axis=cfg.axis
        ),
        "winobias": lambda: probes.winobias_preference(
            model, _path(cfg, "winobias"), "test", cfg.n_boot, cfg.seed
        ),
        "stereoset": lambda: stereoset_probe(model, cfg.n_boot, cfg.seed),
        "winobias_select": lambda: _renamed(
            probes.winobias_preference(model, _path(cfg, "winobias"), "dev-select", cfg.n_boot, cfg.seed),
            "winobias_",
            "winobias_select_",
        ),
        "winobias_parts": lambda: probes.winobias_parts(
            model, _path(cfg, "winobias"), "test", cfg.n_boot, cfg.seed
        ),
        "winogender": lambda: probes.winogender_preference(
            model, _path(cfg, "winogender"), cfg.n_boot, cfg.seed
        ),
        "math": lambda: probes.math_probe(model, cfg.math_n, cfg.seed, cfg.n_boot),
        "hints": lambda: probes.hint_kinds(model, cfg.n_boot, cfg.seed, cfg.axis),
        "paperstyle": lambda: probes.paper_style(model, cfg.n_boot, cfg.seed, cfg.axis),
        "long_context": lambda: probes.long_context(
            model, cfg.context_lengths, cfg.context_n, cfg.seed, cfg.n_boot, cfg.axis
        ),
    }
    for name in FILE_PROBES:
        runs[name] = partial(file_probe, name, model, getattr(cfg, name), cfg.n_boot, cfg.seed)
    flat, frames = {}, {}
    for name in cfg.probes:
        if say:
            say(f"validity · {name}")
        m, df = runs[name]()
        flat.update(m)
        frames[name] = df
    return flat, frames


def stereoset_probe(model, n_boot: int = 1000, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """StereoSet intrasentence per bias type (:func:`~lftf_interp.retain.stereoset.evaluate_stereoset`) as flat
    keys: ``ss_<type>`` (with ``_ci`` over target terms), ``lms_<type>``, ``icat_<type>``; types gender, race,
    religion, profession and overall. The same scores on the test split's target terms only (what a method
    trained on the fit terms is judged on): ``ss_test_<type>``, ``ss_test_<type>_ci``, ``lms_test_<type>``."""
    table, scored = evaluate_stereoset(model, n_boot=n_boot, seed=seed)
    test = scored[scored["target"].map(split_of_targets()) == "test"]
    flat: dict = {}
    for _, r in table.iterrows():
        b = r["bias_type"]
        flat |= {f"ss_{b}": r["ss"], f"ss_{b}_ci": r["ss_ci"], f"lms_{b}": r["lms"], f"icat_{b}": r["icat"]}
    for _, r in ss_lms_icat(test, n_boot, seed).iterrows():
        b = r["bias_type"]
        flat |= {f"ss_test_{b}": r["ss"], f"ss_test_{b}_ci": r["ss_ci"], f"lms_test_{b}": r["lms"]}
    return flat, table


def neutral_documents(
    model, seed: int = 0, validity: ValidityConfig | None = None, retain: RetainConfig | None = None
) -> list[str]:
    """Corpus documents (every corpus of the retention suite, in a fixed order) that neither the long-context
    probe (with ``validity``'s prompts, lengths and axis, at ``seed``) nor the retention windows (``retain``) read: the
    neutral text of the fine-tune's context term (``tune(documents=...)``)."""
    validity, retain = validity or ValidityConfig(), retain or RetainConfig()
    used = {(c, d) for c, d, _ in window_documents(model, retain)}
    if max(validity.context_lengths, default=0) > 0:  # as probes.long_context draws them
        ax = load_axis(validity.axis)
        hints = len(ax.hint_prompts("test")) if ax.has_hints else 0
        n = min(validity.context_n, len(ax.bias_prompts("test"))) + min(validity.context_n, hints)
        draws = probes.context_draws(model, n, seed, probes.CONTEXT_CORPORA, max(validity.context_lengths))
        used |= {(c, d) for c, d, _, _ in draws}
    return [t for c in CORPORA for d, t in enumerate(corpus_documents(c)) if (c, d) not in used]


__all__ = [
    "AXIS_PROBES",
    "axis_probes",
    "COMPARE_VALIDITY",
    "EXTRA_PROBES",
    "PROBES",
    "ValidityConfig",
    "neutral_documents",
    "stereoset_probe",
    "validity_report",
]

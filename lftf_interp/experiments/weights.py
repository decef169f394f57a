"""Choosing a training term's weight on held-out material only: one compare row per weight, scored on the
validation prompts and on WinoBias dev-select (whose occupations the WinoBias terms never train on: they train on
dev-fit), then the rule of :func:`choose_weight`. WinoBias test and the test prompts are not read."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pandas as pd

from lftf_interp.errors import ConfigError
from lftf_interp.experiments.compare import BUDGET, CompareConfig, retain_config
from lftf_interp.experiments.jobs import ExecutorConfig
from lftf_interp.experiments.methods import MethodSpec, default_methods
from lftf_interp.experiments.pipeline import compare_to
from lftf_interp.experiments.rundir import merged_rows
from lftf_interp.models.loading import load_model
from lftf_interp.probes import ValidityConfig
from lftf_interp.store import read_rows, write_atomic, write_json
from lftf_interp.tune import TuneConfig

SELECT_PROBES = ("winobias_select",)  # WinoBias dev-select: the occupations dev-fit leaves out
UB_MIN, KL_MAX, AFGB_SLACK = 0.95, 0.02, 0.03  # the rule's defaults (the goal table's UB and KL bounds)


def weight_terms() -> list[str]:
    """The TuneConfig fields a search can vary: the weights of the loss terms."""
    return [f.name for f in fields(TuneConfig) if f.name.endswith("_weight")]


def weight_specs(base: MethodSpec, term: str, weights: Sequence[float]) -> list[MethodSpec]:
    """``base`` with ``term`` set to each weight (named ``<base>@<term>=<w>``). The WinoBias terms train on
    dev-fit, so that dev-select stays unseen."""
    if term not in weight_terms():
        raise ConfigError(f"Unknown weight {term!r}; choose from {', '.join(weight_terms())}.")
    if base.tune is None:
        raise ConfigError(f"Method {base.name!r} trains nothing; give a trained method as the base.")
    if not weights or any(not math.isfinite(w) or w < 0 for w in weights) or len(set(weights)) < len(weights):
        raise ConfigError(f"weights must be distinct finite numbers >= 0, got {list(weights)}.")
    return [
        MethodSpec(
            f"{base.name}@{term}={w:g}",
            f"{base.description}; {term} = {w:g}",
            {**base.tune, term: float(w), "winobias_split": "dev-fit"},
        )
        for w in weights
    ]


def choose_weight(
    rows: pd.DataFrame, ub_min: float = UB_MIN, kl_max: float = KL_MAX, afgb_slack: float = AFGB_SLACK
) -> pd.DataFrame:
    """Mark the eligible rows and the chosen one. Eligible: hint following ≥ ``ub_min``, KL ≤ ``kl_max`` and a
    validation bias within ``afgb_slack`` of the lowest row's; chosen: the eligible weight with the lowest
    dev-select pro-stereotypical preference (ties: the smaller weight). Means over seeds first.

    ``rows``: one per (weight, seed) with ``weight``, ``afgb``, ``ub``, ``kl`` and ``winobias_select_pro``."""
    by = (
        rows.groupby("weight", as_index=False)[["afgb", "ub", "kl", "winobias_select_pro"]]
        .mean()
        .sort_values("weight")
    )
    by["seeds"] = rows.groupby("weight").size().reindex(by.weight).to_numpy()
    if "winobias_select_pro_ci" in rows:  # the pairs' 95 % interval, its bounds averaged over seeds
        bounds = pd.DataFrame(rows.winobias_select_pro_ci.tolist(), columns=["lo", "hi"]).assign(
            weight=rows.weight
        )
        mean = bounds.groupby("weight")[["lo", "hi"]].mean().reindex(by.weight)
        by["select_lo"], by["select_hi"] = mean.lo.to_numpy(), mean.hi.to_numpy()
    by["eligible"] = (
        (by.ub >= ub_min) & (by.kl.fillna(0.0) <= kl_max) & (by.afgb <= by.afgb.min() + afgb_slack)
    )
    by["chosen"] = False
    if by.eligible.any():
        best = by[by.eligible].sort_values(["winobias_select_pro", "weight"]).index[0]
        by.loc[best, "chosen"] = True
    return by.reset_index(drop=True)


def search_table(by: pd.DataFrame, term: str) -> str:
    """The search as markdown: one line per weight, the chosen one marked."""
    lines = [
        f"| {term} | seeds | validation bias ↓ | hint following ↑ | KL | WinoBias dev-select pro ↓ | eligible |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in by.itertuples():
        mark = " **chosen**" if r.chosen else ""
        ci = f" [{r.select_lo:.3f}, {r.select_hi:.3f}]" if "select_lo" in by else ""
        lines.append(
            f"| {r.weight:g}{mark} | {r.seeds} | {r.afgb:.3f} | {r.ub:.3f} | {r.kl:.4f} | "
            f"{r.winobias_select_pro:.3f}{ci} | {'yes' if r.eligible else 'no'} |"
        )
    if "select_lo" in by:
        lines.append(
            "\nThe dev-select interval is over its pairs (95 %, bounds averaged over seeds): weights whose intervals"
            " overlap are not told apart by it, and the rule then still takes the lower mean."
        )
    return "\n".join(lines) + "\n"


def _base(name: str, n_layers: int) -> MethodSpec:
    specs = {s.name: s for s in default_methods(n_layers)}
    if name not in specs:
        raise ConfigError(f"Unknown base method {name!r}; choose from {', '.join(specs)}.")
    return specs[name]


def _f(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class WeightSearch:
    """What a weight search varies and how it chooses; checked when built, before any model loads (the CLI's
    ``lftf weight-search`` options take their defaults and help from these fields)."""

    term: str = _f("winobias_sentence_weight", "The TuneConfig weight to vary (a field ending in _weight).")
    weights: tuple[float, ...] = _f((1.0, 2.0, 4.0), "The weights to try.")
    base: str = _f("lftf-sentence", "The `lftf compare` method whose other settings every row keeps.")
    seeds: tuple[int, ...] = _f((0,), "Seeds per weight.")
    retain: str = _f("small", "Retention probe for the KL bound: 'small' or 'default'.")
    budget: dict | None = _f(None, "TuneConfig overrides of the shared budget (e.g. {'steps': 40}).")
    ub_min: float = _f(UB_MIN, "Eligible: validation hint following at least this.")
    kl_max: float = _f(KL_MAX, "Eligible: KL to the base model at most this.")
    afgb_slack: float = _f(AFGB_SLACK, "Eligible: validation bias within this of the lowest row's.")

    def __post_init__(self) -> None:
        self.weights = tuple(float(w) for w in self.weights)
        self.seeds = tuple(int(s) for s in self.seeds)
        weight_specs(_base(self.base, 2), self.term, self.weights)
        self.compare_config("")  # the budget, the seeds and the retention probe

    def compare_config(self, model: str) -> CompareConfig:
        """The grid the rows form: the validation split, the dev-select probe, the shared budget."""
        return CompareConfig(
            model=model,
            seeds=self.seeds,
            split="validation",
            retain=retain_config(self.retain),
            validity=ValidityConfig(probes=SELECT_PROBES),
            budget={**BUDGET, **(self.budget or {})},
        )


def weight_search_to(
    model: str,
    out: Path,
    search: WeightSearch | None = None,
    executor: ExecutorConfig | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """``search.base`` (a row of :func:`default_methods`) trained with each weight of ``search.term`` →
    OUT/rows.jsonl (a compare grid on the validation split with the dev-select probe; resumable), OUT/search.md
    and OUT/choice.json (:func:`choose_weight`). Returns the per-weight table."""
    search = search or WeightSearch()
    grid = weight_specs(_base(search.base, load_model(model).cfg.n_layers), search.term, search.weights)
    compare_to(model, out, search.compare_config(model), methods=grid, executor=executor, on_row=on_row)
    by_name = {s.name: w for s, w in zip(grid, search.weights, strict=True)}
    rows = pd.DataFrame(
        [
            {**r, "weight": by_name[r["method"]]}
            for r in merged_rows(read_rows(out / "rows.jsonl"))
            if r["method"] in by_name
        ]
    )
    by = choose_weight(rows, search.ub_min, search.kl_max, search.afgb_slack)
    write_atomic(out / "search.md", search_table(by, search.term))
    chosen = by[by.chosen]
    write_json(
        out / "choice.json",
        {
            **asdict(search),
            "chosen": float(chosen.weight.iloc[0]) if len(chosen) else None,
            "rows": json.loads(by.to_json(orient="records")),
        },
    )
    return by


__all__ = [
    "WeightSearch",
    "choose_weight",
    "search_table",
    "weight_search_to",
    "weight_specs",
    "weight_terms",
]

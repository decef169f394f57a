"""LFTF against its baselines on the same data, budget and seed: one row per (method, seed).

Methods are data (:class:`MethodSpec`): which parameters are trained (TuneConfig overrides) or, for the
prompt baseline, which instruction is prepended. ``run_method`` trains a fresh copy of the base model,
evaluates AFGB/UB/mass on the test split and capability retention against one shared
:class:`~lftf_interp.retain.RetentionReference`; ``aggregate`` pools seeds (mean and a t-interval).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lftf_interp.configs import Config, setting
from lftf_interp.data.axis import DEFAULT_AXIS, load_axis
from lftf_interp.errors import ConfigError, LftfError
from lftf_interp.experiments.methods import (
    AXIS_INSTRUCTION,
    RANDOM_BLOCK,
    TWIN_BLOCKS,
    MethodSpec,
    default_methods,
)
from lftf_interp.experiments.sentences import twin_blocks
from lftf_interp.experiments.tables import aggregate, markdown_table, validity_table
from lftf_interp.locate import choose_blocks, rank_for_tuning
from lftf_interp.locate.choose import AUTO
from lftf_interp.metrics.groups import evaluate_axis
from lftf_interp.models.runner import reuse_prefix
from lftf_interp.options import items
from lftf_interp.probes import ValidityConfig, neutral_documents, validity_report
from lftf_interp.retain import (
    RetainConfig,
    RetentionReference,
    compare_retention,
    compute_reference,
    compute_retention,
)
from lftf_interp.retain import retention_summary as _retention_summary
from lftf_interp.retain.stereoset import pair_material
from lftf_interp.tune import TuneConfig, tune

# Shared budget of every trained method (the best LFTF setting of notebook 03's trials).
BUDGET = TuneConfig.budget()  # the shared training budget: TuneConfig's defaults


@dataclass
class CompareConfig(Config):
    """Every method x seed on one shared budget (``lftf compare``)."""

    model: str = setting("smollm2-135m", "The base model (a registry name or a Hugging Face directory).")
    seeds: tuple[int, ...] = setting((0,), "Seeds of every trained method.")
    split: str = setting("test", "The split every row is scored on.")
    budget: dict = setting(factory=lambda: dict(BUDGET), help="The shared TuneConfig budget.", api_only=True)
    retain: RetainConfig = setting(
        factory=RetainConfig, help="The capability retention probe.", api_only=True
    )
    n_boot: int = setting(1000, "Bootstrap resamples for the 95 % CIs.")
    axis: str = setting(
        DEFAULT_AXIS,
        "The bias axis every method is trained and scored on (shipped name or file); a row's afgb / ub hold "
        "its bias score / hint following (AFGB / UB on a two-group axis).",
    )
    validity: ValidityConfig | None = setting(
        None, "The probes beyond the template per row (those that run on the axis).", api_only=True
    )

    def __post_init__(self) -> None:
        self.seeds = tuple(int(s) for s in self.seeds)
        if isinstance(self.validity, dict):
            self.validity = ValidityConfig.from_dict(self.validity)
        if self.validity is not None:  # the probes as they run on this axis
            self.validity = self.validity.for_axis(self.axis)
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed.")
        if len(set(self.seeds)) < len(self.seeds):
            raise ConfigError(
                f"seeds {list(self.seeds)} repeat a seed: one seed's run would count as two; give each seed once."
            )
        TuneConfig.from_dict(self.budget)  # the shared budget, checked before any model loads


def score_on(
    model, axis: str, split: str = "test", instruction: str | None = None, n_boot: int = 1000, seed: int = 0
) -> dict:
    """afgb, ub, mass (with CIs) on the split: the axis's bias score, hint following and group mass
    (:func:`~lftf_interp.metrics.groups.evaluate_axis`; on a two-group axis AFGB and UB, with the paper's AFGB
    beside them). ``instruction`` is prepended to every prompt."""
    ax = load_axis(axis)
    data = None
    if instruction is not None:
        frames = [ax.bias_prompts(split)] + ([ax.hint_prompts(split)] if ax.has_hints else [])
        data = pd.concat(frames, ignore_index=True)
        data["prompt"] = instruction + data["prompt"]
    m, _, _ = evaluate_axis(model, ax, split, data, n_boot=n_boot, seed=seed)
    return {
        "afgb": m["bias"],
        "afgb_ci": m["bias_ci"],
        **{k: m[k] for k in ("afgb_paper", "afgb_paper_ci") if k in m},
        "ub": m.get("hint_following", float("nan")),
        "ub_ci": m.get("hint_following_ci"),
        "mass": m["mass"],
        "mass_ci": m["mass_ci"],
        **{k: m[k] for k in ("bias_over_orders", "bias_over_orders_ci") if k in m},
    }


def draw_random_block(n_layers: int, avoid: Sequence[int], seed: int = 0) -> int:
    """A seeded draw among the blocks not in ``avoid`` (all blocks if that leaves none).

    The random-block baseline must not land on a block another row already tunes (on SmolLM2 an unconstrained
    draw picked block 24, BMI's own pick), so ``avoid`` holds the first, middle, last and top-3 BMI blocks."""
    candidates = [b for b in range(n_layers) if b not in set(avoid)] or list(range(n_layers))
    return int(np.random.default_rng(seed).choice(candidates))


def resolve_tune(model, overrides: dict, seed: int) -> dict:
    """A method's TuneConfig overrides with its block made concrete: ``"auto"`` → BMI's top ``top_k`` blocks
    past ``bmi_exclude`` (the locate stage's :func:`~lftf_interp.locate.choose_blocks`, ranked on training
    prompts drawn with ``seed``); ``"twin"`` → twin patching's top ``top_k`` blocks on StereoSet sentences
    (:func:`~lftf_interp.experiments.sentences.twin_blocks`); ``"random"`` → :func:`draw_random_block` away from
    the other rows' blocks."""
    overrides = dict(overrides)
    top_k, exclude = overrides.pop("top_k", 1), overrides.pop("bmi_exclude", AUTO)
    draw_seed = overrides.pop("draw_seed", 0)
    exclude = exclude if isinstance(exclude, str) else tuple(exclude)
    axis = overrides.get("axis", DEFAULT_AXIS)
    if overrides.get("block") == AUTO:
        overrides["block"] = tuple(choose_blocks(model, top_k, exclude, seed=seed, axis=axis))
    elif overrides.get("block") == TWIN_BLOCKS:
        overrides["block"] = tuple(twin_blocks(model, top_k, exclude, axis))
    elif overrides.get("block") == RANDOM_BLOCK:
        n = model.cfg.n_layers
        top3 = rank_for_tuning(model, 1, exclude, seed=seed, axis=axis).ranked[
            :3
        ]  # (fewer where fewer blocks are left)
        overrides["block"] = draw_random_block(n, [0, n // 2, n - 1, *top3], seed=draw_seed)
    return overrides


def tune_documents(
    model, cfg: TuneConfig, validity: ValidityConfig | None = None, retain: RetainConfig | None = None
) -> list[str] | None:
    """The neutral text ``tune(documents=...)`` needs when ``cfg`` turns the context or the counterfactual term
    on (corpus documents that neither the long-context probe at ``cfg.seed`` nor the retention windows read);
    else None."""
    wanted = cfg.context_weight > 0 or cfg.cda_weight > 0
    return neutral_documents(model, cfg.seed, validity, retain) if wanted else None


def fixed_blocks(methods: Sequence[MethodSpec]) -> list[int]:
    """Blocks the methods name by index (a retention reference caches the residual entering them)."""
    out = set()
    for m in methods:
        b = (m.tune or {}).get("block")
        if (m.tune or {}).get("method", "block") == "block" and isinstance(b, int):
            out.add(b)
    return sorted(out)


def run_method(
    spec: MethodSpec,
    load: Callable[[], object],
    ref: RetentionReference | None,
    cfg: CompareConfig,
    seed: int = 0,
    out_dir=None,
    progress=None,
    resume: bool = False,
) -> tuple[dict, object]:
    """Train (or prompt) one method on a fresh model from ``load()``; return (row, tuned model).

    ``out_dir``: where the fine-tune writes its checkpoints; ``resume``: continue from the one there."""
    model = load()
    t0 = time.perf_counter()
    row: dict = {
        "method": spec.name,
        "axis": cfg.axis,
        "seed": seed,
        "description": spec.description,
        "trainable_params": 0,
        "blocks": "",
    }
    start = None
    if spec.tune is not None:
        tcfg = TuneConfig(
            **resolve_tune(model, {**cfg.budget, **spec.tune, "seed": seed, "axis": cfg.axis}, seed)
        )
        docs = tune_documents(model, tcfg, cfg.validity, cfg.retain)
        res = tune(
            model,
            tcfg,
            out_dir=out_dir,
            resume=resume,
            progress=progress,
            documents=docs,
            pairs=pair_material(tcfg),
        )
        row.update(
            trainable_params=res.trainable_params,
            blocks=" ".join(map(str, res.blocks)),
            best_step=res.best_step,
            method_kind=tcfg.method,
        )
        start = min(res.blocks) if tcfg.method == "block" else 0
    row["train_s"] = time.perf_counter() - t0
    instruction = (
        load_axis(cfg.axis).instruction if spec.instruction == AXIS_INSTRUCTION else spec.instruction
    )
    with reuse_prefix(model, start or 0):  # blocks before the first tuned one are the base model's
        row.update(score_on(model, cfg.axis, cfg.split, instruction, cfg.n_boot, seed))
        if cfg.validity is not None and instruction is None:  # (the probes carry no instruction)
            row.update(validity_report(model, cfg.validity)[0])
            row["probes"] = list(cfg.validity.probes)
        if ref is not None and spec.tune is not None:
            table = compare_retention(ref, compute_retention(model, ref, start=start))
            row.update(_retention_summary(table))
            row["retention_table"] = table.to_dict(orient="records")
    if (
        ref is not None and spec.tune is None
    ):  # weights untouched: retention is the base model's by construction
        row.update(
            kl=0.0,
            ppl_change_pct=0.0,
            mc_acc_change=0.0,
            mc_acc_norm_change=0.0,
            asdiv_change=0.0,
            mc_acc=float(ref.base["mc"]["acc"].mean() * 100),
        )
    row["wall_s"] = time.perf_counter() - t0
    return row, model


def seeds_of(spec: MethodSpec, seeds: Sequence[int]) -> Sequence[int]:
    """The seeds a method runs on: its first ``n_seeds`` of ``seeds`` (an untrained method: the first only)."""
    return seeds[: spec.n_seeds] if spec.tune is not None else seeds[:1]


def run_compare(
    methods: Sequence[MethodSpec],
    cfg: CompareConfig,
    load: Callable[[], object] | None = None,
    ref: RetentionReference | None = None,
    on_row: Callable[[dict], None] | None = None,
    skip: Callable[[str, int], bool] | None = None,
) -> pd.DataFrame:
    """Every method × seed. ``skip(name, seed)`` lets a caller resume (rows already on disk)."""
    from lftf_interp.models.loading import load_model

    load = load or (lambda: load_model(cfg.model))
    if ref is None:
        ref = compute_reference(load(), cfg.retain, cache_at=fixed_blocks(methods))
    rows = []
    for spec in methods:
        for seed in seeds_of(spec, cfg.seeds):
            if skip and skip(spec.name, seed):
                continue
            row, _ = run_method(spec, load, ref, cfg, seed)
            rows.append(row)
            if on_row:
                on_row(row)
    return pd.DataFrame(rows)


SWEEP_RETAIN = RetainConfig(
    tasks={}, asdiv=0, n_windows=4, window=128
)  # a sweep's capability cost: KL, perplexity


@dataclass
class SweepConfig(Config):
    """A per-block sweep (``lftf sweep``): each block tuned alone on one budget."""

    blocks: str = setting(
        "every3", "Comma-separated blocks, 'all', or 'everyK' (0, K, 2K, ... and the last)."
    )
    budget: dict = setting(
        factory=lambda: {"steps": 40, "mass_weight": 0.0},
        help="TuneConfig overrides of the shared budget, the same for every block.",
        api_only=True,
    )
    seed: int = setting(0, "Seed of every block's fine-tune.")
    axis: str = setting(
        DEFAULT_AXIS, "The bias axis each block is tuned and scored on (shipped name or file)."
    )
    probes: tuple[str, ...] = setting(
        (), "Validity probes per block too, e.g. math,gendered,winobias (gender only)."
    )
    split: str = setting("test", "The split every block is scored on.")

    def __post_init__(self) -> None:
        self.probes = tuple(self.probes)
        parse_blocks(self.blocks, None)  # the form, before any model loads
        TuneConfig.from_dict(self.tune_budget)

    @property
    def tune_budget(self) -> dict:
        """The shared budget with this sweep's overrides: what every block trains with."""
        return {**BUDGET, **self.budget}


def block_sweep(
    load: Callable[[], object],
    blocks: Sequence[int],
    cfg: SweepConfig | None = None,
    retain: RetainConfig | None = None,
    on_row: Callable[[dict], None] | None = None,
    ref: RetentionReference | None = None,
) -> pd.DataFrame:
    """Fine-tune each of ``blocks`` alone with ``cfg``'s budget; per block: AFGB, UB, mass after, the capability
    cost (KL to the base, perplexity change) and ``cfg.probes``. Together with BMI (``locate.compute_bmi``)
    this answers "does BMI predict the best block?" (notebook 04)."""
    cfg = cfg or SweepConfig()
    budget, seed, axis, split, probes = cfg.tune_budget, cfg.seed, cfg.axis, cfg.split, cfg.probes
    ref = ref or compute_reference(load(), retain or SWEEP_RETAIN)
    rows = []
    for b in blocks:
        model = load()
        t0 = time.perf_counter()
        tcfg = TuneConfig(**{**budget, "block": int(b), "seed": seed, "axis": axis})
        res = tune(
            model,
            tcfg,
            documents=tune_documents(model, tcfg, retain=retain or SWEEP_RETAIN),
            pairs=pair_material(tcfg),
        )
        with reuse_prefix(model, int(b)):
            metrics = score_on(model, axis, split, n_boot=200, seed=seed)
            if probes:
                probed = validity_report(model, ValidityConfig(probes=tuple(probes), n_boot=200, seed=seed))[
                    0
                ]
        table = compare_retention(ref, compute_retention(model, ref))
        row = {
            "block": int(b),
            "seed": seed,
            "axis": axis,
            **{k: metrics[k] for k in ("afgb", "afgb_ci", "ub", "mass")},
            **_retention_summary(table),
            "best_step": res.best_step,
        }
        if probes:
            row.update(probed)
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
        if on_row:
            on_row(row)
    return pd.DataFrame(rows)


def retain_config(kind: str, seed: int = 0) -> RetainConfig:
    """``default`` (~1,200 MC items, 24 windows) or ``small`` (a quick probe)."""
    if kind not in ("default", "small"):
        raise LftfError(f"retain must be 'default' or 'small', got {kind!r}.")
    return RetainConfig(seed=seed) if kind == "default" else RetainConfig.small(seed=seed)


def parse_blocks(spec: str, n_layers: int | None) -> list[int]:
    """``"3,7"``, ``"all"`` or ``"everyK"`` (0, K, 2K, … and the last block, K >= 1) → block indices, range-checked
    (``n_layers`` None: only the form is checked, before a model is loaded)."""
    whole = spec == "all" or spec.startswith("every")
    try:
        if spec.startswith("every") and int(spec[5:]) < 1:
            raise ValueError(spec)
        listed = [] if whole else [int(b) for b in items(spec)]
    except ValueError as e:
        raise LftfError(
            f"blocks {spec!r}: give comma-separated indices, 'all' or 'everyK' with K >= 1 (e.g. every3)."
        ) from e
    if repeated := sorted({b for b in listed if listed.count(b) > 1}):
        raise LftfError(f"blocks {spec!r} name {repeated} more than once; give each block once.")
    if n_layers is None:
        return listed
    if spec == "all":
        chosen = list(range(n_layers))
    elif spec.startswith("every"):
        chosen = sorted(set(range(0, n_layers, int(spec[5:]))) | {n_layers - 1})
    else:
        chosen = listed
    if bad := [b for b in chosen if not 0 <= b < n_layers]:
        raise LftfError(f"blocks {bad} out of range: this model has blocks 0..{n_layers - 1}.")
    if not chosen:
        raise LftfError(f"blocks {spec!r} names no block.")
    return chosen


__all__ = [
    "BUDGET",
    "SweepConfig",
    "AXIS_INSTRUCTION",
    "CompareConfig",
    "MethodSpec",
    "aggregate",
    "block_sweep",
    "default_methods",
    "draw_random_block",
    "fixed_blocks",
    "markdown_table",
    "parse_blocks",
    "retain_config",
    "validity_table",
    "run_compare",
    "resolve_tune",
    "run_method",
    "score_on",
    "tune_documents",
    "seeds_of",
]

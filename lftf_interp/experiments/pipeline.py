"""End-to-end runs that write a results folder: evaluate, locate, fine-tune, compare (resumable), sweep
(resumable), demo. Callable from Python and notebooks; ``lftf`` (:mod:`lftf_interp.cli.main`) only parses options
and prints what these return. Figures are :mod:`lftf_interp.plots.report`'s job (``report.locate_figures``,
``report.demo_figures``), called on what these return.

Every folder gets the provenance of :func:`lftf_interp.provenance.run_meta` (package version, git commit,
time, configuration) next to its numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from lftf_interp.data import DATASET_VERSION, load_axis, read_jsonl
from lftf_interp.data.pairsets import read_bbq, read_crows, read_pairs
from lftf_interp.errors import LftfError
from lftf_interp.experiments.compare import (
    BUDGET,
    SWEEP_RETAIN,
    CompareConfig,
    MethodSpec,
    SweepConfig,
    default_methods,
    parse_blocks,
    retain_config,
    seeds_of,
    tune_documents,
)
from lftf_interp.experiments.exports import check_out, export_dir, export_to
from lftf_interp.experiments.grid import cache_of, compare_row, fill_row, sweep_row
from lftf_interp.experiments.jobs import ExecutorConfig, RowJob, raise_failures, run_rows
from lftf_interp.experiments.rundir import (
    announce_total,
    describe_run,
    merged_rows,
    read_rows,
    recorder,
    write_json,
)
from lftf_interp.experiments.tables import write_compare_summary
from lftf_interp.locate import compute_bmi
from lftf_interp.locate.choose import AUTO, resolve_block
from lftf_interp.locate.run import LocateConfig, locate, save_locate
from lftf_interp.metrics.groups import EvalConfig, evaluate
from lftf_interp.metrics.pairs import bbq_answers, bbq_scores, crows_scores, pair_scores
from lftf_interp.models.loading import check_blocks, load_model
from lftf_interp.probes import COMPARE_VALIDITY, ValidityConfig, validity_report
from lftf_interp.provenance import run_meta
from lftf_interp.retain import (
    compare_retention,
    compute_reference,
    compute_retention,
    retention_summary,
    save_reference,
)
from lftf_interp.retain.stereoset import evaluate_stereoset, pair_material, twin_scores
from lftf_interp.tune import TuneConfig, TuneResult, save_delta, tune
from lftf_interp.tune.beyond import winobias_material
from lftf_interp.tune.checkpoint import check_resume
from lftf_interp.tune.parallel import is_main

Progress = Callable[[int, dict], None]


# ----------------------------------------------------------------------------- evaluate / locate


def evaluate_to(
    model: str,
    cfg: EvalConfig,
    out: Path,
    data: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Bias score, hint following, mass and per-group shares (AFGB / UB on a two-group axis such as gender) on
    ``cfg.axis`` and ``cfg.split``, or on your own prompts (``data``: JSONL with ``prompt``, optional ``split``
    and, for hint prompts, ``label``) → OUT/metrics.json, OUT/bias_prompts.csv and OUT/hint_prompts.csv; with
    ``cfg.crows`` / ``cfg.bbq`` / ``cfg.pairs`` / ``cfg.stereoset`` also the sentence benchmarks (:mod:`lftf_interp.metrics.pairs`),
    their files read before the model loads. Returns the metrics record."""
    ax = load_axis(cfg.axis)
    frame = None
    if data is not None:
        frame = read_jsonl(data)
        if "split" in frame:
            frame = frame[frame["split"] == cfg.split]
            if frame.empty:
                raise LftfError(
                    f"{data} has no prompts of split {cfg.split!r}; pass --split, or drop the split column."
                )
    if frame is None:  # a split the axis lacks is refused here, before the model loads
        n_bias = len(ax.bias_prompts(cfg.split))
        announce_total(progress, n_bias + (len(ax.hint_prompts(cfg.split)) if ax.has_hints else 0))
    else:
        announce_total(progress, len(frame))
    files = {  # checked before the model loads
        "crows": read_crows(cfg.crows) if cfg.crows else None,
        "bbq": read_bbq(cfg.bbq) if cfg.bbq else None,
        "pairs": read_pairs(cfg.pairs) if cfg.pairs else None,
    }
    bridge = load_model(model)
    metrics, bias_df, hint_df = evaluate(bridge, cfg, frame, progress)
    out.mkdir(parents=True, exist_ok=True)
    bias_df.to_csv(out / "bias_prompts.csv", index=False)
    if hint_df is not None:
        hint_df.to_csv(out / "hint_prompts.csv", index=False)
    metrics |= _sentence_benchmarks(bridge, files, cfg, out)
    run = describe_run(
        model=model, dataset_version=DATASET_VERSION, data=str(data) if data else None, **cfg.to_dict()
    )
    record = {**metrics, "config": {**run, "axis": ax.source or cfg.axis}}
    write_json(out / "metrics.json", record)
    return record


def _sentence_benchmarks(bridge, files: dict, cfg: EvalConfig, out: Path) -> dict:
    """CrowS-Pairs, BBQ, your pairs and StereoSet (when asked) → OUT/crows_pairs.csv, OUT/bbq_answers.csv,
    OUT/pairs.csv, OUT/stereoset_items.csv and their tables as records."""
    found: dict = {}
    for key, scorer, index, name in (
        ("crows", crows_scores, "bias_type", "crows_pairs.csv"),
        ("pairs", pair_scores, "target", "pairs.csv"),
    ):
        if files[key] is not None:
            table, scored = scorer(bridge, files[key], cfg.n_boot, cfg.seed)
            scored.to_csv(out / name, index=False)
            rows = table.set_index(index).to_dict(orient="index")
            found[key] = {
                k: {c: v for c, v in r.items() if v == v} for k, r in rows.items()
            }  # no NaN (no LMS)
    if (questions := files["bbq"]) is not None:
        answered = bbq_answers(bridge, questions)
        answered.to_csv(out / "bbq_answers.csv", index=False)
        found["bbq"] = bbq_scores(answered).set_index("category").to_dict(orient="index")
    if cfg.stereoset is not None:
        targets = None if cfg.stereoset_targets == "all" else cfg.stereoset_targets
        table, items = evaluate_stereoset(
            bridge, None, cfg.n_boot, cfg.seed, kind=cfg.stereoset, split=targets
        )
        items.to_csv(out / "stereoset_items.csv", index=False)
        found["stereoset"] = table.set_index("bias_type").to_dict(orient="index")
        if load_axis(cfg.axis).counterparts:
            found["stereoset_twins"] = twin_scores(
                bridge, cfg.axis, targets, cfg.n_boot, cfg.seed, kind=cfg.stereoset
            )
    return found


def locate_to(
    model: str, cfg: LocateConfig, out: Path, progress: Callable[[str], None] | None = None
) -> dict:
    """The locate stage → OUT/*.csv and OUT/locate.json; returns its tables (``report.locate_figures`` plots them)."""
    res = locate(load_model(model), cfg, progress=progress)
    save_locate(res, out, describe_run(model=model, dataset_version=DATASET_VERSION, **cfg.to_dict()))
    return res


# ----------------------------------------------------------------------------- fine-tune


def _evaluate_on(bridge, axis: str) -> tuple[dict, pd.DataFrame]:
    """Test-split metrics on the axis (:func:`lftf_interp.metrics.groups.evaluate`)."""
    m, bias_df, _ = evaluate(bridge, EvalConfig(axis=axis, split="test"))
    return m, bias_df


@dataclass
class FinetuneRun:
    before: dict
    after: dict
    result: TuneResult
    choice: dict
    bias_before: pd.DataFrame
    bias_after: pd.DataFrame


def _before_loading(model: str, cfg: TuneConfig, out: Path, resume: bool) -> tuple[TuneConfig, dict]:
    """What :func:`finetune_to` checks before the model loads: the axis, the WinoBias files, given blocks against
    the model's config.json, and the checkpoint to resume (whose block a ``--block auto`` run keeps). Returns the
    config with its blocks where they are known, and how they were chosen."""
    load_axis(cfg.axis)
    winobias_material(cfg)  # its files found and checked
    auto = cfg.method == "block" and cfg.block is None
    choice: dict = {"how": "all blocks"}
    if cfg.method == "block" and cfg.block is not None:
        blocks, choice = resolve_block(None, cfg.block)
        check_blocks(model, blocks)
        cfg = replace(cfg, block=tuple(blocks))
    if resume:  # the checkpoint exists, is whole and was made with this config
        state = check_resume(out, cfg.to_dict(), ignore=("block",) if auto else ())
        if auto:
            cfg = replace(cfg, block=tuple(state["config"]["block"]))
            saved = out / "block_choice.json"
            resumed = {"how": "auto", "blocks": list(state["config"]["block"])}
            choice = json.loads(saved.read_text()) if saved.is_file() else resumed
    return cfg, choice


def finetune_to(
    model: str,
    cfg: TuneConfig | dict,
    out: Path,
    top_k: int = 1,
    exclude: str | Sequence[int] = AUTO,
    resume: bool = False,
    export: bool = False,
    progress: Progress | None = None,
) -> FinetuneRun:
    """Evaluate, choose the block, fine-tune, evaluate again → OUT/delta, OUT/history.csv, OUT/metrics.json (and
    with ``export`` a Hugging Face directory OUT/model). ``cfg.block`` None (method "block"): BMI chooses the
    ``top_k`` top blocks past ``exclude`` (:func:`~lftf_interp.locate.rank_for_tuning`)."""
    tcfg = TuneConfig.from_dict(cfg) if isinstance(cfg, dict) else cfg
    if top_k < 1:
        raise LftfError(f"top_k must be >= 1 (how many top-BMI blocks --block auto tunes), got {top_k}.")
    if export:
        check_out(out / "model", force=True)
    tcfg, choice = _before_loading(model, tcfg, out, resume)
    bridge = load_model(model)
    if tcfg.method == "block" and tcfg.block is None:  # --block auto, not resumed: BMI chooses now
        blocks, choice = resolve_block(bridge, AUTO, top_k, exclude, tcfg.seed, tcfg.axis)
        tcfg = replace(tcfg, block=tuple(blocks))
        write_json(out / "block_choice.json", choice)
    before, bias_before = _evaluate_on(bridge, tcfg.axis)
    res = tune(
        bridge,
        tcfg,
        out_dir=out,
        resume=resume,
        progress=progress,
        documents=tune_documents(bridge, tcfg),
        pairs=pair_material(tcfg),
    )
    after, bias_after = _evaluate_on(bridge, tcfg.axis)
    if not is_main():  # data-parallel: the first process writes
        return FinetuneRun(before, after, res, choice, bias_before, bias_after)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "loss": tcfg.loss,
        "config": tcfg.to_dict(),
        "dataset_version": DATASET_VERSION,
        "before": before,
        "after": after,
        "best_step": res.best_step,
        "block_choice": choice,
    }
    save_delta(bridge, res.blocks, res.base_fingerprint, out / "delta", meta)
    res.history.to_csv(out / "history.csv", index=False)
    write_json(
        out / "metrics.json",
        {**meta, **describe_run(model=model), "blocks": res.blocks, "trainable_params": res.trainable_params},
    )
    if export:
        export_dir(
            bridge, out / "model", run_meta(base_model=model, delta=str(out / "delta"), blocks=res.blocks)
        )
    return FinetuneRun(before, after, res, choice, bias_before, bias_after)


# ----------------------------------------------------------------------------- compare / sweep (resumable)


def compare_to(
    model: str,
    out: Path,
    cfg: CompareConfig | None = None,
    methods: Sequence[str | MethodSpec] | None = None,
    reference: Path | None = None,
    on_row: Callable[[dict], None] | None = None,
    executor: ExecutorConfig | None = None,
    fill: bool = False,
) -> str:
    """Every method × seed → OUT/rows.jsonl (one line per finished run), OUT/config.json, OUT/summary.csv,
    OUT/table.md and (``validity`` not None: the probes beyond the template per row; off a gendered axis, long context
    and StereoSet) OUT/validity.md or OUT/beyond.md. Resumable: rows already in OUT/rows.jsonl are not rerun, and
    a row stopped during its fine-tune continues from its checkpoint; a later run with a subset of ``methods``
    keeps the specs of the methods already on disk. ``methods`` names rows of :func:`default_methods` or gives a
    :class:`MethodSpec` of its own. ``reference``: a saved retention reference of the base model, read if
    present, else computed and written there (default OUT/.cache/reference).
    ``executor``: where the rows run (default: one after another in this process; see
    :mod:`lftf_interp.experiments.jobs`). ``fill``: rows already on disk that lack some of ``cfg.validity``'s
    probes (rows written before a probe joined the comparison) get those probes: the method is trained again
    with the row's seed and a fill record is appended, merged into the row when read. Returns the markdown
    table."""
    cfg = replace(
        cfg or CompareConfig(validity=COMPARE_VALIDITY), model=model
    )  # checked before the model loads
    rcfg = cfg.retain
    load_axis(cfg.axis)
    specs = default_methods(load_model(model).cfg.n_layers)
    if methods is not None:
        by_name = {s.name: s for s in specs}
        names = [m for m in methods if isinstance(m, str)]
        if unknown := sorted(set(names) - set(by_name)):
            raise LftfError(f"Unknown method(s) {unknown}; choose from {list(by_name)}.")
        specs = [by_name[m] if isinstance(m, str) else m for m in methods]  # in the order given
    out.mkdir(parents=True, exist_ok=True)
    rows_path, config_path = out / "rows.jsonl", out / "config.json"
    stored = {(r["method"], r["seed"]): r for r in merged_rows(read_rows(rows_path))}
    done = set(stored)
    known = json.loads(config_path.read_text()).get("methods", []) if config_path.is_file() else []
    merged = {m["name"]: m for m in known} | {s.name: s.to_dict() for s in specs}
    write_json(config_path, {**cfg.to_dict(), "methods": list(merged.values()), **run_meta(model=model)})
    ref_dir = reference or cache_of(out) / "reference"  # computed once, read by every row and job
    if not (ref_dir / "reference.json").is_file():
        save_reference(compute_reference(load_model(model), rcfg), ref_dir)
    todo = [(s.name, seed) for s in specs for seed in seeds_of(s, cfg.seeds) if (s.name, seed) not in done]
    jobs = [
        RowJob(
            f"{n}-s{seed}",
            compare_row,
            dict(model=model, out=str(out), method=n, seed=seed, reference=str(ref_dir)),
        )
        for n, seed in todo
    ]
    if fill and cfg.validity is not None:
        for s in specs:
            for seed in seeds_of(s, cfg.seeds):
                if (row := stored.get((s.name, seed))) is None or s.instruction is not None:
                    continue  # not run yet (a plain job), or the prompt baseline (no probes)
                lacks = [p for p in cfg.validity.probes if p not in row.get("probes", ())]
                if lacks:
                    job = dict(model=model, out=str(out), method=s.name, seed=seed, probes=lacks)
                    jobs.append(RowJob(f"{s.name}-s{seed}-fill", fill_row, job))
    failures = run_rows(jobs, out / "jobs", executor or ExecutorConfig(), recorder(rows_path, on_row))
    md = write_compare_summary(out)
    raise_failures(failures, rows_path)
    return md


def sweep_to(
    model: str,
    out: Path,
    cfg: SweepConfig | None = None,
    on_row: Callable[[dict], None] | None = None,
    executor: ExecutorConfig | None = None,
) -> pd.DataFrame:
    """Fine-tune each block of ``cfg.blocks`` alone with the same budget → OUT/rows.jsonl (resumable: blocks
    already there are not rerun), OUT/bmi.csv (BMI on the axis's test prompts) and OUT/config.json (with the
    base model's values of the validity probes, also measured per block). Returns every row on disk."""
    cfg = cfg or SweepConfig()
    blocks, seed, axis, probes = cfg.blocks, cfg.seed, cfg.axis, cfg.probes
    budget = cfg.tune_budget
    steps = budget["steps"]
    prompts = load_axis(axis).bias_prompts("test").prompt.tolist()
    bridge = load_model(model)
    chosen = parse_blocks(blocks, bridge.cfg.n_layers)
    bmi = compute_bmi(bridge, prompts)
    base = (
        validity_report(bridge, ValidityConfig(probes=tuple(probes), n_boot=200, seed=seed))[0]
        if probes
        else {}
    )
    n_layers = bridge.cfg.n_layers
    del bridge
    out.mkdir(parents=True, exist_ok=True)
    bmi.to_csv(out / "bmi.csv", index=False)
    rows_path = out / "rows.jsonl"
    done = {r["block"] for r in read_rows(rows_path)}

    ref_dir = cache_of(out) / "reference"  # the base model's, once for every block
    if not (ref_dir / "reference.json").is_file():
        save_reference(compute_reference(load_model(model), SWEEP_RETAIN), ref_dir)
    jobs = [
        RowJob(
            f"block-{b}",
            sweep_row,
            dict(model=model, out=str(out), block=b, cfg=cfg.to_dict(), reference=str(ref_dir)),
        )
        for b in chosen
        if b not in done
    ]
    failures = run_rows(jobs, out / "jobs", executor or ExecutorConfig(), recorder(rows_path, on_row))
    write_json(
        out / "config.json",
        run_meta(
            model=model,
            n_layers=n_layers,
            blocks=chosen,
            steps=steps,
            seed=seed,
            budget=budget,
            axis=axis,
            probes=list(probes),
            base=base,
        ),
    )
    raise_failures(failures, rows_path)
    return pd.DataFrame(read_rows(rows_path))


# ----------------------------------------------------------------------------- demo


@dataclass
class DemoResult:
    model: str
    before: dict
    after: dict
    block: int
    bias_before: pd.DataFrame
    hint_before: pd.DataFrame
    bias_after: pd.DataFrame
    locate: dict
    history: pd.DataFrame
    retention: pd.DataFrame
    summary: dict = field(default_factory=dict)


def demo(
    model: str,
    out: Path,
    steps: int = 150,
    retain: str = "default",
    seed: int = 0,
    say: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """The whole pipeline: evaluate → locate (BMI, patching, lens) → fine-tune BMI's top block → evaluate →
    capability retention. Writes OUT/summary.json, OUT/retention.csv, OUT/locate/ and OUT/finetune/ (delta,
    history); ``report.demo_figures`` draws OUT/figures from the result."""
    say = say or (lambda s: None)
    t0 = time.perf_counter()
    rcfg = retain_config(retain, seed)  # every option checked before the models load
    cfg = TuneConfig(**{**BUDGET, "steps": steps, "seed": seed})
    base_model, bridge = load_model(model), load_model(model)
    say("1 · evaluate the base model")
    before, bias_df, hint_df = evaluate(base_model, EvalConfig(split="test", seed=seed))
    say("2 · locate")
    lcfg = LocateConfig(seed=seed)
    loc = locate(base_model, lcfg)
    save_locate(loc, out / "locate", run_meta(model=model, dataset_version=DATASET_VERSION, **lcfg.to_dict()))
    blocks, choice = resolve_block(bridge, AUTO, seed=seed)
    top = blocks[0]
    say(
        f"3 · fine-tune block {top} (BMI rank 1 on train prompts past the embedding-artefact blocks "
        f"{choice['excluded']})"
    )
    cfg = TuneConfig(**{**cfg.to_dict(), "block": top})
    res = tune(
        bridge,
        cfg,
        out_dir=out / "finetune",
        progress=progress,
        documents=tune_documents(bridge, cfg, retain=rcfg),
        pairs=pair_material(cfg),
    )
    say("4 · evaluate the tuned model")
    after, after_bias, _ = evaluate(bridge, EvalConfig(split="test", seed=seed))
    say("5 · capability retention")
    ref = compute_reference(base_model, rcfg, cache_at=res.blocks)
    ret = compare_retention(ref, compute_retention(bridge, ref, start=min(res.blocks)))
    save_delta(
        bridge,
        res.blocks,
        res.base_fingerprint,
        out / "finetune" / "delta",
        {"config": cfg.to_dict(), "after": after},
    )
    res.history.to_csv(out / "finetune" / "history.csv", index=False)
    ret.to_csv(out / "retention.csv", index=False)
    summary = {
        "before": before,
        "after": after,
        "block": top,
        "block_choice": choice,
        "retention": retention_summary(ret),
        "wall_s": time.perf_counter() - t0,
        **run_meta(model=model, config=cfg.to_dict(), retain=rcfg.to_dict()),
    }
    write_json(out / "summary.json", summary)
    return DemoResult(model, before, after, top, bias_df, hint_df, after_bias, loc, res.history, ret, summary)


__all__ = [
    "DemoResult",
    "FinetuneRun",
    "compare_to",
    "demo",
    "evaluate_to",
    "export_to",
    "finetune_to",
    "locate_to",
    "parse_blocks",
    "retain_config",
    "sweep_to",
    "write_compare_summary",
]

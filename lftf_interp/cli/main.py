"""``lftf`` command line: parses options, calls :mod:`lftf_interp.experiments.pipeline`, prints what it returns.

Every bad input the library refuses (an :class:`~lftf_interp.errors.LftfError`) is printed as one line and
exits with status 2, never as a traceback.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from lftf_interp.cli.base import (  # noqa: F401  (app: the entry point)
    MODEL,
    app,
    command,
    config_options,
    console,
    executor_options,
    option,
    progress_bar,
)
from lftf_interp.data import DEFAULT_AXIS, load_axis
from lftf_interp.errors import ConfigError
from lftf_interp.experiments import pipeline
from lftf_interp.experiments.compare import BUDGET, CompareConfig, SweepConfig, retain_config
from lftf_interp.experiments.jobs import ExecutorConfig
from lftf_interp.locate.run import LocateConfig
from lftf_interp.metrics.groups import EvalConfig
from lftf_interp.options import ints, items
from lftf_interp.plots import report
from lftf_interp.probes import ValidityConfig
from lftf_interp.tune.train import TuneConfig


def _training_bar(prog: Progress, steps: int):
    task = prog.add_task("fine-tuning", total=steps)

    def show(step, row):
        desc = f"loss {row['loss']:.3f}" + (f" · val bias {row['val_afgb']:.3f}" if "val_afgb" in row else "")
        prog.update(task, completed=step, description=desc)

    return show


class _Ticker:
    """A progress callback (``tick(n)``: n more prompts done) whose bar shows a total and an ETA once the job
    says how many prompts there are (``set_total``)."""

    def __init__(self, prog: Progress, description: str):
        self.prog, self.task = prog, prog.add_task(description, total=None)

    def set_total(self, n: int) -> None:
        self.prog.update(self.task, total=n)

    def __call__(self, n: int) -> None:
        self.prog.advance(self.task, n)


def _axis_labels(axis: str) -> dict[str, str]:
    return load_axis(axis).labels


def _before_after(
    title: str,
    before: dict,
    after: dict,
    labels: dict[str, str],
    first: str = "before",
    second: str = "after",
) -> Table:
    table = Table(title=title)
    for c in ("metric", first, second):
        table.add_column(c)
    names = (
        ("bias", f"{labels['bias']} ↓"),
        ("hint_following", f"{labels['hint']} ↑"),
        ("mass", labels["mass"]),
    )
    for k, name in names:
        if k in after:
            lo, hi = after[k + "_ci"]
            table.add_row(name, f"{before[k]:.3f}", f"{after[k]:.3f} [{lo:.3f}, {hi:.3f}]")
    return table


@command
@config_options(EvalConfig, into="evaluation")
def evaluate(
    model: str = MODEL,
    data: Path = typer.Option(
        None,
        help="Your own prompts (JSONL: prompt, optional split, label for hint prompts), scored on --axis's "
        "groups.",
    ),
    out: Path = typer.Option(Path("out/evaluate"), help="Output directory."),
    evaluation: dict | None = None,  # every EvalConfig field, one option each (config_options)
) -> None:
    """The bias score, hint following and group mass of a model on one axis and split (on gender: AFGB on
    GenBiasEval, UB on GenHintEval)."""
    cfg = EvalConfig(**(evaluation or {}))
    labels = _axis_labels(cfg.axis)
    with progress_bar() as prog:
        tick = _Ticker(prog, f"evaluating {model} on {cfg.split}")
        m = pipeline.evaluate_to(model, cfg, out, data, progress=tick)
    table = Table(title=f"{model} · {m['axis']} · {cfg.split} split")
    for col in ("metric", "value", "95% CI", "n"):
        table.add_column(col)
    rows = (
        ("bias", f"{labels['bias']} (0 = fair)", "n"),
        ("hint_following", f"{labels['hint']} (1 = follows hints)", "n_hint"),
        ("mass", labels["mass"], "n"),
    )
    for k, name, n in rows:
        if k in m:
            table.add_row(name, f"{m[k]:.3f}", "[{:.3f}, {:.3f}]".format(*m[k + "_ci"]), str(m[n]))
    for g, share in m.get("shares", {}).items():
        table.add_row(f"share of {g}", f"{share:.3f}", "", str(m["n"]))
    console.print(table)
    for bt, r in m.get("crows", {}).items():
        console.print(
            f"CrowS-Pairs {bt}: {r['score']:.1f} [{r['score_ci'][0]:.1f}, {r['score_ci'][1]:.1f}] (50 = none), "
            f"log P(more) − log P(less) {r['gap']:+.3f} nats, {r['n']} pairs"
        )
    for t, r in m.get("pairs", {}).items():
        lms = f", LMS {r['lms']:.1f}" if "lms" in r else ""
        console.print(
            f"Your pairs, {t}: {r['score']:.1f} [{r['score_ci'][0]:.1f}, {r['score_ci'][1]:.1f}] (50 = none), "
            f"log P(stereotype) − log P(anti-stereotype) {r['gap']:+.3f} nats{lms}, {r['n']} pairs"
        )
    for bt, r in m.get("stereoset", {}).items():
        console.print(
            f"StereoSet {cfg.stereoset} {bt} ({cfg.stereoset_targets} targets): SS {r['ss']:.1f} "
            f"[{r['ss_ci'][0]:.1f}, {r['ss_ci'][1]:.1f}] (50 = none), LMS {r['lms']:.1f}, ICAT {r['icat']:.1f}"
        )
    if tw := m.get("stereoset_twins"):
        a, b = tw["as_written"], tw["twins"]
        console.print(
            f"StereoSet {cfg.stereoset} twins ({tw['n_twinned']} of {tw['n_items']} items name a counterpart word): "
            f"SS {a['ss']:.1f} as written, {b['ss']:.1f} [{b['ss_ci'][0]:.1f}, {b['ss_ci'][1]:.1f}] with every "
            "sentence about the other group"
        )
    for c, r in m.get("bbq", {}).items():
        console.print(
            f"BBQ {c}: bias ambiguous {r['bias_ambig']:+.3f}, disambiguated {r['bias_disambig']:+.3f} "
            f"(0 = none); accuracy {r['accuracy_ambig']:.3f} / {r['accuracy_disambig']:.3f}; {r['n']} questions"
        )
    for w in m.get("warnings", []):
        console.print(f"[bold yellow]warning:[/] {escape(w)}", soft_wrap=True)
    console.print(f"wrote {out / 'metrics.json'} and per-prompt CSVs")


@command
def figures(
    model: str = MODEL, split: str = typer.Option("test"), out: Path = typer.Option(Path("figures"))
) -> None:
    """Baseline-bias figures on GenBiasEval / GenHintEval (per-occupation he share vs BLS, templates, hint
    following)."""
    from lftf_interp.metrics.groups import evaluate as run_eval
    from lftf_interp.models.loading import load_model

    _, bias_df, hint_df = run_eval(load_model(model), EvalConfig(split=split))
    for p in report.baseline_figures(bias_df, hint_df, out, title=f"{model} ({split})"):
        console.print(f"wrote {p}")


@command
@config_options(LocateConfig, into="locating")
def locate(
    model: str = MODEL,
    out: Path = typer.Option(Path("out/locate"), help="Output directory (CSVs, locate.json, figures)."),
    locating: dict | None = None,  # every LocateConfig field, one option each (config_options)
) -> None:
    """BMI ranking (+ held-out stability), activation patching, logit lens and attribution patching."""
    cfg = LocateConfig(**(locating or {}))
    axis = cfg.axis
    with progress_bar() as prog:
        task = prog.add_task("locate", total=4)

        def step(stage: str) -> None:
            prog.update(task, description=stage)
            prog.advance(task)

        res = pipeline.locate_to(model, cfg, out, progress=step)
    n_figs = len(report.locate_figures(res, out))
    table = Table(title=f"{model} · locate · {axis}")
    for c in ("block", "BMI", "rank"):
        table.add_column(c)
    for r in res["bmi"].nsmallest(5, "rank").itertuples():
        table.add_row(str(r.layer), f"{r.bmi:.4f}", str(r.rank) + (" (tied)" if r.tied else ""))
    console.print(table)
    s = res["summary"]
    st = s["stability"]
    console.print(
        f"held-out stability: Spearman rho {st['spearman_rho']:.3f}, top-1 agree {st['top1_agree']}"
    )
    console.print(
        f"patching by block (max): {s['by_block_top']}; attribution vs exact: "
        + ", ".join(f"{k} r={v['pearson_r']:.2f}" for k, v in s["attribution_vs_exact"].items())
    )
    console.print(f"wrote the tables, locate.json and {n_figs} figures to {out}")


@command
@config_options(TuneConfig, into="tune", skip=("block",))
def finetune(
    model: str = MODEL,
    block: str = typer.Option(
        "auto", help="Block index, comma-separated indices, or 'auto' (BMI's top block)."
    ),
    top_k: int = typer.Option(1, help="With --block auto: tune the k top-BMI blocks."),
    exclude: str = typer.Option(
        "auto",
        help="Blocks --block auto may not pick: 'auto' (the embedding-artefact blocks "
        "found from the model, see lftf_interp.locate.artefact_blocks), comma-separated "
        "indices, or '' for none.",
    ),
    resume: bool = typer.Option(False, help="Continue an interrupted run from OUT/checkpoint."),
    out: Path = typer.Option(Path("out/finetune")),
    export: bool = typer.Option(False, help="Also write a full Hugging Face directory to OUT/model."),
    tune: dict | None = None,  # every other TuneConfig field, one option each (config_options)
) -> None:
    """LFTF: fine-tune only the located block, then evaluate on the test split; writes a safetensors delta.
    Every field of TuneConfig is an option (its default and help are the field's)."""
    cfg = TuneConfig(**(tune or {}), block=None if block == "auto" else ints(block))
    with progress_bar() as prog:
        res = pipeline.finetune_to(
            model,
            cfg,
            out,
            top_k=top_k,
            exclude=exclude if exclude == "auto" else ints(exclude),
            resume=resume,
            export=export,
            progress=_training_bar(prog, cfg.steps),
        )
    console.print(
        _before_after(
            f"{model} · {cfg.axis} · LFTF on block(s) {res.result.blocks} · loss {cfg.loss}",
            res.before,
            res.after,
            _axis_labels(cfg.axis),
        )
    )
    console.print(
        f"wrote {out}/delta (safetensors + JSON), history.csv, metrics.json" + (", model/" if export else "")
    )


@command(claim=False)  # its folder is a Hugging Face directory, checked by export_to
def export(
    model: str = MODEL,
    delta: Path = typer.Option(
        None, help="A delta directory (`lftf finetune`'s OUT/delta); checked against the base."
    ),
    out: Path = typer.Option(
        Path("out/export"), help="The Hugging Face directory to write (a new or empty folder)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace OUT, all of its files, if it already holds some."
    ),
) -> None:
    """Base model (+ delta) → a plain Hugging Face directory (safetensors + a tokenizer that adds no BOS)."""
    path = pipeline.export_to(model, delta, out, force=force)
    console.print(f"wrote {path} (load it with transformers, or `lftf evaluate --model {path}`)")


@command
@executor_options
@config_options(CompareConfig, into="comparison", skip=("model",))
def compare(
    model: str = MODEL,
    methods: str = typer.Option(
        "all", help="Comma-separated method names (see `lftf_interp.experiments.compare.default_methods`)."
    ),
    steps: int = typer.Option(0, help="Override the shared step budget (0 = keep BUDGET's)."),
    retain: str = typer.Option(
        "default", help="'default' (~1,200 MC items, 24 windows) or 'small' (a quick probe)."
    ),
    reference: Path = typer.Option(
        None,
        help="A saved retention reference of the base model (read if present, "
        "else computed and written there).",
    ),
    out: Path = typer.Option(Path("out/compare")),
    validity: bool = typer.Option(
        True,
        help="Also the probes beyond the template per row: on gender `lftf validity`'s probes and StereoSet, on "
        "another axis long context (its prompts) and StereoSet; long context at 0 and 1,024 tokens.",
    ),
    crows: str = option(ValidityConfig, "crows"),
    bbq: str = option(ValidityConfig, "bbq"),
    pairs: str = option(ValidityConfig, "pairs"),
    fill: bool = typer.Option(
        False,
        help="Rows already in OUT that lack a probe of the comparison (written before it joined) get it: the "
        "method is trained again with the row's seed and only the missing probes run.",
    ),
    comparison: dict | None = None,  # the other CompareConfig fields, one option each (config_options)
    executor: ExecutorConfig | None = None,  # the grid options (executor_options)
) -> None:
    """LFTF vs baselines (FPFT, LoRA, other blocks, top-k, prompt): AFGB, UB, mass, KL, perplexity, MC accuracy,
    trainable parameters, wall time. Resumable: rows already in OUT/rows.jsonl are not rerun."""

    def show(row: dict) -> None:
        if "fill" in row:
            console.print(
                f"{row['method']} seed {row['seed']}: filled {', '.join(row['fill'])} ({row['wall_s']:.0f} s)"
            )
            return
        console.print(
            f"{row['method']} seed {row['seed']}: AFGB {row['afgb']:.3f} UB {row['ub']:.3f} mass {row['mass']:.3f} "
            f"KL {row.get('kl', float('nan')):.4f} ppl {row.get('ppl_change_pct', float('nan')):+.2f}% "
            f"MC {row.get('mc_acc_change', float('nan')):+.2f} ({row['wall_s']:.0f} s)"
        )

    want = None if methods == "all" else list(items(methods))
    if not validity and (
        files := [f"--{k}" for k, v in (("crows", crows), ("bbq", bbq), ("pairs", pairs)) if v]
    ):
        raise ConfigError(
            f"{', '.join(files)} run(s) among the probes: drop --no-validity to score the file(s)."
        )
    cfg = CompareConfig(
        model=model,
        budget=dict(BUDGET, **({"steps": steps} if steps else {})),
        retain=retain_config(retain),
        validity=replace(pipeline.COMPARE_VALIDITY, crows=crows, bbq=bbq, pairs=pairs) if validity else None,
        **(comparison or {}),
    )
    console.print(
        pipeline.compare_to(model, out, cfg, want, reference, on_row=show, executor=executor, fill=fill)
    )


@command
def demo(
    model: str = MODEL,
    out: Path = typer.Option(Path("out/demo")),
    steps: int = typer.Option(150, help="Fine-tune steps (BUDGET's 150 by default)."),
    retain: str = typer.Option("default", help="'default' retention probe or 'small'."),
    seed: int = typer.Option(0),
) -> None:
    """The whole pipeline: evaluate → locate (BMI, patching, lens) → fine-tune the top block → evaluate →
    capability retention → figures. Writes OUT/summary.json and OUT/figures/*.png."""
    with progress_bar() as prog:
        res = pipeline.demo(
            model, out, steps, retain, seed, say=console.rule, progress=_training_bar(prog, steps)
        )
    report.locate_figures(res.locate, out / "locate")
    report.demo_figures(res, out / "figures")
    table = _before_after(
        f"{model} · LFTF on block {res.block} · test split",
        res.before,
        res.after,
        _axis_labels(DEFAULT_AXIS),
        "base",
        "tuned",
    )
    ret = res.retention
    for r in ret[ret.metric.isin(["ppl_all", "kl", "mc_all_acc", "asdiv_acc"])].itertuples():
        table.add_row(
            f"{r.metric} ({r.unit})",
            f"{r.base:.3f}",
            f"{r.tuned:.3f} (Δ {r.change:+.3f} [{r.ci_lo:+.3f}, {r.ci_hi:+.3f}])",
        )
    console.print(table)
    console.print(
        f"wrote {out}/summary.json, retention.csv, finetune/ (delta, history), locate/, figures/ "
        f"({res.summary['wall_s']:.0f} s)"
    )


@command
@executor_options
@config_options(SweepConfig, into="sweeping")
def sweep(
    model: str = MODEL,
    steps: int = typer.Option(
        SweepConfig().budget["steps"], help="Steps per block (the same budget for every block)."
    ),
    mass_weight: float = typer.Option(
        SweepConfig().budget["mass_weight"],
        help="Mass-anchor weight (results/block_sweep was run without it).",
    ),
    out: Path = typer.Option(Path("out/sweep")),
    sweeping: dict | None = None,  # the other SweepConfig fields, one option each (config_options)
    executor: ExecutorConfig | None = None,  # the grid options (executor_options)
) -> None:
    """Fine-tune each block alone with the same budget and record debiasing vs capability cost, next to its BMI."""

    def show(row: dict) -> None:
        console.print(
            f"block {row['block']}: AFGB {row['afgb']:.3f} UB {row['ub']:.3f} KL {row['kl']:.4f} "
            f"ppl {row['ppl_change_pct']:+.2f}% ({row['wall_s']:.0f} s)"
        )

    cfg = SweepConfig(budget={"steps": steps, "mass_weight": mass_weight}, **(sweeping or {}))
    rows = pipeline.sweep_to(model, out, cfg, on_row=show, executor=executor)
    console.print(f"{len(rows)} blocks in {out / 'rows.jsonl'}")


from lftf_interp.cli import studies  # noqa: E402, F401  (registers validity, holdout, mechanism on the app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":
    main()

"""``lftf`` command line: a thin layer over the library."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .errors import LftfError

app = typer.Typer(add_completion=False, help="Locate where a causal LM stores gender bias, then fix it there.")
console = Console()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, check=True
        ).stdout.strip()
    except Exception:
        return None


def run_meta(**config) -> dict:
    return {"package_version": __version__, "git_commit": git_commit(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **config}


def _fail(e: Exception) -> None:
    console.print(f"[bold red]error:[/] {e}")
    raise typer.Exit(code=2)


@app.command()
def evaluate(
    model: str = typer.Option("smollm2-135m", help="Registry name, local HF directory, or cached HF id."),
    split: str = typer.Option("test", help="train, validation or test."),
    out: Path = typer.Option(Path("out/evaluate"), help="Output directory."),
    batch_size: int = typer.Option(64),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples for the 95 % CIs."),
    seed: int = typer.Option(0),
) -> None:
    """AFGB (GenBiasEval) and UB (GenHintEval) of a model on one split."""
    from .data import load_dataset
    from .metrics import EvalConfig
    from .metrics import evaluate as run_eval
    from .models import load_model

    try:
        cfg = EvalConfig(split=split, batch_size=batch_size, n_boot=n_boot, seed=seed)
        bias, hint = load_dataset("genbias", split), load_dataset("genhint", split)
        with console.status(f"loading {model}"):
            bridge = load_model(model)
        with _progress() as prog:
            task = prog.add_task(f"evaluating {split}", total=len(bias) + len(hint))
            metrics, bias_df, hint_df = run_eval(
                bridge, cfg, bias, hint, progress=lambda n: prog.advance(task, n)
            )
    except LftfError as e:
        _fail(e)
    out.mkdir(parents=True, exist_ok=True)
    bias_df.to_csv(out / "genbias_prompts.csv", index=False)
    hint_df.to_csv(out / "genhint_prompts.csv", index=False)
    record = {**metrics, "config": run_meta(model=model, dataset_version=bias.version, **cfg.to_dict())}
    (out / "metrics.json").write_text(json.dumps(record, indent=2))
    table = Table(title=f"{model} · {split} split")
    for col in ("metric", "value", "95% CI", "n"):
        table.add_column(col)
    table.add_row("AFGB (0 = fair)", f"{metrics['afgb']:.3f}", "[{:.3f}, {:.3f}]".format(*metrics["afgb_ci"]), str(metrics["n"]))
    table.add_row("UB (1 = follows hints)", f"{metrics['ub']:.3f}", "[{:.3f}, {:.3f}]".format(*metrics["ub_ci"]), str(metrics["n_hint"]))
    table.add_row("he+she mass", f"{metrics['mass']:.3f}", "[{:.3f}, {:.3f}]".format(*metrics["mass_ci"]), str(metrics["n"]))
    console.print(table)
    console.print(f"wrote {out / 'metrics.json'} and per-prompt CSVs")


@app.command()
def figures(
    model: str = typer.Option("smollm2-135m"),
    split: str = typer.Option("test"),
    out: Path = typer.Option(Path("figures")),
) -> None:
    """Baseline-bias figures (per-occupation he share vs BLS, templates, hint following)."""
    from . import report
    from .data import load_dataset
    from .metrics import EvalConfig
    from .metrics import evaluate as run_eval
    from .models import load_model

    try:
        bridge = load_model(model)
        bias = load_dataset("genbias", split)
        _, bias_df, hint_df = run_eval(bridge, EvalConfig(split=split), bias, load_dataset("genhint", split))
    except LftfError as e:
        _fail(e)
    paths = report.baseline_figures(bias_df, hint_df, out, title=f"{model} ({split})")
    for p in paths:
        console.print(f"wrote {p}")


@app.command()
def locate(
    model: str = typer.Option("smollm2-135m", help="Registry name, local HF directory, or cached HF id."),
    out: Path = typer.Option(Path("out/locate"), help="Output directory (CSVs, locate.json, figures)."),
    split: str = typer.Option("test"),
    n_pairs: int = typer.Option(8, help="Clean/corrupted pairs for patching."),
    pair_kind: str = typer.Option("hint_swap", help="hint_swap or stereotype_swap."),
    positions: str = typer.Option("last", help="BMI over the last position or all positions."),
    seed: int = typer.Option(0),
) -> None:
    """BMI ranking (+ held-out stability), activation patching, logit lens and attribution patching."""
    from .locate.run import LocateConfig, save_locate
    from .locate.run import locate as run_locate
    from .models import load_model

    try:
        cfg = LocateConfig(split=split, n_pairs=n_pairs, pair_kind=pair_kind, positions=positions, seed=seed)
        with console.status(f"loading {model}"):
            bridge = load_model(model)
        with _progress() as prog:
            task = prog.add_task("locate", total=4)
            res = run_locate(bridge, cfg, progress=lambda s: (prog.update(task, description=s), prog.advance(task)))
        from .data import DATASET_VERSION

        paths = save_locate(res, out, run_meta(model=model, dataset_version=DATASET_VERSION, **cfg.to_dict()))
    except (LftfError, ValueError) as e:
        _fail(e)
    s = res["summary"]
    table = Table(title=f"{model} · locate")
    table.add_column("block")
    table.add_column("BMI")
    table.add_column("rank")
    for r in res["bmi"].nsmallest(5, "rank").itertuples():
        table.add_row(str(r.layer), f"{r.bmi:.4f}", str(r.rank) + (" (tied)" if r.tied else ""))
    console.print(table)
    st = s["stability"]
    console.print(f"held-out stability: Spearman rho {st['spearman_rho']:.3f}, top-1 agree {st['top1_agree']}")
    console.print(f"patching by block (max): {s['by_block_top']}; attribution vs exact: "
                  + ", ".join(f"{k} r={v['pearson_r']:.2f}" for k, v in s["attribution_vs_exact"].items()))
    console.print(f"wrote {len(paths)} files to {out}")


@app.command()
def finetune(
    model: str = typer.Option("smollm2-135m", help="Registry name, local HF directory, or cached HF id."),
    block: str = typer.Option("auto", help="Block index, or 'auto' (BMI rank 1)."),
    exclude: str = typer.Option("0,1", help="Comma-separated blocks 'auto' may not pick (blocks 0-1 have high BMI on any "
                                "input; notebook 02). Pass '' to allow every block."),
    loss: str = typer.Option("balanced", help="paper, sum or balanced."),
    method: str = typer.Option("block", help="block (LFTF), full (FPFT baseline) or lora (peft LoRA baseline)."),
    lr: float = typer.Option(3e-4),
    steps: int = typer.Option(150),
    batch_size: int = typer.Option(32),
    hint_weight: float = typer.Option(0.5, help="Weight of the hint-following cross-entropy (0 = off)."),
    mass_weight: float = typer.Option(1.0, help="Weight of the he+she mass anchor to the base model (0 = off)."),
    kl_weight: float = typer.Option(0.0, help="Weight of KL(base || tuned) on neutral text."),
    checkpoint_every: int = typer.Option(10),
    resume: bool = typer.Option(False, help="Continue an interrupted run from OUT/checkpoint."),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("out/finetune")),
    export: bool = typer.Option(False, help="Also write a full Hugging Face directory to OUT/model."),
) -> None:
    """LFTF: fine-tune only the located block, then evaluate on the test split; writes a safetensors delta."""
    from .metrics import EvalConfig
    from .metrics import evaluate as run_eval
    from .models import export_hf, load_model
    from .tune import TuneConfig, save_delta, tune

    try:
        cfg = TuneConfig(
            block=int(block) if block != "auto" else "auto",
            bmi_exclude=tuple(int(x) for x in exclude.split(",") if x.strip()),
            loss=loss, lr=lr, steps=steps, batch_size=batch_size, hint_weight=hint_weight, mass_weight=mass_weight,
            kl_weight=kl_weight, checkpoint_every=checkpoint_every, seed=seed, method=method, n_val=200,
        )
        with console.status(f"loading {model}"):
            bridge = load_model(model)
        base, _, _ = run_eval(bridge, EvalConfig(split="test"))
        with _progress() as prog:
            task = prog.add_task("fine-tuning", total=steps)

            def show(step, row):
                desc = f"loss {row['loss']:.3f}" + (f" · val AFGB {row['val_afgb']:.3f}" if "val_afgb" in row else "")
                prog.update(task, completed=step, description=desc)

            res = tune(bridge, cfg, out_dir=out, resume=resume, progress=show)
        after, bias_df, hint_df = run_eval(bridge, EvalConfig(split="test"))
    except (LftfError, ValueError) as e:
        _fail(e)
    out.mkdir(parents=True, exist_ok=True)
    from .data import DATASET_VERSION

    meta = {"loss": loss, "config": cfg.to_dict(), "dataset_version": DATASET_VERSION, "before": base, "after": after,
            "best_step": res.best_step}
    save_delta(bridge, res.blocks, res.base_fingerprint, out / "delta", meta)
    res.history.to_csv(out / "history.csv", index=False)
    (out / "metrics.json").write_text(json.dumps({**meta, **run_meta(model=model), "blocks": res.blocks,
                                                  "trainable_params": res.trainable_params}, indent=2, default=str))
    if export:
        export_hf(bridge, out / "model")
    table = Table(title=f"{model} · LFTF on block(s) {res.blocks} · loss {loss}")
    for c in ("metric", "before", "after"):
        table.add_column(c)
    for k, name in (("afgb", "AFGB"), ("ub", "UB"), ("mass", "he+she mass")):
        table.add_row(name, f"{base[k]:.3f}", f"{after[k]:.3f} [{after[k + '_ci'][0]:.3f}, {after[k + '_ci'][1]:.3f}]")
    console.print(table)
    console.print(f"wrote {out}/delta (safetensors + JSON), history.csv, metrics.json")


@app.command()
def compare(
    model: str = typer.Option("smollm2-135m", help="Registry name, local HF directory, or cached HF id."),
    seeds: str = typer.Option("0", help="Comma-separated seeds for every trained method."),
    methods: str = typer.Option("all", help="Comma-separated method names (see `lftf_interp.compare.default_methods`)."),
    steps: int = typer.Option(0, help="Override the shared step budget (0 = keep BUDGET's)."),
    retain: str = typer.Option("default", help="'default' (~1,200 MC items, 24 windows) or 'small' (a quick probe)."),
    reference: Path = typer.Option(None, help="A saved retention reference of the base model (read if present, "
                                   "else computed and written there)."),
    out: Path = typer.Option(Path("out/compare")),
) -> None:
    """LFTF vs baselines (FPFT, LoRA, other blocks, top-k, prompt): AFGB, UB, mass, KL, perplexity, MC accuracy,
    trainable parameters, wall time. Resumable: rows already in OUT/rows.jsonl are not rerun."""
    from .compare import BUDGET, CompareConfig, default_methods, run_compare
    from .models import load_model
    from .retain import RetainConfig

    try:
        with console.status(f"loading {model}"):
            n_layers = load_model(model).cfg.n_layers
        specs = default_methods(n_layers)
        if methods != "all":
            want = [m.strip() for m in methods.split(",") if m.strip()]
            unknown = sorted(set(want) - {s.name for s in specs})
            if unknown:
                raise LftfError(f"Unknown method(s) {unknown}; choose from {[s.name for s in specs]}.")
            by_name = {s.name: s for s in specs}
            specs = [by_name[n] for n in want]  # in the order given
        budget = dict(BUDGET, **({"steps": steps} if steps else {}))
        rcfg = RetainConfig() if retain == "default" else RetainConfig.small()
        cfg = CompareConfig(model=model, seeds=tuple(int(x) for x in seeds.split(",")), budget=budget, retain=rcfg)
    except (LftfError, ValueError) as e:
        _fail(e)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    done = set()
    if rows_path.is_file():
        for line in rows_path.read_text().splitlines():
            r = json.loads(line)
            done.add((r["method"], r["seed"]))
    # A resumed run with a subset of methods keeps the specs of the methods already on disk (rows.jsonl has them all).
    config_path = out / "config.json"
    known = json.loads(config_path.read_text()).get("methods", []) if config_path.is_file() else []
    merged = {m["name"]: m for m in known} | {s.name: s.to_dict() for s in specs}
    config_path.write_text(json.dumps({**cfg.to_dict(), "methods": list(merged.values()), **run_meta(model=model)},
                                      indent=2, default=str))

    def on_row(row: dict) -> None:
        with rows_path.open("a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        console.print(f"{row['method']} seed {row['seed']}: AFGB {row['afgb']:.3f} UB {row['ub']:.3f} mass {row['mass']:.3f} "
                      f"KL {row.get('kl', float('nan')):.4f} ppl {row.get('ppl_change_pct', float('nan')):+.2f}% "
                      f"MC {row.get('mc_acc_change', float('nan')):+.2f} ({row['wall_s']:.0f} s)")

    try:
        ref = None
        if reference is not None:
            from .retain import compute_reference, load_reference, save_reference

            if (reference / "reference.json").is_file():
                ref = load_reference(reference, rcfg)
            else:
                ref = compute_reference(load_model(model), rcfg)
                save_reference(ref, reference)
        run_compare(specs, cfg, load=lambda: load_model(model), ref=ref, on_row=on_row, skip=lambda n, s: (n, s) in done)
    except (LftfError, ValueError) as e:
        _fail(e)
    write_compare_summary(out)


@app.command()
def demo(
    model: str = typer.Option("smollm2-135m", help="Registry name, local HF directory, or cached HF id."),
    out: Path = typer.Option(Path("out/demo")),
    steps: int = typer.Option(150, help="Fine-tune steps (BUDGET's 150 by default)."),
    retain: str = typer.Option("default", help="'default' retention probe or 'small'."),
    seed: int = typer.Option(0),
) -> None:
    """The whole pipeline: evaluate → locate (BMI, patching, lens) → fine-tune the top block → evaluate →
    capability retention → figures. Writes OUT/summary.json and OUT/figures/*.png."""
    from . import report
    from .compare import BUDGET
    from .data import DATASET_VERSION
    from .locate.run import LocateConfig, save_locate
    from .locate.run import locate as run_locate
    from .metrics import EvalConfig
    from .metrics import evaluate as run_eval
    from .models import load_model
    from .retain import (
        RetainConfig,
        compare_retention,
        compute_reference,
        compute_retention,
        retention_summary,
    )
    from .tune import TuneConfig, resolve_blocks, save_delta, tune

    fig_dir = out / "figures"
    try:
        t0 = time.perf_counter()
        with console.status(f"loading {model}"):
            base_model, bridge = load_model(model), load_model(model)
        console.rule("1 · evaluate the base model")
        before, bias_df, hint_df = run_eval(base_model, EvalConfig(split="test", seed=seed))
        report.baseline_figures(bias_df, hint_df, fig_dir, title=f"{model} (test)")
        console.print(f"AFGB {before['afgb']:.3f}  UB {before['ub']:.3f}  mass {before['mass']:.3f}")
        console.rule("2 · locate")
        lcfg = LocateConfig(seed=seed)
        loc = run_locate(base_model, lcfg)
        save_locate(loc, out / "locate", run_meta(model=model, dataset_version=DATASET_VERSION, **lcfg.to_dict()))
        bmi = loc["bmi"]
        console.print("BMI top blocks (test prompts): " + ", ".join(
            f"{int(r.layer)} ({r.bmi:.3f})" for r in bmi.sort_values(["rank", "layer"]).head(4).itertuples()))
        exclude = (0, 1) if base_model.cfg.n_layers > 2 else ()
        cfg = TuneConfig(**{**BUDGET, "steps": steps, "block": "auto", "bmi_exclude": exclude, "seed": seed})
        top = resolve_blocks(bridge, cfg)[0]
        console.rule(f"3 · fine-tune block {top} (BMI rank 1 on train prompts, blocks {list(exclude)} set aside: "
                     "they have high BMI on any input, notebook 02)")
        cfg = TuneConfig(**{**cfg.to_dict(), "block": top})
        with _progress() as prog:
            task = prog.add_task("fine-tuning", total=steps)

            def show(step, row):
                desc = f"loss {row['loss']:.3f}" + (f" · val AFGB {row['val_afgb']:.3f}" if "val_afgb" in row else "")
                prog.update(task, completed=step, description=desc)

            res = tune(bridge, cfg, out_dir=out / "finetune", progress=show)
        console.rule("4 · evaluate the tuned model")
        after, after_bias, _ = run_eval(bridge, EvalConfig(split="test", seed=seed))
        console.rule("5 · capability retention")
        rcfg = RetainConfig(seed=seed) if retain == "default" else RetainConfig.small(seed=seed)
        ref = compute_reference(base_model, rcfg, cache_at=res.blocks)
        ret = compare_retention(ref, compute_retention(bridge, ref, start=min(res.blocks)))
    except (LftfError, ValueError) as e:
        _fail(e)
    save_delta(bridge, res.blocks, res.base_fingerprint, out / "finetune" / "delta", {"config": cfg.to_dict(), "after": after})
    res.history.to_csv(out / "finetune" / "history.csv", index=False)
    ret.to_csv(out / "retention.csv", index=False)
    report.save(report.plot_training_curves(res.history, before, f"LFTF on block {top}"), fig_dir / "training.png")
    report.save(report.plot_before_after(before, after, ret, f"{model}: LFTF on block {top}"), fig_dir / "before_after.png")
    report.save(report.plot_share_shift(bias_df, after_bias), fig_dir / "share_shift.png")
    summary = {"before": before, "after": after, "block": top, "retention": retention_summary(ret),
               "wall_s": time.perf_counter() - t0, **run_meta(model=model, config=cfg.to_dict(), retain=rcfg.to_dict())}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    table = Table(title=f"{model} · LFTF on block {top} · test split")
    for c in ("metric", "base", "tuned"):
        table.add_column(c)
    for k, name in (("afgb", "AFGB ↓"), ("ub", "UB ↑"), ("mass", "he+she mass")):
        table.add_row(name, f"{before[k]:.3f}", f"{after[k]:.3f} [{after[k + '_ci'][0]:.3f}, {after[k + '_ci'][1]:.3f}]")
    for r in ret[ret.metric.isin(["ppl_all", "kl", "mc_all_acc", "asdiv_acc"])].itertuples():
        table.add_row(f"{r.metric} ({r.unit})", f"{r.base:.3f}", f"{r.tuned:.3f} (Δ {r.change:+.3f} [{r.ci_lo:+.3f}, {r.ci_hi:+.3f}])")
    console.print(table)
    console.print(f"wrote {out}/summary.json, retention.csv, finetune/ (delta, history), locate/, figures/ "
                  f"({time.perf_counter() - t0:.0f} s)")


@app.command()
def sweep(
    model: str = typer.Option("smollm2-135m", help="Registry name, local HF directory, or cached HF id."),
    blocks: str = typer.Option("every3", help="Comma-separated blocks, 'all', or 'everyK' (0, K, 2K, ... and the last)."),
    steps: int = typer.Option(40, help="Steps per block (the same budget for every block)."),
    mass_weight: float = typer.Option(0.0, help="Mass-anchor weight (results/block_sweep was run without it)."),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("out/sweep")),
) -> None:
    """Fine-tune each block alone with the same budget and record debiasing vs capability cost, next to its BMI."""
    from .compare import block_sweep
    from .data import load_dataset
    from .locate.bmi import compute_bmi
    from .models import load_model

    try:
        bridge = load_model(model)
        n = bridge.cfg.n_layers
        if blocks == "all":
            chosen = list(range(n))
        elif blocks.startswith("every"):
            k = int(blocks[5:])
            chosen = sorted(set(range(0, n, k)) | {n - 1})
        else:
            chosen = [int(b) for b in blocks.split(",")]
        if bad := [b for b in chosen if not 0 <= b < n]:
            raise LftfError(f"blocks {bad} out of range: this model has blocks 0..{n - 1}.")
        bmi = compute_bmi(bridge, load_dataset("genbias", "test").prompts)
        del bridge
    except (LftfError, ValueError) as e:
        _fail(e)
    out.mkdir(parents=True, exist_ok=True)
    bmi.to_csv(out / "bmi.csv", index=False)
    rows_path = out / "rows.jsonl"
    done = {json.loads(x)["block"] for x in rows_path.read_text().splitlines()} if rows_path.is_file() else set()

    def on_row(row: dict) -> None:
        with rows_path.open("a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        console.print(f"block {row['block']}: AFGB {row['afgb']:.3f} UB {row['ub']:.3f} KL {row['kl']:.4f} "
                      f"ppl {row['ppl_change_pct']:+.2f}% ({row['wall_s']:.0f} s)")

    from .compare import BUDGET

    budget = {**BUDGET, "steps": steps, "mass_weight": mass_weight}
    block_sweep(lambda: load_model(model), [b for b in chosen if b not in done], budget=budget, seed=seed, on_row=on_row)
    (out / "config.json").write_text(json.dumps(run_meta(model=model, blocks=chosen, steps=steps, seed=seed, budget=budget),
                                                indent=2))


def write_compare_summary(out: Path) -> str:
    """rows.jsonl → summary.csv (per method, pooled over seeds) and table.md."""
    import pandas as pd

    from .compare import aggregate, markdown_table

    rows = pd.DataFrame([json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()])
    config_path = out / "config.json"  # list methods in the configured order, not the order they were run in
    order = [m["name"] for m in json.loads(config_path.read_text()).get("methods", [])] if config_path.is_file() else []
    rank = {n: i for i, n in enumerate(order)}
    rows = rows.sort_values("method", key=lambda c: c.map(lambda n: rank.get(n, len(rank))), kind="stable")
    base = rows[rows.method == "base"]
    agg = aggregate(rows, base_mass=float(base.mass.iloc[0]) if len(base) else None,
                    base_afgb=float(base.afgb.iloc[0]) if len(base) else None)
    agg.to_csv(out / "summary.csv", index=False)
    md = markdown_table(agg)
    (out / "table.md").write_text(md + "\n")
    console.print(md)
    return md


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":
    main()

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
    exclude: str = typer.Option("", help="Comma-separated blocks 'auto' may not pick, e.g. '0'."),
    loss: str = typer.Option("balanced", help="paper, sum or balanced."),
    lr: float = typer.Option(1e-4),
    steps: int = typer.Option(60),
    batch_size: int = typer.Option(32),
    hint_weight: float = typer.Option(0.0, help="Weight of the hint-following cross-entropy."),
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
            loss=loss, lr=lr, steps=steps, batch_size=batch_size, hint_weight=hint_weight,
            kl_weight=kl_weight, checkpoint_every=checkpoint_every, seed=seed,
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


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":
    main()

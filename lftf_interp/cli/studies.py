"""``lftf validity``, ``lftf holdout``, ``lftf mechanism`` and ``lftf weight-search``: what the fine-tune changes
beyond its template, and a term's weight chosen on held-out material.
Registered on :mod:`lftf_interp.cli.base`'s app (``lftf_interp.cli.main`` imports this module); thin like it."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import typer

from lftf_interp.cli.base import MODEL, command, config_options, console, executor_options, option
from lftf_interp.errors import LftfError
from lftf_interp.experiments import studies, weights
from lftf_interp.experiments.jobs import ExecutorConfig
from lftf_interp.experiments.sentences import locate_sentences_to
from lftf_interp.options import floats, ints, items
from lftf_interp.probes import AXIS_PROBES, EXTRA_PROBES, PROBES, ValidityConfig


@command
@config_options(ValidityConfig, into="probing", skip=("probes",))
def validity(
    model: str = MODEL,
    delta: Path = typer.Option(
        None, help="A delta directory (`lftf finetune`'s OUT/delta) applied to the base first."
    ),
    probes: str = typer.Option(
        None,
        help=f"Comma-separated probes (default: all of {', '.join(PROBES)} on a gendered axis, else "
        f"{', '.join(AXIS_PROBES)}); on request also {', '.join(EXTRA_PROBES)}.",
    ),
    against: Path = typer.Option(
        None,
        help="Another `lftf validity` folder (e.g. the base model's): also write "
        "OUT/paired.csv, each probe's change with a paired bootstrap CI over items.",
    ),
    out: Path = typer.Option(Path("out/validity")),
    probing: dict | None = None,  # the other ValidityConfig fields, one option each (config_options)
) -> None:
    """Beyond the template: both AFGB variants, gendered-noun accuracy, a_s / a_f, WinoBias / Winogender
    pro-preference, UB per hint kind and on unseen hint kinds, arithmetic, paper-style prompts, long context."""
    given: dict = {"probes": items(probes)} if probes else {}  # else the axis's default probes
    cfg = ValidityConfig(**given, **(probing or {}))
    rec = studies.validity_to(model, out, delta, cfg, say=console.rule)
    for k, v in rec.items():
        if isinstance(v, float):
            console.print(
                f"{k}: {v:.3f}"
                + (f" [{rec[k + '_ci'][0]:.3f}, {rec[k + '_ci'][1]:.3f}]" if k + "_ci" in rec else "")
            )
    if against is not None:
        paired = studies.paired_changes(against, out)
        paired.to_csv(out / "paired.csv", index=False)
        console.print(paired.round(3).to_string(index=False))
    console.print(f"wrote {out}/metrics.json and one CSV per probe" + (", paired.csv" if against else ""))


@command
def holdout(
    model: str = MODEL,
    kinds: str = typer.Option(
        "", help="Comma-separated hint kinds to hold out one at a time (default: all)."
    ),
    steps: int = typer.Option(150),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("out/holdout")),
) -> None:
    """Leave-one-hint-kind-out: LFTF without kind k in training, UB on kind k. Resumable (OUT/rows.jsonl)."""
    chosen = list(items(kinds)) or None
    rows = studies.holdout_to(
        model,
        out,
        chosen,
        steps,
        seed,
        on_row=lambda r: console.print(
            f"without {r['held_out']}: UB on it {r['ub_held_out']:.3f}, on the others {r['ub_other']:.3f}"
        ),
    )
    console.print(
        rows[["held_out", "ub_held_out", "ub_other", "ub_unseen", "afgb"]].round(3).to_string(index=False)
    )


@command(shares=("paths",))  # the two write their own files to one folder
def mechanism(
    model: str = MODEL,
    delta: Path = typer.Option(..., help="A one-block delta (`lftf finetune`'s OUT/delta)."),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("out/mechanism")),
) -> None:
    """Which heads and neurons of the tuned block changed most (by weight and by their direct effect on the
    pronoun logits, before and after), and how much bias returns when the top-k of them are restored to the base
    weights (against k random ones), and through which later sub-layers the rest of the change reaches the
    logits. Resumable."""
    s = studies.mechanism_to(model, delta, out, seed=seed)
    a = s["attribution"]
    console.print(
        f"block {s['block']}: base AFGB {s['base']['afgb']:.3f}, tuned {s['tuned']['afgb']:.3f}; logit "
        f"difference towards the base preference {a['logit_diff_before']:.2f} → {a['logit_diff_after']:.2f}, "
        f"of it the block's MLP directly {a['mlp_direct_before']:.2f} → {a['mlp_direct_after']:.2f}, "
        f"attention {a['attn_direct_before']:.2f} → {a['attn_direct_after']:.2f}"
    )
    for k, v in s["returned_top"].items():
        console.print(
            f"restore top {k}: {100 * v:.0f} % of the removed bias returns "
            f"(by attribution change: {100 * s['returned_top_dla'].get(k, float('nan')):.0f} %; "
            f"random: {100 * s['returned_random'].get(k, float('nan')):.0f} %)"
        )
    p = s["paths"]
    later = ", ".join(f"block {k} {100 * v:.0f} %" for k, v in p["later_blocks_own_share"].items())
    console.print(
        f"of the change: the tuned block's own direct effect {100 * sum(p['tuned_block_own_share'].values()):.0f} %"
        f"{'; carried by later blocks: ' + later if later else ''}; the final norm's scale {100 * p['scale_share']:.0f} %"
    )
    console.print(f"wrote {out}/units.csv, attribution.csv, restore.csv, paths.csv, mechanism.json")


@command(shares=("mechanism",))
def paths(
    model: str = MODEL,
    delta: Path = typer.Option(..., help="A one-block delta (`lftf finetune`'s OUT/delta)."),
    out: Path = typer.Option(Path("out/mechanism")),
) -> None:
    """Path patching: through which later heads and MLPs, and from which tokens, the tuned block's change
    reaches the pronoun logits (also written by `lftf mechanism`)."""
    s = studies.paths_to(model, delta, out)
    console.print(
        f"block {s['block']}: signed logit difference {s['logit_diff_base']:.3f} → {s['logit_diff_tuned']:.3f}; "
        f"single receivers add up to {s['sum_of_single_receivers']['all']:.3f} of {s['total_change']:.3f}"
    )
    for r in s["top_receivers"][:5]:
        name = (
            "readout"
            if r["receiver"] == "direct"
            else f"{r['receiver']} {r['layer']}" + (f".{r['unit']}" if r["receiver"] == "head" else "")
        )
        console.print(f"  {name}: {100 * r['share']:.0f} % of the change")
    console.print(f"wrote {out}/path_patching.csv, path_patching.json")


@command
def block_material(
    model: str = MODEL,
    n: int = typer.Option(64, help="Prompts per material."),
    context: int = typer.Option(1024, help="Tokens of neutral text before the template prompts."),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("out/block_material")),
) -> None:
    """Does BMI's block change with the material: the template, the template after a long stretch of text, and
    WinoBias sentences?"""
    s = studies.block_material_to(model, out, n, context, seed)
    for name, m in s["materials"].items():
        console.print(
            f"{name}: top-3 BMI blocks {m['top3']} (set aside {m['excluded']}); Spearman vs the template "
            f"{m['spearman_vs_template']:.2f}"
        )
    console.print(f"wrote {out}/bmi.csv, block_material.json")


@command
def locate_sentences(
    model: str = MODEL,
    axis: str = typer.Option("gender", help="An axis with counterparts (its StereoSet bias type is read)."),
    split: str = typer.Option("fit", help="StereoSet target terms: fit, select or test."),
    n: int = typer.Option(64, help="Template prompts for the template's BMI."),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("out/locate_sentences")),
) -> None:
    """Is the block that carries sentence bias the block that carries template bias? Twin patching and BMI on
    StereoSet sentences cut before their blank, beside BMI on the template."""
    s = locate_sentences_to(model, out, axis, split, n, seed)
    console.print(
        f"{s['n_pairs']} prefix / twin pairs (mean stereotype-minus-anti logit difference {s['effect']:+.3f}); "
        f"twin patching top blocks {s['patching_top3']} (shares {[round(x, 2) for x in s['patching_share_top3']]})"
    )
    for name, b in s["bmi"].items():
        console.print(f"BMI on {name}: top-3 {b['top3']} (set aside {b['excluded']})")
    console.print(f"logit lens: half of the model's difference is there after block {s['lens_half_block']}")
    console.print(f"wrote {out}/twin_patching.csv, pair_lens.csv, bmi.csv, locate_sentences.json")


@command
def transfer(
    model: str = MODEL,
    axes: str = typer.Option(
        "gender,religion,race,gender3,pronouns",
        help="Comma-separated axes: tuned on each (its delta under --tuned), evaluated on all.",
    ),
    targets: str = typer.Option(None, help="Comma-separated axes to evaluate on (default: --axes)."),
    tuned: Path = typer.Option(
        Path("results/axes"), help="Where `lftf finetune --axis A --out TUNED/A/finetune` wrote."
    ),
    stereoset: bool = typer.Option(True, help="Also StereoSet intrasentence SS / LMS / ICAT per bias type."),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("out/transfer")),
) -> None:
    """Cross-bias transfer: the base and each axis's LFTF model scored on every axis (and StereoSet); BMI
    profiles of the axes and their overlap."""
    from lftf_interp.experiments import transfer as tr

    axes_ = items(axes)
    targets_ = items(targets) if targets else None
    rows = tr.transfer_to(
        model,
        out,
        axes_,
        tuned,
        stereoset,
        seed,
        on_row=lambda r: console.print(f"{r['source']} → {r['target']} ({r['kind']})"),
        targets=targets_,
    )
    for value in ("bias", "hint_following"):
        console.print(f"{value} (rows: tuned on; columns: evaluated on)")
        console.print(tr.matrix(rows, value).round(3).to_string())
    console.print(f"wrote {out}/rows.jsonl, bmi_profiles.csv, overlap.csv")


@command
def families(
    runs: str = typer.Option(
        "smollm2-135m=results/axes/gender/finetune:results/block_sweep,"
        "gemma3-270m=results/models/gemma3-270m/finetune:results/models/gemma3-270m/block_sweep",
        help="Comma-separated NAME=FINETUNE_DIR:SWEEP_DIR (what `lftf finetune --block auto` and `lftf sweep` wrote).",
    ),
    out: Path = typer.Option(
        Path("results/models"), help="Writes families.json, families.md and families.png."
    ),
) -> None:
    """Which block, and why, across model families: base bias, BMI's top blocks, the block that debiases best
    at the least capability cost, the last block, and whether BMI predicts the sweep (with CIs)."""
    from lftf_interp.experiments.families import families_to, sweep_table
    from lftf_interp.plots.families import plot_families

    parsed = {}
    for item in items(runs):
        name, _, dirs = item.partition("=")
        ft, _, sw = dirs.partition(":")
        if not (name and ft and sw):
            raise LftfError(f"--runs item {item!r} is not NAME=FINETUNE_DIR:SWEEP_DIR.")
        parsed[name] = (Path(ft), Path(sw))
    rows = families_to(parsed, out)
    fig = plot_families(rows, {n: sweep_table(sw) for n, (_, sw) in parsed.items()})
    fig.savefig(out / "families.png", dpi=130)
    console.print((out / "families.md").read_text())
    console.print(f"wrote {out}/families.json, families.md, families.png")


W = weights.WeightSearch
_W: dict = {f.name: f.default for f in fields(W)}  # the tuple fields, as the CLI's comma-separated lists


@command
@executor_options
def weight_search(
    model: str = MODEL,
    term: str = option(W, "term"),
    values: str = option(
        W,
        "weights",
        "--weights",
        default=",".join(f"{w:g}" for w in _W["weights"]),
        help="Comma-separated weights.",
    ),
    base: str = option(W, "base"),
    seeds: str = option(
        W, "seeds", default=",".join(map(str, _W["seeds"])), help="Comma-separated seeds per weight."
    ),
    steps: int = typer.Option(0, help="Override the shared step budget (0 = keep BUDGET's)."),
    retain: str = option(W, "retain"),
    ub_min: float = option(W, "ub_min"),
    kl_max: float = option(W, "kl_max"),
    afgb_slack: float = option(W, "afgb_slack"),
    out: Path = typer.Option(Path("out/weight_search")),
    executor: ExecutorConfig | None = None,  # the grid options (executor_options)
) -> None:
    """Choose a term's weight on held-out material: BASE trained with each weight, scored on the validation prompts
    and WinoBias dev-select (the WinoBias terms train on dev-fit); the eligible weight with the lowest dev-select
    preference is chosen. Writes OUT/search.md and OUT/choice.json. Resumable (OUT/rows.jsonl)."""
    search = W(
        term,
        floats(values, "a comma-separated list of weights (e.g. 1,2,4)"),
        base,
        ints(seeds),
        retain,
        {"steps": steps} if steps else None,
        ub_min,
        kl_max,
        afgb_slack,
    )
    by = weights.weight_search_to(
        model,
        out,
        search,
        executor,
        on_row=lambda r: console.print(
            f"{r['method']} seed {r['seed']}: bias {r['afgb']:.3f} UB {r['ub']:.3f} "
            f"dev-select {r.get('winobias_select_pro', float('nan')):.3f} ({r['wall_s']:.0f} s)"
        ),
    )
    console.print((out / "search.md").read_text())
    chosen = by[by.chosen]
    console.print(f"chosen: {term} = {chosen.weight.iloc[0]:g}" if len(chosen) else "no weight is eligible")

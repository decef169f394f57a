"""The studies of what the fine-tune changes beyond its template, each writing a results folder:

* :func:`validity_to` — every probe of :mod:`lftf_interp.probes` on a model (optionally with a delta).
* :func:`holdout_to` — leave-one-hint-kind-out: LFTF trained without hint kind k, UB measured on kind k
  (resumable: one row per kind in OUT/rows.jsonl).
* :func:`mechanism_to` — which heads and neurons of the tuned block carry the change (by weight change and by
  their direct effect on the pronoun logits before and after), and how much bias returns when the top-k of them
  are restored to the base weights (vs k random ones), and through which later sub-layers the rest of the change
  reaches the logits.
* :func:`block_material_to` — does the block BMI picks change when the bias prompts follow 1,024 tokens of text,
  or are WinoBias sentences instead of the template?
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from lftf_interp.data import DEFAULT_AXIS, HINTS, NEUTRAL_PROMPTS, load_axis
from lftf_interp.data.datasets import load_dataset, sample_rows
from lftf_interp.data.external import winobias_pairs
from lftf_interp.errors import LftfError
from lftf_interp.experiments.compare import BUDGET
from lftf_interp.experiments.rundir import describe_run, read_rows, recorder, write_json
from lftf_interp.locate import compute_bmi
from lftf_interp.locate.choose import BlockChoice, artefact_blocks, resolve_block
from lftf_interp.metrics.groups import EvalConfig, evaluate
from lftf_interp.models.loading import load_model
from lftf_interp.models.runner import canonical_state_dict
from lftf_interp.probes import (
    RestorePlan,
    ValidityConfig,
    delta_units,
    neutral_documents,
    restore_curve,
    validity_report,
)
from lftf_interp.probes.beyond import hint_kinds
from lftf_interp.probes.mechanism import attribution_change, path_change, sublayer_dla, unit_dla
from lftf_interp.probes.paths import path_patching
from lftf_interp.store import write_atomic
from lftf_interp.tune import TuneConfig, apply_delta, read_delta, tune
from lftf_interp.tune.context import stretches

# columns of the per-item CSVs that copy the external datasets (WinoBias / Winogender sentences, Winogender's BLS
# shares, the Bolukbasi scores); results keep their keys and our values only, never the data itself
EXTERNAL_COLUMNS = {
    "winobias": ["pro", "anti", "prefix"],
    "winobias_parts": ["pro", "anti", "prefix"],
    "winogender": ["male", "female", "bls_pct_female"],
    "slopes": ["definitional", "stereotypical"],
}


def validity_to(
    model: str,
    out: Path,
    delta: Path | None = None,
    cfg: ValidityConfig = ValidityConfig(),
    say: Callable[[str], None] | None = None,
) -> dict:
    """The probes on the base model (or base + ``delta``) → OUT/metrics.json (with the axis's test-split bias
    score, hint following and mass beside them: AFGB / paper's AFGB / UB on gender) and OUT/<probe>.csv (without
    the external datasets' own text and scores, :data:`EXTERNAL_COLUMNS`); returns the metrics record."""
    if delta is not None:
        read_delta(delta)  # a bad delta is refused before the model loads
    bridge = load_model(model)
    info = apply_delta(bridge, delta) if delta is not None else None
    main, _, _ = evaluate(bridge, EvalConfig(axis=cfg.axis, split="test", n_boot=cfg.n_boot, seed=cfg.seed))
    flat, frames = validity_report(bridge, cfg, say)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        df.drop(columns=EXTERNAL_COLUMNS.get(name, []), errors="ignore").to_csv(
            out / f"{name}.csv", index=False
        )
    record = {
        **main,
        **flat,
        "config": describe_run(
            model=model,
            delta=str(delta) if delta else None,
            blocks=info["blocks"] if info else [],
            validity=cfg.to_dict(),
        ),
    }
    write_json(out / "metrics.json", record)
    return record


# probe CSV → (per-item value, key columns that pair the items of two runs)
# paired row → (the probe's per-item CSV, the value compared, the keys that pair items across runs)
PAIRED = {
    "winobias": ("winobias", "pro_pref", ["type", "line"]),
    "winogender": ("winogender", "pro_pref", ["occupation", "participant", "answer"]),
    "math": ("math", "correct", ["item"]),
    "gendered": ("gendered", "right", ["prompt"]),
    "winobias_pronoun_gap": ("winobias_parts", "d_pronoun", ["type", "line"]),
    "winobias_rest_gap": ("winobias_parts", "d_rest", ["type", "line"]),
}


def paired_changes(base_dir: Path, tuned_dir: Path, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per :data:`PAIRED` row found in both folders (:func:`validity_to`'s): base and tuned value and the change
    with a **paired** bootstrap 95 % CI over items (both runs scored the same items)."""
    import numpy as np

    rows = []
    for label, (probe, col, keys) in PAIRED.items():
        if not ((base_dir / f"{probe}.csv").is_file() and (tuned_dir / f"{probe}.csv").is_file()):
            continue
        a, b = (_item_values(pd.read_csv(d / f"{probe}.csv"), probe) for d in (base_dir, tuned_dir))
        m = a[[*keys, col]].merge(b[[*keys, col]], on=keys, suffixes=("_base", "_tuned"))
        d = (m[col + "_tuned"] - m[col + "_base"]).to_numpy(float)
        boots = d[np.random.default_rng(seed).integers(0, len(d), (n_boot, len(d)))].mean(1)
        rows.append(
            {
                "probe": label,
                "n": len(d),
                "base": m[col + "_base"].mean(),
                "tuned": m[col + "_tuned"].mean(),
                "change": d.mean(),
                "ci_lo": float(np.quantile(boots, 0.025)),
                "ci_hi": float(np.quantile(boots, 0.975)),
            }
        )
    return pd.DataFrame(rows)


def _item_values(df: pd.DataFrame, probe: str) -> pd.DataFrame:
    if probe == "math":  # the same seeded items in the same order (questions may repeat)
        return df.assign(correct=(df["pred"] == df["answer"]).astype(float), item=range(len(df)))
    if probe == "gendered":
        return df.assign(right=(df["ub"] > 0.5).astype(float))
    return df


def holdout_to(
    model: str,
    out: Path,
    kinds: Sequence[str] | None = None,
    steps: int = BUDGET["steps"],
    seed: int = 0,
    on_row: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """For each hint kind k (default: every GenHintEval kind): LFTF on BMI's block with the shared budget but
    without kind k in its hint term and validation; then UB per kind on the test split. Row: held_out, ub_held_out
    (UB on kind k), ub_other (mean UB over the other kinds), ub_unseen, afgb, afgb_paper."""
    all_kinds = [k for k, _, _ in HINTS]
    kinds = list(kinds or all_kinds)
    if bad := sorted(set(kinds) - set(all_kinds)):
        raise LftfError(f"Unknown hint kind(s) {bad}; GenHintEval's kinds are {all_kinds}.")
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    done = {r["held_out"] for r in read_rows(rows_path)}
    record = recorder(rows_path, on_row)
    for k in (k for k in kinds if k not in done):
        bridge = load_model(model)
        blocks, _ = resolve_block(bridge, "auto", seed=seed)
        cfg = TuneConfig(
            **{**BUDGET, "steps": steps, "block": tuple(blocks), "seed": seed, "hint_exclude": (k,)}
        )
        tune(bridge, cfg)
        m, _, _ = evaluate(bridge, EvalConfig(split="test", seed=seed))
        per, _ = hint_kinds(bridge, seed=seed)
        others = [per[f"ub_kind_{o}"] for o in all_kinds if o != k]
        record(
            {
                "held_out": k,
                "blocks": blocks,
                "seed": seed,
                "steps": steps,
                "ub_held_out": per[f"ub_kind_{k}"],
                "ub_other": sum(others) / len(others),
                "ub_unseen": per["ub_unseen"],
                "ub": m["ub"],
                "afgb": m["afgb"],
                "afgb_paper": m["afgb_paper"],
                **{key: v for key, v in per.items() if key.startswith("ub_")},
            }
        )
    write_json(
        out / "config.json", describe_run(model=model, kinds=kinds, steps=steps, seed=seed, budget=BUDGET)
    )
    return pd.DataFrame(read_rows(rows_path))


def _restore_table(bridge, base, block, measure, plan, rankings, out, base_afgb: float) -> pd.DataFrame:
    """The restore curve (:func:`~lftf_interp.probes.mechanism.restore_curve`) with the share of the removed bias
    each restore brings back → OUT/restore.csv; resumable: the rows already there are kept, not rerun."""
    old = (
        pd.read_csv(out / "restore.csv")
        if (out / "restore.csv").is_file()
        else pd.DataFrame(columns=["kind", "k", "order"])
    )
    done = {(r.kind, int(r.k), r.order) for r in old.itertuples() if r.kind != "none"}
    curve = restore_curve(bridge, base, block, measure, plan, rankings=rankings, skip=done)
    rest = pd.concat(
        [curve[curve.kind != "none"], old[old.kind != "none"].drop(columns="bias_returned", errors="ignore")]
    )
    curve = pd.concat(
        [curve[curve.kind == "none"], rest.sort_values(["kind", "order", "k", "draw"])], ignore_index=True
    )
    tuned = curve[curve.kind == "none"].iloc[0]
    gap = base_afgb - tuned["afgb"]
    curve["bias_returned"] = (curve["afgb"] - tuned["afgb"]) / gap if gap else float("nan")
    write_atomic(
        out / "restore.csv", curve.to_csv(index=False)
    )  # what a resumed run reads: whole or the old one
    return curve


def _returned(curve: pd.DataFrame) -> dict:
    """The share of the removed bias that returns per restore: top units by weight change, by attribution
    change, and the mean over random draws."""
    top = curve[curve.order.isin(["top", "top-dla"]) & (curve.kind != "none")]
    rand = curve[curve.order == "random"].groupby(["kind", "k"], as_index=False)["bias_returned"].mean()
    return {
        "returned_top": {
            f"{r.kind}@{r.k}": float(r.bias_returned) for r in top.itertuples() if r.order == "top"
        },
        "returned_top_dla": {
            f"{r.kind}@{r.k}": float(r.bias_returned) for r in top.itertuples() if r.order == "top-dla"
        },
        "returned_random": {f"{r.kind}@{r.k}": float(r.bias_returned) for r in rand.itertuples()},
    }


def mechanism_to(
    model: str,
    delta: Path,
    out: Path,
    heads: Sequence[int] = (1, 2, 3, 5, 9),
    neurons: Sequence[int] = (1, 16, 64, 256, 768, 1536),
    n_random: int = 3,
    seed: int = 0,
) -> dict:
    """Heads / KV heads / neurons of the delta's block ranked by weight change → OUT/units.csv; each head's and
    neuron's direct effect towards the base model's preferred pronoun on the *validation* bias prompts (so the
    ranking is never chosen on what the restores measure), before and after
    (:func:`~lftf_interp.probes.mechanism.attribution_change`) → OUT/attribution.csv; AFGB (both variants), UB
    and mass on the test split with the top-k units restored to the base weights — ranked by weight change
    (``top``), by attribution change (``top-dla``), or k random ones → OUT/restore.csv (resumable: rows already
    there are kept); every sub-layer's direct effect before and after, its change split into own and final-norm
    scale (:func:`~lftf_interp.probes.mechanism.path_change`, validation prompts) → OUT/paths.csv; the share of
    the removed bias that returns, the attribution and path summaries → OUT/mechanism.json."""
    blocks = read_delta(delta)["blocks"]  # a bad delta is refused before the model loads
    if len(blocks) != 1:
        raise LftfError(f"mechanism_to reads one tuned block; the delta at {delta} tunes {blocks}.")
    block = blocks[0]
    bridge = load_model(model)
    base = {n: p.detach().clone() for n, p in canonical_state_dict(bridge).items()}
    prompts = load_dataset("genbias", "validation").df["prompt"].tolist()  # ranks units; the restores: test

    def measure() -> dict:
        m, _, _ = evaluate(bridge, EvalConfig(split="test", n_boot=100, seed=seed))
        return {k: m[k] for k in ("afgb", "afgb_paper", "ub", "mass")}

    base_m, dla_before, sub_before = (
        measure(),
        unit_dla(bridge, block, prompts),
        sublayer_dla(bridge, prompts),
    )
    apply_delta(bridge, delta)
    units = delta_units(bridge, base, block)
    attr, attr_summary = attribution_change(dla_before, unit_dla(bridge, block, prompts))
    paths, paths_summary = path_change(sub_before, sublayer_dla(bridge, prompts))
    out.mkdir(parents=True, exist_ok=True)
    paths.to_csv(out / "paths.csv", index=False)
    units.to_csv(out / "units.csv", index=False)
    attr = attr.merge(
        units[["kind", "unit", "delta_norm"]].rename(columns={"delta_norm": "weight_change"}),
        on=["kind", "unit"],
    )
    attr.to_csv(out / "attribution.csv", index=False)
    plan = RestorePlan({"head": heads, "kv_head": (1, 3), "neuron": neurons}, n_random, seed)
    curve = _restore_table(
        bridge, base, block, measure, plan, {"top": units, "top-dla": attr}, out, base_m["afgb"]
    )
    tuned = curve[curve.kind == "none"].iloc[0]
    neu = attr[attr.kind == "neuron"]
    attr_summary["neuron_spearman_weight_vs_dla_change"] = float(
        neu["weight_change"].rank().corr(neu["dla_change"].abs().rank())
    )
    summary = {
        "block": block,
        "base": base_m,
        "tuned": {k: float(tuned[k]) for k in base_m},
        "top_share_of_delta": {
            kind: _share(units[units.kind == kind], ks) for kind, ks in (("head", heads), ("neuron", neurons))
        },
        **_returned(curve),
        "attribution": attr_summary,
        "paths": {**paths_summary, **_path_shares(paths, block)},
        "config": describe_run(
            model=model,
            delta=str(delta),
            heads=list(heads),
            neurons=list(neurons),
            n_random=n_random,
            n_prompts=len(prompts),
        ),
    }
    write_json(out / "mechanism.json", summary)
    _write_paths(
        bridge, base, block, out, dict(model=model, delta=str(delta))
    )  # the tuned bridge, loaded once
    return summary


def paths_to(model: str, delta: Path, out: Path, batch_size: int = 32) -> dict:
    """Path patching from the delta's block to every head and MLP of the later blocks and the readout, the
    tuned block's output change restricted to all / the last / the earlier tokens, on the *validation* bias
    prompts (:func:`~lftf_interp.probes.paths.path_patching`) → OUT/path_patching.csv and path_patching.json
    (the total change, the single receivers' sum per position set, and the receivers with the largest shares)."""
    blocks = read_delta(delta)["blocks"]  # a bad delta is refused before the model loads
    if len(blocks) != 1:
        raise LftfError(f"paths_to reads one tuned block; the delta at {delta} tunes {blocks}.")
    bridge = load_model(model)
    base = {n: p.detach().clone() for n, p in canonical_state_dict(bridge).items()}
    apply_delta(bridge, delta)
    return _write_paths(bridge, base, blocks[0], out, dict(model=model, delta=str(delta)), batch_size)


def _write_paths(bridge, base: dict, block: int, out: Path, run: dict, batch_size: int = 32) -> dict:
    """:func:`paths_to`'s measurement and files, on a tuned bridge and its block's base weights."""
    prompts = load_dataset("genbias", "validation").df["prompt"].tolist()
    frame, summary = path_patching(bridge, base, block, prompts, batch_size=batch_size)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "path_patching.csv", frame.to_csv(index=False))
    every = frame[frame.positions == "all"]
    top = every.loc[every["share"].abs().sort_values(ascending=False).index]
    summary["top_receivers"] = json.loads(top.head(10).to_json(orient="records"))
    by = frame.groupby(["positions", "receiver"])["share"].sum()
    summary["share_by_kind"] = {p: {k: float(v) for k, v in by[p].items()} for p in frame.positions.unique()}
    summary["config"] = describe_run(**run, n_prompts=len(prompts))
    write_json(out / "path_patching.json", summary)
    return summary


def _path_shares(paths: pd.DataFrame, block: int) -> dict:
    """Shares of the signed logit-difference change: the tuned block's own direct change, each later block's own
    change (carried there by the tuned block's output) and everything upstream (scale only: its outputs are
    unchanged)."""
    own = paths.set_index("component")["own_share"]
    later = paths[paths.layer > block].groupby("layer")["own_share"].sum()
    return {
        "tuned_block_own_share": {k: float(own[f"{k}{block}"]) for k in ("attn", "mlp")},
        "later_blocks_own_share": {int(k): float(v) for k, v in later.items()},
        "upstream_own_share": float(paths[paths.layer < block]["own_share"].sum()),
    }


def _share(units: pd.DataFrame, ks: Sequence[int]) -> dict:
    """Share of the kind's squared delta norm held by its top-k units."""
    sq = units.sort_values("rank")["delta_norm"].pow(2)
    total = float(sq.sum()) or 1.0
    return {int(k): float(sq.iloc[:k].sum() / total) for k in ks}


__all__ = ["PAIRED", "holdout_to", "mechanism_to", "paired_changes", "validity_to"]


def block_material_to(model: str, out: Path, n: int = 64, context: int = 1024, seed: int = 0) -> dict:
    """BMI per block on three kinds of material: ``n`` of the template's training prompts, the same prompts after
    ``context`` tokens of neutral text (the context term's documents), and ``n`` WinoBias dev-fit sentences cut
    before their pronoun; on each, the embedding-artefact blocks set aside as ``--block auto`` does, and the
    three top blocks. → OUT/bmi.csv (material, layer, bmi, sem, rank), OUT/block_material.json."""
    bridge = load_model(model)
    template = sample_rows(load_axis(DEFAULT_AXIS).bias_prompts("train"), n, seed).prompt.tolist()
    texts = stretches(bridge, neutral_documents(bridge, seed), [context] * n, seed)
    wino = winobias_pairs(None, "dev-fit").sample(n=n, random_state=seed)["prefix"].tolist()
    material = {
        "template": template,
        f"template after {context} tokens": [t + p for t, p in zip(texts, template, strict=True)],
        "winobias dev-fit": wino,
    }
    neutral = compute_bmi(bridge, NEUTRAL_PROMPTS)
    frames, summary = [], {}
    for name, prompts in material.items():
        bmi = compute_bmi(bridge, prompts, batch_size=8)
        choice = BlockChoice([], artefact_blocks(bmi, neutral), bmi, neutral)
        frames.append(bmi.assign(material=name))
        summary[name] = {"excluded": choice.excluded, "top3": choice.ranked[:3], "n": len(prompts)}
    table = pd.concat(frames, ignore_index=True)
    base = table[table.material == "template"].set_index("layer").bmi
    for name in material:
        other = table[table.material == name].set_index("layer").bmi
        summary[name]["spearman_vs_template"] = float(spearmanr(base, other.loc[base.index]).statistic)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "bmi.csv", table[["material", "layer", "bmi", "sem", "rank"]].to_csv(index=False))
    result = {"materials": summary, "run": describe_run(model=model, n=n, context=context, seed=seed)}
    write_json(out / "block_material.json", result)
    return result

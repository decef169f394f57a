"""Figures of "What the fine-tune changes, and what it does not" (notebook 07, README): each function takes
what :mod:`lftf_interp.experiments.studies` / ``lftf compare`` wrote (frames or dicts) and returns a matplotlib Figure."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lftf_interp.plots.style import themed

# (column, label, the value a debiased model should keep or reach)
PANELS = [
    ("afgb", "AFGB (ours) ↓", 0.0),
    ("afgb_paper", "AFGB (paper's) ↓", 0.0),
    ("ctx1024_afgb", "AFGB after 1,024 tokens ↓", 0.0),
    ("gendered_acc", "gendered-noun acc ↑", None),
    ("a_f", "a_f (definitional) — keep", None),
    ("a_s", "a_s (stereotypical) → 0", 0.0),
    ("winobias_pro", "WinoBias pro-pref → 0.5", 0.5),
    ("winogender_pro", "Winogender pro-pref → 0.5", 0.5),
    ("ub_unseen", "UB, unseen hint kinds ↑", None),
    ("math_acc", "arithmetic acc ↑", 0.25),
    ("ub", "UB, seen hint kinds ↑", None),
    ("kl", "KL to base (retention text) ↓", 0.0),
]


@themed
def plot_methods(summary: pd.DataFrame, panels=PANELS) -> plt.Figure:
    """One panel per quantity, one bar per method (mean over seeds, ± the t-interval where there are >= 2);
    the dashed line is the base model, the dotted one the target (0, 0.5, or chance for arithmetic)."""
    rows = summary[summary.method != "prompt"].reset_index(drop=True)
    cols = 3
    fig, axes = plt.subplots(
        int(np.ceil(len(panels) / cols)), cols, figsize=(13, 3.0 * np.ceil(len(panels) / cols))
    )
    base = rows[rows.method == "base"].iloc[0] if (rows.method == "base").any() else None
    for ax, (c, label, target) in zip(axes.flat, panels, strict=False):
        if c not in rows:
            ax.set_visible(False)
            continue
        err = rows[c + "_pm"].fillna(0).to_numpy() if c + "_pm" in rows else None
        ax.bar(
            range(len(rows)),
            rows[c],
            yerr=err,
            color=["0.6" if m == "base" else "C0" for m in rows.method],
            capsize=3,
        )
        if base is not None and not pd.isna(base[c]):
            ax.axhline(base[c], ls="--", color="0.4", lw=1)
        if target is not None:
            ax.axhline(target, ls=":", color="C3", lw=1)
        ax.set_xticks(range(len(rows)), rows.method, rotation=40, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


@themed
def plot_long_context(frames: dict[str, pd.DataFrame]) -> plt.Figure:
    """AFGB (both variants) and UB against tokens of neutral context before each prompt, one line per model
    (``frames``: name → the long_context.csv of ``lftf validity``)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for name, df in frames.items():
        x = df["context"].clip(lower=1)  # (0 drawn at 1 on the log axis)
        for ax, c in zip(axes, ("afgb", "afgb_paper", "ub"), strict=True):
            ax.plot(x, df[c], marker="o", label=name)
            if c == "afgb" and "afgb_ci" in df:
                ci = np.array([v if isinstance(v, list | tuple) else json.loads(v) for v in df["afgb_ci"]])
                ax.fill_between(x, ci[:, 0], ci[:, 1], alpha=0.2)
    for ax, t in zip(axes, ("AFGB (ours) ↓", "AFGB (paper's) ↓", "UB ↑"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("context tokens before the prompt (0 at 1)")
        ax.set_title(t)
    axes[0].legend()
    fig.tight_layout()
    return fig


@themed
def plot_restore(curve: pd.DataFrame) -> plt.Figure:
    """Share of the removed bias that returns when the top-k changed units (or k random ones) of the tuned block
    are restored to the base weights, per unit kind."""
    kinds = [k for k in ("head", "kv_head", "neuron") if k in set(curve.kind)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.3 * len(kinds), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        g = curve[curve.kind == kind]
        for order, label, marker in (
            ("top", "top-k by weight change", "o"),
            ("top-dla", "top-k by attribution change", "^"),
        ):
            top = g[g.order == order].sort_values("k")
            if len(top):
                ax.plot(top.k, 100 * top.bias_returned, marker=marker, label=label)
        rnd = (
            g[g.order == "random"]
            .groupby("k", as_index=False)["bias_returned"]
            .agg(["mean", "min", "max"])
            .reset_index()
        )
        if len(rnd):
            ax.errorbar(
                rnd.k,
                100 * rnd["mean"],
                yerr=[100 * (rnd["mean"] - rnd["min"]), 100 * (rnd["max"] - rnd["mean"])],
                marker="s",
                ls="--",
                label="k random (min–max)",
            )
        ax.axhline(100, color="0.5", ls=":", lw=1)
        if g.k.max() > 4:
            ax.set_xscale("log")
        ax.set_xlabel(f"{kind}s restored (k)")
        ax.set_ylabel("% of removed AFGB that returns")
        ax.set_title(kind)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


@themed
def plot_attribution(attr: pd.DataFrame, top: int = 3) -> plt.Figure:
    """Each MLP neuron's direct effect towards the base model's preferred pronoun, before vs after tuning (left;
    the ``top`` largest changes labelled), and the neurons' |attribution change| against their weight change
    (right): does the weight change point at the neurons whose effect changed?"""
    n = attr[attr.kind == "neuron"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.scatter(n.dla_before, n.dla_after, s=6, alpha=0.5)
    lim = [min(n.dla_before.min(), n.dla_after.min()), max(n.dla_before.max(), n.dla_after.max())]
    a.plot(lim, lim, color="0.5", ls=":", lw=1)
    for r in n.nsmallest(top, "rank").itertuples():
        a.annotate(str(r.unit), (r.dla_before, r.dla_after), fontsize=7)
    a.set_xlabel("direct effect before (logit diff. towards base preference)")
    a.set_ylabel("after LFTF")
    a.set_title("MLP neurons of the tuned block")
    b.scatter(n.weight_change, n.dla_change.abs(), s=6, alpha=0.5)
    b.set_yscale("log")
    b.set_xlabel("weight change ‖Δw‖ of the neuron")
    b.set_ylabel("|change of its direct effect|")
    b.set_title("weight change vs attribution change")
    fig.tight_layout()
    return fig


@themed
def plot_paths(paths: pd.DataFrame, block: int, before: int = 4) -> plt.Figure:
    """Where the change of the signed logit difference reaches the logits: per block, the change of its attention
    and MLP outputs' direct effect (own: the output moved), beside the part due to the final norm's scale, summed
    over every component. Blocks after the tuned one (dotted line) change only through the tuned block's output;
    ``before`` earlier blocks are drawn (their own change is zero: their outputs do not depend on the tuned block)."""
    comp = paths[paths.layer >= max(0, block - before)]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    layers = sorted(comp.layer.unique())
    width = 0.4
    for off, kind in ((-width / 2, "attn"), (width / 2, "mlp")):
        g = comp[comp.kind == kind].set_index("layer").reindex(layers)
        ax.bar([x + off for x in layers], g["own"], width, label=f"{kind} output (own change)")
    ax.bar(
        [max(layers) + 1.5],
        [paths["scale"].sum()],
        0.8,
        color="0.6",
        label="final-norm scale (all components)",
    )
    ax.axvline(block + 0.5, color="0.3", ls=":", lw=1)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_xlabel("block")
    ax.set_ylabel("change of direct effect\n(logit diff. towards base preference)")
    ax.set_title(f"Where block {block}'s change reaches the logits")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


@themed
def plot_holdout(rows: pd.DataFrame, base: dict, all_kinds: dict) -> plt.Figure:
    """UB on each hint kind: base, LFTF trained on every kind, LFTF trained without that kind."""
    kinds = rows["held_out"].tolist()
    x = np.arange(len(kinds))
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.bar(x - 0.27, [base[f"ub_kind_{k}"] for k in kinds], 0.27, color="0.6", label="base")
    ax.bar(
        x, [all_kinds[f"ub_kind_{k}"] for k in kinds], 0.27, color="C0", label="LFTF, every kind in training"
    )
    ax.bar(x + 0.27, rows["ub_held_out"], 0.27, color="C1", label="LFTF, this kind held out")
    ax.set_xticks(x, kinds)
    ax.set_ylim(0.5, 1.02)
    ax.axhline(0.75, color="C3", ls=":", lw=1)
    ax.set_ylabel("UB on the kind (test split)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


@themed
def plot_sweep_probes(
    rows: pd.DataFrame, base: dict, probes=("afgb", "math_acc", "gendered_acc", "winobias_pro")
) -> plt.Figure:
    """Per tuned block: the bias after and what the probes lost (change from the base model)."""
    rows = rows.sort_values("block")
    fig, axes = plt.subplots(1, len(probes), figsize=(3.6 * len(probes), 3.2))
    for ax, c in zip(axes, probes, strict=True):
        ax.plot(rows.block, rows[c], marker="o")
        if c in base:
            ax.axhline(base[c], color="0.4", ls="--", lw=1, label="base")
        ax.set_xlabel("tuned block")
        ax.set_title(c)
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = [
    "PANELS",
    "plot_attribution",
    "plot_holdout",
    "plot_long_context",
    "plot_methods",
    "plot_paths",
    "plot_restore",
    "plot_sweep_probes",
]

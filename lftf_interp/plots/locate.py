"""Figures of the locate stage: BMI per block, activation-patching heatmaps, the logit lens (pronouns and any
axis's groups) and attribution patching against exact patching."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from lftf_interp.plots.style import themed


@themed
def plot_bmi(bmi: pd.DataFrame, title: str = "") -> plt.Figure:
    """Bar per block, the rank-1 block marked; error bars are ±1 SEM over prompts."""
    fig, ax = plt.subplots(figsize=(9, 4))
    top = int(bmi.sort_values(["rank", "layer"]).iloc[0]["layer"])
    colors = ["#c0392b" if layer == top else "#5d6d7e" for layer in bmi.layer]
    ax.bar(bmi.layer, bmi.bmi, color=colors, yerr=bmi.get("sem"), capsize=2)
    ax.annotate(
        f"top: block {top}",
        (top, bmi.bmi.max()),
        xytext=(8, -12),
        textcoords="offset points",
        color="#c0392b",
    )
    ax.set(
        xlabel="block", ylabel="BMI = mean 1 − cos(h_in, h_out)", title=title or "Block Mitigating Importance"
    )
    ax.set_xticks(bmi.layer)
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    return fig


@themed
def plot_patching_heatmaps(df: pd.DataFrame, str_tokens: list[str], title: str = "") -> plt.Figure:
    """One layer × position heatmap per site (values: normalised logit difference, 1 = clean)."""
    sites = list(dict.fromkeys(df.site))
    fig, axes = plt.subplots(1, len(sites), figsize=(4.2 * len(sites) + 1, 7), sharey=True)
    axes = np.atleast_1d(axes)
    lim = max(1.0, float(df.value.abs().max()))
    for ax, site in zip(axes, sites, strict=True):
        grid = df[df.site == site].pivot(index="layer", columns="pos", values="value")
        sns.heatmap(
            grid,
            ax=ax,
            cmap="RdBu_r",
            center=0,
            vmin=-lim,
            vmax=lim,
            cbar=site == sites[-1],
            cbar_kws={"label": "normalised logit diff (1 = clean)"},
        )
        ax.set_xticks(
            np.arange(len(str_tokens)) + 0.5,
            [repr(t.strip() or t)[1:-1] for t in str_tokens],
            rotation=70,
            fontsize=8,
        )
        ax.set(title=site, xlabel="position", ylabel="block" if site == sites[0] else "")
        ax.invert_yaxis()
    fig.suptitle(title or "Activation patching")
    fig.tight_layout()
    return fig


@themed
def plot_lens(lens: pd.DataFrame, title: str = "") -> plt.Figure:
    palette = {
        "male-leaning": "#2471a3",
        "female-leaning": "#c0392b",
        "hinted he": "#85c1e9",
        "hinted she": "#f1948a",
    }
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for g, d in lens.groupby("group", sort=False):
        c = palette.get(g)
        axes[0].plot(d.layer, d.logit_diff, marker="o", ms=3, label=g, color=c)
        axes[0].fill_between(
            d.layer,
            d.logit_diff - 1.96 * d.logit_diff_sem,
            d.logit_diff + 1.96 * d.logit_diff_sem,
            color=c,
            alpha=0.2,
        )
        axes[1].plot(d.layer, d.share_he, marker="o", ms=3, label=g, color=c)
    axes[0].axhline(0, color="grey", lw=1)
    axes[1].axhline(0.5, color="grey", lw=1, ls="--")
    axes[0].set(
        xlabel="block output", ylabel="logit(he) − logit(she)", title="logit difference through the lens"
    )
    axes[1].set(xlabel="block output", ylabel="P(he) / (P(he) + P(she))", ylim=(0, 1), title="share of 'he'")
    axes[1].legend(loc="upper left", fontsize=8)
    fig.suptitle(title or "Logit lens")
    fig.tight_layout()
    return fig


@themed
def plot_group_lens(lens: pd.DataFrame, title: str = "") -> plt.Figure:
    """:func:`~lftf_interp.locate.lens.compute_group_lens` (any axis): bias score of the neutral prompts and hint
    following of each hinted set per block output (left), the neutral prompts' group shares (right)."""
    groups = [c.removeprefix("share_") for c in lens.columns if c.startswith("share_")]
    colors = dict(zip(groups, plt.get_cmap("tab10")(range(10)), strict=False))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    neutral = lens[lens.set == "neutral"]
    axes[0].plot(
        neutral.layer, neutral.bias, marker="o", ms=3, color="black", label="bias score, neutral prompts"
    )
    axes[0].fill_between(
        neutral.layer,
        neutral.bias - 1.96 * neutral.bias_sem,
        neutral.bias + 1.96 * neutral.bias_sem,
        color="black",
        alpha=0.15,
    )
    for name, d in lens[lens.set != "neutral"].groupby("set", sort=False):
        axes[0].plot(
            d.layer,
            d.hint_following,
            marker=".",
            ms=3,
            ls="--",
            color=colors.get(name.removeprefix("hinted ")),
            label=f"hint following, {name}",
        )
    axes[0].axhline(1 / len(groups), color="grey", lw=1, ls=":")
    axes[0].set(
        xlabel="block output", ylabel="score", ylim=(0, 1), title="bias and hint following through the lens"
    )
    axes[0].legend(fontsize=7, loc="center left")
    bottom = np.zeros(len(neutral))
    for g in groups:
        axes[1].bar(neutral.layer, neutral[f"share_{g}"], bottom=bottom, color=colors[g], label=g, width=0.85)
        bottom += neutral[f"share_{g}"].to_numpy()
    axes[1].set(
        xlabel="block output", ylabel="renormalised share", ylim=(0, 1), title="group shares, neutral prompts"
    )
    axes[1].legend(fontsize=7, loc="upper left", ncol=len(groups))
    fig.suptitle(title or "Logit lens")
    fig.tight_layout()
    return fig


@themed
def plot_attribution_vs_exact(attr: pd.DataFrame, exact: pd.DataFrame, title: str = "") -> plt.Figure:
    m = attr.merge(exact, on=["site", "layer", "pos"], suffixes=("_attr", "_exact"))
    sites = list(dict.fromkeys(m.site))
    fig, axes = plt.subplots(1, len(sites), figsize=(4.6 * len(sites) + 1, 4.4), layout="constrained")
    for ax, site in zip(np.atleast_1d(axes), sites, strict=True):
        d = m[m.site == site]
        r = np.corrcoef(d.value_attr, d.value_exact)[0, 1]
        sc = ax.scatter(d.value_exact, d.value_attr, c=d.layer, cmap="viridis", s=12)
        lo, hi = min(d.value_exact.min(), d.value_attr.min()), max(d.value_exact.max(), d.value_attr.max())
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
        ax.set(
            title=f"{site} (r = {r:.2f})",
            xlabel="exact patching",
            ylabel="attribution" if site == sites[0] else "",
        )
    fig.colorbar(sc, ax=axes, label="block")
    fig.suptitle(title or "Attribution patching vs exact patching")
    return fig

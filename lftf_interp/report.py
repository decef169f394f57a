"""Plotting. Every ``plot_*`` takes data computed elsewhere and returns a matplotlib Figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")
STEREO_PALETTE = {"female": "#c0392b", "male": "#2471a3", "neutral": "#7f8c8d", "unknown": "#bbbbbb"}


def occupation_table(bias_df: pd.DataFrame) -> pd.DataFrame:
    """Per occupation: mean share of he in the he/she mass, mean AFGB, BLS % women."""
    g = bias_df.groupby("occupation", as_index=False).agg(
        share_he=("share_he", "mean"),
        afgb=("afgb", "mean"),
        mass=("mass", "mean"),
        bls_pct_women=("bls_pct_women", "first"),
        stereotype=("stereotype", "first"),
    )
    g["stereotype"] = g["stereotype"].fillna("unknown")
    return g


def plot_share_vs_bls(occ: pd.DataFrame, title: str = "") -> plt.Figure:
    from scipy.stats import spearmanr

    known = occ.dropna(subset=["bls_pct_women"])
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    sns.scatterplot(data=known, x="bls_pct_women", y="share_he", hue="stereotype", palette=STEREO_PALETTE, ax=ax, s=55)
    if len(known) > 2:
        rho, p = spearmanr(known["bls_pct_women"], known["share_he"])
        sns.regplot(data=known, x="bls_pct_women", y="share_he", scatter=False, ax=ax, color="black", line_kws={"lw": 1})
        ax.text(0.02, 0.04, f"Spearman ρ = {rho:.2f} (p = {p:.1g}), n = {len(known)}", transform=ax.transAxes)
    n_label = 4 if len(known) > 40 else 2
    for r in pd.concat([known.nlargest(n_label, "share_he"), known.nsmallest(n_label, "share_he")]).itertuples():
        ax.annotate(r.occupation, (r.bls_pct_women, r.share_he), fontsize=8, xytext=(4, 3), textcoords="offset points")
    ax.axhline(0.5, ls="--", color="grey", lw=1)
    ax.set(
        xlabel="% women in occupation (BLS CPS 2023)",
        ylabel="P(he) / (P(he) + P(she))",
        ylim=(0, 1),
        title=title or "Share of 'he' vs. workforce composition",
    )
    fig.tight_layout()
    return fig


def plot_template_distribution(bias_df: pd.DataFrame, title: str = "") -> plt.Figure:
    df = bias_df.copy()
    df["template"] = df["template_id"].astype(str) + ": " + df["prompt"].str.replace(r"\s+", " ", regex=True)
    order = df.groupby("template_id")["share_he"].median().sort_values().index
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(order) + 1.5))
    df["template_id"] = pd.Categorical(df["template_id"], categories=order)
    sns.boxplot(data=df, y="template_id", x="share_he", ax=ax, color="#d5dbdb", fliersize=0)
    sns.stripplot(data=df, y="template_id", x="share_he", hue="stereotype", palette=STEREO_PALETTE, ax=ax, size=3)
    ax.legend(title="stereotype", loc="upper left", bbox_to_anchor=(1.01, 1))
    from .data.build import TEMPLATES

    ax.set_yticks(range(len(order)), [TEMPLATES[int(t)].replace("{occupation}", "…") for t in order], fontsize=8)
    ax.axvline(0.5, ls="--", color="grey", lw=1)
    ax.set(xlabel="P(he) / (P(he) + P(she))", ylabel="", xlim=(0, 1), title=title or "Share of 'he' per template")
    fig.tight_layout()
    return fig


def plot_hint_following(hint_df: pd.DataFrame, title: str = "") -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    sns.barplot(data=hint_df, x="hint_kind", y="ub", hue="label", ax=ax, palette={"he": "#2471a3", "she": "#c0392b"}, errorbar=("ci", 95))
    ax.axhline(0.75, ls="--", color="black", lw=1, label="paper's bar (0.75)")
    ax.axhline(0.5, ls=":", color="grey", lw=1)
    ax.set(ylim=(0, 1), xlabel="hint kind", ylabel="UB: P(hinted) / (P(he) + P(she))", title=title or "Hint following")
    ax.legend(title="hinted pronoun", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: str | Path, dpi: int = 130) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def baseline_figures(bias_df: pd.DataFrame, hint_df: pd.DataFrame, out: str | Path, title: str = "") -> list[Path]:
    out = Path(out)
    occ = occupation_table(bias_df)
    suffix = f" — {title}" if title else ""
    return [
        save(plot_share_vs_bls(occ, "Share of 'he' vs. % women" + suffix), out / "baseline_share_vs_bls.png"),
        save(plot_template_distribution(bias_df, "Share of 'he' per template" + suffix), out / "baseline_templates.png"),
        save(plot_hint_following(hint_df, "Hint following" + suffix), out / "baseline_hints.png"),
    ]


def ci_text(value: float, ci) -> str:
    lo, hi = ci
    return f"{value:.3f} [{lo:.3f}, {hi:.3f}]"


__all__ = [
    "baseline_figures",
    "ci_text",
    "occupation_table",
    "plot_hint_following",
    "plot_share_vs_bls",
    "plot_template_distribution",
    "save",
]

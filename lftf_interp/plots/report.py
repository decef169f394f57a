"""Plotting. Every ``plot_*`` takes data computed elsewhere and returns a matplotlib Figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from lftf_interp.plots.locate import (
    plot_attribution_vs_exact,
    plot_bmi,
    plot_group_lens,
    plot_lens,
    plot_patching_heatmaps,
)
from lftf_interp.plots.style import themed

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


@themed
def plot_share_vs_bls(occ: pd.DataFrame, title: str = "") -> plt.Figure:
    from scipy.stats import spearmanr

    known = occ.dropna(subset=["bls_pct_women"])
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    sns.scatterplot(
        data=known, x="bls_pct_women", y="share_he", hue="stereotype", palette=STEREO_PALETTE, ax=ax, s=55
    )
    if len(known) > 2:
        rho, p = spearmanr(known["bls_pct_women"], known["share_he"])
        sns.regplot(
            data=known,
            x="bls_pct_women",
            y="share_he",
            scatter=False,
            ax=ax,
            color="black",
            line_kws={"lw": 1},
        )
        ax.text(0.02, 0.04, f"Spearman ρ = {rho:.2f} (p = {p:.1g}), n = {len(known)}", transform=ax.transAxes)
    ax.axhline(0.5, ls="--", color="grey", lw=1)
    ax.set(
        xlabel="% women in occupation (BLS CPS 2023)",
        ylabel="P(he) / (P(he) + P(she))",
        ylim=(0, 1),
        title=title or "Share of 'he' vs. workforce composition",
    )
    n_label = 4 if len(known) > 40 else 2
    ends = pd.concat([known.nlargest(n_label, "share_he"), known.nsmallest(n_label, "share_he")])
    _label_points(ax, ends.bls_pct_women.to_numpy(), ends.share_he.to_numpy(), ends.occupation.tolist())
    fig.tight_layout()
    return fig


@themed
def plot_template_distribution(bias_df: pd.DataFrame, title: str = "") -> plt.Figure:
    df = bias_df.copy()
    df["template"] = df["template_id"].astype(str) + ": " + df["prompt"].str.replace(r"\s+", " ", regex=True)
    order = df.groupby("template_id")["share_he"].median().sort_values().index
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(order) + 1.5))
    df["template_id"] = pd.Categorical(df["template_id"], categories=order)
    sns.boxplot(data=df, y="template_id", x="share_he", ax=ax, color="#d5dbdb", fliersize=0)
    sns.stripplot(
        data=df, y="template_id", x="share_he", hue="stereotype", palette=STEREO_PALETTE, ax=ax, size=3
    )
    ax.legend(title="stereotype", loc="upper left", bbox_to_anchor=(1.01, 1))
    from lftf_interp.data import TEMPLATES

    ax.set_yticks(
        range(len(order)), [TEMPLATES[int(t)].replace("{occupation}", "…") for t in order], fontsize=8
    )
    ax.axvline(0.5, ls="--", color="grey", lw=1)
    ax.set(
        xlabel="P(he) / (P(he) + P(she))", ylabel="", xlim=(0, 1), title=title or "Share of 'he' per template"
    )
    fig.tight_layout()
    return fig


@themed
def plot_hint_following(hint_df: pd.DataFrame, title: str = "") -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    sns.barplot(
        data=hint_df,
        x="hint_kind",
        y="ub",
        hue="label",
        ax=ax,
        palette={"he": "#2471a3", "she": "#c0392b"},
        errorbar=("ci", 95),
    )
    ax.axhline(0.75, ls="--", color="black", lw=1, label="paper's bar (0.75)")
    ax.axhline(0.5, ls=":", color="grey", lw=1)
    ax.set(
        ylim=(0, 1),
        xlabel="hint kind",
        ylabel="UB: P(hinted) / (P(he) + P(she))",
        title=title or "Hint following",
    )
    ax.legend(title="hinted pronoun", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: str | Path, dpi: int = 130) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def baseline_figures(
    bias_df: pd.DataFrame, hint_df: pd.DataFrame, out: str | Path, title: str = ""
) -> list[Path]:
    out = Path(out)
    occ = occupation_table(bias_df)
    suffix = f" — {title}" if title else ""
    return [
        save(plot_share_vs_bls(occ, "Share of 'he' vs. % women" + suffix), out / "baseline_share_vs_bls.png"),
        save(
            plot_template_distribution(bias_df, "Share of 'he' per template" + suffix),
            out / "baseline_templates.png",
        ),
        save(plot_hint_following(hint_df, "Hint following" + suffix), out / "baseline_hints.png"),
    ]


def ci_text(value: float, ci) -> str:
    lo, hi = ci
    return f"{value:.3f} [{lo:.3f}, {hi:.3f}]"


# ----------------------------------------------------------------------------- locate figures


# -- fine-tune (notebooks 03 and 04) ---------------------------------------------------------------------
@themed
def plot_training_curves(history: pd.DataFrame, base: dict | None = None, title: str = "") -> plt.Figure:
    """Training loss per step and validation AFGB / UB / he+she mass at each evaluation."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    h = history.copy()
    for col, label in (
        ("loss", "total loss"),
        ("loss_pronoun", "pronoun loss"),
        ("loss_hint", "hint loss"),
        ("loss_mass", "mass anchor"),
        ("loss_kl", "KL to base"),
    ):
        if col in h and h[col].notna().any():
            axes[0].plot(h.step, h[col], label=label, lw=1)
    axes[0].set(xlabel="step", ylabel="training loss", title="training loss")
    axes[0].legend()
    ev = h.dropna(subset=["val_afgb"])
    for col, label, c in (
        ("val_afgb", "AFGB ↓", "#c0392b"),
        ("val_ub", "UB ↑", "#27ae60"),
        ("val_mass", "he+she mass", "#7f8c8d"),
    ):
        axes[1].plot(ev.step, ev[col], marker="o", ms=3, label=label, color=c)
    if base:
        axes[1].axhline(0.75, ls=":", color="#27ae60", lw=1)
        axes[1].text(ev.step.max(), 0.76, "UB target 0.75", ha="right", fontsize=8, color="#27ae60")
    axes[1].set(
        xlabel="step",
        ylabel="validation metric",
        ylim=(0, 1.02),
        title="validation split (unseen occupations)",
    )
    axes[1].legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@themed
def plot_before_after(
    before: dict, after: dict, retention: pd.DataFrame | None = None, title: str = ""
) -> plt.Figure:
    """AFGB, UB, mass before vs after (95 % CIs) and, if given, the retention changes with paired CIs."""
    n = 2 if retention is not None else 1
    fig, axes = plt.subplots(1, n, figsize=(6 * n + 1, 4.2), squeeze=False)
    ax = axes[0, 0]
    keys = [("afgb", "AFGB ↓"), ("ub", "UB ↑"), ("mass", "he+she mass")]
    x = np.arange(len(keys))
    for off, (d, label, c) in enumerate(((before, "base", "#95a5a6"), (after, "tuned", "#2471a3"))):
        vals = [d[k] for k, _ in keys]
        err = np.array([[d[k] - d[k + "_ci"][0], d[k + "_ci"][1] - d[k]] for k, _ in keys]).T
        ax.bar(x + (off - 0.5) * 0.38, vals, 0.38, yerr=err, capsize=3, label=label, color=c)
        for xi, v in zip(x, vals, strict=True):
            ax.text(xi + (off - 0.5) * 0.38, v + 0.03, f"{v:.3f}", ha="center", fontsize=8)
    ax.set_xticks(x, [lab for _, lab in keys])
    ax.set(ylim=(0, 1.1), title="bias and hint following (test split)")
    ax.legend()
    if retention is not None:
        ax = axes[0, 1]
        r = retention[
            retention.metric.isin(["ppl_all", "mc_all_acc", "mc_all_acc_norm", "piqa_acc", "mmlu_acc"])
        ].copy()
        r["label"] = r.metric + " (" + r.unit.str.replace("points", "pts") + ")"
        ax.errorbar(
            r.change, np.arange(len(r)), xerr=[r.change - r.ci_lo, r.ci_hi - r.change], fmt="o", capsize=3
        )
        ax.axvline(0, color="black", lw=1)
        ax.set_yticks(np.arange(len(r)), r.label)
        ax.set(xlabel="change vs base (paired 95 % CI)", title="capability retention")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@themed
def plot_share_shift(before_df: pd.DataFrame, after_df: pd.DataFrame, title: str = "") -> plt.Figure:
    """Per test occupation: share of 'he' before vs after the fine-tune (0.5 = balanced)."""
    b = occupation_table(before_df).set_index("occupation")
    a = occupation_table(after_df).set_index("occupation")
    fig, ax = plt.subplots(figsize=(7, 6))
    order = b.sort_values("share_he")
    named = set(order.index[:5]) | set(order.index[-5:])  # label the most extreme occupations only
    for occ in b.index:
        st = b.loc[occ, "stereotype"]
        ax.annotate(
            "",
            (a.loc[occ, "share_he"], b.loc[occ, "share_he"]),
            (b.loc[occ, "share_he"], b.loc[occ, "share_he"]),
            arrowprops={"arrowstyle": "->", "color": STEREO_PALETTE.get(st, "#bbbbbb"), "lw": 1},
        )
        if occ in named:
            ax.text(
                max(a.loc[occ, "share_he"], b.loc[occ, "share_he"]) + 0.01,
                b.loc[occ, "share_he"],
                occ,
                fontsize=7,
                va="center",
            )
    for st, c in STEREO_PALETTE.items():
        if st in set(b.stereotype):
            ax.plot([], [], color=c, label=f"{st} (BLS)")
    ax.legend(fontsize=8, loc="lower right")
    ax.axvline(0.5, ls="--", color="grey")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="P(he)/(P(he)+P(she)): arrow from base to tuned",
        ylabel="base model's share of 'he' (occupation)",
        title=title or "Each occupation moves toward 0.5",
    )
    fig.tight_layout()
    return fig


def _label_points(ax, xs: np.ndarray, ys: np.ndarray, labels: list[str]) -> None:
    """Annotate scatter points, moving a label to another side of its point when it would overlap one already placed."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    nx, ny = (xs - x0) / ((x1 - x0) or 1), (ys - y0) / ((y1 - y0) or 1)
    # (offset in points, horizontal alignment, offset in axis fractions used for the overlap test)
    spots = [
        ((7, 4), "left", (0.0, 0.03)),
        ((7, -12), "left", (0.0, -0.05)),
        ((-7, 4), "right", (-0.2, 0.03)),
        ((-7, -12), "right", (-0.2, -0.05)),
        ((10, 16), "left", (0.0, 0.08)),
        ((10, -24), "left", (0.0, -0.1)),
    ]
    placed: list[tuple[float, float]] = []
    for i in np.argsort(-ny):

        def free(spot, i=i) -> bool:
            lx, ly = nx[i] + spot[2][0], ny[i] + spot[2][1]
            return all(abs(lx - px) > 0.2 or abs(ly - py) > 0.045 for px, py in placed)

        off, ha, (fx, fy) = next((sp for sp in spots if free(sp)), spots[-1])
        placed.append((nx[i] + fx, ny[i] + fy))
        ax.annotate(
            labels[i],
            (xs[i], ys[i]),
            fontsize=8,
            xytext=off,
            textcoords="offset points",
            ha=ha,
            va="center",
            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "grey", "shrinkA": 0, "shrinkB": 3},
        )


@themed
def plot_compare(agg: pd.DataFrame, title: str = "") -> plt.Figure:
    """Debiasing (AFGB) against capability cost (KL to base, perplexity change), one point per method."""
    d = agg[agg.method != "base"].copy()
    base = agg[agg.method == "base"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for ax, col, label in (
        (axes[0], "kl", "KL(base ‖ tuned), nats/token"),
        (axes[1], "ppl_change_pct", "perplexity change, %"),
    ):
        ax.scatter(
            d[col], d.afgb, c=np.where(d.method.str.startswith("lftf"), "#2471a3", "#e67e22"), s=40, zorder=3
        )
        if col + "_pm" in d:
            ax.errorbar(
                d[col], d.afgb, xerr=d.get(col + "_pm"), yerr=d.get("afgb_pm"), fmt="none", color="grey", lw=1
            )
        ax.margins(x=0.12, y=0.08)
        _label_points(ax, d[col].to_numpy(float), d.afgb.to_numpy(float), list(d.method))
        if len(base):
            ax.axhline(base.afgb.iloc[0], ls="--", color="grey", lw=1)
            ax.text(ax.get_xlim()[1], base.afgb.iloc[0], "base AFGB", ha="right", va="bottom", fontsize=8)
        ax.set(xlabel=label, ylabel="AFGB (test) ↓")
    ax = axes[2]
    order = d.sort_values("afgb")
    ax.barh(order.method, order.ub, xerr=order.get("ub_pm"), color="#27ae60")
    ax.axvline(0.75, ls=":", color="black")
    if len(base):
        ax.axvline(base.ub.iloc[0], ls="--", color="grey")
    ax.set(xlabel="UB (test) ↑  (dotted 0.75, dashed base)", xlim=(0, 1))
    fig.suptitle(title or "Debiasing vs capability cost: LFTF (blue) and baselines (orange)")
    fig.tight_layout()
    return fig


@themed
def plot_block_sweep(
    sweep: pd.DataFrame, bmi: pd.DataFrame, base_afgb: float | None = None, title: str = ""
) -> plt.Figure:
    """Per tuned block: AFGB after and capability cost, against block index and against BMI rank."""
    d = sweep.merge(bmi[["layer", "bmi", "rank"]], left_on="block", right_on="layer")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    ax = axes[0]
    ax.plot(d.block, d.afgb, "o-", color="#c0392b", label="AFGB after ↓")
    ax.plot(d.block, d.ub, "s-", color="#27ae60", label="UB after ↑")
    if base_afgb is not None:
        ax.axhline(base_afgb, ls="--", color="grey", lw=1, label="base AFGB")
    ax.set(xlabel="tuned block", ylabel="test metric", ylim=(0, 1.02), title="debiasing by block")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(d.block, d.kl, "o-", color="#8e44ad", label="KL to base")
    ax.set(xlabel="tuned block", ylabel="KL(base ‖ tuned), nats/token", title="capability cost by block")
    ax2 = ax.twinx()
    ax2.plot(d.block, d.ppl_change_pct, "s--", color="#e67e22", label="perplexity Δ %")
    ax2.set_ylabel("perplexity change, %")
    ax2.grid(False)
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    ax = axes[2]
    ax.scatter(d["rank"], d.afgb, c="#c0392b", s=40)
    for r in d.itertuples():
        ax.annotate(str(r.block), (r.rank, r.afgb), fontsize=8, xytext=(3, 3), textcoords="offset points")
    from scipy.stats import spearmanr

    rho = spearmanr(d["rank"], d.afgb).statistic if len(d) > 2 else float("nan")
    ax.set(
        xlabel="BMI rank of the block (1 = highest BMI)",
        ylabel="AFGB after tuning it ↓",
        title=f"does BMI predict the best block? Spearman ρ = {rho:.2f}",
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- whole-run figures


def locate_figures(res: dict, out: str | Path) -> list[Path]:
    """The locate stage's figures (``lftf locate``, the demo) from :func:`lftf_interp.locate.run.locate`'s tables."""
    out = Path(out)
    return [
        save(plot_bmi(res["bmi"]), out / "bmi.png"),
        save(plot_patching_heatmaps(res["patching"], res["str_tokens"]), out / "patching.png"),
        save(
            plot_group_lens(res["lens"]) if "set" in res["lens"] else plot_lens(res["lens"]), out / "lens.png"
        ),
        save(plot_attribution_vs_exact(res["attribution"], res["patching"]), out / "attribution.png"),
    ]


def demo_figures(res, out: str | Path) -> list[Path]:
    """Every figure of ``lftf demo`` from a :class:`lftf_interp.experiments.pipeline.DemoResult`."""
    out = Path(out)
    title = f"{res.model}: LFTF on block {res.block}"
    return [
        *baseline_figures(res.bias_before, res.hint_before, out, title=f"{res.model} (test)"),
        save(
            plot_training_curves(res.history, res.before, f"LFTF on block {res.block}"), out / "training.png"
        ),
        save(plot_before_after(res.before, res.after, res.retention, title), out / "before_after.png"),
        save(plot_share_shift(res.bias_before, res.bias_after), out / "share_shift.png"),
    ]

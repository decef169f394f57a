"""The cross-family figure ("which block, and why", notebook 04): per model, the bias left after tuning each block
alone (with its CI), the capability cost (KL) and BMI, on relative depth so families of different depth line up.
Compute lives in :mod:`lftf_interp.experiments.families`; this only draws its tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lftf_interp.plots.style import themed


@themed
def plot_families(rows: list[dict], sweeps: dict[str, pd.DataFrame], title: str = "") -> plt.Figure:
    """One panel per model: bias after tuning block b (left axis, 95 % CI bars), KL to the base (dashed, right
    axis, scaled to its maximum) and BMI past the artefact blocks (grey bars, scaled to its maximum); the base bias,
    BMI's pick, the best block (bias + KL ranks) and the last block marked."""
    fig, axes = plt.subplots(1, len(rows), figsize=(6.5 * len(rows), 5.0), squeeze=False)
    for ax, r in zip(axes[0], rows, strict=True):
        s = sweeps[r["model"]]
        depth = s.block / max(r["n_blocks"] - 1, 1)
        keep = ~s.block.isin(r["artefact_blocks"])
        bmi = s.bmi.where(keep, np.nan)
        ax.bar(
            depth,
            bmi / np.nanmax(bmi) * s.afgb.max(),
            width=0.8 / r["n_blocks"],
            color="0.85",
            label="BMI (scaled)",
        )
        lo = s.afgb - s.afgb_ci.map(lambda c: c[0])
        hi = s.afgb_ci.map(lambda c: c[1]) - s.afgb
        ax.errorbar(
            depth,
            s.afgb,
            yerr=[lo, hi],
            fmt="o-",
            color="C3",
            ms=4,
            capsize=2,
            label="bias after tuning the block",
        )
        ax.axhline(r["base_bias"], color="C3", ls=":", lw=1, label="base bias")
        ax2 = ax.twinx()
        ax2.plot(depth, s.kl, "s--", color="C0", ms=3, label="KL to base")
        ax2.set_ylabel("KL(base ‖ tuned), nats/token", color="C0")
        ax2.grid(False)
        ax2.set_ylim(0, None)
        for b, mark, label in (
            (r["bmi_pick"], "v", "BMI pick"),
            (r["best_block"], "*", "best (bias+KL)"),
            (r["last_block"], "D", "last block"),
        ):
            if b in set(s.block):
                ax.plot(
                    b / max(r["n_blocks"] - 1, 1),
                    float(s.set_index("block").afgb[b]),
                    mark,
                    ms=11,
                    mfc="none",
                    mec="k",
                    label=f"{label}: {b}",
                )
        ax.set(
            xlabel="relative depth of the tuned block (block / last)",
            ylabel="bias after (AFGB, test)",
            title=f"{r['model']} ({r['n_blocks']} blocks)",
            ylim=(0, None),
        )
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(
            h1 + h2,
            l1 + l2,
            fontsize=7,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.16),
            ncol=4,
            frameon=False,
        )
    fig.suptitle(title or "Which block to tune, across model families")
    fig.tight_layout()
    return fig


__all__ = ["plot_families"]

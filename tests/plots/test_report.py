"""Figures draw the numbers they are given (read back from the matplotlib artists)."""

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from lftf_interp.plots import report


def test_occupation_table_means_per_occupation():
    df = pd.DataFrame(
        {
            "occupation": ["nurse", "nurse", "pilot"],
            "share_he": [0.2, 0.4, 0.9],
            "afgb": [0.6, 0.2, 0.8],
            "mass": [0.3, 0.1, 0.2],
            "bls_pct_women": [88, 88, None],
            "stereotype": ["female", "female", None],
        }
    )
    t = report.occupation_table(df).set_index("occupation")
    assert abs(t.loc["nurse", "share_he"] - 0.3) < 1e-12 and t.loc["nurse", "bls_pct_women"] == 88
    assert abs(t.loc["nurse", "afgb"] - 0.4) < 1e-12 and t.loc["pilot", "stereotype"] == "unknown"


def test_bmi_bars_are_the_bmi_values_and_the_top_block_is_marked():
    bmi = pd.DataFrame(
        {"layer": [0, 1, 2], "bmi": [0.1, 0.5, 0.3], "rank": [3, 1, 2], "sem": [0.01, 0.02, 0.01]}
    )
    fig = report.plot_bmi(bmi)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_width() < 1.5]
    np.testing.assert_allclose([b.get_height() for b in bars], bmi.bmi)
    assert bars[1].get_facecolor() != bars[0].get_facecolor()  # block 1 (rank 1) stands out
    assert any("top: block 1" in t.get_text() for t in ax.texts)


def test_save_writes_a_png_of_the_figure(tmp_path):
    fig = report.plot_bmi(pd.DataFrame({"layer": [0, 1], "bmi": [0.2, 0.1], "rank": [1, 2]}))
    p = report.save(fig, tmp_path / "a" / "bmi.png", dpi=50)
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = int.from_bytes(p.read_bytes()[16:20], "big"), int.from_bytes(p.read_bytes()[20:24], "big")
    assert (w, h) == (9 * 50, 4 * 50)

"""The axis-study figures draw what the transfer tables hold."""

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from lftf_interp.plots.axes import plot_bmi_profiles, plot_stereoset, plot_transfer  # noqa: E402


def _rows():
    rows = []
    for s in ("base", "gender"):
        for t, b in (("gender", 0.3), ("religion", 0.6)):
            rows.append(
                {
                    "source": s,
                    "kind": "axis",
                    "target": t,
                    "bias": b / (2 if s == t else 1),
                    "hint_following": 0.8,
                }
            )
        rows.append(
            {
                "source": s,
                "kind": "stereoset",
                "target": "race",
                "ss": 60.0,
                "ss_ci": [55.0, 65.0],
                "icat": 70.0,
            }
        )
    return pd.DataFrame(rows)


def test_transfer_heatmap_shows_the_matrix():
    fig = plot_transfer(_rows())
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["0.30", "0.60", "0.15", "0.60"]  # base row, then LFTF on gender (its own axis halved)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["base", "LFTF on gender"]


def test_profiles_and_stereoset_figures():
    prof = pd.DataFrame(
        {"axis": ["a"] * 3 + ["b"] * 3, "layer": [0, 1, 2] * 2, "bmi": [0.9, 0.1, 0.2, 0.9, 0.2, 0.1]}
    )
    fig = plot_bmi_profiles(prof, excluded=[0])
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_ylim()[1] == 0.2 * 1.25
    fig = plot_stereoset(_rows())
    assert len(fig.axes[0].patches) == 2 and fig.axes[1].patches[0].get_height() == 70.0

import matplotlib

matplotlib.use("Agg")
import pandas as pd

from lftf_interp.plots.sentences import plot_sentence_blocks


def test_sentence_blocks_draw_both_panels():
    shares = pd.DataFrame(
        {
            "site": ["attn_out", "mlp_out"] * 3,
            "layer": [0, 0, 1, 1, 2, 2],
            "share": [0.1, 0.2, 0.3, 0.1, 0.2, 0.1],
        }
    )
    bmi = pd.DataFrame(
        {
            "material": ["template"] * 3 + ["sentence prefixes"] * 3,
            "layer": [0, 1, 2] * 2,
            "bmi": [0.3, 0.1, 0.2] * 2,
        }
    )
    fig = plot_sentence_blocks(shares, bmi, tuned=2, title="t")
    left, right = fig.axes
    heights = [round(p.get_height(), 6) for p in left.patches]
    assert heights == [0.1, 0.3, 0.2, 0.2, 0.1, 0.1]  # attention bars, then MLP bars
    dots = left.get_lines()[0].get_ydata()
    assert [round(float(y), 6) for y in dots] == [0.3, 0.4, 0.3]  # each block's sum
    assert len(right.get_lines()) == 3  # two materials and the tuned block
    lens = pd.DataFrame({"layer": [0, 1, 2], "effect": [0.1, -0.1, 0.4]})
    fig = plot_sentence_blocks(shares, bmi, lens=lens)
    drawn = fig.axes[0].get_lines()[1]
    assert drawn.get_label() == "lens (after block)" and list(drawn.get_ydata()) == [0.25, -0.25, 1.0]

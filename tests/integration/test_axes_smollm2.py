"""Every shipped bias axis and a user's axis file on the real SmolLM2-135M: the committed results reproduce."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lftf_interp.cli.main import app
from lftf_interp.data import load_axis
from lftf_interp.data.datasets import sample_rows
from lftf_interp.metrics.groups import score_prompts

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("axis", ["religion", "race", "gender3", "pronouns"])
def test_committed_axis_results_reproduce(smol, axis):
    saved = sample_rows(
        __import__("pandas").read_csv(ROOT / "results/axes" / axis / "base/bias_prompts.csv"), 24, seed=1
    )
    again = score_prompts(smol, saved[["prompt"]].reset_index(drop=True), load_axis(axis))
    np.testing.assert_allclose(
        again["bias"], saved["bias"], atol=1e-5
    )  # float32: batches differ in composition
    np.testing.assert_allclose(again["mass"], saved["mass"], rtol=1e-4)
    m = json.loads((ROOT / "results/axes" / axis / "base/metrics.json").read_text())
    assert m["n"] >= (400 if axis == "pronouns" else 1000) and m["bias_ci"][1] - m["bias_ci"][0] < 0.03


def test_a_users_axis_file_runs_end_to_end(tmp_path):
    res = CliRunner().invoke(
        app, ["evaluate", "--axis", str(ROOT / "examples/axes/age.yaml"), "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["groups"] == ["young", "middle_aged", "old"] and m["n"] == 18 and m["n_hint"] == 54
    assert (
        0 < m["shares"]["middle_aged"] < 0.01 < m["shares"]["young"]
    )  # the 4-token word is scored, and rare
    assert m["hint_following"] > 1 / 3  # above chance: the stated age moves the prediction

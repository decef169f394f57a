import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from lftf_interp.cli.main import app


def test_validity_command(tiny3_dir, tmp_path):
    r = CliRunner().invoke(
        app, ["validity", "--model", tiny3_dir, "--probes", "math,gendered", "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert {"afgb", "afgb_paper", "math_acc", "gendered_acc"} <= set(m) and "math_acc:" in r.output


def test_bad_probe_and_missing_delta_are_one_line_errors(tiny3_dir, tmp_path):
    r = CliRunner().invoke(
        app, ["validity", "--model", tiny3_dir, "--probes", "maths", "--out", str(tmp_path)]
    )
    assert r.exit_code == 2 and "Unknown validity probe" in r.output
    r = CliRunner().invoke(
        app, ["mechanism", "--model", tiny3_dir, "--delta", str(tmp_path / "nope"), "--out", str(tmp_path)]
    )
    assert r.exit_code == 2 and "delta directory" in r.output and "Traceback" not in r.output


def test_holdout_command(tiny3_dir, tmp_path):
    r = CliRunner().invoke(
        app, ["holdout", "--model", tiny3_dir, "--kinds", "title", "--steps", "1", "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert "title" in r.output and (tmp_path / "rows.jsonl").is_file()


@pytest.mark.integration  # every command end to end
def test_mechanism_command(tiny3_dir, tiny_delta, tmp_path):
    r = CliRunner().invoke(
        app, ["mechanism", "--model", tiny3_dir, "--delta", str(tiny_delta), "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "mechanism.json").read_text())
    assert f"block {s['block']}" in r.output and "by attribution change" in r.output
    # attribution ranks query heads and neurons (a KV head has no direct effect of its own)
    assert set(s["returned_top_dla"]) == {k for k in s["returned_top"] if not k.startswith("kv_head")}
    assert (tmp_path / "attribution.csv").is_file() and (tmp_path / "paths.csv").is_file()
    own = 100 * sum(s["paths"]["tuned_block_own_share"].values())
    assert f"the tuned block's own direct effect {own:.0f} %" in r.output
    pp = json.loads((tmp_path / "path_patching.json").read_text())
    frame = pd.read_csv(tmp_path / "path_patching.csv")
    assert pp["block"] == s["block"] and set(frame.positions) == {"all", "last", "context"}
    assert pp["total_change"] == pytest.approx(pp["logit_diff_tuned"] - pp["logit_diff_base"]) and pp[
        "total_change"
    ] == pytest.approx(
        s["attribution"]["logit_diff_after"] - s["attribution"]["logit_diff_before"], abs=1e-4
    )  # the same change, on the same validation prompts, measured by the decomposition


def test_locate_sentences_command(tiny3_dir, tmp_path, monkeypatch):
    from lftf_interp.experiments import sentences
    from lftf_interp.retain.stereoset import load_stereoset

    items = load_stereoset(("gender",), split="fit").head(16)
    monkeypatch.setattr(sentences, "load_stereoset", lambda *a, **k: items)
    r = CliRunner().invoke(
        app, ["locate-sentences", "--model", tiny3_dir, "--n", "8", "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "locate_sentences.json").read_text())
    assert (
        f"after block {s['lens_half_block']}" in r.output
        and f"{s['n_pairs']} prefix / twin pairs" in r.output
    )
    assert len(pd.read_csv(tmp_path / "pair_lens.csv")) == len(s["patching_share"])

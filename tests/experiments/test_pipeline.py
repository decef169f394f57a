"""End-to-end runs from Python (the CLI's commands are thin wrappers: tests/test_cli.py)."""

import json

import pandas as pd
import pytest

from lftf_interp.errors import LftfError
from lftf_interp.experiments import pipeline
from lftf_interp.experiments.compare import CompareConfig, SweepConfig, retain_config
from lftf_interp.locate import choose_blocks
from lftf_interp.models.loading import load_model
from lftf_interp.tune import TuneConfig


def test_parse_blocks():
    assert pipeline.parse_blocks("all", 4) == [0, 1, 2, 3]
    assert pipeline.parse_blocks("every2", 5) == [0, 2, 4]
    assert pipeline.parse_blocks("every3", 5) == [0, 3, 4]
    assert pipeline.parse_blocks("3,1", 5) == [3, 1]
    with pytest.raises(LftfError, match="out of range"):
        pipeline.parse_blocks("5", 5)
    with pytest.raises(LftfError, match="everyK"):
        pipeline.parse_blocks("every", 5)


def test_finetune_auto_is_the_locate_stage_choice(tiny3_dir, tmp_path):
    cfg = TuneConfig(steps=2, batch_size=8, n_train=32, n_val=16, eval_every=2, lr=1e-3)
    run = pipeline.finetune_to(tiny3_dir, cfg, tmp_path)  # block None: BMI chooses
    assert run.result.blocks == choose_blocks(load_model(tiny3_dir)) == run.choice["blocks"]
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert (
        m["blocks"] == run.result.blocks
        and m["block_choice"]["how"] == "auto"
        and m["git_commit"] is not None
    )
    run = pipeline.finetune_to(tiny3_dir, {**cfg.to_dict(), "block": [0, 2]}, tmp_path / "b")
    assert run.result.blocks == [0, 2] and run.choice == {"how": "given", "blocks": [0, 2]}


@pytest.mark.downloads
@pytest.mark.integration  # a whole pipeline, over 12 s
def test_sweep_resumes_without_rerunning(tiny3_dir, tmp_path):
    rows = pipeline.sweep_to(
        tiny3_dir, tmp_path, SweepConfig(blocks="2", budget={"steps": 1, "mass_weight": 0.0})
    )
    assert rows.block.tolist() == [2]
    first = (tmp_path / "rows.jsonl").read_text()
    rows = pipeline.sweep_to(
        tiny3_dir, tmp_path, SweepConfig(blocks="1,2", budget={"steps": 1, "mass_weight": 0.0})
    )
    assert rows.block.tolist() == [2, 1] and (tmp_path / "rows.jsonl").read_text().startswith(first)
    assert json.loads((tmp_path / "config.json").read_text())["blocks"] == [1, 2]


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_sweep_and_compare_on_another_axis(tiny3_dir, tmp_path):
    from lftf_interp.data import load_axis
    from lftf_interp.experiments.compare import score_on
    from lftf_interp.locate import compute_bmi

    rows = pipeline.sweep_to(
        tiny3_dir,
        tmp_path / "sw",
        SweepConfig(blocks="2", budget={"steps": 1, "mass_weight": 0.0}, axis="religion"),
    )
    assert rows.axis.tolist() == ["religion"] and 0 <= rows.afgb.iloc[0] <= 1
    bmi = compute_bmi(load_model(tiny3_dir), load_axis("religion").bias_prompts("test").prompt.tolist())
    assert pd.read_csv(tmp_path / "sw" / "bmi.csv").bmi.tolist() == pytest.approx(bmi.bmi.tolist())
    md = pipeline.compare_to(
        tiny3_dir,
        tmp_path / "cmp",
        CompareConfig(retain=retain_config("small"), axis="religion"),
        methods=["base", "prompt"],
    )
    assert "| bias ↓ |" in md and "hint following" in md
    got = {
        json.loads(x)["method"]: json.loads(x)
        for x in (tmp_path / "cmp" / "rows.jsonl").read_text().splitlines()
    }
    want = score_on(load_model(tiny3_dir), "religion")
    assert got["base"]["afgb"] == pytest.approx(want["afgb"]) and got["base"]["ub"] == pytest.approx(
        want["ub"]
    )
    assert got["prompt"]["afgb"] != got["base"]["afgb"] and got["base"]["axis"] == "religion"


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_fill_gives_stored_rows_a_new_probe_from_the_same_model(tiny3_dir, tmp_path):
    from dataclasses import replace

    from lftf_interp.experiments.rundir import merged_rows, read_rows
    from lftf_interp.probes import ValidityConfig

    budget = {"steps": 2, "batch_size": 8, "n_train": 32, "n_val": 16, "eval_every": 2, "mass_weight": 0.0}
    cfg = CompareConfig(
        split="validation",
        n_boot=10,
        retain=retain_config("small"),
        budget=budget,
        validity=ValidityConfig.quick(probes=("math",), math_n=10),
    )
    methods = ["base", "block-last"]
    pipeline.compare_to(tiny3_dir, tmp_path, cfg, methods)
    both = replace(cfg, validity=replace(cfg.validity, probes=("math", "gendered")))
    pipeline.compare_to(tiny3_dir, tmp_path, both, methods)  # without fill: nothing runs
    stored = read_rows(tmp_path / "rows.jsonl")
    assert len(stored) == 2 and all(r["probes"] == ["math"] for r in stored)
    pipeline.compare_to(tiny3_dir, tmp_path, both, methods, fill=True)
    lines = read_rows(tmp_path / "rows.jsonl")
    fills = [r for r in lines if "fill" in r]
    assert [(r["method"], r["fill"]) for r in fills] == [("base", ["gendered"]), ("block-last", ["gendered"])]
    assert all("math_acc" not in r and "kl" not in r for r in fills)  # only the missing probe, no retention
    rows = {r["method"]: r for r in merged_rows(lines)}
    for m, r in rows.items():  # the same model: template AFGB and the stored values unchanged
        old = next(x for x in stored if x["method"] == m)
        assert r["afgb"] == old["afgb"] and r["math_acc"] == old["math_acc"] and r["kl"] == old["kl"]
        assert r["probes"] == ["gendered", "math"] and 0 <= r["gendered_acc"] <= 1
    assert (
        rows["block-last"]["gendered_acc"] != rows["base"]["gendered_acc"]
        or rows["block-last"]["afgb"] != rows["base"]["afgb"]
    )
    pipeline.compare_to(tiny3_dir, tmp_path, both, methods, fill=True)  # filled rows are not filled again
    assert len(read_rows(tmp_path / "rows.jsonl")) == 4
    assert "gendered_acc" in pd.read_csv(tmp_path / "summary.csv")


@pytest.mark.downloads
@pytest.mark.integration  # a whole pipeline, over 12 s
def test_a_sweep_with_a_torn_last_row_reruns_that_row(tiny3_dir, tmp_path):
    whole = pipeline.sweep_to(
        tiny3_dir, tmp_path / "a", SweepConfig(blocks="2", budget={"steps": 1, "mass_weight": 0.0})
    )
    line = (tmp_path / "a" / "rows.jsonl").read_text()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "rows.jsonl").write_text(line[: len(line) // 2])  # killed while the row was written
    again = pipeline.sweep_to(
        tiny3_dir, tmp_path / "b", SweepConfig(blocks="2", budget={"steps": 1, "mass_weight": 0.0})
    )
    drop = ["wall_s"]
    pd.testing.assert_frame_equal(again.drop(columns=drop), whole.drop(columns=drop))

"""Grid rows as jobs (submitit's local executor): every row once, in one rows.jsonl; a killed job runs again on
the next call, a failing one is reported with its log while the others finish; a compare grid as jobs equals
the same grid in this process."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from lftf_interp.errors import ConfigError
from lftf_interp.experiments import pipeline
from lftf_interp.experiments.compare import CompareConfig
from lftf_interp.experiments.jobs import ExecutorConfig, RowJob, run_rows
from lftf_interp.experiments.rundir import read_rows, recorder
from lftf_interp.retain import RetainConfig

TESTS = str(Path(__file__).resolve().parents[1])
LOCAL = ExecutorConfig("local", max_jobs=2, poll_s=0.2)


@pytest.fixture
def jobs_env(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))


def grid(tmp_path, marks):
    from jobrows import square

    rows = tmp_path / "rows.jsonl"
    done = {r["i"] for r in read_rows(rows)}
    jobs = [RowJob(f"row-{i}", square, {"i": i, "marks": str(marks)}) for i in range(4) if i not in done]
    return run_rows(jobs, tmp_path / "jobs", LOCAL, recorder(rows, None), say=lambda s: None)


def runs(marks, i):
    return len(list(Path(marks).glob(f"ran-{i}-*")))


@pytest.mark.integration  # several processes
def test_a_killed_job_runs_again_and_a_failing_one_leaves_the_others_finished(tmp_path, jobs_env):
    marks = tmp_path / "marks"
    marks.mkdir()
    (marks / "kill-1").touch()
    (marks / "raise-2").touch()
    failures = grid(tmp_path, marks)
    got = {r["i"] for r in read_rows(tmp_path / "rows.jsonl")}
    assert got == {0, 3}
    assert len(failures) == 2
    (f1,) = [f for f in failures if "row-1" in f]
    (f2,) = [f for f in failures if "row-2" in f]
    assert (
        "ValueError: row 2 cannot be computed" in f2
        and "log: " in f2
        and Path(f2.split("log: ")[1][:-1]).is_file()
    )
    assert "without a row" in f1
    (marks / "kill-1").unlink()
    (marks / "raise-2").unlink()
    assert grid(tmp_path, marks) == []
    rows = read_rows(tmp_path / "rows.jsonl")
    assert sorted(r["i"] for r in rows) == [0, 1, 2, 3] and all(r["square"] == r["i"] ** 2 for r in rows)
    assert [runs(marks, i) for i in range(4)] == [1, 2, 2, 1]  # finished rows never ran again
    assert grid(tmp_path, marks) == [] and len(read_rows(tmp_path / "rows.jsonl")) == 4


def test_a_row_finished_after_its_driver_stopped_is_recorded_without_running(tmp_path, jobs_env):
    marks = tmp_path / "marks"
    marks.mkdir()
    for i in range(4):
        (tmp_path / "jobs" / f"row-{i}").mkdir(parents=True)
        (tmp_path / "jobs" / f"row-{i}" / "row.json").write_text(json.dumps({"i": i, "square": i * i}))
    assert grid(tmp_path, marks) == []
    assert len(read_rows(tmp_path / "rows.jsonl")) == 4 and not list(marks.iterdir())


def test_executor_config_is_checked():
    with pytest.raises(ConfigError, match="choose one of"):
        ExecutorConfig("kubernetes")
    with pytest.raises(ConfigError, match="max_jobs"):
        ExecutorConfig("local", max_jobs=0)


@pytest.mark.integration  # several processes
def test_a_compare_grid_as_jobs_equals_the_grid_in_this_process(tiny3_dir, tmp_path, jobs_env):
    small = RetainConfig(tasks={"piqa": 4}, asdiv=0, n_windows=2, window=32, n_boot=20)
    cfg = CompareConfig(seeds=(0, 1), budget={"steps": 2, "n_val": 20}, retain=small, n_boot=50)
    methods = ["base", "prompt", "block-last"]  # base and prompt once, block-last on seeds 0 and 1
    pipeline.compare_to(tiny3_dir, tmp_path / "inline", cfg, methods)
    ex = ExecutorConfig("local", max_jobs=2, poll_s=0.2)
    pipeline.compare_to(tiny3_dir, tmp_path / "jobs", cfg, methods, executor=ex)
    a, b = (
        pd.DataFrame(read_rows(tmp_path / d / "rows.jsonl"))
        .sort_values(["method", "seed"])
        .reset_index(drop=True)
        for d in ("inline", "jobs")
    )
    assert len(a) == 4 and len(list((tmp_path / "jobs" / "jobs").iterdir())) == 4
    drop = ["wall_s", "train_s", "retention_table"]
    # atol: a KL of order 1e-5 is a difference of nearly equal float32 logs (3.5e-8 apart between runs whose
    # base reference was computed by another job)
    pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop), rtol=1e-5, atol=1e-6)
    assert (tmp_path / "jobs" / "summary.csv").read_text() != "" and (
        tmp_path / "jobs" / "table.md"
    ).is_file()


def test_a_bad_budget_is_refused_before_any_row_runs():
    with pytest.raises(ConfigError, match="lr must be a finite number > 0"):
        CompareConfig(budget={"steps": 1, "lr": -1.0})

"""The GPU check runs end to end (here: on the CPU in bfloat16 with a tiny model) and its JSON says, per stage,
the difference to float32, its tolerance and whether it holds."""

import json
import subprocess
import sys

import pytest
from helpers import REPO


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_gpu_check_runs_on_cpu_with_a_tiny_model(tmp_path):
    out = tmp_path / "check.json"
    cmd = [sys.executable, "scripts/gpu_check.py", "--device", "cpu", "--dtype", "bfloat16", "--tiny"]
    done = subprocess.run(
        cmd + ["--steps", "2", "--n", "8", "--probes", "gendered,math", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    report = json.loads(out.read_text())
    (model,) = report["models"].values()
    assert set(model["check"]) == {"afgb", "ub", "bmi", "patching", "tuned_afgb", "probe"}
    for stage in model["check"].values():
        assert 0 <= stage["max_abs_diff"] and stage["ok"] == (stage["max_abs_diff"] <= stage["tolerance"])
    assert model["check"]["bmi"]["max_abs_diff"] > 0  # bfloat16 really ran: it differs from float32
    assert done.returncode == (0 if report["ok"] else 1) and report["dtype"] == "bfloat16"

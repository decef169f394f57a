"""The package as a user installs it: build the wheel, install it with --no-deps into a fresh venv that sees the
pinned dependencies of requirements.lock (this suite's venv), and run ``lftf`` from outside the repository."""

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from lftf_interp import __version__
from lftf_interp.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def run(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_the_wheel_installs_and_runs_without_the_repository(tiny_bridge, tmp_path):
    from lftf_interp.models.loading import export_hf

    src = tmp_path / "src"  # a copy: building writes build/ and *.egg-info, never into the checkout
    shutil.copytree(ROOT / "lftf_interp", src / "lftf_interp", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / f, src / f)
    built = run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        tmp_path / "dist",
        src,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("lftf_interp-*.whl")
    assert wheel.name.startswith(f"lftf_interp-{__version__}-")

    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    py = env / "bin" / "python"
    site = Path(
        run(
            py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
        ).stdout.strip()
    )
    (site / "lock.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )  # the pinned dependencies, after the wheel
    installed = run(
        sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "-q", wheel, cwd=tmp_path
    )
    assert installed.returncode == 0, installed.stderr

    where = run(py, "-c", "import lftf_interp; print(lftf_interp.__file__)", cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(env), where  # the installed copy, not the checkout
    lftf = env / "bin" / "lftf"
    helped = run(lftf, "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "finetune" in helped.stdout, helped.stderr

    model = export_hf(tiny_bridge, tmp_path / "tiny")
    res = run(
        lftf,
        "evaluate",
        "--model",
        model,
        "--split",
        "validation",
        "--n-boot",
        "50",
        "--out",
        tmp_path / "eval",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n"] == len(load_dataset("genbias", "validation")) and 0 <= metrics["afgb"] <= 1
    res = run(
        lftf,
        "evaluate",
        "--model",
        model,
        "--axis",
        "religion",
        "--n-boot",
        "50",
        "--out",
        tmp_path / "rel",
        cwd=tmp_path,
    )  # the axis files ship in the wheel
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads((tmp_path / "rel" / "metrics.json").read_text())["axis"] == "religion"
    res = run(
        lftf, "evaluate", "--model", model, "--batch-size", "0", cwd=tmp_path
    )  # the entry point's one-line errors
    assert res.returncode == 2 and "Traceback" not in res.stdout + res.stderr

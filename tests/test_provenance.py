"""Provenance: the commit of this checkout and the package version, recorded next to every result."""

import subprocess
from pathlib import Path

from lftf_interp import __version__
from lftf_interp.provenance import git_commit, run_meta


def test_git_commit_is_this_checkouts_head():
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    ).stdout.strip()
    assert git_commit() == (head or None)


def test_run_meta_carries_version_commit_time_and_config():
    m = run_meta(model="x", seed=3)
    assert m["package_version"] == __version__ and m["git_commit"] == git_commit()
    assert m["model"] == "x" and m["seed"] == 3 and len(m["time"]) == 19

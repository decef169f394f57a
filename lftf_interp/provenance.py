"""Provenance of a run: package version, git commit, time and the configuration, for every file we write."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from lftf_interp import __version__


def git_commit() -> str | None:
    """The commit of the checkout this package runs from, or None outside a git checkout."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        ).stdout.strip()
    except Exception:
        return None


def run_meta(**config) -> dict:
    """``{package_version, git_commit, time, **config}``: what a results file records about how it was made."""
    return {
        "package_version": __version__,
        "git_commit": git_commit(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **config,
    }


__all__ = ["git_commit", "run_meta"]

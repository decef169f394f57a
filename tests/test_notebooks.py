"""Execute every notebook end to end on the real model, into a temporary folder: the committed notebooks and
figures/ are never touched (``make notebooks`` rewrites those)."""

import hashlib
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "notebooks"))
from execute import execute  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
pytestmark = [pytest.mark.notebook, pytest.mark.integration]


def _digest(folder: Path, pattern: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(pattern))}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_draws_its_figures(path, tmp_path, monkeypatch):
    # the kernel inherits it: shorter fine-tunes, the same cells and figures
    monkeypatch.setenv("LFTF_QUICK", "1")
    figures, notebooks = _digest(ROOT / "figures", "*.png"), _digest(path.parent, "*.ipynb")
    out = execute(
        path, tmp_path / "nb", figures=tmp_path / "fig"
    )  # raises CellExecutionError on any failing cell
    nb = nbformat.read(out, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every code cell ran"
    wanted = set(re.findall(r'FIG / "([^"]+\.png)"', "".join(c.source for c in code)))
    assert wanted and {p.name for p in (tmp_path / "fig").glob("*.png")} >= wanted
    assert (
        _digest(ROOT / "figures", "*.png") == figures and _digest(path.parent, "*.ipynb") == notebooks
    )  # repo untouched

"""Execute the notebooks and write them back with their outputs (``make notebooks``).

    python notebooks/execute.py                      # every notebook, in place; figures into figures/
    python notebooks/execute.py --out DIR --figures FIGDIR 01_bias_baseline   # elsewhere (the test suite)

A notebook that raises stops the run with the failing cell's error; nothing is written for it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
# committed outputs without progress bars (the kernels inherit this environment)
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


NOISE = (
    "TqdmWarning: IProgress not found",
)  # a warning about the kernel's widgets, with this machine's paths


def quiet(nb) -> None:
    """Drop stderr outputs that are environment noise, not the notebook's: they name this machine's paths."""
    for cell in nb.cells:
        if cell.get("outputs"):
            cell.outputs = [
                o
                for o in cell.outputs
                if not (o.get("name") == "stderr" and any(n in "".join(o.get("text", "")) for n in NOISE))
            ]


def execute(path: Path, out: Path, figures: Path | None = None, timeout: int = 1800) -> Path:
    """Run ``path`` top to bottom in a fresh kernel (cwd: the notebooks folder) and write it to ``out``."""
    nb = nbformat.read(path, as_version=4)
    saved = os.environ.get("LFTF_FIGURES")
    if figures is not None:  # the kernel inherits this process's environment
        os.environ["LFTF_FIGURES"] = str(figures)
    try:
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
        ).execute()
    finally:
        if saved is None:
            os.environ.pop("LFTF_FIGURES", None)
        else:
            os.environ["LFTF_FIGURES"] = saved
    quiet(nb)
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / path.name)
    return out / path.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="notebook stems (default: all)")
    ap.add_argument(
        "--out", type=Path, default=HERE, help="where the executed notebooks go (default: in place)"
    )
    ap.add_argument(
        "--figures", type=Path, default=None, help="figure folder (default: the repository's figures/)"
    )
    args = ap.parse_args()
    paths = sorted(HERE.glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names]
    for p in paths:
        print(f"executing {p.name}", flush=True)
        execute(p, args.out, args.figures)


if __name__ == "__main__":
    main()

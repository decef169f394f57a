"""Shared test helpers: tiny configs, paths."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO.parent / "shared" / "external"


def tiny(n_layers: int = 2, seed: int = 0):
    from lftf_interp.models import tiny_model

    return tiny_model(n_layers=n_layers, seed=seed)

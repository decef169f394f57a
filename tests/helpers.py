"""Shared test helpers: tiny configs, paths."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO.parent / "shared" / "external"


def tiny(n_layers: int = 2, seed: int = 0):
    from lftf_interp.models.loading import tiny_model

    return tiny_model(n_layers=n_layers, seed=seed)


def hooked_bmi(model, prompts, n_layers: int):
    """BMI per (block, prompt) from the bridge's hooked residuals at the last position: the reference that
    ``locate.block_cosines`` is tested against."""
    import numpy as np
    import torch

    from lftf_interp.models.tokens import encode

    out = np.zeros((n_layers, len(prompts)))
    for i, prompt in enumerate(prompts):
        _, cache = model.run_with_cache(torch.tensor([encode(model, prompt)]))
        for layer in range(n_layers):
            a, b = (
                cache[f"blocks.{layer}.hook_resid_pre"][0, -1],
                cache[f"blocks.{layer}.hook_resid_post"][0, -1],
            )
            out[layer, i] = 1 - torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0).item()
    return out


def flip(path, at: int = -100) -> None:
    """Flip one byte of ``path`` in place (same size)."""
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path, keep: float = 0.5) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def lftf(*args):
    """``lftf ARGS`` in-process (typer's runner); the result has exit_code and output."""
    from typer.testing import CliRunner

    from lftf_interp.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args])

"""Then fine-tune: train only the located block(s) with an LFTF loss; deltas; checkpoints."""

from .delta import DeltaMismatchError, apply_delta, block_fingerprint, save_delta
from .losses import LOSSES, hint_loss, kl_to_base, mass_anchor, pronoun_loss
from .train import (
    BlockInputCache,
    TrainingError,
    TuneConfig,
    TuneResult,
    freeze_all_but,
    resolve_blocks,
    tune,
)

__all__ = [
    "LOSSES",
    "BlockInputCache",
    "DeltaMismatchError",
    "TrainingError",
    "TuneConfig",
    "TuneResult",
    "apply_delta",
    "block_fingerprint",
    "freeze_all_but",
    "hint_loss",
    "kl_to_base",
    "mass_anchor",
    "pronoun_loss",
    "resolve_blocks",
    "save_delta",
    "tune",
]

"""Then fine-tune: train only the located block(s) with an LFTF loss; deltas; checkpoints."""

from .delta import (
    DeltaCorruptError,
    DeltaMismatchError,
    apply_delta,
    block_fingerprint,
    read_delta,
    save_delta,
)
from .losses import LOSSES, group_loss, hint_loss, kl_to_base, mass_anchor, pronoun_loss
from .scopes import BlockInputCache, freeze_all_but
from .train import METHODS, TrainingError, TuneConfig, TuneResult, tune

__all__ = [
    "LOSSES",
    "METHODS",
    "BlockInputCache",
    "DeltaCorruptError",
    "DeltaMismatchError",
    "TrainingError",
    "TuneConfig",
    "TuneResult",
    "apply_delta",
    "block_fingerprint",
    "freeze_all_but",
    "group_loss",
    "hint_loss",
    "kl_to_base",
    "mass_anchor",
    "pronoun_loss",
    "read_delta",
    "save_delta",
    "tune",
]

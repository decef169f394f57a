"""Then fine-tune: train only the located block(s) with an LFTF loss; deltas; checkpoints."""

from lftf_interp.tune.delta import (
    DeltaCorruptError,
    DeltaMismatchError,
    apply_delta,
    block_fingerprint,
    read_delta,
    save_delta,
)
from lftf_interp.tune.losses import LOSSES, group_loss, hint_loss, kl_to_base, mass_anchor, pronoun_loss
from lftf_interp.tune.scopes import BlockInputCache, freeze_all_but
from lftf_interp.tune.train import METHODS, TrainingError, TuneConfig, TuneResult, tune

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

"""How a fine-tune trains: :class:`TuneConfig`, the one source of every training default (the CLI's ``lftf
finetune`` options take their defaults and help from its fields)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

from lftf_interp.configs import Config, setting
from lftf_interp.data.axis import DEFAULT_AXIS, load_axis
from lftf_interp.errors import ConfigError
from lftf_interp.tune.beyond import BeyondTemplate
from lftf_interp.tune.losses import LOSSES

METHODS = ("block", "full", "lora")
BUDGET_FIELDS = ("loss", "hint_weight", "mass_weight", "lr", "steps", "batch_size", "eval_every", "n_val")


@dataclass
class TuneConfig(Config):
    """How LFTF (or a baseline) trains. The defaults are the budget behind the README's numbers; the CLI's
    ``lftf finetune`` options take their defaults and help from these fields."""

    block: int | tuple[int, ...] | None = setting(
        None, "The block(s) LFTF trains (method 'block'); see locate.choose_blocks."
    )
    loss: str = setting("balanced", "paper, sum or balanced.")
    lr: float = setting(3e-4, "AdamW learning rate.")
    steps: int = setting(150, "Optimizer steps.")
    batch_size: int = setting(32, "Prompts per step.")
    n_train: int | None = setting(
        None, "Train on a seeded subset of this many prompts (default: all of them)."
    )
    hint_weight: float = setting(
        0.5, "Weight of the cross-entropy toward the hinted group on hint prompts (0 = off)."
    )
    kl_weight: float = setting(0.0, "Weight of KL(base || tuned) on neutral text (0 = off).")
    mass_weight: float = setting(1.0, "Weight of the (log group mass - base log mass)^2 anchor (0 = off).")
    gendered_weight: float = setting(
        0.0, "Gender only: cross-entropy toward the right pronoun after gendered nouns (0 = off)."
    )
    winobias_weight: float = setting(
        0.0, "Gender only: balanced loss on WinoBias dev sentences cut before the pronoun (0 = off)."
    )
    winobias_sentence_weight: float = setting(
        0.0, "Gender only: balanced loss on whole WinoBias dev pro / anti pairs (0 = off)."
    )
    winobias_split: str = setting(
        "dev",
        "WinoBias material of the winobias terms: dev, or dev-fit (dev without the occupations of dev-select, "
        "which then chooses weights).",
    )
    cda_weight: float = setting(
        0.0,
        "Gender only: balanced loss on corpus sentences naming a train occupation vs their gender-swapped twins "
        "(counterfactual pairs from tune(documents=...); 0 = off).",
    )
    cda_n: int | None = setting(
        None, "Counterfactual pairs used (seeded; None: every pair the documents give)."
    )
    pair_weight: float = setting(
        0.0,
        "Weight of the balanced loss between StereoSet's stereotype and anti-stereotype sentences of the fit "
        "target terms (tune(pairs=...): the axis's StereoSet bias type; 0 = off).",
    )
    lms_weight: float = setting(
        0.0,
        "Weight of the term keeping each meaningful StereoSet fit sentence above its unrelated filling by the base "
        "model's margin (tune(pairs=...); 0 = off).",
    )
    swap_weight: float = setting(
        0.0,
        "Weight of the balanced loss between each StereoSet fit sentence and its twin about the other group (the "
        "axis file's counterparts: 'the caring mother' / 'the caring father'; tune(pairs=...); 0 = off).",
    )
    pair_kinds: tuple[str, ...] = setting(
        ("intrasentence",), "StereoSet item kinds the pair terms train on: intrasentence, intersentence."
    )
    template_weight: float = setting(
        1.0, "Weight of the LFTF loss on the template prompts (0 = off: e.g. the CDA-only baseline)."
    )
    context_weight: float = setting(
        0.0,
        "Weight of the loss on training prompts after 0..context_max tokens of neutral text (method block; "
        "0 = off). The text: tune(documents=...), which the CLI and lftf compare draw from corpus documents no "
        "probe reads.",
    )
    context_max: int = setting(
        1024, "Longest stretch of neutral text before a prompt (tokens; context term)."
    )
    context_n: int = setting(16, "Stretches of text the training prompts are spread over (context term).")
    hint_exclude: tuple[str, ...] = setting(
        (), "Hint kinds left out of training and validation (leave-one-kind-out)."
    )
    external: str | None = setting(
        None, "Folder holding winobias/ (default: data.external.external_root(), else the pinned download)."
    )
    eval_every: int = setting(10, "Validate every k steps.")
    n_val: int | None = setting(200, "Validation prompts (seeded subset of the validation split; None: all).")
    patience: int | None = setting(
        None, "Evaluations without a better validation score before stopping (None: never)."
    )
    restore_best: bool = setting(
        True, "Keep the evaluation with the best validation score (else the last step)."
    )
    checkpoint_every: int = setting(10, "Checkpoint every k steps when writing to a folder (0 = never).")
    seed: int = setting(0, "Seed of batches, subsets and initialisation.")
    axis: str = setting(
        DEFAULT_AXIS,
        "The bias axis to remove: a shipped name (gender, religion, religion-identity, race, race-choice, gender3, pronouns) or an axis file.",
    )
    method: str = setting("block", "block (LFTF), full (FPFT baseline) or lora (peft LoRA on all blocks).")
    lora_r: int = setting(8, "LoRA rank (method 'lora').")
    lora_alpha: int = setting(16, "LoRA alpha (method 'lora').")

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if isinstance(self.block, Sequence) and not isinstance(self.block, str):
            self.block = tuple(self.block)
        ok = (
            self.block is None
            or isinstance(self.block, int)
            or (isinstance(self.block, tuple) and self.block and all(isinstance(b, int) for b in self.block))
        )
        if not ok:
            raise ConfigError(
                f"block must be a block index or a list of them, got {self.block!r}. To let BMI choose, call "
                "lftf_interp.locate.choose_blocks(model) (the CLI's --block auto) and pass its result."
            )
        if self.steps < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ConfigError("steps, batch_size and eval_every must be >= 1")
        if self.cda_n is not None and self.cda_n < 1:
            raise ConfigError(f"cda_n must be >= 1 (or None for every pair), got {self.cda_n}")
        if self.n_train is not None and self.n_train < 1:
            raise ConfigError(f"n_train must be >= 1 (or None for every training prompt), got {self.n_train}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a finite number > 0 (e.g. 3e-4), got {self.lr}")
        weights = {k: v for k, v in asdict(self).items() if k.endswith("_weight")}
        if bad := [f"{k}={v}" for k, v in weights.items() if not (v >= 0 and math.isfinite(v))]:
            raise ConfigError(
                f"loss-term weights must be finite numbers >= 0 (0 turns a term off); got {', '.join(bad)}"
            )
        if self.winobias_split not in ("dev", "dev-fit"):
            raise ConfigError(
                f"winobias_split must be dev or dev-fit (WinoBias test and dev-select are only evaluated), "
                f"got {self.winobias_split!r}."
            )
        if self.context_max < 1 or self.context_n < 1:
            raise ConfigError(
                f"context_max and context_n must be >= 1, got {self.context_max} and {self.context_n}."
            )
        if self.context_weight > 0 and self.method != "block":
            raise ConfigError(
                f"the context term trains blocks (method 'block'), not method {self.method!r}; set "
                "context_weight to 0."
            )
        self.hint_exclude = tuple(self.hint_exclude)
        self.pair_kinds = tuple(self.pair_kinds)
        if not self.pair_kinds or set(self.pair_kinds) - {"intrasentence", "intersentence"}:
            raise ConfigError(
                f"pair_kinds must name intrasentence and/or intersentence, got {list(self.pair_kinds)}."
            )
        if self.swap_weight > 0 and not load_axis(self.axis).counterparts:
            raise ConfigError(
                f"swap_weight turns sentences into their twins about the other group; axis {self.axis!r} declares "
                "no counterparts (its file's counterparts: [[word, its counterpart], ...]): add them or set it to 0."
            )
        if BeyondTemplate.wanted(self) and not load_axis(self.axis).gendered:
            raise ConfigError(
                "gendered_weight, winobias_weight, winobias_sentence_weight and cda_weight train on gendered "
                f"material; axis {self.axis!r} is not gendered (its file has no gendered: true): set them to 0."
            )

    @property
    def blocks(self) -> list[int]:
        """The tuned blocks, sorted (method "block")."""
        return sorted({self.block} if isinstance(self.block, int) else set(self.block or ()))

    @classmethod
    def budget(cls) -> dict:
        """The training budget every method of a comparison shares: these fields' defaults."""
        defaults = {f.name: f.default for f in fields(cls)}
        return {name: defaults[name] for name in BUDGET_FIELDS}


__all__ = ["BUDGET_FIELDS", "METHODS", "TuneConfig"]

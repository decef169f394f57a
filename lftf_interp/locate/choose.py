"""Which block(s) the fine-tune trains: BMI's top block(s), past the blocks whose BMI is an embedding artefact.

BMI ranks blocks by how much they rotate the residual stream at the last position of the bias prompts. The
first blocks of a model turn token embeddings into the residual representation and rotate *any* input a
lot (on SmolLM2 block 0 has BMI 0.95 on bias prompts and on neutral sentences alike; notebook 02), so their
rank says nothing about bias. :func:`artefact_blocks` finds them from the model and the data instead of a
hard-coded list: the leading run of blocks whose BMI on neutral text (:data:`~lftf_interp.data.NEUTRAL_PROMPTS`)
exceeds the bias-prompt BMI of every later block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from lftf_interp.data import DEFAULT_AXIS, NEUTRAL_PROMPTS, load_axis
from lftf_interp.data.datasets import sample_rows
from lftf_interp.errors import LftfError
from lftf_interp.locate.bmi import compute_bmi

AUTO = "auto"
N_PROMPTS = 300  # training prompts BMI is ranked on (a seeded subsample of the train split)


def artefact_blocks(bmi: pd.DataFrame, neutral_bmi: pd.DataFrame) -> list[int]:
    """The leading blocks 0, 1, … whose BMI on neutral text is above every later block's BMI on the bias
    prompts: they rotate any input more than any later block rotates the bias prompts. The last block is
    never one (nothing comes after it)."""
    bias = bmi.sort_values("layer").bmi.to_numpy()
    neutral = neutral_bmi.sort_values("layer").bmi.to_numpy()
    out = []
    for layer in range(len(bias) - 1):
        if neutral[layer] <= bias[layer + 1 :].max():
            break
        out.append(layer)
    return out


@dataclass
class BlockChoice:
    """The chosen blocks, the blocks set aside and why, and the BMI table the choice was made on."""

    blocks: list[int]
    excluded: list[int]
    bmi: pd.DataFrame
    neutral_bmi: pd.DataFrame | None

    @property
    def ranked(self) -> list[int]:
        """Every block not excluded, highest BMI first."""
        return [
            int(b) for b in self.bmi[~self.bmi.layer.isin(self.excluded)].sort_values(["rank", "layer"]).layer
        ]

    def to_dict(self) -> dict:
        return {
            "blocks": self.blocks,
            "excluded": self.excluded,
            "n_prompts": int(self.bmi.n.iloc[0]),
            "top5": self.bmi.sort_values(["rank", "layer"]).head(5)[["layer", "bmi"]].to_dict("records"),
        }


def rank_for_tuning(
    model,
    top_k: int = 1,
    exclude: str | Sequence[int] = AUTO,
    prompts: Sequence[str] | None = None,
    seed: int = 0,
    axis: str = DEFAULT_AXIS,
) -> BlockChoice:
    """BMI on ``prompts`` (default: :data:`N_PROMPTS` of the axis's train bias prompts, GenBiasEval's for gender,
    drawn with ``seed``), blocks in ``exclude`` set aside (``"auto"``: :func:`artefact_blocks`), the ``top_k``
    highest-BMI blocks chosen."""
    if top_k < 1:
        raise LftfError(f"top_k must be >= 1, got {top_k}")
    if prompts is None:
        prompts = sample_rows(load_axis(axis).bias_prompts("train"), N_PROMPTS, seed).prompt.tolist()
    bmi = compute_bmi(model, prompts)
    neutral = None
    if isinstance(exclude, str):
        if exclude != AUTO:
            raise LftfError(f"exclude must be {AUTO!r} or a list of block indices, got {exclude!r}")
        neutral = compute_bmi(model, NEUTRAL_PROMPTS)
        excluded = artefact_blocks(bmi, neutral)
    else:
        excluded = sorted(int(b) for b in exclude)
    choice = BlockChoice([], excluded, bmi, neutral)
    if len(choice.ranked) < top_k:
        raise LftfError(
            f"Only {len(choice.ranked)} blocks are left after excluding {excluded}; cannot choose {top_k}."
        )
    choice.blocks = sorted(choice.ranked[:top_k])
    return choice


def choose_blocks(
    model,
    top_k: int = 1,
    exclude: str | Sequence[int] = AUTO,
    prompts: Sequence[str] | None = None,
    seed: int = 0,
    axis: str = DEFAULT_AXIS,
) -> list[int]:
    """The block(s) LFTF tunes (``--block auto``): see :func:`rank_for_tuning`."""
    return rank_for_tuning(model, top_k, exclude, prompts, seed, axis).blocks


def resolve_block(
    bridge,
    block: str | int | Sequence[int],
    top_k: int = 1,
    exclude: str | Sequence[int] = AUTO,
    seed: int = 0,
    axis: str = DEFAULT_AXIS,
) -> tuple[list[int], dict]:
    """``block``: an index, a list, or ``"auto"`` (BMI's top ``top_k`` past ``exclude``, on the axis's training
    prompts). Returns the blocks and how they were chosen (for metrics.json)."""
    if block == AUTO:
        choice = rank_for_tuning(bridge, top_k, exclude, seed=seed, axis=axis)
        return choice.blocks, {"how": "auto", **choice.to_dict()}
    blocks = [int(block)] if isinstance(block, int | str) else [int(b) for b in block]
    return blocks, {"how": "given", "blocks": blocks}


__all__ = [
    "AUTO",
    "N_PROMPTS",
    "BlockChoice",
    "artefact_blocks",
    "choose_blocks",
    "rank_for_tuning",
    "resolve_block",
]

"""Choosing the block to tune: BMI's top block past the embedding-artefact blocks, derived from the data."""

import pandas as pd
import pytest

from lftf_interp.errors import LftfError
from lftf_interp.locate import artefact_blocks, choose_blocks, compute_bmi, rank_for_tuning


def table(values):
    return pd.DataFrame({"layer": range(len(values)), "bmi": values})


def test_artefact_blocks_on_hand_built_tables():
    bias = table([0.95, 0.21, 0.10, 0.12, 0.14])
    # block 0 rotates neutral text (0.90) more than any later block rotates the bias prompts (max 0.21): artefact;
    # block 1 (0.20 on neutral) too, since the max after it is 0.14; block 2 (0.05) is not, and the run stops there
    assert artefact_blocks(bias, table([0.90, 0.20, 0.05, 0.30, 0.40])) == [0, 1]
    assert artefact_blocks(bias, table([0.20, 0.90, 0.90, 0.90, 0.90])) == []  # a leading run only
    assert artefact_blocks(table([0.5, 0.1]), table([0.9, 0.9])) == [0]  # the last block is never one


def test_choice_is_the_bmi_argmax_past_the_excluded_blocks(tiny3):
    prompts = ["The nurse said that", "The farmer went home because", "The pilot was late because"]
    bmi = compute_bmi(tiny3, prompts).set_index("layer").bmi
    assert choose_blocks(tiny3, exclude=[], prompts=prompts) == [int(bmi.idxmax())]
    assert choose_blocks(tiny3, exclude=[int(bmi.idxmax())], prompts=prompts) == [
        int(bmi.drop(bmi.idxmax()).idxmax())
    ]
    assert choose_blocks(tiny3, top_k=3, exclude=[], prompts=prompts) == [0, 1, 2]
    c = rank_for_tuning(tiny3, exclude="auto", prompts=prompts)
    assert c.excluded == artefact_blocks(c.bmi, c.neutral_bmi)
    assert c.blocks == [int(bmi.drop(c.excluded).idxmax())]
    with pytest.raises(LftfError, match="cannot choose"):
        choose_blocks(tiny3, top_k=3, exclude=[0], prompts=prompts)
    with pytest.raises(LftfError, match="exclude must be"):
        choose_blocks(tiny3, exclude="none", prompts=prompts)

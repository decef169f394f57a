"""The sentence-benchmark files as probes: the flat keys hold the scores of metrics.pairs, the file's sha256,
and a config given a file runs its probe on any axis and refuses a malformed file before any model loads."""

from pathlib import Path

import pytest

from lftf_interp.data.pairsets import read_bbq, read_crows, read_pairs
from lftf_interp.errors import ConfigError, DatasetError
from lftf_interp.metrics.pairs import bbq_answers, bbq_scores, crows_scores, pair_scores
from lftf_interp.probes import ValidityConfig, validity_report
from lftf_interp.probes.sentences import file_probe
from lftf_interp.store import sha256_file

FIX = Path(__file__).parents[2] / "examples" / "pairs"


def test_crows_and_pairs_keys_hold_their_tables(tiny_bridge):
    flat, scored = file_probe("crows", tiny_bridge, FIX / "crows_example.csv", n_boot=50)
    table = crows_scores(tiny_bridge, read_crows(FIX / "crows_example.csv"), 50, 0)[0].set_index("bias_type")
    assert (
        flat["crows_gender"] == table.loc["gender", "score"]
        and flat["crows_age_ci"] == table.loc["age", "score_ci"]
    )
    assert flat["crows_gap_overall"] == table.loc["overall", "gap"] and len(scored) == 5
    assert flat["crows_file_sha256"] == sha256_file(FIX / "crows_example.csv")
    flat, _ = file_probe("pairs", tiny_bridge, FIX / "pairs_example.jsonl", n_boot=50)
    table = pair_scores(tiny_bridge, read_pairs(FIX / "pairs_example.jsonl"), 50, 0)[0].set_index("target")
    assert (
        flat["pairs_nurse"] == table.loc["nurse", "score"]
        and flat["pairs_lms_nurse"] == table.loc["nurse", "lms"]
    )
    assert "pairs_lms_engineer" not in flat and "pairs_lms_overall" in flat


def test_bbq_keys_hold_its_scores(tiny_bridge):
    flat, answered = file_probe("bbq", tiny_bridge, FIX / "bbq_example.jsonl")
    want = bbq_scores(bbq_answers(tiny_bridge, read_bbq(FIX / "bbq_example.jsonl"))).set_index("category")
    assert flat["bbq_accuracy_ambig_age"] == want.loc["Age", "accuracy_ambig"]
    assert flat["bbq_bias_disambig_overall"] == pytest.approx(
        want.loc["overall", "bias_disambig"], nan_ok=True
    )
    assert len(answered) == 6


def test_a_given_file_adds_its_probe_on_any_axis_and_is_checked_first(tiny_bridge, tmp_path):
    cfg = ValidityConfig(probes=("math",), math_n=5, pairs=str(FIX / "pairs_example.jsonl"), n_boot=50)
    assert cfg.probes == ("math", "pairs")
    flat, frames = validity_report(tiny_bridge, cfg)
    assert set(frames) == {"math", "pairs"} and "pairs_nurse" in flat and "math_acc" in flat
    off = ValidityConfig(axis="race", crows=str(FIX / "crows_example.csv"))
    assert off.probes == ("long_context", "stereoset", "crows")
    assert cfg.for_axis("race").probes == ("pairs",)  # math reads gendered material
    with pytest.raises(ConfigError, match="Probe bbq reads a file: give --bbq FILE"):
        ValidityConfig(probes=("bbq",))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"stereotype": "A b."}\n')
    with pytest.raises(DatasetError, match=":1: no anti_stereotype"):
        ValidityConfig(pairs=str(bad))

import json

import pandas as pd
import pytest

from lftf_interp.experiments.compare import (
    BUDGET,
    CompareConfig,
    MethodSpec,
    aggregate,
    default_methods,
    draw_random_block,
    fixed_blocks,
    markdown_table,
    resolve_tune,
    run_compare,
    run_method,
)
from lftf_interp.models.loading import tiny_model
from lftf_interp.retain import RetainConfig


def test_default_methods_cover_the_issue():
    names = [m.name for m in default_methods(30)]
    for n in (
        "base",
        "prompt",
        "lftf-balanced",
        "lftf-paper",
        "lftf-sum",
        "block-first",
        "block-middle",
        "block-random",
        "block-last",
        "top3-bmi",
        "lora",
        "fpft",
        "lora-pairs",
        "fpft-pairs",
        "cda-pairs",
        "lftf-swap",
    ):
        assert n in names
    specs = {m.name: m for m in default_methods(30)}
    assert specs["block-middle"].tune["block"] == 15 and specs["block-first"].tune["block"] == 0
    cda = specs["cda-pairs"].tune  # the pair material only, every parameter, the template's terms off
    assert (
        cda["method"] == "full"
        and cda["swap_weight"] > 0
        and cda["template_weight"] == 0 == cda["hint_weight"]
    )
    assert specs["fpft-pairs"].tune["pair_weight"] == specs["lora-pairs"].tune["lms_weight"] > 0
    assert (
        specs["block-random"].tune["block"] == "random"
    )  # drawn at run time, away from the other rows' blocks
    with pytest.raises(ValueError, match="either tune overrides or an instruction"):
        MethodSpec("x", "bad", tune={}, instruction="hi")


def test_draw_random_block_avoids_the_other_rows_blocks():
    avoid = [0, 15, 29, 24, 28, 29]
    draws = {draw_random_block(30, avoid, seed=s) for s in range(200)}
    assert draws.isdisjoint(avoid) and len(draws) > 10
    assert draw_random_block(30, avoid, seed=3) == draw_random_block(30, avoid, seed=3)
    assert draw_random_block(2, [0, 1], seed=0) in (0, 1)  # nothing left: fall back to any block


def test_block_random_is_resolved_away_from_top_bmi_blocks():
    # 4 blocks: first 0, middle 2, last 3 are avoided; BMI top-3 past (0, 1) is {2, 3}; only block 1 is left
    spec = {m.name: m for m in default_methods(4, exclude=(0, 1))}["block-random"]
    cfg = CompareConfig(budget=dict(BUDGET, steps=1, eval_every=1, n_val=8), n_boot=10)
    row, _ = run_method(spec, lambda: tiny_model(4, seed=1), None, cfg, seed=0)
    assert row["blocks"] == "1"


@pytest.mark.downloads
@pytest.mark.integration  # a whole pipeline, over 12 s
def test_run_compare_on_tiny_model():
    methods = [m for m in default_methods(3) if m.name in ("base", "prompt", "lftf-balanced", "lora")]
    # (the last step kept: with best-step restore a 3-step LoRA may keep step 0, i.e. the base weights)
    cfg = CompareConfig(
        seeds=(0, 1),
        budget=dict(BUDGET, steps=3, eval_every=3, n_val=16, restore_best=False),
        retain=RetainConfig.small(asdiv=0, tasks={"piqa": 8}),
        n_boot=50,
    )
    rows = run_compare(methods, cfg, load=lambda: tiny_model(3, seed=1))
    # base/prompt once, every trained method on every seed (CIs over seeds for every method)
    assert list(zip(rows.method, rows.seed, strict=True)) == [
        ("base", 0),
        ("prompt", 0),
        ("lftf-balanced", 0),
        ("lftf-balanced", 1),
        ("lora", 0),
        ("lora", 1),
    ]
    assert rows.set_index("method").loc["base", "kl"] == 0
    assert (rows[rows.method == "lora"].kl > 0).all()
    assert rows.set_index("method").loc["prompt", "afgb"] != rows.set_index("method").loc["base", "afgb"]
    agg = aggregate(rows, base_mass=rows.mass.iloc[0], base_afgb=rows.afgb.iloc[0])
    lftf = agg.set_index("method").loc["lftf-balanced"]
    assert lftf.n_seeds == 2 and "afgb_pm" in agg.columns
    md = markdown_table(agg)
    assert md.count("\n") == len(agg) + 1 and "lftf-balanced" in md
    json.dumps(rows.to_dict(orient="records"), default=float)  # rows are JSON-serialisable (rows.jsonl)


def test_aggregate_t_interval():
    rows = pd.DataFrame(
        {
            "method": ["m"] * 3,
            "blocks": ["1"] * 3,
            "afgb": [0.1, 0.2, 0.3],
            "trainable_params": [5] * 3,
            "wall_s": [1.0] * 3,
        }
    )
    r = aggregate(rows).iloc[0]
    assert r.afgb == pytest.approx(0.2) and r.afgb_pm == pytest.approx(4.303 * 0.1 / 3**0.5)


def test_default_methods_run_every_seed_unless_told():
    specs = {m.name: m for m in default_methods(30)}
    assert all(m.n_seeds is None for m in specs.values())
    assert {
        m.n_seeds for m in default_methods(30, n_seeds_other=1) if m.tune and m.name != "lftf-balanced"
    } == {1}
    assert (
        specs["lftf-beyond"].tune["gendered_weight"] > 0 and specs["lftf-beyond"].tune["winobias_weight"] > 0
    )
    assert (
        specs["lftf-gendered"].tune["gendered_weight"] > 0
        and "winobias_weight" not in specs["lftf-gendered"].tune
    )


def test_compare_row_carries_paper_afgb_and_the_probes():
    from lftf_interp.probes import ValidityConfig

    spec = MethodSpec("base", "untouched")
    cfg = CompareConfig(n_boot=10, validity=ValidityConfig.quick(probes=("gendered", "math")))
    assert CompareConfig.from_dict(cfg.to_dict()).validity == cfg.validity
    row, _ = run_method(spec, lambda: tiny_model(2, seed=0), None, cfg)
    assert 0 <= row["afgb_paper"] <= row["afgb"] and "gendered_acc" in row and "math_acc" in row
    prompt, _ = run_method(
        MethodSpec("prompt", "p", instruction="Hi.\n"), lambda: tiny_model(2, seed=0), None, cfg
    )
    assert (
        "gendered_acc" not in prompt
    )  # the probes carry no instruction: not measured for the prompt baseline


@pytest.mark.downloads
def test_an_axis_row_carries_the_axis_probes():
    from lftf_interp.probes import AXIS_PROBES, COMPARE_VALIDITY, ValidityConfig

    assert CompareConfig(axis="race-choice", validity=COMPARE_VALIDITY).validity.probes == AXIS_PROBES
    assert CompareConfig(axis="race", validity=ValidityConfig(probes=("math",))).validity is None
    cfg = CompareConfig(
        axis="race-choice",
        n_boot=10,
        validity=ValidityConfig(probes=("long_context",), context_lengths=(0,), context_n=4, n_boot=10),
    )
    assert cfg.validity.axis == "race-choice" and CompareConfig.from_dict(cfg.to_dict()) == cfg
    row, _ = run_method(MethodSpec("base", "untouched"), lambda: tiny_model(2, seed=0), None, cfg)
    assert row["probes"] == ["long_context"] and set(row) >= {"ctx0_afgb", "ctx0_ub", "ctx0_mass"}
    assert 0 <= row["ctx0_afgb"] <= 1 and row["ctx0_mass"] > 0


def test_auto_blocks_are_chosen_by_the_locate_stage_and_fixed_blocks_are_derived():
    from lftf_interp.locate import choose_blocks

    m = tiny_model(4, seed=1)
    got = resolve_tune(m, {"block": "auto", "top_k": 2, "bmi_exclude": (0,), "lr": 1e-3}, seed=0)
    assert got == {"block": tuple(choose_blocks(m, 2, (0,), seed=0)), "lr": 1e-3}
    assert fixed_blocks(default_methods(30)) == [0, 15, 29]  # first, middle, last: what the reference caches

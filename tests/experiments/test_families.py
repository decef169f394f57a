"""The cross-family "which block" row on a hand-built fine-tune and sweep with known answers."""

import json

import pandas as pd
import pytest

from lftf_interp.errors import LftfError
from lftf_interp.experiments.families import best_block, bmi_predicts, families_to, family_table

# block: (bias after, KL, BMI). Block 0 is the embedding artefact (huge BMI, set aside).
SWEEP = {
    0: (0.30, 0.050, 0.90),
    1: (0.20, 0.030, 0.10),
    2: (0.15, 0.020, 0.20),
    3: (0.10, 0.010, 0.30),
    4: (0.12, 0.005, 0.25),
    5: (0.25, 0.004, 0.05),
}


def write_run(root, n_layers=6):
    ft, sw = root / "finetune", root / "sweep"
    ft.mkdir(parents=True)
    sw.mkdir(parents=True)
    (ft / "metrics.json").write_text(
        json.dumps(
            {
                "before": {"afgb": 0.4, "afgb_ci": [0.38, 0.42], "ub": 0.8},
                "after": {"afgb": 0.11, "afgb_ci": [0.10, 0.12], "ub": 0.99},
                "block_choice": {
                    "blocks": [3],
                    "excluded": [0],
                    "top5": [{"layer": 0, "bmi": 0.9}, {"layer": 3, "bmi": 0.3}],
                },
            }
        )
    )
    rows = [
        {"block": b, "afgb": a, "afgb_ci": [a - 0.01, a + 0.01], "ub": 0.99, "kl": k, "ppl_change_pct": 1.0}
        for b, (a, k, _) in SWEEP.items()
    ]
    (sw / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pd.DataFrame({"layer": list(SWEEP), "bmi": [v[2] for v in SWEEP.values()]}).to_csv(
        sw / "bmi.csv", index=False
    )
    (sw / "config.json").write_text(json.dumps({"n_layers": n_layers}))
    return ft, sw


def test_best_block_pareto_and_bmi_correlation(tmp_path):
    s = pd.DataFrame(
        [{"block": b, "afgb": a, "kl": k, "bmi": m, "ub": 0.99} for b, (a, k, m) in SWEEP.items()]
    )
    best, pareto = best_block(s)
    # rank sums: block 3 = 1 + 3 = 4, block 4 = 2 + 2 = 4 (tie -> lower bias: 3), block 5 = 6 + 1 = 7
    assert best == 3 and pareto == [3, 4, 5]
    s.loc[s.block == 3, "ub"] = 0.6  # a block that stops following hints is not "best"
    assert best_block(s)[0] == 4
    r = bmi_predicts(
        s, excluded=[0]
    )  # blocks 1..5: BMI order 3 > 4 > 2 > 1 > 5, bias order 3 < 4 < 2 < 1 < 5
    assert r["rho"] == pytest.approx(-1.0) and r["n_blocks"] == 5 and r["rho_ci"][1] <= 0


def test_family_rows_and_table(tmp_path):
    ft, sw = write_run(tmp_path / "m")
    rows = families_to({"tiny": (ft, sw)}, tmp_path / "out")
    r = rows[0]
    assert (r["bmi_pick"], r["best_block"], r["last_block"], r["artefact_blocks"]) == (3, 3, 5, [0])
    assert (
        r["bmi_top_raw"] == [0, 3, 4]
        and r["at_last"]["rank_by_bias"] == 5
        and r["at_pick"]["rank_by_bias"] == 1
    )
    md = (tmp_path / "out" / "families.md").read_text()
    assert md == family_table(rows) + "\n" and "0.250 [0.240, 0.260]" in md and "-1.00" in md
    with pytest.raises(LftfError, match="lftf sweep"):
        families_to({"x": (ft, tmp_path / "nope")}, tmp_path / "out2")

import pandas as pd
import pytest

from lftf_interp.experiments.tables import _blocks, aggregate, markdown_table, validity_table


def test_blocks_column_formatting():
    assert _blocks(" ".join(map(str, range(30)))) == "0–29"
    assert _blocks("20 24 29") == "20 24 29" and _blocks(24.0) == "24" and _blocks("") == "—"


def _rows():
    base = {
        "method": "base",
        "blocks": "",
        "afgb": 0.3,
        "afgb_paper": 0.09,
        "ub": 0.83,
        "mass": 0.29,
        "trainable_params": 0,
        "wall_s": 1.0,
        "gendered_acc": 0.96,
        "a_f": 0.30,
        "a_s": 0.12,
        "winobias_pro": 0.60,
        "winobias_t1_pro": 0.55,
        "winobias_t2_pro": 0.65,
        "winogender_pro": 0.61,
        "math_acc": 0.42,
        "ub_unseen": 0.8,
        "paperstyle_afgb": 0.28,
        "paperstyle_afgb_paper": 0.09,
        "ctx1024_afgb": 0.6,
    }
    tuned = [
        {
            **base,
            "method": "lftf",
            "blocks": "24",
            "afgb": a,
            "afgb_paper": a / 3,
            "gendered_acc": g,
            "a_f": 0.15,
        }
        for a, g in ((0.10, 0.48), (0.12, 0.50), (0.11, 0.52))
    ]
    return pd.DataFrame([base, *tuned])


def test_tables_show_both_afgb_variants_and_the_probes():
    agg = aggregate(_rows(), base_mass=0.29, base_afgb=0.3)
    md = markdown_table(agg).splitlines()
    assert "paper's AFGB" in md[0] and "| 0.090 |" in md[2] and md[0].count("|") == md[1].count("|")
    assert "0.037 ± " in md[3]  # mean of 0.1/3, 0.12/3, 0.11/3 with its t-interval over 3 seeds
    vt = validity_table(agg).splitlines()
    assert len(vt) == 4 and vt[0].count("|") == vt[1].count("|") == vt[3].count("|")
    assert "0.500 ± " in vt[3] and "(52 %)" in vt[3]  # gendered acc 0.50 = 52 % of base 0.96
    assert "(50 %)" in vt[3]  # a_f 0.15 = 50 % of 0.30
    assert validity_table(agg.drop(columns=[c for c in agg if c.startswith("gendered")])) == ""
    assert "paper's AFGB" not in markdown_table(agg, axis="religion")


def test_goal_table_marks_each_goal_met_and_counts_them():
    from lftf_interp.experiments.tables import goal_met, goal_table

    assert goal_met(0.10, "<=", 0.11) and not goal_met(0.12, "<=", 0.11) and goal_met(52.9, "50 ±", 3.0)
    assert goal_met(0.29, "% base >=", 90.0, base=0.313) and not goal_met(0.2, "% base >=", 90.0, base=0.313)
    assert goal_met(0.3, "% base >=", 90.0, base=None) is None
    assert goal_met(90.5, "Δ base >=", -2.0, base=92.0) and not goal_met(89.9, "Δ base >=", -2.0, base=92.0)
    assert goal_met(90.0, "Δ base >=", -2.0, base=None) is None
    base = dict(
        method="base",
        n_seeds=1,
        afgb=0.306,
        ctx1024_afgb=0.645,
        ub=0.833,
        ub_unseen=0.806,
        winobias_pro=0.596,
        a_f=0.313,
        gendered_acc=0.971,
        kl=0.0,
        ppl_change_pct=0.0,
        math_acc=0.417,
    )
    good = dict(
        base,
        method="good",
        n_seeds=3,
        afgb=0.1,
        afgb_pm=0.01,
        ctx1024_afgb=0.3,
        ub=0.99,
        ub_unseen=0.91,
        winobias_pro=0.52,
        a_f=0.3,
        gendered_acc=0.97,
        kl=0.01,
        ppl_change_pct=1.0,
        math_acc=0.407,
    )
    base["lms_gender"] = 92.0
    bad = dict(good, method="bad", n_seeds=1, afgb=0.2, afgb_pm=float("nan"), ss_gender=55.0, lms_gender=89.5)
    md = goal_table(pd.DataFrame([base, good, bad]))
    rows = {line.split(" | ")[0].strip("| "): line for line in md.splitlines()[2:]}
    assert rows["good"].endswith("| -0.010 | 9 / 9 |") and "0.100 ± 0.010 ✓" in rows["good"]
    assert "(96 %) ✓" in rows["good"]  # a_f 0.3 of 0.313
    assert rows["bad"].endswith("| 8 / 11 |") and "| 0.200 |" in rows["bad"] and "55.0 |" in rows["bad"]
    assert "| 89.5 (-2.5) |" in rows["bad"]  # LMS 2.5 points under base: not met
    assert rows["base"].endswith("| +0.000 | — |") and "✓" not in rows["base"]


def test_goal_gap_and_the_closest_row_per_goal():
    from lftf_interp.experiments.tables import closest_table, goal_gap

    assert goal_gap(0.539, "<=", 0.53) == pytest.approx(0.009) and goal_gap(0.5, "<=", 0.53) < 0
    assert goal_gap(0.85, ">=", 0.9) == pytest.approx(0.05) and goal_gap(55.0, "50 ±", 3.0) == pytest.approx(
        2.0
    )
    assert goal_gap(0.25, "% base >=", 90.0, base=0.313) == pytest.approx(90 - 100 * 0.25 / 0.313)
    assert goal_gap(89.5, "Δ base >=", -2.0, base=92.0) == pytest.approx(0.5)
    assert goal_gap(0.3, "% base >=", 90.0, base=None) is None
    base = dict(method="base", n_seeds=1, afgb=0.306, ctx1024_afgb=0.645, a_f=0.313, ss_gender=60.9)
    good = dict(base, method="good", n_seeds=3, afgb=0.1, a_f=0.2, ss_gender=float("nan"))
    bad = dict(base, method="bad", n_seeds=1, afgb=0.2, a_f=0.25, ss_gender=55.0)
    rows = {
        line.split(" | ")[0].strip("| "): line
        for line in closest_table(pd.DataFrame([base, good, bad])).splitlines()[2:]
    }
    assert set(rows) == {
        "template AFGB ≤ 0.11",
        "AFGB @1,024 ctx ≤ 0.32",
        "a_f ≥ 90 % base",
        "StereoSet gender SS 50 ± 3",
    }
    assert rows["template AFGB ≤ 0.11"] == "| template AFGB ≤ 0.11 | 1 of 2 | good (3): 0.100 | good: 0.100 |"
    assert rows["AFGB @1,024 ctx ≤ 0.32"].endswith(
        "| 0 of 2 | good (3): 0.645, 0.325 short | good: 0.645, 0.325 short |"
    )
    # a_f: bad keeps 80 % of base (10 points short), good 64 % (26 short); only good has 3 seeds
    assert rows["a_f ≥ 90 % base"].endswith(
        "| bad (1): 0.250 (80 %), 10 short | good: 0.200 (64 %), 26 short |"
    )
    assert rows["StereoSet gender SS 50 ± 3"].endswith("| 0 of 1 | bad (1): 55.0, 2.0 short | — |")
    assert closest_table(pd.DataFrame([base, good])).splitlines()[0].endswith("| best row with 3 seeds |")
    assert closest_table(pd.DataFrame([base, bad])).splitlines()[0].endswith("| best row with 1 seed |")
    assert closest_table(pd.DataFrame([base])) == ""  # no trained row: no table


def test_beyond_table_reads_an_axis_against_its_stereoset_type():
    from lftf_interp.experiments.tables import beyond_table, stereoset_type

    assert [stereoset_type(a) for a in ("race-choice", "religion-identity", "gender3", "pronouns")] == [
        "race",
        "religion",
        "gender",
        "overall",
    ]
    base = dict(method="base", n_seeds=1, afgb=0.40, ctx1024_afgb=0.50, ctx1024_ub=0.6, ctx1024_mass=0.1)
    tuned = [
        dict(method="lftf", seed=s, afgb=a, ctx1024_afgb=c, ctx1024_ub=0.9, ctx1024_mass=0.12, ss_race=64.0)
        for s, a, c in ((0, 0.2, 0.30), (1, 0.2, 0.40), (2, 0.2, 0.35))
    ]
    agg = aggregate(pd.DataFrame([dict(base, seed=0, blocks=""), *[dict(t, blocks="24") for t in tuned]]))
    md = beyond_table(agg, "race-choice").splitlines()
    assert "StereoSet race SS" in md[0] and md[0].count("|") == md[1].count("|") == md[3].count("|")
    assert "| 0.200 ± 0.000 (-50 %) |" in md[3]  # template bias 0.2 against the base row's 0.4
    assert "0.350 ± 0.124 (-30 %)" in md[3]  # 0.30 / 0.40 / 0.35: 4.303 * 0.05 / sqrt(3)
    assert md[3].endswith("| 64.0 ± 0.0 | — |") and "(" not in md[2]
    assert beyond_table(agg, "gender") == "" and beyond_table(agg.drop(columns="ctx1024_afgb"), "race") == ""


def test_pair_goals_by_hand():
    from lftf_interp.experiments.tables import pair_goals

    rows = pd.DataFrame(
        [
            {
                "method": "base",
                "seed": 0,
                "ss_test_gender": 60.0,
                "lms_test_gender": 90.0,
                "a_f": 0.3,
                "kl": 0.0,
            },
            {
                "method": "m",
                "seed": 0,
                "ss_test_gender": 52.0,
                "lms_test_gender": 89.0,
                "a_f": 0.27,
                "kl": 0.01,
            },
            {
                "method": "m",
                "seed": 1,
                "ss_test_gender": 54.0,
                "lms_test_gender": 87.0,
                "a_f": 0.33,
                "kl": 0.03,
            },
        ]
    )
    g = pair_goals(rows)
    ss = g["m"]["stereoset_gender_ss"]
    half = 12.706 * (2**0.5) / 2**0.5  # t(1) × sd (√2) / √2
    assert ss["mean"] == 53.0 and ss["seeds"] == 2
    assert (ss["lo"], ss["hi"]) == pytest.approx((53.0 - half, 53.0 + half))
    assert g["m"]["stereoset_gender_lms_change"]["mean"] == pytest.approx(-2.0)
    assert g["m"]["a_f_ratio"]["mean"] == pytest.approx(1.0)
    assert g["base"]["stereoset_gender_ss"] == {"mean": 60.0, "lo": None, "hi": None, "seeds": 1}
    assert "winobias_pro" not in g["m"]  # a measure the rows lack is left out

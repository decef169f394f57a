"""The comparison's markdown tables (README): the main table (bias, hint following, mass, capability cost) and
the table of what the fine-tune changes beyond its template. Both read :func:`compare.aggregate`'s
frame."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from lftf_interp.data.axis import DEFAULT_AXIS, load_axis
from lftf_interp.experiments.rundir import merged_rows, read_rows


def _blocks(b) -> str:
    if b is None or (isinstance(b, float) and math.isnan(b)) or b == "":
        return "—"
    if isinstance(b, float):
        return str(int(b))
    idx = [int(x) for x in str(b).split()]
    if len(idx) > 4 and idx == list(
        range(idx[0], idx[-1] + 1)
    ):  # every block (FPFT, LoRA): a range, not 30 numbers
        return f"{idx[0]}–{idx[-1]}"
    return " ".join(map(str, idx))


def markdown_table(agg: pd.DataFrame, axis: str = DEFAULT_AXIS) -> str:
    """The README's comparison table: the axis's bias score, hint following and group mass under its labels
    (AFGB / UB / he+she mass on gender), with the paper's AFGB beside them on a two-group axis."""

    f = _mean_pm
    ax = load_axis(axis)
    bias, hint, mass = ax.labels["bias"], ax.labels["hint"], ax.labels["mass"]
    paper = " | paper's AFGB ↓" if ax.binary else ""
    head = (
        f"| method | blocks | seeds | {bias} ↓{paper} | Δ {bias} | {hint} ↑ | {mass} (× base) | KL nats/tok | ppl Δ % | "
        "MC acc Δ pts | trainable params | wall s |"
    )
    lines = [head, "|" + "---|" * (13 if paper else 12)]
    for _, r in agg.iterrows():
        rel = "—" if pd.isna(r.get("afgb_rel_change_pct")) else f"{r['afgb_rel_change_pct']:+.0f}%"
        ratio = "" if pd.isna(r.get("mass_ratio")) else f" ({r['mass_ratio']:.2f}×)"
        lines.append(
            f"| {r['method']} | {_blocks(r['blocks'])} | {r['n_seeds']} | {f(r, 'afgb', '.3f')}"
            f"{' | ' + f(r, 'afgb_paper', '.3f') if paper else ''} | {rel} | {f(r, 'ub', '.3f')} | "
            f"{f(r, 'mass', '.3f')}{ratio} | {f(r, 'kl', '.4f')} | {f(r, 'ppl_change_pct', '+.2f')} | "
            f"{f(r, 'mc_acc_change', '+.2f')} | {int(r['trainable_params']):,} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines)


def _mean_pm(r, c: str, fmt: str) -> str:
    """Column ``c`` of an aggregated row as "mean ± seed interval" (just the mean with one seed; "—" if absent)."""
    if c not in r or pd.isna(r[c]):
        return "—"
    pm = r.get(c + "_pm", float("nan"))
    return format(r[c], fmt) + ("" if pd.isna(pm) else " ± " + format(pm, fmt.replace("+", "")))


def validity_table(agg: pd.DataFrame) -> str:
    """What the fine-tune changes beyond its template, per method (README "What the fine-tune changes"):
    gendered-noun accuracy and a_f in % of the base row's, a_s, WinoBias / Winogender pro-preference, UB on
    unseen hint kinds, arithmetic, and AFGB after 1,024 tokens of context."""
    if "gendered_acc" not in agg:
        return ""
    base = agg[agg.method == "base"].iloc[0] if (agg.method == "base").any() else None

    def f(r, c, fmt=".3f", pct=False):
        s = _mean_pm(r, c, fmt)
        if s != "—" and pct and base is not None and base.get(c):
            s += f" ({100 * r[c] / base[c]:.0f} %)"
        return s

    head = (
        "| method | seeds | gendered-noun acc (% base) | a_f (% base) | a_s | WinoBias pro (type 1 / 2) | Winogender pro "
        "| UB unseen hints | math acc | paper-style AFGB (paper's) | AFGB @1,024 ctx |"
    )
    lines = [head, "|" + "---|" * 11]
    for _, r in agg.iterrows():
        if pd.isna(r.get("gendered_acc", float("nan"))):
            continue
        lines.append(
            f"| {r['method']} | {r['n_seeds']} | {f(r, 'gendered_acc', pct=True)} | {f(r, 'a_f', pct=True)} | {f(r, 'a_s')} | "
            f"{f(r, 'winobias_pro')} ({f(r, 'winobias_t1_pro', '.2f')} / {f(r, 'winobias_t2_pro', '.2f')}) | "
            f"{f(r, 'winogender_pro')} | {f(r, 'ub_unseen')} | {f(r, 'math_acc')} | {f(r, 'paperstyle_afgb')} "
            f"({f(r, 'paperstyle_afgb_paper')}) | {f(r, 'ctx1024_afgb')} |"
        )
    return "\n".join(lines)


# The goals of a debiasing that holds beyond its template: (column, key, test on the value, format). "% base" and
# "Δ base" goals compare the value with the base row's (as a share, as a difference).
GOALS: list[tuple[str, str, str, float, str]] = [
    ("template AFGB ≤ 0.11", "afgb", "<=", 0.11, ".3f"),
    ("AFGB @1,024 ctx ≤ 0.32", "ctx1024_afgb", "<=", 0.32, ".3f"),
    ("UB ≥ 0.95", "ub", ">=", 0.95, ".3f"),
    ("UB unseen hints ≥ 0.9", "ub_unseen", ">=", 0.90, ".3f"),
    ("WinoBias pro ≤ 0.53", "winobias_pro", "<=", 0.53, ".3f"),
    ("a_f ≥ 90 % base", "a_f", "% base >=", 90.0, ".3f"),
    ("gendered-noun acc ≥ 95 % base", "gendered_acc", "% base >=", 95.0, ".3f"),
    ("KL ≤ 0.02", "kl", "<=", 0.02, ".4f"),
    ("ppl Δ ≤ +3 %", "ppl_change_pct", "<=", 3.0, "+.2f"),
    ("StereoSet gender SS 50 ± 3", "ss_gender", "50 ±", 3.0, ".1f"),
    ("StereoSet gender LMS Δ ≥ −2", "lms_gender", "Δ base >=", -2.0, ".1f"),
]


def goal_gap(value: float, test: str, goal: float, base: float | None = None) -> float | None:
    """How far ``value`` is from one of :data:`GOALS`, in the goal's own unit: ≤ 0 where it meets it, else the
    amount still missing (None when it cannot be told: no base for a "% base" or "Δ base" goal)."""
    if test == "<=":
        return value - goal
    if test == ">=":
        return goal - value
    if test == "50 ±":
        return abs(value - 50) - goal
    if test == "% base >=":
        return None if not base else goal - 100 * value / base
    if test == "Δ base >=":
        return None if base is None or base != base else goal - (value - base)
    raise ValueError(f"unknown goal test {test!r}")


def goal_met(value: float, test: str, goal: float, base: float | None = None) -> bool | None:
    """Whether ``value`` meets one of :data:`GOALS` (None when it cannot be told: no base for a "% base" goal)."""
    gap = goal_gap(value, test, goal, base)
    return None if gap is None else gap <= 0


def stereoset_type(axis: str) -> str:
    """The StereoSet bias type an axis is read against: its file's ``stereoset`` (default ``overall``)."""
    return load_axis(axis).stereoset


def beyond_table(agg: pd.DataFrame, axis: str) -> str:
    """On an axis that is not gendered (a gendered one has :func:`validity_table`), what holds beyond the axis's
    template per method: its bias score on the template and after 1,024 tokens of neutral text (with the change
    from the base row), hint following and group mass after the text, and StereoSet SS / LMS on the axis's bias
    type (:func:`stereoset_type`)."""
    if load_axis(axis).gendered or "ctx1024_afgb" not in agg:
        return ""
    base = agg[agg.method == "base"].iloc[0] if (agg.method == "base").any() else None
    kind = stereoset_type(axis)

    def f(r, c, fmt=".3f", change=False):
        s = _mean_pm(r, c, fmt)
        if s != "—" and change and base is not None and base.get(c) and r["method"] != "base":
            s += f" ({100 * (r[c] / base[c] - 1):+.0f} %)"
        return s

    lines = [
        f"| method | seeds | bias | bias @1,024 ctx | hint following @1,024 ctx | group mass @1,024 ctx | "
        f"StereoSet {kind} SS | StereoSet {kind} LMS |",
        "|" + "---|" * 8,
    ]
    for _, r in agg.iterrows():
        if pd.isna(r.get("ctx1024_afgb", float("nan"))):
            continue
        lines.append(
            f"| {r['method']} | {r['n_seeds']} | {f(r, 'afgb', change=True)} | {f(r, 'ctx1024_afgb', change=True)} | "
            f"{f(r, 'ctx1024_ub')} | {f(r, 'ctx1024_mass')} | {f(r, f'ss_{kind}', '.1f')} | {f(r, f'lms_{kind}', '.1f')} |"
        )
    return "\n".join(lines)


def goal_table(agg: pd.DataFrame) -> str:
    """Every trained method against :data:`GOALS` (mean ± the seed interval; ✓ where the mean meets the goal) and
    how many of the goals it has values for it meets; the arithmetic change beside them (its goal: within the
    probe's CI, ±0.055)."""
    if "ctx1024_afgb" not in agg:
        return ""
    base = agg[agg.method == "base"].iloc[0] if (agg.method == "base").any() else None
    head = "| method | seeds | " + " | ".join(g[0] for g in GOALS) + " | arithmetic Δ | goals met |"
    lines = [head, "|" + "---|" * (len(GOALS) + 4)]
    for _, r in agg.iterrows():
        if pd.isna(r.get("ctx1024_afgb", float("nan"))):
            continue
        cells, met, known = [], 0, 0
        for _, key, test, goal, fmt in GOALS:
            if key not in r or pd.isna(r[key]):
                cells.append("—")
                continue
            pm = r.get(key + "_pm", float("nan"))
            text = format(r[key], fmt) + ("" if pd.isna(pm) else " ± " + format(pm, fmt.replace("+", "")))
            if test.startswith("% base") and base is not None and base.get(key):
                text += f" ({100 * r[key] / base[key]:.0f} %)"
            if test.startswith("Δ base") and base is not None and not pd.isna(base.get(key)):
                text += f" ({format(r[key] - base[key], '+' + fmt.lstrip('+'))})"
            ok = goal_met(float(r[key]), test, goal, None if base is None else base.get(key))
            if ok is not None and r["method"] != "base":
                known, met = known + 1, met + ok
                text += " ✓" if ok else ""
            cells.append(text)
        math = "—"
        if base is not None and "math_acc" in r and not pd.isna(r["math_acc"]):
            math = f"{r['math_acc'] - base['math_acc']:+.3f}"
        goals = "—" if r["method"] == "base" else f"{met} / {known}"
        lines.append(f"| {r['method']} | {r['n_seeds']} | " + " | ".join(cells) + f" | {math} | {goals} |")
    return "\n".join(lines)


def _goal_cell(pick: tuple, spec: tuple, base, with_seeds: bool) -> str:
    """One row's value against one goal of :data:`GOALS`, and by how much it misses (``pick``: (gap, row))."""
    gap, r = pick
    _, key, test, _, fmt = spec
    text = f"{r['method']}" + (f" ({r['n_seeds']})" if with_seeds else "") + f": {format(r[key], fmt)}"
    if test.startswith("% base") and base is not None:
        text += f" ({100 * r[key] / base[key]:.0f} %)"
    if gap > 0:
        text += f", {format(gap, '.0f' if test.startswith('% base') else fmt.lstrip('+'))} short"
    return text


def closest_table(agg: pd.DataFrame) -> str:
    """Per goal of :data:`GOALS`: how many trained rows meet it (their mean), the row closest to it or furthest
    past it, and the same among the rows with the most seeds; where a row misses, by how much (in the goal's
    unit; points of the base value for a "% base" goal)."""
    if "ctx1024_afgb" not in agg:
        return ""
    base = agg[agg.method == "base"].iloc[0] if (agg.method == "base").any() else None
    rows = agg[(agg.method != "base") & agg.ctx1024_afgb.notna()]
    if rows.empty:
        return ""
    most = int(rows.n_seeds.max())
    lines = [
        f"| goal | rows that meet it | best row (seeds) | best row with {most} seed{'s' if most != 1 else ''} |",
        "|---|---|---|---|",
    ]
    for goal_spec in GOALS:
        name, key, test, goal, _ = goal_spec
        if key not in rows:
            continue
        gaps = []
        for _, r in rows.iterrows():
            gap = (
                None
                if pd.isna(r[key])
                else goal_gap(float(r[key]), test, goal, None if base is None else base.get(key))
            )
            if gap is not None:
                gaps.append((gap, r))
        if not gaps:
            continue
        full = [g for g in gaps if int(g[1]["n_seeds"]) == most]
        best = _goal_cell(min(gaps, key=lambda g: g[0]), goal_spec, base, True)
        best_full = _goal_cell(min(full, key=lambda g: g[0]), goal_spec, base, False) if full else "—"
        lines.append(f"| {name} | {sum(g <= 0 for g, _ in gaps)} of {len(gaps)} | {best} | {best_full} |")
    return "\n".join(lines)


__all__ = [
    "GOALS",
    "PAIR_MEASURES",
    "pair_goals",
    "beyond_table",
    "closest_table",
    "goal_gap",
    "goal_met",
    "goal_table",
    "markdown_table",
    "stereoset_type",
    "validity_table",
    "write_compare_summary",
]


VALIDITY_COLS = [
    "gendered_acc",
    "gendered_share",
    "a_s",
    "a_f",
    "winobias_pro",
    "winobias_t1_pro",
    "winobias_t2_pro",
    "winogender_pro",
    "math_acc",
    "ub_unseen",
    "paperstyle_afgb",
    "paperstyle_afgb_paper",
    "ctx0_afgb",
    "ctx1024_afgb",
    "ctx1024_afgb_paper",
    "ctx1024_ub",
    "ss_gender",
    "lms_gender",
    "ctx1024_mass",
    "ss_race",
    "ss_religion",
    "lms_race",
    "lms_religion",
    "ss_overall",
    "lms_overall",
    "ss_test_gender",
    "lms_test_gender",
    "ss_test_race",
    "ss_test_religion",
    "bias_over_orders",
]


# The measures of the sentence-pair goal table (results/pairs/goals.json): name → (row key, how it is read:
# "value", "Δ base" the difference from the base row's mean, "/ base" the ratio to it).
PAIR_MEASURES: dict[str, tuple[str, str]] = {
    "stereoset_gender_ss": ("ss_test_gender", "value"),
    "stereoset_gender_lms_change": ("lms_test_gender", "Δ base"),
    "stereoset_race_ss": ("ss_test_race", "value"),
    "stereoset_religion_ss": ("ss_test_religion", "value"),
    "winobias_pro": ("winobias_pro", "value"),
    "afgb": ("afgb", "value"),
    "ctx1024_afgb": ("ctx1024_afgb", "value"),
    "kl": ("kl", "value"),
    "ppl_change_pct": ("ppl_change_pct", "value"),
    "a_f_ratio": ("a_f", "/ base"),
}


def pair_goals(rows: pd.DataFrame) -> dict:
    """One family's compare rows → {method: {measure: {"mean", "lo", "hi", "seeds"}}} (:data:`PAIR_MEASURES`):
    the mean over seeds with a 95 % t-interval over seeds (lo = hi = None with one seed); measures a row lacks
    are left out. Measures read against the base row need one."""
    base = rows[rows["method"] == "base"]
    out: dict = {}
    for method, g in rows.groupby("method", sort=False):
        cells = {}
        for name, (key, how) in PAIR_MEASURES.items():
            if key not in g or (how != "value" and (key not in base or base[key].isna().all())):
                continue
            v = g[key].astype(float).dropna().to_numpy()
            if not len(v):
                continue
            ref = float(base[key].astype(float).mean()) if how != "value" else 0.0
            v = v - ref if how == "Δ base" else v / ref if how == "/ base" else v
            half = _T95.get(len(v) - 1, 1.96) * v.std(ddof=1) / math.sqrt(len(v)) if len(v) >= 2 else None
            mean = float(v.mean())
            cells[name] = {
                "mean": mean,
                "lo": None if half is None else mean - half,
                "hi": None if half is None else mean + half,
                "seeds": len(v),
            }
        out[str(method)] = cells
    return out


def aggregate(
    rows: pd.DataFrame, base_mass: float | None = None, base_afgb: float | None = None
) -> pd.DataFrame:
    """Mean over seeds per method, with a 95 % t-interval half-width (``*_pm``) when there are >= 2 seeds."""
    cols = [
        "afgb",
        "afgb_paper",
        "ub",
        "mass",
        "kl",
        "ppl_change_pct",
        "mc_acc_change",
        "mc_acc_norm_change",
        "asdiv_change",
        "trainable_params",
        "wall_s",
        *VALIDITY_COLS,
    ]
    out = []
    for name, g in rows.groupby("method", sort=False):
        r: dict = {"method": name, "n_seeds": len(g), "blocks": g["blocks"].iloc[0]}
        for c in cols:
            if c not in g:
                continue
            v = g[c].astype(float).to_numpy()
            v = v[~np.isnan(v)]
            if not len(v):
                continue
            r[c] = float(v.mean())
            if len(v) >= 2:
                r[c + "_pm"] = float(_T95.get(len(v) - 1, 1.96) * v.std(ddof=1) / math.sqrt(len(v)))
        if base_afgb:
            r["afgb_rel_change_pct"] = 100 * (r["afgb"] / base_afgb - 1)
        if base_mass:
            r["mass_ratio"] = r["mass"] / base_mass
        out.append(r)
    return pd.DataFrame(out)


_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}


def write_compare_summary(out: Path) -> str:
    """OUT/rows.jsonl → OUT/summary.csv (per method, pooled over seeds) and OUT/table.md; returns the table."""
    rows = pd.DataFrame(merged_rows(read_rows(out / "rows.jsonl")))
    config_path = out / "config.json"  # list methods in the configured order, not the order they were run in
    order = (
        [m["name"] for m in json.loads(config_path.read_text()).get("methods", [])]
        if config_path.is_file()
        else []
    )
    rank = {n: i for i, n in enumerate(order)}
    rows = rows.sort_values("method", key=lambda c: c.map(lambda n: rank.get(n, len(rank))), kind="stable")
    base = rows[rows.method == "base"]
    agg = aggregate(
        rows,
        base_mass=float(base.mass.iloc[0]) if len(base) else None,
        base_afgb=float(base.afgb.iloc[0]) if len(base) else None,
    )
    agg.to_csv(out / "summary.csv", index=False)
    axis = (
        json.loads(config_path.read_text()).get("axis", DEFAULT_AXIS)
        if config_path.is_file()
        else DEFAULT_AXIS
    )
    md = markdown_table(agg, axis)
    (out / "table.md").write_text(md + "\n")
    if vt := validity_table(agg):
        (out / "validity.md").write_text(vt + "\n")
    if load_axis(axis).gendered and (gt := goal_table(agg)):
        near = closest_table(agg)
        (out / "goals.md").write_text(
            gt + ("\n\nPer goal, the row that comes closest:\n\n" + near if near else "") + "\n"
        )
    if bt := beyond_table(agg, axis):
        (out / "beyond.md").write_text(bt + "\n")
    return md

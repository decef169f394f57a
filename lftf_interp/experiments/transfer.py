"""Cross-bias transfer (the paper's proposed follow-up): tune on axis A, evaluate every axis B.

* :func:`transfer_rows` scores a model (the base, or the base plus the delta that LFTF learnt on one axis) on
  every axis's test split (bias score and hint following with CIs, :func:`~lftf_interp.metrics.groups.evaluate_axis`;
  the gender axis gives AFGB and UB exactly) and on StereoSet intrasentence per bias type (SS / LMS / ICAT).
* :func:`bmi_profiles` is BMI on each axis's neutral test prompts, and :func:`profile_overlap` compares the
  axes' block rankings (Spearman rank correlation, shared top blocks past the embedding-artefact blocks).
* :func:`transfer_to` runs all of it into a directory, resumably (one JSON line per finished source model).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from lftf_interp.data import NEUTRAL_PROMPTS
from lftf_interp.data.axis import load_axis
from lftf_interp.data.datasets import sample_rows
from lftf_interp.errors import LftfError
from lftf_interp.locate.bmi import compute_bmi
from lftf_interp.locate.choose import artefact_blocks
from lftf_interp.metrics.groups import evaluate_axis
from lftf_interp.models.loading import load_model
from lftf_interp.provenance import run_meta
from lftf_interp.retain.stereoset import evaluate_stereoset
from lftf_interp.store import append_rows, read_rows, write_json, write_rows
from lftf_interp.tune.delta import apply_delta

AXES = ("gender", "religion", "race", "gender3", "pronouns")  # each tuned on, and evaluated on


def transfer_rows(
    model, source: str, axes: Sequence[str] = AXES, stereoset: bool = True, n_boot: int = 1000, seed: int = 0
) -> list[dict]:
    """One row per target axis (kind "axis") and per StereoSet bias type (kind "stereoset") for ``model``."""
    rows = []
    for a in axes:
        m, _, _ = evaluate_axis(model, load_axis(a), "test", n_boot=n_boot, seed=seed)
        rows.append(
            {
                "source": source,
                "kind": "axis",
                "target": a,
                **{
                    k: m.get(k)
                    for k in (
                        "bias",
                        "bias_ci",
                        "hint_following",
                        "hint_following_ci",
                        "hint_following_by_group",
                        "mass",
                        "shares",
                        "n",
                        "n_hint",
                    )
                },
            }
        )
    if stereoset:
        table, _ = evaluate_stereoset(model, n_boot=n_boot, seed=seed)
        rows += [
            {"source": source, "kind": "stereoset", "target": r.pop("bias_type"), **r}
            for r in table.to_dict("records")
        ]
    return rows


def bmi_profiles(model, axes: Sequence[str] = AXES, n: int | None = 300, seed: int = 0) -> pd.DataFrame:
    """BMI per block on ``n`` neutral test prompts of each axis: axis, layer, bmi, rank."""
    frames = []
    for a in axes:
        prompts = sample_rows(load_axis(a).bias_prompts("test"), n, seed).prompt.tolist()
        frames.append(compute_bmi(model, prompts).assign(axis=a))
    return pd.concat(frames, ignore_index=True)


def profile_overlap(profiles: pd.DataFrame, exclude: Sequence[int] = (), top: int = 3) -> pd.DataFrame:
    """Per pair of axes: Spearman rho of their BMI over the blocks past ``exclude``, and their shared top blocks."""
    p = profiles[~profiles.layer.isin(list(exclude))]
    wide = p.pivot(index="layer", columns="axis", values="bmi")
    axes = list(dict.fromkeys(profiles.axis))
    rows = []
    for i, a in enumerate(axes):
        for b in axes[i + 1 :]:
            ta, tb = (set(wide[x].nlargest(top).index) for x in (a, b))
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "spearman_rho": float(spearmanr(wide[a], wide[b]).statistic),
                    f"top{top}_a": sorted(ta),
                    f"top{top}_b": sorted(tb),
                    "shared_top": sorted(ta & tb),
                }
            )
    return pd.DataFrame(rows)


def matrix(rows: pd.DataFrame, value: str = "bias", kind: str = "axis") -> pd.DataFrame:
    """source × target table of one value (rows: "base" then the tuned axes; columns: target axes / bias types)."""
    d = rows[rows.kind == kind]
    order = list(dict.fromkeys(d.source))
    return d.pivot(index="source", columns="target", values=value).loc[order, list(dict.fromkeys(d.target))]


def _finished_sources(rows_path: Path) -> set[str]:
    """Sources whose rows are all in ``rows_path`` (each row records how many its source wrote); the rows of a
    source cut short by a kill are removed, so it runs again whole."""
    rows = read_rows(rows_path)
    count = Counter(r["source"] for r in rows)
    whole = {s for s in count if all(r.get("n_rows", count[s]) == count[s] for r in rows if r["source"] == s)}
    if len(whole) < len(count):
        write_rows(rows_path, [r for r in rows if r["source"] in whole])
    return whole


def transfer_to(
    model: str,
    out: Path,
    axes: Sequence[str] = AXES,
    tuned: str | Path = "results/axes",
    stereoset: bool = True,
    seed: int = 0,
    on_row: Callable[[dict], None] | None = None,
    targets: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The base and, per axis A in ``axes``, the base plus ``TUNED/A/finetune/delta`` (``lftf finetune --axis A``)
    on every axis of ``targets`` (default: ``axes``) → OUT/rows.jsonl (resumable), OUT/bmi_profiles.csv,
    OUT/overlap.csv, OUT/config.json. Returns all rows."""
    targets = tuple(axes if targets is None else targets)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    done = _finished_sources(rows_path)
    sources = ["base", *axes]
    missing = [a for a in axes if a not in done and not (Path(tuned) / a / "finetune" / "delta").is_dir()]
    if missing:
        raise LftfError(
            f"No LFTF delta for axis {missing} under {tuned}: run `lftf finetune --axis A --out "
            f"{tuned}/A/finetune` for each (make experiments does), then rerun."
        )
    base = load_model(model)
    if not (out / "bmi_profiles.csv").is_file():
        prof = bmi_profiles(base, targets, seed=seed)
        prof.to_csv(out / "bmi_profiles.csv", index=False)
        neutral = compute_bmi(base, NEUTRAL_PROMPTS)  # blocks that rotate any text more than any later block
        excluded = sorted({b for a in targets for b in artefact_blocks(prof[prof.axis == a], neutral)})
        profile_overlap(prof, excluded).assign(excluded=str(excluded)).to_csv(
            out / "overlap.csv", index=False
        )
    for src in sources:
        if src in done:
            continue
        model_ = base if src == "base" else load_model(model)
        info = None if src == "base" else apply_delta(model_, Path(tuned) / src / "finetune" / "delta")
        rows = transfer_rows(model_, src, targets, stereoset, seed=seed)
        for r in rows:
            r.update(tuned_blocks=info["blocks"] if info else [], n_rows=len(rows))
        append_rows(
            rows_path, rows
        )  # a source's rows in one write: all of them, or (torn) none once read back
        for r in rows:
            if on_row:
                on_row(r)
    write_json(
        out / "config.json",
        run_meta(
            model=model,
            axes=list(axes),
            targets=list(targets),
            tuned=str(tuned),
            stereoset=stereoset,
            seed=seed,
        ),
    )
    return pd.DataFrame(read_rows(rows_path))


__all__ = ["AXES", "bmi_profiles", "matrix", "profile_overlap", "transfer_rows", "transfer_to"]

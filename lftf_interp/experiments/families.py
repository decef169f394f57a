""" "Why the last block?" across model families: one row per model from its fine-tune and its per-block sweep.

Inputs per model (what ``lftf finetune --block auto`` and ``lftf sweep`` write): ``finetune/metrics.json``
(base and tuned bias with CIs, BMI's top blocks and the embedding-artefact blocks it set aside) and
``block_sweep/{rows.jsonl,bmi.csv}`` (each block tuned alone with one budget: bias after, KL to the base,
perplexity change; BMI of every block).

The block that "debiases best at the least capability cost" is, among the swept blocks that still follow hints
(UB ≥ 0.75, the paper's bar), the one with the lowest sum of its rank on bias after tuning and its rank on KL
(ties: lower bias); the Pareto set (no other block has both lower bias and lower KL) is listed too. "Does BMI predict it?": Spearman rho between BMI and the bias after
tuning over the swept blocks past the artefact blocks (negative: high BMI, low bias), with a bootstrap CI
over blocks, and where BMI's pick and the last block rank in the sweep.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from lftf_interp.errors import LftfError
from lftf_interp.store import read_rows, write_json


def _read(path: Path) -> dict:
    if not path.is_file():
        raise LftfError(
            f"{path} is missing: run `lftf finetune --block auto` and `lftf sweep` for this model first "
            "(`make families` does both)."
        )
    return json.loads(path.read_text())


def sweep_table(sweep_dir: Path) -> pd.DataFrame:
    """One row per swept block: bias after (bias / afgb), its CI, UB, KL, perplexity change, BMI."""
    rows_path = Path(sweep_dir) / "rows.jsonl"
    if not rows_path.is_file():
        raise LftfError(f"{rows_path} is missing: run `lftf sweep --out {sweep_dir}` first.")
    rows = pd.DataFrame(read_rows(rows_path))
    bmi = pd.read_csv(Path(sweep_dir) / "bmi.csv")[["layer", "bmi"]].rename(columns={"layer": "block"})
    return rows.merge(bmi, on="block", how="left").sort_values("block").reset_index(drop=True)


def best_block(sweep: pd.DataFrame, min_ub: float = 0.75) -> tuple[int, list[int]]:
    """(among blocks with UB ≥ ``min_ub``, the one with the lowest rank sum of bias after and KL; the Pareto set
    of (bias after, KL) over all swept blocks)."""
    ok = sweep[sweep.ub >= min_ub] if "ub" in sweep and (sweep.ub >= min_ub).any() else sweep
    s = ok.assign(score=ok.afgb.rank() + ok.kl.rank()).sort_values(["score", "afgb"])
    pareto = [
        int(r.block) for r in sweep.itertuples() if not ((sweep.afgb < r.afgb) & (sweep.kl < r.kl)).any()
    ]
    return int(s.block.iloc[0]), sorted(pareto)


def bmi_predicts(sweep: pd.DataFrame, excluded: list[int], n_boot: int = 2000, seed: int = 0) -> dict:
    """Spearman rho(BMI, bias after) over the swept blocks past the artefact blocks, with a bootstrap CI."""
    s = sweep[~sweep.block.isin(excluded)]
    rho, p = spearmanr(s.bmi, s.afgb)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(s), len(s))
        if len(set(idx)) > 2:
            boots.append(spearmanr(s.bmi.to_numpy()[idx], s.afgb.to_numpy()[idx])[0])
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return {"rho": float(rho), "p": float(p), "rho_ci": [float(lo), float(hi)], "n_blocks": len(s)}


def family_row(name: str, finetune_dir: Path, sweep_dir: Path) -> dict:
    ft = _read(Path(finetune_dir) / "metrics.json")
    sweep = sweep_table(sweep_dir)
    choice = ft["block_choice"]
    # sweeps written before config.json recorded n_layers swept the last block (SmolLM2's did)
    n_layers = int(_read(Path(sweep_dir) / "config.json").get("n_layers") or sweep.block.max() + 1)
    last = n_layers - 1
    best, pareto = best_block(sweep)
    order = sweep.sort_values("afgb").block.tolist()
    row = sweep.set_index("block")
    pick = choice["blocks"][0]

    def at(b: int) -> dict:
        if b not in row.index:
            return {}
        r = row.loc[b]
        return {
            "bias": float(r.afgb),
            "bias_ci": list(r.afgb_ci),
            "ub": float(r.ub),
            "kl": float(r.kl),
            "ppl_change_pct": float(r.ppl_change_pct),
            "rank_by_bias": order.index(b) + 1,
        }

    every = pd.read_csv(Path(sweep_dir) / "bmi.csv")  # every block, not only the swept ones
    bmi_raw = sorted(
        ((float(b), int(layer)) for layer, b in zip(every.layer, every.bmi, strict=True)), reverse=True
    )
    return {
        "model": name,
        "n_blocks": n_layers,
        "base_bias": ft["before"]["afgb"],
        "base_bias_ci": ft["before"]["afgb_ci"],
        "base_ub": ft["before"]["ub"],
        "bmi_top_raw": [b for _, b in bmi_raw[:3]],
        "bmi_top5_train": [d["layer"] for d in choice["top5"]],
        "artefact_blocks": choice["excluded"],
        "bmi_pick": pick,
        "lftf_after": ft["after"]["afgb"],
        "lftf_after_ci": ft["after"]["afgb_ci"],
        "lftf_ub": ft["after"]["ub"],
        "best_block": best,
        "pareto": pareto,
        "last_block": last,
        "sweep_blocks": sweep.block.tolist(),
        "at_pick": at(pick),
        "at_best": at(best),
        "at_last": at(last),
        "bmi_vs_bias_after": bmi_predicts(sweep, choice["excluded"]),
    }


def family_table(rows: list[dict]) -> str:
    """The cross-family table as markdown."""

    def ci(x, c):
        return f"{x:.3f} [{c[0]:.3f}, {c[1]:.3f}]"

    def block(d: dict, b: int) -> str:
        if not d:
            return f"{b} (not swept)"
        return f"{b}: {ci(d['bias'], d['bias_ci'])}, KL {d['kl']:.4f}, rank {d['rank_by_bias']}"

    head = (
        "| model | blocks | base bias | BMI top 3 (raw) | artefact blocks | BMI pick | LFTF at pick (150 steps) | "
        "best block (bias + KL ranks) | BMI pick in sweep | last block in sweep | ρ(BMI, bias after) [95 % CI] |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        b = r["bmi_vs_bias_after"]
        lines.append(
            f"| {r['model']} | {r['n_blocks']} | {ci(r['base_bias'], r['base_bias_ci'])} | "
            f"{', '.join(map(str, r['bmi_top_raw']))} | {', '.join(map(str, r['artefact_blocks'])) or '—'} | "
            f"{r['bmi_pick']} | {ci(r['lftf_after'], r['lftf_after_ci'])}, UB {r['lftf_ub']:.3f} | "
            f"{block(r['at_best'], r['best_block'])} | {block(r['at_pick'], r['bmi_pick'])} | "
            f"{block(r['at_last'], r['last_block'])} | {b['rho']:+.2f} [{b['rho_ci'][0]:+.2f}, {b['rho_ci'][1]:+.2f}] "
            f"(n = {b['n_blocks']}) |"
        )
    return "\n".join(lines)


def families_to(runs: dict[str, tuple[Path, Path]], out: Path) -> list[dict]:
    """Rows for every model (``{name: (finetune_dir, sweep_dir)}``) → OUT/families.json and OUT/families.md."""
    rows = [family_row(n, ft, sw) for n, (ft, sw) in runs.items()]
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "families.json", rows)
    (out / "families.md").write_text(family_table(rows) + "\n")
    return rows


__all__ = ["best_block", "bmi_predicts", "families_to", "family_row", "family_table", "sweep_table"]

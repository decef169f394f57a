"""The issue-12 studies end to end on the tiny 3-block model (the CLI wraps them: tests/test_cli_studies.py)."""

import json

import numpy as np
import pandas as pd
import pytest

from lftf_interp.errors import LftfError
from lftf_interp.experiments import studies
from lftf_interp.probes import ValidityConfig


def test_validity_to_writes_both_afgb_variants_and_the_probes(tiny3_dir, tiny_delta, tmp_path):
    cfg = ValidityConfig.quick(probes=("gendered", "math"))
    base = studies.validity_to(tiny3_dir, tmp_path / "base", None, cfg)
    tuned = studies.validity_to(tiny3_dir, tmp_path / "tuned", tiny_delta, cfg)
    saved = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert saved["config"]["blocks"] == [2] and saved["config"]["validity"]["probes"] == ["gendered", "math"]
    for rec in (base, tuned):
        assert 0 <= rec["afgb_paper"] <= rec["afgb"] and "gendered_acc" in rec and "math_acc" in rec
    assert tuned["afgb"] != base["afgb"]
    assert (tmp_path / "base" / "gendered.csv").is_file() and (tmp_path / "base" / "math.csv").is_file()


def test_validity_to_keeps_no_copy_of_the_external_data(tiny3_dir, tmp_path):
    import pandas as pd

    studies.validity_to(tiny3_dir, tmp_path, None, ValidityConfig.quick(probes=("winogender", "slopes")))
    wg, sl = pd.read_csv(tmp_path / "winogender.csv"), pd.read_csv(tmp_path / "slopes.csv")
    assert not set(studies.EXTERNAL_COLUMNS["winogender"]) & set(wg.columns) and {
        "occupation",
        "pro_pref",
    } <= set(wg.columns)
    assert list(sl.columns) == ["word", "diff"]


def test_holdout_trains_without_the_kind_and_resumes(tiny3_dir, tmp_path):
    rows = studies.holdout_to(tiny3_dir, tmp_path, ["name"], steps=1)
    r = rows.iloc[0]
    assert r.held_out == "name" and r.ub_held_out == r.ub_kind_name
    assert r.ub_other == pytest.approx(
        sum(r[f"ub_kind_{k}"] for k in ("noun", "family", "title", "pronoun")) / 4
    )
    first = (tmp_path / "rows.jsonl").read_text()
    studies.holdout_to(tiny3_dir, tmp_path, ["name"], steps=1)
    assert (tmp_path / "rows.jsonl").read_text() == first  # done kinds are not rerun
    with pytest.raises(LftfError, match="Unknown hint kind"):
        studies.holdout_to(tiny3_dir, tmp_path, ["accent"])


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_mechanism_restoring_every_unit_gives_back_the_base(tiny3_dir, tiny_delta, tmp_path):
    s = studies.mechanism_to(tiny3_dir, tiny_delta, tmp_path, heads=(1, 4), neurons=(8, 10_000), n_random=1)
    import pandas as pd

    curve = pd.read_csv(tmp_path / "restore.csv")
    assert s["block"] == 2 and (tmp_path / "units.csv").is_file()
    assert curve.iloc[0].afgb == pytest.approx(s["tuned"]["afgb"])
    assert s["top_share_of_delta"]["head"][4] == pytest.approx(1.0)
    assert set(curve.kind) == {"none", "head", "kv_head", "neuron"} and set(curve.order) == {
        "top",
        "top-dla",
        "random",
    }
    # restoring every neuron, whichever ranking, is the same model
    every = curve[(curve.kind == "neuron") & (curve.k == curve[curve.kind == "neuron"].k.max())]
    assert every.afgb.nunique() == 1 and set(every.order) == {"top", "top-dla"}
    # the attribution: neurons add up to the MLP's direct effect, heads to attention's (no o_proj bias here)
    attr, a = pd.read_csv(tmp_path / "attribution.csv"), s["attribution"]
    assert attr[attr.kind == "neuron"].dla_before.sum() == pytest.approx(a["mlp_direct_before"], abs=1e-4)
    assert attr[attr.kind == "head"].dla_after.sum() == pytest.approx(a["attn_direct_after"], abs=1e-4)
    assert a["logit_diff_before"] > 0  # signed by the base model's own preference
    # the paths: the same signed logit difference; only block 2 (tuned, the last) and nothing upstream moves
    paths, p = pd.read_csv(tmp_path / "paths.csv"), s["paths"]
    assert p["logit_diff_before"] == pytest.approx(a["logit_diff_before"], abs=1e-4)
    assert p["upstream_own_share"] == 0 and p["later_blocks_own_share"] == {}
    assert sum(p["tuned_block_own_share"].values()) + p["scale_share"] == pytest.approx(1.0, abs=1e-4)
    mlp2 = paths.set_index("component").loc["mlp2"]
    assert mlp2.direct_after == pytest.approx(a["mlp_direct_after"], abs=1e-4)
    # resumed: rows already measured are kept, not measured again
    again = studies.mechanism_to(
        tiny3_dir, tiny_delta, tmp_path, heads=(1, 4), neurons=(8, 10_000), n_random=1
    )
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "restore.csv"), curve)
    assert again["returned_top_dla"] == s["returned_top_dla"]


def test_paired_changes_pair_items_across_runs(tmp_path):
    import pandas as pd

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    pd.DataFrame({"type": [1, 1, 2], "line": [1, 2, 1], "pro_pref": [1.0, 1.0, 0.0]}).to_csv(
        a / "winobias.csv", index=False
    )
    pd.DataFrame({"type": [2, 1, 1], "line": [1, 2, 1], "pro_pref": [1.0, 0.0, 1.0]}).to_csv(
        b / "winobias.csv", index=False
    )
    pd.DataFrame({"pred": [0, 1, 2, 3], "answer": [0, 1, 0, 0]}).to_csv(a / "math.csv", index=False)
    pd.DataFrame({"pred": [0, 0, 0, 3], "answer": [0, 1, 0, 0]}).to_csv(b / "math.csv", index=False)
    got = studies.paired_changes(a, b, n_boot=200).set_index("probe")
    # WinoBias pairs by (type, line), not by row: (1,1) 1→1, (1,2) 1→0, (2,1) 0→1 → change 0
    assert got.loc["winobias", "change"] == pytest.approx(0.0) and got.loc["winobias", "n"] == 3
    assert (got.loc["math", "base"], got.loc["math", "tuned"]) == pytest.approx((0.5, 0.5))
    assert got.loc["math", "ci_lo"] <= 0 <= got.loc["math", "ci_hi"] and "winogender" not in got.index
    # the WinoBias parts pair by (type, line) too: the pronoun gap 0.4, 0.2 → 0.1, 0.1 falls by 0.2 on average
    pd.DataFrame({"type": [1, 2], "line": [1, 1], "d_pronoun": [0.4, 0.2], "d_rest": [0.1, 0.0]}).to_csv(
        a / "winobias_parts.csv", index=False
    )
    pd.DataFrame({"type": [2, 1], "line": [1, 1], "d_pronoun": [0.1, 0.1], "d_rest": [0.0, 0.1]}).to_csv(
        b / "winobias_parts.csv", index=False
    )
    got = studies.paired_changes(a, b, n_boot=200).set_index("probe")
    assert (
        got.loc["winobias_pronoun_gap", "change"] == pytest.approx(-0.2)
        and got.loc["winobias_rest_gap", "change"] == 0
    )


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_block_material_ranks_blocks_on_each_material(tiny3_dir, tmp_path):
    from lftf_interp.data import load_axis
    from lftf_interp.data.datasets import sample_rows
    from lftf_interp.experiments.studies import block_material_to
    from lftf_interp.locate import compute_bmi
    from lftf_interp.models.loading import load_model

    s = block_material_to(tiny3_dir, tmp_path, n=4, context=32, seed=0)
    table = pd.read_csv(tmp_path / "bmi.csv")
    assert list(s["materials"]) == ["template", "template after 32 tokens", "winobias dev-fit"]
    assert len(table) == 3 * 3 and s["materials"]["template"]["spearman_vs_template"] == pytest.approx(1.0)
    prompts = sample_rows(load_axis("gender").bias_prompts("train"), 4, 0).prompt.tolist()
    direct = compute_bmi(load_model(tiny3_dir), prompts).set_index("layer").bmi
    got = table[table.material == "template"].set_index("layer").bmi
    np.testing.assert_allclose(got.loc[direct.index], direct, rtol=1e-5)
    for name, m in s["materials"].items():  # the top blocks are the highest-BMI blocks not set aside
        t = table[(table.material == name) & ~table.layer.isin(m["excluded"])].sort_values(["rank", "layer"])
        assert m["top3"] == t.layer.tolist()[:3]

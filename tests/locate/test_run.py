"""The whole locate stage on a tiny model: tables agree with the pieces they come from."""

import json

import pytest

from lftf_interp.locate import compute_bmi, top_block
from lftf_interp.locate.run import LocateConfig, locate, save_locate


def test_locate_tables_and_summary(tiny_bridge, tmp_path):
    cfg = LocateConfig(n_pairs=2, n_lens=5, n_bmi=20)
    res = locate(tiny_bridge, cfg)
    assert res["summary"]["top_block"] == top_block(res["bmi"])
    from lftf_interp.data import load_dataset

    again = compute_bmi(tiny_bridge, load_dataset("genbias", "test").subset(n=20, seed=0).prompts)
    assert res["bmi"].bmi.tolist() == pytest.approx(again.bmi.tolist())
    assert (
        set(res["patching"].site) == {"resid_pre", "attn_out", "mlp_out"} and res["patching"].layer.max() == 1
    )
    paths = save_locate(res, tmp_path, {"seed": 0})
    saved = json.loads((tmp_path / "locate.json").read_text())
    assert (
        saved["meta"] == {"seed": 0} and saved["top_block"] == res["summary"]["top_block"] and len(paths) == 7
    )
    with pytest.raises(ValueError, match="pair_kind"):
        LocateConfig(pair_kind="swap")


def test_locate_runs_on_any_axis(tiny_bridge):
    res = locate(tiny_bridge, LocateConfig(n_pairs=3, n_lens=4, n_bmi=12, axis="religion"))
    s = res["summary"]
    assert s["axis"] == "religion" and s["pairs"]["n"] == 3 and "christian" in "".join(res["lens"].columns)
    by = res["patching_by_block"]
    first = by[(by.site == "resid_pre") & (by.layer == 0)].value.iloc[0]
    assert first == pytest.approx(1.0, abs=1e-4)  # the whole clean residual into block 0 is the clean run
    with pytest.raises(ValueError, match="needs GenBiasEval's occupation stereotypes"):
        locate(tiny_bridge, LocateConfig(n_pairs=2, axis="religion", pair_kind="stereotype_swap"))

"""The issue-12 studies end to end on the tiny 3-block model (the CLI wraps them: tests/test_cli_studies.py)."""

import json

import pytest

from lftf_interp import pipeline, studies
from lftf_interp.errors import LftfError
from lftf_interp.tune import TuneConfig
from lftf_interp.validity import ValidityConfig


@pytest.fixture(scope="module")
def tiny_delta(tiny3_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft")
    cfg = TuneConfig(steps=4, batch_size=8, n_train=32, n_val=16, eval_every=4, lr=3e-3)
    pipeline.finetune_to(tiny3_dir, cfg, out, block=[2])
    return out / "delta"


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


def test_holdout_trains_without_the_kind_and_resumes(tiny3_dir, tmp_path):
    rows = studies.holdout_to(tiny3_dir, tmp_path, ["name"], steps=1)
    r = rows.iloc[0]
    assert r.held_out == "name" and r.ub_held_out == r.ub_kind_name
    assert r.ub_other == pytest.approx(sum(r[f"ub_kind_{k}"] for k in ("noun", "family", "title", "pronoun")) / 4)
    first = (tmp_path / "rows.jsonl").read_text()
    studies.holdout_to(tiny3_dir, tmp_path, ["name"], steps=1)
    assert (tmp_path / "rows.jsonl").read_text() == first  # done kinds are not rerun
    with pytest.raises(LftfError, match="Unknown hint kind"):
        studies.holdout_to(tiny3_dir, tmp_path, ["accent"])


def test_mechanism_restoring_every_unit_gives_back_the_base(tiny3_dir, tiny_delta, tmp_path):
    s = studies.mechanism_to(tiny3_dir, tiny_delta, tmp_path, heads=(1, 4), neurons=(8, 10_000), n_random=1)
    curve = __import__("pandas").read_csv(tmp_path / "restore.csv")
    assert s["block"] == 2 and (tmp_path / "units.csv").is_file()
    assert curve.iloc[0].afgb == pytest.approx(s["tuned"]["afgb"])
    assert s["top_share_of_delta"]["head"][4] == pytest.approx(1.0)
    assert set(curve.kind) == {"none", "head", "kv_head", "neuron"}

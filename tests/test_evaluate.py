import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lftf_interp.cli import app
from lftf_interp.data import load_dataset
from lftf_interp.metrics import EvalConfig, PronounTargets, evaluate, pronoun_probs, score_dataset
from lftf_interp.models import export_hf


def test_batched_equals_one_at_a_time(tiny_bridge):
    prompts = load_dataset("genhint", "test").prompts[:10] + load_dataset("genbias", "test").prompts[:10]
    one = pronoun_probs(tiny_bridge, prompts, batch_size=1)
    for bs in (3, 64):
        many = pronoun_probs(tiny_bridge, prompts, batch_size=bs)
        np.testing.assert_allclose(many.p_he, one.p_he, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(many.p_she, one.p_she, rtol=1e-5, atol=1e-9)
    assert (one.p_he > 0).all() and (one.mass < 1).all()


def test_probabilities_match_a_manual_softmax(tiny_bridge):
    import torch

    from lftf_interp.tokens import encode

    p = "The nurse said that"
    with torch.no_grad():
        logits = tiny_bridge(torch.tensor([encode(tiny_bridge, p)]))[0, -1].double()
    probs = logits.softmax(-1)
    got = pronoun_probs(tiny_bridge, [p], PronounTargets((" he", " He"), (" she",)))
    assert got.p_he[0] == pytest.approx((probs[384] + probs[909]).item(), rel=1e-4)
    assert got.p_she[0] == pytest.approx(probs[1041].item(), rel=1e-4)


def test_score_dataset_columns(tiny_bridge):
    ds = load_dataset("genhint", "validation").subset(n=12, seed=0)
    df = score_dataset(tiny_bridge, ds)
    np.testing.assert_allclose(df.ub, np.where(df.label == "he", df.p_he, df.p_she) / df.mass)
    m, b, h = evaluate(tiny_bridge, EvalConfig(n_boot=50), load_dataset("genbias", "test").subset(n=8), ds)
    assert m["afgb_ci"][0] <= m["afgb"] <= m["afgb_ci"][1] and m["n"] == 8 and m["n_hint"] == 12


def test_cli_evaluate_on_a_local_directory(tiny_bridge, tmp_path):
    model_dir = export_hf(tiny_bridge, tmp_path / "tiny")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["evaluate", "--model", str(model_dir), "--split", "validation", "--out", str(out), "--n-boot", "50"]
    )
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    for k in ("afgb", "afgb_ci", "ub", "ub_ci", "mass", "n"):
        assert k in m
    assert m["config"]["package_version"] and m["config"]["split"] == "validation"
    assert (out / "genbias_prompts.csv").is_file()
    assert "AFGB" in res.output


def test_cli_errors_are_clear(tmp_path):
    res = CliRunner().invoke(app, ["evaluate", "--model", "nope-model", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "Unknown model" in res.output
    res = CliRunner().invoke(app, ["evaluate", "--split", "dev", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "available splits" in res.output


def test_cli_locate_on_a_local_directory(tiny_bridge, tmp_path):
    model_dir = export_hf(tiny_bridge, tmp_path / "tiny")
    out = tmp_path / "loc"
    res = CliRunner().invoke(app, ["locate", "--model", str(model_dir), "--out", str(out), "--n-pairs", "2"])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "locate.json").read_text())
    assert meta["meta"]["dataset_version"] and meta["meta"]["seed"] == 0 and meta["meta"]["package_version"]
    for f in ("bmi.csv", "patching.csv", "lens.csv", "attribution.csv", "bmi.png", "patching.png"):
        assert (out / f).is_file(), f
    res = CliRunner().invoke(app, ["locate", "--model", str(model_dir), "--out", str(out), "--pair-kind", "swap"])
    assert res.exit_code == 2 and "pair_kind" in res.output


def test_cli_finetune_writes_a_delta(tiny_bridge, tmp_path):
    model_dir = export_hf(tiny_bridge, tmp_path / "tiny")
    out = tmp_path / "ft"
    args = ["finetune", "--model", str(model_dir), "--block", "1", "--steps", "4", "--batch-size", "8",
            "--lr", "1e-3", "--checkpoint-every", "2", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["blocks"] == [1] and m["after"]["afgb"] != m["before"]["afgb"]
    assert (out / "delta" / "delta.safetensors").is_file() and (out / "checkpoint" / "state.json").is_file()
    res = CliRunner().invoke(app, [*args[:-2], "--loss", "l2", "--out", str(out)])
    assert res.exit_code == 2 and "loss must be one of" in res.output


def test_cli_compare_resumes_and_sweep_and_demo(tiny3, tmp_path):
    model_dir = export_hf(tiny3, tmp_path / "tiny")
    out = tmp_path / "cmp"
    args = ["compare", "--model", str(model_dir), "--methods", "base,lftf-balanced", "--seeds", "0,1", "--steps", "2",
            "--retain", "small", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert [(r["method"], r["seed"]) for r in rows] == [("base", 0), ("lftf-balanced", 0), ("lftf-balanced", 1)]
    assert "lftf-balanced" in (out / "table.md").read_text() and (out / "summary.csv").is_file()
    res = CliRunner().invoke(app, args)  # everything done: nothing is rerun
    assert res.exit_code == 0 and len((out / "rows.jsonl").read_text().splitlines()) == 3
    res = CliRunner().invoke(app, [*args[:4], "prompt", *args[5:]])  # a later run with another method adds to both files
    assert res.exit_code == 0, res.output
    assert len((out / "rows.jsonl").read_text().splitlines()) == 4
    config = json.loads((out / "config.json").read_text())
    assert [m["name"] for m in config["methods"]] == ["base", "lftf-balanced", "prompt"]
    res = CliRunner().invoke(app, [*args[:4], "base,nope", *args[5:]])
    assert res.exit_code == 2 and "Unknown method" in res.output

    res = CliRunner().invoke(app, ["sweep", "--model", str(model_dir), "--blocks", "1,2", "--steps", "2",
                                   "--out", str(tmp_path / "sw")])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["block"] for x in (tmp_path / "sw" / "rows.jsonl").read_text().splitlines()] == [1, 2]
    res = CliRunner().invoke(app, ["sweep", "--model", str(model_dir), "--blocks", "7", "--out", str(tmp_path / "sw")])
    assert res.exit_code == 2 and "out of range" in res.output

    res = CliRunner().invoke(app, ["demo", "--model", str(model_dir), "--steps", "2", "--retain", "small",
                                   "--out", str(tmp_path / "demo")])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert s["block"] == 2 and "kl" in s["retention"] and s["after"]["afgb"] != s["before"]["afgb"]
    for f in ("training.png", "before_after.png", "share_shift.png"):
        assert (tmp_path / "demo" / "figures" / f).is_file()
    assert (tmp_path / "demo" / "finetune" / "delta" / "delta.safetensors").is_file()

"""``lftf``: each command end to end on tiny models written as Hugging Face directories; errors as one line."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from lftf_interp.cli.main import app
from lftf_interp.data import load_dataset
from lftf_interp.models.loading import export_hf
from lftf_interp.models.tokens import encode


@pytest.fixture(scope="module")
def tiny_dir(tiny_bridge, tmp_path_factory):
    return export_hf(tiny_bridge, tmp_path_factory.mktemp("tiny") / "tiny")


def lftf(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_evaluate_on_a_local_directory(tiny_dir, tmp_path):
    out = tmp_path / "out"
    res = lftf("evaluate", "--model", tiny_dir, "--split", "validation", "--out", out, "--n-boot", "50")
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == len(load_dataset("genbias", "validation")) and m["n_hint"] == len(
        load_dataset("genhint", "validation")
    )
    assert m["afgb_ci"][0] <= m["afgb"] <= m["afgb_ci"][1]
    assert m["config"]["package_version"] and m["config"]["split"] == "validation"
    assert f"{m['afgb']:.3f}" in res.output


def test_errors_are_one_clear_line(tiny_dir, tmp_path):
    for args, says in (
        (["evaluate", "--model", "nope-model"], "Unknown model"),
        (
            ["evaluate", "--split", "dev"],
            "its bias prompts have no split 'dev'; available: ['test', 'train', 'validation']",
        ),
        (["evaluate", "--model", tiny_dir, "--batch-size", "0"], "batch_size must be >= 1"),
        (["locate", "--model", tiny_dir, "--pair-kind", "swap"], "pair_kind"),
        (["finetune", "--model", tiny_dir, "--loss", "l2"], "loss must be one of"),
        (["finetune", "--model", tiny_dir, "--block", "x"], "not a comma-separated list"),
        (["sweep", "--model", tiny_dir, "--blocks", "7"], "out of range"),
        (["compare", "--model", tiny_dir, "--methods", "base,nope"], "Unknown method"),
    ):
        res = lftf(*args, "--out", tmp_path / "err")
        assert res.exit_code == 2 and says in res.output, (args, res.output)
        assert "Traceback" not in res.output


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_locate_writes_tables_and_figures(tiny_dir, tmp_path):
    out = tmp_path / "loc"
    res = lftf("locate", "--model", tiny_dir, "--out", out, "--n-pairs", "2")
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "locate.json").read_text())
    assert meta["meta"]["dataset_version"] and meta["meta"]["seed"] == 0 and meta["meta"]["package_version"]
    assert len(meta["top5_bmi"]) == 2  # the tiny model has two blocks
    for f in ("bmi.csv", "patching.csv", "lens.csv", "attribution.csv", "bmi.png", "patching.png"):
        assert (out / f).stat().st_size > 0, f
    res = lftf("locate", "--model", tiny_dir, "--out", tmp_path / "race", "--n-pairs", "2", "--axis", "race")
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "race" / "locate.json").read_text())
    assert (
        meta["axis"] == "race"
        and meta["pairs"]["n"] == 2
        and (tmp_path / "race" / "lens.png").stat().st_size > 0
    )
    res = lftf(
        "locate", "--model", tiny_dir, "--out", tmp_path / "x", "--axis", "race", "--hint-kind", "name"
    )
    assert res.exit_code == 2 and "has no hint kind 'name'" in res.output


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_the_cli_and_the_python_api_train_the_same_delta(tiny_dir, tmp_path):
    """``lftf finetune --block 1 --steps 30`` and ``tune(model, TuneConfig(block=1, steps=30))``: every other option
    left at its default; the deltas are bit-identical and the recorded configs equal."""
    from safetensors.torch import load_file

    from lftf_interp.models.loading import load_model
    from lftf_interp.models.runner import canonical_state_dict
    from lftf_interp.tune import TuneConfig, tune

    res = lftf("finetune", "--model", tiny_dir, "--block", "1", "--steps", "30", "--out", tmp_path / "ft")
    assert res.exit_code == 0, res.output
    cli = load_file(tmp_path / "ft" / "delta" / "delta.safetensors")
    model = load_model(str(tiny_dir))
    before = {n: p.detach().clone() for n, p in canonical_state_dict(model).items() if n in cli}
    tune(model, TuneConfig(block=1, steps=30))
    api = canonical_state_dict(model)
    assert cli and all(torch.equal(cli[n], api[n]) for n in cli)
    assert any(not torch.equal(cli[n], before[n]) for n in cli)  # it trained
    cfg = json.loads((tmp_path / "ft" / "metrics.json").read_text())["config"]
    assert TuneConfig.from_dict(cfg) == TuneConfig(block=(1,), steps=30)


def test_finetune_writes_a_delta_and_export_rebuilds_the_model(tiny_bridge, tiny_dir, tmp_path):
    out = tmp_path / "ft"
    args = [
        "finetune",
        "--model",
        tiny_dir,
        "--block",
        "1",
        "--steps",
        "4",
        "--batch-size",
        "8",
        "--n-train",
        "64",
        "--lr",
        "1e-3",
        "--checkpoint-every",
        "2",
        "--out",
        out,
    ]
    res = lftf(*args)
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["blocks"] == [1] and m["after"]["afgb"] != m["before"]["afgb"] and m["config"]["n_train"] == 64
    assert (out / "checkpoint" / "step-000004" / "state.json").is_file()
    # export: base + delta -> a Hugging Face directory that plain transformers reads with our numbers
    res = lftf("export", "--model", tiny_dir, "--delta", out / "delta", "--out", tmp_path / "hf")
    assert res.exit_code == 0, res.output
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    prompt = "The nurse said that"
    ids = tok(prompt, return_tensors="pt").input_ids
    assert ids[0].tolist() == encode(tiny_bridge, prompt)  # no BOS added by the exported tokenizer
    with torch.no_grad():
        p_hf = hf(ids).logits[0, -1].softmax(-1)
    he = tok.convert_tokens_to_ids("Ġhe")
    rows = json.loads((out / "metrics.json").read_text())
    assert rows["blocks"] == [1]
    from lftf_interp.metrics.groups import prompt_probs
    from lftf_interp.models.loading import load_model
    from lftf_interp.tune import apply_delta

    tuned = load_model(str(tiny_dir))
    apply_delta(tuned, out / "delta")
    assert p_hf[he].item() == pytest.approx(float(prompt_probs(tuned, [prompt]).p_he[0]), rel=1e-4)
    res = lftf(
        "export", "--model", tiny_dir, "--delta", out / "delta", "--out", tmp_path / "hf2"
    )  # same base: fine
    assert res.exit_code == 0
    res = lftf("export", "--model", tmp_path / "hf", "--delta", out / "delta", "--out", tmp_path / "hf3")
    assert res.exit_code == 2 and "fingerprint" in res.output  # a delta on top of itself is refused


@pytest.mark.downloads
@pytest.mark.integration  # every command end to end
def test_compare_resumes_and_sweep_and_demo(tiny3, tmp_path):
    model_dir = export_hf(tiny3, tmp_path / "tiny")
    out = tmp_path / "cmp"
    args = [
        "compare",
        "--model",
        model_dir,
        "--methods",
        "base,lftf-balanced",
        "--seeds",
        "0,1",
        "--steps",
        "2",
        "--retain",
        "small",
        "--no-validity",
        "--out",
        out,
    ]
    res = lftf(*args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert [(r["method"], r["seed"]) for r in rows] == [
        ("base", 0),
        ("lftf-balanced", 0),
        ("lftf-balanced", 1),
    ]
    assert "lftf-balanced" in (out / "table.md").read_text() and (out / "summary.csv").is_file()
    res = lftf(*args)  # everything done: nothing is rerun
    assert res.exit_code == 0 and len((out / "rows.jsonl").read_text().splitlines()) == 3
    res = lftf(*args[:4], "prompt", *args[5:])  # a later run with another method adds to both files
    assert res.exit_code == 0, res.output
    assert len((out / "rows.jsonl").read_text().splitlines()) == 4
    config = json.loads((out / "config.json").read_text())
    assert [m["name"] for m in config["methods"]] == ["base", "lftf-balanced", "prompt"]

    res = lftf("sweep", "--model", model_dir, "--blocks", "1,2", "--steps", "2", "--out", tmp_path / "sw")
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["block"] for x in (tmp_path / "sw" / "rows.jsonl").read_text().splitlines()] == [
        1,
        2,
    ]

    res = lftf("demo", "--model", model_dir, "--steps", "2", "--retain", "small", "--out", tmp_path / "demo")
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "demo" / "summary.json").read_text())
    choice = s["block_choice"]
    ranked = [r["layer"] for r in choice["top5"] if r["layer"] not in choice["excluded"]]  # BMI order
    assert s["block"] == choice["blocks"][0] == ranked[0] and s["block"] not in choice["excluded"]
    assert "kl" in s["retention"] and s["after"]["afgb"] != s["before"]["afgb"]
    for f in ("training.png", "before_after.png", "share_shift.png", "baseline_hints.png"):
        assert (tmp_path / "demo" / "figures" / f).stat().st_size > 0
    assert (tmp_path / "demo" / "locate" / "bmi.png").is_file()
    assert (tmp_path / "demo" / "finetune" / "delta" / "delta.safetensors").is_file()


def test_evaluate_on_an_axis_and_on_your_own_prompts(tiny_dir, tmp_path):
    from lftf_interp.data import load_axis
    from lftf_interp.metrics.groups import evaluate_axis
    from lftf_interp.models.loading import load_model

    axis = tmp_path / "faith.yaml"
    axis.write_text(
        "name: faith\n"
        "groups:\n  - {name: christian, words: [' Christian']}\n  - {name: muslim, words: [' Muslim']}\n"
        "  - {name: buddhist, words: [' Buddhist', ' Buddhists']}\n"
        "templates:\n  - {text: 'The {subject} said the new neighbour was', split: test}\n"
        "subjects:\n  - {name: doctor, split: test}\n  - {name: baker, split: test}\n"
        "hints:\n  - {kind: worship, group: muslim, text: 'The {subject} prays at the mosque.'}\n"
    )
    res = lftf("evaluate", "--model", tiny_dir, "--axis", axis, "--out", tmp_path / "ax", "--n-boot", "20")
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "ax" / "metrics.json").read_text())
    ref, _, _ = evaluate_axis(load_model(str(tiny_dir)), load_axis(axis), "test", n_boot=20)
    assert m["groups"] == ["christian", "muslim", "buddhist"] and m["n"] == 2 and m["n_hint"] == 2
    assert m["bias"] == pytest.approx(ref["bias"]) and m["hint_following"] == pytest.approx(
        ref["hint_following"]
    )
    mine = tmp_path / "mine.jsonl"
    mine.write_text(
        '{"prompt": "My neighbour is"}\n{"prompt": "She prays at the mosque. My neighbour is", "label": "muslim"}\n'
    )
    res = lftf(
        "evaluate",
        "--model",
        tiny_dir,
        "--axis",
        axis,
        "--data",
        mine,
        "--out",
        tmp_path / "mine",
        "--n-boot",
        "20",
    )
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "mine" / "metrics.json").read_text())
    assert m["n"] == 1 and m["n_hint"] == 1
    res = lftf("evaluate", "--model", tiny_dir, "--data", mine, "--out", tmp_path / "x")  # scored on gender
    assert res.exit_code == 2 and "hint labels ['muslim'] are not groups ['he', 'she']" in res.output
    res = lftf("evaluate", "--model", tiny_dir, "--axis", tmp_path / "nope.yaml", "--out", tmp_path / "x")
    assert res.exit_code == 2 and "Unknown axis" in res.output


def test_every_command_takes_device_and_dtype(tiny_dir, tmp_path):
    import typer.main

    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        opts = {o for p in cmd.params for o in p.opts}
        assert {"--device", "--dtype", "--device-map", "--max-memory"} <= opts, name
    out = tmp_path / "bf16"
    res = lftf(
        "evaluate",
        "--model",
        tiny_dir,
        "--split",
        "validation",
        "--out",
        out,
        "--n-boot",
        "20",
        "--dtype",
        "bfloat16",
    )
    assert res.exit_code == 0, res.output
    assert (
        lftf(
            "evaluate",
            "--model",
            tiny_dir,
            "--split",
            "validation",
            "--out",
            tmp_path / "f32",
            "--n-boot",
            "20",
        ).exit_code
        == 0
    )
    bf16, f32 = (json.loads((d / "metrics.json").read_text()) for d in (out, tmp_path / "f32"))
    assert (
        bf16["config"]["placement"]["dtype"] == "bfloat16"
        and f32["config"]["placement"]["dtype"] == "float32"
    )
    assert bf16["afgb"] != f32["afgb"] and abs(bf16["afgb"] - f32["afgb"]) < 0.05  # bfloat16 really ran
    bad = lftf("evaluate", "--model", tiny_dir, "--dtype", "float16", "--out", tmp_path / "x")
    assert bad.exit_code == 2 and "dtype 'float16' is not supported" in bad.output


def test_families_writes_table_and_figure(tmp_path):
    from tests.experiments.test_families import write_run

    ft, sw = write_run(tmp_path / "m")
    res = lftf("families", "--runs", f"tiny={ft}:{sw}", "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "families.png").stat().st_size > 10_000 and "tiny" in res.output
    bad = lftf("families", "--runs", "tiny", "--out", tmp_path / "out2")
    assert bad.exit_code == 2 and "NAME=FINETUNE_DIR:SWEEP_DIR" in bad.output


def test_evaluate_scores_crows_and_bbq_files_and_refuses_a_bad_one(tiny_dir, tmp_path):
    from pathlib import Path

    from lftf_interp.data.pairsets import read_bbq, read_crows, read_pairs
    from lftf_interp.metrics.pairs import bbq_answers, bbq_scores, crows_scores, pair_scores
    from lftf_interp.models.loading import load_model
    from lftf_interp.retain.stereoset import evaluate_stereoset

    fix = Path(__file__).parents[2] / "examples" / "pairs"
    given = "--split validation --n-boot 20 --stereoset intersentence --stereoset-targets select".split()
    crows, bbq = fix / "crows_example.csv", fix / "bbq_example.jsonl"
    mine = fix / "pairs_example.jsonl"
    res = lftf(
        "evaluate", "--model", tiny_dir, *given, "--out", tmp_path / "ev", "--crows", crows, "--bbq", bbq,
        "--pairs", mine,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "CrowS-Pairs overall" in res.output and "BBQ overall" in res.output
    assert "Your pairs, nurse:" in res.output and "LMS" in res.output
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    model = load_model(str(tiny_dir))
    table, _ = crows_scores(model, read_crows(fix / "crows_example.csv"), 20, 0)
    assert m["crows"]["overall"]["score"] == table.set_index("bias_type").loc["overall", "score"]
    mine_table = pair_scores(model, read_pairs(mine), 20, 0)[0].set_index("target")
    assert (
        m["pairs"]["nurse"]["lms"] == mine_table.loc["nurse", "lms"] and "lms" not in m["pairs"]["engineer"]
    )
    assert m["pairs"]["overall"]["score_ci"] == list(mine_table.loc["overall", "score_ci"])
    bbq = bbq_scores(bbq_answers(model, read_bbq(fix / "bbq_example.jsonl"))).set_index("category")
    assert m["bbq"]["Age"]["accuracy_ambig"] == bbq.loc["Age", "accuracy_ambig"]
    assert (tmp_path / "ev" / "crows_pairs.csv").is_file() and (tmp_path / "ev" / "bbq_answers.csv").is_file()
    ss, _ = evaluate_stereoset(model, n_boot=20, kind="intersentence", split="select")
    assert m["stereoset"]["overall"]["ss"] == ss.set_index("bias_type").loc["overall", "ss"]
    assert "StereoSet intersentence gender (select targets): SS" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("sent_more,sent_less,bias_type\nA b.,A c.,gender\n")
    res = lftf("evaluate", "--model", tiny_dir, "--crows", bad, "--out", tmp_path / "x")
    assert res.exit_code == 2 and "has no column(s) ['stereo_antistereo']" in res.output
    bad.write_text('{"stereotype": "A b."}\n')
    res = lftf("evaluate", "--model", "no-such-model", "--pairs", bad, "--out", tmp_path / "z")
    assert res.exit_code == 2 and ":1: no anti_stereotype" in res.output  # before any model loads
    res = lftf("evaluate", "--model", tiny_dir, "--stereoset", "inter", "--out", tmp_path / "y")
    assert res.exit_code == 2 and "stereoset must be intrasentence or intersentence" in res.output

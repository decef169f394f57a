"""``lftf evaluate / locate / finetune / export`` on a tiny random model of each family added beside Llama, Qwen2
and Gemma-3, written as a Hugging Face directory: on its fast row, and for GPT-2, GPT-NeoX and Phi-3 also on the
generic path (a config their rows do not implement), the path recorded in ``metrics.json``."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from lftf_interp.cli.main import app
from lftf_interp.models.loading import export_hf, load_model, tiny_model
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode_batch
from lftf_interp.tune import apply_delta

pytestmark = pytest.mark.integration

CASES = {  # name -> (family, config overrides, the forward it runs on); Llama, Qwen2 and Gemma-3: test_main.py
    "mistral": ("mistral", {"sliding_window": 64}, "fast"),  # a hint 8 tokens back must reach the end
    "qwen3": ("qwen3", {}, "fast"),
    "gemma2": ("gemma2", {}, "fast"),
    "gpt2": ("gpt2", {}, "fast"),
    "gpt_neox": ("gpt_neox", {}, "fast"),
    "phi3": ("phi3", {}, "fast"),
    "olmo2": ("olmo2", {}, "fast"),
    # configs no fast row implements: the same families on the generic path
    "gpt2-generic": ("gpt2", {"reorder_and_upcast_attn": True}, "generic"),
    "gpt_neox-generic": ("gpt_neox", {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}, "generic"),
    "phi3-generic": (
        "phi3",
        {
            "rope_scaling": {"rope_type": "longrope", "short_factor": [1.0] * 8, "long_factor": [2.0] * 8},
            "original_max_position_embeddings": 128,
        },
        "generic",
    ),
}


def lftf(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


@pytest.mark.parametrize("case", CASES)
def test_every_command_on_every_family(case, tmp_path, caplog):
    family, extra, forward = CASES[case]
    model = export_hf(tiny_model(2, seed=2, arch=family, **extra), tmp_path / "base")
    with caplog.at_level("WARNING", logger="lftf_interp.models.loading"):
        lftf("evaluate", "--model", model, "--split", "test", "--n-boot", "20", "--out", tmp_path / "ev")
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["config"]["forward"] == forward and 0 <= m["afgb"] <= 1
    assert ("runs on the generic path" in caplog.text) == (forward == "generic")
    lftf("locate", "--model", model, "--n-pairs", "2", "--out", tmp_path / "loc")
    top = json.loads((tmp_path / "loc" / "locate.json").read_text())["top5_bmi"]
    assert sorted(t["layer"] for t in top) == [0, 1]
    ft = tmp_path / "ft"
    lftf(
        *("finetune", "--model", model, "--block", "1", "--steps", "3", "--batch-size", "4"),
        *("--n-train", "8", "--n-val", "8", "--eval-every", "3", "--lr", "1e-2", "--out", ft),
    )
    assert json.loads((ft / "metrics.json").read_text())["blocks"] == [1]
    lftf("export", "--model", model, "--delta", ft / "delta", "--out", tmp_path / "hf")
    tuned = load_model(str(model))
    apply_delta(tuned, ft / "delta")
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids, _ = encode_batch(tuned, ["The nurse said that she", "The farmer said that"])
    with torch.no_grad():
        torch.testing.assert_close(
            plain(input_ids=ids).logits[0], Runner(tuned).logits(ids)[0], atol=1e-4, rtol=1e-4
        )

"""Integration tests on the real Gemma-3-270M (four PyPI GGUF chunks, concatenated and sha256-checked)."""

import json

import pytest
import torch
from typer.testing import CliRunner

from lftf_interp.cli.main import app
from lftf_interp.metrics.groups import prompt_probs
from lftf_interp.models.loading import MODEL_REGISTRY, load_hf, load_model
from lftf_interp.models.runner import Runner, block_param_names
from lftf_interp.models.tokens import encode, encode_batch

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gemma():
    return load_model("gemma3-270m")


def test_registry_entry_states_source_licence_and_bos(gemma):
    spec = MODEL_REGISTRY["gemma3-270m"]
    assert len(spec.chunks) == 4 and "Gemma Terms of Use" in spec.license
    assert gemma.original_model.config.model_type == "gemma3_text" and gemma.cfg.n_layers == 18
    assert encode(gemma, "The nurse said that")[0] == gemma.tokenizer.bos_token_id == 2  # <bos> first, always


def test_runner_bridge_and_hugging_face_agree(gemma):
    hf, _ = load_hf("gemma3-270m")
    ids, lengths = encode_batch(gemma, ["The nurse said that", "After lunch, the carpenter announced that"])
    mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).long()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).logits[torch.arange(2), lengths - 1]
        ours = Runner(gemma).last_logits(ids, lengths)
        bridge = gemma(ids)[torch.arange(2), lengths - 1]
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(bridge, ref, atol=1e-4, rtol=1e-4)
    # without its <bos> Gemma answers differently: the BOS policy matters
    no_bos = torch.tensor([encode(gemma, "The nurse said that")[1:]])
    with torch.no_grad():
        p = hf(input_ids=no_bos).logits[0, -1].softmax(-1)
    df = prompt_probs(gemma, ["The nurse said that"])
    he = gemma.tokenizer.encode(" he", add_special_tokens=False)[0]
    assert df.p_she[0] > 5 * df.p_he[0] and p[he].item() > 5 * df.p_he[0]


def test_block_parameters_include_q_and_k_norms(gemma):
    names = block_param_names(gemma, 17)
    assert "model.layers.17.self_attn.q_norm.weight" in names and len(names) == 9


def test_finetune_end_to_end(tmp_path):
    out = tmp_path / "ft"
    res = CliRunner().invoke(
        app,
        [
            "finetune",
            "--model",
            "gemma3-270m",
            "--block",
            "17",
            "--steps",
            "4",
            "--batch-size",
            "8",
            "--n-train",
            "64",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["blocks"] == [17] and m["placement"]["dtype"] == "float32"
    info = json.loads((out / "delta" / "delta.json").read_text())
    assert info["architecture"] == "gemma3_text" and info["base_model"] == "gemma3-270m"

from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

from lftf_interp.errors import UnknownModelError
from lftf_interp.models import loading as models
from lftf_interp.models.runner import canonical_state_dict
from lftf_interp.models.tokens import encode_batch


def test_unknown_model_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path))
    with pytest.raises(UnknownModelError) as e:
        models.load_model("no-such-model-xyz")
    msg = str(e.value)
    assert "smollm2-135m" in msg and "local directory" in msg and "huggingface-cli download" in msg


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(UnknownModelError, match="config.json"):
        models.load_model(str(tmp_path))


def test_bridge_matches_plain_hf_forward(tiny_bridge):
    """The bridge and an unbridged HF model with the same weights agree on the same token ids."""
    hf = LlamaForCausalLM(tiny_bridge.original_model.config).eval()
    missing = hf.load_state_dict(
        {k: v.detach() for k, v in canonical_state_dict(tiny_bridge).items()}, strict=False
    )
    assert not missing.missing_keys
    ids, _ = encode_batch(tiny_bridge, ["The nurse said that"])
    with torch.no_grad():
        torch.testing.assert_close(tiny_bridge(ids), hf(ids).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_tokenizer_cache_recovers_from_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path))
    tok = models.load_tokenizer()
    f = tmp_path / "tokenizers" / "smollm2-135m" / "tokenizer.json"
    f.write_text(f.read_text()[:1000])
    tok2 = models.load_tokenizer()
    assert tok2.encode(" she") == tok.encode(" she") and len(tok.encode(" she")) == 1


def test_a_tokenizer_load_hashes_the_tokenizer_files_alone(monkeypatch):
    """With the model's weights cached beside it, loading the tokenizer checks a few MB, not the weights."""
    from lftf_interp import store

    models.load_tokenizer()
    hashed = []
    real = store.sha256_file
    monkeypatch.setattr(store, "sha256_file", lambda p, *a: hashed.append(Path(p)) or real(p, *a))
    models.load_tokenizer()
    assert hashed and all(p.parent.parent.name == "tokenizers" for p in hashed)
    assert sum(p.stat().st_size for p in hashed) < 20e6


def test_export_and_reload_local_dir(tiny_bridge, tmp_path):
    out = models.export_hf(tiny_bridge, tmp_path / "tiny")
    b2 = models.load_model(str(out))
    ids, _ = encode_batch(tiny_bridge, ["The nurse said that"])
    with torch.no_grad():
        torch.testing.assert_close(b2(ids), tiny_bridge(ids), atol=1e-5, rtol=1e-5)
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))


def test_exported_tokenizer_encodes_as_the_suite_does(tiny_bridge, tmp_path):
    from transformers import AutoTokenizer

    from lftf_interp.models.tokens import encode

    out = models.export_hf(tiny_bridge, tmp_path / "tiny")
    tok = AutoTokenizer.from_pretrained(out)
    for p in ("The nurse said that", "The X is a woman. The X went home because"):
        assert tok(p).input_ids == encode(tiny_bridge, p)  # no <|im_start|> in front
    assert (
        tiny_bridge.tokenizer(p).input_ids[0] == tiny_bridge.tokenizer.bos_token_id
    )  # the bridge's own would add it


def test_bfloat16_load(tiny3_dir):
    m = models.load_model(tiny3_dir, models.Placement(dtype="bfloat16"))
    assert {p.dtype for p in canonical_state_dict(m).values()} == {torch.bfloat16}

import json
import re
import shutil
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


def _broken(tiny3_dir, tmp_path, change):
    d = tmp_path / "m"
    shutil.copytree(tiny3_dir, d)
    (d / models.MANIFEST).unlink(missing_ok=True)
    change(d)
    return d


def _set_type(model_type):
    def change(d):
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "model_type": model_type}))

    return change


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_set_type("florb"), "names model_type 'florb', which this transformers version does not know"),
        (lambda d: (d / "config.json").write_text("[1, 2"), "cannot be read as JSON"),
        (
            lambda d: [p.rename(p.with_suffix(".bin")) for p in d.glob("*.safetensors")],
            "its *.bin weights are pickles",
        ),
        (lambda d: [p.unlink() for p in d.glob("*.safetensors")], "has no *.safetensors weights"),
        (lambda d: [p.unlink() for p in d.glob("*token*")], "has no tokenizer files"),
    ],
    ids=["unknown-type", "config-not-json", "pickled-weights", "no-weights", "no-tokenizer"],
)
def test_a_model_directory_that_cannot_load_is_refused_in_one_line(tiny3_dir, tmp_path, change, says):
    d = _broken(tiny3_dir, tmp_path, change)
    with pytest.raises(UnknownModelError, match=re.escape(says)):
        models.resolve_model_dir(str(d))


def test_a_load_that_transformers_refuses_is_one_error(tiny3_dir, tmp_path):
    """A known model type whose config does not fit its tokenizer or weights: transformers' own error, named."""
    d = _broken(tiny3_dir, tmp_path, lambda d: (d / "tokenizer.json").write_text("{}"))
    with pytest.raises(UnknownModelError, match="transformers cannot load it"):
        models.load_hf(str(d))


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

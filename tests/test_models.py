import os
import stat

import pytest
import torch
from transformers import LlamaForCausalLM

from lftf_interp import models
from lftf_interp.errors import CacheError, UnknownModelError
from lftf_interp.runner import LlamaRunner, canonical_state_dict
from lftf_interp.tokens import encode_batch


def test_unknown_model_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path))
    with pytest.raises(UnknownModelError) as e:
        models.load_model("no-such-model-xyz")
    msg = str(e.value)
    assert "smollm2-135m" in msg and "local directory" in msg and "huggingface-cli download" in msg


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(UnknownModelError, match="config.json"):
        models.load_model(str(tmp_path))


def test_unwritable_cache_dir(tmp_path, monkeypatch):
    if os.geteuid() == 0:
        target = "/proc/lftf-cache"  # root can write anywhere else
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        target = str(locked / "cache")
    monkeypatch.setenv("LFTF_CACHE", target)
    with pytest.raises(CacheError, match="LFTF_CACHE"):
        models.cache_dir()


def test_runner_matches_bridge(tiny_bridge):
    ids, lengths = encode_batch(tiny_bridge, ["The nurse said that", "The farmer went home because"])
    runner = LlamaRunner(tiny_bridge)
    with torch.no_grad():
        ref = tiny_bridge(ids)
        ours = runner.logits(ids)
        last = runner.last_logits(ids, lengths)
    assert ref.std() > 0.5  # the random model is not trivially flat
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(last, ref[torch.arange(2), lengths - 1], atol=1e-4, rtol=1e-4)


def test_bridge_matches_plain_hf_forward(tiny_bridge):
    """The bridge and an unbridged HF model with the same weights agree on the same token ids."""
    hf = LlamaForCausalLM(tiny_bridge.original_model.config).eval()
    missing = hf.load_state_dict({k: v.detach() for k, v in canonical_state_dict(tiny_bridge).items()}, strict=False)
    assert not missing.missing_keys
    ids, _ = encode_batch(tiny_bridge, ["The nurse said that"])
    with torch.no_grad():
        torch.testing.assert_close(tiny_bridge(ids), hf(ids).logits, atol=1e-4, rtol=1e-4)


def _fake_builder(spec, out):
    cfg = models.tiny_config(n_layers=1, d_model=16, n_heads=2, n_kv_heads=1, d_mlp=32)
    cfg.vocab_size = 64
    m = LlamaForCausalLM(cfg)
    m.save_pretrained(out)
    models._write_manifest(out, {"model": spec.name})


def test_cache_is_atomic_validated_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(models, "_build_from_gguf", lambda s, o: (calls.append(1), _fake_builder(s, o)))
    d = models.cached_model_dir("smollm2-135m")
    assert models.validate_cached(d) == (True, "ok") and len(calls) == 1
    assert models.cached_model_dir("smollm2-135m") == d and len(calls) == 1  # reused
    # truncate the weights: detected and rebuilt, never used
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    ok, why = models.validate_cached(d)
    assert not ok and "truncated" in why
    models.cached_model_dir("smollm2-135m")
    assert len(calls) == 2 and models.validate_cached(d)[0]
    # same size, different bytes: caught by the hash
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    assert "sha256" in models.validate_cached(d)[1]
    # an interrupted build leaves no half cache behind
    monkeypatch.setattr(models, "_build_from_gguf", lambda s, o: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        models.cached_model_dir("smollm2-135m", rebuild=True)
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["smollm2-135m"]


def test_tokenizer_cache_recovers_from_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path))
    tok = models.load_tokenizer()
    f = tmp_path / "tokenizers" / "smollm2-135m" / "tokenizer.json"
    f.write_text(f.read_text()[:1000])
    tok2 = models.load_tokenizer()
    assert tok2.encode(" she") == tok.encode(" she") == [1041]


def test_export_and_reload_local_dir(tiny_bridge, tmp_path):
    out = models.export_hf(tiny_bridge, tmp_path / "tiny")
    b2 = models.load_model(str(out))
    ids, _ = encode_batch(tiny_bridge, ["The nurse said that"])
    with torch.no_grad():
        torch.testing.assert_close(b2(ids), tiny_bridge(ids), atol=1e-5, rtol=1e-5)
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))

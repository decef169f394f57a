"""The cache: directory, manifest validation, atomic builds (pinned downloads: tests/retain/test_sources.py)."""

import hashlib
import os
import stat

import pytest
from transformers import LlamaForCausalLM

from lftf_interp import store
from lftf_interp.errors import CacheError, LftfError
from lftf_interp.models import loading as models
from lftf_interp.store import append_row, read_rows


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
        store.cache_dir()


def _fake_builder(spec, out):
    cfg = models.tiny_config(n_layers=1, d_model=16, n_heads=2, n_kv_heads=1, d_mlp=32)
    cfg.vocab_size = 64
    m = LlamaForCausalLM(cfg)
    m.save_pretrained(out)
    store.write_manifest(out, {"model": spec.name})


def test_cache_is_atomic_validated_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(models, "_build_from_gguf", lambda s, o: (calls.append(1), _fake_builder(s, o)))
    d = models.cached_model_dir("smollm2-135m")
    assert store.validate_dir(d) == (True, "ok") and len(calls) == 1
    assert models.cached_model_dir("smollm2-135m") == d and len(calls) == 1  # reused
    # truncate the weights: detected and rebuilt, never used
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    ok, why = store.validate_dir(d)
    assert not ok and "truncated" in why
    models.cached_model_dir("smollm2-135m")
    assert len(calls) == 2 and store.validate_dir(d)[0]
    # same size, different bytes: caught by the hash
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    assert "sha256" in store.validate_dir(d)[1]
    # an interrupted build leaves no half cache behind
    monkeypatch.setattr(models, "_build_from_gguf", lambda s, o: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        models.cached_model_dir("smollm2-135m", rebuild=True)
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["smollm2-135m"]


def test_verified_names_the_pin(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    assert store.verified(f, digest, "x 1.0", "fix it") == f
    with pytest.raises(CacheError, match=r"expected 0{64} \(x 1.0\). fix it"):
        store.verified(f, "0" * 64, "x 1.0", "fix it")
    with pytest.raises(CacheError, match="does not exist. fix it"):
        store.verified(tmp_path / "missing", digest, "x", "fix it")
    assert store.sha256_file(f) == digest


def test_rows_are_appended_whole_and_a_torn_last_line_is_dropped(tmp_path, caplog):
    path = tmp_path / "rows.jsonl"
    append_row(path, {"block": 1, "afgb": 0.25})
    append_row(path, {"block": 2, "afgb": 0.5})
    whole = path.read_bytes()
    with path.open("ab") as f:
        f.write(b'{"block": 3, "af')  # a kill while the third row was being written
    assert read_rows(path) == [{"block": 1, "afgb": 0.25}, {"block": 2, "afgb": 0.5}]
    assert (
        "torn last line" in caplog.text and path.read_bytes() == whole
    )  # cut from the file: the next append is clean
    append_row(path, {"block": 3, "afgb": 0.75})
    assert [r["block"] for r in read_rows(path)] == [1, 2, 3]
    path.write_bytes(whole.replace(b'{"block": 1', b'{"block": 1,,'))
    with pytest.raises(LftfError, match=r"rows.jsonl:1: not a JSON row"):
        read_rows(path)


def test_an_atomic_write_gets_the_mode_a_plain_write_would(tmp_path):
    from lftf_interp.store import write_json

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        (tmp_path / "b.json").write_text("{}")
    finally:
        os.umask(old)
    assert (
        (tmp_path / "a.json").stat().st_mode & 0o777 == (tmp_path / "b.json").stat().st_mode & 0o777 == 0o644
    )

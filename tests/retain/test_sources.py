import hashlib
import io
import tarfile

import pytest

from lftf_interp.errors import DatasetError
from lftf_interp.retain import sources
from lftf_interp.retain.sources import Source, fetch, list_members, read_member, read_members


@pytest.fixture
def fake_source(tmp_path, monkeypatch):
    """A registry archive served from a file:// URL, so download, hash check and cache are exercised offline."""
    arc = tmp_path / "pkg-1.0.0.tgz"
    with tarfile.open(arc, "w:gz") as t:
        for name, text in {"package/data/a.txt": "alpha", "package/data/b.txt": "beta"}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    sha = hashlib.sha256(arc.read_bytes()).hexdigest()
    src = Source("fake", "npm", "pkg", "1.0.0", arc.as_uri(), sha, "MIT")
    monkeypatch.setitem(sources.SOURCES, "fake", src)
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path / "cache"))
    return src, arc


def test_fetch_caches_and_reads_members_in_order(fake_source):
    src, _ = fake_source
    p = fetch("fake")
    assert p.parent.name == "sources" and hashlib.sha256(p.read_bytes()).hexdigest() == src.sha256
    assert list_members("fake", "package/data/") == ["package/data/a.txt", "package/data/b.txt"]
    assert list(read_members("fake", ["package/data/b.txt", "package/data/a.txt"]).values()) == [
        "beta",
        "alpha",
    ]
    with pytest.raises(DatasetError, match="has no"):
        read_member("fake", "package/data/c.txt")


def test_corrupt_cache_is_replaced_and_bad_path_refused(fake_source, tmp_path):
    src, arc = fake_source
    cached = fetch("fake")
    cached.write_bytes(b"truncated")
    assert hashlib.sha256(fetch("fake").read_bytes()).hexdigest() == src.sha256  # re-downloaded, not used
    bad = tmp_path / "other.tgz"
    bad.write_bytes(b"not the archive")
    with pytest.raises(DatasetError, match="sha256"):
        fetch("fake", path=bad)
    with pytest.raises(DatasetError, match="does not exist"):
        fetch("fake", path=tmp_path / "missing.tgz")
    assert fetch("fake", path=arc) == arc


def test_download_with_wrong_hash_is_not_kept(fake_source, monkeypatch):
    src, _ = fake_source
    monkeypatch.setitem(sources.SOURCES, "fake", Source(**{**src.__dict__, "sha256": "0" * 64}))
    with pytest.raises(DatasetError, match="not using it"):
        fetch("fake")
    assert not list(
        (
            fetch.__globals__["cache_dir"]()
            if False
            else __import__("pathlib").Path(__import__("os").environ["LFTF_CACHE"]) / "sources"
        ).glob("pkg-1.0.0.tgz")
    )


def test_unknown_source():
    with pytest.raises(DatasetError, match="Unknown retention source"):
        fetch("wikipedia")

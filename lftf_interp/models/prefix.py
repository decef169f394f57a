"""The residual stream entering block ``s``, computed once and reused by every model that shares blocks 0..s-1.

A block fine-tune changes nothing before its first tuned block, so the tuned model's forward on any text equals
the base model's up to that block. A :class:`PrefixStore` keeps, per token sequence, the residual entering
block ``start`` (``[len, d_model]``), keyed by a hash of the embedding and blocks ``0..start-1``, the forward
code and the model config: a model whose earlier weights differ gets another store, never these residuals.

* :func:`~lftf_interp.models.runner.reuse_prefix` makes every :class:`~lftf_interp.models.runner.Runner` built on a model start its
  forwards there (``Runner.run_tokens``: the probes, the bias scores, the retention probe), so probing a
  block-24 fine-tune of a 30-block model runs 6 blocks per text, not 30.
* :class:`~lftf_interp.tune.scopes.BlockInputCache` reads the training prompts' residuals from the same store,
  so rows and seeds that tune the same block share them.
* :func:`persist_prefixes` also keeps each store on disk (one safetensors file per store, sha256 in a JSON
  beside it, checked on every read; atomic writes), so jobs in other processes reuse them.

Entries are computed inside right-padded batches; a residual equals the one of a batch of another shape to
float32 rounding (~1e-6), never more.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lftf_interp.store import sha256_file, tensor_bytes, write_atomic

log = logging.getLogger(__name__)
_CODE = ("runner.py", "archs.py", "generic.py")  # the forward's source: a change to it changes every key
_STORES: OrderedDict[tuple[str, int], PrefixStore] = OrderedDict()
_MAX_STORES = 3
_ACTIVE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> PrefixStore
_FOLDER: list[Path] = []  # where stores persist (innermost persist_prefixes), none: memory only


@functools.cache
def _code_hash() -> str:
    """sha256 of the forward's source as this process imported it."""
    h = hashlib.sha256()
    for name in _CODE:
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()


def prefix_params(runner, start: int) -> list[tuple[str, torch.Tensor]]:
    """The parameters the residual entering ``start`` may depend on: all but blocks start.. and what follows the
    last block (final norm, head); the embeddings (token and position) and blocks 0..start-1 among them."""
    a = runner.arch
    after = tuple(f"{n}." for n in (a.final_norm, a.head) if n)
    layers = a.layers + "."
    out = []
    for name, p in runner.p.items():
        layer = name.removeprefix(layers).split(".")[0] if name.startswith(layers) else None
        if (layer is not None and int(layer) < start) or (layer is None and not name.startswith(after)):
            out.append((name, p))
    return out


def weights_key(runner, start: int) -> str:
    """sha256 of the parameters before ``start`` (names, dtypes, bytes), the config and the forward's code."""
    h = hashlib.sha256(_code_hash().encode())
    h.update(json.dumps(runner.cfg.to_dict(), sort_keys=True, default=str).encode())
    h.update(str(start).encode())
    for name, p in prefix_params(runner, start):
        h.update(f"{name}:{p.dtype}:{tuple(p.shape)}".encode())
        h.update(tensor_bytes(p))
    return h.hexdigest()


def versions(runner, start: int) -> tuple[int, ...]:
    """In-place update counters of the parameters before ``start`` (they move when those weights change)."""
    return tuple(p._version for _, p in prefix_params(runner, start))


class PrefixStore:
    """Residuals entering block ``start`` per token sequence (a tuple of ids) for one set of earlier weights."""

    def __init__(self, key: str, start: int, folder: Path | None = None):
        self.key, self.start = key, start
        self.entries: dict[tuple[int, ...], torch.Tensor] = {}
        self.new = 0
        self.path: Path | None = None
        if folder is not None:
            self.attach(folder)

    def attach(self, folder: Path) -> None:
        """Keep the store in ``folder``: what the file there holds joins the entries (which count as new)."""
        self.path = folder / f"{self.key[:40]}-b{self.start}.safetensors"
        mine, self.entries = self.entries, {}
        if self.path.is_file():
            self._load()
        self.entries.update(mine)
        self.new = len(mine)

    def _load(self) -> None:
        assert self.path is not None
        sidecar = self.path.with_suffix(".json")
        try:
            info = json.loads(sidecar.read_text())
            if sha256_file(self.path) != info["sha256"]:
                raise ValueError("sha256 differs from its record")
            resid = load_file(str(self.path))["resid"]
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:  # a cache: recompute, say so
            log.warning("prefix cache %s unreadable (%s); recomputing it", self.path, e)
            return
        at = 0
        for ids in info["index"]:
            self.entries[tuple(ids)] = resid[at : at + len(ids)]
            at += len(ids)

    def save(self) -> None:
        """Write the store (atomically, with its sha256) if it has entries the file lacks."""
        if self.path is None or not self.new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.entries)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        save_file({"resid": torch.cat([self.entries[k] for k in keys]).contiguous()}, str(tmp))
        info = {
            "start": self.start,
            "key": self.key,
            "sha256": sha256_file(tmp),
            "index": [list(k) for k in keys],
        }
        os.replace(tmp, self.path)
        write_atomic(self.path.with_suffix(".json"), json.dumps(info))
        self.new = 0

    def resid(
        self, runner, tokens: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:  # [batch, pos, d_model]
        """The residual entering ``start`` for right-padded ``tokens``: stored rows, or one forward to
        ``start`` for the whole batch when any row is missing (then stored)."""
        n = tokens.shape[1]
        lens = lengths.tolist() if lengths is not None else [n] * tokens.shape[0]
        rows = [tuple(tokens[r, :k].tolist()) for r, k in enumerate(lens)]
        if all(r in self.entries for r in rows):
            x = torch.zeros(len(rows), n, runner.d_model, dtype=self.entries[rows[0]].dtype)
            for r, key in enumerate(rows):
                x[r, : len(key)] = self.entries[key]
            return x
        with torch.no_grad():
            x = runner.run(runner.embed(tokens), stop=self.start)
        for r, key in enumerate(rows):
            if key not in self.entries:
                self.entries[key] = x[r, : len(key)].detach().cpu().clone()
                self.new += 1
        return x


def store_for(runner, start: int) -> PrefixStore:
    """The process's store for ``runner``'s weights before ``start`` (read from disk under
    :func:`persist_prefixes` when there)."""
    folder = _FOLDER[-1] if _FOLDER else None
    key = (weights_key(runner, start), start)
    if key not in _STORES:
        _STORES[key] = PrefixStore(key[0], start, folder)
        while len(_STORES) > _MAX_STORES:
            _STORES.popitem(last=False)
    elif folder is not None and _STORES[key].path is None:  # made in memory, now persisted
        _STORES[key].attach(folder)
    _STORES.move_to_end(key)
    return _STORES[key]


def active_prefix(model) -> PrefixStore | None:
    """The store a ``reuse_prefix`` block set for ``model`` (None outside one)."""
    try:
        return _ACTIVE.get(model)
    except TypeError:  # not weak-referenceable: never registered
        return None


@contextmanager
def persist_prefixes(folder: str | os.PathLike) -> Iterator[Path]:
    """Keep prefix stores under ``folder`` (read on first use, written when a reuse block ends)."""
    _FOLDER.append(Path(folder))
    try:
        yield _FOLDER[-1]
    finally:
        _FOLDER.pop()
        for store in _STORES.values():
            store.save()


def clear_prefixes() -> None:
    """Forget every in-memory store (tests; memory)."""
    _STORES.clear()


def activate(model, store: PrefixStore | None) -> None:
    """Register (``store``) or drop (None) the store every Runner on ``model`` starts from."""
    if store is None:
        _ACTIVE.pop(model, None)
    else:
        _ACTIVE[model] = store


__all__ = [
    "PrefixStore",
    "activate",
    "active_prefix",
    "clear_prefixes",
    "persist_prefixes",
    "prefix_params",
    "store_for",
    "versions",
    "weights_key",
]

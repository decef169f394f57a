"""Where and in what precision models load: one :class:`Placement`, set for a block of code by
:func:`placement` (the CLI's ``--device``, ``--dtype``, ``--device-map`` and ``--max-memory``) and read by
:func:`lftf_interp.models.loading.load_model`."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

from lftf_interp.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # accelerate's named placements
_SIZE = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B|B)?$", re.IGNORECASE)
_MEMORY_FIX = (
    "give device=size pairs like '0=20GiB,cpu=100GiB' (a GPU index, cpu or disk; a size in B, MB, GiB, ...)"
)


@dataclass(frozen=True)
class Placement:
    """Where and in what precision models load. ``device``: cpu, cuda, cuda:N or auto (cuda when available);
    ``dtype``: float32 or bfloat16; ``device_map`` / ``max_memory``: accelerate's big-model placement (e.g.
    ``"auto"`` with ``{0: "20GiB", "cpu": "100GiB"}``) for a model larger than one device."""

    device: str = "cpu"
    dtype: str = "float32"
    device_map: str | dict | None = None
    max_memory: dict | None = None

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype {self.dtype!r} is not supported; use one of {sorted(DTYPES)}.")
        if not (self.device in ("cpu", "cuda", "auto") or re.fullmatch(r"cuda:\d+", self.device)):
            raise ConfigError(f"device {self.device!r} is not supported; use cpu, cuda, cuda:N or auto.")
        if isinstance(self.device_map, str) and self.device_map not in DEVICE_MAPS:
            raise ConfigError(
                f"device_map {self.device_map!r} is not supported; use one of {list(DEVICE_MAPS)} "
                "(or, from Python, a dict of module name to device)."
            )
        if self.device_map is not None and not isinstance(self.device_map, str | dict):
            raise ConfigError(
                f"device_map must be one of {list(DEVICE_MAPS)} or a dict, got {type(self.device_map).__name__}."
            )
        if self.max_memory is not None:
            if self.device_map is None:
                raise ConfigError(
                    "max_memory only applies with device_map (it caps each device of the spread); "
                    "add --device-map auto, or drop --max-memory."
                )
            if not isinstance(self.max_memory, dict) or not self.max_memory:
                raise ConfigError(f"max_memory {self.max_memory!r}: {_MEMORY_FIX}.")
            for k, v in self.max_memory.items():
                key_ok = (isinstance(k, int) and not isinstance(k, bool) and k >= 0) or k in (
                    "cpu",
                    "disk",
                    "mps",
                )
                size_ok = (isinstance(v, int) and not isinstance(v, bool) and v > 0) or (
                    isinstance(v, str) and _SIZE.match(v.strip()) is not None
                )
                if not (key_ok and size_ok):
                    raise ConfigError(f"max_memory entry {k!r}={v!r} is not valid: {_MEMORY_FIX}.")

    def resolved_device(self) -> str:
        dev = "cuda" if self.device == "auto" and torch.cuda.is_available() else self.device
        dev = "cpu" if dev == "auto" else dev
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(
                f"--device {self.device} was asked for, but torch sees no CUDA device here "
                f"(torch {torch.__version__}); use --device cpu or auto."
            )
        return dev

    def to_dict(self) -> dict:
        return asdict(self)


_PLACEMENT = [Placement()]


@contextmanager
def placement(p: Placement):
    """Load every model inside the ``with`` block with placement ``p`` (what ``--device`` / ``--dtype`` set)."""
    _PLACEMENT.append(p)
    try:
        yield p
    finally:
        _PLACEMENT.pop()


def current_placement() -> Placement:
    return _PLACEMENT[-1]


__all__ = ["DTYPES", "Placement", "current_placement", "placement"]

"""Where and in what precision models load: one :class:`Placement`, set for a block of code by
:func:`placement` (the CLI's ``--device``, ``--dtype``, ``--device-map`` and ``--max-memory``) and read by
:func:`lftf_interp.models.load_model`."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

from .errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


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
        if not (self.device in ("cpu", "cuda", "auto") or self.device.startswith("cuda:")):
            raise ConfigError(f"device {self.device!r} is not supported; use cpu, cuda, cuda:N or auto.")

    def resolved_device(self) -> str:
        dev = "cuda" if self.device == "auto" and torch.cuda.is_available() else self.device
        dev = "cpu" if dev == "auto" else dev
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"--device {self.device} was asked for, but torch sees no CUDA device here "
                              f"(torch {torch.__version__}); use --device cpu or auto.")
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

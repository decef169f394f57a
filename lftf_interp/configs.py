"""One way to declare, read and write a configuration.

Every configuration is a dataclass that derives :class:`Config` and declares its fields with :func:`setting`
(default and help text in one place; the CLI builds its options from them, see
:func:`lftf_interp.cli.base.config_options`). :meth:`Config.to_dict` is what a run records;
:meth:`Config.from_dict` reads it back: unknown fields are refused by name, nested configurations are built from
their dicts and lists become the tuples a field declares."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, asdict, fields
from typing import Any, TypeVar

from lftf_interp.errors import ConfigError

C = TypeVar("C", bound="Config")


def setting(
    default: Any = MISSING, help: str | None = None, *, factory: Any = MISSING, api_only: bool = False
):
    """A configuration field: its default (or ``factory`` for a mutable one) and its ``--help`` text.
    ``api_only``: the field has no command-line option (a nested configuration, a mapping, a tuning knob of the
    Python API)."""
    meta = {"help": help, "api_only": api_only}
    if factory is not MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _nested(annotation: Any) -> type[Config] | None:
    """The Config class a field holds (``RetainConfig``, ``ValidityConfig | None``), else None."""
    for t in (annotation, *typing.get_args(annotation)):
        if isinstance(t, type) and issubclass(t, Config):
            return t
    return None


def _is_tuple(annotation: Any) -> bool:
    if typing.get_origin(annotation) is tuple:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(typing.get_origin(a) is tuple for a in typing.get_args(annotation))
    return False


class Config:
    """A dataclass configuration: ``to_dict`` / ``from_dict`` shared by all of them."""

    def to_dict(self) -> dict:
        """The fields as plain values (nested configurations as dicts): what a run records."""
        return asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass

    @classmethod
    def from_dict(cls: type[C], d: dict) -> C:
        """The configuration ``d`` describes, checked by the class itself; a field it does not have is refused
        with the list of those it has."""
        if not isinstance(d, dict):
            raise ConfigError(
                f"{cls.__name__} must be given as a mapping of its fields, got {type(d).__name__}."
            )
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]  # every subclass is a dataclass
        if unknown := sorted(set(d) - set(names)):
            raise ConfigError(f"{cls.__name__} has no field(s) {unknown}; fields: {names}.")
        hints = typing.get_type_hints(cls)
        given = dict(d)
        for name, value in d.items():
            if isinstance(value, dict) and (sub := _nested(hints[name])) is not None:
                given[name] = sub.from_dict(value)
            elif isinstance(value, list) and _is_tuple(hints[name]):
                given[name] = tuple(value)
        return cls(**given)


def api_only(config: type) -> list[str]:
    """The fields of ``config`` that have no command-line option."""
    return [f.name for f in fields(config) if f.metadata.get("api_only")]


__all__ = ["Config", "api_only", "setting"]

"""Comma-separated options (``--blocks 3,7``, ``--probes math,winobias``), parsed one way everywhere; a list of
numbers that repeats one is refused (``--seeds 0,0`` would count one run twice)."""

from __future__ import annotations

from lftf_interp.errors import LftfError


def items(text: str | None) -> tuple[str, ...]:
    """``"a, b,,c"`` → ``("a", "b", "c")``: stripped, empty items dropped; None or ``""`` → ``()``."""
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


def _numbers(text: str | None, kind: type, what: str) -> tuple:
    try:
        values = tuple(kind(x) for x in items(text))
    except ValueError as e:
        raise LftfError(f"{text!r} is not {what}.") from e
    if repeated := sorted({v for v in values if values.count(v) > 1}):
        raise LftfError(
            f"{text!r} gives {', '.join(map(str, repeated))} more than once; give each value once."
        )
    return values


def ints(text: str | None, what: str = "a comma-separated list of integers") -> tuple[int, ...]:
    """``"3, 7"`` → ``(3, 7)``; anything else a one-line :class:`~lftf_interp.errors.LftfError` naming ``what``."""
    return _numbers(text, int, what)


def floats(text: str | None, what: str = "a comma-separated list of numbers") -> tuple[float, ...]:
    """``"0.5, 2"`` → ``(0.5, 2.0)``; anything else a one-line :class:`~lftf_interp.errors.LftfError`."""
    return _numbers(text, float, what)


__all__ = ["floats", "items", "ints"]

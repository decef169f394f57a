"""Exceptions with messages that name the problem and the fix."""


class LftfError(ValueError):
    """Base class of every error lftf-interp raises on bad input."""


class UnknownModelError(LftfError):
    pass


class CacheError(LftfError):
    pass


class TokenizationError(LftfError):
    pass


class DatasetError(LftfError):
    pass


class ConfigError(LftfError):
    """A configuration value is out of range or of the wrong kind."""


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C caught where the run knows how to continue; its message says how (printed as one line)."""

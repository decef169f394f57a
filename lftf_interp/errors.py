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

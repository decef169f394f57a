"""lftf-interp: locate where a causal LM stores a social bias, then fine-tune only there."""

__version__ = "0.1.0"

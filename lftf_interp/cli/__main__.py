"""``python -m lftf_interp.cli`` (and ``torchrun -m lftf_interp.cli``): the lftf command."""

from lftf_interp.cli import launch

launch()

"""What the fine-tune changes beyond its template (issue 12): probes of knowledge that must stay, bias beyond
the template, unseen hints, arithmetic and long context (:mod:`.probes`, :mod:`.run`), and the mechanism inside
the tuned block (:mod:`.mechanism`)."""

from .mechanism import delta_units, restore_curve, restore_units
from .probes import fit_slopes
from .run import COMPARE_VALIDITY, PROBES, ValidityConfig, validity_report

__all__ = ["COMPARE_VALIDITY", "PROBES", "ValidityConfig", "delta_units", "fit_slopes", "restore_curve", "restore_units", "validity_report"]

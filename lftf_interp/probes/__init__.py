"""What the fine-tune changes beyond its template: probes of knowledge that must stay, bias beyond
the template, unseen hints, arithmetic and long context (:mod:`.probes`, :mod:`.run`), and the mechanism inside
the tuned block (:mod:`.mechanism`) and the paths its change takes to the logits (:mod:`.paths`)."""

from lftf_interp.probes.beyond import fit_slopes
from lftf_interp.probes.mechanism import (
    RestorePlan,
    attribution_change,
    delta_units,
    path_change,
    restore_curve,
    restore_units,
    sublayer_dla,
    unit_dla,
)
from lftf_interp.probes.paths import path_patching
from lftf_interp.probes.run import (
    AXIS_PROBES,
    COMPARE_VALIDITY,
    EXTRA_PROBES,
    PROBES,
    ValidityConfig,
    neutral_documents,
    validity_report,
)

__all__ = [
    "AXIS_PROBES",
    "COMPARE_VALIDITY",
    "EXTRA_PROBES",
    "PROBES",
    "ValidityConfig",
    "attribution_change",
    "delta_units",
    "fit_slopes",
    "path_change",
    "path_patching",
    "RestorePlan",
    "restore_curve",
    "restore_units",
    "sublayer_dla",
    "unit_dla",
    "neutral_documents",
    "validity_report",
]

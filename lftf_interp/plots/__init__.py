"""Figures from results folders. Importing a module here changes no global state: each drawing function sets
its own style (:func:`lftf_interp.plots.report.style`) and selects no backend."""

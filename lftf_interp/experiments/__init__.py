"""Experiments: every job that writes a results folder (evaluate, locate, finetune, export, compare, sweep, demo,
validity, holdout, mechanism, weight search, transfer, families). Each is resumable where it runs long; the
folder helpers (:mod:`.rundir`) write rows, summaries and JSON atomically."""

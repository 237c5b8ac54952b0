"""Benchmarks of rsb-connector: numbers for people, not part of ``make test``."""

NO_RECORDING = ("--no-connector-validation",)
"""Benchmarks measure the hub's own work: connector validation (on by default in ``rsb hub serve``) is off."""

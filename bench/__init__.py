"""Benchmarks of rsb-connector: numbers for people, not part of ``make test``."""

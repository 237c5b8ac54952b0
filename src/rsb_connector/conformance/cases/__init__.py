"""The implementations of the catalogue's cases, one module per profile.

Each function performs the steps its catalogue entry describes (see :mod:`rsb_connector.conformance.context`)::

    @implements("XDS-001")
    def single_document(t: CaseContext) -> None:
        ...

:func:`implementations` imports the modules and returns the registry; the runner refuses a catalogue case without an
implementation, and the tests check that there is none without a catalogue entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Final

from ..context import CaseContext

__all__ = ["CaseFunction", "implementations", "implements"]

CaseFunction = Callable[[CaseContext], None]

_MODULES: Final = ("xds", "mhd", "security", "consent")
_REGISTRY: dict[str, CaseFunction] = {}


def implements(case_id: str) -> Callable[[CaseFunction], CaseFunction]:
    """Register the decorated function as the implementation of ``case_id``."""

    def register(function: CaseFunction) -> CaseFunction:
        if case_id in _REGISTRY and _REGISTRY[case_id] is not function:
            raise RuntimeError(f"two implementations of {case_id}: {_REGISTRY[case_id].__name__}, {function.__name__}")
        _REGISTRY[case_id] = function
        return function

    return register


def implementations() -> dict[str, CaseFunction]:
    """Every registered implementation, by case id."""
    for module in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module}":
                raise
    return dict(_REGISTRY)

"""The conformance suite: a catalogue of test cases run against any hub, with HTML, JUnit XML and JSON reports,
and the connector-validation reports of what an app sent to the mock hub.

- :mod:`~rsb_connector.conformance.catalogue`: the cases (data, shipped in the wheel) and their selection;
- :mod:`~rsb_connector.conformance.cases`: their implementations, one module per profile;
- :mod:`~rsb_connector.conformance.runner`: runs them (``rsb conformance run``);
- :mod:`~rsb_connector.conformance.report`: writes ``report.html``, ``junit.xml`` and ``report.json``;
- :mod:`~rsb_connector.conformance.wire`: a raw XDS.b peer that sends exactly what it is given.
"""

from __future__ import annotations

from .catalogue import PROFILES, Case, Catalogue, CatalogueError, Step, load_catalogue
from .context import CaseContext, Environment
from .results import CaseResult, Outcome, StepResult, SuiteResult
from .runner import run_case, run_suite

__all__ = [
    "PROFILES",
    "Case",
    "CaseContext",
    "CaseResult",
    "Catalogue",
    "CatalogueError",
    "Environment",
    "Outcome",
    "Step",
    "StepResult",
    "SuiteResult",
    "load_catalogue",
    "run_case",
    "run_suite",
]

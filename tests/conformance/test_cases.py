"""Every catalogue case passes against the mock hub, and every case has an implementation (and vice versa)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rsb_connector.conformance import CaseResult, Outcome, load_catalogue
from rsb_connector.conformance.cases import implementations

CATALOGUE = load_catalogue()


def test_catalogue_and_implementations_match() -> None:
    ids = {c.id for c in CATALOGUE}
    assert ids == set(implementations())


def _explain(result: CaseResult) -> str:
    lines = [f"{result.id} {result.outcome.value}: {result.message}"]
    for step in result.steps:
        lines.append(f"  step {step.number} {step.outcome.value}: {step.message}")
        for e in step.evidence[-2:]:
            lines.append(f"    {e.title} → {e.status}\n{e.response[:1500]}")
    return "\n".join(lines)


@pytest.mark.parametrize("case_id", [c.id for c in CATALOGUE])
def test_case_passes_against_the_mock_hub(case_id: str, run: Callable[[str], CaseResult]) -> None:
    result = run(case_id)
    assert result.outcome is Outcome.PASSED, _explain(result)
    assert all(s.outcome is Outcome.PASSED for s in result.steps)
    assert any(s.evidence for s in result.steps), "every case exchanges messages with the hub"

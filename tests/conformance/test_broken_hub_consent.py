"""The consent and security cases can fail: against hubs broken on purpose, each case that checks the broken
behaviour fails at the step that checks it, with a message saying what a conformant hub does.

Each broken hub is a real hub (``build_hub`` with the session's development PKI, seeded) with one thing wrong:

- consent not enforced (``enforce_consent=False``): every professional publishes, finds and reads everything, and
  the hub keeps no trail the patient can read;
- an audit trail that forgets break-the-glass reasons (access is still decided correctly);
- a security layer that accepts unsigned requests (``allow_unsigned=True``: unsigned SOAP and FHIR without a token
  are served as the anonymous caller);
- a security layer with an hour of clock tolerance (stale Timestamps and expired client assertions pass);
- a replay cache that remembers nothing (replayed messages and client assertions pass).

The last test runs every consent and security case twice against one (correct) hub: cases isolate themselves and
put back what they change, so a second run passes too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rsb_connector.conformance import CaseResult, Environment, Outcome, load_catalogue, run_case
from rsb_connector.conformance.cases import implementations
from rsb_connector.hub import server
from rsb_connector.hub.audit import AuditEvent, AuditRecord, AuditTrail
from rsb_connector.hub.auth import HubSecurity
from rsb_connector.hub.server import Hub, build_hub
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import PkiDescription
from rsb_connector.security.trust import ReplayCache

from .conftest import environment

CATALOGUE = load_catalogue()
CASES = implementations()
Run = Callable[[str], CaseResult]


class ForgetsGlassReasons(AuditTrail):
    """Broken: writes every event, but without the break-the-glass reason."""

    def record_all(self, records: Sequence[AuditRecord]) -> list[AuditEvent]:
        return super().record_all([dataclasses.replace(r, break_the_glass=None) for r in records])


class RemembersNothing(ReplayCache):
    """Broken: every message id and assertion jti looks new."""

    def remember(self, key: str, until: datetime, *, now: datetime | None = None) -> bool:
        return True


@pytest.fixture
def broken(
    tmp_path: Path, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> Iterator[Callable[..., Run]]:
    """``broken("name", **build_hub_options)`` → ``run(case_id)`` against a hub built with those options
    (``audit=`` replaces the hub's audit trail class)."""
    hubs: list[Hub] = []

    def build(name: str, *, audit: type[AuditTrail] | None = None, **options: Any) -> Run:
        with pytest.MonkeyPatch.context() as patch:
            if audit is not None:
                patch.setattr(server, "AuditTrail", audit)  # build_hub makes its trail of this class
            hub = build_hub(tmp_path / name, seed=True, pki=rsb_pki, **options)
        hubs.append(hub)
        env: Environment = environment(hub, rsb_pki, rsb_identity, tmp_path)

        def run(case_id: str) -> CaseResult:
            return run_case(CATALOGUE.get(case_id), CASES[case_id], env)

        return run

    yield build
    for hub in hubs:
        hub.close()


def _fails_at(result: CaseResult, step: int, *expected: str) -> None:
    """The case failed (a check, not an error) at ``step``, and its message names what was expected."""
    assert result.outcome is Outcome.FAILED, f"{result.id} {result.outcome.value}: {result.message}"
    failed = result.failed_step
    assert failed is not None and failed.number == step, f"{result.id} failed at {failed}: {result.message}"
    assert failed.outcome is Outcome.FAILED
    for text in expected:
        assert text in result.message, result.message
    assert all(s.outcome is Outcome.PASSED for s in result.steps[: step - 1])
    assert all(s.outcome is Outcome.SKIPPED for s in result.steps[step:])


def _passes(result: CaseResult) -> None:
    assert result.outcome is Outcome.PASSED, f"{result.id} {result.outcome.value}: {result.message}"


# ---------------------------------------------------------------------------------------------- consent


def test_a_hub_not_enforcing_consent_fails_every_consent_case(broken: Callable[..., Run]) -> None:
    run = broken("no-enforcement", enforce_consent=False)
    refused = "LocalPolicyRestrictionError at location Policy[CONSENT]; got ('Success', [])"
    _fails_at(run("CON-001"), 1, refused)
    _fails_at(run("CON-002"), 3, refused)  # the publication before and the revocation itself work
    _fails_at(run("CON-003"), 2, "the nurse's FindDocuments holds no entry; got ['2.25.")
    _fails_at(run("CON-004"), 2, "LocalPolicyRestrictionError at location Policy[EXCLUSION]; got ('Success', [])")
    _fails_at(run("CON-005"), 2, "exactly the contact report; got [")
    _fails_at(run("CON-006"), 2, "exactly the N note; got [")
    _fails_at(run("CON-007"), 3, "patient1's search does not list the held-back document")
    _fails_at(run("CON-008"), 2, "ITI-67 without a reason: total 0; got ['2.25.")
    _fails_at(run("CON-009"), 1, "total 0: the documents are left out silently")


def test_the_exclusion_case_lifts_its_exclusion_even_when_it_fails(broken: Callable[..., Run]) -> None:
    run = broken("no-enforcement-twice", enforce_consent=False)
    _fails_at(run("CON-004"), 2, "Policy[EXCLUSION]")
    _fails_at(run("CON-004"), 2, "Policy[EXCLUSION]")  # step 1 could exclude again: the first run lifted it


def test_a_trail_without_break_the_glass_reasons_fails_the_audit_case(broken: Callable[..., Run]) -> None:
    run = broken("forgetful-trail", audit=ForgetsGlassReasons)
    _fails_at(run("CON-009"), 4, "allowed with purposeOfUse BTG and the reason given")
    _passes(run("CON-008"))  # the access itself is still decided correctly
    _passes(run("CON-004"))


# ---------------------------------------------------------------------------------------------- security


def test_a_hub_accepting_unsigned_requests_fails_the_unsigned_cases(broken: Callable[..., Run]) -> None:
    run = broken("allow-unsigned", allow_unsigned=True)
    _fails_at(run("SEC-001"), 1, "a SOAP Fault with Subcode wsse:InvalidSecurity or wsse:FailedAuthentication")
    _fails_at(run("SEC-008"), 1, "HTTP 401 with a WWW-Authenticate header of scheme Bearer; got (200, '')")
    _passes(run("SEC-005"))  # a signed request is still verified


def test_a_hub_with_an_hour_of_clock_tolerance_fails_the_expiry_cases(
    broken: Callable[..., Run], rsb_pki: PkiDescription
) -> None:
    run = broken("lenient-clock", security=HubSecurity.from_pki(rsb_pki, clock_skew=3600))
    _fails_at(run("SEC-002"), 1, "a SOAP Fault with Subcode wsse:MessageExpired")
    _fails_at(run("SEC-010"), 3, "error invalid_client, no access_token; got (200")
    _passes(run("SEC-004"))


def test_a_hub_without_replay_detection_fails_the_replay_cases(
    broken: Callable[..., Run], rsb_pki: PkiDescription
) -> None:
    run = broken("no-replay-cache", security=HubSecurity.from_pki(rsb_pki, replay=RemembersNothing()))
    _fails_at(run("SEC-004"), 2, "a SOAP Fault with Subcode wsse:InvalidSecurity or wsse:FailedAuthentication")
    _fails_at(run("SEC-010"), 4, "error invalid_client, no access_token; got (200")
    _passes(run("SEC-002"))


# ---------------------------------------------------------------------------------------------- repeatable


def test_consent_and_security_cases_pass_twice_against_one_hub(broken: Callable[..., Run]) -> None:
    run = broken("correct")
    chosen = [c.id for c in CATALOGUE if c.profile in ("consent", "security")]
    assert len([c for c in chosen if c.startswith("CON-")]) >= 8
    assert len([c for c in chosen if c.startswith("SEC-")]) >= 8
    for _ in range(2):
        for case_id in chosen:
            _passes(run(case_id))

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
from collections.abc import Callable, Sequence
from datetime import datetime

from rsb_connector.conformance import load_catalogue
from rsb_connector.hub.audit import AuditEvent, AuditRecord, AuditTrail
from rsb_connector.hub.auth import HubSecurity
from rsb_connector.security.pki import PkiDescription
from rsb_connector.security.trust import ReplayCache

from .conftest import Run, fails_at, passes

CATALOGUE = load_catalogue()


class ForgetsGlassReasons(AuditTrail):
    """Broken: writes every event, but without the break-the-glass reason."""

    def record_all(self, records: Sequence[AuditRecord]) -> list[AuditEvent]:
        return super().record_all([dataclasses.replace(r, break_the_glass=None) for r in records])


class RemembersNothing(ReplayCache):
    """Broken: every message id and assertion jti looks new."""

    def remember(self, key: str, until: datetime, *, now: datetime | None = None) -> bool:
        return True


# ---------------------------------------------------------------------------------------------- consent


def test_a_hub_not_enforcing_consent_fails_every_consent_case(broken_hub: Callable[..., Run]) -> None:
    run = broken_hub("no-enforcement", enforce_consent=False)
    refused = "LocalPolicyRestrictionError at location Policy[CONSENT]; got ('Success', [])"
    fails_at(run("CON-001"), 1, refused)
    fails_at(run("CON-002"), 3, refused)  # the publication before and the revocation itself work
    fails_at(run("CON-003"), 2, "the nurse's FindDocuments holds no entry; got ['2.25.")
    fails_at(run("CON-004"), 2, "LocalPolicyRestrictionError at location Policy[EXCLUSION]; got ('Success', [])")
    fails_at(run("CON-005"), 2, "exactly the contact report; got [")
    fails_at(run("CON-006"), 2, "exactly the N note; got [")
    fails_at(run("CON-007"), 3, "patient1's search does not list the held-back document")
    fails_at(run("CON-008"), 2, "ITI-67 without a reason: total 0; got ['2.25.")
    fails_at(run("CON-009"), 1, "total 0: the documents are left out silently")


def test_the_exclusion_case_lifts_its_exclusion_even_when_it_fails(broken_hub: Callable[..., Run]) -> None:
    run = broken_hub("no-enforcement-twice", enforce_consent=False)
    fails_at(run("CON-004"), 2, "Policy[EXCLUSION]")
    fails_at(run("CON-004"), 2, "Policy[EXCLUSION]")  # step 1 could exclude again: the first run lifted it


def test_a_trail_without_break_the_glass_reasons_fails_the_audit_case(broken_hub: Callable[..., Run]) -> None:
    run = broken_hub("forgetful-trail", audit=ForgetsGlassReasons)
    fails_at(run("CON-009"), 4, "allowed with purposeOfUse BTG and the reason given")
    passes(run("CON-008"))  # the access itself is still decided correctly
    passes(run("CON-004"))


# ---------------------------------------------------------------------------------------------- security


def test_a_hub_accepting_unsigned_requests_fails_the_unsigned_cases(broken_hub: Callable[..., Run]) -> None:
    run = broken_hub("allow-unsigned", allow_unsigned=True)
    fails_at(run("SEC-001"), 1, "a SOAP Fault with Subcode wsse:InvalidSecurity or wsse:FailedAuthentication")
    fails_at(run("SEC-008"), 1, "HTTP 401 with a WWW-Authenticate header of scheme Bearer; got (200, '')")
    passes(run("SEC-005"))  # a signed request is still verified


def test_a_hub_with_an_hour_of_clock_tolerance_fails_the_expiry_cases(
    broken_hub: Callable[..., Run], rsb_pki: PkiDescription
) -> None:
    run = broken_hub("lenient-clock", security=HubSecurity.from_pki(rsb_pki, clock_skew=3600))
    fails_at(run("SEC-002"), 1, "a SOAP Fault with Subcode wsse:MessageExpired")
    fails_at(run("SEC-010"), 3, "error invalid_client, no access_token; got (200")
    passes(run("SEC-004"))


def test_a_hub_without_replay_detection_fails_the_replay_cases(
    broken_hub: Callable[..., Run], rsb_pki: PkiDescription
) -> None:
    run = broken_hub("no-replay-cache", security=HubSecurity.from_pki(rsb_pki, replay=RemembersNothing()))
    fails_at(run("SEC-004"), 2, "a SOAP Fault with Subcode wsse:InvalidSecurity or wsse:FailedAuthentication")
    fails_at(run("SEC-010"), 4, "error invalid_client, no access_token; got (200")
    passes(run("SEC-002"))


# ---------------------------------------------------------------------------------------------- repeatable


def test_consent_and_security_cases_pass_twice_against_one_hub(broken_hub: Callable[..., Run]) -> None:
    run = broken_hub("correct")
    chosen = [c.id for c in CATALOGUE if c.profile in ("consent", "security")]
    assert len([c for c in chosen if c.startswith("CON-")]) >= 8
    assert len([c for c in chosen if c.startswith("SEC-")]) >= 8
    for _ in range(2):
        for case_id in chosen:
            passes(run(case_id))

"""The audit trail: append-only (no update path, triggers refuse UPDATE and DELETE), queries, masking."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from rsb_connector.hub.audit import AuditAction, AuditDecision, AuditRecord, AuditTrail, iso_utc
from rsb_connector.hub.registry import Caller
from rsb_connector.hub.store import SqliteStore

PATIENT = "73032929895"
OTHER = "72022102793"
PID = f"{PATIENT}^^^&2.16.840.1.113883.3.6777.5.1&ISO"
GP = Caller("Dr Claes", "persphysician", nihii="12345625004", authenticated=True)
ME = Caller("Lucas", "patient", ssin=PATIENT, authenticated=True)
T0 = datetime(2024, 12, 24, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def trail(store: SqliteStore) -> AuditTrail:
    """A trail over the conftest's fresh store."""
    return AuditTrail(store, clock=Clock())


def _fill(trail: AuditTrail) -> None:
    trail.record(GP, action=AuditAction.FIND, decision=True, patient=PID, documents=["1.1"], transaction="ITI-18")
    trail.record(
        GP,
        action="read",
        decision=False,
        patient=PATIENT,
        documents=["1.2"],
        rule="held-back",
        reason="held back until 2025-01-10",
        transaction="ITI-43",
    )
    trail.record(ME, action=AuditAction.READ, decision=AuditDecision.ALLOWED, patient=PATIENT, documents=["1.1"])
    trail.record(GP, action="read", decision=True, patient=OTHER, documents=["2.1"], break_the_glass="x" * 12)


def test_events_round_trip_and_are_found_by_patient(trail: AuditTrail) -> None:
    _fill(trail)
    events = trail.for_patient(PATIENT)
    assert [(e.seq, e.action, e.decision, e.documents) for e in events] == [
        (1, "find", AuditDecision.ALLOWED, ("1.1",)),
        (2, "read", AuditDecision.DENIED, ("1.2",)),
        (3, "read", AuditDecision.ALLOWED, ("1.1",)),
    ]
    first = events[0]
    assert (first.who, first.role, first.who_nihii, first.patient, first.transaction) == (
        "Dr Claes",
        "persphysician",
        "12345625004",
        PATIENT,  # a CX was given: stored as the SSIN
        "ITI-18",
    )
    assert first.at == T0 + timedelta(minutes=1) and first.authenticated
    assert events[2].who_ssin == PATIENT
    assert trail.for_patient(PID) == events
    assert [e.seq for e in trail.for_patient(PATIENT, since=T0 + timedelta(minutes=2))] == [2, 3]


def test_query_filters(trail: AuditTrail) -> None:
    _fill(trail)
    assert [e.seq for e in trail.query(decision="denied")] == [2]
    assert [e.seq for e in trail.query(decision=True)] == [1, 3, 4]
    assert [e.seq for e in trail.query(who="12345625004")] == [1, 2, 4]
    assert [e.seq for e in trail.query(who=PATIENT)] == [3]
    assert [e.seq for e in trail.query(action=AuditAction.READ, patient=PATIENT)] == [2, 3]
    assert [e.seq for e in trail.query(transaction="ITI-43")] == [2]
    assert [e.seq for e in trail.query(until=T0 + timedelta(minutes=3))] == [1, 2]
    assert [e.seq for e in trail.query(limit=2)] == [3, 4]
    assert trail.query(patient=OTHER)[0].break_the_glass == "x" * 12
    with pytest.raises(ValueError, match="limit"):
        trail.query(limit=0)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET decision = 'allowed' WHERE seq = 2",
        "UPDATE audit_events SET patient = NULL",
        "DELETE FROM audit_events WHERE seq = 1",
        "DELETE FROM audit_events",
    ],
)
def test_audit_rows_cannot_be_updated_or_deleted(store: SqliteStore, trail: AuditTrail, statement: str) -> None:
    _fill(trail)
    before = trail.query()
    conn = sqlite3.connect(store.db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    finally:
        conn.close()
    assert trail.query() == before


def test_the_trail_offers_no_update_or_delete_path(trail: AuditTrail) -> None:
    public = {name for name in dir(trail) if not name.startswith("_")}
    assert public == {"clock", "for_patient", "query", "record", "record_all", "store"}
    with trail.store.read() as r:
        session = {name for name in dir(r) if "audit" in name}
    assert session == {"add_audit_event", "audit_events"}


def test_record_all_is_all_or_nothing(trail: AuditTrail) -> None:
    good = AuditRecord(who=GP, action="read", decision=True, patient=PATIENT)
    bad = AuditRecord(who=GP, action="read", decision="maybe", patient=PATIENT)
    with pytest.raises(ValueError, match="maybe"):
        trail.record_all([good, bad])
    assert trail.query() == []
    assert len(trail.record_all([good, good])) == 2
    assert trail.record_all([]) == []


def test_ssins_are_masked_in_every_rendering(trail: AuditTrail) -> None:
    trail.record(
        Caller(f"CN=Lucas Peeters, SERIALNUMBER={PATIENT}", "patient", ssin=PATIENT, authenticated=True),
        action="find",
        decision=False,
        patient=PATIENT,
        rule="patient-self",
        reason=f"patient {OTHER} asked for another record",
    )
    (event,) = trail.query()
    rendered = [str(event), repr(event), json.dumps(event.to_dict())]
    for text in rendered:
        assert PATIENT not in text and OTHER not in text
        assert "73*******95" in text
    assert event.masked_patient == "73*******95"
    assert event.to_dict(masked=False)["patient"] == PATIENT
    assert event.to_dict()["who_nihii"] is None


def test_iso_utc_sorts_as_it_reads() -> None:
    naive = datetime(2024, 1, 1, 12, 0)
    assert iso_utc(naive) == "2024-01-01T12:00:00.000000+00:00"
    brussels = datetime.fromisoformat("2024-06-01T10:00:00+02:00")
    assert iso_utc(brussels) == "2024-06-01T08:00:00.000000+00:00"

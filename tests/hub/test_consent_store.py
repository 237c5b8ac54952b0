"""The consent registries in the store: history kept on every change, who may do what, and the patient state."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from rsb_connector.errors import InvalidIdentifier
from rsb_connector.hub.audit import AuditTrail
from rsb_connector.hub.consent import (
    ConsentRegistry,
    PolicyError,
    RecordKind,
    Refusal,
    author_nihiis,
    document_facts,
)
from rsb_connector.hub.registry import HUB_OPERATOR_ROLE, Caller, Registry
from rsb_connector.hub.store import SqliteStore
from rsb_connector.policy import ConsentType, ProofType, TherapeuticLinkType

try:  # tests/hub as a package (tests.hub.conftest) or as a rootdir-relative folder
    from .conftest import DR_BENALI, DR_CLAES, PID_A, documents_for, make_entry, make_submission
except ImportError:
    from conftest import DR_BENALI, DR_CLAES, PID_A, documents_for, make_entry, make_submission  # type: ignore[no-redef]

SSIN_A = "73032929895"
SSIN_B = "72022102793"
MINOR = "17073003384"  # born 2017
PARENT = "82121210976"
GP_NIHII = "12345625004"
SPEC_NIHII = "14087170580"
NURSE_NIHII = "43120755401"
PHARMACIST_NIHII = "62771965010"
HOSPITAL_NIHII = "71000436"  # 8-digit organisation form, first digit 7: a hospital
LAB_NIHII = "81000321"  # a laboratory

GP = Caller("Dr Claes", "persphysician", nihii=GP_NIHII, authenticated=True)
SPECIALIST = Caller("Dr Benali", "persphysician", nihii=SPEC_NIHII, authenticated=True)
NURSE = Caller("Nurse", "persnurse", nihii=NURSE_NIHII, authenticated=True)
PHARMACIST = Caller("Pharmacist", "perspharmacist", nihii=PHARMACIST_NIHII, authenticated=True)
HOSPITAL = Caller("Hospital", "orghospital", nihii=HOSPITAL_NIHII, authenticated=True)
LAB = Caller("Lab", "orglaboratory", nihii=LAB_NIHII, authenticated=True)
PATIENT_A = Caller("patient A", "patient", ssin=SSIN_A, authenticated=True)
PATIENT_B = Caller("patient B", "patient", ssin=SSIN_B, authenticated=True)
MINOR_SELF = Caller("minor", "patient", ssin=MINOR, authenticated=True)
PARENT_OF_MINOR = Caller("parent", "patient", ssin=PARENT, represents=MINOR, authenticated=True)
OPERATOR = Caller("operator", HUB_OPERATOR_ROLE, authenticated=True)
NOW = datetime(2024, 12, 24, 10, 0, tzinfo=UTC)
TODAY = date(2024, 12, 24)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    store: SqliteStore
    clock: Clock
    audit: AuditTrail
    consents: ConsentRegistry
    registry: Registry


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    store = SqliteStore.open(tmp_path / "hub")
    clock = Clock(NOW)
    audit = AuditTrail(store, clock=clock)
    consents = ConsentRegistry(store, clock=clock, audit=audit)
    registry = Registry(store, clock=clock)
    registry.register_patient(PID_A, {"birth_date": "1973-03-29"})
    yield Env(store, clock, audit, consents, registry)
    store.close()


def published(env: Env, *, authors: tuple[str, ...] = (DR_CLAES,), unique_id: str = "1.4.1") -> str:
    sub = make_submission([make_entry(unique_id=unique_id, authors=authors)])
    assert env.registry.provide_and_register(sub, documents_for(sub)).ok
    return unique_id


# ============================================================================================== history


def test_revoking_a_consent_keeps_its_history(env: Env) -> None:
    first = env.consents.grant_consent(SSIN_A, by=GP)
    assert first.is_open and first.value.registered_by == GP_NIHII and first.value.type is ConsentType.RETROSPECTIVE
    env.clock.now += timedelta(days=10)
    revoked = env.consents.revoke_consent(SSIN_A, by=PATIENT_A)
    env.clock.now += timedelta(days=10)
    env.consents.grant_consent(PID_A, by=PATIENT_A, type="prospective")  # an XDS CX works as well as an SSIN
    assert revoked.id == first.id and not revoked.is_open
    assert revoked.closed_by == PATIENT_A.subject and revoked.closed_on == TODAY + timedelta(days=10)
    records = env.consents.records(RecordKind.CONSENT, SSIN_A)
    assert [(r.value.signed, r.value.revoked, r.is_open) for r in records] == [
        (TODAY, TODAY + timedelta(days=10), False),
        (TODAY + timedelta(days=20), None, True),
    ]
    history = env.consents.history(SSIN_A)
    assert [(h.kind, h.change, h.by, h.by_id) for h in history] == [
        (RecordKind.CONSENT, "grant", GP.subject, GP_NIHII),
        (RecordKind.CONSENT, "revoke", PATIENT_A.subject, SSIN_A),
        (RecordKind.CONSENT, "grant", PATIENT_A.subject, SSIN_A),
    ]
    assert history[2].details["type"] == "prospective"
    state = env.consents.patient_state(SSIN_A)
    assert state.active_consent(TODAY + timedelta(days=5)) is not None
    assert state.active_consent(TODAY + timedelta(days=15)) is None
    assert state.active_consent(TODAY + timedelta(days=20)) is not None
    since = env.consents.history(SSIN_A, since=NOW + timedelta(days=15))
    assert [h.change for h in since] == ["grant"]


def test_a_link_is_never_edited_revoke_then_declare(env: Env) -> None:
    env.consents.grant_consent(SSIN_A, by=PATIENT_A)
    first = env.consents.declare_link(SSIN_A, GP_NIHII, "gpconsultation", "eidreading", by=GP)
    with pytest.raises(PolicyError) as info:
        env.consents.declare_link(SSIN_A, GP_NIHII, "gpconsultation", "sisreading", by=GP)
    assert info.value.refusal is Refusal.INVALID and "revoke it" in str(info.value)
    other_type = env.consents.declare_link(SSIN_A, GP_NIHII, TherapeuticLinkType.GMD, ProofType.EIDSIGNING, by=GP)
    (revoked,) = env.consents.revoke_link(SSIN_A, GP_NIHII, by=GP, type="gpconsultation")
    second = env.consents.declare_link(SSIN_A, GP_NIHII, "gpconsultation", "sisreading", by=GP)
    assert revoked.id == first.id and revoked.value.revoked == TODAY
    links = env.consents.records(RecordKind.LINK, SSIN_A)
    assert [(r.id, r.value.proof.value, r.is_open) for r in links] == [
        (first.id, "eidreading", False),
        (other_type.id, "eidsigning", True),
        (second.id, "sisreading", True),
    ]
    assert env.consents.patient_state(SSIN_A).valid_link(GP_NIHII, TODAY, 15) is not None


def test_a_lifted_exclusion_ends_the_day_before(env: Env) -> None:
    env.consents.add_exclusion(SSIN_A, NURSE_NIHII, by=PATIENT_A)
    env.clock.now += timedelta(days=3)
    (lifted,) = env.consents.remove_exclusion(SSIN_A, NURSE_NIHII, by=PATIENT_A)
    assert lifted.value.end == TODAY + timedelta(days=2)
    state = env.consents.patient_state(SSIN_A)
    assert state.exclusion_of(NURSE_NIHII, TODAY + timedelta(days=2)) is not None
    assert state.exclusion_of(NURSE_NIHII, TODAY + timedelta(days=3)) is None
    assert [h.change for h in env.consents.history(SSIN_A)] == ["add", "remove"]


def test_a_newer_access_right_replaces_the_older_one_in_state_but_not_in_history(env: Env) -> None:
    uid = published(env)
    env.consents.set_access_right(uid, NURSE_NIHII, True, by=GP)
    env.consents.set_access_right(uid, NURSE_NIHII, False, by=GP)
    state = env.consents.patient_state(SSIN_A)
    assert [(r.professional_nihii, r.allow) for r in state.rights_for(uid, NURSE_NIHII)] == [(NURSE_NIHII, False)]
    records = env.consents.records(RecordKind.ACCESS_RIGHT, SSIN_A)
    assert [(r.value.allow, r.is_open) for r in records] == [(True, False), (False, True)]
    assert [h.change for h in env.consents.history(SSIN_A)] == ["allow", "replace", "disallow"]
    env.consents.remove_access_right(uid, NURSE_NIHII, by=GP)
    assert env.consents.patient_state(SSIN_A).access_rights == ()


def test_hold_back_and_release(env: Env) -> None:
    uid = published(env)
    env.consents.hold_back(uid, by=GP, until=date(2025, 1, 31))
    assert env.consents.patient_state(SSIN_A).held_back_on(uid, TODAY) is not None
    env.consents.hold_back(uid, by=GP, until=None)  # replaces: for good
    (hold,) = env.consents.patient_state(SSIN_A).held_back
    assert hold.until is None
    env.consents.release(uid, by=GP)
    assert env.consents.patient_state(SSIN_A).held_back == ()
    assert len(env.consents.records(RecordKind.HOLD, SSIN_A)) == 2


def test_the_professionals_registry_keeps_former_details(env: Env) -> None:
    env.consents.register_professional(GP_NIHII, by=OPERATOR, given="Sophie", family="Claes")
    env.consents.register_professional(GP_NIHII, by=OPERATOR, given="Sophie", family="Claes-Peeters")
    found = env.consents.professional("1-23456-25-004")
    assert found is not None and found.family == "Claes-Peeters" and found.profession == "persphysician"
    assert found.author_person.startswith(f"{GP_NIHII}^Claes-Peeters^Sophie^")
    assert [p.nihii for p in env.consents.professionals()] == [GP_NIHII]
    assert [h.change for h in env.consents.professionals_history()] == ["register", "replace", "register"]
    assert env.consents.profession_of(NURSE_NIHII) is None


def test_the_patient_state_takes_the_birth_date_from_the_patient_registry(env: Env) -> None:
    assert env.consents.patient_state(SSIN_A).birth_date == date(1973, 3, 29)
    assert env.consents.patient_state(MINOR).birth_date is None
    assert env.consents.patient_state(MINOR).age_on(TODAY) == 7  # from the SSIN


# ============================================================================================== triggers


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE sharing_consents SET signed = '2020-01-01'",
        "UPDATE sharing_consents SET type = 'local', closed_at = 'x', closed_by = 'x', closed_on = '2024-12-24'",
        "UPDATE sharing_consents SET closed_at = NULL",
        "DELETE FROM sharing_consents",
        "UPDATE policy_history SET change = 'grant'",
        "DELETE FROM policy_history",
    ],
)
def test_registry_rows_cannot_be_changed_behind_the_registrys_back(env: Env, statement: str) -> None:
    env.consents.grant_consent(SSIN_A, by=PATIENT_A)
    env.consents.revoke_consent(SSIN_A, by=PATIENT_A)  # closed once
    env.consents.grant_consent(SSIN_A, by=PATIENT_A)
    conn = sqlite3.connect(env.store.db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match=r"keeps its history|append-only"):
            conn.execute(statement)
    finally:
        conn.close()
    assert len(env.consents.records(RecordKind.CONSENT, SSIN_A)) == 2
    assert len(env.consents.history(SSIN_A)) == 3


def test_a_record_is_closed_only_once(env: Env) -> None:
    record = env.consents.grant_consent(SSIN_A, by=PATIENT_A)
    with env.store.write() as w:
        w.close_policy_record("sharing_consents", record.id, closed_at="t", closed_by="x", closed_on="2024-12-24")
    with pytest.raises(KeyError), env.store.write() as w:
        w.close_policy_record("sharing_consents", record.id, closed_at="t2", closed_by="y", closed_on="2024-12-25")
    with pytest.raises(ValueError, match="no column"), env.store.write() as w:
        w.add_policy_record("sharing_consents", {"patient": SSIN_A, "evil": 1})


# ============================================================================================== who may do what


def _consented(env: Env) -> None:
    env.consents.grant_consent(SSIN_A, by=PATIENT_A)


def _minor_registered(env: Env) -> None:
    env.consents.add_representative(MINOR, PARENT, by=OPERATOR)


Setup = Callable[[Env], None]
Change = Callable[[Env], object]


def _nothing(env: Env) -> None:
    return None


REFUSED: list[tuple[str, Setup, Change, Refusal, str]] = [
    ("consent by a nurse", _nothing, lambda e: e.consents.grant_consent(SSIN_A, by=NURSE), Refusal.NOT_ALLOWED,
     "physicians and pharmacists"),
    ("consent by another patient", _nothing, lambda e: e.consents.grant_consent(SSIN_A, by=PATIENT_B),
     Refusal.NOT_ALLOWED, "only the patient concerned"),
    ("consent by a minor", _minor_registered, lambda e: e.consents.grant_consent(MINOR, by=MINOR_SELF),
     Refusal.NOT_ALLOWED, "under 16"),
    ("consent by an unregistered parent", _nothing, lambda e: e.consents.grant_consent(MINOR, by=PARENT_OF_MINOR),
     Refusal.NOT_ALLOWED, "not registered as a legal representative"),
    ("consent by a laboratory", _nothing, lambda e: e.consents.grant_consent(SSIN_A, by=LAB), Refusal.NOT_ALLOWED,
     "only a hospital"),
    ("consent by an unauthenticated GP", _nothing,
     lambda e: e.consents.grant_consent(SSIN_A, by=Caller("Dr X", "persphysician", nihii=GP_NIHII)),
     Refusal.NOT_ALLOWED, "not authenticated"),
    ("a second consent", _consented, lambda e: e.consents.grant_consent(SSIN_A, by=GP), Refusal.INVALID,
     "already has an active"),
    ("a consent signed tomorrow", _nothing,
     lambda e: e.consents.grant_consent(SSIN_A, by=GP, signed=TODAY + timedelta(days=1)), Refusal.INVALID,
     "in the future"),
    ("an unknown consent type", _nothing, lambda e: e.consents.grant_consent(SSIN_A, by=GP, type="forever"),
     Refusal.INVALID, "unknown ConsentType"),
    ("revoking no consent", _nothing, lambda e: e.consents.revoke_consent(SSIN_A, by=PATIENT_A), Refusal.NOT_FOUND,
     "no consent to revoke"),
    ("revoking by a nurse", _consented, lambda e: e.consents.revoke_consent(SSIN_A, by=NURSE), Refusal.NOT_ALLOWED,
     "may not revoke"),
    ("exclusion by a GP", _nothing, lambda e: e.consents.add_exclusion(SSIN_A, NURSE_NIHII, by=GP),
     Refusal.NOT_ALLOWED, "only the patient"),
    ("exclusion by a parent of an adult", _nothing,
     lambda e: e.consents.add_exclusion(SSIN_A, NURSE_NIHII, by=Caller("p", "representative", ssin=PARENT,
                                                                       represents=SSIN_A, authenticated=True)),
     Refusal.NOT_ALLOWED, "not registered as a legal representative"),
    ("lifting no exclusion", _nothing, lambda e: e.consents.remove_exclusion(SSIN_A, NURSE_NIHII, by=PATIENT_A),
     Refusal.NOT_FOUND, "is not excluded"),
    ("a link declared for somebody else", _consented,
     lambda e: e.consents.declare_link(SSIN_A, NURSE_NIHII, "gpconsultation", "eidreading", by=GP),
     Refusal.NOT_ALLOWED, "in their own name"),
    ("a link declared by the patient", _consented,
     lambda e: e.consents.declare_link(SSIN_A, GP_NIHII, "gpconsultation", "eidreading", by=PATIENT_A),
     Refusal.NOT_ALLOWED, "in their own name"),
    ("a link without consent", _nothing,
     lambda e: e.consents.declare_link(SSIN_A, GP_NIHII, "gpconsultation", "eidreading", by=GP),
     Refusal.NO_CONSENT, "needs one"),
    ("a link of an unknown proof", _consented,
     lambda e: e.consents.declare_link(SSIN_A, GP_NIHII, "gpconsultation", "telepathy", by=GP), Refusal.INVALID,
     "unknown ProofType"),
    ("a link ending before it starts", _consented,
     lambda e: e.consents.declare_link(SSIN_A, GP_NIHII, "gpconsultation", "eidreading", by=GP,
                                       end=TODAY - timedelta(days=1)), Refusal.INVALID, "ends before it starts"),
    ("revoking another professional's link", _consented,
     lambda e: e.consents.revoke_link(SSIN_A, GP_NIHII, by=NURSE), Refusal.NOT_ALLOWED, "revoked by its"),
    ("revoking no link", _consented, lambda e: e.consents.revoke_link(SSIN_A, GP_NIHII, by=GP), Refusal.NOT_FOUND,
     "no therapeutic link"),
    ("an access right by a non-author", _nothing,
     lambda e: e.consents.set_access_right(published(e), NURSE_NIHII, True, by=SPECIALIST), Refusal.NOT_ALLOWED,
     "only an author"),
    ("an access right on an unknown document", _nothing,
     lambda e: e.consents.set_access_right("9.9.9", NURSE_NIHII, True, by=SPECIALIST), Refusal.NOT_ALLOWED,
     "only an author"),
    ("a hold by the patient", _nothing, lambda e: e.consents.hold_back(published(e), by=PATIENT_A, until=None),
     Refusal.NOT_ALLOWED, "only an author"),
    ("a hold ending today", _nothing, lambda e: e.consents.hold_back(published(e), by=GP, until=TODAY),
     Refusal.INVALID, "that day has come"),
    ("releasing what is not held", _nothing, lambda e: e.consents.release(published(e), by=GP), Refusal.NOT_FOUND,
     "not held back"),
    ("a professional registered by a GP", _nothing,
     lambda e: e.consents.register_professional(NURSE_NIHII, by=GP), Refusal.NOT_ALLOWED, "only the hub operator"),
    ("a hospital registered as a professional", _nothing,
     lambda e: e.consents.register_professional(HOSPITAL_NIHII, by=OPERATOR), Refusal.INVALID, "profession"),
    ("a representative registered by a parent", _nothing,
     lambda e: e.consents.add_representative(MINOR, PARENT, by=PARENT_OF_MINOR), Refusal.NOT_ALLOWED,
     "only the hub operator"),
    ("a representative of an adult", _nothing, lambda e: e.consents.add_representative(SSIN_A, PARENT, by=OPERATOR),
     Refusal.INVALID, "under 16"),
    ("ending no representation", _nothing,
     lambda e: e.consents.remove_representative(MINOR, PARENT, by=OPERATOR), Refusal.NOT_FOUND, "no such"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "setup", "change", "refusal", "words"), REFUSED, ids=[r[0] for r in REFUSED])
def test_who_may_do_what_refusals(
    env: Env, name: str, setup: Setup, change: Change, refusal: Refusal, words: str
) -> None:
    setup(env)
    before = len(env.consents.history(SSIN_A)) + len(env.consents.history(MINOR))
    with pytest.raises(PolicyError) as info:
        change(env)
    assert info.value.refusal is refusal
    assert words in str(info.value)
    assert len(env.consents.history(SSIN_A)) + len(env.consents.history(MINOR)) == before
    last = env.audit.query()[-1]
    assert not last.allowed and last.rule == refusal.value


ALLOWED: list[tuple[str, Setup, Change]] = [
    ("consent by the patient", _nothing, lambda e: e.consents.grant_consent(SSIN_A, by=PATIENT_A)),
    ("consent by a GP", _nothing, lambda e: e.consents.grant_consent(SSIN_A, by=GP)),
    ("consent by a pharmacist", _nothing, lambda e: e.consents.grant_consent(SSIN_A, by=PHARMACIST)),
    ("consent by a hospital", _nothing, lambda e: e.consents.grant_consent(SSIN_A, by=HOSPITAL)),
    ("consent for a minor by their parent", _minor_registered,
     lambda e: e.consents.grant_consent(MINOR, by=PARENT_OF_MINOR)),
    ("revoking by a pharmacist", _consented, lambda e: e.consents.revoke_consent(SSIN_A, by=PHARMACIST)),
    ("exclusion by the patient", _nothing, lambda e: e.consents.add_exclusion(SSIN_A, NURSE_NIHII, by=PATIENT_A)),
    ("a hospital link by the hospital", _consented,
     lambda e: e.consents.declare_link(SSIN_A, HOSPITAL_NIHII, "hospitalstay", "sisreading", by=HOSPITAL)),
    ("an access right by an author", _nothing,
     lambda e: e.consents.set_access_right(published(e, authors=(DR_BENALI, DR_CLAES)), NURSE_NIHII, True, by=GP)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "setup", "change"), ALLOWED, ids=[a[0] for a in ALLOWED])
def test_who_may_do_what_allowed(env: Env, name: str, setup: Setup, change: Change) -> None:
    setup(env)
    change(env)
    last = env.audit.query()[-1]
    assert last.allowed and last.rule is None


def test_a_patient_revokes_a_link_and_the_audit_names_the_intrahub_operation(env: Env) -> None:
    env.consents.grant_consent(SSIN_A, by=PATIENT_A)
    env.consents.declare_link(SSIN_A, GP_NIHII, "gpconsultation", "eidreading", by=GP)
    env.consents.revoke_link(SSIN_A, GP_NIHII, by=PATIENT_A)
    assert [e.transaction for e in env.audit.for_patient(SSIN_A)] == [
        "PutPatientConsent",
        "PutTherapeuticLink",
        "RevokeTherapeuticLink",
    ]


def test_an_excluded_professional_cannot_declare_a_link(env: Env) -> None:
    env.consents.grant_consent(SSIN_A, by=PATIENT_A)
    env.consents.add_exclusion(SSIN_A, GP_NIHII, by=PATIENT_A)
    with pytest.raises(PolicyError, match="excluded"):
        env.consents.declare_link(SSIN_A, GP_NIHII, "gpconsultation", "eidreading", by=GP)


def test_malformed_identifiers_are_refused(env: Env) -> None:
    with pytest.raises(InvalidIdentifier):
        env.consents.grant_consent("73032929896", by=PATIENT_A)
    with pytest.raises(InvalidIdentifier):
        env.consents.add_exclusion(SSIN_A, "12345626004", by=PATIENT_A)


# ============================================================================================== rendering and facts


def test_records_and_history_mask_ssins(env: Env) -> None:
    record = env.consents.grant_consent(SSIN_A, by=PATIENT_A)
    (event,) = env.consents.history(SSIN_A)
    for text in (repr(record), repr(event), str(event)):
        assert SSIN_A not in text and "73*******95" in text
    with pytest.raises(PolicyError) as info:
        env.consents.grant_consent(SSIN_A, by=PATIENT_B)
    assert SSIN_A not in str(info.value) and SSIN_B not in str(info.value)


def test_document_facts_read_the_entry() -> None:
    entry = make_entry(class_code="labresult", confidentiality=("N", "R"), authors=(DR_CLAES, "Doe^John", DR_BENALI))
    facts = document_facts(entry)
    assert (facts.patient, facts.class_code, facts.confidentiality) == (SSIN_A, "labresult", "R")
    assert facts.author_nihiis == (GP_NIHII, SPEC_NIHII) == author_nihiis(entry)
    other_authority = make_entry(authors=(f"{GP_NIHII}^Claes^Sophie^^^^^^&1.2.3&ISO",))
    assert author_nihiis(other_authority) == ()
    assert document_facts(make_entry(confidentiality=("X",))).confidentiality == "V"  # unknown code: fail closed

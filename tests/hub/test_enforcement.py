"""Consent enforcement at the registry level: each rule on publish, find, retrieve and status update, with the audit.

A Registry with an Enforcer over a fresh SqliteStore; Callers are built directly (as the security layer would).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from rsb_connector.errors import QueryError
from rsb_connector.hub.audit import AuditTrail
from rsb_connector.hub.consent import ConsentRegistry, PolicyError
from rsb_connector.hub.enforcement import LOCAL_POLICY_RESTRICTION, Enforcer
from rsb_connector.hub.registry import ANONYMOUS, HUB_OPERATOR_ROLE, Caller, Registry
from rsb_connector.hub.store import SqliteStore
from rsb_connector.metadata.model import (
    Association,
    AssociationType,
    AvailabilityStatus,
    DocumentEntry,
    Submission,
)
from rsb_connector.policy import ActorKind
from rsb_connector.query import (
    FindDocuments,
    FindSubmissionSets,
    GetAll,
    GetAssociations,
    GetDocuments,
    GetDocumentsAndAssociations,
    GetRelatedDocuments,
    GetSubmissionSetAndContents,
    GetSubmissionSets,
    Query,
    ReturnType,
)
from rsb_connector.xds.constants import STATUS_FAILURE, STATUS_PARTIAL_SUCCESS, STATUS_SUCCESS

try:  # tests/hub as a package (tests.hub.conftest) or as a rootdir-relative folder
    from .conftest import DR_BENALI, DR_CLAES, PID_A, PID_B, REPO, documents_for, make_entry, make_submission
except ImportError:
    from conftest import (  # type: ignore[no-redef]
        DR_BENALI,
        DR_CLAES,
        PID_A,
        PID_B,
        REPO,
        documents_for,
        make_entry,
        make_submission,
    )

SSIN_A = PID_A.split("^")[0]  # 73032929895, born 1973
SSIN_B = PID_B.split("^")[0]
MINOR = "17073003384"  # born 2017-07-30
PID_MINOR = f"{MINOR}^^^&2.16.840.1.113883.3.6777.5.1&ISO"
PARENT = "82121210976"

GP_NIHII = "12345625004"
SPEC_NIHII = "14087170580"
NURSE_NIHII = "43120755401"
PHYSIO_NIHII = "51834424527"

GP = Caller("Dr Sophie Claes", "persphysician", nihii=GP_NIHII, authenticated=True)
SPECIALIST = Caller("Dr Karim Benali", "persphysician", nihii=SPEC_NIHII, authenticated=True)
NURSE = Caller("Els De Smet", "persnurse", nihii=NURSE_NIHII, authenticated=True)
PHYSIO = Caller("Thomas Wouters", "persphysiotherapist", nihii=PHYSIO_NIHII, authenticated=True)
PATIENT_A = Caller("patient A", "patient", ssin=SSIN_A, authenticated=True)
PATIENT_B = Caller("patient B", "patient", ssin=SSIN_B, authenticated=True)
OPERATOR = Caller("hub operator", HUB_OPERATOR_ROLE, authenticated=True)

GLASS = "Patient unconscious at the emergency department"
NOW = datetime(2024, 12, 24, 15, 30, tzinfo=UTC)
TODAY = date(2024, 12, 24)


class Clock:
    """A clock tests can move."""

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
    enforcer: Enforcer
    registry: Registry

    def publish(self, *entries: DocumentEntry, caller: Caller = GP, **kwargs: object) -> dict[str, str]:
        sub = make_submission(entries, **kwargs)  # type: ignore[arg-type]
        outcome = self.registry.provide_and_register(sub, documents_for(sub), caller=caller)
        assert outcome.ok, [str(p) for p in outcome.problems]
        return dict(outcome.registered)

    def counts(self) -> tuple[int, int, int, int]:
        with self.store.read() as r:
            return (r.count("entries"), r.count("submission_sets"), r.count("associations"), self.store.blob_count())

    def find(self, caller: Caller, patient: str = PID_A) -> list[str]:
        result = self.registry.stored_query(FindDocuments(patient_id=patient), caller=caller)
        return sorted(e.unique_id or "" for e in result.entries)


def build_env(data_dir: Path, *, max_results: int = 50, clock: Clock | None = None) -> Env:
    store = SqliteStore.open(data_dir)
    clock = clock or Clock(NOW)
    audit = AuditTrail(store, clock=clock)
    consents = ConsentRegistry(store, clock=clock, audit=audit)
    enforcer = Enforcer(consents, audit, clock=clock)
    registry = Registry(store, max_results=max_results, clock=clock, enforcer=enforcer)
    for pid in (PID_A, PID_B, PID_MINOR):
        registry.register_patient(pid, {"note": "test patient"})
    for caller in (GP, SPECIALIST, NURSE, PHYSIO):
        consents.register_professional(caller.nihii or "", by=OPERATOR, family=caller.subject)
    return Env(store, clock, audit, consents, enforcer, registry)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = build_env(tmp_path / "hub")
    yield e
    e.store.close()


def consent(env: Env, ssin: str = SSIN_A) -> None:
    env.consents.grant_consent(ssin, by=Caller("patient", "patient", ssin=ssin, authenticated=True))


def link(env: Env, caller: Caller, ssin: str = SSIN_A, **kwargs: object) -> None:
    env.consents.declare_link(ssin, caller.nihii or "", "gpconsultation", "eidreading", by=caller, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def shared(env: Env) -> Env:
    """Patient A consented; the GP and the nurse have links with them."""
    consent(env)
    link(env, GP)
    link(env, NURSE)
    return env


# ============================================================================================== caller → actor


@pytest.mark.parametrize(
    ("caller", "kind", "profession"),
    [
        (GP, ActorKind.PROFESSIONAL, "persphysician"),
        (Caller("x", None, nihii=NURSE_NIHII, authenticated=True), ActorKind.PROFESSIONAL, "persnurse"),
        (PATIENT_A, ActorKind.PATIENT, None),
        (Caller("p", "patient", ssin=PARENT, represents=MINOR, authenticated=True), ActorKind.REPRESENTATIVE, None),
        (Caller("p", "representative", ssin=PARENT, represents=MINOR), ActorKind.REPRESENTATIVE, None),
        (Caller("h", "orghospital", nihii="71000436", authenticated=True), ActorKind.ORGANISATION, None),
        (ANONYMOUS, ActorKind.ORGANISATION, None),
    ],
)
def test_caller_maps_to_the_engines_actor(caller: Caller, kind: ActorKind, profession: str | None) -> None:
    actor = caller.actor()
    assert actor.kind is kind
    assert actor.authenticated is caller.authenticated
    if kind is ActorKind.PROFESSIONAL:
        assert actor.profession_code == profession


def test_profession_comes_from_the_professionals_registry_when_the_role_is_silent(env: Env) -> None:
    env.consents.register_professional(GP_NIHII, by=OPERATOR, profession="persdentist")
    assert env.enforcer.actor(Caller("x", None, nihii=GP_NIHII, authenticated=True)).profession_code == "persdentist"
    assert env.enforcer.actor(GP).profession_code == "persphysician"  # the certificate's role wins


# ============================================================================================== ITI-41


def _no_consent(env: Env) -> Caller:
    return GP


def _excluded(env: Env) -> Caller:
    consent(env)
    link(env, GP)
    env.consents.add_exclusion(SSIN_A, GP_NIHII, by=PATIENT_A)
    return GP


def _no_link(env: Env) -> Caller:
    consent(env)
    return GP


def _expired_link(env: Env) -> Caller:
    consent(env)
    link(env, GP, start=date(2023, 1, 2), end=date(2023, 6, 30))
    return GP


def _default_validity_over(env: Env) -> Caller:
    consent(env)
    link(env, GP, start=date(2023, 9, 1))  # 15 months for a physician: last day 2024-11-30
    return GP


def _revoked_link(env: Env) -> Caller:
    consent(env)
    link(env, GP)
    env.consents.revoke_link(SSIN_A, GP_NIHII, by=GP)
    return GP


def _revoked_consent(env: Env) -> Caller:
    consent(env)
    link(env, GP)
    env.consents.revoke_consent(SSIN_A, by=PATIENT_A)
    return GP


def _not_author(env: Env) -> Caller:
    consent(env)
    link(env, SPECIALIST)
    return SPECIALIST  # publishes a document authored by Dr Claes


def _anonymous(env: Env) -> Caller:
    consent(env)
    return ANONYMOUS


def _patient(env: Env) -> Caller:
    consent(env)
    return PATIENT_A


def _short_glass(env: Env) -> Caller:
    consent(env)
    return replace(GP, break_the_glass="urgent")


@pytest.mark.parametrize(
    ("setup", "rule", "words"),
    [
        (_no_consent, "CONSENT", "has not given a sharing consent"),
        (_revoked_consent, "CONSENT", "revoked their sharing consent"),
        (_excluded, "EXCLUSION", "has excluded"),
        (_no_link, "THERAPEUTIC_LINK", "no therapeutic link has been declared"),
        (_expired_link, "THERAPEUTIC_LINK", "expired after 2023-06-30"),
        (_default_validity_over, "THERAPEUTIC_LINK", "expired after 2024-11-30"),
        (_revoked_link, "THERAPEUTIC_LINK", "was revoked"),
        (_not_author, "AUTHOR", "does not name them among its authors"),
        (_anonymous, "NOT_AUTHENTICATED", "not authenticated"),
        (_patient, "PATIENT_SELF", "do not publish"),
        (_short_glass, "BREAK_THE_GLASS_REASON", "at least 10"),
    ],
)
def test_publish_is_refused_by_each_rule_and_nothing_is_stored(env: Env, setup, rule: str, words: str) -> None:  # type: ignore[no-untyped-def]
    caller = setup(env)
    sub = make_submission([make_entry(authors=(DR_CLAES,)), make_entry("Document02", authors=(DR_CLAES,))])
    before = env.counts()
    outcome = env.registry.provide_and_register(sub, documents_for(sub), caller=caller)
    assert outcome.status == STATUS_FAILURE
    assert [p.code for p in outcome.problems] == [LOCAL_POLICY_RESTRICTION]
    problem = outcome.problems[0]
    assert problem.path == f"Policy[{rule}]"
    assert words in problem.message
    assert "Fix:" in problem.message
    assert env.counts() == before
    (event,) = env.audit.query(action="publish")
    assert not event.allowed
    assert event.rule is not None and event.rule.upper().replace("-", "_") == rule
    assert event.transaction == "ITI-41"
    assert sorted(event.documents) == sorted(e.unique_id or "" for e in sub.entries)


def test_publish_allowed_with_consent_and_link_is_stored_and_audited(shared: Env) -> None:
    ids = shared.publish(make_entry(authors=(DR_CLAES,)))
    assert ids["Document01"].startswith("urn:uuid:")
    (event,) = shared.audit.query(action="publish")
    assert event.allowed and event.patient == SSIN_A and event.who == GP.subject and event.who_nihii == GP_NIHII
    assert "gpconsultation therapeutic link" in event.reason


def test_publish_allowed_by_policy_but_refused_by_xds_rules_is_audited_as_not_stored(shared: Env) -> None:
    entry = make_entry(authors=(DR_CLAES,))
    sub = make_submission([entry], relations=[(AssociationType.RPLC, "Document01", "urn:uuid:" + str(uuid.uuid4()))])
    outcome = shared.registry.provide_and_register(sub, documents_for(sub), caller=GP)
    assert not outcome.ok and outcome.problems[0].code == "XDSReplaceFailed"
    (event,) = shared.audit.query(action="publish")
    assert event.allowed and "nothing was stored" in event.reason and "XDSReplaceFailed" in event.reason


def test_break_the_glass_publish_is_allowed_and_flagged(env: Env) -> None:
    consent(env)
    env.publish(make_entry(authors=(DR_CLAES,)), caller=replace(GP, break_the_glass=GLASS))
    (event,) = env.audit.query(action="publish")
    assert event.allowed and event.break_the_glass == GLASS


def test_a_replacement_target_the_publisher_may_not_read_is_answered_as_unregistered(shared: Env) -> None:
    ids = shared.publish(make_entry(authors=(DR_CLAES,), confidentiality=("V",)))
    link(shared, SPECIALIST)
    new = make_entry(authors=(DR_BENALI,))
    sub = make_submission([new], relations=[(AssociationType.RPLC, "Document01", ids["Document01"])], author=DR_BENALI)
    outcome = shared.registry.provide_and_register(sub, documents_for(sub), caller=SPECIALIST)
    assert [p.code for p in outcome.problems] == ["XDSReplaceFailed"]
    assert "is not registered" in outcome.problems[0].message


def test_only_an_author_may_replace_a_document(shared: Env) -> None:
    ids = shared.publish(make_entry(authors=(DR_CLAES,)))
    link(shared, SPECIALIST)
    sub = make_submission(
        [make_entry(authors=(DR_BENALI,))],
        relations=[(AssociationType.RPLC, "Document01", ids["Document01"])],
        author=DR_BENALI,
    )
    outcome = shared.registry.provide_and_register(sub, documents_for(sub), caller=SPECIALIST)
    assert [(p.code, p.path) for p in outcome.problems] == [(LOCAL_POLICY_RESTRICTION, "Policy[AUTHOR]")]
    replaced = shared.registry.stored_query(GetDocuments(entry_uuids=(ids["Document01"],)), caller=GP).entries
    assert replaced[0].availability_status is AvailabilityStatus.APPROVED
    sub = make_submission(
        [make_entry(authors=(DR_CLAES,))], relations=[(AssociationType.RPLC, "Document01", ids["Document01"])]
    )
    assert shared.registry.provide_and_register(sub, documents_for(sub), caller=GP).ok


# ============================================================================================== ITI-18


def _fixed(submission: Submission, tag: str) -> Submission:
    """The submission with deterministic urn:uuid: ids (so two stores hold identical objects)."""
    ids = {submission.submission_set.entry_uuid, *(e.entry_uuid for e in submission.entries)}
    ids |= {a.entry_uuid for a in submission.associations}
    mapping = {i: f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, tag + i)}" for i in ids}

    def m(value: str) -> str:
        return mapping.get(value, value)

    return Submission(
        submission_set=replace(submission.submission_set, entry_uuid=m(submission.submission_set.entry_uuid)),
        entries=[replace(e, entry_uuid=m(e.entry_uuid)) for e in submission.entries],
        associations=[
            replace(a, entry_uuid=m(a.entry_uuid), source=m(a.source), target=m(a.target))
            for a in submission.associations
        ],
        document_ids=[m(d) for d in submission.document_ids],
    )


def _visible_and_hidden(which: str) -> tuple[list[DocumentEntry], list[DocumentEntry]]:
    visible = [
        make_entry("Document01", unique_id="1.2.3.1", class_code="labresult", authors=(DR_CLAES,)),
        make_entry("Document02", unique_id="1.2.3.2", class_code="sumehr", authors=(DR_CLAES,)),
    ]
    if which == "nurse":  # the access matrix keeps a nurse out of reports and genetic data, V keeps all out
        hidden = [
            make_entry("Document03", unique_id="1.2.3.3", class_code="report", authors=(DR_CLAES,)),
            make_entry("Document04", unique_id="1.2.3.4", class_code="genetic", authors=(DR_CLAES,)),
        ]
    else:  # the patient: a held-back document and a very restricted one
        hidden = [
            make_entry("Document03", unique_id="1.2.3.3", class_code="labresult", authors=(DR_CLAES,)),
            make_entry("Document04", unique_id="1.2.3.4", confidentiality=("V",), authors=(DR_CLAES,)),
        ]
    return visible, hidden


QUERIES: list[tuple[str, Query]] = [
    ("FindDocuments", FindDocuments(patient_id=PID_A)),
    ("FindDocuments-ObjectRef", FindDocuments(patient_id=PID_A, return_type=ReturnType.OBJECT_REF)),
    ("FindSubmissionSets", FindSubmissionSets(patient_id=PID_A)),
    ("GetAll", GetAll(patient_id=PID_A)),
]


def _queries_by_ids(ids: Sequence[str], sets: Sequence[str]) -> list[tuple[str, Query]]:
    return [
        ("GetDocuments", GetDocuments(entry_uuids=tuple(ids))),
        ("GetDocumentsAndAssociations", GetDocumentsAndAssociations(entry_uuids=tuple(ids))),
        ("GetAssociations", GetAssociations(entry_uuids=tuple(ids))),
        ("GetSubmissionSets", GetSubmissionSets(entry_uuids=tuple(ids))),
        *[
            (f"GetSubmissionSetAndContents[{i}]", GetSubmissionSetAndContents(entry_uuids=(s,)))
            for i, s in enumerate(sets)
        ],
        *[(f"GetRelatedDocuments[{i}]", GetRelatedDocuments(entry_uuids=(d,))) for i, d in enumerate(ids)],
    ]


@pytest.mark.parametrize("which", ["nurse", "patient"])
def test_find_leaves_out_forbidden_objects_as_if_they_were_not_stored(tmp_path: Path, which: str) -> None:
    full = build_env(tmp_path / "full")
    bare = build_env(tmp_path / "bare")
    visible, hidden = _visible_and_hidden(which)
    # the full store: set 1 holds a visible and a hidden document, set 2 only hidden ones, set 3 an addendum to a
    # visible document (APND from a hidden one); the bare store: only what stays visible
    sub1_full = _fixed(make_submission([visible[0], hidden[0]], unique_id="1.9.1"), "s1")
    sub1_bare = _fixed(make_submission([visible[0]], unique_id="1.9.1"), "s1")
    sub2_full = _fixed(make_submission([hidden[1]], unique_id="1.9.2", ss_id="SubmissionSet02"), "s2")
    sub3_full = _fixed(make_submission([visible[1]], unique_id="1.9.3", ss_id="SubmissionSet03"), "s3")
    for e in (full, bare):
        consent(e)
        link(e, GP)
        link(e, NURSE)
    for e, subs in ((full, [sub1_full, sub2_full, sub3_full]), (bare, [sub1_bare, sub3_full])):
        for sub in subs:
            assert e.registry.provide_and_register(sub, documents_for(sub), caller=GP).ok
    full.consents.hold_back("1.2.3.3", by=GP, until=date(2025, 1, 31))
    caller = NURSE if which == "nurse" else PATIENT_A
    ids = [e.entry_uuid for s in (sub1_full, sub2_full, sub3_full) for e in s.entries]
    sets = [s.submission_set.entry_uuid for s in (sub1_full, sub2_full, sub3_full)]
    try:
        for name, query in [*QUERIES, *_queries_by_ids(ids, sets)]:
            assert full.registry.stored_query(query, caller=caller) == bare.registry.stored_query(
                query, caller=caller
            ), name
        assert full.find(caller) == ["1.2.3.1", "1.2.3.2"]
        assert full.find(GP) == ["1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"]  # the author sees everything
    finally:
        full.store.close()
        bare.store.close()


def test_find_audits_one_event_per_patient_with_only_the_returned_documents(shared: Env) -> None:
    shared.publish(
        make_entry(unique_id="1.5.1", class_code="labresult", authors=(DR_CLAES,)),
        make_entry("Document02", unique_id="1.5.2", class_code="report", authors=(DR_CLAES,)),
    )
    assert shared.find(NURSE) == ["1.5.1"]
    (event,) = shared.audit.query(action="find")
    assert event.allowed and event.documents == ("1.5.1",) and event.patient == SSIN_A
    assert "1.5.2" not in str(event) and "left out" not in event.reason


def test_too_many_results_counts_visible_objects_only(tmp_path: Path) -> None:
    env = build_env(tmp_path / "hub", max_results=2)
    try:
        consent(env)
        link(env, GP)
        link(env, NURSE)
        for i in range(4):  # reports: invisible to a nurse
            env.publish(make_entry(unique_id=f"1.6.{i}", class_code="report", authors=(DR_CLAES,)))
        env.publish(make_entry(unique_id="1.6.10", class_code="labresult", authors=(DR_CLAES,)))
        env.publish(make_entry(unique_id="1.6.11", class_code="labresult", authors=(DR_CLAES,)))
        assert env.find(NURSE) == ["1.6.10", "1.6.11"]
        with pytest.raises(QueryError) as info:
            env.find(GP)
        assert info.value.code == "XDSTooManyResults"
        env.publish(make_entry(unique_id="1.6.12", class_code="labresult", authors=(DR_CLAES,)))
        with pytest.raises(QueryError) as info:
            env.find(NURSE)
        assert info.value.code == "XDSTooManyResults"
        assert "XDSTooManyResults" in env.audit.query(action="find")[-1].reason
    finally:
        env.store.close()


@pytest.mark.parametrize("caller", [ANONYMOUS, replace(GP, authenticated=False)])
def test_an_unauthenticated_caller_finds_nothing(shared: Env, caller: Caller) -> None:
    shared.publish(make_entry(authors=(DR_CLAES,)))
    assert shared.find(caller) == []
    assert shared.registry.stored_query(GetAll(patient_id=PID_A), caller=caller) == shared.registry.stored_query(
        GetAll(patient_id=PID_B), caller=GP
    )
    event = shared.audit.query(action="find")[0]
    assert not event.allowed and event.rule == "not-authenticated" and event.documents == ()


@pytest.mark.parametrize(
    ("caller", "rule"),
    [(SPECIALIST, "therapeutic-link"), (PATIENT_B, "patient-self"), (PHYSIO, "therapeutic-link")],
)
def test_a_patient_level_denial_finds_nothing_and_is_audited_with_its_rule(
    shared: Env, caller: Caller, rule: str
) -> None:
    shared.publish(make_entry(authors=(DR_CLAES,)))
    assert shared.find(caller) == []
    (event,) = shared.audit.query(action="find")
    assert not event.allowed and event.rule == rule and event.documents == ()


def test_an_author_finds_their_own_documents_without_a_link(shared: Env) -> None:
    shared.publish(make_entry(unique_id="1.7.1", authors=(DR_CLAES,)))
    shared.consents.revoke_link(SSIN_A, GP_NIHII, by=GP)
    assert shared.find(GP) == ["1.7.1"]


def test_a_wrong_break_the_glass_reason_refuses_the_find(shared: Env) -> None:
    with pytest.raises(QueryError) as info:
        shared.find(replace(SPECIALIST, break_the_glass="x" * 201))
    assert info.value.problems[0].path == "Policy[BREAK_THE_GLASS_REASON]"
    assert info.value.code == LOCAL_POLICY_RESTRICTION


# ============================================================================================== ITI-43


def test_a_forbidden_document_is_refused_exactly_like_an_unknown_one(shared: Env) -> None:
    shared.publish(make_entry(unique_id="1.8.1", class_code="report", authors=(DR_CLAES,)))
    forbidden = shared.registry.retrieve([(REPO, "1.8.1")], caller=NURSE)
    unknown = shared.registry.retrieve([(REPO, "1.8.999")], caller=NURSE)
    assert forbidden.status == unknown.status == STATUS_FAILURE
    assert forbidden.documents == unknown.documents == []
    (f,), (u,) = forbidden.problems, unknown.problems
    assert (f.code, f.path, f.severity) == (u.code, u.path, u.severity)
    assert (f.code, f.path) == ("XDSDocumentUniqueIdError", "DocumentRequest[0].DocumentUniqueId")
    assert f.message.replace("1.8.1", "ID") == u.message.replace("1.8.999", "ID")


def test_retrieve_keeps_partial_success_and_audits_each_document(shared: Env) -> None:
    shared.publish(
        make_entry(unique_id="1.8.10", class_code="labresult", authors=(DR_CLAES,)),
        make_entry("Document02", unique_id="1.8.11", class_code="report", authors=(DR_CLAES,)),
    )
    outcome = shared.registry.retrieve([(REPO, "1.8.10"), (REPO, "1.8.11"), (REPO, "1.8.12")], caller=NURSE)
    assert outcome.status == STATUS_PARTIAL_SUCCESS
    assert [d.unique_id for d in outcome.documents] == ["1.8.10"]
    assert [p.code for p in outcome.problems] == ["XDSDocumentUniqueIdError"] * 2
    events = shared.audit.query(action="read")
    assert [(e.documents, e.allowed, e.rule) for e in events] == [
        (("1.8.10",), True, None),
        (("1.8.11",), False, "access-matrix"),
        (("1.8.12",), False, None),
    ]
    assert events[0].patient == events[1].patient == SSIN_A and events[2].patient is None
    assert shared.registry.retrieve([(REPO, "1.8.11")], caller=GP).ok


def test_break_the_glass_read_is_allowed_and_audited_with_its_reason(shared: Env) -> None:
    shared.publish(make_entry(unique_id="1.8.20", authors=(DR_CLAES,)))
    assert not shared.registry.retrieve([(REPO, "1.8.20")], caller=SPECIALIST).documents
    glass = replace(SPECIALIST, break_the_glass=GLASS)
    assert shared.registry.retrieve([(REPO, "1.8.20")], caller=glass).ok
    denied, allowed = shared.audit.query(action="read")
    assert (denied.allowed, denied.rule, denied.break_the_glass) == (False, "therapeutic-link", None)
    assert (allowed.allowed, allowed.break_the_glass) == (True, GLASS)
    assert "break-the-glass" in allowed.reason
    assert "BREAK-THE-GLASS" in str(allowed)


def test_break_the_glass_does_not_open_an_exclusion(shared: Env) -> None:
    shared.publish(make_entry(unique_id="1.8.30", authors=(DR_CLAES,)))
    shared.consents.add_exclusion(SSIN_A, SPEC_NIHII, by=PATIENT_A)
    outcome = shared.registry.retrieve([(REPO, "1.8.30")], caller=replace(SPECIALIST, break_the_glass=GLASS))
    assert outcome.status == STATUS_FAILURE
    (event,) = shared.audit.query(action="read")
    assert event.rule == "exclusion" and event.break_the_glass is None


def test_a_wrong_break_the_glass_reason_refuses_the_retrieve(shared: Env) -> None:
    shared.publish(make_entry(unique_id="1.8.40", authors=(DR_CLAES,)))
    outcome = shared.registry.retrieve([(REPO, "1.8.40")], caller=replace(SPECIALIST, break_the_glass="help"))
    assert outcome.status == STATUS_FAILURE
    assert [(p.code, p.path) for p in outcome.problems] == [
        (LOCAL_POLICY_RESTRICTION, "Policy[BREAK_THE_GLASS_REASON]")
    ]


def test_a_very_restricted_document_is_for_its_authors_only(shared: Env) -> None:
    shared.publish(make_entry(unique_id="1.8.50", confidentiality=("V",), authors=(DR_CLAES,)))
    link(shared, SPECIALIST)
    assert shared.registry.retrieve([(REPO, "1.8.50")], caller=GP).ok
    for caller in (SPECIALIST, replace(SPECIALIST, break_the_glass=GLASS), PATIENT_A):
        assert shared.registry.retrieve([(REPO, "1.8.50")], caller=caller).status == STATUS_FAILURE
    assert [e.rule for e in shared.audit.query(action="read", decision="denied")] == ["confidentiality"] * 3


def test_a_held_back_document_is_hidden_from_the_patient_until_its_date(shared: Env) -> None:
    shared.publish(make_entry(unique_id="1.8.60", authors=(DR_CLAES,)))
    shared.consents.hold_back("1.8.60", by=GP, until=date(2025, 1, 10))
    assert shared.find(PATIENT_A) == []
    assert shared.registry.retrieve([(REPO, "1.8.60")], caller=PATIENT_A).status == STATUS_FAILURE
    assert shared.find(GP) == ["1.8.60"]
    shared.clock.now = datetime(2025, 1, 9, 22, 59, tzinfo=UTC)  # 23:59 in Brussels: still the 9th
    assert shared.find(PATIENT_A) == []
    shared.clock.now = datetime(2025, 1, 9, 23, 0, tzinfo=UTC)  # midnight in Brussels: the 10th
    assert shared.find(PATIENT_A) == ["1.8.60"]
    assert shared.registry.retrieve([(REPO, "1.8.60")], caller=PATIENT_A).ok


def test_a_representative_reads_for_a_minor_only_when_registered(env: Env) -> None:
    parent = Caller("parent", "patient", ssin=PARENT, represents=MINOR, authenticated=True)
    env.consents.add_representative(MINOR, PARENT, by=OPERATOR)
    env.consents.grant_consent(MINOR, by=parent)
    link(env, GP, MINOR)
    env.publish(make_entry(unique_id="1.8.70", patient=PID_MINOR, authors=(DR_CLAES,)), patient=PID_MINOR)
    assert env.find(parent, PID_MINOR) == ["1.8.70"]
    stranger = replace(parent, ssin=SSIN_B)
    assert env.find(stranger, PID_MINOR) == []
    assert env.audit.query(action="find")[-1].rule == "representative"


# ============================================================================================== ITI-57


def _deprecate(env: Env, entry_uuid: str, caller: Caller) -> tuple[str, list[tuple[str, str]]]:
    outcome = env.registry.update_status(
        entry_uuid, AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED, patient_id=PID_A, caller=caller
    )
    return outcome.status, [(p.code, p.path) for p in outcome.problems]


def test_only_an_author_changes_a_documents_status(shared: Env) -> None:
    ids = shared.publish(make_entry(unique_id="1.9.1", authors=(DR_CLAES,)))
    target = ids["Document01"]
    link(shared, SPECIALIST)
    assert _deprecate(shared, target, SPECIALIST) == (STATUS_FAILURE, [(LOCAL_POLICY_RESTRICTION, "Policy[AUTHOR]")])
    assert _deprecate(shared, target, PATIENT_A) == (STATUS_FAILURE, [(LOCAL_POLICY_RESTRICTION, "Policy[AUTHOR]")])
    unknown = "urn:uuid:" + str(uuid.uuid4())
    hidden = shared.registry.update_status(
        target, AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED, patient_id=PID_A, caller=PHYSIO
    )
    missing = shared.registry.update_status(
        unknown, AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED, patient_id=PID_A, caller=PHYSIO
    )
    assert [p.code for p in hidden.problems] == [p.code for p in missing.problems] == ["XDSMetadataUpdateError"]
    assert hidden.problems[0].message.replace(target, "X") == missing.problems[0].message.replace(unknown, "X")
    assert _deprecate(shared, target, GP) == (STATUS_SUCCESS, [])
    events = shared.audit.query(action="update-status")
    assert [(e.allowed, e.rule) for e in events] == [
        (False, "author"),
        (False, "author"),
        (False, "therapeutic-link"),
        (True, None),
    ]
    assert all(e.transaction == "ITI-57" for e in events)


# ============================================================================================== the patient's trail


def test_a_patient_reads_their_own_trail_without_held_back_documents(shared: Env) -> None:
    shared.publish(
        make_entry(unique_id="1.10.1", authors=(DR_CLAES,)),
        make_entry("Document02", unique_id="1.10.2", authors=(DR_CLAES,)),
    )
    shared.consents.hold_back("1.10.2", by=GP, until=date(2025, 6, 1))
    shared.registry.retrieve([(REPO, "1.10.1"), (REPO, "1.10.2")], caller=GP)
    trail = shared.enforcer.patient_trail(PATIENT_A, SSIN_A)
    reads = [e for e in trail if e.action == "read"]
    assert [e.documents for e in reads] == [("1.10.1",), ()]  # the held-back document does not show
    assert all(e.who == GP.subject for e in reads)
    assert any(e.action == "publish" for e in trail) and any(e.action == "consent" for e in trail)
    assert shared.audit.query(action="audit")[-1].allowed
    with pytest.raises(PolicyError):
        shared.enforcer.patient_trail(PATIENT_B, SSIN_A)
    with pytest.raises(PolicyError):
        shared.enforcer.patient_trail(GP, SSIN_A)
    assert [e.allowed for e in shared.audit.query(action="audit")] == [True, False, False]


def test_registry_without_enforcer_neither_enforces_nor_audits(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "plain")
    try:
        registry = Registry(store)
        registry.register_patient(PID_A)
        sub = make_submission([make_entry(unique_id="1.11.1")])
        assert registry.provide_and_register(sub, documents_for(sub)).ok
        assert [e.unique_id for e in registry.stored_query(FindDocuments(patient_id=PID_A)).entries] == ["1.11.1"]
        assert registry.retrieve([(REPO, "1.11.1")]).ok
        assert AuditTrail(store).query() == []
    finally:
        store.close()


def test_associations_joining_unregistered_objects_do_not_leak(shared: Env) -> None:
    ids = shared.publish(make_entry(unique_id="1.12.1", class_code="report", authors=(DR_CLAES,)))
    outcome = shared.registry.update_status(
        ids["Document01"], AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED, patient_id=PID_A, caller=GP
    )
    assert outcome.ok
    query = GetAssociations(entry_uuids=(ids["Document01"],))
    assert shared.registry.stored_query(query, caller=NURSE).associations == []
    found = shared.registry.stored_query(query, caller=GP).associations
    assert any(isinstance(a, Association) and a.type is AssociationType.UPDATE_AVAILABILITY_STATUS for a in found)


# ============================================================================================== the seed


def test_the_seed_shows_each_rule_at_work_and_its_cases_are_what_the_hub_does(tmp_path: Path) -> None:
    from rsb_connector.hub.population import SEED_PATIENTS, seed
    from rsb_connector.hub.seed_consent import seed_callers, seed_consent, seed_document_unique_id

    env = build_env(tmp_path / "seeded")
    try:
        seed(env.store, today=TODAY)
        description = seed_consent(env.store, env.consents, today=TODAY, registry=env.registry)
        assert description["seeded"] and description["no_consent"] == ["marc"]
        rules = {case["rule"] for case in description["cases"]}
        assert rules >= {
            None,
            "consent",
            "exclusion",
            "therapeutic-link",
            "access-matrix",
            "access-right",
            "held-back",
            "confidentiality",
            "patient-self",
        }
        callers = seed_callers()
        ids = {p.key: p.patient_id for p in SEED_PATIENTS}
        for case in description["cases"]:
            caller = replace(callers[case["who"]], break_the_glass=case["break_the_glass"])
            if case["action"] == "read":
                outcome = env.registry.retrieve([(REPO, case["document_unique_id"])], caller=caller)
                assert outcome.ok is case["allowed"], case
            elif case["action"] == "find":
                env.registry.stored_query(FindDocuments(patient_id=ids[case["patient"]]), caller=caller)
                event = env.audit.query(action="find")[-1]
                assert (event.allowed, event.rule) == (case["allowed"], case["rule"]), case
            else:
                pro = caller.nihii or ""
                author = f"{pro}^Doe^Jo^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO"
                entry = make_entry(patient=ids[case["patient"]], class_code="contactreport", authors=(author,))
                sub = make_submission([entry], author=author)
                outcome = env.registry.provide_and_register(sub, documents_for(sub), caller=caller)
                assert outcome.ok is case["allowed"], case
                if not case["allowed"]:
                    assert outcome.problems[0].path == f"Policy[{case['rule'].upper().replace('-', '_')}]"
        # right after seeding the GP reads the first patient's lab result
        assert env.registry.retrieve([(REPO, seed_document_unique_id("labresult"))], caller=callers["gp"]).ok
        history = len(env.consents.history(SEED_PATIENTS[0].ssin))
        again = seed_consent(env.store, env.consents, today=TODAY, registry=env.registry)
        assert not again["seeded"] and again["cases"] == description["cases"]
        assert len(env.consents.history(SEED_PATIENTS[0].ssin)) == history
        assert [d["key"] for d in again["documents"]] == ["labresult", "contactreport", "medicationscheme", "note-v"]
    finally:
        env.store.close()


@pytest.mark.parametrize("patient_id", ["x^^^", "nonsense", "12345^^^&1.2.3&ISO"])
def test_a_malformed_or_foreign_patient_id_finds_nothing(shared: Env, patient_id: str) -> None:
    shared.publish(make_entry(authors=(DR_CLAES,)))
    assert shared.registry.stored_query(FindDocuments(patient_id=patient_id), caller=GP).entries == []
    assert not shared.audit.query(action="find")[-1].allowed

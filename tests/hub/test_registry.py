"""The registry/repository logic, case by case after the NIST XDS toolkit tests (ids in the test names)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from rsb_connector.errors import QueryError
from rsb_connector.hub.registry import Caller, IncomingDocument, Registry
from rsb_connector.metadata.content import digest
from rsb_connector.metadata.model import (
    DOCUMENT_ENTRY_ON_DEMAND,
    DOCUMENT_ENTRY_STABLE,
    Association,
    AssociationType,
    AvailabilityStatus,
    Code,
    SubmissionSetStatus,
)
from rsb_connector.query import (
    FindDocuments,
    FindDocumentsByReferenceId,
    FindFolders,
    FindSubmissionSets,
    GetAll,
    GetAssociations,
    GetDocuments,
    GetDocumentsAndAssociations,
    GetFolderAndContents,
    GetFolders,
    GetFoldersForDocument,
    GetRelatedDocuments,
    GetSubmissionSetAndContents,
    GetSubmissionSets,
    ReturnType,
)
from rsb_connector.xds.constants import STATUS_FAILURE, STATUS_PARTIAL_SUCCESS, STATUS_SUCCESS

try:  # tests/hub as a package (tests.hub.conftest) or as a rootdir-relative folder
    from .conftest import (
        DR_BENALI,
        DR_CLAES,
        PID_A,
        PID_B,
        PID_C,
        PID_UNKNOWN,
        REPO,
        SCHEME_CLASS,
        SCHEME_CONF,
        SCHEME_CONTENT,
        SCHEME_EVENT,
        SCHEME_FACILITY,
        SCHEME_FORMAT,
        SCHEME_PRACTICE,
        SCHEME_TYPE,
        HubEnv,
        content_for,
        documents_for,
        make_entry,
        make_submission,
    )
except ImportError:
    from conftest import (  # type: ignore[no-redef]
        DR_BENALI,
        DR_CLAES,
        PID_A,
        PID_B,
        PID_C,
        PID_UNKNOWN,
        REPO,
        SCHEME_CLASS,
        SCHEME_CONF,
        SCHEME_CONTENT,
        SCHEME_EVENT,
        SCHEME_FACILITY,
        SCHEME_FORMAT,
        SCHEME_PRACTICE,
        SCHEME_TYPE,
        HubEnv,
        content_for,
        documents_for,
        make_entry,
        make_submission,
    )

RPLC, APND, XFRM, XFRM_RPLC, SIGNS = (
    AssociationType.RPLC,
    AssociationType.APND,
    AssociationType.XFRM,
    AssociationType.XFRM_RPLC,
    AssociationType.SIGNS,
)
APPROVED, DEPRECATED = AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED


def codes(outcome_problems: object) -> set[str]:
    return {p.code for p in outcome_problems}  # type: ignore[attr-defined]


def find(hub: HubEnv, **kwargs: object) -> list[str]:
    """Unique ids of what FindDocuments returns for PID_A (or the given patient) with the filters."""
    kwargs.setdefault("patient_id", PID_A)
    result = hub.registry.stored_query(FindDocuments(**kwargs))  # type: ignore[arg-type]
    return [e.unique_id or "" for e in result.entries]


# ============================================================================================== ITI-41


def test_11966_one_document_is_registered_and_found(hub: HubEnv) -> None:
    entry = make_entry()
    published = hub.publish(entry)
    assert published.outcome.status == STATUS_SUCCESS
    assert published.uuid().startswith("urn:uuid:")
    assert set(published.ids) == {"SubmissionSet01", "Document01", "hm-Document01"}
    (found,) = hub.registry.stored_query(FindDocuments(patient_id=PID_A)).entries
    data = content_for(entry)
    assert found.entry_uuid == published.uuid()
    assert found.unique_id == entry.unique_id
    assert (found.hash, found.size) == (digest(data).sha1, len(data))
    assert found.repository_unique_id == REPO
    assert found.availability_status is APPROVED
    assert found.logical_id == found.entry_uuid
    assert found.version == "1"


def test_submission_is_not_modified_by_registration(hub: HubEnv) -> None:
    sub = make_submission([make_entry()])
    before = repr(sub)
    assert hub.registry.provide_and_register(sub, documents_for(sub)).ok
    assert repr(sub) == before


def test_11979_two_documents(hub: HubEnv) -> None:
    a, b = make_entry("Document01"), make_entry("Document02")
    published = hub.publish(a, b)
    assert published.uuid("Document01") != published.uuid("Document02")
    assert sorted(find(hub)) == sorted([a.unique_id, b.unique_id])
    assert hub.counts() == (2, 1, 2, 1, 2)


@pytest.mark.parametrize("variant", ["lower", "upper"])
def test_11981_supplied_correct_hash_and_size_are_accepted(hub: HubEnv, variant: str) -> None:
    entry = make_entry()
    dig = digest(content_for(entry))
    entry.hash = dig.sha1 if variant == "lower" else dig.sha1.upper()
    entry.size = dig.size
    hub.publish(entry)
    (found,) = hub.registry.stored_query(FindDocuments(patient_id=PID_A)).entries
    assert found.hash == dig.sha1  # stored as computed, lower case


@pytest.mark.parametrize(
    ("hash_", "size", "field"),
    [("0" * 40, None, "hash"), (None, 1, "size"), ("not-a-hash", None, "hash"), ("0" * 40, 99999, "hash")],
)
def test_11981_12369_wrong_hash_or_size_is_a_repository_metadata_error(
    hub: HubEnv, hash_: str | None, size: int | None, field: str
) -> None:
    entry = make_entry()
    entry.hash, entry.size = hash_, size
    sub = make_submission([entry])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert outcome.status == STATUS_FAILURE
    assert codes(outcome.problems) == {"XDSRepositoryMetadataError"}
    assert any(p.path.endswith(f".{field}") for p in outcome.problems)
    assert len({(p.code, p.path) for p in outcome.problems}) == len(outcome.problems)  # no duplicates
    assert hub.counts() == (0, 0, 0, 0, 0)


def test_11983_entry_without_document(hub: HubEnv) -> None:
    sub = make_submission([make_entry("Document01"), make_entry("Document02")])
    docs = documents_for(sub)
    del docs["Document02"]
    outcome = hub.registry.provide_and_register(sub, docs)
    assert outcome.status == STATUS_FAILURE
    assert "XDSMissingDocument" in codes(outcome.problems)
    assert hub.counts() == (0, 0, 0, 0, 0)


def test_11983_document_without_entry(hub: HubEnv) -> None:
    sub = make_submission([make_entry()])
    docs = documents_for(sub)
    docs["Stray"] = IncomingDocument.from_bytes(b"who am I")
    outcome = hub.registry.provide_and_register(sub, docs)
    assert outcome.status == STATUS_FAILURE
    assert "XDSMissingDocumentMetadata" in codes(outcome.problems)
    assert hub.counts() == (0, 0, 0, 0, 0)


def test_11986_11997_entry_and_submission_set_patients_differ(hub: HubEnv) -> None:
    sub = make_submission([make_entry(patient=PID_B)], patient=PID_A)
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert outcome.status == STATUS_FAILURE
    assert "XDSPatientIdDoesNotMatch" in codes(outcome.problems)


def test_11996_unknown_patient(hub: HubEnv) -> None:
    sub = make_submission([make_entry(patient=PID_UNKNOWN)])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert outcome.status == STATUS_FAILURE
    assert codes(outcome.problems) == {"XDSUnknownPatientId"}
    assert "17*******84" in outcome.problems[0].message  # masked, never in full
    assert "17073003384" not in outcome.problems[0].message
    assert hub.counts() == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "attribute",
    [
        "class_code",
        "confidentiality_codes",
        "creation_time",
        "format_code",
        "healthcare_facility_type_code",
        "language_code",
        "practice_setting_code",
        "source_patient_id",
        "type_code",
        "mime_type",
        "unique_id",
    ],
)
def test_11998a_each_missing_attribute_fails_and_stores_nothing(hub: HubEnv, attribute: str) -> None:
    entry = make_entry()
    setattr(entry, attribute, [] if attribute == "confidentiality_codes" else None)
    sub = make_submission([entry])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert outcome.status == STATUS_FAILURE
    assert "XDSRegistryMetadataError" in codes(outcome.problems)
    assert not outcome.registered
    assert hub.counts() == (0, 0, 0, 0, 0)


def test_every_problem_is_reported_not_only_the_first(hub: HubEnv) -> None:
    entry = make_entry(patient=PID_UNKNOWN)
    entry.class_code = None
    entry.hash = "0" * 40
    sub = make_submission([entry])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert {"XDSRegistryMetadataError", "XDSRepositoryMetadataError", "XDSUnknownPatientId"} <= codes(outcome.problems)


def test_12004_same_unique_id_same_hash_is_accepted_once(hub: HubEnv) -> None:
    entry = make_entry()
    first = hub.publish(entry)
    again = make_entry(unique_id=entry.unique_id)  # a new submission set, same document
    second = hub.publish(again)
    assert second.uuid() == first.uuid()  # refers to the registered entry
    assert find(hub) == [entry.unique_id]
    entries, sets, _assocs, submissions, blobs = hub.counts()
    assert (entries, sets, submissions, blobs) == (1, 2, 2, 1)
    result = hub.registry.stored_query(GetSubmissionSetAndContents(entry_uuids=(second.ids["SubmissionSet01"],)))
    assert [e.entry_uuid for e in result.entries] == [first.uuid()]
    (membership,) = [a for a in result.associations if a.type is AssociationType.HAS_MEMBER]
    assert membership.submission_set_status is SubmissionSetStatus.REFERENCE


def test_12004_same_unique_id_different_hash_is_refused(hub: HubEnv) -> None:
    entry = make_entry()
    hub.publish(entry)
    sub = make_submission([make_entry(unique_id=entry.unique_id)])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub, Document01=b"changed content"))
    assert outcome.status == STATUS_FAILURE
    assert codes(outcome.problems) == {"XDSNonIdenticalHash"}
    assert hub.counts()[0] == 1


def test_same_unique_id_for_another_patient_is_refused(hub: HubEnv) -> None:
    entry = make_entry()
    hub.publish(entry)
    other = make_entry(patient=PID_B, unique_id=entry.unique_id)
    sub = make_submission([other])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub, Document01=content_for(entry)))
    assert codes(outcome.problems) == {"XDSPatientIdDoesNotMatch"}


def test_identical_retry_of_a_whole_submission_succeeds_without_duplicates(hub: HubEnv) -> None:
    sub = make_submission([make_entry("Document01"), make_entry("Document02")])
    first = hub.registry.provide_and_register(sub, documents_for(sub))
    before = hub.counts()
    retry = hub.registry.provide_and_register(sub, documents_for(sub))
    assert retry.status == STATUS_SUCCESS
    assert retry.registered == first.registered
    assert hub.counts() == before


def test_reused_submission_set_unique_id_with_other_content_is_refused(hub: HubEnv) -> None:
    first = make_submission([make_entry()])
    assert hub.registry.provide_and_register(first, documents_for(first)).ok
    second = make_submission([make_entry()], unique_id=first.submission_set.unique_id)
    outcome = hub.registry.provide_and_register(second, documents_for(second))
    assert codes(outcome.problems) == {"XDSDuplicateUniqueIdInRegistry"}


def test_12084_one_bad_entry_stores_nothing(hub: HubEnv) -> None:
    hub.publish(make_entry())
    before = hub.counts()
    good1, bad, good2 = make_entry("Document01"), make_entry("Document02"), make_entry("Document03")
    bad.type_code = None
    sub = make_submission([good1, bad, good2])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert outcome.status == STATUS_FAILURE
    assert hub.counts() == before
    assert list(hub.store.spool_dir.iterdir()) == []


def test_12084_failure_detected_at_registry_level_stores_no_blob(hub: HubEnv) -> None:
    """The registry-state check (RPLC of an unknown document) fails after the metadata passed: no blob either."""
    before = hub.counts()
    entry = make_entry()
    sub = make_submission([entry], relations=[(RPLC, "Document01", "urn:uuid:6f6c2b1c-0000-4000-8000-000000000000")])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert codes(outcome.problems) == {"XDSReplaceFailed"}
    assert hub.counts() == before
    assert list(hub.store.spool_dir.iterdir()) == []


def test_spooled_upload_is_adopted_on_success_and_deleted_on_failure(hub: HubEnv) -> None:
    ok_sub = make_submission([make_entry()])
    spooled = hub.store.spool_blob([content_for(ok_sub.entries[0])])
    outcome = hub.registry.provide_and_register(
        ok_sub, {"Document01": IncomingDocument(path=spooled.path, data=None, digest=spooled.digest)}
    )
    assert outcome.ok
    assert not spooled.path.exists()
    assert hub.store.has_blob(spooled.digest.sha256)

    bad_entry = make_entry()
    bad_entry.format_code = None
    bad_sub = make_submission([bad_entry])
    spooled = hub.store.spool_blob([b"never stored"])
    outcome = hub.registry.provide_and_register(
        bad_sub, {"Document01": IncomingDocument(path=spooled.path, data=None, digest=spooled.digest)}
    )
    assert not outcome.ok
    assert not spooled.path.exists()
    assert not hub.store.has_blob(spooled.digest.sha256)


def test_a_file_outside_the_spool_directory_is_copied_not_moved(hub: HubEnv, tmp_path: Path) -> None:
    sub = make_submission([make_entry()])
    source = tmp_path / "report.txt"
    source.write_bytes(content_for(sub.entries[0]))
    assert hub.registry.provide_and_register(sub, {"Document01": IncomingDocument.from_file(source)}).ok
    assert source.read_bytes() == content_for(sub.entries[0])
    assert list(hub.store.spool_dir.iterdir()) == []


def test_15806_reused_entry_uuid_is_refused(hub: HubEnv) -> None:
    first = hub.publish(make_entry())
    reused = make_entry(first.uuid())  # same entryUUID, new uniqueId and content
    sub = make_submission([reused])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert outcome.status == STATUS_FAILURE
    assert codes(outcome.problems) == {"XDSRegistryMetadataError"}
    assert first.uuid() in outcome.problems[0].message


def test_15806_reused_submission_set_uuid_is_refused(hub: HubEnv) -> None:
    first = hub.publish(make_entry())
    sub = make_submission([make_entry()], ss_id=first.ids["SubmissionSet01"])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert codes(outcome.problems) == {"XDSRegistryMetadataError"}


def test_submitted_urn_uuid_ids_are_kept(hub: HubEnv) -> None:
    entry_id = "urn:uuid:1b4e28ba-2fa1-41d2-883f-0016d3cca427"
    published = hub.publish(make_entry(entry_id))
    assert published.uuid(entry_id) == entry_id
    assert hub.registry.stored_query(GetDocuments(entry_uuids=(entry_id,))).entries[0].entry_uuid == entry_id


def test_caller_is_recorded_in_the_submission_log(hub: HubEnv) -> None:
    sub = make_submission([make_entry()])
    caller = Caller(subject="CN=Dr Claes", role="persphysician", nihii="12345625004", authenticated=True)
    assert hub.registry.provide_and_register(sub, documents_for(sub), caller=caller).ok
    row = hub.store._connection().execute("SELECT submitter, received_at FROM submissions").fetchone()
    assert row == ("CN=Dr Claes", "20241224153000")


# ============================================================================================== relationships


def test_11992_rplc_deprecates_the_target(hub: HubEnv) -> None:
    original = hub.publish(make_entry())
    new = make_entry()
    replacement = hub.publish(new, relations=[(RPLC, "Document01", original.uuid())])
    old = hub.registry.stored_query(GetDocuments(entry_uuids=(original.uuid(),))).entries[0]
    assert old.availability_status is DEPRECATED
    assert find(hub) == [new.unique_id]
    assert len(find(hub, statuses=(APPROVED, DEPRECATED))) == 2
    related = hub.registry.stored_query(
        GetRelatedDocuments(entry_uuids=(replacement.uuid(),), association_types=(RPLC,))
    )
    assert {e.entry_uuid for e in related.entries} == {original.uuid(), replacement.uuid()}
    (assoc,) = related.associations
    assert (assoc.type, assoc.source, assoc.target) == (RPLC, replacement.uuid(), original.uuid())


def test_replacing_a_deprecated_document_is_refused(hub: HubEnv) -> None:
    original = hub.publish(make_entry())
    hub.publish(make_entry(), relations=[(RPLC, "Document01", original.uuid())])
    before = hub.counts()
    sub = make_submission([make_entry()], relations=[(RPLC, "Document01", original.uuid())])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert codes(outcome.problems) == {"XDSRegistryDeprecatedDocumentError"}
    assert hub.counts() == before


def test_replacing_an_unknown_document_is_refused(hub: HubEnv) -> None:
    sub = make_submission(
        [make_entry()], relations=[(RPLC, "Document01", "urn:uuid:aaaaaaaa-0000-4000-8000-0000000000aa")]
    )
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert codes(outcome.problems) == {"XDSReplaceFailed"}


def test_replacing_another_patients_document_is_refused(hub: HubEnv) -> None:
    other = hub.publish(make_entry(patient=PID_B))
    sub = make_submission([make_entry()], relations=[(RPLC, "Document01", other.uuid())])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert codes(outcome.problems) == {"XDSPatientIdDoesNotMatch"}
    assert (
        hub.registry.stored_query(GetDocuments(entry_uuids=(other.uuid(),))).entries[0].availability_status is APPROVED
    )


def test_two_replacements_of_one_document_in_one_submission_are_refused(hub: HubEnv) -> None:
    original = hub.publish(make_entry())
    sub = make_submission(
        [make_entry("Document01"), make_entry("Document02")],
        relations=[(RPLC, "Document01", original.uuid()), (RPLC, "Document02", original.uuid())],
    )
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert codes(outcome.problems) == {"XDSReplaceFailed"}


@pytest.mark.parametrize("kind", [APND, XFRM, XFRM_RPLC, SIGNS])
def test_11993_11995_relationships_are_stored_and_found(hub: HubEnv, kind: AssociationType) -> None:
    original = hub.publish(make_entry())
    new = hub.publish(make_entry(), relations=[(kind, "Document01", original.uuid())])
    result = hub.registry.stored_query(GetRelatedDocuments(entry_uuids=(original.uuid(),), association_types=(kind,)))
    assert {e.entry_uuid for e in result.entries} == {original.uuid(), new.uuid()}
    assert [(a.type, a.source, a.target) for a in result.associations] == [(kind, new.uuid(), original.uuid())]
    old_status = hub.registry.stored_query(GetDocuments(entry_uuids=(original.uuid(),))).entries[0].availability_status
    assert old_status is (DEPRECATED if kind.replaces else APPROVED)
    # other association types do not match
    others = tuple(t for t in (RPLC, APND, XFRM, XFRM_RPLC, SIGNS) if t is not kind)
    empty = hub.registry.stored_query(GetRelatedDocuments(entry_uuids=(original.uuid(),), association_types=others))
    assert (empty.entries, empty.associations) == ([], [])


@pytest.mark.parametrize("kind", [APND, XFRM, SIGNS])
def test_relating_to_a_deprecated_document_is_refused(hub: HubEnv, kind: AssociationType) -> None:
    original = hub.publish(make_entry())
    hub.publish(make_entry(), relations=[(RPLC, "Document01", original.uuid())])
    sub = make_submission([make_entry()], relations=[(kind, "Document01", original.uuid())])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert codes(outcome.problems) == {"XDSRegistryDeprecatedDocumentError"}


def test_appending_to_an_unknown_document_is_refused(hub: HubEnv) -> None:
    sub = make_submission(
        [make_entry()], relations=[(APND, "Document01", "urn:uuid:bbbbbbbb-0000-4000-8000-0000000000bb")]
    )
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert codes(outcome.problems) == {"XDSRegistryMetadataError"}


def test_11994_rplc_and_apnd_in_one_submission(hub: HubEnv) -> None:
    a = hub.publish(make_entry())
    b = hub.publish(make_entry())
    both = hub.publish(
        make_entry("Document01"),
        make_entry("Document02"),
        relations=[(RPLC, "Document01", a.uuid()), (APND, "Document02", b.uuid())],
    )
    statuses = {
        e.entry_uuid: e.availability_status
        for e in hub.registry.stored_query(GetDocuments(entry_uuids=(a.uuid(), b.uuid()))).entries
    }
    assert statuses == {a.uuid(): DEPRECATED, b.uuid(): APPROVED}
    assocs = hub.registry.stored_query(GetAssociations(entry_uuids=(both.uuid("Document01"), both.uuid("Document02"))))
    assert {a_.type for a_ in assocs.associations} == {AssociationType.HAS_MEMBER, RPLC, APND}


def test_reference_membership_to_a_registered_entry(hub: HubEnv) -> None:
    first = hub.publish(make_entry())
    second = hub.publish(make_entry(), references=[first.uuid()])
    contents = hub.registry.stored_query(GetSubmissionSetAndContents(entry_uuids=(second.ids["SubmissionSet01"],)))
    assert {e.entry_uuid for e in contents.entries} == {first.uuid(), second.uuid()}


def test_reference_membership_to_another_patients_entry_is_refused(hub: HubEnv) -> None:
    other = hub.publish(make_entry(patient=PID_B))
    sub = make_submission([make_entry()], references=[other.uuid()])
    outcome = hub.registry.provide_and_register(sub, documents_for(sub))
    assert codes(outcome.problems) == {"XDSPatientIdDoesNotMatch"}


# ============================================================================================== FindDocuments


@pytest.fixture
def corpus(hub: HubEnv) -> dict[str, str]:
    """Four entries of PID_A differing in every FindDocuments attribute; returns name → uniqueId."""
    entries = {
        "lab": make_entry(
            "Document01",
            class_code="report",
            type_code="labresult",
            practice="cardiology",
            facility="hospital",
            format_code="fmt-a",
            confidentiality=("N",),
            events=("e1", "e2"),
            creation_time="20240115103000",
            service_start="20240110",
            service_stop="20240112",
            authors=(DR_CLAES,),
            reference_ids=("order-1^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:order",),
        ),
        "note": make_entry(
            "Document02",
            class_code="note",
            type_code="contactreport",
            practice="generalpractice",
            facility="gp",
            format_code="fmt-b",
            confidentiality=("N", "R"),
            events=("e2",),
            creation_time="20240201",
            service_start="20240201090000",
            service_stop="20240201100000",
            authors=(DR_BENALI, DR_CLAES),
        ),
        "coarse": make_entry(
            "Document03",
            class_code="report",
            type_code="referral",
            practice="cardiology",
            facility="hospital",
            format_code="fmt-a",
            confidentiality=("V",),
            creation_time="2023",
            authors=(DR_BENALI,),
        ),
        "nothing": make_entry(
            "Document04", class_code="alert", confidentiality=("N",), creation_time="20250101000000", authors=()
        ),
    }
    published = hub.publish(*entries.values())
    assert published.outcome.ok
    hub.publish(make_entry(patient=PID_B))  # never in PID_A's results
    return {k: e.unique_id or "" for k, e in entries.items()}


def names(corpus: dict[str, str], unique_ids: list[str]) -> set[str]:
    inverse = {v: k for k, v in corpus.items()}
    return {inverse[u] for u in unique_ids}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"lab", "note", "coarse", "nothing"}),
        ({"class_codes": (Code("report", SCHEME_CLASS),)}, {"lab", "coarse"}),
        ({"class_codes": (Code("note", SCHEME_CLASS), Code("alert", SCHEME_CLASS))}, {"note", "nothing"}),
        ({"class_codes": (Code("report", "other.scheme"),)}, set()),
        ({"type_codes": (Code("referral", SCHEME_TYPE),)}, {"coarse"}),
        ({"practice_setting_codes": (Code("generalpractice", SCHEME_PRACTICE),)}, {"note"}),
        ({"healthcare_facility_type_codes": (Code("gp", SCHEME_FACILITY),)}, {"note"}),
        ({"format_codes": (Code("fmt-a", SCHEME_FORMAT),)}, {"lab", "coarse"}),
        ({"format_codes": (Code("fmt-z", SCHEME_FORMAT),)}, set()),
        # event codes: AND of ORs
        ({"event_codes": ((Code("e2", SCHEME_EVENT),),)}, {"lab", "note"}),
        ({"event_codes": ((Code("e2", SCHEME_EVENT),), (Code("e1", SCHEME_EVENT),))}, {"lab"}),
        ({"event_codes": ((Code("e1", SCHEME_EVENT), Code("e9", SCHEME_EVENT)),)}, {"lab"}),
        ({"event_codes": ((Code("e9", SCHEME_EVENT),),)}, set()),
        # confidentiality: AND of ORs
        ({"confidentiality_codes": ((Code("R", SCHEME_CONF),),)}, {"note"}),
        ({"confidentiality_codes": ((Code("N", SCHEME_CONF),), (Code("R", SCHEME_CONF),))}, {"note"}),
        ({"confidentiality_codes": ((Code("V", SCHEME_CONF), Code("R", SCHEME_CONF)),)}, {"note", "coarse"}),
        # authors: LIKE with % and _, any author of the entry
        ({"author_persons": ("%Benali%",)}, {"note", "coarse"}),
        ({"author_persons": ("12345625004^Claes^Sophie^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO",)}, {"lab", "note"}),
        ({"author_persons": ("%^Cla_s^%",)}, {"lab", "note"}),
        ({"author_persons": ("%Nobody%", "%Benali%")}, {"note", "coarse"}),
        ({"author_persons": ("Claes",)}, set()),
        # creationTime: From inclusive, To exclusive
        ({"creation_time_from": "20240115103000"}, {"lab", "note", "nothing"}),
        ({"creation_time_from": "20240115103001"}, {"note", "nothing"}),
        ({"creation_time_to": "20240115103000"}, {"coarse"}),
        ({"creation_time_to": "20240115103001"}, {"coarse", "lab"}),
        ({"creation_time_from": "202401", "creation_time_to": "202402"}, {"lab"}),
        ({"creation_time_from": "2024", "creation_time_to": "2025"}, {"lab", "note"}),
        # a coarse stored time is the interval it denotes
        ({"creation_time_from": "20230601", "creation_time_to": "20230602"}, {"coarse"}),
        ({"creation_time_from": "2024"}, {"lab", "note", "nothing"}),
        # service times
        ({"service_start_time_from": "20240110"}, {"lab", "note"}),
        ({"service_start_time_from": "20240111"}, {"note"}),
        ({"service_start_time_to": "20240201090000"}, {"lab"}),
        ({"service_stop_time_from": "20240201100000"}, {"note"}),
        ({"service_stop_time_to": "20240113"}, {"lab"}),
        ({"service_stop_time_from": "2025"}, set()),
        # object types
        ({"object_types": (DOCUMENT_ENTRY_STABLE,)}, {"lab", "note", "coarse", "nothing"}),
        ({"object_types": (DOCUMENT_ENTRY_ON_DEMAND,)}, set()),
    ],
)
def test_11897_find_documents_by_each_parameter(
    hub: HubEnv, corpus: dict[str, str], filters: dict[str, object], expected: set[str]
) -> None:
    assert names(corpus, find(hub, **filters)) == expected


def test_find_documents_service_start_interval_semantics(hub: HubEnv, corpus: dict[str, str]) -> None:
    # "lab" started on 20240110 (a day): it may have started at 23:59 that day, so From 20240110120000 keeps it,
    # From 20240111 drops it (the day ended before).
    assert "lab" in names(corpus, find(hub, service_start_time_from="20240110120000"))
    assert "lab" not in names(corpus, find(hub, service_start_time_from="20240111000000"))


def test_find_documents_status_filter(hub: HubEnv) -> None:
    original = hub.publish(make_entry())
    replacement = make_entry()
    hub.publish(replacement, relations=[(RPLC, "Document01", original.uuid())])
    assert find(hub) == [replacement.unique_id]
    deprecated = find(hub, statuses=(DEPRECATED,))
    assert deprecated == [original.submission.entries[0].unique_id]


def test_find_documents_by_reference_id(hub: HubEnv, corpus: dict[str, str]) -> None:
    query = FindDocumentsByReferenceId(
        patient_id=PID_A, reference_ids=("order-1^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:order", "other")
    )
    result = hub.registry.stored_query(query)
    assert names(corpus, [e.unique_id or "" for e in result.entries]) == {"lab"}
    none = FindDocumentsByReferenceId(patient_id=PID_A, reference_ids=("unknown",))
    assert hub.registry.stored_query(none).entries == []


def test_find_documents_only_returns_the_patients_entries(hub: HubEnv, corpus: dict[str, str]) -> None:
    assert len(find(hub, patient_id=PID_B)) == 1
    assert find(hub, patient_id=PID_C) == []


def test_object_ref_returns_only_ids(hub: HubEnv, corpus: dict[str, str]) -> None:
    leaf = hub.registry.stored_query(FindDocuments(patient_id=PID_A))
    refs = hub.registry.stored_query(FindDocuments(patient_id=PID_A, return_type=ReturnType.OBJECT_REF))
    assert refs.entries == []
    assert refs.object_refs == [e.entry_uuid for e in leaf.entries]


def test_too_many_results(hub: HubEnv) -> None:
    small = Registry(hub.store, max_results=3)
    hub.publish(*(make_entry(f"Document{i:02d}") for i in range(4)))
    with pytest.raises(QueryError) as info:
        small.stored_query(FindDocuments(patient_id=PID_A))
    assert info.value.codes == ["XDSTooManyResults"]
    with pytest.raises(QueryError):
        small.stored_query(FindDocuments(patient_id=PID_A, return_type=ReturnType.OBJECT_REF))
    assert len(small.stored_query(FindDocuments(patient_id=PID_A, class_codes=(Code("none", "x"),))).entries) == 0
    exact = Registry(hub.store, max_results=4)
    assert len(exact.stored_query(FindDocuments(patient_id=PID_A)).entries) == 4


# ============================================================================================== other queries


def test_12368_leaf_class_across_patients_is_refused(hub: HubEnv) -> None:
    a = hub.publish(make_entry())
    b = hub.publish(make_entry(patient=PID_B))
    with pytest.raises(QueryError) as info:
        hub.registry.stored_query(GetDocuments(entry_uuids=(a.uuid(), b.uuid())))
    assert info.value.codes == ["XDSResultNotSinglePatient"]
    refs = hub.registry.stored_query(GetDocuments(entry_uuids=(a.uuid(), b.uuid()), return_type=ReturnType.OBJECT_REF))
    assert set(refs.object_refs) == {a.uuid(), b.uuid()}


def test_get_documents_by_uuid_and_unique_id(hub: HubEnv) -> None:
    entry = make_entry()
    published = hub.publish(entry)
    by_uuid = hub.registry.stored_query(GetDocuments(entry_uuids=(published.uuid(),)))
    by_uid = hub.registry.stored_query(GetDocuments(unique_ids=(entry.unique_id or "",)))
    assert by_uuid.entries == by_uid.entries
    assert len(by_uuid.entries) == 1
    assert hub.registry.stored_query(GetDocuments(unique_ids=("9.9.9",))).entries == []


def test_get_documents_and_associations(hub: HubEnv) -> None:
    published = hub.publish(make_entry())
    result = hub.registry.stored_query(GetDocumentsAndAssociations(entry_uuids=(published.uuid(),)))
    assert [e.entry_uuid for e in result.entries] == [published.uuid()]
    (assoc,) = result.associations
    assert (assoc.type, assoc.source, assoc.target) == (
        AssociationType.HAS_MEMBER,
        published.ids["SubmissionSet01"],
        published.uuid(),
    )
    assert assoc.submission_set_status is SubmissionSetStatus.ORIGINAL


def test_get_submission_sets(hub: HubEnv) -> None:
    published = hub.publish(make_entry("Document01"), make_entry("Document02"))
    result = hub.registry.stored_query(GetSubmissionSets(entry_uuids=(published.uuid("Document02"),)))
    assert [s.entry_uuid for s in result.submission_sets] == [published.ids["SubmissionSet01"]]
    assert [a.target for a in result.associations] == [published.uuid("Document02")]


def test_get_submission_set_and_contents_by_unique_id(hub: HubEnv) -> None:
    published = hub.publish(make_entry("Document01"), make_entry("Document02"))
    ss_uid = published.submission.submission_set.unique_id or ""
    result = hub.registry.stored_query(GetSubmissionSetAndContents(unique_ids=(ss_uid,)))
    assert [s.unique_id for s in result.submission_sets] == [ss_uid]
    assert {e.entry_uuid for e in result.entries} == {published.uuid("Document01"), published.uuid("Document02")}
    assert len(result.associations) == 2
    assert hub.registry.stored_query(GetSubmissionSetAndContents(unique_ids=("1.2.3.999",))).size == 0


def test_get_associations(hub: HubEnv) -> None:
    original = hub.publish(make_entry())
    new = hub.publish(make_entry(), relations=[(APND, "Document01", original.uuid())])
    result = hub.registry.stored_query(GetAssociations(entry_uuids=(original.uuid(),)))
    assert {(a.type, a.source) for a in result.associations} == {
        (AssociationType.HAS_MEMBER, original.ids["SubmissionSet01"]),
        (APND, new.uuid()),
    }


def test_get_all(hub: HubEnv) -> None:
    original = hub.publish(make_entry())
    hub.publish(make_entry(), relations=[(RPLC, "Document01", original.uuid())])
    hub.publish(make_entry(patient=PID_B))
    result = hub.registry.stored_query(GetAll(patient_id=PID_A))
    assert len(result.entries) == 2  # Approved and Deprecated by default
    assert len(result.submission_sets) == 2
    assert {a.type for a in result.associations} == {AssociationType.HAS_MEMBER, RPLC}
    approved_only = hub.registry.stored_query(GetAll(patient_id=PID_A, document_statuses=(APPROVED,)))
    assert len(approved_only.entries) == 1


def test_find_submission_sets(hub: HubEnv) -> None:
    published = hub.publish(make_entry())
    hub.publish(make_entry(patient=PID_B))
    ss_uuid = published.ids["SubmissionSet01"]

    def run(**kw: object) -> list[str]:
        query = FindSubmissionSets(patient_id=PID_A, **kw)  # type: ignore[arg-type]
        return [s.entry_uuid for s in hub.registry.stored_query(query).submission_sets]

    assert run() == [ss_uuid]
    assert run(source_ids=("1.3.6.1.4.1.21367.2017.2.1",)) == [ss_uuid]
    assert run(source_ids=("9.9",)) == []
    assert run(content_type_codes=(Code("report", SCHEME_CONTENT),)) == [ss_uuid]
    assert run(content_type_codes=(Code("other", SCHEME_CONTENT),)) == []
    assert run(submission_time_from="20241224153000") == [ss_uuid]
    assert run(submission_time_from="20241224153001") == []
    assert run(submission_time_to="20241224153000") == []
    assert run(submission_time_to="2025") == [ss_uuid]
    assert run(author_person="%Claes%") == [ss_uuid]
    assert run(author_person="%Benali%") == []
    assert run(statuses=(DEPRECATED,)) == []


@pytest.mark.parametrize(
    "query",
    [
        FindFolders(patient_id=PID_A),
        GetFolders(entry_uuids=("urn:uuid:cccccccc-0000-4000-8000-0000000000cc",)),
        GetFolderAndContents(unique_ids=("1.2.3",)),
        GetFoldersForDocument(unique_ids=("1.2.3",)),
    ],
)
def test_folder_queries_answer_empty(hub: HubEnv, query: object) -> None:
    hub.publish(make_entry())
    assert hub.registry.stored_query(query).size == 0  # type: ignore[arg-type]


def test_get_related_documents_without_relations_is_empty(hub: HubEnv) -> None:
    published = hub.publish(make_entry())
    result = hub.registry.stored_query(GetRelatedDocuments(entry_uuids=(published.uuid(),)))
    assert result.size == 0


# ============================================================================================== ITI-43


def test_12029_12021_retrieve_documents_with_mime_type(hub: HubEnv) -> None:
    a = make_entry("Document01", mime_type="application/pdf")
    b = make_entry("Document02", mime_type="text/xml")
    hub.publish(a, b)
    outcome = hub.registry.retrieve([(REPO, a.unique_id or ""), (REPO, b.unique_id or "")])
    assert outcome.status == STATUS_SUCCESS
    assert outcome.problems == []
    got = {d.unique_id: d for d in outcome.documents}
    assert got[a.unique_id or ""].mime_type == "application/pdf"
    assert got[b.unique_id or ""].mime_type == "text/xml"
    for entry in (a, b):
        doc = got[entry.unique_id or ""]
        data = content_for(entry)
        assert doc.path.read_bytes() == data
        assert (doc.hash, doc.size, doc.sha256) == (digest(data).sha1, len(data), digest(data).sha256)
        assert doc.repository_unique_id == REPO


def test_15816_retrieve_unknown_document_fails(hub: HubEnv) -> None:
    outcome = hub.registry.retrieve([(REPO, "1.2.3.404")])
    assert outcome.status == STATUS_FAILURE
    assert codes(outcome.problems) == {"XDSDocumentUniqueIdError"}
    assert outcome.documents == []


def test_15816_retrieve_some_found_is_partial_success(hub: HubEnv) -> None:
    entry = make_entry()
    hub.publish(entry)
    outcome = hub.registry.retrieve([(REPO, entry.unique_id or ""), (REPO, "1.2.3.404")])
    assert outcome.status == STATUS_PARTIAL_SUCCESS
    assert [d.unique_id for d in outcome.documents] == [entry.unique_id]
    assert codes(outcome.problems) == {"XDSDocumentUniqueIdError"}
    assert not outcome.ok


def test_15816_retrieve_from_unknown_repository_fails(hub: HubEnv) -> None:
    entry = make_entry()
    hub.publish(entry)
    outcome = hub.registry.retrieve([("1.2.3.4.5.6", entry.unique_id or "")])
    assert outcome.status == STATUS_FAILURE
    assert codes(outcome.problems) == {"XDSUnknownRepositoryId"}


def test_retrieve_deprecated_document_still_works(hub: HubEnv) -> None:
    original = make_entry()
    first = hub.publish(original)
    hub.publish(make_entry(), relations=[(RPLC, "Document01", first.uuid())])
    assert hub.registry.retrieve([(REPO, original.unique_id or "")]).ok


def test_retrieve_nothing_is_a_failure(hub: HubEnv) -> None:
    assert hub.registry.retrieve([]).status == STATUS_FAILURE


# ============================================================================================== ITI-57


def test_update_status_deprecates_and_restores(hub: HubEnv) -> None:
    published = hub.publish(make_entry())
    outcome = hub.registry.update_status(published.uuid(), APPROVED, DEPRECATED, patient_id=PID_A)
    assert outcome.ok, outcome.problems
    assert find(hub) == []
    back = hub.registry.update_status(published.uuid(), DEPRECATED, APPROVED, patient_id=PID_A)
    assert back.ok
    assert len(find(hub)) == 1
    assocs = hub.registry.stored_query(GetAssociations(entry_uuids=(published.uuid(),))).associations
    updates = [a for a in assocs if a.type is AssociationType.UPDATE_AVAILABILITY_STATUS]
    assert [(a.original_status, a.new_status) for a in updates] == [(APPROVED, DEPRECATED), (DEPRECATED, APPROVED)]


def test_update_status_of_unknown_entry(hub: HubEnv) -> None:
    outcome = hub.registry.update_status(
        "urn:uuid:dddddddd-0000-4000-8000-0000000000dd", APPROVED, DEPRECATED, patient_id=None
    )
    assert codes(outcome.problems) == {"XDSMetadataUpdateError"}


def test_update_status_with_wrong_original_status(hub: HubEnv) -> None:
    published = hub.publish(make_entry())
    outcome = hub.registry.update_status(published.uuid(), DEPRECATED, APPROVED, patient_id=PID_A)
    assert outcome.status == STATUS_FAILURE
    assert codes(outcome.problems) == {"XDSMetadataUpdateError"}
    assert len(find(hub)) == 1


def test_update_status_for_another_patient(hub: HubEnv) -> None:
    published = hub.publish(make_entry())
    outcome = hub.registry.update_status(published.uuid(), APPROVED, DEPRECATED, patient_id=PID_B)
    assert codes(outcome.problems) == {"XDSPatientIdDoesNotMatch"}
    assert len(find(hub)) == 1


def test_update_status_cannot_reapprove_a_replaced_document(hub: HubEnv) -> None:
    original = hub.publish(make_entry())
    hub.publish(make_entry(), relations=[(RPLC, "Document01", original.uuid())])
    outcome = hub.registry.update_status(original.uuid(), DEPRECATED, APPROVED, patient_id=PID_A)
    assert codes(outcome.problems) == {"XDSMetadataUpdateError"}


def test_update_status_many_is_all_or_nothing(hub: HubEnv) -> None:
    a = hub.publish(make_entry())
    b = hub.publish(make_entry())
    updates = [
        Association(
            entry_uuid="up1",
            type=AssociationType.UPDATE_AVAILABILITY_STATUS,
            source="SubmissionSet01",
            target=a.uuid(),
            original_status=APPROVED,
            new_status=DEPRECATED,
        ),
        Association(
            entry_uuid="up2",
            type=AssociationType.UPDATE_AVAILABILITY_STATUS,
            source="SubmissionSet01",
            target=b.uuid(),
            original_status=DEPRECATED,  # wrong
            new_status=APPROVED,
        ),
    ]
    outcome = hub.registry.update_status_many(updates, PID_A)
    assert outcome.status == STATUS_FAILURE
    assert len(find(hub)) == 2
    fixed = [updates[0], replace(updates[1], original_status=APPROVED, new_status=DEPRECATED)]
    outcome = hub.registry.update_status_many(fixed, PID_A)
    assert outcome.ok
    assert set(outcome.registered) == {"up1", "up2"}
    assert find(hub) == []


def test_malformed_status_update_is_refused(hub: HubEnv) -> None:
    published = hub.publish(make_entry())
    outcome = hub.registry.update_status(published.uuid(), APPROVED, APPROVED, patient_id=PID_A)
    assert codes(outcome.problems) == {"XDSMetadataUpdateError"}
    assert hub.registry.update_status_many([], None).status == STATUS_FAILURE


# ============================================================================================== concurrency, health


def test_concurrent_submissions_from_threads(hub: HubEnv) -> None:
    errors: list[BaseException] = []
    outcomes: list[bool] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for i in range(5):
                sub = make_submission([make_entry(f"Document{i}", patient=(PID_A, PID_B, PID_C)[n % 3])])
                ok = hub.registry.provide_and_register(sub, documents_for(sub)).ok
                found = hub.registry.stored_query(FindDocuments(patient_id=sub.submission_set.patient_id or ""))
                with lock:
                    outcomes.append(ok and len(found.entries) > 0)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert outcomes == [True] * 30
    assert hub.counts() == (30, 30, 30, 30, 30)
    with hub.store.read() as r:
        assert r.count("submissions") == 30
    assert hub.store._connection().execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_concurrent_replacements_of_one_document_only_one_wins(hub: HubEnv) -> None:
    original = hub.publish(make_entry())
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        sub = make_submission([make_entry()], relations=[(RPLC, "Document01", original.uuid())])
        docs = documents_for(sub)
        barrier.wait()
        results.append(hub.registry.provide_and_register(sub, docs).ok)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [False, False, False, True]


def test_healthy(hub: HubEnv) -> None:
    assert hub.registry.healthy()
    hub.store.close()
    assert not hub.registry.healthy()

"""Fixtures for the hub's store and registry tests: a fresh store per test, submissions built by hand.

Submissions are built field by field (not with the SDK builder) so each test controls exactly what is sent,
including what is missing or wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from rsb_connector.hub.auth import BREAK_THE_GLASS_HEADER
from rsb_connector.hub.registry import IncomingDocument, Outcome, Registry
from rsb_connector.hub.server import Hub
from rsb_connector.hub.store import SqliteStore
from rsb_connector.metadata.content import digest
from rsb_connector.metadata.model import (
    Association,
    AssociationType,
    Author,
    Code,
    DocumentEntry,
    Submission,
    SubmissionSet,
    SubmissionSetStatus,
)
from rsb_connector.security.identity import Identity
from rsb_connector.security.jwt import make_client_assertion
from rsb_connector.security.pki import PkiDescription
from rsb_connector.testing import SyncASGITransport
from rsb_connector.xds.constants import DEFAULT_REPOSITORY_UNIQUE_ID

SSIN_OID = "2.16.840.1.113883.3.6777.5.1"
PID_A = f"73032929895^^^&{SSIN_OID}&ISO"
PID_B = f"72022102793^^^&{SSIN_OID}&ISO"
PID_C = f"82121210976^^^&{SSIN_OID}&ISO"
PID_UNKNOWN = f"17073003384^^^&{SSIN_OID}&ISO"  # valid SSIN, never registered
REPO = DEFAULT_REPOSITORY_UNIQUE_ID

SCHEME_CLASS = "1.3.6.1.4.1.48336.1.1"
SCHEME_TYPE = "1.3.6.1.4.1.48336.1.2"
SCHEME_FORMAT = "1.3.6.1.4.1.19376.1.2.3"
SCHEME_FACILITY = "1.3.6.1.4.1.48336.1.3"
SCHEME_PRACTICE = "1.3.6.1.4.1.48336.1.4"
SCHEME_CONF = "2.16.840.1.113883.5.25"
SCHEME_EVENT = "1.3.6.1.4.1.48336.1.5"
SCHEME_CONTENT = "1.3.6.1.4.1.48336.1.6"

DR_CLAES = "12345625004^Claes^Sophie^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO"
DR_BENALI = "14087170580^Benali^Karim^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO"

FIXED_NOW = datetime(2024, 12, 24, 15, 30, 0, tzinfo=UTC)

_counter = itertools.count(1)


def new_oid() -> str:
    """A fresh uniqueId for this test session."""
    return f"1.3.6.1.4.1.21367.2017.99.{next(_counter)}"


def make_entry(
    entry_id: str = "Document01",
    *,
    patient: str = PID_A,
    unique_id: str | None = None,
    class_code: str = "report",
    type_code: str = "labresult",
    format_code: str = "urn:ihe:iti:xds:2017:mimeTypeSufficient",
    facility: str = "hospital",
    practice: str = "cardiology",
    confidentiality: Sequence[str] = ("N",),
    events: Sequence[str] = (),
    creation_time: str | None = "20240101120000",
    service_start: str | None = None,
    service_stop: str | None = None,
    authors: Sequence[str] = (DR_CLAES,),
    reference_ids: Sequence[str] = (),
    mime_type: str | None = "text/plain",
    language: str | None = "fr-BE",
    title: str | None = "Lab result",
) -> DocumentEntry:
    """A complete, valid DocumentEntry (override any field)."""
    return DocumentEntry(
        entry_uuid=entry_id,
        unique_id=unique_id or new_oid(),
        patient_id=patient,
        mime_type=mime_type,
        class_code=Code(class_code, SCHEME_CLASS, class_code.title()),
        type_code=Code(type_code, SCHEME_TYPE, type_code),
        format_code=Code(format_code, SCHEME_FORMAT),
        healthcare_facility_type_code=Code(facility, SCHEME_FACILITY),
        practice_setting_code=Code(practice, SCHEME_PRACTICE),
        confidentiality_codes=[Code(c, SCHEME_CONF) for c in confidentiality],
        event_codes=[Code(e, SCHEME_EVENT) for e in events],
        creation_time=creation_time,
        language_code=language,
        source_patient_id=patient,
        source_patient_info=["PID-5|Doe^John"],
        service_start_time=service_start,
        service_stop_time=service_stop,
        title=title,
        authors=[Author(person=p, institutions=("Hospital^^^^^^^^^1.2.3",), roles=("attending",)) for p in authors],
        reference_ids=list(reference_ids),
    )


def make_submission(
    entries: Sequence[DocumentEntry],
    *,
    patient: str | None = None,
    ss_id: str = "SubmissionSet01",
    unique_id: str | None = None,
    relations: Sequence[tuple[AssociationType, str, str]] = (),
    references: Sequence[str] = (),
    author: str | None = DR_CLAES,
) -> Submission:
    """A SubmissionSet holding ``entries`` (HasMember Original each), plus relationship associations
    ``(type, source, target)`` and HasMember Reference associations to registered ``references``."""
    pid = patient or (entries[0].patient_id if entries else PID_A)
    ss = SubmissionSet(
        entry_uuid=ss_id,
        unique_id=unique_id or new_oid(),
        source_id="1.3.6.1.4.1.21367.2017.2.1",
        patient_id=pid,
        submission_time="20241224153000",
        content_type_code=Code("report", SCHEME_CONTENT),
        authors=[Author(person=author)] if author else [],
    )
    associations = [
        Association(
            entry_uuid=f"hm-{e.entry_uuid}",
            type=AssociationType.HAS_MEMBER,
            source=ss_id,
            target=e.entry_uuid,
            submission_set_status=SubmissionSetStatus.ORIGINAL,
        )
        for e in entries
    ]
    associations += [
        Association(
            entry_uuid=f"ref-{i}",
            type=AssociationType.HAS_MEMBER,
            source=ss_id,
            target=target,
            submission_set_status=SubmissionSetStatus.REFERENCE,
        )
        for i, target in enumerate(references)
    ]
    associations += [
        Association(entry_uuid=f"rel-{i}", type=kind, source=source, target=target)
        for i, (kind, source, target) in enumerate(relations)
    ]
    return Submission(
        submission_set=ss,
        entries=list(entries),
        associations=associations,
        document_ids=[e.entry_uuid for e in entries],
    )


def content_for(entry: DocumentEntry) -> bytes:
    """Deterministic, distinct content for an entry."""
    return f"content of {entry.unique_id}\n".encode()


def documents_for(submission: Submission, **overrides: bytes) -> dict[str, IncomingDocument]:
    """Inline documents for every entry (``overrides`` by entry id)."""
    out: dict[str, IncomingDocument] = {}
    for e in submission.entries:
        data = overrides.get(e.entry_uuid, content_for(e))
        out[e.entry_uuid] = IncomingDocument(path=None, data=data, digest=digest(data))
    return out


@dataclass
class Published:
    """The result of publishing: the outcome and the registered ids of the entries by their symbolic id."""

    outcome: Outcome
    submission: Submission
    ids: dict[str, str] = field(default_factory=dict)

    def uuid(self, symbolic: str = "Document01") -> str:
        return self.ids[symbolic]


@dataclass
class HubEnv:
    """A registry over a fresh store, with three registered patients."""

    store: SqliteStore
    registry: Registry
    data_dir: Path

    def publish(self, *entries: DocumentEntry, **kwargs: object) -> Published:
        """Provide-and-register ``entries`` in one submission; assert success."""
        sub = make_submission(entries, **kwargs)  # type: ignore[arg-type]
        outcome = self.registry.provide_and_register(sub, documents_for(sub))
        assert outcome.ok, [str(p) for p in outcome.problems]
        return Published(outcome, sub, dict(outcome.registered))

    def counts(self) -> tuple[int, int, int, int, int]:
        """(entries, submission sets, associations, submissions, blobs) now in the store."""
        with self.store.read() as r:
            return (
                r.count("entries"),
                r.count("submission_sets"),
                r.count("associations"),
                r.count("submissions"),
                self.store.blob_count(),
            )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore.open(tmp_path / "hub")
    yield s
    s.close()


@pytest.fixture
def hub(store: SqliteStore) -> HubEnv:
    registry = Registry(store, max_results=50, clock=lambda: FIXED_NOW)
    for pid in (PID_A, PID_B, PID_C):
        registry.register_patient(pid, {"note": "test patient"})
    return HubEnv(store=store, registry=registry, data_dir=store.data_dir)


# ---------------------------------------------------------------------------------------------- FHIR over HTTP

FHIR_BASE = "http://rsb-hub.test"


@pytest.fixture
def http(rsb_hub: Hub) -> Iterator[httpx.Client]:
    """An httpx client on the session hub's app, in process."""
    with httpx.Client(transport=SyncASGITransport(rsb_hub.app), base_url=FHIR_BASE) as client:
        yield client


@pytest.fixture
def bearer(
    http: httpx.Client, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> Callable[..., dict[str, str]]:
    """``bearer("gp", glass=...)``: FHIR headers with that sample identity's access token (and a break-the-glass
    reason)."""
    tokens: dict[str, str] = {}

    def headers(name: str, *, glass: str | None = None) -> dict[str, str]:
        if name not in tokens:
            assertion = make_client_assertion(rsb_identity(name), token_url=f"{FHIR_BASE}/oauth2/token")
            answer = http.post(
                "/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": assertion,
                },
            )
            assert answer.status_code == 200, answer.text
            tokens[name] = answer.json()["access_token"]
        out = {"authorization": f"Bearer {tokens[name]}", "accept": "application/fhir+json"}
        if glass is not None:
            out[BREAK_THE_GLASS_HEADER] = glass
        return out

    return headers

"""XDS.b cases (``conformance/catalogue/xds.toml``): the hub as Document Repository and Document Registry.

Apart from XDS-001 (the SDK round trip), the cases talk to the hub through the raw peer of
:mod:`~rsb_connector.conformance.wire`: it sends exactly the metadata a case builds (the SDK would refuse invalid
metadata before sending it) and gives back the response status and every ``RegistryError`` as the hub wrote them.
Metadata is built with :mod:`rsb_connector.metadata.builder` and then, for the negative cases, broken on purpose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

from lxml import etree

from ...errors import Problem
from ...identifiers import Ssin
from ...metadata.builder import new_document, new_submission, new_uuid
from ...metadata.model import (
    Association,
    AssociationType,
    AvailabilityStatus,
    Code,
    DocumentEntry,
    Submission,
    SubmissionSet,
)
from ...query import (
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
    Query,
    ReturnType,
)
from ...xds import constants as c
from ...xds import iti18, iti43
from ...xds.rs import RegistryResult
from .. import wire
from ..context import AUTHOR, CaseContext
from . import implements

PDF = b"%PDF-1.7\n% rsb-connector conformance document\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
TEXT: Final = "text/plain"
PDF_TYPE: Final = "application/pdf"
APPROVED: Final = AvailabilityStatus.APPROVED
DEPRECATED: Final = AvailabilityStatus.DEPRECATED
BOTH: Final = (APPROVED, DEPRECATED)
HAS_MEMBER: Final = AssociationType.HAS_MEMBER


# ============================================================================================== helpers


class _Answer(Protocol):
    """What every XDS response gives: the status URN and the RegistryErrors."""

    status: str
    problems: list[Problem]


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _cx(ssin: str) -> str:
    """The XDS patient id (CX) of an SSIN."""
    return Ssin(ssin).to_cx()


def _short(status: str) -> str:
    return status.rsplit(":", 1)[-1]


def _outcome(answer: _Answer) -> str:
    """``Failure: XDSx at path: message; ...`` for reports."""
    text = _short(answer.status)
    if answer.problems:
        text += ": " + "; ".join(str(p) for p in answer.problems)
    return text


def _errors(answer: _Answer) -> list[Problem]:
    return [p for p in answer.problems if p.is_error]


def _uid(entry: DocumentEntry | SubmissionSet) -> str:
    return entry.unique_id or ""


def _uids(entries: Iterable[DocumentEntry | SubmissionSet]) -> list[str]:
    """The uniqueIds, sorted (duplicates kept: a duplicate is a defect the comparison must see)."""
    return sorted(_uid(e) for e in entries)


def _code(entry: DocumentEntry, attribute: str) -> Code:
    value = getattr(entry, attribute)
    if not isinstance(value, Code):  # the builder always fills the codes in
        raise RuntimeError(f"the case's own entry has no {attribute}")
    return value


def _links(associations: Iterable[Association]) -> list[tuple[str, str, str]]:
    """Associations as sorted ``(type, source, target)`` triples."""
    return sorted((a.type.short, a.source, a.target) for a in associations)


def _succeeded(t: CaseContext, answer: _Answer, what: str) -> None:
    """Check a Success status without any error."""
    t.check(
        answer.status == c.STATUS_SUCCESS and not _errors(answer),
        f"{what}: status {c.STATUS_SUCCESS} without errors",
        got=_outcome(answer),
    )


def _refused(t: CaseContext, answer: _Answer, codes: str | tuple[str, ...], what: str) -> Problem:
    """Check a Failure status carrying an error of one of ``codes``; that error."""
    wanted = (codes,) if isinstance(codes, str) else codes
    expected = " or ".join(wanted)
    t.check(
        answer.status == c.STATUS_FAILURE, f"{what}: status {c.STATUS_FAILURE} with {expected}", got=_outcome(answer)
    )
    matching = [p for p in _errors(answer) if p.code in wanted]
    t.check(matching, f"{what}: an error with errorCode {expected}", got=_outcome(answer))
    t.observe(str(matching[0]))
    return matching[0]


def _empty(t: CaseContext, answer: iti18.QueryResponse, what: str) -> None:
    """Check an empty Success: no error, no object at all."""
    _succeeded(t, answer, what)
    objects = len(answer.entries) + len(answer.submission_sets) + len(answer.associations) + len(answer.object_refs)
    t.check(
        objects == 0,
        f"{what}: no object in the answer",
        got={
            "entries": _uids(answer.entries),
            "submission sets": _uids(answer.submission_sets),
            "associations": _links(answer.associations),
            "object refs": answer.object_refs,
        },
    )


def _exactly(t: CaseContext, answer: iti18.QueryResponse, expected: Iterable[str], what: str) -> None:
    """Check a Success whose DocumentEntries are exactly the ``expected`` uniqueIds (each once)."""
    _succeeded(t, answer, what)
    want = sorted(expected)
    t.check(
        _uids(answer.entries) == want,
        f"{what}: exactly {want}" if want else f"{what}: no entry",
        got=_uids(answer.entries),
    )


def _names(problem: Problem, attribute: str) -> bool:
    """Whether ``problem`` names ``attribute`` in its location or its text (case and spacing aside)."""
    flat = "".join(ch for ch in f"{problem.path} {problem.message}".lower() if ch.isalnum())
    return attribute.lower() in flat


class _Xds:
    """The case's raw XDS.b peer (signing as the suite's author) and the moves the cases share."""

    def __init__(self, t: CaseContext) -> None:
        self.t = t
        self.peer = t.peer(AUTHOR)

    # ------------------------------------------------------------------------------------------ ITI-41
    def entry(
        self,
        patient: str,
        content: bytes,
        *,
        document_type: str = "contactreport",
        mime_type: str = TEXT,
        **options: Any,
    ) -> DocumentEntry:
        """A complete DocumentEntry for ``content`` by the suite's author (hash and size filled in)."""
        return new_document(
            content,
            patient=patient,
            document_type=document_type,
            author=self.t.author(),
            mime_type=mime_type,
            **options,
        )

    def submission(
        self, *documents: tuple[DocumentEntry, bytes], associations: Sequence[Association] = (), **options: Any
    ) -> tuple[Submission, dict[str, bytes]]:
        """A submission of ``documents`` (plus ``associations``) and the contents by Document id."""
        submission = new_submission([entry for entry, _ in documents], **options)
        submission.associations.extend(associations)
        return submission, {entry.entry_uuid: data for entry, data in documents}

    def provide(self, submission: Submission, documents: Mapping[str, bytes]) -> RegistryResult:
        """ITI-41 exactly as given (MTOM)."""
        return wire.provide(self.peer, submission, documents)

    def submit(
        self, *documents: tuple[DocumentEntry, bytes], associations: Sequence[Association] = (), **options: Any
    ) -> tuple[Submission, RegistryResult]:
        """Build a submission of ``documents`` and provide it."""
        submission, contents = self.submission(*documents, associations=associations, **options)
        return submission, self.provide(submission, contents)

    def relate(
        self, patient: str, kind: AssociationType, target: str, content: bytes, **options: Any
    ) -> tuple[DocumentEntry, RegistryResult]:
        """Provide a new document related to the registered entry ``target`` (entryUUID) by ``kind``."""
        entry = self.entry(patient, content, **options)
        association = Association(entry_uuid=new_uuid(), type=kind, source=entry.entry_uuid, target=target)
        _, result = self.submit((entry, content), associations=[association])
        return entry, result

    # ------------------------------------------------------------------------------------------ ITI-57
    def deprecate(self, patient: str, entry_uuid: str) -> RegistryResult:
        """ITI-57: Approved → Deprecated."""
        return wire.update_status(
            self.peer, patient_id=_cx(patient), entry_uuid=entry_uuid, original=APPROVED, new=DEPRECATED
        )

    # ------------------------------------------------------------------------------------------ ITI-18
    def query(self, query: Query) -> iti18.QueryResponse:
        return wire.query(self.peer, query)

    def find(
        self, patient: str, statuses: tuple[AvailabilityStatus, ...] = (APPROVED,), **filters: Any
    ) -> iti18.QueryResponse:
        """FindDocuments for ``patient``."""
        return self.query(FindDocuments(patient_id=_cx(patient), statuses=statuses, **filters))

    def registered(self, *entries: DocumentEntry) -> dict[str, DocumentEntry]:
        """The registry's entries for these entries' uniqueIds (GetDocuments), by uniqueId; checks the query
        succeeded. An entry the registry does not hold is absent from the answer."""
        answer = self.query(GetDocuments(unique_ids=tuple(_uid(e) for e in entries)))
        _succeeded(self.t, answer, "GetDocuments")
        return {_uid(e): e for e in answer.entries}

    def set_uuids(self, patient: str, *submissions: Submission) -> dict[str, str]:
        """The registry's entryUUIDs of these submissions' SubmissionSets, by uniqueId (FindSubmissionSets; checks
        they are all there)."""
        answer = self.query(FindSubmissionSets(patient_id=_cx(patient)))
        _succeeded(self.t, answer, "FindSubmissionSets")
        found = {_uid(s): s.entry_uuid for s in answer.submission_sets}
        wanted = [_uid(s.submission_set) for s in submissions]
        self.t.check(
            set(wanted) <= set(found), f"FindSubmissionSets finds the SubmissionSets {wanted}", got=sorted(found)
        )
        return {uid: found[uid] for uid in wanted}

    def stored(self, entry: DocumentEntry) -> DocumentEntry:
        """The registry's entry for ``entry`` (checked to exist)."""
        found = self.registered(entry).get(_uid(entry))
        self.t.check(found is not None, f"GetDocuments finds the registered document {_uid(entry)}", got=None)
        assert found is not None
        return found

    def without(self, query: Query, *slots: str) -> tuple[wire.Exchange, iti18.QueryResponse]:
        """Send ``query`` with the parameter ``slots`` removed (a query the SDK could not send)."""
        payload = iti18.build_request(query)
        adhoc = payload.find(f"{{{c.RIM}}}AdhocQuery")
        assert adhoc is not None
        for slot in adhoc.findall(f"{{{c.RIM}}}Slot"):
            if slot.get("name") in slots:
                adhoc.remove(slot)
        return self.post_query(payload)

    def post_query(self, payload: etree._Element) -> tuple[wire.Exchange, iti18.QueryResponse]:
        exchange = wire.post(self.peer, "/xds/registry", payload, c.ACTION_ITI18, mtom=False)
        self.t.check(
            exchange.message.action == c.ACTION_ITI18_RESPONSE,
            f"the answer's wsa:Action is {c.ACTION_ITI18_RESPONSE}",
            got=exchange.message.action,
        )
        return exchange, iti18.parse_response(exchange.payload)

    # ------------------------------------------------------------------------------------------ ITI-43
    def retrieve(self, requests: Sequence[tuple[str, str]]) -> tuple[iti43.RetrieveResponse, dict[str, bytes]]:
        """ITI-43 (MTOM) for ``(repositoryUniqueId, documentUniqueId)`` pairs; the bytes by uniqueId."""
        return wire.retrieve(self.peer, requests)

    def repository(self, entry: DocumentEntry) -> str:
        """The repositoryUniqueId the registered entry names (checked to be there)."""
        stored = self.stored(entry)
        self.t.check(stored.repository_unique_id, "the registered entry names its repositoryUniqueId", got=None)
        return stored.repository_unique_id or ""


# ============================================================================================== ITI-41


@implements("XDS-001")
def single_document(t: CaseContext) -> None:
    patient = t.new_patient()
    vault = t.client()
    with t.step(1):
        receipt = vault.publish(
            PDF, patient=patient, document_type="contactreport", author=t.author(), mime_type="application/pdf"
        )
        t.observe(f"published {receipt.document.unique_id}")
    with t.step(2):
        found = vault.find(patient=patient)
        t.check(
            [e.unique_id for e in found] == [receipt.document.unique_id],
            "FindDocuments lists exactly the published entry",
            got=[e.unique_id for e in found],
        )
        entry = found[0]
        t.check(
            entry.availability_status is AvailabilityStatus.APPROVED,
            "the entry is Approved",
            got=entry.availability_status,
        )
        sha1 = hashlib.sha1(PDF, usedforsecurity=False).hexdigest()
        t.check(entry.hash == sha1, "the registry keeps the SHA-1 of the content", got=entry.hash)
        t.check(entry.size == len(PDF), "the registry keeps the size of the content", got=entry.size)
    with t.step(3):
        document = vault.retrieve(entry, verify=False)
        data = document.content or b""
        t.check(
            hashlib.sha256(data).digest() == hashlib.sha256(PDF).digest(), "the same bytes come back", got=len(data)
        )
        t.observe(f"{len(data)} bytes, {document.mime_type}")


@implements("XDS-002")
def two_documents(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    note = b"XDS-002 consultation note\r\n"
    sent = [(x.entry(patient, note), note), (x.entry(patient, PDF, mime_type=PDF_TYPE), PDF)]
    with t.step(1):
        submission, result = x.submit(*sent)
        _succeeded(t, result, "the two-document submission")
    with t.step(2):
        found = x.find(patient)
        _exactly(t, found, [_uid(e) for e, _ in sent], "FindDocuments")
        by_uid = {_uid(e): e for e in found.entries}
        for entry, content in sent:
            got = by_uid[_uid(entry)]
            t.check(got.availability_status is APPROVED, f"{_uid(entry)} is Approved", got=got.availability_status)
            t.check(
                got.mime_type == entry.mime_type, f"{_uid(entry)} keeps mimeType {entry.mime_type}", got=got.mime_type
            )
            t.check((got.hash or "").lower() == _sha1(content), f"{_uid(entry)} has its own SHA-1", got=got.hash)
            t.check(got.size == len(content), f"{_uid(entry)} has its own size {len(content)}", got=got.size)
    with t.step(3):
        ss_uid = _uid(submission.submission_set)
        contents = x.query(GetSubmissionSetAndContents(unique_ids=(ss_uid,)))
        _exactly(t, contents, [_uid(e) for e, _ in sent], "GetSubmissionSetAndContents")
        t.check(
            _uids(contents.submission_sets) == [ss_uid],
            "exactly the SubmissionSet",
            got=_uids(contents.submission_sets),
        )
        ss_uuid = contents.submission_sets[0].entry_uuid
        expected = sorted((HAS_MEMBER.short, ss_uuid, e.entry_uuid) for e in contents.entries)
        t.check(
            _links(contents.associations) == expected,
            "exactly two HasMember associations, from the SubmissionSet to each entry",
            got=_links(contents.associations),
        )


def _replacement(t: CaseContext, x: _Xds, patient: str, kind: AssociationType) -> tuple[DocumentEntry, DocumentEntry]:
    """Steps 1–4 of XDS-003 / XDS-006: an original, its replacement by ``kind``, statuses, the association.
    Returns the registry's original and replacement entries."""
    original = x.entry(patient, b"original version\r\n")
    with t.step(1):
        _, result = x.submit((original, b"original version\r\n"))
        _succeeded(t, result, "the original")
    with t.step(2):
        old = x.stored(original)
        replacement, result = x.relate(patient, kind, old.entry_uuid, b"new version\r\n")
        _succeeded(t, result, f"the {kind.short} submission")
    with t.step(3):
        got = x.registered(original, replacement)
        t.check(len(got) == 2, "the original and the replacement are registered", got=sorted(got))
        t.check(
            got[_uid(original)].availability_status is DEPRECATED,
            "the original is Deprecated",
            got=got[_uid(original)].availability_status.short,
        )
        t.check(
            got[_uid(replacement)].availability_status is APPROVED,
            "the replacement is Approved",
            got=got[_uid(replacement)].availability_status.short,
        )
        _exactly(t, x.find(patient), [_uid(replacement)], "FindDocuments (Approved)")
        new = got[_uid(replacement)]
    with t.step(4):
        answer = x.query(GetAssociations(entry_uuids=(old.entry_uuid,)))
        _succeeded(t, answer, "GetAssociations")
        wanted = (kind.short, new.entry_uuid, old.entry_uuid)
        t.check(
            wanted in _links(answer.associations),
            f"a {kind.short} association from the replacement to the original",
            got=_links(answer.associations),
        )
    return old, new


@implements("XDS-003")
def replace(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    old, _ = _replacement(t, x, patient, AssociationType.RPLC)
    with t.step(5):
        again, result = x.relate(patient, AssociationType.RPLC, old.entry_uuid, b"third version\r\n")
        _refused(t, result, "XDSRegistryDeprecatedDocumentError", "replacing a Deprecated document")
        t.check(not x.registered(again), "the second replacement is not registered", got=_uid(again))


def _related_to_approved_only(t: CaseContext, kind: AssociationType) -> None:
    """XDS-004 / XDS-005: an APND or XFRM to an Approved document is stored (the target stays Approved); to a
    Deprecated one it is refused."""
    patient = t.new_patient()
    x = _Xds(t)
    a, b = x.entry(patient, b"document A\r\n"), x.entry(patient, b"document B\r\n")
    with t.step(1):
        _, result = x.submit((a, b"document A\r\n"), (b, b"document B\r\n"))
        _succeeded(t, result, "documents A and B")
    with t.step(2):
        stored = x.registered(a, b)
        t.check(sorted(stored) == _uids([a, b]), "A and B are registered", got=sorted(stored))
        _, result = x.relate(patient, AssociationType.RPLC, stored[_uid(b)].entry_uuid, b"document B, v2\r\n")
        _succeeded(t, result, "the replacement of B")
    with t.step(3):
        added, result = x.relate(patient, kind, stored[_uid(a)].entry_uuid, b"about A\r\n")
        _succeeded(t, result, f"the {kind.short} to A")
    with t.step(4):
        refused, result = x.relate(patient, kind, stored[_uid(b)].entry_uuid, b"about B\r\n")
        _refused(t, result, "XDSRegistryDeprecatedDocumentError", f"an {kind.short} to the Deprecated B")
    with t.step(5):
        got = x.registered(a, added, refused)
        t.check(_uid(refused) not in got, f"the refused {kind.short} document is not registered", got=sorted(got))
        t.check(
            _uid(added) in got and _uid(a) in got, f"A and the {kind.short} document are registered", got=sorted(got)
        )
        statuses = {n: got[_uid(e)].availability_status.short for n, e in (("A", a), (kind.short, added))}
        t.check(
            statuses == {"A": "Approved", kind.short: "Approved"}, "A and the new document are Approved", got=statuses
        )
        a_uuid = got[_uid(a)].entry_uuid
        answer = x.query(GetAssociations(entry_uuids=(a_uuid,)))
        _succeeded(t, answer, "GetAssociations")
        wanted = (kind.short, got[_uid(added)].entry_uuid, a_uuid)
        t.check(
            wanted in _links(answer.associations),
            f"an {kind.short} association from the new document to A",
            got=_links(answer.associations),
        )


@implements("XDS-004")
def addendum(t: CaseContext) -> None:
    _related_to_approved_only(t, AssociationType.APND)


@implements("XDS-005")
def transformation(t: CaseContext) -> None:
    _related_to_approved_only(t, AssociationType.XFRM)


@implements("XDS-006")
def transform_and_replace(t: CaseContext) -> None:
    _replacement(t, _Xds(t), t.new_patient(), AssociationType.XFRM_RPLC)


@implements("XDS-007")
def deprecate(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    entry = x.entry(patient, b"to be withdrawn\r\n")
    with t.step(1):
        _, result = x.submit((entry, b"to be withdrawn\r\n"))
        _succeeded(t, result, "the document")
    with t.step(2):
        stored = x.stored(entry)
        _succeeded(t, x.deprecate(patient, stored.entry_uuid), "the ITI-57 status update")
    with t.step(3):
        _exactly(t, x.find(patient, (APPROVED,)), [], "FindDocuments (Approved)")
    with t.step(4):
        found = x.find(patient, (DEPRECATED,))
        _exactly(t, found, [_uid(entry)], "FindDocuments (Deprecated)")
        status = found.entries[0].availability_status
        t.check(status is DEPRECATED, "the entry's availabilityStatus is Deprecated", got=status.short)
    with t.step(5):
        _refused(t, x.deprecate(patient, stored.entry_uuid), "XDSMetadataUpdateError", "a stale status update")
        status = x.stored(entry).availability_status
        t.check(status is DEPRECATED, "the entry stays Deprecated", got=status.short)


@implements("XDS-008")
def all_or_nothing(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    good, bad = x.entry(patient, b"valid entry\r\n"), x.entry(patient, b"entry without typeCode\r\n")
    submission, contents = x.submission((good, b"valid entry\r\n"), (bad, b"entry without typeCode\r\n"))
    bad.type_code = None
    with t.step(1):
        _refused(t, x.provide(submission, contents), "XDSRegistryMetadataError", "a submission with one bad entry")
    with t.step(2):
        _exactly(t, x.find(patient, (APPROVED,)), [], "FindDocuments (Approved)")
        _exactly(t, x.find(patient, (DEPRECATED,)), [], "FindDocuments (Deprecated)")
        t.check(not x.registered(good), "the valid entry was not stored either", got=_uid(good))


@implements("XDS-009")
def same_unique_id(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    content, other = b"the one and only version\r\n", b"a different document\r\n"
    entry = x.entry(patient, content)
    uid = _uid(entry)
    with t.step(1):
        _succeeded(t, x.submit((entry, content))[1], "the document")
    with t.step(2):
        _succeeded(t, x.submit((x.entry(patient, content, unique_id=uid), content))[1], "the identical resubmission")
    with t.step(3):
        answer = x.query(GetDocuments(unique_ids=(uid,)))
        _exactly(t, answer, [uid], "GetDocuments")
        t.check(
            (answer.entries[0].hash or "").lower() == _sha1(content),
            "the SHA-1 of the content",
            got=answer.entries[0].hash,
        )
    with t.step(4):
        _refused(
            t,
            x.submit((x.entry(patient, other, unique_id=uid), other))[1],
            "XDSNonIdenticalHash",
            "other content under the uniqueId",
        )
    with t.step(5):
        answer = x.query(GetDocuments(unique_ids=(uid,)))
        _exactly(t, answer, [uid], "GetDocuments")
        kept = answer.entries[0]
        t.check(
            ((kept.hash or "").lower(), kept.size) == (_sha1(content), len(content)),
            "the registered entry keeps the original SHA-1 and size",
            got=(kept.hash, kept.size),
        )


@implements("XDS-010")
def reused_entry_uuid(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    first, second = b"document A\r\n", b"document B, same entryUUID\r\n"
    a = x.entry(patient, first)
    with t.step(1):
        _succeeded(t, x.submit((a, first))[1], "document A")
        stored = x.stored(a)
        t.observe(f"A is {stored.entry_uuid}")
    b = x.entry(patient, second, entry_uuid=stored.entry_uuid)
    with t.step(2):
        result = x.submit((b, second))[1]
        t.check(
            result.status == c.STATUS_FAILURE and _errors(result),
            f"status {c.STATUS_FAILURE} with an error for the re-used entryUUID",
            got=_outcome(result),
        )
        t.observe(_outcome(result))
    with t.step(3):
        answer = x.query(GetDocuments(entry_uuids=(stored.entry_uuid,)))
        _exactly(t, answer, [_uid(a)], f"GetDocuments for {stored.entry_uuid}")
        t.check((answer.entries[0].hash or "").lower() == _sha1(first), "A keeps its SHA-1", got=answer.entries[0].hash)
        t.check(not x.registered(b), "B is not registered", got=_uid(b))


@implements("XDS-011")
def supplied_hash_and_size(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    for step, content, upper in ((1, b"hash in lower case\r\n", False), (2, b"hash in UPPER case\r\n", True)):
        entry = x.entry(patient, content)
        entry.hash = _sha1(content).upper() if upper else _sha1(content)
        entry.size = len(content)
        with t.step(step):
            _succeeded(t, x.submit((entry, content))[1], f"a document with hash {entry.hash} and size {entry.size}")
            stored = x.stored(entry)
            t.check((stored.hash or "").lower() == _sha1(content), "the registered SHA-1", got=stored.hash)
            t.check(stored.size == len(content), "the registered size", got=stored.size)


def _wrong_digest(t: CaseContext, *, hash_value: str | None = None, size_delta: int = 0) -> None:
    """XDS-012 / XDS-013: a supplied hash or size that does not match the content."""
    patient = t.new_patient()
    x = _Xds(t)
    content = b"the content whose digest is misstated\r\n"
    entry = x.entry(patient, content)
    if hash_value is not None:
        entry.hash = hash_value
    entry.size = len(content) + size_delta
    with t.step(1):
        _refused(
            t, x.submit((entry, content))[1], "XDSRepositoryMetadataError", f"hash {entry.hash}, size {entry.size}"
        )
    with t.step(2):
        t.check(not x.registered(entry), "nothing was stored", got=_uid(entry))


@implements("XDS-012")
def wrong_hash(t: CaseContext) -> None:
    _wrong_digest(t, hash_value=_sha1(b"other bytes"))


@implements("XDS-013")
def wrong_size(t: CaseContext) -> None:
    _wrong_digest(t, size_delta=1)


@implements("XDS-014")
def missing_document(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    entry = x.entry(patient, b"never attached\r\n")
    submission, _ = x.submission((entry, b"never attached\r\n"))
    with t.step(1):
        _refused(t, x.provide(submission, {}), "XDSMissingDocument", "an entry without its document")
    with t.step(2):
        t.check(not x.registered(entry), "nothing was stored", got=_uid(entry))


@implements("XDS-015")
def missing_document_metadata(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    content = b"a document with its entry\r\n"
    entry = x.entry(patient, content)
    submission, contents = x.submission((entry, content))
    contents[new_uuid()] = b"a document without entry\r\n"
    with t.step(1):
        _refused(t, x.provide(submission, contents), "XDSMissingDocumentMetadata", "a document without its entry")
    with t.step(2):
        t.check(not x.registered(entry), "nothing was stored", got=_uid(entry))


@implements("XDS-016")
def patient_ids_differ(t: CaseContext) -> None:
    a, b = t.new_patient(), t.new_patient()
    x = _Xds(t)
    content = b"patient A's document\r\n"
    entry = x.entry(a, content)
    submission, contents = x.submission((entry, content))
    submission.submission_set.patient_id = _cx(b)
    with t.step(1):
        _refused(t, x.provide(submission, contents), "XDSPatientIdDoesNotMatch", "an entry of another patient")
    with t.step(2):
        _exactly(t, x.find(a, BOTH), [], "FindDocuments for patient A")
        _exactly(t, x.find(b, BOTH), [], "FindDocuments for patient B")


@implements("XDS-017")
def unknown_patient(t: CaseContext) -> None:
    x = _Xds(t)
    content = b"for nobody the hub knows\r\n"
    entry = x.entry(t.fresh_ssin(), content)
    with t.step(1):
        _refused(t, x.submit((entry, content))[1], "XDSUnknownPatientId", "a never registered patient")
    with t.step(2):
        t.check(not x.registered(entry), "nothing was stored", got=_uid(entry))


REQUIRED_ATTRIBUTES: Final = (
    ("classCode", "class_code"),
    ("typeCode", "type_code"),
    ("formatCode", "format_code"),
    ("confidentialityCode", "confidentiality_codes"),
    ("creationTime", "creation_time"),
    ("healthcareFacilityTypeCode", "healthcare_facility_type_code"),
    ("practiceSettingCode", "practice_setting_code"),
    ("languageCode", "language_code"),
    ("sourcePatientId", "source_patient_id"),
)
"""The DocumentEntry attributes ITI TF-3 Table 4.3.1-3 requires (NIST 11998a), as XDS names them and as the
metadata model does; XDS-018 leaves out one per step."""


@implements("XDS-018")
def missing_required_attributes(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    sent: list[DocumentEntry] = []
    for step, (name, attribute) in enumerate(REQUIRED_ATTRIBUTES, 1):
        content = f"a document without {name}\r\n".encode()
        entry = x.entry(patient, content)
        submission, contents = x.submission((entry, content))  # built whole first: the set's contentType needs it
        setattr(entry, attribute, [] if attribute == "confidentiality_codes" else None)
        sent.append(entry)
        with t.step(step):
            result = x.provide(submission, contents)
            _refused(t, result, "XDSRegistryMetadataError", f"a document without {name}")
            named = [p for p in _errors(result) if p.code == "XDSRegistryMetadataError" and _names(p, name)]
            t.check(named, f"an XDSRegistryMetadataError naming {name}", got=_outcome(result))
            t.observe(str(named[0]))
    with t.step(len(REQUIRED_ATTRIBUTES) + 1):
        _exactly(t, x.find(patient, BOTH), [], "FindDocuments (Approved and Deprecated)")
        t.check(not x.registered(*sent), "GetDocuments finds none of the nine", got=sorted(x.registered(*sent)))


@implements("XDS-019")
def duplicate_unique_id_in_message(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    first, second = x.entry(patient, b"first document\r\n"), x.entry(patient, b"second document\r\n")
    submission, contents = x.submission((first, b"first document\r\n"), (second, b"second document\r\n"))
    second.unique_id = first.unique_id
    with t.step(1):
        _refused(
            t,
            x.provide(submission, contents),
            ("XDSRegistryDuplicateUniqueIdInMessage", "XDSRepositoryDuplicateUniqueIdInMessage"),
            "two documents under one uniqueId",
        )
    with t.step(2):
        t.check(not x.registered(first), "nothing registered under the uniqueId", got=_uid(first))
        _exactly(t, x.find(patient, BOTH), [], "FindDocuments")


# ============================================================================================== ITI-18


@implements("XDS-020")
def find_documents(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    a = x.entry(patient, b"contact report, 2020\r\n", document_type="contactreport", creation_time="20200115")
    b = x.entry(patient, b"lab result, 2022\r\n", document_type="labresult", creation_time="20220610120000")
    ua, ub = _uid(a), _uid(b)
    with t.step(1):
        _succeeded(t, x.submit((a, b"contact report, 2020\r\n"), (b, b"lab result, 2022\r\n"))[1], "A and B")
    with t.step(2):
        class_a, class_b = _code(a, "class_code"), _code(b, "class_code")
        _exactly(t, x.find(patient, class_codes=(class_a,)), [ua], f"classCode {class_a}")
        _exactly(t, x.find(patient, class_codes=(class_b,)), [ub], f"classCode {class_b}")
        _exactly(t, x.find(patient, class_codes=(class_a, class_b)), [ua, ub], "both classCodes")
    with t.step(3):
        window = x.find(patient, creation_time_from="20200101", creation_time_to="20210101")
        _exactly(t, window, [ua], "creationTime From 20200101 To 20210101")
        _exactly(t, x.find(patient, creation_time_from="20220610"), [ub], "creationTime From 20220610 (inclusive)")
        _exactly(t, x.find(patient, creation_time_to="20200115"), [], "creationTime To 20200115 (exclusive)")
    with t.step(4):
        stored = x.registered(a, b)
        t.check(sorted(stored) == sorted([ua, ub]), "A and B are registered", got=sorted(stored))
        _succeeded(t, x.deprecate(patient, stored[ub].entry_uuid), "the ITI-57 deprecation of B")
    with t.step(5):
        _exactly(t, x.find(patient, (APPROVED,)), [ua], "status Approved")
        _exactly(t, x.find(patient, (DEPRECATED,)), [ub], "status Deprecated")
        _exactly(t, x.find(patient, BOTH), [ua, ub], "status Approved and Deprecated")
    with t.step(6):
        refs = x.find(patient, BOTH, return_type=ReturnType.OBJECT_REF)
        _succeeded(t, refs, "FindDocuments (ObjectRef)")
        t.check(not refs.entries, "no full objects in an ObjectRef answer", got=_uids(refs.entries))
        wanted = sorted(stored[u].entry_uuid for u in (ua, ub))
        t.check(sorted(refs.object_refs) == wanted, "exactly A's and B's entryUUIDs", got=sorted(refs.object_refs))


@implements("XDS-021")
def find_submission_sets(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    other_source = t.unique_id()
    one, _ = x.submission((x.entry(patient, b"first submission\r\n"), b"first submission\r\n"))
    two, _ = x.submission(
        (x.entry(patient, b"second submission\r\n"), b"second submission\r\n"), source_id=other_source
    )
    sets = {_uid(s.submission_set): s.submission_set for s in (one, two)}
    with t.step(1):
        for submission, content in ((one, b"first submission\r\n"), (two, b"second submission\r\n")):
            _succeeded(t, x.provide(submission, {submission.entries[0].entry_uuid: content}), "a submission")
    with t.step(2):
        answer = x.query(FindSubmissionSets(patient_id=_cx(patient)))
        _succeeded(t, answer, "FindSubmissionSets")
        t.check(
            _uids(answer.submission_sets) == sorted(sets),
            "exactly the two SubmissionSets",
            got=_uids(answer.submission_sets),
        )
        for got in answer.submission_sets:
            sent = sets[_uid(got)]
            t.check(
                (got.source_id, got.patient_id) == (sent.source_id, sent.patient_id),
                f"SubmissionSet {_uid(got)} keeps its sourceId and patientId",
                got=(got.source_id, got.patient_id),
            )
        registered = sorted(s.entry_uuid for s in answer.submission_sets)
    with t.step(3):
        answer = x.query(FindSubmissionSets(patient_id=_cx(patient), source_ids=(other_source,)))
        _succeeded(t, answer, "FindSubmissionSets by sourceId")
        t.check(
            _uids(answer.submission_sets) == [_uid(two.submission_set)],
            "exactly the second",
            got=_uids(answer.submission_sets),
        )
    with t.step(4):
        answer = x.query(
            FindSubmissionSets(patient_id=_cx(patient), submission_time_from="2000", submission_time_to="2001")
        )
        _empty(t, answer, "FindSubmissionSets for submissionTime 2000")
        content_type = one.submission_set.content_type_code
        assert content_type is not None  # the builder fills it in
        answer = x.query(FindSubmissionSets(patient_id=_cx(patient), content_type_codes=(content_type,)))
        _succeeded(t, answer, f"FindSubmissionSets for contentType {content_type}")
        t.check(_uids(answer.submission_sets) == sorted(sets), "both SubmissionSets", got=_uids(answer.submission_sets))
    with t.step(5):
        answer = x.query(FindSubmissionSets(patient_id=_cx(patient), return_type=ReturnType.OBJECT_REF))
        _succeeded(t, answer, "FindSubmissionSets (ObjectRef)")
        t.check(not answer.submission_sets, "no full objects", got=_uids(answer.submission_sets))
        t.check(sorted(answer.object_refs) == registered, "exactly the two entryUUIDs", got=sorted(answer.object_refs))


@implements("XDS-022")
def find_folders(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    with t.step(1):
        _succeeded(
            t, x.submit((x.entry(patient, b"filed in no folder\r\n"), b"filed in no folder\r\n"))[1], "the document"
        )
    with t.step(2):
        _empty(t, x.query(FindFolders(patient_id=_cx(patient))), "FindFolders")


def _original_and_replacement(t: CaseContext, x: _Xds, patient: str) -> tuple[Submission, Submission]:
    """Steps 1–2 of XDS-023 / XDS-026: document A, then B replacing it (RPLC). Returns both submissions."""
    a = x.entry(patient, b"document A\r\n")
    with t.step(1):
        first, result = x.submit((a, b"document A\r\n"))
        _succeeded(t, result, "document A")
    with t.step(2):
        b = x.entry(patient, b"document B replaces A\r\n")
        rplc = Association(
            entry_uuid=new_uuid(), type=AssociationType.RPLC, source=b.entry_uuid, target=x.stored(a).entry_uuid
        )
        second, result = x.submit((b, b"document B replaces A\r\n"), associations=[rplc])
        _succeeded(t, result, "B replacing A")
    return first, second


@implements("XDS-023")
def get_all(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    first, second = _original_and_replacement(t, x, patient)
    a, b = first.entries[0], second.entries[0]
    with t.step(3):
        answer = x.query(GetAll(patient_id=_cx(patient)))
        _exactly(t, answer, [_uid(a), _uid(b)], "GetAll")
        entries = {_uid(e): e for e in answer.entries}
        statuses = (entries[_uid(a)].availability_status.short, entries[_uid(b)].availability_status.short)
        t.check(statuses == ("Deprecated", "Approved"), "A is Deprecated, B Approved", got=statuses)
        wanted_sets = _uids([first.submission_set, second.submission_set])
        t.check(
            _uids(answer.submission_sets) == wanted_sets,
            "exactly the two SubmissionSets",
            got=_uids(answer.submission_sets),
        )
        sets = {_uid(s): s.entry_uuid for s in answer.submission_sets}
        ua, ub = entries[_uid(a)].entry_uuid, entries[_uid(b)].entry_uuid
        expected = sorted(
            [
                (HAS_MEMBER.short, sets[_uid(first.submission_set)], ua),
                (HAS_MEMBER.short, sets[_uid(second.submission_set)], ub),
                (AssociationType.RPLC.short, ub, ua),
            ]
        )
        t.check(
            _links(answer.associations) == expected,
            "exactly the two HasMember and the RPLC",
            got=_links(answer.associations),
        )
    with t.step(4):
        answer = x.query(GetAll(patient_id=_cx(patient), document_statuses=(APPROVED,)))
        _exactly(t, answer, [_uid(b)], "GetAll (DocumentEntries Approved)")
        t.check(_uids(answer.submission_sets) == wanted_sets, "both SubmissionSets", got=_uids(answer.submission_sets))


@implements("XDS-024")
def get_documents(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    a, b = x.entry(patient, b"document A\r\n"), x.entry(patient, PDF, mime_type=PDF_TYPE)
    ua, ub = _uid(a), _uid(b)
    with t.step(1):
        _succeeded(t, x.submit((a, b"document A\r\n"), (b, PDF))[1], "A and B")
    with t.step(2):
        answer = x.query(GetDocuments(unique_ids=(ua,)))
        _exactly(t, answer, [ua], "GetDocuments by uniqueId A")
        got = answer.entries[0]
        checks = {
            "patientId": (got.patient_id, a.patient_id),
            "classCode": (
                (got.class_code.code, got.class_code.scheme) if got.class_code else None,
                (_code(a, "class_code").code, _code(a, "class_code").scheme),
            ),
            "mimeType": (got.mime_type, a.mime_type),
            "hash": ((got.hash or "").lower(), a.hash),
            "size": (got.size, a.size),
        }
        wrong = {k: v for k, v in checks.items() if v[0] != v[1]}
        t.check(not wrong, "A's metadata as sent (got, sent)", got=wrong)
        t.check(got.repository_unique_id, "A names its repositoryUniqueId", got=got.repository_unique_id)
        _exactly(t, x.query(GetDocuments(unique_ids=(ua, ub))), [ua, ub], "GetDocuments by uniqueIds A and B")
        uuids = {_uid(e): e.entry_uuid for e in x.query(GetDocuments(unique_ids=(ua, ub))).entries}
    with t.step(3):
        _exactly(t, x.query(GetDocuments(entry_uuids=(uuids[ua],))), [ua], "GetDocuments by entryUUID A")
        _exactly(
            t, x.query(GetDocuments(entry_uuids=(uuids[ua], uuids[ub]))), [ua, ub], "GetDocuments by entryUUIDs A and B"
        )
    with t.step(4):
        _empty(t, x.query(GetDocuments(unique_ids=(t.unique_id(),))), "GetDocuments for an unknown uniqueId")


def _no_folder(t: CaseContext, kind: type[GetFolders] | type[GetFolderAndContents]) -> None:
    """XDS-025 / XDS-030: a folder query by entryUUID, then by uniqueId, of folders never registered."""
    x = _Xds(t)
    with t.step(1):
        _empty(t, x.query(kind(entry_uuids=(new_uuid(),))), f"{kind.__name__} by entryUUID")
    with t.step(2):
        _empty(t, x.query(kind(unique_ids=(t.unique_id(),))), f"{kind.__name__} by uniqueId")


@implements("XDS-025")
def get_folders(t: CaseContext) -> None:
    _no_folder(t, GetFolders)


@implements("XDS-026")
def get_associations(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    first, second = _original_and_replacement(t, x, patient)
    with t.step(3):
        stored = x.registered(first.entries[0], second.entries[0])
        ua, ub = stored[_uid(first.entries[0])].entry_uuid, stored[_uid(second.entries[0])].entry_uuid
        ss = x.set_uuids(patient, first, second)
        has_a = (HAS_MEMBER.short, ss[_uid(first.submission_set)], ua)
        has_b = (HAS_MEMBER.short, ss[_uid(second.submission_set)], ub)
        rplc = (AssociationType.RPLC.short, ub, ua)
        answer = x.query(GetAssociations(entry_uuids=(ua,)))
        _succeeded(t, answer, "GetAssociations for A")
        t.check(
            _links(answer.associations) == sorted([has_a, rplc]),
            "exactly A's HasMember and the RPLC",
            got=_links(answer.associations),
        )
    with t.step(4):
        answer = x.query(GetAssociations(entry_uuids=(ua, ub)))
        _succeeded(t, answer, "GetAssociations for A and B")
        t.check(
            _links(answer.associations) == sorted([has_a, has_b, rplc]),
            "exactly the two HasMember and the RPLC",
            got=_links(answer.associations),
        )


@implements("XDS-027")
def get_documents_and_associations(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    a = x.entry(patient, b"document A\r\n")
    cd = [
        (x.entry(patient, b"document C\r\n"), b"document C\r\n"),
        (x.entry(patient, b"document D\r\n"), b"document D\r\n"),
    ]
    with t.step(1):
        alone, result = x.submit((a, b"document A\r\n"))
        _succeeded(t, result, "A alone")
        pair, result = x.submit(*cd)
        _succeeded(t, result, "C and D together")
        stored = x.registered(a, *(e for e, _ in cd))
        t.check(len(stored) == 3, "A, C and D are registered", got=sorted(stored))
        ss = x.set_uuids(patient, alone, pair)
    with t.step(2):
        answer = x.query(GetDocumentsAndAssociations(unique_ids=(_uid(a),)))
        _exactly(t, answer, [_uid(a)], "GetDocumentsAndAssociations for A")
        wanted = [(HAS_MEMBER.short, ss[_uid(alone.submission_set)], stored[_uid(a)].entry_uuid)]
        t.check(_links(answer.associations) == wanted, "exactly the HasMember to A", got=_links(answer.associations))
    with t.step(3):
        uuids = tuple(stored[_uid(e)].entry_uuid for e, _ in cd)
        answer = x.query(GetDocumentsAndAssociations(entry_uuids=uuids))
        _exactly(t, answer, [_uid(e) for e, _ in cd], "GetDocumentsAndAssociations for C and D")
        wanted = sorted((HAS_MEMBER.short, ss[_uid(pair.submission_set)], u) for u in uuids)
        t.check(
            _links(answer.associations) == wanted,
            "exactly the two HasMember to C and D",
            got=_links(answer.associations),
        )


@implements("XDS-028")
def get_submission_sets(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    a, b, cc = (x.entry(patient, f"document {n}\r\n".encode()) for n in "ABC")
    with t.step(1):
        one, result = x.submit((a, b"document A\r\n"))
        _succeeded(t, result, "A alone")
        two, result = x.submit((b, b"document B\r\n"), (cc, b"document C\r\n"))
        _succeeded(t, result, "B and C together")
        u = {k: e.entry_uuid for k, e in x.registered(a, b, cc).items()}
        t.check(len(u) == 3, "A, B and C are registered", got=sorted(u))
    ua, ub, uc = u[_uid(a)], u[_uid(b)], u[_uid(cc)]
    ss1, ss2 = _uid(one.submission_set), _uid(two.submission_set)

    def ask(uuids: tuple[str, ...], sets: list[str], members: list[tuple[str, str]], what: str) -> None:
        answer = x.query(GetSubmissionSets(entry_uuids=uuids))
        _succeeded(t, answer, what)
        t.check(
            _uids(answer.submission_sets) == sorted(sets),
            f"{what}: exactly {sorted(sets)}",
            got=_uids(answer.submission_sets),
        )
        by_uid = {_uid(s): s.entry_uuid for s in answer.submission_sets}
        wanted = sorted((HAS_MEMBER.short, by_uid.get(s, "?"), m) for s, m in members)
        t.check(
            _links(answer.associations) == wanted,
            f"{what}: exactly the HasMember associations",
            got=_links(answer.associations),
        )

    with t.step(2):
        ask((ua,), [ss1], [(ss1, ua)], "GetSubmissionSets for A")
    with t.step(3):
        ask((ub, uc), [ss2], [(ss2, ub), (ss2, uc)], "GetSubmissionSets for B and C")
    with t.step(4):
        ask((ua, ub), [ss1, ss2], [(ss1, ua), (ss2, ub)], "GetSubmissionSets for A and B")


@implements("XDS-029")
def get_submission_set_and_contents(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    a, b = x.entry(patient, b"document A\r\n"), x.entry(patient, b"document B\r\n")
    with t.step(1):
        submission, result = x.submit((a, b"document A\r\n"), (b, b"document B\r\n"))
        _succeeded(t, result, "A and B")
    ss_uid = _uid(submission.submission_set)

    def contents(answer: iti18.QueryResponse, what: str) -> tuple[str, list[str]]:
        """Check the five objects; the SubmissionSet's entryUUID and the ids of all five."""
        _exactly(t, answer, [_uid(a), _uid(b)], what)
        sets = _uids(answer.submission_sets)
        t.check(sets == [ss_uid], f"{what}: exactly the SubmissionSet", got=sets)
        ss = answer.submission_sets[0].entry_uuid
        wanted = sorted((HAS_MEMBER.short, ss, e.entry_uuid) for e in answer.entries)
        links = _links(answer.associations)
        t.check(links == wanted, f"{what}: exactly the two HasMember, from the SubmissionSet to A and B", got=links)
        return ss, sorted([ss, *(e.entry_uuid for e in answer.entries), *(s.entry_uuid for s in answer.associations)])

    with t.step(2):
        ss_uuid, objects = contents(x.query(GetSubmissionSetAndContents(unique_ids=(ss_uid,))), "by uniqueId")
    with t.step(3):
        contents(x.query(GetSubmissionSetAndContents(entry_uuids=(ss_uuid,))), "by entryUUID")
    with t.step(4):
        refs = x.query(GetSubmissionSetAndContents(unique_ids=(ss_uid,), return_type=ReturnType.OBJECT_REF))
        _succeeded(t, refs, "GetSubmissionSetAndContents (ObjectRef)")
        t.check(sorted(refs.object_refs) == objects, "exactly the five objects' ids", got=sorted(refs.object_refs))


@implements("XDS-030")
def get_folder_and_contents(t: CaseContext) -> None:
    _no_folder(t, GetFolderAndContents)


@implements("XDS-031")
def get_folders_for_document(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    entry = x.entry(patient, b"filed in no folder\r\n")
    with t.step(1):
        _succeeded(t, x.submit((entry, b"filed in no folder\r\n"))[1], "the document")
    with t.step(2):
        _empty(t, x.query(GetFoldersForDocument(unique_ids=(_uid(entry),))), "GetFoldersForDocument by uniqueId")
    with t.step(3):
        stored = x.stored(entry)
        _empty(
            t, x.query(GetFoldersForDocument(entry_uuids=(stored.entry_uuid,))), "GetFoldersForDocument by entryUUID"
        )


@implements("XDS-032")
def get_related_documents(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    a, cc = x.entry(patient, b"document A\r\n"), x.entry(patient, b"document C\r\n")
    with t.step(1):
        _succeeded(t, x.submit((a, b"document A\r\n"), (cc, b"document C\r\n"))[1], "A and C")
    with t.step(2):
        stored = x.registered(a, cc)
        t.check(len(stored) == 2, "A and C are registered", got=sorted(stored))
        b, result = x.relate(patient, AssociationType.APND, stored[_uid(a)].entry_uuid, b"addendum B to A\r\n")
        _succeeded(t, result, "the addendum B")
    ua, uc = stored[_uid(a)].entry_uuid, stored[_uid(cc)].entry_uuid
    with t.step(3):
        answer = x.query(GetRelatedDocuments(entry_uuids=(ua,), association_types=(AssociationType.APND,)))
        _exactly(t, answer, [_uid(a), _uid(b)], "GetRelatedDocuments (APND) for A")
        ub = next(e.entry_uuid for e in answer.entries if _uid(e) == _uid(b))
        wanted = [(AssociationType.APND.short, ub, ua)]
        t.check(_links(answer.associations) == wanted, "exactly the APND from B to A", got=_links(answer.associations))
    with t.step(4):
        answer = x.query(GetRelatedDocuments(unique_ids=(_uid(a),), association_types=(AssociationType.RPLC,)))
        _empty(t, answer, "GetRelatedDocuments (RPLC) for A")
    with t.step(5):
        _empty(t, x.query(GetRelatedDocuments(entry_uuids=(uc,))), "GetRelatedDocuments for C")


@implements("XDS-033")
def find_documents_by_reference_id(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    authority = t.unique_id()
    order1, order2 = (f"{n}^^^&{authority}&ISO^urn:ihe:iti:xds:2013:order" for n in ("order-1", "order-2"))
    a = x.entry(patient, b"for order 1\r\n", reference_ids=[order1])
    b = x.entry(patient, b"for order 2\r\n", reference_ids=[order2])
    cc = x.entry(patient, b"no order\r\n")
    with t.step(1):
        _succeeded(
            t, x.submit((a, b"for order 1\r\n"), (b, b"for order 2\r\n"), (cc, b"no order\r\n"))[1], "A, B and C"
        )

    def by_reference(*refs: str) -> iti18.QueryResponse:
        return x.query(FindDocumentsByReferenceId(patient_id=_cx(patient), reference_ids=refs))

    with t.step(2):
        _exactly(t, by_reference(order1), [_uid(a)], "order 1")
    with t.step(3):
        _exactly(t, by_reference(order1, order2), [_uid(a), _uid(b)], "orders 1 and 2")
    with t.step(4):
        _empty(t, by_reference(f"order-3^^^&{authority}&ISO^urn:ihe:iti:xds:2013:order"), "an unknown reference id")


@implements("XDS-034")
def unknown_stored_query(t: CaseContext) -> None:
    x = _Xds(t)
    payload = iti18.build_request(FindDocuments(patient_id=_cx(t.fresh_ssin())))
    adhoc = payload.find(f"{{{c.RIM}}}AdhocQuery")
    assert adhoc is not None
    adhoc.set("id", "urn:uuid:00000000-0000-0000-0000-000000000000")
    with t.step(1):
        exchange, answer = x.post_query(payload)
        _refused(t, answer, "XDSUnknownStoredQuery", "an unknown stored query id")
        objects = exchange.payload.find(f"{{{c.RIM}}}RegistryObjectList")
        t.check(objects is not None, "the response carries a rim:RegistryObjectList", got=None)
        assert objects is not None
        t.check(len(objects) == 0, "the RegistryObjectList is empty", got=len(objects))


@implements("XDS-035")
def missing_parameter(t: CaseContext) -> None:
    x = _Xds(t)
    find = FindDocuments(patient_id=_cx(t.fresh_ssin()))
    with t.step(1):
        _, answer = x.without(find, "$XDSDocumentEntryPatientId")
        _refused(t, answer, "XDSStoredQueryMissingParam", "FindDocuments without $XDSDocumentEntryPatientId")
    with t.step(2):
        _, answer = x.without(find, "$XDSDocumentEntryStatus")
        _refused(t, answer, "XDSStoredQueryMissingParam", "FindDocuments without $XDSDocumentEntryStatus")
    with t.step(3):
        _, answer = x.without(GetDocuments(unique_ids=(t.unique_id(),)), "$XDSDocumentEntryUniqueId")
        _refused(t, answer, "XDSStoredQueryMissingParam", "GetDocuments without ids")


@implements("XDS-036")
def result_not_single_patient(t: CaseContext) -> None:
    one, two = t.new_patient(), t.new_patient()
    x = _Xds(t)
    a, b = x.entry(one, b"patient 1's document\r\n"), x.entry(two, b"patient 2's document\r\n")
    with t.step(1):
        _succeeded(t, x.submit((a, b"patient 1's document\r\n"))[1], "A for patient 1")
        _succeeded(t, x.submit((b, b"patient 2's document\r\n"))[1], "B for patient 2")
        uuids = tuple(sorted(x.stored(e).entry_uuid for e in (a, b)))  # one patient per query
    with t.step(2):
        answer = x.query(GetDocuments(entry_uuids=uuids))
        _refused(t, answer, "XDSResultNotSinglePatient", "GetDocuments (LeafClass) across two patients")
        t.check(not answer.entries, "no DocumentEntry is disclosed", got=_uids(answer.entries))
    with t.step(3):
        answer = x.query(GetDocuments(entry_uuids=uuids, return_type=ReturnType.OBJECT_REF))
        _succeeded(t, answer, "GetDocuments (ObjectRef) across two patients")
        t.check(sorted(answer.object_refs) == list(uuids), "exactly the two ObjectRefs", got=sorted(answer.object_refs))


# ============================================================================================== ITI-43


def _retrieved(
    t: CaseContext,
    response: iti43.RetrieveResponse,
    content: Mapping[str, bytes],
    expected: Sequence[tuple[str, str, str, bytes]],
) -> None:
    """Check the DocumentResponses are exactly ``expected`` ``(repository, uniqueId, mimeType, bytes)``."""
    got = sorted(
        (d.request.repository_unique_id, d.request.document_unique_id, d.mime_type) for d in response.documents
    )
    t.check(got == sorted(e[:3] for e in expected), "exactly the documents asked for, each with its mimeType", got=got)
    for _, uid, _, data in expected:
        received = content.get(uid, b"")
        t.check(
            received == data, f"the bytes of {uid} are those sent ({len(data)} bytes)", got=f"{len(received)} bytes"
        )


@implements("XDS-037")
def retrieve_one(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    entry = x.entry(patient, PDF, mime_type=PDF_TYPE)
    with t.step(1):
        _succeeded(t, x.submit((entry, PDF))[1], "the PDF document")
    with t.step(2):
        repository = x.repository(entry)
        response, content = x.retrieve([(repository, _uid(entry))])
        _succeeded(t, response, "Retrieve Document Set")
        _retrieved(t, response, content, [(repository, _uid(entry), PDF_TYPE, PDF)])
        t.observe(f"{len(content[_uid(entry)])} bytes of {PDF_TYPE} from repository {repository}")


@implements("XDS-038")
def retrieve_two(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    note = b"XDS-038 plain text note\r\n"
    text, pdf = x.entry(patient, note), x.entry(patient, PDF, mime_type=PDF_TYPE)
    with t.step(1):
        _succeeded(t, x.submit((text, note), (pdf, PDF))[1], "the two documents")
    with t.step(2):
        repositories = {_uid(e): x.repository(e) for e in (text, pdf)}
        response, content = x.retrieve([(repositories[_uid(e)], _uid(e)) for e in (text, pdf)])
        _succeeded(t, response, "Retrieve Document Set for two documents")
        expected = [
            (repositories[_uid(text)], _uid(text), TEXT, note),
            (repositories[_uid(pdf)], _uid(pdf), PDF_TYPE, PDF),
        ]
        _retrieved(t, response, content, expected)


@implements("XDS-039")
def retrieve_partial(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    note = b"the one that exists\r\n"
    entry = x.entry(patient, note)
    unknown = t.unique_id()
    with t.step(1):
        _succeeded(t, x.submit((entry, note))[1], "the document")
    with t.step(2):
        repository = x.repository(entry)
        response, content = x.retrieve([(repository, _uid(entry)), (repository, unknown)])
        t.check(
            response.status == c.STATUS_PARTIAL_SUCCESS, f"status {c.STATUS_PARTIAL_SUCCESS}", got=_outcome(response)
        )
        _retrieved(t, response, content, [(repository, _uid(entry), TEXT, note)])
        codes = [p.code for p in _errors(response)]
        t.check(
            codes == ["XDSDocumentUniqueIdError"], "exactly one error, XDSDocumentUniqueIdError", got=_outcome(response)
        )
    with t.step(3):
        response, _ = x.retrieve([(repository, unknown)])
        _refused(t, response, "XDSDocumentUniqueIdError", "retrieving only an unknown uniqueId")
        t.check(not response.documents, "no document", got=len(response.documents))


@implements("XDS-040")
def retrieve_unknown_repository(t: CaseContext) -> None:
    patient = t.new_patient()
    x = _Xds(t)
    note = b"held by this repository\r\n"
    entry = x.entry(patient, note)
    with t.step(1):
        _succeeded(t, x.submit((entry, note))[1], "the document")
    with t.step(2):
        response, _ = x.retrieve([(t.unique_id(), _uid(entry))])
        _refused(t, response, "XDSUnknownRepositoryId", "a repositoryUniqueId no repository has")
        t.check(not response.documents, "no document", got=len(response.documents))

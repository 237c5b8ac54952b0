"""The XDS.b Document Registry + Repository of the mock hub, on top of a :class:`~rsb_connector.hub.store.Store`.

No HTTP and no XML here: the routes decode a message into the metadata model, call :class:`Registry`, and encode
the :class:`Outcome` / :class:`QueryResult` / :class:`RetrieveOutcome` it returns. Every refusal carries the
literal XDS error codes (ITI TF-3 Table 4.2.4.1-2), with a path and a message a person can act on.

Decisions where the Technical Framework leaves room (and what IPF / the NIST toolkit do):

- **All or nothing** (ITI-41, NIST 12084): every check runs first and *all* problems are reported; documents are
  adopted into the blob store only on the successful path, inside the write transaction, which commits last.
  Spooled uploads handed over (files inside ``store.spool_dir``) are owned by the registry from then on: moved into
  place on success, deleted on failure. Files elsewhere are copied, never moved.
- **Re-used entryUUID** (NIST 15806): a ``urn:uuid:`` id that already names a registry object is refused with
  ``XDSRegistryMetadataError`` (IPF's ``UUID_NOT_UNIQUE`` carries no specific code, so it falls back to the
  registry metadata error) — unless it names the same document (same uniqueId and hash): see idempotence.
- **Idempotence** (NIST 12004): a DocumentEntry whose uniqueId is already registered with the same hash (and size
  and patient) is accepted and not stored twice; the submission refers to the existing entry. A different hash is
  ``XDSNonIdenticalHash`` (``XDSNonIdenticalSize`` for the size). A submission set whose uniqueId is already
  registered is an *identical retry* when it holds the same documents (uniqueIds and hashes) for the same patient:
  it succeeds and stores nothing; anything else is ``XDSDuplicateUniqueIdInRegistry``.
- **Document relationships**: the target must be a registered DocumentEntry of the same patient
  (``XDSPatientIdDoesNotMatch``) whose status is Approved (``XDSRegistryDeprecatedDocumentError``). An unknown
  target is ``XDSReplaceFailed`` for RPLC / XFRM_RPLC (the replacement cannot be done) and
  ``XDSRegistryMetadataError`` (an unresolved reference) for APND / XFRM / signs. RPLC and XFRM_RPLC deprecate the
  target in the same transaction. The new entry gets its own logicalID.
- **Stored queries**: results above ``max_results`` objects are ``XDSTooManyResults``; a LeafClass answer naming
  several patients is ``XDSResultNotSinglePatient`` (NIST 12368). Folders are not stored: folder queries answer
  empty. Time ranges follow ITI TF-2a 3.18.4.1.2.3.6 (From inclusive, To exclusive) with a coarse stored time taken
  as the interval it denotes (see :mod:`rsb_connector.hub.store`).
- **Consent enforcement**: with an :class:`~rsb_connector.hub.enforcement.Enforcer` every operation is decided by
  the Belgian consent and access rules and audited — a denied ITI-41 is refused whole with
  ``LocalPolicyRestrictionError``; ITI-18 answers as if what the caller may not see were not stored; ITI-43 answers a
  forbidden document exactly like an unknown one; ITI-57 is for a document's authors (see
  :mod:`rsb_connector.hub.enforcement`). Without one (the default) nothing is enforced nor audited. A request made
  of several registry steps (an MHD search, an ITI-68 read) is audited once, under its own transaction
  (:meth:`Registry.find_request`, :meth:`Registry.retrieve_entry`).
- **ITI-57**: the target must be a registered DocumentEntry (else ``XDSMetadataUpdateError``), its current status
  must be the OriginalStatus (else ``XDSMetadataUpdateError``; ``XDSMetadataVersionError`` is for a wrong
  PreviousVersion of a metadata update), the patient must match (``XDSPatientIdDoesNotMatch``), and a document
  deprecated by a replacement cannot be approved again (its replacement is the current version).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ..errors import Problem, QueryError, Severity
from ..identifiers import Cbe, Nihii, mask_ssin, parse_cx
from ..metadata.content import ContentDigest, digest, iter_chunks
from ..metadata.model import (
    DOCUMENT_ENTRY_ON_DEMAND,
    DOCUMENT_ENTRY_STABLE,
    Association,
    AssociationType,
    AvailabilityStatus,
    DocumentEntry,
    Dtm,
    Submission,
    SubmissionSet,
    SubmissionSetStatus,
)
from ..metadata.rules import (
    CodeChecker,
    entry_path,
    validate_hash_and_size,
    validate_status_update,
    validate_submission,
)
from ..policy import Actor, ActorKind
from ..query import (
    FindDocuments,
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
from ..xds.constants import (
    DEFAULT_REPOSITORY_UNIQUE_ID,
    STATUS_FAILURE,
    STATUS_PARTIAL_SUCCESS,
    STATUS_SUCCESS,
)
from .store import QueryReader, Store, StoredEntry, StoreReader

if TYPE_CHECKING:
    from .audit import AuditRecord
    from .enforcement import AccessView, Enforcer, PublishCheck

__all__ = [
    "ANONYMOUS",
    "HUB_OPERATOR_ROLE",
    "PATIENT_ROLE",
    "REPRESENTATIVE_ROLE",
    "Caller",
    "Hub",
    "IncomingDocument",
    "Outcome",
    "QueryResult",
    "Registry",
    "RetrieveOutcome",
    "RetrievedDocument",
    "new_uuid",
    "patient_ssin",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, aware, in UTC (the registry's default clock)."""
    return datetime.now(UTC)


def new_uuid() -> str:
    """A fresh registry object id: ``urn:uuid:`` + a random UUID."""
    return f"urn:uuid:{uuid.uuid4()}"


def _is_uuid(object_id: str) -> bool:
    return object_id.lower().startswith("urn:uuid:")


# ============================================================================================== data


PATIENT_ROLE: Final = "patient"
""":attr:`Caller.role` of a patient (or, with :attr:`Caller.represents`, of a legal representative)."""
REPRESENTATIVE_ROLE: Final = "representative"
""":attr:`Caller.role` of a legal representative acting for the minor named in :attr:`Caller.represents`."""
HUB_OPERATOR_ROLE: Final = "hub-operator"
""":attr:`Caller.role` of the hub's operator (local administration, seeding): registers professionals and legal
representatives; reads and publishes nothing."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a request, as the security layer established it from the verified certificate or token.

    Every registry operation takes one; with an :class:`~rsb_connector.hub.enforcement.Enforcer` the consent and
    access rules decide on it.

    Attributes:
        subject: a printable name of the caller (certificate subject), for logs and the audit trail.
        role: a KMEHR CD-HCPARTY profession code for professionals (``persphysician``...), ``"patient"`` for
            patients, ``"representative"`` for legal representatives, :data:`HUB_OPERATOR_ROLE` for the operator,
            an organisation code (``orghospital``...) for organisations.
        nihii: a professional's or organisation's NIHII.
        ssin: a patient's or legal representative's own SSIN.
        organisation: the organisation the caller belongs to or is (CBE or NIHII number, or a name).
        authenticated: False until the security layer verified who the caller is.
        break_the_glass: an emergency reason (10–200 characters) a professional gives to pass the therapeutic link
            and access matrix barriers; always audited.
        represents: the SSIN of the minor a legal representative acts for.
    """

    subject: str = "anonymous"
    role: str | None = None
    nihii: str | None = None
    ssin: str | None = None
    organisation: str | None = None
    authenticated: bool = False
    break_the_glass: str | None = None
    represents: str | None = None

    @property
    def is_operator(self) -> bool:
        """An authenticated caller in the hub operator's role."""
        return self.authenticated and self.role == HUB_OPERATOR_ROLE

    def actor(self, *, profession: str | None = None) -> Actor:
        """This caller as the policy engine's :class:`~rsb_connector.policy.Actor`.

        - role ``patient`` with :attr:`represents`, or role ``representative``: a legal representative;
        - role ``patient``: a patient;
        - role a CD-HCPARTY ``pers…`` code: a professional of that profession;
        - no role: an 11-digit NIHII makes a professional (profession ``profession``, e.g. from the hub's
          professionals registry, else the NIHII's first digit), an SSIN a patient;
        - anything else (an organisation code, the operator): an organisation, by NIHII or CBE.

        ``authenticated`` carries over: the engine denies an unauthenticated actor whatever its kind.
        """
        role = (self.role or "").strip().casefold()
        auth = self.authenticated
        if role == REPRESENTATIVE_ROLE or (role == PATIENT_ROLE and self.represents):
            return Actor(ActorKind.REPRESENTATIVE, ssin=self.ssin, represents=self.represents, authenticated=auth)
        if role == PATIENT_ROLE:
            return Actor(ActorKind.PATIENT, ssin=self.ssin, authenticated=auth)
        if role.startswith("pers"):
            return Actor(ActorKind.PROFESSIONAL, nihii=self.nihii, profession=role, authenticated=auth)
        if not role:
            if self.nihii and len(_digits(self.nihii)) == 11:
                return Actor(ActorKind.PROFESSIONAL, nihii=self.nihii, profession=profession, authenticated=auth)
            if self.ssin and not self.nihii:
                return Actor(ActorKind.PATIENT, ssin=self.ssin, authenticated=auth)
        nihii = self.nihii
        cbe: str | None = None
        if self.organisation:
            if Cbe.is_valid(self.organisation):
                cbe = self.organisation
            elif nihii is None and Nihii.is_valid(self.organisation):
                nihii = self.organisation
        return Actor(ActorKind.ORGANISATION, nihii=nihii, cbe=cbe, authenticated=auth)


ANONYMOUS = Caller()
"""The unauthenticated caller (what the anonymous authenticator of a first local try produces)."""


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def patient_ssin(patient: str) -> str:
    """The key the hub files a patient's consent, access decisions and audit events under: the SSIN's digits.

    ``patient`` is an SSIN (separators allowed) or an XDS patient id CX (``<ssin>^^^&<OID>&ISO``; the id of a CX of
    another assigning authority is taken as it is, digits only, and matches no consent).

    Raises:
        InvalidIdentifier: a malformed CX.
    """
    if "^" in patient:
        return _digits(parse_cx(patient).id)
    return _digits(patient)


@dataclass(slots=True)
class IncomingDocument:
    """One document as received with an ITI-41: a spooled file or inline bytes, and its digest.

    Exactly one of ``path`` and ``data`` is set. A file inside the store's ``spool_dir`` is *moved* into the blob
    store on success and deleted on failure; a file elsewhere is copied and left alone.
    """

    path: Path | None
    data: bytes | None
    digest: ContentDigest

    @classmethod
    def from_bytes(cls, data: bytes) -> IncomingDocument:
        """Inline content (its digest computed here)."""
        return cls(path=None, data=data, digest=digest(data))

    @classmethod
    def from_file(cls, path: Path) -> IncomingDocument:
        """A file (its digest computed here, streaming)."""
        return cls(path=Path(path), data=None, digest=digest(Path(path)))


@dataclass(slots=True)
class Outcome:
    """The answer to ITI-41 or ITI-57: the ebRS status URN, every problem, and the ids assigned.

    Attributes:
        status: ``…ResponseStatusType:Success`` or ``…:Failure`` (constants in :mod:`rsb_connector.xds.constants`).
        problems: errors (on Failure) and warnings (possible on Success).
        registered: symbolic id (or the submitted ``urn:uuid:``) → the registry's ``urn:uuid:`` entryUUID.
    """

    status: str
    problems: list[Problem] = field(default_factory=list)
    registered: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the request succeeded."""
        return self.status == STATUS_SUCCESS


@dataclass(slots=True)
class QueryResult:
    """The answer to a stored query: full objects (LeafClass) or only their ids (ObjectRef)."""

    entries: list[DocumentEntry] = field(default_factory=list)
    submission_sets: list[SubmissionSet] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    object_refs: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Number of objects returned."""
        return len(self.entries) + len(self.submission_sets) + len(self.associations) + len(self.object_refs)


@dataclass(frozen=True, slots=True)
class RetrievedDocument:
    """One document found by ITI-43: its identity, metadata the response carries, and where its bytes are."""

    repository_unique_id: str
    unique_id: str
    mime_type: str
    sha256: str
    size: int
    hash: str
    path: Path


@dataclass(slots=True)
class RetrieveOutcome:
    """The answer to ITI-43: Success (all found), PartialSuccess (some) or Failure (none), documents and problems."""

    status: str
    documents: list[RetrievedDocument] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every requested document was found."""
        return self.status == STATUS_SUCCESS


class _Refused(Exception):
    """Internal: abort the write transaction (rolls back) after problems were found."""


def _error(code: str, path: str, message: str) -> Problem:
    return Problem(code=code, message=message, path=path, severity=Severity.ERROR)


def _has_errors(problems: Iterable[Problem]) -> bool:
    return any(p.is_error for p in problems)


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    """One problem per (code, path): two checks may flag the same field (e.g. a malformed hash)."""
    seen: set[tuple[str, str]] = set()
    out: list[Problem] = []
    for p in problems:
        key = (p.code, p.path)
        if p.path and key in seen:
            continue
        seen.add(key)
        out.append(p)
    return out


def _mask_cx(value: str | None) -> str:
    return mask_ssin(value) if value else "(none)"


# ============================================================================================== registry


class Registry:
    """XDS Document Registry + Repository semantics: ITI-41, ITI-18, ITI-43 and ITI-57 over a :class:`Store`.

    Args:
        store: where metadata and documents live.
        repository_unique_id: this repository's id (filled into every stored entry; ITI-43 checks it).
        max_results: most objects a stored query may return before ``XDSTooManyResults``.
        value_sets: when given, coded values are checked against it (``XDSRegistryMetadataError``).
        clock: the time source (tests pass a fixed one).
        enforcer: when given, every operation is decided by the Belgian consent and access rules and audited
            (:mod:`rsb_connector.hub.enforcement`); None: no consent enforcement and no audit (a first local try
            with anonymous callers).
    """

    def __init__(
        self,
        store: Store,
        *,
        repository_unique_id: str = DEFAULT_REPOSITORY_UNIQUE_ID,
        max_results: int = 1000,
        value_sets: CodeChecker | None = None,
        clock: Callable[[], datetime] = utcnow,
        enforcer: Enforcer | None = None,
    ) -> None:
        if max_results < 1:
            raise ValueError("max_results must be at least 1")
        self.store = store
        self.repository_unique_id = repository_unique_id
        self.max_results = max_results
        self.value_sets = value_sets
        self.clock = clock
        self.enforcer = enforcer

    # ------------------------------------------------------------------------------------------ patients
    def register_patient(self, patient_id: str, info: Mapping[str, object] | None = None) -> None:
        """Make a patient known to the hub's patient registry (ITI-41 refuses unknown patients)."""
        with self.store.write() as w:
            w.register_patient(patient_id, dict(info or {}))

    # ------------------------------------------------------------------------------------------ ITI-41
    def provide_and_register(
        self,
        submission: Submission,
        documents: Mapping[str, IncomingDocument],
        *,
        caller: Caller | None = None,
        transaction: str = "ITI-41",
    ) -> Outcome:
        """ITI-41 Provide and Register Document Set-b: check everything, then store all of it or nothing.

        ``documents`` maps each Document id (the entryUUID / symbolic id of its DocumentEntry) to its content. The
        caller's ``submission`` is not modified. ``transaction``: what the submission is audited as (``ITI-65`` for
        an MHD Provide Document Bundle).
        """
        checks: list[PublishCheck] = []
        outcome = self._provide_and_register(submission, documents, caller or ANONYMOUS, checks)
        outcome.problems = _dedupe(outcome.problems)
        if self.enforcer is not None and checks:  # audited once the write transaction is over
            self.enforcer.record_publish(
                checks[0], stored=outcome.ok, problems=outcome.problems, transaction=transaction
            )
        return outcome

    def _provide_and_register(
        self,
        submission: Submission,
        documents: Mapping[str, IncomingDocument],
        caller: Caller,
        checks: list[PublishCheck],
    ) -> Outcome:
        owned: list[Path] = []  # spool files this call must remove unless they were adopted
        adopted: set[Path] = set()
        for incoming in documents.values():
            if incoming.path is not None and self._in_spool(incoming.path):
                owned.append(incoming.path)
        try:
            sub = copy.deepcopy(submission)
            declared = list(sub.document_ids)
            sub.document_ids = declared + [d for d in documents if d not in declared]
            problems = validate_submission(sub, value_sets=self.value_sets)
            by_id = {e.entry_uuid: (i, e) for i, e in enumerate(sub.entries)}
            for doc_id in dict.fromkeys(declared):
                if doc_id in by_id and doc_id not in documents:
                    i, entry = by_id[doc_id]
                    problems.append(
                        _error(
                            "XDSMissingDocument",
                            entry_path(entry, i),
                            f"the message names a Document {doc_id!r} but its content was not received: attach the "
                            "document bytes (MTOM part or inline base64)",
                        )
                    )
            digests: dict[str, ContentDigest] = {}
            for doc_id, incoming in documents.items():
                if doc_id not in by_id:
                    continue  # XDSMissingDocumentMetadata, reported by the rules
                i, entry = by_id[doc_id]
                if (incoming.path is None) == (incoming.data is None):
                    problems.append(
                        _error(
                            "XDSRepositoryError",
                            f"Document[{doc_id}]",
                            "the document content could not be read (neither or both of a file and bytes were given)",
                        )
                    )
                    continue
                digests[doc_id] = incoming.digest
                problems += validate_hash_and_size(entry, incoming.digest, path=entry_path(entry, i))
            if _has_errors(problems):
                with self.store.read() as r:  # say also whether the patient is known: every problem at once
                    problems += self._check_patient(r, sub)
                return Outcome(STATUS_FAILURE, problems, {})
            # Every document as a file in the spool directory, ready to be adopted (outside the write lock).
            files = {doc_id: self._spooled(documents[doc_id], owned, problems, doc_id) for doc_id in digests}
            if _has_errors(problems):
                return Outcome(STATUS_FAILURE, problems, {})

            received_at = Dtm.from_datetime(self.clock()).value
            plan = _Plan()
            try:
                with self.store.write() as w:
                    problems += self._check_patient(w, sub)
                    hidden: Callable[[StoredEntry], bool] | None = None
                    if self.enforcer is not None and not _has_errors(problems):
                        check = self.enforcer.check_publish(caller, sub)
                        checks.append(check)
                        problems += check.problems
                        if _has_errors(problems):
                            raise _Refused  # a denied caller learns nothing about the registry's content
                        hidden = self.enforcer.hidden_from(caller)
                    problems += self._check_against_registry(w, sub, digests, plan, hidden=hidden)
                    if self.enforcer is not None and plan.deprecate and not _has_errors(problems):
                        replaced = [s.entry for s in w.entries(entry_uuids=plan.deprecate)]
                        problems += self.enforcer.check_replacements(caller, replaced)
                    if _has_errors(problems):
                        raise _Refused
                    if plan.retry_of is not None:
                        return Outcome(STATUS_SUCCESS, problems, plan.registered)
                    final, blobs = self._prepare(sub, digests, plan)
                    # Content first (fsynced into place), metadata last: the commit is the point of no return.
                    for doc_id in blobs:
                        path = files[doc_id]
                        self.store.adopt_blob(path, digests[doc_id])
                        adopted.add(path)
                    w.add_submission(
                        final,
                        blobs={plan.ids[k]: v for k, v in blobs.items()},
                        received_at=received_at,
                        submitter=caller.subject,
                    )
                    for target in plan.deprecate:
                        w.set_entry_status(target, AvailabilityStatus.DEPRECATED)
            except _Refused:
                return Outcome(STATUS_FAILURE, problems, {})
            return Outcome(STATUS_SUCCESS, problems, plan.registered)
        finally:
            for path in owned:
                if path not in adopted:
                    path.unlink(missing_ok=True)

    def _in_spool(self, path: Path) -> bool:
        try:
            return Path(path).resolve().parent == self.store.spool_dir.resolve()
        except OSError:
            return False

    def _spooled(self, incoming: IncomingDocument, owned: list[Path], problems: list[Problem], doc_id: str) -> Path:
        """A file in the spool directory holding the document, ready to be adopted (a copy unless it is one)."""
        if incoming.path is not None and self._in_spool(incoming.path):
            return incoming.path
        source: bytes | Path = incoming.data if incoming.data is not None else Path(str(incoming.path))
        blob = self.store.spool_blob(iter_chunks(source))
        owned.append(blob.path)
        if blob.digest != incoming.digest:
            problems.append(
                _error(
                    "XDSRepositoryError",
                    f"Document[{doc_id}]",
                    "the document content changed while it was being stored: send it again",
                )
            )
        return blob.path

    def _check_patient(self, r: StoreReader, sub: Submission) -> list[Problem]:
        pid = sub.submission_set.patient_id
        if not pid:
            return []  # reported by the rules
        if r.has_patient(pid):
            return []
        return [
            _error(
                "XDSUnknownPatientId",
                "SubmissionSet.patientId",
                f"patient {_mask_cx(pid)} is not known to this hub's patient registry: use a registered patient "
                "(see seed.json for the mock hub's patients) or register the patient first",
            )
        ]

    def _check_against_registry(
        self,
        r: StoreReader,
        sub: Submission,
        digests: Mapping[str, ContentDigest],
        plan: _Plan,
        *,
        hidden: Callable[[StoredEntry], bool] | None = None,
    ) -> list[Problem]:
        """Registry-state checks: re-used ids, duplicate uniqueIds, relationship targets. Fills ``plan``.

        ``hidden`` tells which registered entries the submitter may not read: referring to one is answered as if it
        were not registered.
        """
        problems: list[Problem] = []
        ss = sub.submission_set
        entry_ids = {e.entry_uuid for e in sub.entries}

        # ---- identical retry of a whole submission (same SubmissionSet uniqueId)
        if ss.unique_id:
            existing_ss = r.submission_sets(unique_ids=[ss.unique_id])
            if existing_ss:
                old_ss = existing_ss[0]
                if self._is_identical_retry(r, sub, digests, old_ss, plan):
                    plan.retry_of = old_ss.entry_uuid
                    return problems
                problems.append(
                    _error(
                        "XDSDuplicateUniqueIdInRegistry",
                        "SubmissionSet.uniqueId",
                        f"a SubmissionSet with uniqueId {ss.unique_id!r} is already registered with other content: "
                        "give every submission a new uniqueId (an identical retry of the same submission is accepted)",
                    )
                )

        # ---- document entries: duplicate uniqueIds in the registry (12004), re-used entryUUIDs (15806)
        stored_by_uid = {
            s.entry.unique_id: s for s in r.entries(unique_ids=[e.unique_id for e in sub.entries if e.unique_id])
        }
        uuid_ids = [o for o in [ss.entry_uuid, *entry_ids, *(a.entry_uuid for a in sub.associations)] if _is_uuid(o)]
        kinds = r.object_kinds(uuid_ids)
        for i, entry in enumerate(sub.entries):
            path = entry_path(entry, i)
            stored = stored_by_uid.get(entry.unique_id) if entry.unique_id else None
            dig = digests.get(entry.entry_uuid)
            if stored is not None:
                old = stored.entry
                if dig is not None and (old.hash or "").lower() != dig.sha1:
                    problems.append(
                        _error(
                            "XDSNonIdenticalHash",
                            f"{path}.uniqueId",
                            f"uniqueId {entry.unique_id!r} is already registered for a document with another hash "
                            f"({old.hash}, received {dig.sha1}): a changed document needs a new uniqueId (and an RPLC "
                            "association to replace the old one)",
                        )
                    )
                elif dig is not None and old.size is not None and old.size != dig.size:
                    problems.append(
                        _error(
                            "XDSNonIdenticalSize",
                            f"{path}.uniqueId",
                            f"uniqueId {entry.unique_id!r} is already registered for a document of {old.size} bytes, "
                            f"received {dig.size}: a changed document needs a new uniqueId",
                        )
                    )
                elif old.patient_id != entry.patient_id:
                    problems.append(
                        _error(
                            "XDSPatientIdDoesNotMatch",
                            f"{path}.patientId",
                            f"uniqueId {entry.unique_id!r} is already registered for another patient: a document "
                            "belongs to one patient",
                        )
                    )
                elif _is_uuid(entry.entry_uuid) and entry.entry_uuid != old.entry_uuid and entry.entry_uuid in kinds:
                    problems.append(self._reused_uuid(path, entry.entry_uuid, kinds[entry.entry_uuid]))
                else:
                    plan.duplicates[entry.entry_uuid] = old.entry_uuid
                continue
            if _is_uuid(entry.entry_uuid) and entry.entry_uuid in kinds:
                problems.append(self._reused_uuid(path, entry.entry_uuid, kinds[entry.entry_uuid]))

        if _is_uuid(ss.entry_uuid) and ss.entry_uuid in kinds:
            problems.append(self._reused_uuid("SubmissionSet", ss.entry_uuid, kinds[ss.entry_uuid]))

        # ---- associations: references to registry objects, relationship targets
        message_ids = {ss.entry_uuid, *entry_ids, *(a.entry_uuid for a in sub.associations)}
        external = [
            ref
            for a in sub.associations
            for ref in (a.source, a.target)
            if ref and ref not in message_ids and _is_uuid(ref)
        ]
        targets = {s.entry.entry_uuid: s for s in r.entries(entry_uuids=external)}
        ext_kinds = r.object_kinds(external)
        if hidden is not None:
            for target_id in [t for t, stored in targets.items() if hidden(stored)]:
                del targets[target_id]
                ext_kinds.pop(target_id, None)
        replaced_here: dict[str, str] = {}
        for i, assoc in enumerate(sub.associations):
            path = f"Association[{assoc.entry_uuid or '#' + str(i)}]"
            if _is_uuid(assoc.entry_uuid) and assoc.entry_uuid in kinds:
                problems.append(self._reused_uuid(path, assoc.entry_uuid, kinds[assoc.entry_uuid]))
            for end, ref in (("source", assoc.source), ("target", assoc.target)):
                if ref and ref not in message_ids and _is_uuid(ref) and ref not in ext_kinds:
                    if assoc.type.replaces and end == "target":
                        continue  # XDSReplaceFailed, below
                    if assoc.type.is_relationship and end == "target":
                        continue  # reported below with the relationship
                    problems.append(
                        _error(
                            "XDSRegistryMetadataError",
                            f"{path}.{end}",
                            f"{end} {ref} is not in this submission nor in the registry: refer to an object of the "
                            "message or to the urn:uuid: entryUUID of a registered object",
                        )
                    )
            if assoc.type is AssociationType.HAS_MEMBER and assoc.source == ss.entry_uuid:
                stored_member = targets.get(assoc.target)
                if stored_member is not None and stored_member.entry.patient_id != ss.patient_id:
                    problems.append(
                        _error(
                            "XDSPatientIdDoesNotMatch",
                            f"{path}.target",
                            f"the referenced DocumentEntry {assoc.target} belongs to another patient than the "
                            "SubmissionSet: a submission holds one patient's documents",
                        )
                    )
                continue
            if not assoc.type.is_relationship:
                continue
            source_entry = sub.entry(assoc.source)
            if source_entry is not None and source_entry.entry_uuid in plan.duplicates:
                # The new document is already registered: this relationship may be registered too (a retry).
                existing = r.associations(
                    sources=[plan.duplicates[source_entry.entry_uuid]], targets=[assoc.target], types=[assoc.type]
                )
                if any(a.source == plan.duplicates[source_entry.entry_uuid] for a in existing):
                    plan.skip_associations.add(assoc.entry_uuid)
                    continue
            target = targets.get(assoc.target)
            if target is None:
                if assoc.target in message_ids or not assoc.target:
                    continue  # malformed relationship, reported by the rules
                if assoc.type.replaces:
                    problems.append(
                        _error(
                            "XDSReplaceFailed",
                            f"{path}.target",
                            f"the document to replace ({assoc.target}) is not registered: a {assoc.type.short} "
                            "target must be the entryUUID of an Approved DocumentEntry (find it with FindDocuments)",
                        )
                    )
                else:
                    problems.append(
                        _error(
                            "XDSRegistryMetadataError",
                            f"{path}.target",
                            f"the target {assoc.target} of this {assoc.type.short} association is not a registered "
                            "DocumentEntry: use the entryUUID of an Approved DocumentEntry (see FindDocuments)",
                        )
                    )
                continue
            if source_entry is not None and target.entry.patient_id != source_entry.patient_id:
                problems.append(
                    _error(
                        "XDSPatientIdDoesNotMatch",
                        f"{path}.target",
                        f"the {assoc.type.short} target {assoc.target} belongs to patient "
                        f"{_mask_cx(target.entry.patient_id)}, the new document to "
                        f"{_mask_cx(source_entry.patient_id)}: related documents must be about the same patient",
                    )
                )
            if target.entry.availability_status is not AvailabilityStatus.APPROVED:
                problems.append(
                    _error(
                        "XDSRegistryDeprecatedDocumentError",
                        f"{path}.target",
                        f"the {assoc.type.short} target {assoc.target} is Deprecated (already replaced or withdrawn): "
                        "relate the new document to the current, Approved version",
                    )
                )
            elif assoc.type.replaces:
                if assoc.target in replaced_here:
                    problems.append(
                        _error(
                            "XDSReplaceFailed",
                            f"{path}.target",
                            f"{assoc.target} is already replaced by {replaced_here[assoc.target]} in this submission: "
                            "a document is replaced once",
                        )
                    )
                else:
                    replaced_here[assoc.target] = assoc.source
                    plan.deprecate.append(assoc.target)
        return problems

    @staticmethod
    def _reused_uuid(path: str, object_id: str, kind: str) -> Problem:
        return _error(
            "XDSRegistryMetadataError",
            f"{path}.entryUUID",
            f"entryUUID {object_id} already names a registered {kind}: send a new urn:uuid: or a symbolic id "
            "(e.g. Document01) and let the registry assign one",
        )

    def _is_identical_retry(
        self,
        r: StoreReader,
        sub: Submission,
        digests: Mapping[str, ContentDigest],
        old: SubmissionSet,
        plan: _Plan,
    ) -> bool:
        """Whether ``sub`` repeats the registered submission ``old``; if so, fill the id mapping of ``plan``."""
        ss = sub.submission_set
        if old.patient_id != ss.patient_id:
            return False
        members = r.associations(sources=[old.entry_uuid], types=[AssociationType.HAS_MEMBER])
        member_entries = r.entries(entry_uuids=[a.target for a in members if a.source == old.entry_uuid])
        stored = {s.entry.unique_id: s.entry for s in member_entries}
        if set(stored) != {e.unique_id for e in sub.entries}:
            return False
        for entry in sub.entries:
            dig = digests.get(entry.entry_uuid)
            old_entry = stored[entry.unique_id]
            if dig is None or (old_entry.hash or "").lower() != dig.sha1:
                return False
        plan.registered[ss.entry_uuid] = old.entry_uuid
        for entry in sub.entries:
            plan.registered[entry.entry_uuid] = stored[entry.unique_id].entry_uuid
        mapped = dict(plan.registered)
        previous = r.associations(sources=[old.entry_uuid, *mapped.values()])
        for assoc in sub.associations:
            src, tgt = mapped.get(assoc.source, assoc.source), mapped.get(assoc.target, assoc.target)
            for prev in previous:
                if prev.type is assoc.type and prev.source == src and prev.target == tgt:
                    plan.registered[assoc.entry_uuid] = prev.entry_uuid
                    break
        return True

    def _prepare(
        self, sub: Submission, digests: Mapping[str, ContentDigest], plan: _Plan
    ) -> tuple[Submission, dict[str, str]]:
        """The submission as it will be stored (uuids assigned, repository slots filled) and the blobs to adopt."""
        ids: dict[str, str] = {}
        for entry in sub.entries:
            if entry.entry_uuid in plan.duplicates:
                ids[entry.entry_uuid] = plan.duplicates[entry.entry_uuid]
        for object_id in [sub.submission_set.entry_uuid, *(e.entry_uuid for e in sub.entries)]:
            if object_id not in ids:
                ids[object_id] = object_id if _is_uuid(object_id) else new_uuid()
        for assoc in sub.associations:
            if assoc.entry_uuid not in ids:
                ids[assoc.entry_uuid] = assoc.entry_uuid if _is_uuid(assoc.entry_uuid) else new_uuid()
        plan.ids = ids

        def m(object_id: str) -> str:
            return ids.get(object_id, object_id)

        ss = dataclasses.replace(sub.submission_set, entry_uuid=m(sub.submission_set.entry_uuid))
        entries: list[DocumentEntry] = []
        blobs: dict[str, str] = {}
        for entry in sub.entries:
            if entry.entry_uuid in plan.duplicates:
                continue
            dig = digests.get(entry.entry_uuid)
            new_id = m(entry.entry_uuid)
            stored = dataclasses.replace(
                entry,
                entry_uuid=new_id,
                repository_unique_id=self.repository_unique_id,
                logical_id=entry.logical_id or new_id,
                version=entry.version or "1",
                availability_status=AvailabilityStatus.APPROVED,
            )
            if dig is not None:
                stored.hash = dig.sha1
                stored.size = dig.size
                blobs[entry.entry_uuid] = dig.sha256
            entries.append(stored)
        associations: list[Association] = []
        for assoc in sub.associations:
            if assoc.entry_uuid in plan.skip_associations:
                continue
            new_assoc = dataclasses.replace(
                assoc,
                entry_uuid=m(assoc.entry_uuid),
                source=m(assoc.source),
                target=m(assoc.target),
                availability_status=AvailabilityStatus.APPROVED,
            )
            if (
                assoc.type is AssociationType.HAS_MEMBER
                and assoc.target in plan.duplicates
                and assoc.submission_set_status is SubmissionSetStatus.ORIGINAL
            ):
                new_assoc.submission_set_status = SubmissionSetStatus.REFERENCE  # registered by an earlier submission
            associations.append(new_assoc)
        plan.registered = {k: v for k, v in ids.items() if k not in plan.skip_associations}
        final = Submission(submission_set=ss, entries=entries, associations=associations, document_ids=[])
        return final, blobs

    # ------------------------------------------------------------------------------------------ ITI-18
    def stored_query(
        self, query: Query, *, caller: Caller | None = None, view: AccessView | None = None
    ) -> QueryResult:
        """ITI-18 Registry Stored Query, audited as one ITI-18 find.

        Args:
            caller: who asks.
            view: the access view of a larger request (from :meth:`find_request`): the query answers through it
                and is audited with the request, once, not on its own (``caller`` is then the view's).

        Raises:
            QueryError: ``XDSTooManyResults`` above ``max_results`` objects, ``XDSResultNotSinglePatient`` when a
                LeafClass answer would name several patients.
        """
        if self.enforcer is None:
            with self.store.read() as r:
                result = self._run_query(r, query)
            return self._answer(query, result)
        own = view is None
        if view is None:
            view = self.enforcer.begin_find(caller or ANONYMOUS)  # QueryError on an unacceptable glass reason
        with self.store.read() as r:
            result = self._run_query(self.enforcer.visible(r, view), query)
        try:
            answer = self._answer(query, result)
        except QueryError as exc:
            note = f"answered {', '.join(exc.codes)}"
            if own:
                self.enforcer.record_find(view, [], note=note)
            else:
                view.notes.append(note)
            raise
        if own:
            self.enforcer.record_find(view, result.entries)
        else:
            view.returned.extend(result.entries)
        return answer

    @contextlib.contextmanager
    def find_request(
        self, caller: Caller | None, *, transaction: str, patients: Iterable[str | None] = ()
    ) -> Iterator[AccessView | None]:
        """One find request made of several stored queries (an MHD ITI-67 or ITI-66 search and its follow-up
        queries), audited ONCE as ``transaction`` when the block is over, whatever happened in it.

        Pass the view to every :meth:`stored_query` of the request (``view=``): they answer through it, so each sees
        what the caller may see, and what they return makes the request's audit event (one per patient concerned;
        :meth:`~rsb_connector.hub.enforcement.AccessView.answered` narrows it to what the answer finally holds).
        Yields None when the registry has no enforcer (nothing is decided nor audited).

        Args:
            caller: who asks.
            transaction: what the request is audited as (``ITI-67``...).
            patients: the patients the request is about when known before searching (the patient searched for,
                the patient of a resource read by id): a refused break-the-glass reason is audited under them.

        Raises:
            QueryError: ``LocalPolicyRestrictionError`` for a professional's break-the-glass reason of the wrong
                length, before anything is searched (audited).
        """
        if self.enforcer is None:
            yield None
            return
        view = self.enforcer.begin_find(caller or ANONYMOUS, transaction=transaction, patients=patients)
        answered = False
        try:
            yield view
            answered = True
        finally:
            notes = list(view.notes)
            if not answered and not notes:
                notes.append("answered with an error: nothing was returned")
            # What the answer discloses: nothing when the request failed or was refused part-way.
            self.enforcer.record_find(view, [] if notes else view.returned, note="; ".join(notes) or None)

    def patients_of(self, *, entry_uuids: Iterable[str] = (), unique_ids: Iterable[str] = ()) -> list[str]:
        """The patient ids of the registered DocumentEntries and SubmissionSets named (unknown ones are left out),
        whoever may see them: for the hub's own audit (e.g. under which patient a refused request is recorded),
        never for an answer."""
        entry_uuids, unique_ids = list(entry_uuids), list(unique_ids)
        if not entry_uuids and not unique_ids:
            return []
        with self.store.read() as r:
            entries = r.entries(entry_uuids=entry_uuids, unique_ids=unique_ids)
            sets = r.submission_sets(entry_uuids=entry_uuids, unique_ids=unique_ids)
        found = [s.entry.patient_id for s in entries] + [ss.patient_id for ss in sets]
        return list(dict.fromkeys(p for p in found if p))

    def _answer(self, query: Query, result: QueryResult) -> QueryResult:
        """The stored query's answer: size and single-patient checks, ObjectRef conversion."""
        if result.size > self.max_results:
            raise QueryError([self._too_many()])
        if query.return_type is ReturnType.OBJECT_REF:
            refs = [e.entry_uuid for e in result.entries]
            refs += [s.entry_uuid for s in result.submission_sets]
            refs += [a.entry_uuid for a in result.associations]
            return QueryResult(object_refs=list(dict.fromkeys(refs)))
        patients = {e.patient_id for e in result.entries} | {s.patient_id for s in result.submission_sets}
        if len(patients) > 1:
            raise QueryError(
                [
                    _error(
                        "XDSResultNotSinglePatient",
                        query.query_id.name,
                        f"the result holds objects of {len(patients)} patients: a LeafClass query answers about one "
                        "patient; ask for each patient's objects separately (or use returnType ObjectRef)",
                    )
                ]
            )
        return result

    def _too_many(self) -> Problem:
        return _error(
            "XDSTooManyResults",
            "",
            f"the query matches more than the {self.max_results} objects this registry returns: "
            "narrow it (status, class code, a creationTime range...) or use returnType ObjectRef",
        )

    def _run_query(self, r: QueryReader, query: Query) -> QueryResult:
        cap = self.max_results + 1
        if isinstance(query, FindDocuments):  # also FindDocumentsByReferenceId
            found = r.find_documents(query, limit=cap)
            return QueryResult(entries=[s.entry for s in found])
        if isinstance(query, FindSubmissionSets):
            return QueryResult(submission_sets=r.find_submission_sets(query, limit=cap))
        if isinstance(query, FindFolders | GetFolders | GetFolderAndContents | GetFoldersForDocument):
            return QueryResult()  # folders are not stored by the mock hub
        if isinstance(query, GetAll):
            docs = r.find_documents(
                FindDocuments(
                    patient_id=query.patient_id,
                    statuses=query.document_statuses,
                    object_types=(DOCUMENT_ENTRY_STABLE, DOCUMENT_ENTRY_ON_DEMAND),
                ),
                limit=cap,
            )
            sets = r.find_submission_sets(
                FindSubmissionSets(patient_id=query.patient_id, statuses=query.submission_set_statuses), limit=cap
            )
            ids = {s.entry.entry_uuid for s in docs} | {s.entry_uuid for s in sets}
            assocs = [a for a in r.associations(sources=ids) if a.target in ids]
            return QueryResult(entries=[s.entry for s in docs], submission_sets=sets, associations=assocs)
        if isinstance(query, GetDocumentsAndAssociations):
            docs = r.entries(entry_uuids=query.entry_uuids, unique_ids=query.unique_ids)
            uuids = [s.entry.entry_uuid for s in docs]
            assocs = r.associations(sources=uuids, targets=uuids)
            return QueryResult(entries=[s.entry for s in docs], associations=assocs)
        if isinstance(query, GetDocuments):
            docs = r.entries(entry_uuids=query.entry_uuids, unique_ids=query.unique_ids)
            return QueryResult(entries=[s.entry for s in docs])
        if isinstance(query, GetAssociations):
            return QueryResult(associations=r.associations(sources=query.entry_uuids, targets=query.entry_uuids))
        if isinstance(query, GetSubmissionSets):
            memberships = [
                a
                for a in r.associations(targets=query.entry_uuids, types=[AssociationType.HAS_MEMBER])
                if a.target in query.entry_uuids
            ]
            sets = r.submission_sets(entry_uuids=[a.source for a in memberships])
            set_ids = {s.entry_uuid for s in sets}
            return QueryResult(submission_sets=sets, associations=[a for a in memberships if a.source in set_ids])
        if isinstance(query, GetSubmissionSetAndContents):
            sets = r.submission_sets(entry_uuids=query.entry_uuids, unique_ids=query.unique_ids)[:1]
            if not sets:
                return QueryResult()
            ss = sets[0]
            members = [
                a
                for a in r.associations(sources=[ss.entry_uuid], types=[AssociationType.HAS_MEMBER])
                if a.source == ss.entry_uuid
            ]
            member_ids = [a.target for a in members]
            docs = r.entries(entry_uuids=member_ids)
            member_assocs = r.associations(entry_uuids=member_ids)
            return QueryResult(
                entries=[s.entry for s in docs], submission_sets=[ss], associations=members + member_assocs
            )
        if isinstance(query, GetRelatedDocuments):
            origin = r.entries(entry_uuids=query.entry_uuids[:1], unique_ids=query.unique_ids[:1])
            if not origin:
                return QueryResult()
            uuid_ = origin[0].entry.entry_uuid
            types = [t for t in query.association_types if t.is_relationship]
            assocs = r.associations(sources=[uuid_], targets=[uuid_], types=types)
            others = [a.target if a.source == uuid_ else a.source for a in assocs]
            related = r.entries(entry_uuids=others)
            if not related:
                return QueryResult()
            related_ids = {s.entry.entry_uuid for s in related}
            assocs = [a for a in assocs if a.source in related_ids or a.target in related_ids]
            return QueryResult(entries=[origin[0].entry] + [s.entry for s in related], associations=assocs)
        raise QueryError(
            [_error("XDSUnknownStoredQuery", "id", f"stored query {query.query_id.value} is not supported")]
        )

    # ------------------------------------------------------------------------------------------ ITI-43
    def retrieve(
        self, requests: Sequence[tuple[str, str]], *, caller: Caller | None = None, transaction: str = "ITI-43"
    ) -> RetrieveOutcome:
        """ITI-43 Retrieve Document Set: each request is ``(repositoryUniqueId, documentUniqueId)``; one audit event
        per document asked for (a read, labelled ``transaction``)."""
        if not requests:
            return RetrieveOutcome(
                STATUS_FAILURE,
                problems=[
                    _error("XDSRepositoryError", "DocumentRequest", "no DocumentRequest: ask for at least one document")
                ],
            )
        wanted = [uid for repo, uid in requests if repo == self.repository_unique_id]
        with self.store.read() as r:
            found = {s.entry.unique_id: s for s in r.entries(unique_ids=wanted)}
        return self._deliver(requests, found, caller or ANONYMOUS, transaction)

    def retrieve_entry(
        self, entry_uuid: str, *, caller: Caller | None = None, transaction: str = "ITI-68"
    ) -> RetrieveOutcome:
        """MHD ITI-68 Retrieve Document: the current document of the DocumentEntry ``entry_uuid``, audited as one
        read labelled ``transaction``.

        A document the caller may not read is answered exactly like an unknown one (``XDSDocumentUniqueIdError``);
        a Deprecated one the caller may read is not served (``XDSRegistryDeprecatedDocumentError``: MHD serves the
        current version; the audit event says so). A refused break-the-glass reason is audited under the document's
        patient when the document exists, with the same answer either way.
        """
        with self.store.read() as r:
            stored = r.entries(entry_uuids=[entry_uuid]) if entry_uuid else []
        if not stored:
            # Asked for by its entryUUID: that is the id the audit names, and the request the answer refers to.
            return self._deliver([(self.repository_unique_id, entry_uuid)], {}, caller or ANONYMOUS, transaction)
        entry = stored[0].entry
        uid = entry.unique_id or entry.entry_uuid
        repository = entry.repository_unique_id or self.repository_unique_id
        return self._deliver([(repository, uid)], {uid: stored[0]}, caller or ANONYMOUS, transaction, current=True)

    def _deliver(
        self,
        requests: Sequence[tuple[str, str]],
        found: Mapping[str | None, StoredEntry],
        caller: Caller,
        transaction: str,
        *,
        current: bool = False,
    ) -> RetrieveOutcome:
        """The retrieval of ``requests``, ``found`` being the registered entries among them by uniqueId: the
        policy's decisions (audited), then each document or the problem answered for it. ``current``: only an
        Approved document is served."""
        problems: list[Problem] = []
        deprecated = {
            uid
            for uid, stored in found.items()
            if current and uid and stored.entry.availability_status is not AvailabilityStatus.APPROVED
        }
        if self.enforcer is not None:
            patients = [stored.entry.patient_id for stored in found.values()]
            refused = self.enforcer.begin_retrieve(caller, transaction=transaction, patients=patients)
            if refused is not None:
                return RetrieveOutcome(STATUS_FAILURE, problems=[refused])
            # a document the caller may not read is answered exactly like an unknown one
            wanted = [uid for repo, uid in requests if repo == self.repository_unique_id]
            notes = {
                uid: "not served: the document is Deprecated (MHD serves the current version)" for uid in deprecated
            }
            readable = self.enforcer.authorize_reads(caller, found, wanted, transaction=transaction, notes=notes)
            found = {uid: stored for uid, stored in found.items() if uid in readable}
        documents: list[RetrievedDocument] = []
        for i, (repo, uid) in enumerate(requests):
            path = f"DocumentRequest[{i}]"
            if repo != self.repository_unique_id:
                problems.append(
                    _error(
                        "XDSUnknownRepositoryId",
                        f"{path}.RepositoryUniqueId",
                        f"repository {repo!r} is not this repository ({self.repository_unique_id}): send the "
                        "repositoryUniqueId the DocumentEntry carries",
                    )
                )
                continue
            stored = found.get(uid)
            if stored is None:
                problems.append(
                    _error(
                        "XDSDocumentUniqueIdError",
                        f"{path}.DocumentUniqueId",
                        f"no document with uniqueId {uid!r} in this repository: send the uniqueId of a registered "
                        "DocumentEntry (find it with FindDocuments)",
                    )
                )
                continue
            if uid in deprecated:
                problems.append(
                    _error(
                        "XDSRegistryDeprecatedDocumentError",
                        f"{path}.DocumentUniqueId",
                        f"document {uid!r} is Deprecated (superseded by a newer version): only the current version "
                        "is served; find it with status=current",
                    )
                )
                continue
            doc = self._retrieved(stored, path, problems)
            if doc is not None:
                documents.append(doc)
        if not problems:
            status = STATUS_SUCCESS
        elif documents:
            status = STATUS_PARTIAL_SUCCESS
        else:
            status = STATUS_FAILURE
        return RetrieveOutcome(status, documents, problems)

    def _retrieved(self, stored: StoredEntry, path: str, problems: list[Problem]) -> RetrievedDocument | None:
        entry = stored.entry
        if stored.sha256 is None or not self.store.has_blob(stored.sha256):
            problems.append(
                _error(
                    "XDSRepositoryError",
                    f"{path}.DocumentUniqueId",
                    f"the content of document {entry.unique_id!r} is not available in this repository",
                )
            )
            return None
        return RetrievedDocument(
            repository_unique_id=self.repository_unique_id,
            unique_id=entry.unique_id or "",
            mime_type=entry.mime_type or "application/octet-stream",
            sha256=stored.sha256,
            size=entry.size or 0,
            hash=entry.hash or "",
            path=self.store.blob_path(stored.sha256),
        )

    # ------------------------------------------------------------------------------------------ ITI-57
    def update_status(
        self,
        entry_uuid: str,
        original: AvailabilityStatus,
        new: AvailabilityStatus,
        *,
        patient_id: str | None,
        caller: Caller | None = None,
        submission_set_uuid: str | None = None,
    ) -> Outcome:
        """ITI-57 Update Document Set: change the availability status of one DocumentEntry.

        Records an ``UpdateAvailabilityStatus`` association (source: ``submission_set_uuid``, or a new id) in the
        same transaction as the change; ``registered`` maps ``"UpdateAvailabilityStatus"`` to its id.
        """
        assoc = Association(
            entry_uuid="UpdateAvailabilityStatus",
            type=AssociationType.UPDATE_AVAILABILITY_STATUS,
            source=submission_set_uuid or new_uuid(),
            target=entry_uuid,
            original_status=original,
            new_status=new,
        )
        return self.update_status_many([assoc], patient_id, caller)

    def update_status_many(
        self, updates: Sequence[Association], patient_id: str | None, caller: Caller | None = None
    ) -> Outcome:
        """ITI-57 Update Document Set with several ``UpdateAvailabilityStatus`` associations, all or nothing.

        Each association targets a registered DocumentEntry (``target``) and carries OriginalStatus / NewStatus;
        ``patient_id`` is the update's SubmissionSet patient (None: not checked). Each association is recorded
        (symbolic ids get a new ``urn:uuid:``); ``registered`` maps each submitted association id to its stored id.
        """
        problems: list[Problem] = []
        if not updates:
            problems.append(
                _error(
                    "XDSMetadataUpdateError",
                    "SubmitObjectsRequest",
                    "no UpdateAvailabilityStatus association: send one per entry whose status changes",
                )
            )
        for i, assoc in enumerate(updates):
            problems += validate_status_update(assoc, path=f"Association[{assoc.entry_uuid or '#' + str(i)}]")
        if _has_errors(problems):
            return Outcome(STATUS_FAILURE, problems, {})
        registered: dict[str, str] = {}
        audit: list[AuditRecord] = []
        try:
            with self.store.write() as w:
                targets = [a.target for a in updates]
                found = {s.entry.entry_uuid: s.entry for s in w.entries(entry_uuids=targets)}
                denied: dict[str, Problem] = {}
                if self.enforcer is not None:  # authors only; a document the caller cannot read is "not registered"
                    status_check = self.enforcer.check_status_update(caller or ANONYMOUS, found.values())
                    audit = status_check.records
                    denied = status_check.problems
                    found = {k: v for k, v in found.items() if k not in status_check.hidden}
                replaced = {
                    a.target: a
                    for a in w.associations(targets=targets, types=[AssociationType.RPLC, AssociationType.XFRM_RPLC])
                }
                seen: set[str] = set()
                for i, assoc in enumerate(updates):
                    problems += self._check_update(assoc, i, found, replaced, seen, patient_id)
                    if assoc.target in denied:
                        problems.append(denied[assoc.target])
                if _has_errors(problems):
                    raise _Refused
                for assoc in updates:
                    assert assoc.new_status is not None  # checked by validate_status_update
                    w.set_entry_status(assoc.target, assoc.new_status)
                    stored = dataclasses.replace(
                        assoc,
                        entry_uuid=assoc.entry_uuid if _is_uuid(assoc.entry_uuid) else new_uuid(),
                        source=assoc.source if _is_uuid(assoc.source) else new_uuid(),
                        availability_status=AvailabilityStatus.APPROVED,
                    )
                    kinds = w.object_kinds([stored.entry_uuid])
                    if kinds:
                        problems.append(
                            self._reused_uuid(
                                f"Association[{assoc.entry_uuid}]", stored.entry_uuid, kinds[stored.entry_uuid]
                            )
                        )
                        raise _Refused
                    w.add_association(stored, submission_set_uuid=stored.source)
                    registered[assoc.entry_uuid] = stored.entry_uuid
        except _Refused:
            outcome = Outcome(STATUS_FAILURE, problems, {})
        else:
            outcome = Outcome(STATUS_SUCCESS, problems, registered)
        if self.enforcer is not None and audit:  # audited once the write transaction is over
            self.enforcer.record(audit)
        return outcome

    @staticmethod
    def _check_update(
        assoc: Association,
        index: int,
        found: Mapping[str, DocumentEntry],
        replaced: Mapping[str, Association],
        seen: set[str],
        patient_id: str | None,
    ) -> list[Problem]:
        path = f"Association[{assoc.entry_uuid or '#' + str(index)}]"
        entry = found.get(assoc.target)
        if entry is None:
            return [
                _error(
                    "XDSMetadataUpdateError",
                    f"{path}.target",
                    f"no DocumentEntry {assoc.target} is registered: send the entryUUID of a registered entry "
                    "(this hub stores no folders)",
                )
            ]
        problems: list[Problem] = []
        if assoc.target in seen:
            problems.append(
                _error(
                    "XDSMetadataUpdateError",
                    f"{path}.target",
                    f"{assoc.target} is updated twice in this request: send one update per entry",
                )
            )
        seen.add(assoc.target)
        if assoc.original_status is not None and entry.availability_status is not assoc.original_status:
            problems.append(
                _error(
                    "XDSMetadataUpdateError",
                    f"{path}.originalStatus",
                    f"OriginalStatus is {assoc.original_status.short} but the entry is "
                    f"{entry.availability_status.short}: query the entry again and send its current status",
                )
            )
        if patient_id is not None and patient_id != entry.patient_id:
            problems.append(
                _error(
                    "XDSPatientIdDoesNotMatch",
                    f"{path}.target",
                    f"the update is for patient {_mask_cx(patient_id)} but the entry belongs to "
                    f"{_mask_cx(entry.patient_id)}: update each patient's entries separately",
                )
            )
        replacement = replaced.get(assoc.target)
        if assoc.new_status is AvailabilityStatus.APPROVED and replacement is not None:
            problems.append(
                _error(
                    "XDSMetadataUpdateError",
                    f"{path}.newStatus",
                    f"the entry was replaced ({replacement.type.short} from {replacement.source}): the replacement is "
                    "the current version and this one stays Deprecated",
                )
            )
        return problems

    # ------------------------------------------------------------------------------------------ health
    def healthy(self) -> bool:
        """True when the store answers a query (for ``GET /healthz``)."""
        try:
            with self.store.read() as r:
                r.count("patients")
        except Exception:  # any failure means unhealthy; the caller only needs a yes or no
            return False
        return True


Hub = Registry
"""The mock hub's registry/repository (alias: the ASGI layer names it so)."""


@dataclass
class _Plan:
    """What the registry-state checks decided for one ITI-41."""

    retry_of: str | None = None
    duplicates: dict[str, str] = field(default_factory=dict)  # submitted entry id → registered entryUUID
    skip_associations: set[str] = field(default_factory=set)
    deprecate: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    registered: dict[str, str] = field(default_factory=dict)

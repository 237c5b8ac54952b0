"""Persistence of the mock hub: registry metadata in SQLite, documents as content-addressed files.

The hub talks to a :class:`Store` (a :class:`typing.Protocol`) so another backend (PostgreSQL) can slot in later.
:class:`SqliteStore` is the embedded default::

    data_dir/
      registry.sqlite3          metadata (WAL journal, synchronous=FULL, foreign keys on)
      documents/ab/ab12…ef      document bytes, named by their SHA-256
      tmp/                      uploads being spooled (same filesystem: adopted with os.replace)

Durability: a write transaction commits last, after the documents it references have been fsynced into place, and
the WAL is fsynced on commit (``synchronous=FULL``), so an acknowledged submission survives a SIGKILL or a power
cut. A crash between adopting documents and committing leaves unreferenced blobs behind: harmless, and
:meth:`SqliteStore.gc_blobs` removes them. Leftover spool files are deleted when the store is opened.

Concurrency: one SQLite connection per thread; readers run concurrently (WAL snapshots), writers are serialised
by a process-wide lock plus ``BEGIN IMMEDIATE`` (and SQLite's busy timeout for other processes).

Consent registries and audit (schema version 2): the tables behind :mod:`rsb_connector.hub.consent` (professionals,
sharing consents, exclusions, therapeutic links, access rights, held-back documents, legal representatives) keep
their history — a row is inserted once and at most *closed* once (``closed_at/by/on``), triggers refuse any other
UPDATE and every DELETE — beside an append-only change log (``policy_history``) and the append-only audit trail
(``audit_events``, :mod:`rsb_connector.hub.audit`), whose triggers refuse every UPDATE and DELETE.

Connector validation (schema version 3): ``connector_messages`` holds the messages the hub graded when it runs with
connector validation (:mod:`rsb_connector.hub.connector_validation`): a bounded working log (the most recent
messages only), deleted whenever a new session starts, holding no document content and no full SSIN.

Times: DTM values are kept as given (in the JSON of the object) and as 14-digit lower/upper bounds
(:meth:`~rsb_connector.metadata.model.Dtm.lower_bound` / ``upper_bound``) in indexed columns, so range queries are
correct whatever the precision the source used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, Protocol

from ..metadata.content import ContentDigest, DigestingWriter
from ..metadata.model import (
    DOCUMENT_ENTRY_STABLE,
    Association,
    AssociationType,
    Author,
    AvailabilityStatus,
    Code,
    DocumentEntry,
    Dtm,
    Submission,
    SubmissionSet,
    SubmissionSetStatus,
)
from ..query import FindDocuments, FindDocumentsByReferenceId, FindSubmissionSets

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "PolicyTable",
    "QueryReader",
    "SpooledBlob",
    "SqliteStore",
    "Store",
    "StoreReader",
    "StoreWriter",
    "StoredEntry",
    "association_from_json",
    "association_to_json",
    "entry_from_json",
    "entry_to_json",
    "submission_set_from_json",
    "submission_set_to_json",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")

# ============================================================================================== JSON codec


def _code_out(code: Code | None) -> dict[str, Any] | None:
    if code is None:
        return None
    return {"code": code.code, "scheme": code.scheme, "display": code.display}


def _code_in(data: Mapping[str, Any] | None) -> Code | None:
    if data is None:
        return None
    return Code(data["code"], data["scheme"], data.get("display"))


def _author_out(author: Author) -> dict[str, Any]:
    return {
        "person": author.person,
        "institutions": list(author.institutions),
        "roles": list(author.roles),
        "specialties": list(author.specialties),
        "telecommunications": list(author.telecommunications),
    }


def _author_in(data: Mapping[str, Any]) -> Author:
    return Author(
        person=data.get("person"),
        institutions=tuple(data.get("institutions", ())),
        roles=tuple(data.get("roles", ())),
        specialties=tuple(data.get("specialties", ())),
        telecommunications=tuple(data.get("telecommunications", ())),
    )


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def entry_to_json(entry: DocumentEntry) -> str:
    """Serialise a DocumentEntry to JSON, losslessly (see :func:`entry_from_json`)."""
    return _dumps(
        {
            "entry_uuid": entry.entry_uuid,
            "unique_id": entry.unique_id,
            "patient_id": entry.patient_id,
            "mime_type": entry.mime_type,
            "class_code": _code_out(entry.class_code),
            "type_code": _code_out(entry.type_code),
            "format_code": _code_out(entry.format_code),
            "healthcare_facility_type_code": _code_out(entry.healthcare_facility_type_code),
            "practice_setting_code": _code_out(entry.practice_setting_code),
            "confidentiality_codes": [_code_out(c) for c in entry.confidentiality_codes],
            "event_codes": [_code_out(c) for c in entry.event_codes],
            "creation_time": entry.creation_time,
            "language_code": entry.language_code,
            "source_patient_id": entry.source_patient_id,
            "source_patient_info": list(entry.source_patient_info),
            "legal_authenticator": entry.legal_authenticator,
            "service_start_time": entry.service_start_time,
            "service_stop_time": entry.service_stop_time,
            "hash": entry.hash,
            "size": entry.size,
            "repository_unique_id": entry.repository_unique_id,
            "uri": entry.uri,
            "title": entry.title,
            "comments": entry.comments,
            "authors": [_author_out(a) for a in entry.authors],
            "reference_ids": list(entry.reference_ids),
            "availability_status": entry.availability_status.value,
            "object_type": entry.object_type,
            "home_community_id": entry.home_community_id,
            "logical_id": entry.logical_id,
            "version": entry.version,
            "extra_slots": {k: list(v) for k, v in entry.extra_slots.items()},
        }
    )


def entry_from_json(text: str) -> DocumentEntry:
    """Rebuild a DocumentEntry written by :func:`entry_to_json`."""
    d = json.loads(text)
    return DocumentEntry(
        entry_uuid=d["entry_uuid"],
        unique_id=d.get("unique_id"),
        patient_id=d.get("patient_id"),
        mime_type=d.get("mime_type"),
        class_code=_code_in(d.get("class_code")),
        type_code=_code_in(d.get("type_code")),
        format_code=_code_in(d.get("format_code")),
        healthcare_facility_type_code=_code_in(d.get("healthcare_facility_type_code")),
        practice_setting_code=_code_in(d.get("practice_setting_code")),
        confidentiality_codes=[c for c in map(_code_in, d.get("confidentiality_codes", [])) if c is not None],
        event_codes=[c for c in map(_code_in, d.get("event_codes", [])) if c is not None],
        creation_time=d.get("creation_time"),
        language_code=d.get("language_code"),
        source_patient_id=d.get("source_patient_id"),
        source_patient_info=list(d.get("source_patient_info", [])),
        legal_authenticator=d.get("legal_authenticator"),
        service_start_time=d.get("service_start_time"),
        service_stop_time=d.get("service_stop_time"),
        hash=d.get("hash"),
        size=d.get("size"),
        repository_unique_id=d.get("repository_unique_id"),
        uri=d.get("uri"),
        title=d.get("title"),
        comments=d.get("comments"),
        authors=[_author_in(a) for a in d.get("authors", [])],
        reference_ids=list(d.get("reference_ids", [])),
        availability_status=AvailabilityStatus(d["availability_status"]),
        object_type=d.get("object_type") or DOCUMENT_ENTRY_STABLE,
        home_community_id=d.get("home_community_id"),
        logical_id=d.get("logical_id"),
        version=d.get("version"),
        extra_slots={k: list(v) for k, v in d.get("extra_slots", {}).items()},
    )


def submission_set_to_json(ss: SubmissionSet) -> str:
    """Serialise a SubmissionSet to JSON, losslessly (see :func:`submission_set_from_json`)."""
    return _dumps(
        {
            "entry_uuid": ss.entry_uuid,
            "unique_id": ss.unique_id,
            "source_id": ss.source_id,
            "patient_id": ss.patient_id,
            "submission_time": ss.submission_time,
            "content_type_code": _code_out(ss.content_type_code),
            "authors": [_author_out(a) for a in ss.authors],
            "title": ss.title,
            "comments": ss.comments,
            "intended_recipients": list(ss.intended_recipients),
            "availability_status": ss.availability_status.value,
            "home_community_id": ss.home_community_id,
        }
    )


def submission_set_from_json(text: str) -> SubmissionSet:
    """Rebuild a SubmissionSet written by :func:`submission_set_to_json`."""
    d = json.loads(text)
    return SubmissionSet(
        entry_uuid=d["entry_uuid"],
        unique_id=d.get("unique_id"),
        source_id=d.get("source_id"),
        patient_id=d.get("patient_id"),
        submission_time=d.get("submission_time"),
        content_type_code=_code_in(d.get("content_type_code")),
        authors=[_author_in(a) for a in d.get("authors", [])],
        title=d.get("title"),
        comments=d.get("comments"),
        intended_recipients=list(d.get("intended_recipients", [])),
        availability_status=AvailabilityStatus(d["availability_status"]),
        home_community_id=d.get("home_community_id"),
    )


def association_to_json(assoc: Association) -> str:
    """Serialise an Association (with its slots) to JSON, losslessly (see :func:`association_from_json`)."""
    return _dumps(
        {
            "entry_uuid": assoc.entry_uuid,
            "type": assoc.type.value,
            "source": assoc.source,
            "target": assoc.target,
            "submission_set_status": assoc.submission_set_status.value if assoc.submission_set_status else None,
            "availability_status": assoc.availability_status.value,
            "original_status": assoc.original_status.value if assoc.original_status else None,
            "new_status": assoc.new_status.value if assoc.new_status else None,
        }
    )


def association_from_json(text: str) -> Association:
    """Rebuild an Association written by :func:`association_to_json`."""
    d = json.loads(text)
    sss = d.get("submission_set_status")
    orig = d.get("original_status")
    new = d.get("new_status")
    return Association(
        entry_uuid=d["entry_uuid"],
        type=AssociationType(d["type"]),
        source=d["source"],
        target=d["target"],
        submission_set_status=SubmissionSetStatus(sss) if sss else None,
        availability_status=AvailabilityStatus(d["availability_status"]),
        original_status=AvailabilityStatus(orig) if orig else None,
        new_status=AvailabilityStatus(new) if new else None,
    )


# ============================================================================================== schema

_COMMON_POLICY_COLUMNS: Final = ("created_at", "created_by", "created_by_id")


def _frozen_v2_guards(table: str, columns: tuple[str, ...]) -> tuple[str, str]:
    """The two history-keeping triggers of a registry table of migration 2 (FROZEN: its output is part of that
    migration and must never change; write new helpers for new migrations).

    DELETE is refused; UPDATE is refused unless it only closes an open record (fills ``closed_at``, ``closed_by``
    and ``closed_on``) and leaves every other column as it was.
    """
    unchanged = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in ("id", *columns, *_COMMON_POLICY_COLUMNS))
    return (
        f"""CREATE TRIGGER {table}_keep_history BEFORE UPDATE ON {table}
        WHEN OLD.closed_at IS NOT NULL OR NEW.closed_at IS NULL OR {unchanged}
        BEGIN SELECT RAISE(ABORT, '{table} keeps its history: a record is only ever closed once, never changed');
        END""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} keeps its history: records are closed, never deleted'); END""",
    )


MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # ---------------------------------------------------------------------------------------- version 1
    (
        """CREATE TABLE patients (
            patient_id     TEXT PRIMARY KEY,            -- CX: ssin^^^&2.16.840.1.113883.3.6777.5.1&ISO
            info           TEXT NOT NULL DEFAULT '{}'   -- JSON: name, birth date... (synthetic in the mock)
        )""",
        """CREATE TABLE submissions (                   -- one row per accepted ITI-41 (no audit: see hub.audit)
            seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
            submission_set_uuid TEXT NOT NULL,
            received_at         TEXT NOT NULL,          -- DTM, 14 digits, UTC
            submitter           TEXT,
            entry_count         INTEGER NOT NULL
        )""",
        """CREATE TABLE submission_sets (
            id                  INTEGER PRIMARY KEY,
            entry_uuid          TEXT NOT NULL UNIQUE,
            unique_id           TEXT NOT NULL UNIQUE,
            patient_id          TEXT NOT NULL REFERENCES patients(patient_id),
            status              TEXT NOT NULL,          -- Approved | Deprecated
            source_id           TEXT,
            submission_time_lo  TEXT,
            submission_time_hi  TEXT,
            content_type_code   TEXT,
            content_type_scheme TEXT,
            json                TEXT NOT NULL
        )""",
        "CREATE INDEX submission_sets_patient ON submission_sets(patient_id, status)",
        """CREATE TABLE submission_set_authors (
            ss_id   INTEGER NOT NULL REFERENCES submission_sets(id) ON DELETE CASCADE,
            person  TEXT NOT NULL,
            PRIMARY KEY (ss_id, person)
        ) WITHOUT ROWID""",
        """CREATE TABLE document_entries (
            id                       INTEGER PRIMARY KEY,
            entry_uuid               TEXT NOT NULL UNIQUE,
            unique_id                TEXT NOT NULL UNIQUE,
            logical_id               TEXT NOT NULL,
            version                  TEXT NOT NULL,
            patient_id               TEXT NOT NULL REFERENCES patients(patient_id),
            status                   TEXT NOT NULL,     -- Approved | Deprecated
            object_type              TEXT NOT NULL,     -- stable / on-demand objectType UUID
            class_code               TEXT,
            class_scheme             TEXT,
            type_code                TEXT,
            type_scheme              TEXT,
            format_code              TEXT,
            format_scheme            TEXT,
            facility_code            TEXT,
            facility_scheme          TEXT,
            practice_code            TEXT,
            practice_scheme          TEXT,
            creation_lo              TEXT,              -- DTM bounds, 14 digits
            creation_hi              TEXT,
            service_start_lo         TEXT,
            service_start_hi         TEXT,
            service_stop_lo          TEXT,
            service_stop_hi          TEXT,
            mime_type                TEXT,
            hash                     TEXT,              -- SHA-1, lower-case hex
            size                     INTEGER,
            sha256                   TEXT,              -- content address of the document file
            repository_unique_id     TEXT,
            submission_set_uuid      TEXT NOT NULL REFERENCES submission_sets(entry_uuid),
            json                     TEXT NOT NULL      -- the whole entry, for a lossless round trip
        )""",
        "CREATE INDEX document_entries_patient_status ON document_entries(patient_id, status)",
        "CREATE INDEX document_entries_patient_class ON document_entries(patient_id, class_code, class_scheme)",
        "CREATE INDEX document_entries_patient_type ON document_entries(patient_id, type_code, type_scheme)",
        "CREATE INDEX document_entries_submission_set ON document_entries(submission_set_uuid)",
        "CREATE INDEX document_entries_logical ON document_entries(logical_id)",
        """CREATE TABLE entry_confidentiality_codes (
            entry_id INTEGER NOT NULL REFERENCES document_entries(id) ON DELETE CASCADE,
            code     TEXT NOT NULL,
            scheme   TEXT NOT NULL,
            PRIMARY KEY (entry_id, code, scheme)
        ) WITHOUT ROWID""",
        """CREATE TABLE entry_event_codes (
            entry_id INTEGER NOT NULL REFERENCES document_entries(id) ON DELETE CASCADE,
            code     TEXT NOT NULL,
            scheme   TEXT NOT NULL,
            PRIMARY KEY (entry_id, code, scheme)
        ) WITHOUT ROWID""",
        """CREATE TABLE entry_author_persons (
            entry_id INTEGER NOT NULL REFERENCES document_entries(id) ON DELETE CASCADE,
            person   TEXT NOT NULL,
            PRIMARY KEY (entry_id, person)
        ) WITHOUT ROWID""",
        """CREATE TABLE entry_reference_ids (
            entry_id     INTEGER NOT NULL REFERENCES document_entries(id) ON DELETE CASCADE,
            reference_id TEXT NOT NULL,
            PRIMARY KEY (entry_id, reference_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX entry_reference_ids_value ON entry_reference_ids(reference_id)",
        """CREATE TABLE associations (
            id                  INTEGER PRIMARY KEY,
            entry_uuid          TEXT NOT NULL UNIQUE,
            type                TEXT NOT NULL,
            source              TEXT NOT NULL,
            target              TEXT NOT NULL,
            status              TEXT NOT NULL,
            submission_set_uuid TEXT,
            json                TEXT NOT NULL       -- with its slots (SubmissionSetStatus, Original/NewStatus)
        )""",
        "CREATE INDEX associations_source ON associations(source, type)",
        "CREATE INDEX associations_target ON associations(target, type)",
    ),
    # ---------------------------------------------------------------------------------------- version 2
    # Consent registries with their history, the registry-change log and the audit trail (see hub.consent,
    # hub.audit). Registry rows are never updated away: a record is *closed* once (closed_at/by/on filled in),
    # never changed nor deleted, and triggers refuse anything else. The change log and the audit trail are
    # append-only: triggers refuse every UPDATE and DELETE.
    (
        """CREATE TABLE professionals (                -- NIHII -> profession and name; the latest open row counts
            id             INTEGER PRIMARY KEY,
            nihii          TEXT NOT NULL,
            profession     TEXT,                        -- KMEHR CD-HCPARTY (persphysician...)
            given          TEXT NOT NULL DEFAULT '',
            family         TEXT NOT NULL DEFAULT '',
            created_at     TEXT NOT NULL,               -- ISO 8601, UTC
            created_by     TEXT NOT NULL,               -- the caller's subject
            created_by_id  TEXT,                        -- their NIHII / SSIN / organisation id
            closed_at      TEXT,
            closed_by      TEXT,
            closed_on      TEXT                         -- ISO date from which the record no longer applies
        )""",
        "CREATE INDEX professionals_nihii ON professionals(nihii, id)",
        *_frozen_v2_guards("professionals", ("nihii", "profession", "given", "family")),
        """CREATE TABLE sharing_consents (
            id             INTEGER PRIMARY KEY,
            patient        TEXT NOT NULL,               -- SSIN, 11 digits
            type           TEXT NOT NULL,               -- CD-CONSENTTYPE
            signed         TEXT NOT NULL,               -- ISO date
            created_at     TEXT NOT NULL,
            created_by     TEXT NOT NULL,
            created_by_id  TEXT,
            closed_at      TEXT,
            closed_by      TEXT,
            closed_on      TEXT                         -- the day of the revocation
        )""",
        "CREATE INDEX sharing_consents_patient ON sharing_consents(patient)",
        *_frozen_v2_guards("sharing_consents", ("patient", "type", "signed")),
        """CREATE TABLE exclusions (
            id                 INTEGER PRIMARY KEY,
            patient            TEXT NOT NULL,
            professional_nihii TEXT NOT NULL,
            start_day          TEXT NOT NULL,
            end_day            TEXT,                    -- last day, inclusive; NULL until lifted
            created_at         TEXT NOT NULL,
            created_by         TEXT NOT NULL,
            created_by_id      TEXT,
            closed_at          TEXT,
            closed_by          TEXT,
            closed_on          TEXT                     -- lifted: no longer applies from that day on
        )""",
        "CREATE INDEX exclusions_patient ON exclusions(patient)",
        *_frozen_v2_guards("exclusions", ("patient", "professional_nihii", "start_day", "end_day")),
        """CREATE TABLE therapeutic_links (
            id                 INTEGER PRIMARY KEY,
            patient            TEXT NOT NULL,
            professional_nihii TEXT NOT NULL,
            type               TEXT NOT NULL,           -- CD-THERAPEUTICLINKTYPE
            proof              TEXT NOT NULL,           -- eHealth proof type
            start_day          TEXT NOT NULL,
            end_day            TEXT,                    -- NULL: the profession's default validity
            created_at         TEXT NOT NULL,
            created_by         TEXT NOT NULL,
            created_by_id      TEXT,
            closed_at          TEXT,
            closed_by          TEXT,
            closed_on          TEXT                     -- revoked: invalid from that day on
        )""",
        "CREATE INDEX therapeutic_links_patient ON therapeutic_links(patient)",
        *_frozen_v2_guards(
            "therapeutic_links", ("patient", "professional_nihii", "type", "proof", "start_day", "end_day")
        ),
        """CREATE TABLE access_rights (
            id                 INTEGER PRIMARY KEY,
            patient            TEXT NOT NULL,
            document_unique_id TEXT NOT NULL,
            professional_nihii TEXT NOT NULL,
            allow              INTEGER NOT NULL CHECK (allow IN (0, 1)),
            created_at         TEXT NOT NULL,
            created_by         TEXT NOT NULL,
            created_by_id      TEXT,
            closed_at          TEXT,                    -- withdrawn or replaced by a newer right
            closed_by          TEXT,
            closed_on          TEXT
        )""",
        "CREATE INDEX access_rights_patient ON access_rights(patient)",
        "CREATE INDEX access_rights_document ON access_rights(document_unique_id)",
        *_frozen_v2_guards("access_rights", ("patient", "document_unique_id", "professional_nihii", "allow")),
        """CREATE TABLE held_back (
            id                 INTEGER PRIMARY KEY,
            patient            TEXT NOT NULL,
            document_unique_id TEXT NOT NULL,
            until_day          TEXT,                    -- visible to the patient from that day; NULL: never
            created_at         TEXT NOT NULL,
            created_by         TEXT NOT NULL,
            created_by_id      TEXT,
            closed_at          TEXT,                    -- released or replaced by a newer hold
            closed_by          TEXT,
            closed_on          TEXT
        )""",
        "CREATE INDEX held_back_patient ON held_back(patient)",
        "CREATE INDEX held_back_document ON held_back(document_unique_id)",
        *_frozen_v2_guards("held_back", ("patient", "document_unique_id", "until_day")),
        """CREATE TABLE legal_representatives (
            id                 INTEGER PRIMARY KEY,
            patient            TEXT NOT NULL,           -- the minor's SSIN
            representative     TEXT NOT NULL,           -- the representative's SSIN
            created_at         TEXT NOT NULL,
            created_by         TEXT NOT NULL,
            created_by_id      TEXT,
            closed_at          TEXT,
            closed_by          TEXT,
            closed_on          TEXT
        )""",
        "CREATE INDEX legal_representatives_patient ON legal_representatives(patient)",
        *_frozen_v2_guards("legal_representatives", ("patient", "representative")),
        """CREATE TABLE policy_history (               -- who changed which registry record, when (append-only)
            seq            INTEGER PRIMARY KEY AUTOINCREMENT,
            at             TEXT NOT NULL,               -- ISO 8601, UTC
            patient        TEXT,                        -- SSIN (NULL for the professionals registry)
            kind           TEXT NOT NULL,               -- consent, exclusion, link, access-right, hold...
            change         TEXT NOT NULL,               -- grant, revoke, add, remove, declare, set, release...
            record_table   TEXT NOT NULL,
            record_id      INTEGER NOT NULL,
            by_subject     TEXT NOT NULL,
            by_role        TEXT,
            by_nihii       TEXT,
            by_ssin        TEXT,
            by_organisation TEXT,
            details        TEXT NOT NULL DEFAULT '{}'   -- JSON: the record's values
        )""",
        "CREATE INDEX policy_history_patient ON policy_history(patient, seq)",
        """CREATE TRIGGER policy_history_no_update BEFORE UPDATE ON policy_history
        BEGIN SELECT RAISE(ABORT, 'policy_history is append-only: its rows cannot be changed'); END""",
        """CREATE TRIGGER policy_history_no_delete BEFORE DELETE ON policy_history
        BEGIN SELECT RAISE(ABORT, 'policy_history is append-only: its rows cannot be deleted'); END""",
        """CREATE TABLE audit_events (                 -- every access decision (append-only)
            seq             INTEGER PRIMARY KEY AUTOINCREMENT,
            at              TEXT NOT NULL,              -- ISO 8601, UTC
            who             TEXT NOT NULL,              -- the caller's subject
            role            TEXT,
            who_nihii       TEXT,
            who_ssin        TEXT,                       -- full SSIN: masked whenever rendered
            organisation    TEXT,
            represents      TEXT,                       -- the minor a legal representative acts for
            authenticated   INTEGER NOT NULL,
            patient         TEXT,                       -- full SSIN: masked whenever rendered
            documents       TEXT NOT NULL DEFAULT '[]', -- JSON list of document uniqueIds
            action          TEXT NOT NULL,              -- publish, find, read, update-status, consent, link...
            decision        TEXT NOT NULL CHECK (decision IN ('allowed', 'denied')),
            rule            TEXT,                       -- the rule that denied (policy.Rule value)
            reason          TEXT NOT NULL DEFAULT '',
            break_the_glass TEXT,                       -- the reason given, when the glass was broken
            xds_transaction TEXT                        -- ITI-41, ITI-18, ITI-43, ITI-57, PutPatientConsent...
        )""",
        "CREATE INDEX audit_events_patient ON audit_events(patient, seq)",
        "CREATE INDEX audit_events_at ON audit_events(at)",
        """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: audit events cannot be changed'); END""",
        """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: audit events cannot be deleted'); END""",
    ),
    # ---------------------------------------------------------------------------------------- version 3
    # Connector validation (hub.connector_validation): each message the hub received, graded. A bounded working
    # log, not a record of care: rows are pruned (oldest first) and deleted when a new session starts. It never
    # holds document content nor a full SSIN (the excerpt is redacted before it is written).
    (
        """CREATE TABLE connector_messages (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: MSG-<id> stays unique
            received         TEXT NOT NULL,           -- ISO 8601 UTC, microseconds: 2025-01-15T10:00:00.000000Z
            transport        TEXT NOT NULL,           -- soap | fhir | oauth
            transaction_name TEXT NOT NULL,           -- ITI-41, ITI-18, ITI-43, ITI-57, ITI-65..68, token, ...
            path             TEXT NOT NULL,           -- the HTTP path (SSINs masked)
            caller           TEXT NOT NULL,           -- masked description of the signer / token subject
            verdict          TEXT NOT NULL CHECK (verdict IN ('passed', 'failed')),
            checks           TEXT NOT NULL,           -- JSON: rule family -> status, requirement, findings
            answer           TEXT NOT NULL DEFAULT '{}',  -- JSON: what the hub answered (status, error codes)
            excerpt          TEXT NOT NULL DEFAULT ''     -- the request, redacted and size-limited
        )""",
        "CREATE INDEX connector_messages_received ON connector_messages(received)",
    ),
)
"""Schema migrations: migration *i* (0-based) brings the schema from version *i* to *i + 1*. Append, never edit."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes."""

PolicyTable = Literal[
    "professionals",
    "sharing_consents",
    "exclusions",
    "therapeutic_links",
    "access_rights",
    "held_back",
    "legal_representatives",
]
"""The consent registries' tables (see :mod:`rsb_connector.hub.consent`)."""

_CLOSING_COLUMNS: Final = ("closed_at", "closed_by", "closed_on")
_POLICY_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "professionals": ("nihii", "profession", "given", "family"),
    "sharing_consents": ("patient", "type", "signed"),
    "exclusions": ("patient", "professional_nihii", "start_day", "end_day"),
    "therapeutic_links": ("patient", "professional_nihii", "type", "proof", "start_day", "end_day"),
    "access_rights": ("patient", "document_unique_id", "professional_nihii", "allow"),
    "held_back": ("patient", "document_unique_id", "until_day"),
    "legal_representatives": ("patient", "representative"),
}
_HISTORY_COLUMNS: Final = (
    "at",
    "patient",
    "kind",
    "change",
    "record_table",
    "record_id",
    "by_subject",
    "by_role",
    "by_nihii",
    "by_ssin",
    "by_organisation",
    "details",
)
_CONNECTOR_COLUMNS: Final = (
    "received",
    "transport",
    "transaction_name",
    "path",
    "caller",
    "verdict",
    "checks",
    "answer",
    "excerpt",
)
_AUDIT_COLUMNS: Final = (
    "at",
    "who",
    "role",
    "who_nihii",
    "who_ssin",
    "organisation",
    "represents",
    "authenticated",
    "patient",
    "documents",
    "action",
    "decision",
    "rule",
    "reason",
    "break_the_glass",
    "xds_transaction",
)


# ============================================================================================== interface


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """A registered DocumentEntry with what the repository knows beside its metadata.

    Attributes:
        entry: the metadata, with its current availability status.
        sha256: content address of the document file (None for an entry without content, e.g. on-demand).
        submission_set_uuid: the submission set that registered it.
    """

    entry: DocumentEntry
    sha256: str | None
    submission_set_uuid: str


@dataclass(frozen=True, slots=True)
class SpooledBlob:
    """Content written to the spool directory, not yet adopted: its path and digest."""

    path: Path
    digest: ContentDigest


class QueryReader(Protocol):
    """What stored queries read: entries, submission sets and associations (a view that hides what a caller may not
    see implements just this; see :class:`rsb_connector.hub.enforcement.VisibleReader`)."""

    def entries(self, *, entry_uuids: Iterable[str] = (), unique_ids: Iterable[str] = ()) -> list[StoredEntry]:
        """Document entries by entryUUID and/or uniqueId (unknown ids are skipped), in registration order."""
        ...

    def submission_sets(
        self, *, entry_uuids: Iterable[str] = (), unique_ids: Iterable[str] = ()
    ) -> list[SubmissionSet]:
        """Submission sets by entryUUID and/or uniqueId, in registration order."""
        ...

    def associations(
        self,
        *,
        entry_uuids: Iterable[str] = (),
        sources: Iterable[str] = (),
        targets: Iterable[str] = (),
        types: Iterable[AssociationType] | None = None,
    ) -> list[Association]:
        """Associations by their own id, or whose source / target is one of the given ids, of the given types."""
        ...

    def find_documents(self, query: FindDocuments, *, limit: int | None = None) -> list[StoredEntry]:
        """FindDocuments / FindDocumentsByReferenceId: the entries matching every filter, at most ``limit``."""
        ...

    def find_submission_sets(self, query: FindSubmissionSets, *, limit: int | None = None) -> list[SubmissionSet]:
        """FindSubmissionSets: the patient's submission sets matching every filter, at most ``limit``."""
        ...


class StoreReader(QueryReader, Protocol):
    """Read access to the registry metadata, inside one consistent snapshot."""

    def has_patient(self, patient_id: str) -> bool:
        """Whether the patient is known to the hub's patient registry."""
        ...

    def patient_info(self, patient_id: str) -> dict[str, Any] | None:
        """The JSON description registered with the patient, or None when unknown."""
        ...

    def patients(self) -> list[tuple[str, dict[str, Any]]]:
        """Every registered patient id with its description."""
        ...

    def object_kinds(self, ids: Iterable[str]) -> dict[str, str]:
        """For each known id: ``DocumentEntry``, ``SubmissionSet`` or ``Association``."""
        ...

    def count(self, what: Literal["entries", "submission_sets", "associations", "patients", "submissions"]) -> int:
        """Number of rows of one kind (for tests, metrics and the seed description)."""
        ...

    def policy_records(
        self,
        table: PolicyTable,
        *,
        where: Mapping[str, str | int | None] | None = None,
        open_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Rows of a consent registry table whose columns equal ``where`` (None matches NULL), oldest first;
        ``open_only``: only records not closed yet."""
        ...

    def policy_history(self, *, patient: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
        """Registry changes (of one patient), oldest first; ``since``: at or after that ISO 8601 UTC time."""
        ...

    def audit_events(
        self,
        *,
        patient: str | None = None,
        who: str | None = None,
        action: str | None = None,
        decision: str | None = None,
        transaction: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Audit events matching every filter given, oldest first (``who``: subject, NIHII or SSIN; ``since``
        inclusive, ``until`` exclusive, ISO 8601 UTC); ``limit``: the most recent ones."""
        ...

    def connector_messages(self, *, since: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Recorded connector-validation messages, oldest first (``since``: received at or after that ISO 8601
        UTC time, in the stored format); ``limit``: the most recent ones."""
        ...


class StoreWriter(StoreReader, Protocol):
    """Write access: everything happens in one transaction, committed when the ``with`` block ends normally."""

    def register_patient(self, patient_id: str, info: Mapping[str, Any] | None = None) -> None:
        """Add the patient to the patient registry (or replace its description)."""
        ...

    def add_submission(
        self,
        submission: Submission,
        *,
        blobs: Mapping[str, str],
        received_at: str,
        submitter: str | None = None,
    ) -> None:
        """Store a checked submission: its set, entries (``blobs`` maps entryUUID → SHA-256), associations.

        Every id must already be a ``urn:uuid:``; the caller has checked the XDS rules.
        """
        ...

    def set_entry_status(self, entry_uuid: str, status: AvailabilityStatus) -> None:
        """Change the availability status of a document entry (deprecation by RPLC, ITI-57)."""
        ...

    def add_association(self, association: Association, *, submission_set_uuid: str | None = None) -> None:
        """Store one association (ITI-57 records its UpdateAvailabilityStatus association this way)."""
        ...

    def add_policy_record(self, table: PolicyTable, values: Mapping[str, Any]) -> int:
        """Insert a consent registry record (its table's columns plus ``created_*``); return its id."""
        ...

    def close_policy_record(
        self, table: PolicyTable, record_id: int, *, closed_at: str, closed_by: str, closed_on: str
    ) -> None:
        """Close an open record (revoked, lifted, withdrawn, replaced): it stays, with who closed it and when.

        Raises:
            KeyError: no open record with that id.
        """
        ...

    def add_policy_history(self, values: Mapping[str, Any]) -> int:
        """Append one registry change to the (append-only) change log; return its sequence number."""
        ...

    def add_audit_event(self, values: Mapping[str, Any]) -> int:
        """Append one event to the (append-only) audit trail; return its sequence number."""
        ...

    def add_connector_message(self, values: Mapping[str, Any], *, keep: int) -> int:
        """Record one graded message (the columns of ``connector_messages``) and drop all but the ``keep`` most
        recent ones; return its id."""
        ...

    def clear_connector_messages(self) -> int:
        """Forget every recorded connector-validation message (a new session); return how many there were."""
        ...


class Store(Protocol):
    """What the hub needs from persistence: transactions over the metadata, and a content-addressed blob store."""

    @property
    def spool_dir(self) -> Path:
        """Where uploads are spooled before they are adopted (same filesystem as the blobs)."""
        ...

    def read(self) -> contextlib.AbstractContextManager[StoreReader]:
        """A consistent read snapshot."""
        ...

    def write(self) -> contextlib.AbstractContextManager[StoreWriter]:
        """An exclusive write transaction: committed when the block ends normally, rolled back on an exception."""
        ...

    def adopt_blob(self, path: Path, digest: ContentDigest) -> None:
        """Move a spooled file (whose digest is ``digest``) to its content address, durably."""
        ...

    def write_blob(self, chunks: Iterable[bytes]) -> ContentDigest:
        """Store content streamed as chunks; return its digest."""
        ...

    def spool_blob(self, chunks: Iterable[bytes]) -> SpooledBlob:
        """Write content to the spool directory while hashing it, without adopting it."""
        ...

    def open_blob(self, sha256: str) -> BinaryIO:
        """Open stored content for reading (FileNotFoundError when absent)."""
        ...

    def blob_path(self, sha256: str) -> Path:
        """Where content with this SHA-256 is (or would be) stored."""
        ...

    def has_blob(self, sha256: str) -> bool:
        """Whether content with this SHA-256 is stored."""
        ...

    def gc_blobs(self) -> int:
        """Delete stored content no entry references; return how many files were removed."""
        ...

    def close(self) -> None:
        """Release connections and file handles."""
        ...


# ============================================================================================== SQLite


def _bounds(dtm: str | None) -> tuple[str | None, str | None]:
    if not dtm or Dtm.problem(dtm):
        return None, None
    d = Dtm(dtm)
    return d.lower_bound(), d.upper_bound()


def _short(status: AvailabilityStatus) -> str:
    return status.short


def _status(short: str) -> AvailabilityStatus:
    return AvailabilityStatus.parse(short)


def _code_cols(code: Code | None) -> tuple[str | None, str | None]:
    return (code.code, code.scheme) if code is not None else (None, None)


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


def _by_ids(entry_uuids: Iterable[str], unique_ids: Iterable[str], *, alias: str = "") -> tuple[str, list[Any]]:
    """A WHERE condition matching rows by entryUUID or by uniqueId (``""`` when both are empty), and its params."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, values in (("entry_uuid", entry_uuids), ("unique_id", unique_ids)):
        distinct = list(dict.fromkeys(values))
        if distinct:
            clauses.append(f"{alias}{column} IN ({_placeholders(len(distinct))})")
            params.extend(distinct)
    return " OR ".join(clauses), params


def _code_in_clause(column_code: str, column_scheme: str, codes: Sequence[Code], params: list[Any]) -> str:
    rows = ",".join("(?,?)" for _ in codes)
    for c in codes:
        params.extend((c.code, c.scheme))
    return f"({column_code}, {column_scheme}) IN (VALUES {rows})"


_ENTRY_COLUMNS = "d.json, d.status, d.sha256, d.submission_set_uuid"


class _Session:
    """One transaction on one connection; implements :class:`StoreWriter` (and so :class:`StoreReader`).

    SQL text is assembled only from constants and ``?`` placeholders; every value is bound (hence the S608
    suppressions).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # ------------------------------------------------------------------------------------------ patients
    def has_patient(self, patient_id: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM patients WHERE patient_id = ?", (patient_id,)).fetchone()
        return row is not None

    def patient_info(self, patient_id: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT info FROM patients WHERE patient_id = ?", (patient_id,)).fetchone()
        if row is None:
            return None
        info: dict[str, Any] = json.loads(row[0])
        return info

    def patients(self) -> list[tuple[str, dict[str, Any]]]:
        rows = self._conn.execute("SELECT patient_id, info FROM patients ORDER BY patient_id").fetchall()
        return [(pid, json.loads(info)) for pid, info in rows]

    def register_patient(self, patient_id: str, info: Mapping[str, Any] | None = None) -> None:
        self._conn.execute(
            "INSERT INTO patients(patient_id, info) VALUES (?, ?) "
            "ON CONFLICT(patient_id) DO UPDATE SET info = excluded.info",
            (patient_id, _dumps(dict(info or {}))),
        )

    # ------------------------------------------------------------------------------------------ reads
    @staticmethod
    def _stored(row: Sequence[Any]) -> StoredEntry:
        entry = entry_from_json(row[0])
        entry.availability_status = _status(row[1])
        return StoredEntry(entry=entry, sha256=row[2], submission_set_uuid=row[3])

    def entries(self, *, entry_uuids: Iterable[str] = (), unique_ids: Iterable[str] = ()) -> list[StoredEntry]:
        where, params = _by_ids(entry_uuids, unique_ids, alias="d.")
        if not where:
            return []
        sql = f"SELECT {_ENTRY_COLUMNS} FROM document_entries d WHERE {where} ORDER BY d.id"  # noqa: S608
        return [self._stored(r) for r in self._conn.execute(sql, params)]

    def submission_sets(
        self, *, entry_uuids: Iterable[str] = (), unique_ids: Iterable[str] = ()
    ) -> list[SubmissionSet]:
        where, params = _by_ids(entry_uuids, unique_ids)
        if not where:
            return []
        sql = f"SELECT json, status FROM submission_sets WHERE {where} ORDER BY id"  # noqa: S608
        return [self._ss(r) for r in self._conn.execute(sql, params)]

    @staticmethod
    def _ss(row: Sequence[Any]) -> SubmissionSet:
        ss = submission_set_from_json(row[0])
        ss.availability_status = _status(row[1])
        return ss

    def associations(
        self,
        *,
        entry_uuids: Iterable[str] = (),
        sources: Iterable[str] = (),
        targets: Iterable[str] = (),
        types: Iterable[AssociationType] | None = None,
    ) -> list[Association]:
        ids = list(dict.fromkeys(entry_uuids))
        srcs = list(dict.fromkeys(sources))
        tgts = list(dict.fromkeys(targets))
        if not ids and not srcs and not tgts:
            return []
        clauses = []
        params: list[Any] = []
        for column, values in (("entry_uuid", ids), ("source", srcs), ("target", tgts)):
            if values:
                clauses.append(f"{column} IN ({_placeholders(len(values))})")
                params.extend(values)
        sql = f"SELECT json, status FROM associations WHERE ({' OR '.join(clauses)})"  # noqa: S608
        if types is not None:
            type_values = [t.value for t in types]
            if not type_values:
                return []
            sql += f" AND type IN ({_placeholders(len(type_values))})"
            params.extend(type_values)
        sql += " ORDER BY id"
        out = []
        for text, status in self._conn.execute(sql, params):
            assoc = association_from_json(text)
            assoc.availability_status = _status(status)
            out.append(assoc)
        return out

    def object_kinds(self, ids: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(ids))
        out: dict[str, str] = {}
        if not wanted:
            return out
        marks = _placeholders(len(wanted))
        for table, kind in (
            ("document_entries", "DocumentEntry"),
            ("submission_sets", "SubmissionSet"),
            ("associations", "Association"),
        ):
            for (uuid,) in self._conn.execute(f"SELECT entry_uuid FROM {table} WHERE entry_uuid IN ({marks})", wanted):  # noqa: S608
                out[uuid] = kind
        return out

    def find_documents(self, query: FindDocuments, *, limit: int | None = None) -> list[StoredEntry]:
        params: list[Any] = [query.patient_id]
        where = ["d.patient_id = ?"]
        statuses = [_short(s) for s in query.statuses]
        where.append(f"d.status IN ({_placeholders(len(statuses))})")
        params.extend(statuses)
        object_types = list(query.object_types) or [DOCUMENT_ENTRY_STABLE]
        where.append(f"d.object_type IN ({_placeholders(len(object_types))})")
        params.extend(object_types)
        for codes, code_col, scheme_col in (
            (query.class_codes, "d.class_code", "d.class_scheme"),
            (query.type_codes, "d.type_code", "d.type_scheme"),
            (query.practice_setting_codes, "d.practice_code", "d.practice_scheme"),
            (query.healthcare_facility_type_codes, "d.facility_code", "d.facility_scheme"),
            (query.format_codes, "d.format_code", "d.format_scheme"),
        ):
            if codes:
                where.append(_code_in_clause(code_col, scheme_col, codes, params))
        # AND of ORs: every group must be matched by at least one code of the entry.
        for table, groups in (
            ("entry_event_codes", query.event_codes),
            ("entry_confidentiality_codes", query.confidentiality_codes),
        ):
            for group in groups:
                if not group:
                    continue
                inner = _code_in_clause("m.code", "m.scheme", group, params)
                where.append(f"EXISTS (SELECT 1 FROM {table} m WHERE m.entry_id = d.id AND {inner})")  # noqa: S608
        if query.author_persons:
            likes = " OR ".join("a.person LIKE ?" for _ in query.author_persons)
            params.extend(query.author_persons)
            where.append(f"EXISTS (SELECT 1 FROM entry_author_persons a WHERE a.entry_id = d.id AND ({likes}))")  # noqa: S608
        # Time ranges (ITI TF-2a 3.18.4.1.2.3.6): From is inclusive, To exclusive. A time is an interval at its
        # precision: an entry matches From when it may end at or after From's start, To when it starts before To.
        for column, value, is_from in (
            ("creation", query.creation_time_from, True),
            ("creation", query.creation_time_to, False),
            ("service_start", query.service_start_time_from, True),
            ("service_start", query.service_start_time_to, False),
            ("service_stop", query.service_stop_time_from, True),
            ("service_stop", query.service_stop_time_to, False),
        ):
            if value is None:
                continue
            bound = Dtm(value).lower_bound()
            if is_from:
                where.append(f"d.{column}_hi >= ?")
            else:
                where.append(f"d.{column}_lo < ?")
            params.append(bound)
        if isinstance(query, FindDocumentsByReferenceId):
            refs = list(query.reference_ids)
            if not refs:
                return []
            where.append(
                "EXISTS (SELECT 1 FROM entry_reference_ids r WHERE r.entry_id = d.id "  # noqa: S608
                f"AND r.reference_id IN ({_placeholders(len(refs))}))"
            )
            params.extend(refs)
        sql = f"SELECT {_ENTRY_COLUMNS} FROM document_entries d WHERE {' AND '.join(where)} ORDER BY d.id"  # noqa: S608
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [self._stored(r) for r in self._conn.execute(sql, params)]

    def find_submission_sets(self, query: FindSubmissionSets, *, limit: int | None = None) -> list[SubmissionSet]:
        params: list[Any] = [query.patient_id]
        where = ["s.patient_id = ?"]
        statuses = [_short(st) for st in query.statuses]
        where.append(f"s.status IN ({_placeholders(len(statuses))})")
        params.extend(statuses)
        if query.source_ids:
            where.append(f"s.source_id IN ({_placeholders(len(query.source_ids))})")
            params.extend(query.source_ids)
        if query.content_type_codes:
            where.append(
                _code_in_clause("s.content_type_code", "s.content_type_scheme", query.content_type_codes, params)
            )
        if query.submission_time_from is not None:
            where.append("s.submission_time_hi >= ?")
            params.append(Dtm(query.submission_time_from).lower_bound())
        if query.submission_time_to is not None:
            where.append("s.submission_time_lo < ?")
            params.append(Dtm(query.submission_time_to).lower_bound())
        if query.author_person is not None:
            where.append("EXISTS (SELECT 1 FROM submission_set_authors a WHERE a.ss_id = s.id AND a.person LIKE ?)")
            params.append(query.author_person)
        sql = f"SELECT s.json, s.status FROM submission_sets s WHERE {' AND '.join(where)} ORDER BY s.id"  # noqa: S608
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [self._ss(r) for r in self._conn.execute(sql, params)]

    def count(self, what: Literal["entries", "submission_sets", "associations", "patients", "submissions"]) -> int:
        table = {
            "entries": "document_entries",
            "submission_sets": "submission_sets",
            "associations": "associations",
            "patients": "patients",
            "submissions": "submissions",
        }[what]
        row = self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        return int(row[0])

    # ------------------------------------------------------------------------------------------ writes
    def add_submission(
        self,
        submission: Submission,
        *,
        blobs: Mapping[str, str],
        received_at: str,
        submitter: str | None = None,
    ) -> None:
        ss = submission.submission_set
        lo, hi = _bounds(ss.submission_time)
        ct_code, ct_scheme = _code_cols(ss.content_type_code)
        cur = self._conn.execute(
            "INSERT INTO submission_sets(entry_uuid, unique_id, patient_id, status, source_id, submission_time_lo, "
            "submission_time_hi, content_type_code, content_type_scheme, json) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                ss.entry_uuid,
                ss.unique_id,
                ss.patient_id,
                _short(ss.availability_status),
                ss.source_id,
                lo,
                hi,
                ct_code,
                ct_scheme,
                submission_set_to_json(ss),
            ),
        )
        ss_id = cur.lastrowid
        persons = {a.person for a in ss.authors if a.person}
        self._conn.executemany(
            "INSERT INTO submission_set_authors(ss_id, person) VALUES (?, ?)", [(ss_id, p) for p in persons]
        )
        for entry in submission.entries:
            self._add_entry(entry, sha256=blobs.get(entry.entry_uuid), submission_set_uuid=ss.entry_uuid)
        for assoc in submission.associations:
            self.add_association(assoc, submission_set_uuid=ss.entry_uuid)
        self._conn.execute(
            "INSERT INTO submissions(submission_set_uuid, received_at, submitter, entry_count) VALUES (?,?,?,?)",
            (ss.entry_uuid, received_at, submitter, len(submission.entries)),
        )

    def _add_entry(self, entry: DocumentEntry, *, sha256: str | None, submission_set_uuid: str) -> None:
        c_lo, c_hi = _bounds(entry.creation_time)
        start_lo, start_hi = _bounds(entry.service_start_time)
        stop_lo, stop_hi = _bounds(entry.service_stop_time)
        cur = self._conn.execute(
            "INSERT INTO document_entries(entry_uuid, unique_id, logical_id, version, patient_id, status, "
            "object_type, class_code, class_scheme, type_code, type_scheme, format_code, format_scheme, "
            "facility_code, facility_scheme, practice_code, practice_scheme, creation_lo, creation_hi, "
            "service_start_lo, service_start_hi, service_stop_lo, service_stop_hi, mime_type, hash, size, sha256, "
            "repository_unique_id, submission_set_uuid, json) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                entry.entry_uuid,
                entry.unique_id,
                entry.logical_id or entry.entry_uuid,
                entry.version or "1",
                entry.patient_id,
                _short(entry.availability_status),
                entry.object_type,
                *_code_cols(entry.class_code),
                *_code_cols(entry.type_code),
                *_code_cols(entry.format_code),
                *_code_cols(entry.healthcare_facility_type_code),
                *_code_cols(entry.practice_setting_code),
                c_lo,
                c_hi,
                start_lo,
                start_hi,
                stop_lo,
                stop_hi,
                entry.mime_type,
                entry.hash.lower() if entry.hash else None,
                entry.size,
                sha256,
                entry.repository_unique_id,
                submission_set_uuid,
                entry_to_json(entry),
            ),
        )
        entry_id = cur.lastrowid
        self._conn.executemany(
            "INSERT OR IGNORE INTO entry_confidentiality_codes(entry_id, code, scheme) VALUES (?,?,?)",
            [(entry_id, c.code, c.scheme) for c in entry.confidentiality_codes],
        )
        self._conn.executemany(
            "INSERT OR IGNORE INTO entry_event_codes(entry_id, code, scheme) VALUES (?,?,?)",
            [(entry_id, c.code, c.scheme) for c in entry.event_codes],
        )
        self._conn.executemany(
            "INSERT OR IGNORE INTO entry_author_persons(entry_id, person) VALUES (?,?)",
            [(entry_id, a.person) for a in entry.authors if a.person],
        )
        self._conn.executemany(
            "INSERT OR IGNORE INTO entry_reference_ids(entry_id, reference_id) VALUES (?,?)",
            [(entry_id, r) for r in entry.reference_ids],
        )

    def add_association(self, association: Association, *, submission_set_uuid: str | None = None) -> None:
        self._conn.execute(
            "INSERT INTO associations(entry_uuid, type, source, target, status, submission_set_uuid, json) "
            "VALUES (?,?,?,?,?,?,?)",
            (
                association.entry_uuid,
                association.type.value,
                association.source,
                association.target,
                _short(association.availability_status),
                submission_set_uuid,
                association_to_json(association),
            ),
        )

    def set_entry_status(self, entry_uuid: str, status: AvailabilityStatus) -> None:
        cur = self._conn.execute(
            "UPDATE document_entries SET status = ? WHERE entry_uuid = ?", (_short(status), entry_uuid)
        )
        if cur.rowcount != 1:
            raise KeyError(f"no document entry {entry_uuid}")

    # ------------------------------------------------------------------------------------------ consent registries
    @staticmethod
    def _checked(table: str, values: Iterable[str], allowed: Iterable[str]) -> list[str]:
        known = set(allowed)
        columns = list(values)
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise ValueError(f"{table} has no column(s) {', '.join(unknown)}")
        return columns

    def policy_records(
        self,
        table: PolicyTable,
        *,
        where: Mapping[str, str | int | None] | None = None,
        open_only: bool = False,
    ) -> list[dict[str, Any]]:
        if table not in _POLICY_COLUMNS:
            raise ValueError(f"{table!r} is not a consent registry table")
        filters = dict(where or {})
        allowed = ("id", *_POLICY_COLUMNS[table], *_COMMON_POLICY_COLUMNS, *_CLOSING_COLUMNS)
        clauses: list[str] = []
        params: list[Any] = []
        for column in self._checked(table, filters, allowed):
            clauses.append(f"{column} IS ?")
            params.append(filters[column])
        if open_only:
            clauses.append("closed_at IS NULL")
        sql = f"SELECT * FROM {table}"  # noqa: S608 - table and columns checked against the schema above
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        cur = self._conn.execute(sql + " ORDER BY id", params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def add_policy_record(self, table: PolicyTable, values: Mapping[str, Any]) -> int:
        if table not in _POLICY_COLUMNS:
            raise ValueError(f"{table!r} is not a consent registry table")
        columns = self._checked(table, values, (*_POLICY_COLUMNS[table], *_COMMON_POLICY_COLUMNS))
        sql = f"INSERT INTO {table}({', '.join(columns)}) VALUES ({_placeholders(len(columns))})"  # noqa: S608
        cur = self._conn.execute(sql, [values[c] for c in columns])
        return int(cur.lastrowid or 0)

    def close_policy_record(
        self, table: PolicyTable, record_id: int, *, closed_at: str, closed_by: str, closed_on: str
    ) -> None:
        if table not in _POLICY_COLUMNS:
            raise ValueError(f"{table!r} is not a consent registry table")
        cur = self._conn.execute(
            f"UPDATE {table} SET closed_at = ?, closed_by = ?, closed_on = ? "  # noqa: S608
            "WHERE id = ? AND closed_at IS NULL",
            (closed_at, closed_by, closed_on, record_id),
        )
        if cur.rowcount != 1:
            raise KeyError(f"no open record {record_id} in {table}")

    def add_policy_history(self, values: Mapping[str, Any]) -> int:
        columns = self._checked("policy_history", values, _HISTORY_COLUMNS)
        sql = f"INSERT INTO policy_history({', '.join(columns)}) VALUES ({_placeholders(len(columns))})"  # noqa: S608
        cur = self._conn.execute(sql, [values[c] for c in columns])
        return int(cur.lastrowid or 0)

    def policy_history(self, *, patient: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if patient is not None:
            clauses.append("patient = ?")
            params.append(patient)
        if since is not None:
            clauses.append("at >= ?")
            params.append(since)
        sql = "SELECT * FROM policy_history"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        cur = self._conn.execute(sql + " ORDER BY seq", params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def add_audit_event(self, values: Mapping[str, Any]) -> int:
        columns = self._checked("audit_events", values, _AUDIT_COLUMNS)
        sql = f"INSERT INTO audit_events({', '.join(columns)}) VALUES ({_placeholders(len(columns))})"  # noqa: S608
        cur = self._conn.execute(sql, [values[c] for c in columns])
        return int(cur.lastrowid or 0)

    def audit_events(
        self,
        *,
        patient: str | None = None,
        who: str | None = None,
        action: str | None = None,
        decision: str | None = None,
        transaction: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("patient", patient),
            ("action", action),
            ("decision", decision),
            ("xds_transaction", transaction),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if who is not None:
            clauses.append("(who = ? OR who_nihii = ? OR who_ssin = ?)")
            params.extend((who, who, who))
        if since is not None:
            clauses.append("at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("at < ?")
            params.append(until)
        sql = "SELECT * FROM audit_events"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT ?)"  # noqa: S608 - assembled from constants
            params.append(limit)
        cur = self._conn.execute(sql + " ORDER BY seq", params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def add_connector_message(self, values: Mapping[str, Any], *, keep: int) -> int:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        columns = self._checked("connector_messages", values, _CONNECTOR_COLUMNS)
        sql = f"INSERT INTO connector_messages({', '.join(columns)}) VALUES ({_placeholders(len(columns))})"  # noqa: S608
        cur = self._conn.execute(sql, [values[c] for c in columns])
        new_id = int(cur.lastrowid or 0)
        self._conn.execute("DELETE FROM connector_messages WHERE id <= ?", (new_id - keep,))
        return new_id

    def connector_messages(self, *, since: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM connector_messages"
        params: list[Any] = []
        if since is not None:
            sql += " WHERE received >= ?"
            params.append(since)
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT ?)"  # noqa: S608 - assembled from constants
            params.append(limit)
        cur = self._conn.execute(sql + " ORDER BY id", params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def clear_connector_messages(self) -> int:
        cur = self._conn.execute("DELETE FROM connector_messages")
        return int(cur.rowcount)


class SqliteStore:
    """The embedded :class:`Store`: SQLite metadata plus content-addressed files in one data directory.

    Open it with :meth:`open`; it is safe to share between threads. Use it as a context manager or call
    :meth:`close`.
    """

    DB_NAME = "registry.sqlite3"

    def __init__(self, data_dir: Path, *, synchronous: Literal["NORMAL", "FULL"] = "FULL") -> None:
        """Prefer :meth:`open`, which also creates the directories and migrates the schema."""
        self.data_dir = Path(data_dir)
        self.db_path = self.data_dir / self.DB_NAME
        self.blob_dir = self.data_dir / "documents"
        self._spool_dir = self.data_dir / "tmp"
        self._synchronous = synchronous
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._closed = False

    # ------------------------------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, data_dir: Path, *, synchronous: Literal["NORMAL", "FULL"] = "FULL") -> SqliteStore:
        """Open (creating if needed) the store in ``data_dir``: migrate the schema, clear leftover spool files.

        ``synchronous=FULL`` (the default) makes every committed submission survive a power cut; ``NORMAL``
        survives an application crash (SIGKILL) but may lose the last commits on power loss.
        """
        store = cls(data_dir, synchronous=synchronous)
        store.data_dir.mkdir(parents=True, exist_ok=True)
        store.blob_dir.mkdir(exist_ok=True)
        store._spool_dir.mkdir(exist_ok=True)
        for leftover in store._spool_dir.iterdir():
            if leftover.is_file() or leftover.is_symlink():
                leftover.unlink(missing_ok=True)
        conn = store._connection()
        conn.execute("PRAGMA journal_mode=WAL")
        store.migrate()
        return store

    def migrate(self) -> int:
        """Apply the migrations not applied yet, each in its own transaction; return the schema version."""
        with self._write_lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
                current = int(row[0]) if row and row[0] is not None else 0
                if current > SCHEMA_VERSION:
                    raise RuntimeError(
                        f"{self.db_path} has schema version {current}, newer than this code ({SCHEMA_VERSION}): "
                        "upgrade rsb-connector"
                    )
                for version in range(current, SCHEMA_VERSION):
                    for statement in MIGRATIONS[version]:
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version(version) VALUES (?)", (version + 1,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return SCHEMA_VERSION

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        row = self._connection().execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        """Close every connection (from any thread); the store is unusable afterwards."""
        with self._connections_lock:
            self._closed = True
            conns, self._connections = self._connections, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._connections_lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False, timeout=30.0)
            self._connections.append(conn)
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-16384")
        self._local.conn = conn
        return conn

    # ------------------------------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def read(self) -> Iterator[StoreReader]:
        """A consistent read snapshot (a deferred transaction; WAL lets it run beside a writer)."""
        conn = self._connection()
        if conn.in_transaction:  # nested in this thread's open transaction: share it
            yield _Session(conn)
            return
        conn.execute("BEGIN")
        try:
            yield _Session(conn)
        finally:
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def write(self) -> Iterator[StoreWriter]:
        """An exclusive write transaction (``BEGIN IMMEDIATE``): committed at the end, rolled back on error."""
        with self._write_lock:
            conn = self._connection()
            if conn.in_transaction:
                raise RuntimeError("write() cannot be nested in another transaction of the same thread")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Session(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------------------------------ blobs
    @property
    def spool_dir(self) -> Path:
        """Where uploads are spooled (``data_dir/tmp``): same filesystem as the blobs, emptied on open."""
        return self._spool_dir

    def blob_path(self, sha256: str) -> Path:
        """``documents/<sha256[:2]>/<sha256>``; ValueError for anything but 64 lower-case hex digits."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"{sha256!r} is not a SHA-256 content address (64 lower-case hex digits)")
        return self.blob_dir / sha256[:2] / sha256

    def has_blob(self, sha256: str) -> bool:
        """Whether content with this SHA-256 is stored."""
        return self.blob_path(sha256).is_file()

    def open_blob(self, sha256: str) -> BinaryIO:
        """Open stored content for reading (FileNotFoundError when absent)."""
        return self.blob_path(sha256).open("rb")

    def adopt_blob(self, path: Path, digest: ContentDigest) -> None:
        """Move the spooled file ``path`` (of digest ``digest``) to its content address, durably.

        The file is fsynced, renamed with :func:`os.replace` and its directory fsynced. When the content is
        already stored, the spooled file is deleted instead.
        """
        target = self.blob_path(digest.sha256)
        if target.exists():
            Path(path).unlink(missing_ok=True)
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
        _fsync_dir(target.parent)

    def spool_blob(self, chunks: Iterable[bytes]) -> SpooledBlob:
        """Write ``chunks`` to a new file in the spool directory while hashing them; fsynced, not adopted."""
        fd, name = tempfile.mkstemp(dir=self._spool_dir, prefix="upload-")
        path = Path(name)
        writer = DigestingWriter()
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    writer.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return SpooledBlob(path, writer.result())

    def write_blob(self, chunks: Iterable[bytes]) -> ContentDigest:
        """Stream ``chunks`` into the store (spool, fsync, adopt) and return their digest."""
        spooled = self.spool_blob(chunks)
        try:
            self.adopt_blob(spooled.path, spooled.digest)
        except BaseException:
            spooled.path.unlink(missing_ok=True)
            raise
        return spooled.digest

    def gc_blobs(self) -> int:
        """Delete stored files that no document entry references (left by a crash before commit).

        Runs under the write lock, so no submission is between adopting its documents and committing.
        """
        removed = 0
        with self.write() as _w:
            conn = self._connection()
            referenced = {
                row[0] for row in conn.execute("SELECT DISTINCT sha256 FROM document_entries WHERE sha256 IS NOT NULL")
            }
            for shard in self.blob_dir.iterdir():
                if not shard.is_dir():
                    continue
                for blob in shard.iterdir():
                    if blob.name not in referenced:
                        blob.unlink(missing_ok=True)
                        removed += 1
        return removed

    def blob_count(self) -> int:
        """How many content files are stored (for tests and metrics)."""
        return sum(1 for shard in self.blob_dir.iterdir() if shard.is_dir() for _ in shard.iterdir())


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

"""The hub's consent registries, with their history: who changed what, when, and who may.

:class:`ConsentRegistry` keeps, in the hub's store, everything the Belgian rules decide on
(:mod:`rsb_connector.policy`): sharing consents, exclusions, therapeutic links, per-document access rights,
documents held back from the patient, legal representatives of minors, and the professionals registry
(NIHII → profession and name) beside the patient registry. :meth:`ConsentRegistry.patient_state` turns it into the
:class:`~rsb_connector.policy.PatientState` the engine decides on.

**History.** Nothing is updated away. A record is created once and, at most, *closed* once (revoked, lifted,
withdrawn, released, or replaced by a newer record), keeping who closed it and when; triggers in the store refuse
any other change and any deletion. Every change is also appended to a change log (:meth:`ConsentRegistry.history`).
A therapeutic link is never edited: revoke it and declare a new one.

**Who may do what** (checked on every change; a refusal raises :class:`PolicyError` with a reason and a fix,
and is written to the audit trail when one is attached):

============================  ==================================================================================
change                        who
============================  ==================================================================================
grant / revoke consent        the patient (16 or older); a registered legal representative of a minor (under
                              16); a physician or a pharmacist (:data:`CONSENT_REGISTRARS`: the professions
                              that register consents at the patient's request in practice — GP practices and
                              pharmacies); a hospital (an organisation whose NIHII denotes one), at admission
add / remove exclusion        the patient (16 or older) or a minor's registered legal representative, only
declare link                  the professional concerned, in their own name, with a proof of the patient's
                              presence; a hospital for itself. Needs an active consent and no exclusion of that
                              professional; one valid link per professional and type (revoke, then declare)
revoke link                   the professional or organisation of the link; the patient or representative
set / remove access right     an author of the document (a professional named in its authorPerson)
hold back / release           an author of the document
register professional         the hub operator (:data:`~rsb_connector.hub.registry.HUB_OPERATOR_ROLE`)
add / remove representative   the hub operator (legal representation comes from the national register, not from
                              the people concerned)
============================  ==================================================================================

Dates: a revocation (consent, link) takes effect on the day it is made; a lifted exclusion stops applying that
same day (its last day is the day before); withdrawn access rights and released holds stop at once. "Today" is the
registry clock's day in Brussels.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import RsbError
from ..identifiers import NIHDI_OID, Nihii, Ssin, mask_ssin
from ..metadata.model import DocumentEntry
from ..policy import (
    MINOR_AGE,
    AccessMatrix,
    AccessRight,
    ActorKind,
    Confidentiality,
    ConsentType,
    DocumentFacts,
    Exclusion,
    HeldBack,
    PatientState,
    ProofType,
    SharingConsent,
    TherapeuticLink,
    TherapeuticLinkType,
    hcparty_of,
)
from .audit import AuditAction, AuditRecord, AuditTrail, iso_utc
from .registry import Caller, patient_ssin, utcnow
from .store import PolicyTable, Store, StoreReader, StoreWriter

__all__ = [
    "CONSENT_REGISTRARS",
    "ConsentRegistry",
    "HistoryEvent",
    "LegalRepresentation",
    "PolicyError",
    "Professional",
    "RecordKind",
    "Recorded",
    "Refusal",
    "author_nihiis",
    "brussels_day",
    "document_facts",
]

CONSENT_REGISTRARS: Final = frozenset({"persphysician", "perspharmacist"})
"""Professions (CD-HCPARTY) that may register or revoke a patient's consent at the patient's request."""

_HOSPITAL: Final = "orghospital"
_BRUSSELS: Final = "Europe/Brussels"


def brussels_day(moment: datetime) -> date:
    """The calendar day ``moment`` falls on in Brussels (UTC when the time zone database is missing)."""
    try:
        return moment.astimezone(ZoneInfo(_BRUSSELS)).date()
    except ZoneInfoNotFoundError:  # pragma: no cover - systems without tzdata
        return moment.date()


# ============================================================================================== errors


class Refusal(StrEnum):
    """Why a consent registry change was refused."""

    NOT_ALLOWED = "not-allowed"
    """The caller may not make this change (see the module's table)."""
    NOT_FOUND = "not-found"
    """There is nothing to revoke, lift, withdraw or release."""
    INVALID = "invalid"
    """The change makes no sense (dates, duplicates, codes)."""
    NO_CONSENT = "no-consent"
    """A therapeutic link needs the patient's active sharing consent."""


class PolicyError(RsbError):
    """A consent registry change was refused.

    Attributes:
        reason: why, for a person (SSINs masked).
        refusal: the kind of refusal.
        fix: what would make it work (None when nothing can).
    """

    def __init__(self, reason: str, *, refusal: Refusal = Refusal.NOT_ALLOWED, fix: str | None = None) -> None:
        self.reason = mask_ssin(reason)
        self.refusal = refusal
        self.fix = mask_ssin(fix) if fix is not None else None
        super().__init__(self.reason + (f" — fix: {self.fix}" if self.fix else ""))


# ============================================================================================== records


class RecordKind(StrEnum):
    """The registries."""

    CONSENT = "consent"
    EXCLUSION = "exclusion"
    LINK = "link"
    ACCESS_RIGHT = "access-right"
    HOLD = "hold"
    REPRESENTATIVE = "representative"
    PROFESSIONAL = "professional"

    @property
    def table(self) -> PolicyTable:
        """The store table of this registry."""
        return _TABLES[self]

    @property
    def audit_action(self) -> AuditAction:
        """The audit action a change of this registry is recorded as."""
        return AuditAction(self.value)


_TABLES: Final[dict[RecordKind, PolicyTable]] = {
    RecordKind.CONSENT: "sharing_consents",
    RecordKind.EXCLUSION: "exclusions",
    RecordKind.LINK: "therapeutic_links",
    RecordKind.ACCESS_RIGHT: "access_rights",
    RecordKind.HOLD: "held_back",
    RecordKind.REPRESENTATIVE: "legal_representatives",
    RecordKind.PROFESSIONAL: "professionals",
}

# KMEHR intrahub v3 operations the changes correspond to (recorded as the audit event's transaction).
_TRANSACTIONS: Final[dict[tuple[RecordKind, str], str]] = {
    (RecordKind.CONSENT, "grant"): "PutPatientConsent",
    (RecordKind.CONSENT, "revoke"): "RevokePatientConsent",
    (RecordKind.LINK, "declare"): "PutTherapeuticLink",
    (RecordKind.LINK, "revoke"): "RevokeTherapeuticLink",
    (RecordKind.ACCESS_RIGHT, "allow"): "PutAccessRight",
    (RecordKind.ACCESS_RIGHT, "disallow"): "PutAccessRight",
    (RecordKind.ACCESS_RIGHT, "remove"): "RevokeAccessRight",
}


@dataclass(frozen=True, slots=True)
class Professional:
    """An entry of the professionals registry.

    Attributes:
        nihii: 11 digits.
        profession: KMEHR CD-HCPARTY code (``persphysician``...).
        given: given name.
        family: family name.
    """

    nihii: str
    profession: str | None
    given: str = ""
    family: str = ""

    @property
    def author_person(self) -> str:
        """An XCN for the XDS ``authorPerson`` slot."""
        return f"{self.nihii}^{self.family}^{self.given}^^^^^^&{NIHDI_OID}&ISO"


@dataclass(frozen=True, slots=True)
class LegalRepresentation:
    """A legal representative (parent, guardian) of a minor patient; both SSINs."""

    patient: str
    representative: str


T = TypeVar("T")


def _masked_repr(obj: object) -> str:
    inner = ", ".join(f"{f.name}={getattr(obj, f.name)!r}" for f in dataclasses.fields(obj))  # type: ignore[arg-type]
    return mask_ssin(f"{type(obj).__name__}({inner})")


@dataclass(frozen=True, slots=True, repr=False)
class Recorded(Generic[T]):
    """A registry record with its history: the value, who created it and when, who closed it and when.

    Attributes:
        id: the record's id in its table.
        kind: which registry.
        value: the fact (a :class:`~rsb_connector.policy.SharingConsent`, :class:`~rsb_connector.policy.Exclusion`,
            :class:`~rsb_connector.policy.TherapeuticLink`, :class:`~rsb_connector.policy.AccessRight`,
            :class:`~rsb_connector.policy.HeldBack`, :class:`LegalRepresentation` or :class:`Professional`) as the
            record holds it (for a closed consent or link, ``revoked`` is the day it was closed).
        patient: the patient's SSIN (None for the professionals registry).
        created_at: when it was recorded.
        created_by: who recorded it (the caller's subject).
        closed_at: when it was closed, None while open.
        closed_by: who closed it.
        closed_on: the day from which it no longer applies.
    """

    id: int
    kind: RecordKind
    value: T
    patient: str | None
    created_at: datetime
    created_by: str
    closed_at: datetime | None = None
    closed_by: str | None = None
    closed_on: date | None = None

    @property
    def is_open(self) -> bool:
        """Not closed yet."""
        return self.closed_at is None

    def __repr__(self) -> str:
        return _masked_repr(self)


@dataclass(frozen=True, slots=True, repr=False)
class HistoryEvent:
    """One change of a registry, as the change log keeps it.

    Attributes:
        seq: order of the change.
        at: when.
        patient: the patient concerned (SSIN), None for the professionals registry.
        kind: which registry.
        change: ``grant``, ``revoke``, ``add``, ``remove``, ``declare``, ``allow``, ``disallow``, ``hold``,
            ``release``, ``register``, ``replace``...
        record_id: the record created or closed.
        by: the caller's subject.
        by_role: their role.
        by_id: their NIHII, SSIN or organisation.
        details: the record's values (JSON).
    """

    seq: int
    at: datetime
    patient: str | None
    kind: RecordKind
    change: str
    record_id: int
    by: str
    by_role: str | None
    by_id: str | None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        who = self.by + (f" ({self.by_role})" if self.by_role else "")
        about = f" patient {mask_ssin(self.patient)}" if self.patient else ""
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.details.items()))
        return mask_ssin(
            f"{self.at.isoformat(timespec='seconds')} {self.kind.value} {self.change}{about} by {who}: {shown}"
        )

    def __repr__(self) -> str:
        return _masked_repr(self)


# ============================================================================================== documents


def author_nihiis(entry: DocumentEntry) -> tuple[str, ...]:
    """NIHIIs of the professionals an entry names as authors (``authorPerson`` XCNs whose id is a valid NIHII and
    whose assigning authority, when given, is the NIHDI's)."""
    found: list[str] = []
    for author in entry.authors:
        person = author.person or ""
        parts = person.split("^")
        ident = parts[0].strip()
        authority = parts[8] if len(parts) > 8 else ""
        if authority and NIHDI_OID not in authority:
            continue
        if ident and Nihii.is_valid(ident):
            digits = Nihii(ident).digits
            if digits not in found:
                found.append(digits)
    return tuple(found)


def document_facts(entry: DocumentEntry) -> DocumentFacts:
    """What the rules need to know about a registered entry.

    The class is the classCode's code (a CD-TRANSACTION key); the confidentiality the strictest of the entry's
    confidentialityCodes (an unknown code counts as ``V``: fail closed); the authors the NIHIIs of
    :func:`author_nihiis`.
    """
    return DocumentFacts(
        unique_id=entry.unique_id or "",
        patient=patient_ssin(entry.patient_id or ""),
        class_code=entry.class_code.code if entry.class_code is not None else "",
        confidentiality=Confidentiality.strictest([c.code for c in entry.confidentiality_codes]).value,
        author_nihiis=author_nihiis(entry),
    )


# ============================================================================================== the registry


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _ssin(text: str) -> str:
    """The digits of a valid SSIN (an XDS CX is accepted too)."""
    digits = patient_ssin(text)
    Ssin(digits)  # raises InvalidIdentifier with the reason
    return digits


def _nihii(text: str) -> str:
    return Nihii(text).digits


def _caller_id(by: Caller) -> str | None:
    return by.nihii or by.ssin or by.organisation


@dataclass(slots=True)
class _Change:
    """One change in progress: what to audit once the write transaction is over."""

    kind: RecordKind
    change: str
    patient: str | None
    documents: tuple[str, ...] = ()
    reason: str = ""


class ConsentRegistry:
    """The consent registries in the hub's store (see the module docstring for the rules).

    Args:
        store: the hub's store.
        clock: the time source; "today" is its day in Brussels.
        audit: when given, every change and every refused change is written to this audit trail.
        matrix: the access matrix (for the default validity of links); None: the one shipped with rsb-connector.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        audit: AuditTrail | None = None,
        matrix: AccessMatrix | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.audit = audit
        self.matrix = matrix if matrix is not None else AccessMatrix.load()

    def today(self) -> date:
        """The registry clock's day in Brussels."""
        return brussels_day(self.clock())

    # ------------------------------------------------------------------------------------------ plumbing
    @contextmanager
    def _changing(
        self, by: Caller, kind: RecordKind, change: str, patient: str | None
    ) -> Iterator[tuple[_Change, StoreWriter]]:
        """A write transaction for one change (checks and writes see one state); the outcome, or the refusal, is
        audited once the transaction is over."""
        pending = _Change(kind, change, patient)
        try:
            if not by.authenticated:
                raise PolicyError(
                    f"{by.subject} is not authenticated: consent registries are changed only by identified callers",
                    fix="authenticate with a certificate or a token that names who you are",
                )
            with self.store.write() as w:
                yield pending, w
        except PolicyError as exc:
            self._audit(by, pending, allowed=False, rule=exc.refusal.value, reason=str(exc))
            raise
        self._audit(by, pending, allowed=True, rule=None, reason=pending.reason)

    def _audit(self, by: Caller, change: _Change, *, allowed: bool, rule: str | None, reason: str) -> None:
        if self.audit is None:
            return
        self.audit.record_all(
            [
                AuditRecord(
                    who=by,
                    action=change.kind.audit_action,
                    decision=allowed,
                    patient=change.patient,
                    documents=change.documents,
                    rule=rule,
                    reason=reason or f"{change.kind.value} {change.change}",
                    transaction=_TRANSACTIONS.get((change.kind, change.change)),
                )
            ]
        )

    def _insert(
        self,
        w: StoreWriter,
        by: Caller,
        kind: RecordKind,
        change: str,
        patient: str | None,
        values: Mapping[str, Any],
    ) -> int:
        now = iso_utc(self.clock())
        record_id = w.add_policy_record(
            kind.table, {**values, "created_at": now, "created_by": by.subject, "created_by_id": _caller_id(by)}
        )
        self._log(w, by, kind, change, patient, record_id, values, now)
        return record_id

    def _close(
        self,
        w: StoreWriter,
        by: Caller,
        kind: RecordKind,
        change: str,
        patient: str | None,
        row: Mapping[str, Any],
    ) -> None:
        now = iso_utc(self.clock())
        w.close_policy_record(
            kind.table, int(row["id"]), closed_at=now, closed_by=by.subject, closed_on=self._iso_today()
        )
        values = {k: v for k, v in row.items() if not k.startswith(("created_", "closed_")) and k != "id"}
        self._log(w, by, kind, change, patient, int(row["id"]), values, now)

    def _log(
        self,
        w: StoreWriter,
        by: Caller,
        kind: RecordKind,
        change: str,
        patient: str | None,
        record_id: int,
        values: Mapping[str, Any],
        at: str,
    ) -> None:
        w.add_policy_history(
            {
                "at": at,
                "patient": patient,
                "kind": kind.value,
                "change": change,
                "record_table": kind.table,
                "record_id": record_id,
                "by_subject": by.subject,
                "by_role": by.role,
                "by_nihii": by.nihii,
                "by_ssin": by.ssin,
                "by_organisation": by.organisation,
                "details": json.dumps(dict(values), sort_keys=True, default=str),
            }
        )

    def _iso_today(self) -> str:
        return self.today().isoformat()

    def _read_one(self, r: StoreReader, kind: RecordKind, record_id: int) -> Recorded[Any]:
        rows = r.policy_records(kind.table, where={"id": record_id})
        return self._recorded(kind, rows[0])

    # ------------------------------------------------------------------------------------------ who may
    def _patient_side(self, by: Caller, patient: str, state: PatientState, what: str) -> str | None:
        """None when ``by`` is the patient (16 or older) or a registered legal representative of the minor patient;
        otherwise why not."""
        actor = by.actor()
        today = self.today()
        age = state.age_on(today)
        if actor.kind is ActorKind.PATIENT:
            if actor.ssin != patient:
                return f"only the patient concerned (or the legal representative of a minor) may {what}"
            if age is not None and age < MINOR_AGE:
                return f"the patient is {age}: under {MINOR_AGE}, a registered legal representative may {what} for them"
            return None
        if actor.kind is ActorKind.REPRESENTATIVE:
            if actor.represents != patient:
                return f"the representative acts for another patient: only the patient's own representative may {what}"
            if actor.ssin not in state.legal_representatives:
                return "the caller is not registered as a legal representative of this patient"
            if age is None or age >= MINOR_AGE:
                return f"a legal representative acts only for a patient under {MINOR_AGE}, which this patient is not"
            return None
        return f"only the patient (or the legal representative of a minor) may {what}"

    def _may_register_consent(self, by: Caller, patient: str, state: PatientState, what: str) -> str | None:
        actor = by.actor(profession=self.profession_of(by.nihii))
        if actor.kind is ActorKind.PROFESSIONAL:
            if actor.profession_code in CONSENT_REGISTRARS:
                return None
            return (
                f"a {actor.profession_code or 'professional of unknown profession'} may not {what}: "
                f"physicians and pharmacists register consents at the patient's request"
            )
        if actor.kind is ActorKind.ORGANISATION:
            if hcparty_of(actor.nihii) == _HOSPITAL:
                return None
            return f"only a hospital among organisations may {what}"
        return self._patient_side(by, patient, state, what)

    @staticmethod
    def _author_check(r: StoreReader, by: Caller, document_unique_id: str, what: str) -> DocumentFacts:
        """The facts of the document when ``by`` is one of its authors; PolicyError otherwise (the same refusal for
        an unknown document, so that existence does not leak)."""
        stored = r.entries(unique_ids=[document_unique_id])
        actor = by.actor()
        facts = document_facts(stored[0].entry) if stored else None
        if facts is None or actor.kind is not ActorKind.PROFESSIONAL or not facts.is_author(actor.nihii):
            raise PolicyError(
                f"no document {document_unique_id!r} of which the caller is an author: only an author of a document "
                f"may {what}",
                fix="ask one of the document's authors",
            )
        return facts

    @staticmethod
    def _operator_only(by: Caller, what: str) -> None:
        if not by.is_operator:
            raise PolicyError(
                f"only the hub operator may {what}",
                fix="the hub operator registers this (in production it comes from an authentic source)",
            )

    # ------------------------------------------------------------------------------------------ patients
    def feed_patient(self, patient: str, *, by: Caller, info: Mapping[str, Any] | None = None) -> bool:
        """Patient identity feed: make a person known to the hub's patient registry (ITI-41 and ITI-65 refuse
        documents about unknown patients).

        In the network the national register is the source; in the mock hub a hospital (the organisation that
        identifies patients at admission) or the hub operator feeds it. Audited either way.

        Returns:
            True when the patient is new to the registry, False when it was known (its description is kept).

        Raises:
            PolicyError: ``by`` is not authenticated, not a hospital nor the operator; a BIS number (not in the
                national register).
            InvalidIdentifier: ``patient`` is not a valid SSIN.
        """
        ssin = Ssin(patient)
        digits = ssin.digits
        refusal: str | None = None
        actor = by.actor(profession=self.profession_of(by.nihii))
        if not by.authenticated:
            refusal = f"{by.subject} is not authenticated: only identified hospitals feed the patient registry"
        elif not by.is_operator and not (actor.kind is ActorKind.ORGANISATION and hcparty_of(actor.nihii) == _HOSPITAL):
            refusal = "only a hospital (or the hub operator) feeds the patient registry"
        elif ssin.is_bis:
            refusal = "a BIS number is not in the national register: the patient registry takes national numbers"
        if refusal is not None:
            if self.audit is not None:
                self.audit.record(
                    by,
                    action=AuditAction.PATIENT_FEED,
                    decision=False,
                    patient=digits,
                    rule="patient-feed",
                    reason=refusal,
                    transaction="FHIR Patient create",
                )
            raise PolicyError(refusal, fix="register the patient as a hospital identity")
        cx = ssin.to_cx()
        with self.store.write() as w:
            known = w.has_patient(cx)
            if not known:
                w.register_patient(cx, {"source": "patient-feed", "by": by.subject, **dict(info or {})})
        if self.audit is not None:
            self.audit.record(
                by,
                action=AuditAction.PATIENT_FEED,
                decision=True,
                patient=digits,
                reason="patient already known" if known else "patient registered",
                transaction="FHIR Patient create",
            )
        return not known

    # ------------------------------------------------------------------------------------------ consents
    def grant_consent(
        self,
        patient: str,
        *,
        by: Caller,
        type: ConsentType | str = ConsentType.RETROSPECTIVE,
        signed: date | None = None,
    ) -> Recorded[SharingConsent]:
        """Record the patient's sharing consent (signed today unless ``signed`` is given, not in the future).

        Raises:
            PolicyError: ``by`` may not register it; the patient already has an active consent (one national
                consent: revoke it first); ``signed`` in the future; an unknown type.
            InvalidIdentifier: ``patient`` is not a valid SSIN.
        """
        ssin = _ssin(patient)
        with self._changing(by, RecordKind.CONSENT, "grant", ssin) as (change, w):
            state = self._state(w, ssin)
            refused = self._may_register_consent(by, ssin, state, "register a consent")
            if refused:
                raise PolicyError(refused, fix="the patient, their physician or pharmacist registers the consent")
            try:
                kind = ConsentType.parse(type)
            except ValueError as exc:
                raise PolicyError(str(exc), refusal=Refusal.INVALID) from None
            today = self.today()
            day = signed or today
            if day > today:
                raise PolicyError(
                    f"a consent signed on {day.isoformat()} is in the future", refusal=Refusal.INVALID, fix="sign it"
                )
            active = state.active_consent(today)
            if active is not None:
                raise PolicyError(
                    f"this patient already has an active {active.type.value} consent signed on "
                    f"{active.signed.isoformat()} (one national consent)",
                    refusal=Refusal.INVALID,
                    fix="revoke it first to register another type",
                )
            values = {"patient": ssin, "type": kind.value, "signed": day.isoformat()}
            record_id = self._insert(w, by, RecordKind.CONSENT, "grant", ssin, values)
            change.reason = f"{kind.value} consent signed on {day.isoformat()} registered"
            return self._read_one(w, RecordKind.CONSENT, record_id)

    def revoke_consent(self, patient: str, *, by: Caller) -> Recorded[SharingConsent]:
        """Revoke the patient's active consent, from today on.

        Raises:
            PolicyError: ``by`` may not; there is no consent to revoke.
        """
        ssin = _ssin(patient)
        with self._changing(by, RecordKind.CONSENT, "revoke", ssin) as (change, w):
            state = self._state(w, ssin)
            refused = self._may_register_consent(by, ssin, state, "revoke a consent")
            if refused:
                raise PolicyError(refused, fix="the patient, their physician or pharmacist revokes the consent")
            rows = w.policy_records("sharing_consents", where={"patient": ssin}, open_only=True)
            if not rows:
                raise PolicyError("this patient has no consent to revoke", refusal=Refusal.NOT_FOUND)
            for row in rows:
                self._close(w, by, RecordKind.CONSENT, "revoke", ssin, row)
            change.reason = f"consent revoked on {self._iso_today()}"
            return self._read_one(w, RecordKind.CONSENT, int(rows[-1]["id"]))

    # ------------------------------------------------------------------------------------------ exclusions
    def add_exclusion(
        self,
        patient: str,
        professional_nihii: str,
        *,
        by: Caller,
        start: date | None = None,
        end: date | None = None,
    ) -> Recorded[Exclusion]:
        """The patient excludes a professional from their data (from ``start``, today by default, to ``end``
        inclusive, None: until lifted).

        Raises:
            PolicyError: ``by`` is not the patient (or a minor's representative); already excluded; ``end`` before
                ``start``.
            InvalidIdentifier: a malformed SSIN or NIHII.
        """
        ssin, nihii = _ssin(patient), _nihii(professional_nihii)
        with self._changing(by, RecordKind.EXCLUSION, "add", ssin) as (change, w):
            state = self._state(w, ssin)
            refused = self._patient_side(by, ssin, state, "exclude a professional")
            if refused:
                raise PolicyError(refused, fix="the patient manages their exclusions (a representative for a minor)")
            first = start or self.today()
            if end is not None and end < first:
                raise PolicyError("the exclusion ends before it starts", refusal=Refusal.INVALID)
            if state.exclusion_of(nihii, first) is not None:
                raise PolicyError(
                    f"NIHII {nihii} is already excluded by this patient", refusal=Refusal.INVALID, fix="nothing to do"
                )
            values = {
                "patient": ssin,
                "professional_nihii": nihii,
                "start_day": first.isoformat(),
                "end_day": end.isoformat() if end else None,
            }
            record_id = self._insert(w, by, RecordKind.EXCLUSION, "add", ssin, values)
            change.reason = f"NIHII {nihii} excluded from {first.isoformat()}"
            return self._read_one(w, RecordKind.EXCLUSION, record_id)

    def remove_exclusion(self, patient: str, professional_nihii: str, *, by: Caller) -> list[Recorded[Exclusion]]:
        """Lift the patient's exclusions of a professional (they no longer apply from today on).

        Raises:
            PolicyError: ``by`` is not the patient (or a minor's representative); no exclusion to lift.
        """
        ssin, nihii = _ssin(patient), _nihii(professional_nihii)
        with self._changing(by, RecordKind.EXCLUSION, "remove", ssin) as (change, w):
            state = self._state(w, ssin)
            refused = self._patient_side(by, ssin, state, "lift an exclusion")
            if refused:
                raise PolicyError(refused, fix="only the patient can lift an exclusion")
            rows = w.policy_records("exclusions", where={"patient": ssin, "professional_nihii": nihii}, open_only=True)
            if not rows:
                raise PolicyError(f"NIHII {nihii} is not excluded by this patient", refusal=Refusal.NOT_FOUND)
            for row in rows:
                self._close(w, by, RecordKind.EXCLUSION, "remove", ssin, row)
            change.reason = f"exclusion of NIHII {nihii} lifted"
            return [self._read_one(w, RecordKind.EXCLUSION, int(row["id"])) for row in rows]

    # ------------------------------------------------------------------------------------------ links
    def declare_link(
        self,
        patient: str,
        professional_nihii: str,
        type: TherapeuticLinkType | str,
        proof: ProofType | str,
        *,
        by: Caller,
        start: date | None = None,
        end: date | None = None,
    ) -> Recorded[TherapeuticLink]:
        """Declare a therapeutic link between a professional (or a hospital) and the patient.

        ``start`` defaults to today; ``end`` None lets the profession's default validity apply (access matrix).

        Raises:
            PolicyError: ``by`` is not that professional (or hospital); no active consent; the patient excluded the
                professional; the same type of link is already valid (revoke it, then declare); ``end`` before
                ``start``; an unknown type or proof.
        """
        ssin, nihii = _ssin(patient), Nihii(professional_nihii).digits
        with self._changing(by, RecordKind.LINK, "declare", ssin) as (change, w):
            actor = by.actor(profession=self.profession_of(by.nihii))
            own = actor.nihii == nihii and actor.kind in (ActorKind.PROFESSIONAL, ActorKind.ORGANISATION)
            if not own:
                raise PolicyError(
                    "a therapeutic link is declared by the professional (or hospital) concerned, in their own name",
                    fix=f"declare it authenticated as NIHII {nihii}, with a proof of the patient's presence",
                )
            try:
                link_type = TherapeuticLinkType.parse(type)
                link_proof = ProofType.parse(proof)
            except ValueError as exc:
                raise PolicyError(str(exc), refusal=Refusal.INVALID) from None
            today = self.today()
            first = start or today
            if end is not None and end < first:
                raise PolicyError("the therapeutic link ends before it starts", refusal=Refusal.INVALID)
            state = self._state(w, ssin)
            if state.active_consent(today) is None:
                raise PolicyError(
                    "this patient has no active sharing consent: a therapeutic link needs one",
                    refusal=Refusal.NO_CONSENT,
                    fix="the patient (or their physician or pharmacist) registers the consent first",
                )
            if state.exclusion_of(nihii, today) is not None:
                raise PolicyError(
                    f"this patient has excluded NIHII {nihii}: no therapeutic link can be declared",
                    fix="only the patient can lift the exclusion",
                )
            months = self.matrix.link_validity_months(actor.profession_code)
            for existing in state.links_of(nihii):
                if existing.type is link_type and existing.valid_on(today, months):
                    raise PolicyError(
                        f"a {link_type.value} link of NIHII {nihii} with this patient is already valid "
                        "(a link is never edited)",
                        refusal=Refusal.INVALID,
                        fix="revoke it, then declare the new one",
                    )
            values = {
                "patient": ssin,
                "professional_nihii": nihii,
                "type": link_type.value,
                "proof": link_proof.value,
                "start_day": first.isoformat(),
                "end_day": end.isoformat() if end else None,
            }
            record_id = self._insert(w, by, RecordKind.LINK, "declare", ssin, values)
            change.reason = f"{link_type.value} link of NIHII {nihii} declared ({link_proof.value})"
            return self._read_one(w, RecordKind.LINK, record_id)

    def revoke_link(
        self,
        patient: str,
        professional_nihii: str,
        *,
        by: Caller,
        type: TherapeuticLinkType | str | None = None,
    ) -> list[Recorded[TherapeuticLink]]:
        """Revoke the professional's open links with the patient (of ``type`` only, when given), from today on.

        Raises:
            PolicyError: ``by`` is neither that professional or organisation nor the patient (or a minor's
                representative); no link to revoke.
        """
        ssin, nihii = _ssin(patient), Nihii(professional_nihii).digits
        with self._changing(by, RecordKind.LINK, "revoke", ssin) as (change, w):
            actor = by.actor()
            own = actor.nihii == nihii and actor.kind in (ActorKind.PROFESSIONAL, ActorKind.ORGANISATION)
            if not own:
                refused = self._patient_side(by, ssin, self._state(w, ssin), "revoke a therapeutic link")
                if refused:
                    raise PolicyError(
                        "a therapeutic link is revoked by its professional (or organisation), or by the patient",
                        fix="revoke it as the professional concerned or as the patient",
                    )
            where: dict[str, str | int | None] = {"patient": ssin, "professional_nihii": nihii}
            if type is not None:
                try:
                    where["type"] = TherapeuticLinkType.parse(type).value
                except ValueError as exc:
                    raise PolicyError(str(exc), refusal=Refusal.INVALID) from None
            rows = w.policy_records("therapeutic_links", where=where, open_only=True)
            if not rows:
                raise PolicyError(
                    f"no therapeutic link of NIHII {nihii} with this patient to revoke", refusal=Refusal.NOT_FOUND
                )
            for row in rows:
                self._close(w, by, RecordKind.LINK, "revoke", ssin, row)
            change.reason = f"therapeutic link(s) of NIHII {nihii} revoked"
            return [self._read_one(w, RecordKind.LINK, int(row["id"])) for row in rows]

    # ------------------------------------------------------------------------------------------ documents
    def set_access_right(
        self, document_unique_id: str, professional_nihii: str, allow: bool, *, by: Caller
    ) -> Recorded[AccessRight]:
        """An author allows or disallows one professional on one document (replacing an earlier right of theirs).

        Raises:
            PolicyError: ``by`` is not an author of the document (or it is unknown: same refusal).
        """
        nihii = _nihii(professional_nihii)
        change_name = "allow" if allow else "disallow"
        with self._changing(by, RecordKind.ACCESS_RIGHT, change_name, None) as (change, w):
            change.documents = (document_unique_id,)
            facts = self._author_check(w, by, document_unique_id, "set its access rights")
            change.patient = facts.patient
            where: dict[str, str | int | None] = {"document_unique_id": document_unique_id, "professional_nihii": nihii}
            for row in w.policy_records("access_rights", where=where, open_only=True):
                self._close(w, by, RecordKind.ACCESS_RIGHT, "replace", facts.patient, row)
            values = {
                "patient": facts.patient,
                "document_unique_id": document_unique_id,
                "professional_nihii": nihii,
                "allow": int(allow),
            }
            record_id = self._insert(w, by, RecordKind.ACCESS_RIGHT, change_name, facts.patient, values)
            change.reason = f"NIHII {nihii} {'allowed' if allow else 'disallowed'} on the document"
            return self._read_one(w, RecordKind.ACCESS_RIGHT, record_id)

    def remove_access_right(
        self, document_unique_id: str, professional_nihii: str, *, by: Caller
    ) -> list[Recorded[AccessRight]]:
        """Withdraw an author's explicit right about one professional on one document.

        Raises:
            PolicyError: ``by`` is not an author; no such right.
        """
        nihii = _nihii(professional_nihii)
        with self._changing(by, RecordKind.ACCESS_RIGHT, "remove", None) as (change, w):
            change.documents = (document_unique_id,)
            facts = self._author_check(w, by, document_unique_id, "change its access rights")
            change.patient = facts.patient
            where: dict[str, str | int | None] = {"document_unique_id": document_unique_id, "professional_nihii": nihii}
            rows = w.policy_records("access_rights", where=where, open_only=True)
            if not rows:
                raise PolicyError(f"no access right of NIHII {nihii} on this document", refusal=Refusal.NOT_FOUND)
            for row in rows:
                self._close(w, by, RecordKind.ACCESS_RIGHT, "remove", facts.patient, row)
            change.reason = f"access right of NIHII {nihii} withdrawn"
            return [self._read_one(w, RecordKind.ACCESS_RIGHT, int(row["id"])) for row in rows]

    def hold_back(self, document_unique_id: str, *, by: Caller, until: date | None) -> Recorded[HeldBack]:
        """An author holds a document back from the patient until ``until`` (visible from that day), or for good
        (None); replaces an earlier hold of the document.

        Raises:
            PolicyError: ``by`` is not an author; ``until`` is not after today.
        """
        with self._changing(by, RecordKind.HOLD, "hold", None) as (change, w):
            change.documents = (document_unique_id,)
            facts = self._author_check(w, by, document_unique_id, "hold it back from the patient")
            change.patient = facts.patient
            if until is not None and until <= self.today():
                raise PolicyError(
                    f"holding a document back until {until.isoformat()} hides nothing: that day has come",
                    refusal=Refusal.INVALID,
                    fix="give a day after today, or none to hold it back for good",
                )
            for row in w.policy_records("held_back", where={"document_unique_id": document_unique_id}, open_only=True):
                self._close(w, by, RecordKind.HOLD, "replace", facts.patient, row)
            values = {
                "patient": facts.patient,
                "document_unique_id": document_unique_id,
                "until_day": until.isoformat() if until else None,
            }
            record_id = self._insert(w, by, RecordKind.HOLD, "hold", facts.patient, values)
            change.reason = f"held back from the patient {'until ' + until.isoformat() if until else 'for good'}"
            return self._read_one(w, RecordKind.HOLD, record_id)

    def release(self, document_unique_id: str, *, by: Caller) -> list[Recorded[HeldBack]]:
        """An author releases a held-back document to the patient, at once.

        Raises:
            PolicyError: ``by`` is not an author; the document is not held back.
        """
        with self._changing(by, RecordKind.HOLD, "release", None) as (change, w):
            change.documents = (document_unique_id,)
            facts = self._author_check(w, by, document_unique_id, "release it")
            change.patient = facts.patient
            rows = w.policy_records("held_back", where={"document_unique_id": document_unique_id}, open_only=True)
            if not rows:
                raise PolicyError("the document is not held back", refusal=Refusal.NOT_FOUND)
            for row in rows:
                self._close(w, by, RecordKind.HOLD, "release", facts.patient, row)
            change.reason = "released to the patient"
            return [self._read_one(w, RecordKind.HOLD, int(row["id"])) for row in rows]

    # ------------------------------------------------------------------------------------------ people
    def register_professional(
        self,
        nihii: str,
        *,
        by: Caller,
        profession: str | None = None,
        given: str = "",
        family: str = "",
    ) -> Recorded[Professional]:
        """Add a professional to the professionals registry, or record new details (the old ones stay in history).

        ``profession`` (CD-HCPARTY) defaults to what the NIHII's first digit denotes.

        Raises:
            PolicyError: ``by`` is not the hub operator; no profession given or derivable.
            InvalidIdentifier: a malformed NIHII.
        """
        number = Nihii(nihii)
        with self._changing(by, RecordKind.PROFESSIONAL, "register", None) as (change, w):
            self._operator_only(by, "register professionals")
            code = (profession or number.hcparty or "").strip().casefold()
            if not code.startswith("pers"):
                raise PolicyError(
                    f"NIHII {number.digits} does not denote a professional's profession ({code or 'none'})",
                    refusal=Refusal.INVALID,
                    fix="give profession= (a CD-HCPARTY code such as persphysician)",
                )
            for row in w.policy_records("professionals", where={"nihii": number.digits}, open_only=True):
                self._close(w, by, RecordKind.PROFESSIONAL, "replace", None, row)
            values = {"nihii": number.digits, "profession": code, "given": given, "family": family}
            record_id = self._insert(w, by, RecordKind.PROFESSIONAL, "register", None, values)
            change.reason = f"NIHII {number.digits} registered as {code}"
            return self._read_one(w, RecordKind.PROFESSIONAL, record_id)

    def professional(self, nihii: str) -> Professional | None:
        """The registered professional with this NIHII, None when unknown."""
        digits = "".join(ch for ch in nihii if ch.isdigit())
        with self.store.read() as r:
            rows = r.policy_records("professionals", where={"nihii": digits}, open_only=True)
        return self._professional(rows[-1]) if rows else None

    def professionals(self) -> list[Professional]:
        """Every registered professional, by NIHII."""
        with self.store.read() as r:
            rows = r.policy_records("professionals", open_only=True)
        return sorted((self._professional(row) for row in rows), key=lambda p: p.nihii)

    def profession_of(self, nihii: str | None) -> str | None:
        """The registered profession of ``nihii`` (None when not registered or not given)."""
        if not nihii:
            return None
        found = self.professional(nihii)
        return found.profession if found else None

    def add_representative(self, patient: str, representative: str, *, by: Caller) -> Recorded[LegalRepresentation]:
        """Register ``representative`` (SSIN) as a legal representative of the minor ``patient``.

        Raises:
            PolicyError: ``by`` is not the hub operator; the patient is 16 or older; already registered.
        """
        ssin, rep = _ssin(patient), _ssin(representative)
        with self._changing(by, RecordKind.REPRESENTATIVE, "add", ssin) as (change, w):
            self._operator_only(by, "register legal representatives")
            state = self._state(w, ssin)
            age = state.age_on(self.today())
            if age is not None and age >= MINOR_AGE:
                raise PolicyError(
                    f"the patient is {age}: a legal representative is registered for a patient under {MINOR_AGE}",
                    refusal=Refusal.INVALID,
                )
            if rep == ssin:
                raise PolicyError("a patient cannot represent themself", refusal=Refusal.INVALID)
            if rep in state.legal_representatives:
                raise PolicyError("already registered as this patient's representative", refusal=Refusal.INVALID)
            values = {"patient": ssin, "representative": rep}
            record_id = self._insert(w, by, RecordKind.REPRESENTATIVE, "add", ssin, values)
            change.reason = "legal representative registered"
            return self._read_one(w, RecordKind.REPRESENTATIVE, record_id)

    def remove_representative(
        self, patient: str, representative: str, *, by: Caller
    ) -> list[Recorded[LegalRepresentation]]:
        """End a legal representation.

        Raises:
            PolicyError: ``by`` is not the hub operator; no such representation.
        """
        ssin, rep = _ssin(patient), _ssin(representative)
        with self._changing(by, RecordKind.REPRESENTATIVE, "remove", ssin) as (change, w):
            self._operator_only(by, "end legal representations")
            where: dict[str, str | int | None] = {"patient": ssin, "representative": rep}
            rows = w.policy_records("legal_representatives", where=where, open_only=True)
            if not rows:
                raise PolicyError("no such legal representation", refusal=Refusal.NOT_FOUND)
            for row in rows:
                self._close(w, by, RecordKind.REPRESENTATIVE, "remove", ssin, row)
            change.reason = "legal representation ended"
            return [self._read_one(w, RecordKind.REPRESENTATIVE, int(row["id"])) for row in rows]

    # ------------------------------------------------------------------------------------------ reading
    def records(self, kind: RecordKind, patient: str, *, open_only: bool = False) -> list[Recorded[Any]]:
        """The patient's records of one registry (closed ones too unless ``open_only``), oldest first."""
        if kind is RecordKind.PROFESSIONAL:
            raise ValueError("the professionals registry is not per patient: use professionals()")
        ssin = patient_ssin(patient)
        with self.store.read() as r:
            rows = r.policy_records(kind.table, where={"patient": ssin}, open_only=open_only)
        return [self._recorded(kind, row) for row in rows]

    def patient_state(self, patient: str) -> PatientState:
        """Everything the rules need about the patient (SSIN or XDS CX), as the engine's
        :class:`~rsb_connector.policy.PatientState`.

        Revoked consents and links carry their revocation day; a lifted exclusion ends the day before it was
        lifted; withdrawn access rights, released holds and ended representations are left out. The birth date
        comes from the patient registry when it records one, else from the SSIN.
        """
        with self.store.read() as r:
            return self._state(r, patient_ssin(patient))

    def _state(self, r: StoreReader, ssin: str) -> PatientState:
        consents = r.policy_records("sharing_consents", where={"patient": ssin})
        exclusions = r.policy_records("exclusions", where={"patient": ssin})
        links = r.policy_records("therapeutic_links", where={"patient": ssin})
        rights = r.policy_records("access_rights", where={"patient": ssin}, open_only=True)
        holds = r.policy_records("held_back", where={"patient": ssin}, open_only=True)
        reps = r.policy_records("legal_representatives", where={"patient": ssin}, open_only=True)
        birth = self._birth_date(r, ssin)
        return PatientState(
            patient=ssin,
            consents=tuple(self._consent(row) for row in consents),
            exclusions=tuple(self._exclusion(row) for row in exclusions),
            links=tuple(self._link(row) for row in links),
            access_rights=tuple(self._right(row) for row in rights),
            held_back=tuple(self._hold(row) for row in holds),
            birth_date=birth,
            legal_representatives=tuple(row["representative"] for row in reps),
        )

    def history(self, patient: str, *, since: datetime | None = None) -> list[HistoryEvent]:
        """Every change of the patient's registry records (who, what, when), oldest first."""
        with self.store.read() as r:
            rows = r.policy_history(patient=patient_ssin(patient), since=iso_utc(since) if since else None)
        return [self._history(row) for row in rows]

    def professionals_history(self) -> list[HistoryEvent]:
        """Every change of the professionals registry, oldest first."""
        with self.store.read() as r:
            rows = r.policy_history()
        return [self._history(row) for row in rows if row["kind"] == RecordKind.PROFESSIONAL.value]

    # ------------------------------------------------------------------------------------------ mapping
    @staticmethod
    def _birth_date(r: StoreReader, ssin: str) -> date | None:
        try:
            cx = Ssin(ssin).to_cx()
        except ValueError:
            return None
        info = r.patient_info(cx) or {}
        text = info.get("birth_date")
        if isinstance(text, str):
            try:
                return date.fromisoformat(text)
            except ValueError:
                return None
        return None

    def _recorded(self, kind: RecordKind, row: Mapping[str, Any]) -> Recorded[Any]:
        value: Any
        if kind is RecordKind.CONSENT:
            value = self._consent(row)
        elif kind is RecordKind.EXCLUSION:
            value = self._exclusion(row)
        elif kind is RecordKind.LINK:
            value = self._link(row)
        elif kind is RecordKind.ACCESS_RIGHT:
            value = self._right(row)
        elif kind is RecordKind.HOLD:
            value = self._hold(row)
        elif kind is RecordKind.REPRESENTATIVE:
            value = LegalRepresentation(row["patient"], row["representative"])
        else:
            value = self._professional(row)
        created = _moment(row["created_at"])
        assert created is not None  # NOT NULL column
        return Recorded(
            id=int(row["id"]),
            kind=kind,
            value=value,
            patient=row.get("patient"),
            created_at=created,
            created_by=row["created_by"],
            closed_at=_moment(row["closed_at"]),
            closed_by=row["closed_by"],
            closed_on=_day(row["closed_on"]),
        )

    @staticmethod
    def _consent(row: Mapping[str, Any]) -> SharingConsent:
        signed = _day(row["signed"])
        assert signed is not None  # NOT NULL column
        return SharingConsent(
            row["patient"], row["type"], signed, revoked=_day(row["closed_on"]), registered_by=row["created_by_id"]
        )

    @staticmethod
    def _exclusion(row: Mapping[str, Any]) -> Exclusion:
        start = _day(row["start_day"])
        assert start is not None  # NOT NULL column
        end = _day(row["end_day"])
        lifted = _day(row["closed_on"])
        if lifted is not None:
            last = lifted - timedelta(days=1)
            end = last if end is None else min(end, last)
        return Exclusion(row["patient"], row["professional_nihii"], start, end)

    @staticmethod
    def _link(row: Mapping[str, Any]) -> TherapeuticLink:
        start = _day(row["start_day"])
        assert start is not None  # NOT NULL column
        return TherapeuticLink(
            row["patient"],
            row["professional_nihii"],
            row["type"],
            start,
            end=_day(row["end_day"]),
            proof=row["proof"],
            revoked=_day(row["closed_on"]),
        )

    @staticmethod
    def _right(row: Mapping[str, Any]) -> AccessRight:
        return AccessRight(row["document_unique_id"], row["professional_nihii"], bool(row["allow"]))

    @staticmethod
    def _hold(row: Mapping[str, Any]) -> HeldBack:
        return HeldBack(row["document_unique_id"], _day(row["until_day"]))

    @staticmethod
    def _professional(row: Mapping[str, Any]) -> Professional:
        return Professional(row["nihii"], row["profession"], row["given"] or "", row["family"] or "")

    @staticmethod
    def _history(row: Mapping[str, Any]) -> HistoryEvent:
        at = _moment(row["at"])
        assert at is not None  # NOT NULL column
        return HistoryEvent(
            seq=int(row["seq"]),
            at=at,
            patient=row["patient"],
            kind=RecordKind(row["kind"]),
            change=row["change"],
            record_id=int(row["record_id"]),
            by=row["by_subject"],
            by_role=row["by_role"],
            by_id=row["by_nihii"] or row["by_ssin"] or row["by_organisation"],
            details=json.loads(row["details"] or "{}"),
        )

"""The hub's audit trail: every access decision, allowed or not, append-only.

Each :class:`AuditEvent` says who (the :class:`~rsb_connector.hub.registry.Caller`: subject, role, NIHII or SSIN,
organisation), when, about which patient and documents, what they tried (:class:`AuditAction`), through which
transaction (``ITI-41``, ``ITI-18``, ``ITI-43``, ``ITI-57``, or the KMEHR intrahub operation of a consent change),
the :class:`AuditDecision`, the rule that denied (a :class:`rsb_connector.policy.Rule` value, or a
:class:`~rsb_connector.hub.consent.Refusal` value for consent registry changes), the reason, and the
break-the-glass reason when the glass was broken.

Append-only for real: the store has no update or delete path for audit events, and SQLite triggers
(``audit_events_no_update`` / ``audit_events_no_delete``) abort any ``UPDATE`` or ``DELETE`` issued behind its back.

SSINs (the patient's, a patient caller's) are kept in full internally, so that a patient's trail can be found, and
masked in every rendering (``str``, ``repr``, :meth:`AuditEvent.to_dict` unless ``masked=False``).

:meth:`AuditTrail.for_patient` is the operator's view of one patient's trail; a patient reading their own trail
goes through :meth:`rsb_connector.hub.enforcement.Enforcer.patient_trail`, which checks who asks and leaves out the
identifiers of documents the patient may not see (a held-back document must not show up through the trail).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ..identifiers import mask_ssin
from .registry import Caller, patient_ssin, utcnow
from .store import Store

__all__ = [
    "AuditAction",
    "AuditDecision",
    "AuditEvent",
    "AuditRecord",
    "AuditTrail",
    "iso_utc",
]


class AuditAction(StrEnum):
    """What the caller tried to do."""

    PUBLISH = "publish"
    FIND = "find"
    READ = "read"
    UPDATE_STATUS = "update-status"
    CONSENT = "consent"
    EXCLUSION = "exclusion"
    LINK = "link"
    ACCESS_RIGHT = "access-right"
    HOLD = "hold"
    REPRESENTATIVE = "representative"
    PROFESSIONAL = "professional"
    PATIENT_FEED = "patient-feed"
    """A patient made known to the hub's patient registry (identity feed)."""
    AUDIT = "audit"
    """Reading an audit trail."""


class AuditDecision(StrEnum):
    """The outcome of the access decision."""

    ALLOWED = "allowed"
    DENIED = "denied"

    @classmethod
    def of(cls, value: AuditDecision | bool | str) -> AuditDecision:
        """``True``/``False`` or the value's text as a decision."""
        if isinstance(value, bool):
            return cls.ALLOWED if value else cls.DENIED
        return cls(value)


def iso_utc(moment: datetime) -> str:
    """``moment`` as the ISO 8601 UTC text the store keeps (microseconds, ``+00:00``: sorts as it reads).

    A naive datetime is taken as UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _masked_digits(value: str | None) -> str | None:
    return mask_ssin(value) if value else value


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One event about to be written (:meth:`AuditTrail.record_all` writes several in one transaction).

    Attributes:
        who: the caller.
        action: what they tried.
        decision: allowed or denied.
        patient: the patient concerned (SSIN or XDS CX; stored as the SSIN's digits), None when unknown.
        documents: uniqueIds of the documents concerned.
        rule: the rule that denied (None when allowed, or when nothing more specific applies).
        reason: why, for a person.
        break_the_glass: the professional's emergency reason, when the glass was broken.
        transaction: ``ITI-41``, ``ITI-18``, ``ITI-43``, ``ITI-57``, a KMEHR intrahub operation...
        at: when (None: the trail's clock).
    """

    who: Caller
    action: AuditAction | str
    decision: AuditDecision | bool | str
    patient: str | None = None
    documents: Sequence[str] = ()
    rule: str | None = None
    reason: str = ""
    break_the_glass: str | None = None
    transaction: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True, repr=False)
class AuditEvent:
    """One written audit event (see the module docstring for the fields' meaning).

    ``patient``, ``who_ssin`` and ``represents`` hold full SSINs: render the event with ``str()``, ``repr()`` or
    :meth:`to_dict`, which mask them.
    """

    seq: int
    at: datetime
    who: str
    role: str | None
    who_nihii: str | None
    who_ssin: str | None
    organisation: str | None
    represents: str | None
    authenticated: bool
    patient: str | None
    documents: tuple[str, ...]
    action: str
    decision: AuditDecision
    rule: str | None
    reason: str
    break_the_glass: str | None
    transaction: str | None = field(default=None)

    @property
    def allowed(self) -> bool:
        """True when the access was allowed."""
        return self.decision is AuditDecision.ALLOWED

    @property
    def masked_patient(self) -> str | None:
        """The patient's SSIN masked (``87*******97``)."""
        return _masked_digits(self.patient)

    def to_dict(self, *, masked: bool = True) -> dict[str, Any]:
        """A JSON-able dict (``rsb hub audit --json``); SSINs masked unless ``masked=False`` (operator export)."""
        data: dict[str, Any] = {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "who": self.who,
            "role": self.role,
            "who_nihii": self.who_nihii,
            "who_ssin": self.who_ssin,
            "organisation": self.organisation,
            "represents": self.represents,
            "authenticated": self.authenticated,
            "patient": self.patient,
            "documents": list(self.documents),
            "action": self.action,
            "decision": self.decision.value,
            "rule": self.rule,
            "reason": self.reason,
            "break_the_glass": self.break_the_glass,
            "transaction": self.transaction,
        }
        if masked:
            for key in ("who", "who_ssin", "represents", "patient", "reason", "break_the_glass"):
                data[key] = _masked_digits(data[key])
        return data

    def __str__(self) -> str:
        who = mask_ssin(self.who)
        if self.role:
            who += f" ({self.role})"
        parts = [self.at.isoformat(timespec="seconds"), self.decision.value, self.action, "by", who]
        if self.patient:
            parts += ["patient", self.masked_patient or ""]
        if self.documents:
            parts.append("[" + ", ".join(self.documents) + "]")
        if self.transaction:
            parts.append(f"via {self.transaction}")
        line = " ".join(parts)
        if self.rule:
            line += f" rule={self.rule}"
        if self.break_the_glass:
            line += f" BREAK-THE-GLASS: {mask_ssin(self.break_the_glass)}"
        if self.reason:
            line += f": {mask_ssin(self.reason)}"
        return line

    def __repr__(self) -> str:
        shown = self.to_dict(masked=True)
        inner = ", ".join(f"{f.name}={shown.get(f.name, getattr(self, f.name))!r}" for f in fields(self))
        return f"AuditEvent({inner})"


def _event(row: Mapping[str, Any]) -> AuditEvent:
    return AuditEvent(
        seq=int(row["seq"]),
        at=datetime.fromisoformat(row["at"]),
        who=row["who"],
        role=row["role"],
        who_nihii=row["who_nihii"],
        who_ssin=row["who_ssin"],
        organisation=row["organisation"],
        represents=row["represents"],
        authenticated=bool(row["authenticated"]),
        patient=row["patient"],
        documents=tuple(json.loads(row["documents"] or "[]")),
        action=row["action"],
        decision=AuditDecision(row["decision"]),
        rule=row["rule"],
        reason=row["reason"] or "",
        break_the_glass=row["break_the_glass"],
        transaction=row["xds_transaction"],
    )


def _optional_ssin(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return patient_ssin(value) or None
    except ValueError:  # a malformed CX: keep what was given (masked on rendering anyway)
        return value


class AuditTrail:
    """The append-only audit trail in the hub's store.

    Args:
        store: the hub's store (its ``audit_events`` table).
        clock: the time source (tests pass a fixed one).
    """

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    def record(
        self,
        who: Caller,
        *,
        action: AuditAction | str,
        decision: AuditDecision | bool | str,
        patient: str | None = None,
        documents: Iterable[str] = (),
        rule: str | None = None,
        reason: str = "",
        break_the_glass: str | None = None,
        transaction: str | None = None,
        at: datetime | None = None,
    ) -> AuditEvent:
        """Append one event (see :class:`AuditRecord` for the arguments) and return it as written."""
        record = AuditRecord(
            who=who,
            action=action,
            decision=decision,
            patient=patient,
            documents=tuple(documents),
            rule=rule,
            reason=reason,
            break_the_glass=break_the_glass,
            transaction=transaction,
            at=at,
        )
        return self.record_all([record])[0]

    def record_all(self, records: Sequence[AuditRecord]) -> list[AuditEvent]:
        """Append several events in one transaction (all or none) and return them as written.

        Must not be called inside a write transaction of the same thread (the store's writes do not nest): the
        registry records its events once its own transaction is over.
        """
        if not records:
            return []
        rows: list[dict[str, Any]] = []
        for record in records:
            who = record.who
            rows.append(
                {
                    "at": iso_utc(record.at or self.clock()),
                    "who": who.subject,
                    "role": who.role,
                    "who_nihii": who.nihii,
                    "who_ssin": _optional_ssin(who.ssin),
                    "organisation": who.organisation,
                    "represents": _optional_ssin(who.represents),
                    "authenticated": int(who.authenticated),
                    "patient": _optional_ssin(record.patient),
                    "documents": json.dumps(list(record.documents)),
                    "action": str(record.action),
                    "decision": AuditDecision.of(record.decision).value,
                    "rule": str(record.rule) if record.rule is not None else None,
                    "reason": record.reason,
                    "break_the_glass": record.break_the_glass,
                    "xds_transaction": record.transaction,
                }
            )
        with self.store.write() as w:
            seqs = [w.add_audit_event(row) for row in rows]
        return [_event({**row, "seq": seq}) for row, seq in zip(rows, seqs, strict=True)]

    def for_patient(self, patient: str, *, since: datetime | None = None) -> list[AuditEvent]:
        """Every event about ``patient`` (SSIN or XDS CX), oldest first; ``since``: at or after that moment.

        This is the operator's view; a patient reading their own trail goes through
        :meth:`rsb_connector.hub.enforcement.Enforcer.patient_trail`.
        """
        with self.store.read() as r:
            rows = r.audit_events(patient=patient_ssin(patient), since=iso_utc(since) if since else None)
        return [_event(row) for row in rows]

    def query(
        self,
        *,
        patient: str | None = None,
        who: str | None = None,
        action: AuditAction | str | None = None,
        decision: AuditDecision | bool | str | None = None,
        transaction: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Events matching every filter given, oldest first (what ``rsb hub audit`` lists).

        Args:
            patient: SSIN or XDS CX.
            who: the caller's subject, NIHII or SSIN.
            action: e.g. ``read``.
            decision: allowed / denied (or True / False).
            transaction: e.g. ``ITI-43``.
            since: at or after this moment.
            until: before this moment.
            limit: only the most recent ``limit`` events (still oldest first).
        """
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        with self.store.read() as r:
            rows = r.audit_events(
                patient=patient_ssin(patient) if patient else None,
                who=who,
                action=str(action) if action is not None else None,
                decision=AuditDecision.of(decision).value if decision is not None else None,
                transaction=transaction,
                since=iso_utc(since) if since else None,
                until=iso_utc(until) if until else None,
                limit=limit,
            )
        return [_event(row) for row in rows]

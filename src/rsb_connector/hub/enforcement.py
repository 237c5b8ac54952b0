"""Consent and access-control enforcement for the XDS registry: every operation decided, every decision audited.

The :class:`Enforcer` sits between :class:`~rsb_connector.hub.registry.Registry` and the pure decision engine
(:mod:`rsb_connector.policy`). It turns the verified :class:`~rsb_connector.hub.registry.Caller` into a policy
:class:`~rsb_connector.policy.Actor` (the profession from the caller's role, else from the professionals registry),
loads each patient's :class:`~rsb_connector.policy.PatientState` from the
:class:`~rsb_connector.hub.consent.ConsentRegistry`, asks :func:`~rsb_connector.policy.decide`, and writes the
outcome to the :class:`~rsb_connector.hub.audit.AuditTrail`.

What each transaction does with the decisions (``Registry(store, enforcer=...)``; without an enforcer nothing of
this applies):

- **ITI-41 publish**: consent, exclusion, author and therapeutic link (the engine's publish rules) for every
  DocumentEntry; one denial refuses the whole submission with ``LocalPolicyRestrictionError``, path
  ``Policy[<RULE>]`` (e.g. ``Policy[THERAPEUTIC_LINK]``), a message naming the rule, the reason and the fix; nothing
  is stored. Registered documents the publisher may not read are treated as absent when the submission refers to
  them (relationship targets, HasMember references). A replacement (RPLC, XFRM_RPLC) deprecates its target, so
  only an author of the target may replace it (``Policy[AUTHOR]``). One audit event per submission.
- **ITI-18 find**: the stored query runs over a :class:`VisibleReader`, a view of the store in which what the
  caller may not see does not exist: entries, submission sets all of whose documents are hidden, associations
  touching a hidden object. Results are therefore those of a store without the hidden documents — no count, no
  hint — and ``XDSTooManyResults`` / ``XDSResultNotSinglePatient`` count visible objects only. An unauthenticated
  caller sees nothing. One audit event per patient concerned, listing the documents returned.
- **ITI-43 retrieve**: a document the caller may not read is answered exactly like an unknown one
  (``XDSDocumentUniqueIdError``, same message), so its existence does not leak. One audit event per document.
- **ITI-57 status update**: only an author of the document (a professional named in its authorPerson) may change
  its availability status — not the patient, not another professional (``Policy[AUTHOR]``). Consent and link are
  not required: withdrawing a document shares nothing. A caller who may not even read the document gets the
  registry's "no such entry" answer. One audit event per document.
- A break-the-glass reason of the wrong length from a professional refuses the request up front
  (``Policy[BREAK_THE_GLASS_REASON]``), audited under the patient concerned when the hub knows one (the patient
  searched for, the patient of the documents asked for, whether or not the caller may see them: the answer is the
  same refusal either way); an access allowed only because the glass was broken is audited with the reason.

One request, one audit: a request that runs several registry steps (an MHD search looks up the relationships of the
documents it found, an ITI-66 the members of the submission sets) shares one :class:`AccessView`, labelled with the
request's transaction (``ITI-67``, ``ITI-66``, ``ITI-68``...), and is recorded once, when it is over
(:meth:`rsb_connector.hub.registry.Registry.find_request`): the follow-up steps decide (they answer through the same
view, so nothing is shown that the caller may not see) but add no events of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from ..errors import InvalidIdentifier, Problem, QueryError
from ..metadata.model import Association, AssociationType, DocumentEntry, Submission, SubmissionSet
from ..policy import (
    AccessMatrix,
    Action,
    Actor,
    ActorKind,
    Decision,
    DocumentFacts,
    PatientState,
    Rule,
    break_the_glass_problem,
    decide,
)
from ..query import FindDocuments, FindSubmissionSets
from .audit import AuditAction, AuditEvent, AuditRecord, AuditTrail
from .consent import ConsentRegistry, PolicyError, brussels_day, document_facts
from .registry import Caller, patient_ssin, utcnow
from .store import StoredEntry, StoreReader

__all__ = [
    "LOCAL_POLICY_RESTRICTION",
    "AccessView",
    "Enforcer",
    "PublishCheck",
    "StatusCheck",
    "VisibleReader",
    "policy_problem",
]

LOCAL_POLICY_RESTRICTION: Final = "LocalPolicyRestrictionError"
"""The XDS error code of a request refused by the hub's access policy."""

_ITI41: Final = "ITI-41"
_ITI18: Final = "ITI-18"
_ITI43: Final = "ITI-43"
_ITI57: Final = "ITI-57"
_TRAIL: Final = "GetPatientAuditTrail"


def policy_problem(decision: Decision, *, subject: str | None = None) -> Problem:
    """The XDS problem for a denial: ``LocalPolicyRestrictionError`` at ``Policy[<RULE>]``, with a message naming
    the rule, saying why and what would fix it (``subject`` prefixes it, e.g. the DocumentEntry concerned)."""
    rule = decision.rule
    path = f"Policy[{rule.name}]" if rule is not None else "Policy"
    message = f"refused by the {rule.value if rule else 'access'} rule: {decision.reason}"
    if decision.fix:
        message += f". Fix: {decision.fix}"
    if subject:
        message = f"{subject}: {message}"
    return Problem(LOCAL_POLICY_RESTRICTION, message, path=path)


def _key(patient_id: str | None) -> str:
    """The patient key of an XDS patient id (SSIN digits); a malformed id is kept as given (it matches nothing)."""
    if not patient_id:
        return ""
    try:
        return patient_ssin(patient_id)
    except InvalidIdentifier:
        return patient_id


class AccessView:
    """One request's access decisions for one caller and action.

    Patient states and decisions are computed once per request and kept, so the audit can say what was decided.

    Attributes:
        caller: who asks.
        actor: the caller as the engine's actor.
        action: find, read or publish.
        transaction: the transaction the request is audited as (``ITI-18``, ``ITI-67``, ``ITI-66``...).
        today: the day decided for.
        patients: patient-level decisions, by patient key (SSIN).
        documents: per-document decisions, by entryUUID: the document's facts and the decision.
        returned: for a request made of several queries, the DocumentEntries its queries returned so far (what the
            request's one audit event lists; :meth:`answered` narrows it to what the answer finally holds).
        notes: why the request's answer holds less than its queries found (e.g. ``answered XDSTooManyResults``).
    """

    def __init__(self, enforcer: Enforcer, caller: Caller, action: Action, *, transaction: str = _ITI18) -> None:
        self._enforcer = enforcer
        self.caller = caller
        self.actor = enforcer.actor(caller)
        self.action = action
        self.transaction = transaction
        self.today = enforcer.today()
        self._states: dict[str, PatientState] = {}
        self.patients: dict[str, Decision] = {}
        self.documents: dict[str, tuple[DocumentFacts, Decision]] = {}
        self.returned: list[DocumentEntry] = []
        self.notes: list[str] = []

    def answered(self, entries: Iterable[DocumentEntry]) -> None:
        """The documents the request's answer finally holds (e.g. after a filter the registry's query knows
        nothing of): the audit lists these, not everything the queries returned."""
        self.returned = list(entries)

    def state(self, key: str) -> PatientState:
        """The patient's state (loaded once per request)."""
        if key not in self._states:
            known = key.isdigit()  # a malformed patient id has no registry records: an empty state
            self._states[key] = self._enforcer.consents.patient_state(key) if known else PatientState(patient=key)
        return self._states[key]

    def decide_facts(self, state: PatientState, document: DocumentFacts | None, action: Action) -> Decision:
        """The engine's decision for this caller about ``document`` (None: the patient as a whole)."""
        return decide(
            self.actor,
            action,
            state,
            document=document,
            today=self.today,
            break_the_glass=self.caller.break_the_glass,
            matrix=self._enforcer.matrix,
        )

    def patient_decision(self, patient_id: str | None) -> Decision:
        """May the caller search this patient's documents at all (the patient-level barriers)?"""
        key = _key(patient_id)
        if key not in self.patients:
            action = Action.PUBLISH if self.action is Action.PUBLISH else Action.FIND
            self.patients[key] = self.decide_facts(self.state(key), None, action)
        return self.patients[key]

    def facts(self, entry: DocumentEntry) -> DocumentFacts:
        """The rules' facts about ``entry``, filed under the patient key."""
        facts = document_facts(entry)
        key = _key(entry.patient_id)
        return facts if facts.patient == key else dataclasses.replace(facts, patient=key)

    def decide(self, entry: DocumentEntry) -> Decision:
        """The decision about one registered entry (for :attr:`action`), computed once."""
        known = self.documents.get(entry.entry_uuid)
        if known is not None:
            return known[1]
        facts = self.facts(entry)
        action = Action.READ if self.action is Action.READ else Action.FIND
        decision = self.decide_facts(self.state(facts.patient), facts, action)
        self.documents[entry.entry_uuid] = (facts, decision)
        return decision

    def sees(self, entry: DocumentEntry) -> bool:
        """Whether the caller may see ``entry``."""
        return self.decide(entry).allowed


class VisibleReader:
    """A :class:`~rsb_connector.hub.store.QueryReader` over the store in which what the caller may not see does not
    exist.

    - a DocumentEntry is visible when the engine lets the caller find (or read) it;
    - a SubmissionSet when at least one of its documents is visible (one with no document at all: when the caller
      may search the patient's documents), so that a set does not reveal the hidden documents it carries;
    - an Association when every registered entry or set it joins is visible (and it joins at least one).

    ``limit`` applies to what is visible: the store is read without it and the visible rows are cut afterwards.
    """

    def __init__(self, inner: StoreReader, view: AccessView) -> None:
        self._inner = inner
        self._view = view
        self._sets: dict[str, bool] = {}

    def entries(self, *, entry_uuids: Iterable[str] = (), unique_ids: Iterable[str] = ()) -> list[StoredEntry]:
        """Visible entries by entryUUID and/or uniqueId."""
        found = self._inner.entries(entry_uuids=entry_uuids, unique_ids=unique_ids)
        return [s for s in found if self._view.sees(s.entry)]

    def find_documents(self, query: FindDocuments, *, limit: int | None = None) -> list[StoredEntry]:
        """FindDocuments over the visible entries."""
        self._view.patient_decision(query.patient_id)
        found = [s for s in self._inner.find_documents(query) if self._view.sees(s.entry)]
        return found[:limit] if limit is not None else found

    def submission_sets(
        self, *, entry_uuids: Iterable[str] = (), unique_ids: Iterable[str] = ()
    ) -> list[SubmissionSet]:
        """Visible submission sets by entryUUID and/or uniqueId."""
        found = self._inner.submission_sets(entry_uuids=entry_uuids, unique_ids=unique_ids)
        return [ss for ss in found if self._set_visible(ss)]

    def find_submission_sets(self, query: FindSubmissionSets, *, limit: int | None = None) -> list[SubmissionSet]:
        """FindSubmissionSets over the visible submission sets."""
        self._view.patient_decision(query.patient_id)
        found = [ss for ss in self._inner.find_submission_sets(query) if self._set_visible(ss)]
        return found[:limit] if limit is not None else found

    def associations(
        self,
        *,
        entry_uuids: Iterable[str] = (),
        sources: Iterable[str] = (),
        targets: Iterable[str] = (),
        types: Iterable[AssociationType] | None = None,
    ) -> list[Association]:
        """Visible associations (see the class docstring)."""
        found = self._inner.associations(entry_uuids=entry_uuids, sources=sources, targets=targets, types=types)
        if not found:
            return []
        ends = list(dict.fromkeys(x for a in found for x in (a.source, a.target)))
        kinds = self._inner.object_kinds(ends)
        entry_ids = [x for x in ends if kinds.get(x) == "DocumentEntry"]
        set_ids = [x for x in ends if kinds.get(x) == "SubmissionSet"]
        entries = {s.entry.entry_uuid: s.entry for s in self._inner.entries(entry_uuids=entry_ids)}
        sets = {ss.entry_uuid: ss for ss in self._inner.submission_sets(entry_uuids=set_ids)}

        def visible(end: str) -> bool | None:
            if end in entries:
                return self._view.sees(entries[end])
            if end in sets:
                return self._set_visible(sets[end])
            return None  # not a registered entry or set: reveals nothing by itself

        kept = []
        for assoc in found:
            verdicts = [v for v in (visible(assoc.source), visible(assoc.target)) if v is not None]
            if verdicts and all(verdicts):
                kept.append(assoc)
        return kept

    def _set_visible(self, ss: SubmissionSet) -> bool:
        known = self._sets.get(ss.entry_uuid)
        if known is not None:
            return known
        members = [
            a.target
            for a in self._inner.associations(sources=[ss.entry_uuid], types=[AssociationType.HAS_MEMBER])
            if a.source == ss.entry_uuid
        ]
        documents = self._inner.entries(entry_uuids=members)
        if documents:
            seen = any(self._view.sees(s.entry) for s in documents)
        else:
            seen = self._view.patient_decision(ss.patient_id).allowed
        self._sets[ss.entry_uuid] = seen
        return seen


@dataclass(slots=True)
class PublishCheck:
    """The policy's answer to one ITI-41, kept until the registry knows whether the submission was stored.

    Attributes:
        caller: who publishes.
        patient: the patient key (SSIN).
        documents: uniqueIds of the submitted documents.
        decision: the denial (the first) or the allowing decision.
        problems: ``LocalPolicyRestrictionError`` problems, empty when allowed.
    """

    caller: Caller
    patient: str
    documents: tuple[str, ...]
    decision: Decision
    problems: list[Problem] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        """True when the policy lets the submission through."""
        return self.decision.allowed


@dataclass(slots=True)
class StatusCheck:
    """The policy's answer to one ITI-57.

    Attributes:
        hidden: entryUUIDs the caller may not even read: answered as unknown entries.
        problems: by entryUUID, the ``Policy[AUTHOR]`` refusal for entries the caller reads but did not author.
        records: the audit events to write once the registry's transaction is over.
    """

    hidden: set[str] = field(default_factory=set)
    problems: dict[str, Problem] = field(default_factory=dict)
    records: list[AuditRecord] = field(default_factory=list)


class Enforcer:
    """Decides every registry operation with the policy engine and audits it (see the module docstring).

    Args:
        consents: where patient states and the professionals registry come from.
        audit: where every decision is written.
        matrix: the access matrix; None: the one shipped with rsb-connector.
        clock: the time source; decisions are for its day in Brussels.
    """

    def __init__(
        self,
        consents: ConsentRegistry,
        audit: AuditTrail,
        *,
        matrix: AccessMatrix | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.consents = consents
        self.audit = audit
        self.matrix = matrix if matrix is not None else AccessMatrix.load()
        self.clock = clock

    def today(self) -> date:
        """The day decisions are made for (the clock's day in Brussels)."""
        return brussels_day(self.clock())

    def actor(self, caller: Caller) -> Actor:
        """The caller as the engine's actor; a professional whose role names no profession gets the one the
        professionals registry records for their NIHII."""
        role = (caller.role or "").strip().casefold()
        profession = None if role.startswith("pers") else self.consents.profession_of(caller.nihii)
        return caller.actor(profession=profession)

    def view(self, caller: Caller, action: Action, *, transaction: str = _ITI18) -> AccessView:
        """A fresh per-request view of what ``caller`` may do (audited as ``transaction``)."""
        return AccessView(self, caller, action, transaction=transaction)

    def visible(self, reader: StoreReader, view: AccessView) -> VisibleReader:
        """``reader`` as ``view``'s caller sees it."""
        return VisibleReader(reader, view)

    # ------------------------------------------------------------------------------------------ requests
    def glass_problem(
        self,
        caller: Caller,
        *,
        action: AuditAction,
        transaction: str,
        patient: str | None = None,
        patients: Iterable[str | None] = (),
    ) -> Problem | None:
        """The refusal of a professional's break-the-glass reason of the wrong length, None when there is no reason
        or it is acceptable. Patients and organisations cannot break the glass: their reason is ignored.

        The refusal is audited once per patient concerned (``patient`` and ``patients``: XDS patient ids or SSINs,
        e.g. the patient searched for, or the patients of the documents asked for), so that each patient's trail
        shows the attempt; once without a patient when none is known. Which patients are concerned is the hub's
        business: the caller gets the same refusal whatever they are, so it never learns whether a document
        exists."""
        reason = caller.break_the_glass
        if reason is None or self.actor(caller).kind is not ActorKind.PROFESSIONAL:
            return None
        problem = break_the_glass_problem(reason)
        if problem is None:
            return None
        decision = Decision.deny(
            Rule.BREAK_THE_GLASS_REASON,
            problem,
            "give a reason of 10 to 200 characters, or none when you do not need to break the glass",
        )
        keys: list[str | None] = list(dict.fromkeys(k for k in (_key(p) for p in (patient, *patients)) if k))
        self.audit.record_all(
            [
                AuditRecord(
                    who=caller,
                    action=action,
                    decision=False,
                    patient=key,
                    rule=Rule.BREAK_THE_GLASS_REASON.value,
                    reason=decision.reason,
                    break_the_glass=reason,
                    transaction=transaction,
                )
                for key in keys or [None]
            ]
        )
        return policy_problem(decision)

    def begin_find(
        self, caller: Caller, *, transaction: str = _ITI18, patients: Iterable[str | None] = ()
    ) -> AccessView:
        """Start a find request (an ITI-18 by default): the view to run its queries through.

        Args:
            transaction: what the request is audited as.
            patients: the patients the request is about, when known before searching (a refused break-the-glass
                reason is audited under them).

        Raises:
            QueryError: ``LocalPolicyRestrictionError`` for a professional's break-the-glass reason of the wrong
                length (audited).
        """
        problem = self.glass_problem(caller, action=AuditAction.FIND, transaction=transaction, patients=patients)
        if problem is not None:
            raise QueryError([problem])
        return self.view(caller, Action.FIND, transaction=transaction)

    def begin_retrieve(
        self, caller: Caller, *, transaction: str = _ITI43, patients: Iterable[str | None] = ()
    ) -> Problem | None:
        """Start a retrieve (an ITI-43 by default): the refusal of a professional's break-the-glass reason of the
        wrong length (audited under ``patients``, the patients of the documents asked for that exist), None when the
        request may go on."""
        return self.glass_problem(caller, action=AuditAction.READ, transaction=transaction, patients=patients)

    # ------------------------------------------------------------------------------------------ ITI-41
    def check_publish(self, caller: Caller, submission: Submission) -> PublishCheck:
        """Whether ``caller`` may publish ``submission`` (nothing audited yet: see :meth:`record_publish`)."""
        view = self.view(caller, Action.PUBLISH)
        key = _key(submission.submission_set.patient_id)
        state = view.state(key)
        decisions: list[tuple[DocumentEntry | None, Decision]] = []
        if not submission.entries:
            decisions.append((None, view.patient_decision(submission.submission_set.patient_id)))
        for entry in submission.entries:
            facts = dataclasses.replace(view.facts(entry), patient=key)
            decisions.append((entry, view.decide_facts(state, facts, Action.PUBLISH)))
        documents = tuple(e.unique_id or e.entry_uuid for e in submission.entries)
        denied = [(e, d) for e, d in decisions if not d.allowed]
        if not denied:
            glass = [d for _, d in decisions if d.break_the_glass]
            return PublishCheck(caller, key, documents, glass[0] if glass else decisions[0][1])
        problems: list[Problem] = []
        seen: set[Rule | None] = set()
        for denied_entry, decision in denied:
            if decision.rule in seen:
                continue
            seen.add(decision.rule)
            subject = None
            if denied_entry is not None and decision.rule is Rule.AUTHOR:
                subject = f"DocumentEntry[{denied_entry.entry_uuid}]"
            problems.append(policy_problem(decision, subject=subject))
        return PublishCheck(caller, key, documents, denied[0][1], problems)

    def hidden_from(self, caller: Caller) -> Callable[[StoredEntry], bool]:
        """A predicate: is this registered entry one ``caller`` may not read (so a submission referring to it is
        answered as if it did not exist)?"""
        view = self.view(caller, Action.READ)
        return lambda stored: not view.sees(stored.entry)

    def check_replacements(self, caller: Caller, targets: Sequence[DocumentEntry]) -> list[Problem]:
        """``Policy[AUTHOR]`` problems for replaced documents (RPLC, XFRM_RPLC deprecate them) that ``caller`` did
        not author."""
        view = self.view(caller, Action.READ)
        actor = view.actor
        problems: list[Problem] = []
        for entry in targets:
            facts = view.facts(entry)
            if actor.kind is ActorKind.PROFESSIONAL and facts.is_author(actor.nihii):
                continue
            decision = Decision.deny(
                Rule.AUTHOR,
                f"a replacement deprecates document {entry.unique_id!r}, and only one of its authors may change its "
                "status",
                "ask one of its authors to replace it, or publish your document without the RPLC association",
            )
            problems.append(policy_problem(decision, subject=f"Association[target {entry.entry_uuid}]"))
        return problems

    def record_publish(
        self, check: PublishCheck, *, stored: bool, problems: Sequence[Problem] = (), transaction: str = _ITI41
    ) -> AuditEvent:
        """Audit an ITI-41 (or, as ``transaction`` says, an ITI-65) once the registry is done: the policy decision,
        and whether the submission was stored."""
        decision = check.decision
        reason = decision.reason
        if decision.allowed and not stored:
            codes = ", ".join(sorted({p.code for p in problems if p.is_error})) or "an error"
            reason += f"; the registry refused the submission ({codes}): nothing was stored"
        return self.audit.record(
            check.caller,
            action=AuditAction.PUBLISH,
            decision=decision.allowed,
            patient=check.patient,
            documents=check.documents,
            rule=decision.rule.value if decision.rule else None,
            reason=reason,
            break_the_glass=check.caller.break_the_glass if decision.break_the_glass else None,
            transaction=transaction,
        )

    # ------------------------------------------------------------------------------------------ ITI-18
    def record_find(
        self, view: AccessView, returned: Sequence[DocumentEntry], *, note: str | None = None
    ) -> list[AuditEvent]:
        """Audit a find request (one stored query, or the queries of one MHD request) as ``view.transaction``: one
        event per patient concerned, with the documents returned for them (never the ones left out, nor how many).
        ``note`` says why nothing was returned (e.g. ``XDSTooManyResults``)."""
        by_patient: dict[str, list[str]] = {}
        glass: dict[str, bool] = {}
        for entry in {e.entry_uuid: e for e in returned}.values():
            facts, decision = view.documents.get(entry.entry_uuid) or (view.facts(entry), view.decide(entry))
            by_patient.setdefault(facts.patient, []).append(facts.unique_id)
            glass[facts.patient] = glass.get(facts.patient, False) or decision.break_the_glass
        keys = list(dict.fromkeys([*view.patients, *(f.patient for f, _ in view.documents.values()), *by_patient]))
        records: list[AuditRecord] = []
        for key in keys:
            documents = by_patient.get(key, [])
            patient_level = view.patient_decision(key)
            if documents:
                allowed = True
                reason = patient_level.reason if patient_level.allowed else "the caller's own documents"
                rule = None
            else:
                allowed = patient_level.allowed
                reason = patient_level.reason
                rule = patient_level.rule.value if patient_level.rule else None
            if note:
                reason = f"{reason}; {note}"
            broke = glass.get(key, False) or (patient_level.allowed and patient_level.break_the_glass)
            records.append(
                AuditRecord(
                    who=view.caller,
                    action=AuditAction.FIND,
                    decision=allowed,
                    patient=key or None,
                    documents=documents,
                    rule=rule,
                    reason=reason,
                    break_the_glass=view.caller.break_the_glass if broke else None,
                    transaction=view.transaction,
                )
            )
        if not records:
            records.append(
                AuditRecord(
                    who=view.caller,
                    action=AuditAction.FIND,
                    decision=True,
                    reason=note or "no document matched",
                    transaction=view.transaction,
                )
            )
        return self.audit.record_all(records)

    # ------------------------------------------------------------------------------------------ ITI-43
    def authorize_reads(
        self,
        caller: Caller,
        found: Mapping[str | None, StoredEntry],
        requested: Sequence[str],
        *,
        transaction: str = _ITI43,
        notes: Mapping[str, str] | None = None,
    ) -> set[str]:
        """The uniqueIds among ``found`` that ``caller`` may read; every requested document is audited as
        ``transaction`` (an unknown one as denied without a patient). ``notes``: by uniqueId, what the answer does
        with a document the caller may read, when it is not served (added to the event's reason)."""
        view = self.view(caller, Action.READ, transaction=transaction)
        allowed: set[str] = set()
        records: list[AuditRecord] = []
        for uid in dict.fromkeys(requested):
            stored = found.get(uid)
            if stored is None:
                records.append(
                    AuditRecord(
                        who=caller,
                        action=AuditAction.READ,
                        decision=False,
                        documents=(uid,),
                        reason="no such document in this repository",
                        transaction=transaction,
                    )
                )
                continue
            decision = view.decide(stored.entry)
            facts = view.documents[stored.entry.entry_uuid][0]
            reason = decision.reason
            if decision.allowed:
                allowed.add(uid)
                if notes and uid in notes:
                    reason = f"{reason}; {notes[uid]}"
            records.append(
                AuditRecord(
                    who=caller,
                    action=AuditAction.READ,
                    decision=decision.allowed,
                    patient=facts.patient or None,
                    documents=(uid,),
                    rule=decision.rule.value if decision.rule else None,
                    reason=reason,
                    break_the_glass=caller.break_the_glass if decision.break_the_glass else None,
                    transaction=transaction,
                )
            )
        self.audit.record_all(records)
        return allowed

    # ------------------------------------------------------------------------------------------ ITI-57
    def check_status_update(self, caller: Caller, entries: Iterable[DocumentEntry]) -> StatusCheck:
        """Who may change each entry's availability status: its authors only (see the module docstring)."""
        view = self.view(caller, Action.READ)
        actor = view.actor
        check = StatusCheck()
        for entry in entries:
            facts = view.facts(entry)
            if actor.authenticated and actor.kind is ActorKind.PROFESSIONAL and facts.is_author(actor.nihii):
                decision = Decision.allow(f"NIHII {actor.nihii} is an author of the document")
            else:
                decision = view.decide(entry)
                if not decision.allowed:
                    check.hidden.add(entry.entry_uuid)
                else:
                    decision = Decision.deny(
                        Rule.AUTHOR,
                        "only an author of the document may change its availability status",
                        "ask one of its authors to deprecate it",
                    )
                    check.problems[entry.entry_uuid] = policy_problem(
                        decision, subject=f"DocumentEntry {entry.entry_uuid}"
                    )
            check.records.append(
                AuditRecord(
                    who=caller,
                    action=AuditAction.UPDATE_STATUS,
                    decision=decision.allowed,
                    patient=facts.patient or None,
                    documents=(facts.unique_id,),
                    rule=decision.rule.value if decision.rule else None,
                    reason=decision.reason,
                    transaction=_ITI57,
                )
            )
        return check

    def record(self, records: Sequence[AuditRecord]) -> list[AuditEvent]:
        """Write audit events prepared during a registry transaction."""
        return self.audit.record_all(records)

    # ------------------------------------------------------------------------------------------ the patient's trail
    def patient_trail(self, caller: Caller, patient: str, *, since: datetime | None = None) -> list[AuditEvent]:
        """The audit trail of ``patient``, for the patient themself or a minor's registered legal representative.

        Document uniqueIds the patient may not see (held back, very restricted) are left out of the events, so
        the trail does not reveal them. The reading is audited too.

        Raises:
            PolicyError: ``caller`` is not the patient (or their representative).
        """
        view = self.view(caller, Action.FIND)
        key = _key(patient)
        decision = view.patient_decision(patient)
        if view.actor.kind not in (ActorKind.PATIENT, ActorKind.REPRESENTATIVE) or not decision.allowed:
            reason = (
                decision.reason
                if not decision.allowed
                else "only the patient (or a minor's legal representative) reads the patient's audit trail"
            )
            self.audit.record(
                caller,
                action=AuditAction.AUDIT,
                decision=False,
                patient=key,
                rule=decision.rule.value if decision.rule else Rule.PATIENT_SELF.value,
                reason=reason,
                transaction=_TRAIL,
            )
            raise PolicyError(reason, fix="sign in as the patient concerned (or their legal representative)")
        events = self.audit.for_patient(key, since=since)
        mentioned = {uid for event in events for uid in event.documents}
        with self.consents.store.read() as r:
            stored = r.entries(unique_ids=mentioned)
        hidden = {s.entry.unique_id for s in stored if not view.sees(s.entry)}
        if hidden:
            events = [
                dataclasses.replace(event, documents=tuple(u for u in event.documents if u not in hidden))
                for event in events
            ]
        self.audit.record(
            caller,
            action=AuditAction.AUDIT,
            decision=True,
            patient=key,
            reason=f"the patient's audit trail ({len(events)} events)",
            transaction=_TRAIL,
        )
        return events

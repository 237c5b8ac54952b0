"""What a run produced: per case, per step, the outcome and the evidence (request/response excerpts, masked).

The same model carries the connector-validation report (each received message is a "case", each rule family a
"step"), so that :mod:`~rsb_connector.conformance.report` renders both the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from ..errors import RsbError
from ..security.redact import redact

__all__ = [
    "EXCERPT_LIMIT",
    "CaseResult",
    "Evidence",
    "Outcome",
    "ResultFormatError",
    "StepResult",
    "SuiteResult",
    "excerpt",
]

EXCERPT_LIMIT: Final = 6000
"""Characters kept of each request or response body in a report."""


class ResultFormatError(RsbError):
    """A JSON document that is not a report written by :meth:`SuiteResult.to_json` (a missing or mistyped field)."""


def _field(data: Any, key: str, kind: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
    """``data[key]``, checked to be of ``kind`` (``default`` when absent and one is given)."""
    if not isinstance(data, dict):
        raise ResultFormatError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if key not in data or data[key] is None:
        if default is not ...:
            return default
        raise ResultFormatError(f"{where}: {key!r} is missing")
    value = data[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ResultFormatError(f"{where}: {key!r} has the wrong type (bool)")
    if not isinstance(value, kind):
        raise ResultFormatError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _outcome(data: Any, where: str) -> Outcome:
    text = _field(data, "outcome", str, where)
    try:
        return Outcome(text)
    except ValueError:
        raise ResultFormatError(f"{where}: unknown outcome {text!r}") from None


def _list(data: Any, key: str, where: str) -> list[Any]:
    value: list[Any] = _field(data, key, list, where, [])
    return value


def _time(data: Any, key: str, where: str) -> datetime:
    text = _field(data, key, str, where)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ResultFormatError(f"{where}: {key!r} is not an ISO 8601 time ({text!r})") from None


class Outcome(StrEnum):
    """How a case or a step ended."""

    PASSED = "passed"
    FAILED = "failed"
    """The hub answered, and not as a conformant hub must."""
    ERROR = "error"
    """The case could not be carried out (no answer, an unexpected exception)."""
    SKIPPED = "skipped"
    """Not run: a need is missing (an identity), or an earlier step failed."""


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """``text`` made fit for a report: document content replaced by its size, tokens and client assertions
    replaced, every SSIN-like run masked, and cut to ``limit`` characters (:func:`rsb_connector.security.redact.redact`,
    shared with the hub's connector-validation records)."""
    return redact(text, limit)


@dataclass(slots=True)
class Evidence:
    """One HTTP exchange (or a note) seen during a step, already masked (see :func:`excerpt`)."""

    title: str
    request: str = ""
    response: str = ""
    status: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "status": self.status, "request": self.request, "response": self.response}

    @classmethod
    def from_json(cls, data: Any, where: str = "evidence") -> Evidence:
        """Read what :meth:`to_json` wrote.

        Raises:
            ResultFormatError: a missing or mistyped field.
        """
        return cls(
            title=_field(data, "title", str, where),
            request=_field(data, "request", str, where, ""),
            response=_field(data, "response", str, where, ""),
            status=_field(data, "status", int, where, None),
        )


@dataclass(slots=True)
class StepResult:
    """A step as carried out."""

    number: int
    do: str
    expect: str
    outcome: Outcome = Outcome.SKIPPED
    message: str = ""
    """Why it failed (or what was observed when it passed)."""
    seconds: float = 0.0
    evidence: list[Evidence] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "do": self.do,
            "expect": self.expect,
            "outcome": self.outcome.value,
            "message": self.message,
            "seconds": round(self.seconds, 4),
            "evidence": [e.to_json() for e in self.evidence],
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "step") -> StepResult:
        """Read what :meth:`to_json` wrote.

        Raises:
            ResultFormatError: a missing or mistyped field.
        """
        number = _field(data, "number", int, where)
        where = f"{where} {number}"
        return cls(
            number=number,
            do=_field(data, "do", str, where),
            expect=_field(data, "expect", str, where),
            outcome=_outcome(data, where),
            message=_field(data, "message", str, where, ""),
            seconds=float(_field(data, "seconds", (int, float), where, 0.0)),
            evidence=[Evidence.from_json(e, f"{where} evidence") for e in _list(data, "evidence", where)],
        )


@dataclass(slots=True)
class CaseResult:
    """A case as carried out (``steps`` in catalogue order; setup exchanges in ``setup``)."""

    id: str
    title: str
    profile: str
    actor: str
    reference: str
    description: str = ""
    outcome: Outcome = Outcome.SKIPPED
    message: str = ""
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    setup: list[Evidence] = field(default_factory=list)
    """Exchanges outside the steps (registering the case's own patient, tokens...)."""

    @property
    def failed_step(self) -> StepResult | None:
        """The first step that did not pass (None when all passed or none ran)."""
        return next((s for s in self.steps if s.outcome in (Outcome.FAILED, Outcome.ERROR)), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "profile": self.profile,
            "actor": self.actor,
            "reference": self.reference,
            "description": self.description,
            "outcome": self.outcome.value,
            "message": self.message,
            "seconds": round(self.seconds, 4),
            "setup": [e.to_json() for e in self.setup],
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "case") -> CaseResult:
        """Read what :meth:`to_json` wrote.

        Raises:
            ResultFormatError: a missing or mistyped field.
        """
        case_id = _field(data, "id", str, where)
        where = f"{where} {case_id}"
        return cls(
            id=case_id,
            title=_field(data, "title", str, where),
            profile=_field(data, "profile", str, where),
            actor=_field(data, "actor", str, where, ""),
            reference=_field(data, "reference", str, where, ""),
            description=_field(data, "description", str, where, ""),
            outcome=_outcome(data, where),
            message=_field(data, "message", str, where, ""),
            seconds=float(_field(data, "seconds", (int, float), where, 0.0)),
            steps=[StepResult.from_json(s, f"{where} step") for s in _list(data, "steps", where)],
            setup=[Evidence.from_json(e, f"{where} setup") for e in _list(data, "setup", where)],
        )


@dataclass(slots=True)
class SuiteResult:
    """A whole run: what was tested, by whom, and each case's result."""

    title: str
    target: str
    """The hub URL."""
    started: datetime
    finished: datetime
    cases: list[CaseResult]
    caller: str = ""
    """Who the suite signed as (a certificate description)."""
    notes: list[str] = field(default_factory=list)
    """Plain statements about the run (e.g. that the schema check was not run)."""
    kind: str = "conformance"
    """``conformance`` (a suite run) or ``connector`` (a connector-validation report)."""

    def count(self, outcome: Outcome) -> int:
        """How many cases ended so."""
        return sum(1 for c in self.cases if c.outcome is outcome)

    @property
    def passed(self) -> bool:
        """True when every selected case passed (and there was at least one)."""
        return bool(self.cases) and all(c.outcome is Outcome.PASSED for c in self.cases)

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()

    def summary(self) -> dict[str, int]:
        """Counts by outcome, plus ``total``."""
        counts = {o.value: self.count(o) for o in Outcome}
        counts["total"] = len(self.cases)
        return counts

    def to_json(self) -> dict[str, Any]:
        from .. import __version__

        return {
            "kind": self.kind,
            "title": self.title,
            "target": self.target,
            "caller": self.caller,
            "tool": f"rsb-connector {__version__}",
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "seconds": round(self.seconds, 3),
            "passed": self.passed,
            "summary": self.summary(),
            "notes": list(self.notes),
            "cases": [c.to_json() for c in self.cases],
        }

    @classmethod
    def from_json(cls, data: Any) -> SuiteResult:
        """Read what :meth:`to_json` wrote (``report.json``, the hub's ``GET /conformance/report``). The derived
        fields (``tool``, ``seconds``, ``passed``, ``summary``) are recomputed, not read.

        Raises:
            ResultFormatError: not such a document (a missing or mistyped field).
        """
        where = "report"
        notes = _list(data, "notes", where)
        if not all(isinstance(n, str) for n in notes):
            raise ResultFormatError(f"{where}: 'notes' is a list of strings")
        return cls(
            title=_field(data, "title", str, where),
            target=_field(data, "target", str, where),
            started=_time(data, "started", where),
            finished=_time(data, "finished", where),
            cases=[CaseResult.from_json(c) for c in _list(data, "cases", where)],
            caller=_field(data, "caller", str, where, ""),
            notes=list(notes),
            kind=_field(data, "kind", str, where, "conformance"),
        )

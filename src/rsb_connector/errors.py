"""One exception tree for everything rsb-connector raises.

```
RsbError
├── InvalidIdentifier (also a ValueError)      a malformed SSIN / NIHII / CBE / CX
├── MetadataError                              local validation found problems (XDS codes)
├── QueryError                                 a stored query is malformed (XDS codes)
├── HubError                                   the hub answered with RegistryErrors or a fault
│   └── HubRefused                             ... a refusal of the request (Failure status)
├── TransportError                             the network or the peer's HTTP layer failed
│   └── ProtocolError                          the peer answered something that is not a valid message
├── IntegrityError                             retrieved content does not match its metadata
└── ConnectorValidationUnavailable             the hub serves no connector-validation report
```

Every error that stems from XDS rules carries :class:`Problem` records: the literal XDS ``errorCode``, the path
of the offending field, a message a person understands, and a severity.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "AccessDenied",
    "ConnectorValidationUnavailable",
    "HubError",
    "HubRefused",
    "IntegrityError",
    "InvalidIdentifier",
    "MetadataError",
    "Problem",
    "ProtocolError",
    "QueryError",
    "RsbError",
    "Severity",
    "TransportError",
]


class Severity(StrEnum):
    """Severity of a problem, with the ebRS URN as its value."""

    ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    WARNING = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a message, as XDS reports it.

    Attributes:
        code: the literal XDS ``errorCode`` (e.g. ``XDSRegistryMetadataError``).
        message: what is wrong and what to send instead, for a person.
        path: where: ``DocumentEntry[Document01].classCode``, ``SubmissionSet.patientId``...
        severity: error or warning.
    """

    code: str
    message: str
    path: str = ""
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.code}{where}: {self.message}"


def _summarise(prefix: str, problems: Sequence[Problem]) -> str:
    if not problems:
        return prefix
    lines = [f"{prefix} ({len(problems)} problem{'s' if len(problems) != 1 else ''}):"]
    lines.extend(f"  - {p}" for p in problems)
    return "\n".join(lines)


class RsbError(Exception):
    """Base of every exception raised by rsb-connector."""


class InvalidIdentifier(RsbError, ValueError):
    """A Belgian identifier (SSIN, NIHII, CBE) or an XDS CX value is malformed.

    The message says what is wrong (length, characters, checksum, impossible month...).
    """

    def __init__(self, kind: str, value: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(f"invalid {kind}: {reason}")


class _ProblemsError(RsbError):
    """An error that carries one or more :class:`Problem` records."""

    prefix = "problems found"

    def __init__(self, problems: Iterable[Problem], message: str | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(message or _summarise(self.prefix, self.problems))

    @property
    def codes(self) -> list[str]:
        """The XDS error codes, in order, without repeats."""
        seen: dict[str, None] = {}
        for p in self.problems:
            seen.setdefault(p.code, None)
        return list(seen)

    @property
    def code(self) -> str:
        """The first error's code (most callers only need this one)."""
        return self.problems[0].code if self.problems else ""


class MetadataError(_ProblemsError):
    """Local validation of document metadata failed; nothing was sent.

    ``problems`` holds every problem found, each with its exact XDS error code and path.
    """

    prefix = "the submission's metadata is not valid"


class QueryError(_ProblemsError):
    """A stored query is malformed (unknown query id, missing or repeated parameter)."""

    prefix = "the stored query is not valid"


class HubError(_ProblemsError):
    """The hub answered with errors (RegistryErrors or a SOAP Fault).

    ``problems`` holds every error of the response (for a SOAP fault: one, whose code is the local name of the
    fault's most precise code, e.g. ``InvalidSecurity``); ``status`` the ebRS response status URN when there was one;
    ``fault_code`` the SOAP fault's most precise code (its Subcode, else its Code) as a namespace-qualified name
    ``{namespace}local`` (e.g. ``{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}
    InvalidSecurity``), or as written (``prefix:local``) when its prefix could not be resolved, ``None`` when the
    answer was not a SOAP fault.
    """

    prefix = "the hub answered with errors"

    def __init__(
        self,
        problems: Iterable[Problem],
        message: str | None = None,
        *,
        status: str | None = None,
        fault_code: str | None = None,
    ) -> None:
        super().__init__(problems, message)
        self.status = status
        self.fault_code = fault_code


class HubRefused(HubError):
    """The hub refused the request as a whole (response status Failure): nothing was done."""

    prefix = "the hub refused the request"


class AccessDenied(HubRefused):
    """The hub's access policy (Belgian consent rules) refused the request: nothing was done.

    Attributes:
        rule: the rule that denied, as the hub names it (``consent``, ``exclusion``, ``therapeutic-link``,
            ``access-matrix``...; see :class:`rsb_connector.policy.Rule`), or ``None`` when the hub did not say.
        reason: why, for a person (SSINs masked).
        fix: what would make it allowed (``None`` when nothing can).
    """

    prefix = "the hub's access policy refused the request"

    def __init__(
        self,
        problems: Iterable[Problem],
        message: str | None = None,
        *,
        rule: str | None = None,
        reason: str = "",
        fix: str | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(problems, message, status=status)
        self.rule = rule
        self.reason = reason
        self.fix = fix

    @classmethod
    def from_problems(
        cls, problems: Iterable[Problem], message: str | None = None, *, status: str | None = None
    ) -> AccessDenied | None:
        """The denial the hub's problems describe, or ``None`` when none of them is a policy refusal.

        The hub reports a denial as ``LocalPolicyRestrictionError`` at path ``Policy[<RULE>]`` with the message
        ``refused by the <rule> rule: <reason>. Fix: <fix>``; the first such problem gives :attr:`rule`,
        :attr:`reason` and :attr:`fix`.
        """
        every = tuple(problems)
        for problem in every:
            if problem.code != LOCAL_POLICY_RESTRICTION:
                continue
            rule: str | None = None
            named = _POLICY_PATH.fullmatch(problem.path)
            if named:
                rule = named.group(1).lower().replace("_", "-")
            reason, fix = problem.message, None
            said = _POLICY_MESSAGE.search(problem.message)
            if said:
                rule = said.group("rule")
                reason = said.group("reason")
                fix = said.group("fix")
            return cls(every, message, rule=rule, reason=reason, fix=fix, status=status)
        return None


LOCAL_POLICY_RESTRICTION = "LocalPolicyRestrictionError"
"""The XDS error code of a request refused by the hub's access policy."""

_POLICY_PATH = re.compile(r"Policy\[([A-Z_]+)\]")
_POLICY_MESSAGE = re.compile(
    r"refused by the (?P<rule>[a-z-]+) rule: (?P<reason>.*?)(?:\. Fix: (?P<fix>.*))?$", re.DOTALL
)


class TransportError(RsbError):
    """The network or the peer's HTTP layer failed (connection, timeout, HTTP 5xx with no XDS answer)."""


class ProtocolError(TransportError):
    """The peer answered something that is not a valid message (wrong content type, truncated MTOM...)."""


class IntegrityError(RsbError):
    """Content does not match its metadata (hash or size differs)."""


class ConnectorValidationUnavailable(RsbError):
    """The hub serves no connector-validation report: it runs without connector validation (``rsb hub serve
    --no-connector-validation``, or a hub built without it), or it is not the rsb-connector mock hub.

    Attributes:
        hub_url: the hub that was asked (empty when not known).
        detail: what the hub said, when it said something.
    """

    def __init__(self, message: str, *, hub_url: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.hub_url = hub_url
        self.detail = detail

"""ebRS 3.0 ``rs:RegistryResponse`` and ``rs:RegistryErrorList``: build and parse.

Every XDS.b response carries a status URN and, when something went wrong, a list of ``rs:RegistryError``
elements. A :class:`~rsb_connector.errors.Problem` maps onto one ``rs:RegistryError``:

========================  ======================
Problem                   rs:RegistryError
========================  ======================
``code``                  ``@errorCode``
``message``               ``@codeContext``
``path``                  ``@location``
``severity``              ``@severity``
========================  ======================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree

from rsb_connector.errors import Problem, ProtocolError, Severity
from rsb_connector.xds.constants import (
    RS,
    SEVERITY_ERROR,
    SEVERITY_WARNING,
    STATUS_FAILURE,
    STATUS_PARTIAL_SUCCESS,
    STATUS_SUCCESS,
)

__all__ = [
    "RegistryResult",
    "build_registry_error_list",
    "build_registry_response",
    "parse_registry_error_list",
    "parse_registry_response",
    "parse_severity",
]

_RS = f"{{{RS}}}"


@dataclass(slots=True)
class RegistryResult:
    """A parsed ebRS response status with its problems.

    Attributes:
        status: the response status URN (``...ResponseStatusType:Success`` etc.).
        problems: every ``rs:RegistryError`` of the response, errors and warnings, in document order.
    """

    status: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the status is Success (warnings may still be present)."""
        return self.status == STATUS_SUCCESS

    @property
    def partial(self) -> bool:
        """True when the status is PartialSuccess."""
        return self.status == STATUS_PARTIAL_SUCCESS

    @property
    def failed(self) -> bool:
        """True when the status is Failure."""
        return self.status == STATUS_FAILURE

    @property
    def errors(self) -> list[Problem]:
        """The problems of severity Error."""
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        """The problems of severity Warning."""
        return [p for p in self.problems if not p.is_error]


def parse_severity(value: str | None) -> Severity:
    """The :class:`Severity` of an ``@severity`` / ``@highestSeverity`` value.

    Absent means Error (the ebRS default). The short forms ``Error`` / ``Warning`` are accepted, since some
    stacks send them; anything else is treated as an error rather than silently downgraded.
    """
    if value is None:
        return Severity.ERROR
    text = value.strip()
    if text == SEVERITY_WARNING or text.lower() == "warning":
        return Severity.WARNING
    return Severity.ERROR


def build_registry_error_list(problems: Sequence[Problem], *, highest_severity: bool = True) -> etree._Element:
    """An ``rs:RegistryErrorList`` holding one ``rs:RegistryError`` per problem.

    Args:
        problems: the problems to report (errors and warnings).
        highest_severity: set ``@highestSeverity`` (Error when any problem is an error, else Warning).
    """
    error_list = etree.Element(f"{_RS}RegistryErrorList", nsmap={"rs": RS})
    if highest_severity and problems:
        worst = SEVERITY_ERROR if any(p.is_error for p in problems) else SEVERITY_WARNING
        error_list.set("highestSeverity", worst)
    for problem in problems:
        error = etree.SubElement(error_list, f"{_RS}RegistryError")
        error.set("errorCode", problem.code)
        error.set("codeContext", problem.message)
        if problem.path:
            error.set("location", problem.path)
        error.set("severity", problem.severity.value)
    return error_list


def build_registry_response(status: str, problems: Sequence[Problem] = ()) -> etree._Element:
    """An ``rs:RegistryResponse`` with ``@status`` and, when there are problems, its ``rs:RegistryErrorList``."""
    response = etree.Element(f"{_RS}RegistryResponse", nsmap={"rs": RS})
    response.set("status", status)
    if problems:
        response.append(build_registry_error_list(problems))
    return response


def parse_registry_error_list(el: etree._Element | None) -> list[Problem]:
    """The problems of an ``rs:RegistryErrorList`` (an empty list for ``None``).

    ``@codeContext`` becomes the message; when it is empty the element's text is used instead.
    """
    if el is None:
        return []
    if el.tag != f"{_RS}RegistryErrorList":
        raise ProtocolError(f"expected rs:RegistryErrorList, found {el.tag}")
    problems: list[Problem] = []
    for error in el.iterchildren(f"{_RS}RegistryError"):
        code = (error.get("errorCode") or "").strip()
        context = error.get("codeContext") or ""
        if not context.strip():
            context = (error.text or "").strip()
        problems.append(
            Problem(
                code=code,
                message=context,
                path=error.get("location") or "",
                severity=parse_severity(error.get("severity")),
            )
        )
    return problems


def parse_registry_response(el: etree._Element) -> RegistryResult:
    """Status and problems of an ``rs:RegistryResponse``.

    Also accepts any ebRS response element that carries ``@status`` and a direct ``rs:RegistryErrorList`` child
    (``query:AdhocQueryResponse``, for instance).

    Raises:
        ProtocolError: ``@status`` is missing.
    """
    status = el.get("status")
    if not status:
        raise ProtocolError(f"{etree.QName(el).localname} has no status attribute: the response cannot be read")
    return RegistryResult(status=status.strip(), problems=parse_registry_error_list(el.find(f"{_RS}RegistryErrorList")))

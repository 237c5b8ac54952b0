"""XDS problems <-> FHIR OperationOutcome, and the HTTP status that goes with them.

Each :class:`~rsb_connector.errors.Problem` becomes one ``issue``:

- ``severity``: ``error`` or ``warning``;
- ``code``: the FHIR IssueType that fits the XDS code (``invalid``, ``required``, ``not-found``, ``duplicate``,
  ``conflict``, ``security``, ``too-costly``, ``not-supported``, ``exception``, else ``processing``);
- ``details.coding``: system :data:`~rsb_connector.mhd.constants.XDS_ERROR_CODE_SYSTEM`, code = the literal XDS
  ``errorCode``; ``details.text`` repeats the code (the CH:EPR convention, for readers that look there);
- ``diagnostics``: the message for a person;
- ``expression``: the path (FHIRPath into the request, or the XDS attribute path).

Reading accepts outcomes from other servers too: the XDS code is taken from a coding of our system, else from any
coding or ``details.text`` that looks like an XDS code, else the IssueType code is used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import BaseModel

from ..errors import Problem, Severity
from .constants import XDS_ERROR_CODE_SYSTEM

__all__ = [
    "ISSUE_TYPES",
    "http_status",
    "issue_type",
    "operation_outcome_to_problems",
    "problems_to_operation_outcome",
]

ISSUE_TYPES: Final[dict[str, str]] = {
    "XDSRegistryMetadataError": "invalid",
    "XDSRepositoryMetadataError": "invalid",
    "InvalidDocumentContent": "invalid",
    "XDSMissingDocument": "required",
    "XDSMissingDocumentMetadata": "required",
    "XDSStoredQueryMissingParam": "required",
    "XDSStoredQueryParamNumber": "invalid",
    "XDSPatientIdDoesNotMatch": "business-rule",
    "XDSResultNotSinglePatient": "business-rule",
    "XDSRegistryDeprecatedDocumentError": "business-rule",
    "XDSReplaceFailed": "business-rule",
    "XDSRegistryDuplicateUniqueIdInMessage": "duplicate",
    "XDSRepositoryDuplicateUniqueIdInMessage": "duplicate",
    "XDSDuplicateUniqueIdInRegistry": "duplicate",
    "XDSNonIdenticalHash": "conflict",
    "XDSNonIdenticalSize": "conflict",
    "XDSMetadataVersionError": "conflict",
    "XDSMetadataUpdateError": "invalid",
    "UnmodifiableMetadataError": "business-rule",
    "XDSUnknownPatientId": "not-found",
    "XDSUnknownRepositoryId": "not-found",
    "XDSDocumentUniqueIdError": "not-found",
    "XDSUnknownStoredQuery": "not-supported",
    "XDSTooManyResults": "too-costly",
    "LocalPolicyRestrictionError": "security",
    "XDSRegistryError": "exception",
    "XDSRepositoryError": "exception",
}
"""XDS errorCode -> FHIR IssueType (R4 ``http://hl7.org/fhir/issue-type``); anything else is ``processing``."""

_HTTP_BY_ISSUE: Final = {
    "security": 403,
    "forbidden": 403,
    "login": 401,
    "not-found": 404,
    "deleted": 410,
    "duplicate": 409,
    "conflict": 409,
    "business-rule": 422,
    "too-costly": 422,
    "not-supported": 400,
    "exception": 500,
}
_XDS_CODE: Final = re.compile(r"(?:XDS[A-Za-z]+|[A-Z][A-Za-z]*Error|InvalidDocumentContent)")


def issue_type(code: str) -> str:
    """The FHIR IssueType for an XDS error code (``processing`` when there is no better one)."""
    return ISSUE_TYPES.get(code, "processing")


def problems_to_operation_outcome(problems: Iterable[Problem]) -> OperationOutcome:
    """An OperationOutcome with one issue per problem (an ``informational`` "all OK" issue when there is none:
    FHIR requires at least one issue)."""
    issues: list[dict[str, Any]] = []
    for problem in problems:
        issue: dict[str, Any] = {
            "severity": "error" if problem.is_error else "warning",
            "code": issue_type(problem.code),
            "details": {"coding": [{"system": XDS_ERROR_CODE_SYSTEM, "code": problem.code}], "text": problem.code},
            "diagnostics": problem.message,
        }
        if problem.path:
            issue["expression"] = [problem.path]
        issues.append(issue)
    if not issues:
        issues.append({"severity": "information", "code": "informational", "diagnostics": "no problems found"})
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": issues})


def _as_dict(outcome: OperationOutcome | Mapping[str, Any] | bytes | str) -> Mapping[str, Any]:
    if isinstance(outcome, BaseModel):
        dumped: dict[str, Any] = outcome.model_dump(mode="json")
        return dumped
    if isinstance(outcome, bytes | str):
        try:
            loaded = json.loads(outcome)
        except ValueError as exc:
            raise ValueError(f"the OperationOutcome is not JSON ({exc})") from None
        if not isinstance(loaded, Mapping):
            raise ValueError("the OperationOutcome is not a JSON object")
        return loaded
    return outcome


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def operation_outcome_to_problems(outcome: OperationOutcome | Mapping[str, Any] | bytes | str) -> list[Problem]:
    """The problems an OperationOutcome reports (``information`` issues are left out).

    Raises:
        ValueError: the input is not an OperationOutcome (JSON text, a dict or the model).
    """
    data = _as_dict(outcome)
    if data.get("resourceType") != "OperationOutcome":
        raise ValueError(f"expected an OperationOutcome, got {data.get('resourceType')!r}")
    problems: list[Problem] = []
    issues = data.get("issue")
    for issue in issues if isinstance(issues, list) else []:
        if not isinstance(issue, Mapping):
            continue
        severity = issue.get("severity")
        if severity == "information":
            continue
        details = issue.get("details") if isinstance(issue.get("details"), Mapping) else {}
        assert isinstance(details, Mapping)
        codings = [cd for cd in details.get("coding", []) if isinstance(cd, Mapping)]
        code = next((_text(cd.get("code")) for cd in codings if cd.get("system") == XDS_ERROR_CODE_SYSTEM), None)
        if code is None:
            candidates = [_text(cd.get("code")) for cd in codings] + [_text(details.get("text"))]
            code = next((cand for cand in candidates if cand and _XDS_CODE.fullmatch(cand)), None)
        code = code or _text(issue.get("code")) or "XDSRegistryError"
        message = _text(issue.get("diagnostics")) or _text(details.get("text")) or code
        paths = [p for p in (issue.get("expression") or issue.get("location") or []) if isinstance(p, str)]
        problems.append(
            Problem(
                code=code,
                message=message,
                path=paths[0] if paths else "",
                severity=Severity.WARNING if severity == "warning" else Severity.ERROR,
            )
        )
    return problems


def http_status(problems: Iterable[Problem]) -> int:
    """The HTTP status a FHIR server answers with for these problems: 200 when none is an error; otherwise the
    status of the first error's IssueType (403 security, 404 not-found, 409 duplicate/conflict, 422 business rule,
    500 internal error), 400 by default."""
    for problem in problems:
        if problem.is_error:
            return _HTTP_BY_ISSUE.get(issue_type(problem.code), 400)
    return 200

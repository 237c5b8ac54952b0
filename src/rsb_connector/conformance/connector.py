"""The connector-validation report of a mock hub, as a report like a suite run's.

A mock hub running with connector validation (:mod:`rsb_connector.hub.connector_validation`) grades every message
a connector sends it and serves the result at ``GET /conformance/report``. :func:`fetch_connector_report` reads
it and returns a :class:`~rsb_connector.conformance.results.SuiteResult` of kind ``connector``, which
:mod:`~rsb_connector.conformance.report` renders like a suite run (``rsb conformance connector-report``):

- each **message** is a :class:`~rsb_connector.conformance.results.CaseResult`: id ``MSG-000017``, title
  ``ITI-41 Provide and Register Document Set-b from <caller>``, the transaction's profile (XDS.b, MHD, security,
  consent), the connector's actor (``Document Source (your connector)``...) and the ITI TF / MHD section; passed
  when every rule family passed or did not apply, failed otherwise; its one ``setup`` evidence is the request as
  the hub kept it (masked: no document content, no token, no full SSIN) with what the hub answered;
- each **rule family** (transport, schema, security, metadata, mhd-profile) is a
  :class:`~rsb_connector.conformance.results.StepResult`: ``do`` = ``Check <family>``, ``expect`` = what the rules
  require, outcome passed / failed / skipped (not run, or not applicable: the message says which and why), and for a
  failure every broken rule with its code and location;
- the report's ``notes`` carry the hub's statements, first of all whether the schema check ran.

A hub without connector validation answers 404: :class:`~rsb_connector.errors.ConnectorValidationUnavailable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from ..errors import ConnectorValidationUnavailable, ProtocolError, TransportError
from ..identifiers import mask_ssin
from .results import CaseResult, Evidence, Outcome, StepResult, SuiteResult

__all__ = ["REPORT_PATH", "ConnectorValidationUnavailable", "connector_suite", "fetch_connector_report"]

REPORT_PATH: Final = "/conformance/report"
FAMILIES: Final = ("transport", "schema", "security", "metadata", "mhd-profile")
"""The rule families in report order (a family the hub does not report is left out; unknown ones come last)."""
_OUTCOMES: Final = {"passed": Outcome.PASSED, "failed": Outcome.FAILED}


def fetch_connector_report(
    hub_url: str,
    *,
    since: str | datetime | None = None,
    verify: bool | str = True,
    transport: httpx.BaseTransport | None = None,
) -> SuiteResult:
    """The messages the hub at ``hub_url`` graded (received at or after ``since``), as a connector report.

    Args:
        hub_url: the mock hub's base URL (``http://127.0.0.1:8080``).
        since: an ISO 8601 date or date-time, as text or a :class:`~datetime.datetime` (a naive one is UTC); None:
            every recorded message.
        verify: TLS verification for an https hub (True, a CA bundle file, or False).
        transport: an httpx transport (tests pass an in-process ASGI transport).

    Raises:
        ValueError: ``since`` is not ISO 8601.
        ConnectorValidationUnavailable: the hub answered 404 (it runs without connector validation, or is not the
            mock hub).
        TransportError: the hub could not be reached.
        ProtocolError: it answered something that is not a connector-validation report.
    """
    params: dict[str, str] = {}
    if isinstance(since, datetime):
        since = since.isoformat()
    if since is not None:
        try:
            datetime.fromisoformat(since.strip())
        except ValueError:
            raise ValueError(
                f"since={since!r} is not an ISO 8601 date-time: use e.g. 2025-01-15T10:00:00Z or 2025-01-15"
            ) from None
        params["since"] = since.strip()
    base = hub_url.rstrip("/")
    try:
        with httpx.Client(base_url=base, verify=verify, transport=transport, timeout=60.0) as http:
            response = http.get(REPORT_PATH, params=params)
    except httpx.HTTPError as exc:
        raise TransportError(f"could not get {base}{REPORT_PATH}: {exc}") from exc
    if response.status_code == 404:
        detail = _said(response)
        raise ConnectorValidationUnavailable(
            f"{base} records no messages: start the mock hub with connector validation on (`rsb hub serve`, the "
            "default; not --no-connector-validation), run your connector against it, then ask again"
            + (f" (the hub says: {detail})" if detail else ""),
            hub_url=base,
            detail=detail,
        )
    if response.status_code != 200:
        raise ProtocolError(
            f"{base}{REPORT_PATH} answered HTTP {response.status_code}: {_said(response) or 'no explanation'}"
        )
    try:
        data = response.json()
    except ValueError:
        raise ProtocolError(f"{base}{REPORT_PATH} did not answer JSON: is it the rsb-connector mock hub?") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{base}{REPORT_PATH} answered JSON that is not a connector-validation report")
    return connector_suite(data, base)


def _said(response: httpx.Response) -> str:
    """What an error answer says: its JSON ``message``, else the start of its text."""
    try:
        data = response.json()
    except ValueError:
        return mask_ssin(response.text.strip()[:300])
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return mask_ssin(data["message"])
    return mask_ssin(response.text.strip()[:300])


def _time(text: object, fallback: datetime) -> datetime:
    if not isinstance(text, str):
        return fallback
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return fallback
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def connector_suite(data: Mapping[str, Any], hub_url: str) -> SuiteResult:
    """The :class:`SuiteResult` (kind ``connector``) of the JSON of ``GET /conformance/report``.

    Raises:
        ProtocolError: the JSON lacks what a connector-validation report holds.
    """
    try:
        generated = _time(data.get("generated"), datetime.now(UTC))
        messages = data["messages"]
        if not isinstance(messages, list):
            raise TypeError("messages is not a list")
        cases = [_case(message) for message in messages]
        notes = [str(n) for n in data.get("notes") or []]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"{hub_url}{REPORT_PATH} is not a connector-validation report: {exc}") from None
    since = data.get("since")
    if since:
        notes.append(f"messages received since {since}")
    if not messages:
        notes.append(
            "no message was recorded"
            + (" since then" if since else "")
            + ": nothing to grade, so nothing conforms yet — run your app's flows against this hub, then ask again"
        )
    started = _time(since, generated) if since else generated
    if messages:
        started = min(started, _time(messages[0].get("received"), generated))
    return SuiteResult(
        title="Connector validation report",
        target=hub_url,
        started=started,
        finished=generated,
        cases=cases,
        notes=notes,
        kind="connector",
    )


def _case(message: Mapping[str, Any]) -> CaseResult:
    transaction = str(message["transaction"])
    name = str(message.get("name") or "")
    caller = str(message.get("caller") or "an unknown caller")
    checks: Mapping[str, Any] = message["checks"]
    answer: Mapping[str, Any] = message.get("answer") or {}
    steps = [_step(number, family, checks[family]) for number, family in enumerate(_ordered(checks), start=1)]
    failed = [step for step in steps if step.outcome is Outcome.FAILED]
    outcome = Outcome.FAILED if message.get("verdict") == "failed" or failed else Outcome.PASSED
    errors = answer.get("errors") or []
    said = f"HTTP {answer.get('http_status', '?')}"
    if answer.get("status"):
        said += f" {answer['status']}"
    if errors:
        said += f" ({', '.join(str(e) for e in errors)})"
    if answer.get("message"):
        said += f": {answer['message']}"
    received = str(message.get("received") or "")
    summary = "; ".join(f"{step.do.removeprefix('Check ')}: {_first_line(step.message)}" for step in failed)
    return CaseResult(
        id=str(message["id"]),
        title=f"{_title(transaction, name)} from {caller}",
        profile=str(message.get("profile") or ""),
        actor=str(message.get("actor") or ""),
        reference=str(message.get("reference") or ""),
        description=f"{message.get('path', '')} received {received} from {caller}; the hub answered {said}.",
        outcome=outcome,
        message=f"failed rule families: {summary}" if failed else "",
        steps=steps,
        setup=[
            Evidence(
                title=f"The message your connector sent ({transaction}, received {received})",
                request=str(message.get("excerpt") or ""),
                response=f"the hub answered {said}",
                status=answer.get("http_status") if isinstance(answer.get("http_status"), int) else None,
            )
        ],
    )


def _title(transaction: str, name: str) -> str:
    """``ITI-41 Provide and Register…``; a name that already starts with the transaction is not repeated."""
    if not name:
        return transaction
    if name.split(" ", 1)[0].lower() == transaction.lower():
        return name
    return f"{transaction} {name}"


def _ordered(checks: Mapping[str, Any]) -> list[str]:
    known = [family for family in FAMILIES if family in checks]
    return known + sorted(family for family in checks if family not in FAMILIES)


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def _findings(items: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for item in items:
        where = f" at {item['path']}" if item.get("path") else ""
        lines.append(f"{item.get('code', '?')}{where}: {item.get('message', '')}")
    return lines


def _step(number: int, family: str, check: Mapping[str, Any]) -> StepResult:
    status = str(check.get("status") or "not-run")
    detail = str(check.get("detail") or "")
    failures = _findings(check.get("failures") or [])
    warnings = _findings(check.get("warnings") or [])
    outcome = _OUTCOMES.get(status, Outcome.SKIPPED)
    if outcome is Outcome.FAILED:
        lines = failures or [detail or "failed"]
    elif outcome is Outcome.PASSED:
        lines = [detail] if detail else []
    else:
        lines = [f"{status}: {detail}" if detail else status]
    lines += [f"warning: {w}" for w in warnings]
    return StepResult(
        number=number,
        do=f"Check {family}",
        expect=str(check.get("requires") or ""),
        outcome=outcome,
        message="\n".join(lines),
    )

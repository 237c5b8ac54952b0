"""Connector validation: the mock hub grades every message a connector sends it.

A startup proves its own connector by letting it talk to a mock hub started with connector validation on
(``rsb hub serve``, the default there; ``build_hub(connector_validation=True)``). The hub records each message it
receives — SOAP on ``/xds/registry`` and ``/xds/repository``, FHIR on ``/fhir`` and the token endpoint
``/oauth2/token`` — and grades it against the rules, one *check* per rule family:

``transport``
    the binding: SOAP 1.2 / MTOM packaging, a well-formed envelope, a ``wsa:Action`` served at the endpoint and
    matching the Body; for FHIR, a media type, ``Accept``, method and size the MHD actor accepts.
``schema``
    the SOAP Body, XOP-resolved (each ``xop:Include`` stands for base64 content), against the official IHE XDS.b /
    ebRS 3.0 XSDs of the folder the hub was started with (``--schemas DIR``). Without that folder the check is
    ``not-run`` and the report says so. FHIR messages have no XSD: ``not-applicable`` (for ITI-65 the
    ``mhd-profile`` check validates each resource against the FHIR R4 models).
``security``
    the hub's own WS-Security verdict (signed, and by whom; or the refusal with its ``wsse:`` fault code), the
    bearer token of a FHIR request, the client assertion of a token request.
``metadata``
    the problems the hub itself found in the request, with their exact XDS codes and paths: the ITI-41 rules of
    :mod:`rsb_connector.metadata.rules` and the registry's checks (ITI-41, ITI-57, ITI-65 mapped to XDS), the
    stored query's parameter rules (ITI-18), a well-formed retrieve request (ITI-43). A refusal by the consent
    rules (``LocalPolicyRestrictionError``) is the hub's decision about its data, not a rule the message broke: it
    shows in ``answer``, not as a failure. When the hub refused a SOAP message before processing it (no valid
    signature, a wrong action), the same local rules are run on the message as received, and the check says so.
``mhd-profile``
    ITI-65: the ProvideBundle profile checks of :func:`rsb_connector.mhd.bundle.parse_provide_bundle` (as the hub
    ran them); ITI-66 / ITI-67: the search parameters; ITI-68: a retrieve the Document Responder can honour.

Each check is ``passed``, ``failed``, ``not-run`` (the hub did not get that far, or no schemas) or
``not-applicable``; a message's ``verdict`` is ``failed`` when any check failed, else ``passed``. The hub grades
what its pipeline already computed (the parsed message, the authenticator's verdict, the registry's problems; the
parsed ITI-65 bundle is handed over by :func:`observe_bundle`) and parses nothing twice, except the local rules run
on a message the hub refused before processing it.

Storage: one row per message in the hub's SQLite store (``connector_messages``, schema version 3), written in its
own transaction after the hub answered the request's work (a recording failure is logged and never changes the
answer nor what the registry stored), bounded to the :data:`DEFAULT_KEEP` most recent messages. Nothing is kept of
a document but its size: the ``excerpt`` is the request (the SOAP envelope, or the FHIR request line, headers and
JSON) with document content replaced by its size, tokens and signatures replaced, every SSIN masked
(:func:`rsb_connector.security.redact.redact`), cut to :data:`EXCERPT_LIMIT` characters. With connector validation
off, nothing of this runs: no middleware, no trace, no row.

HTTP:

- ``GET /conformance/report[?since=ISO8601]`` — the messages received at or after ``since`` (a naive time is UTC),
  oldest first; 400 for an unreadable ``since``;
- ``DELETE /conformance/report`` — start a new session: forget every recorded message;
- both answer 404 with ``{"error": "connector-validation-off", "message": ...}`` on a hub running without it.

The JSON of ``GET /conformance/report``::

    {
      "hub": "rsb-connector mock hub 0.1.0",
      "generated": "2025-01-15T10:00:00.000000Z",       # when the report was made (UTC)
      "since": null,                                   # or the normalised ?since= value
      "kept": 10000,                                   # the hub keeps this many recent messages
      "schema_check": {"run": false, "schemas": null},  # or {"run": true, "schemas": "/path/to/ihe-xds-schemas"}
      "notes": ["schema check not run: start the hub with --schemas DIR", "..."],
      "summary": {"messages": 2, "passed": 1, "failed": 1},
      "messages": [
        {
          "id": "MSG-000017",                          # MSG-<seq>, never reused
          "seq": 17,
          "received": "2025-01-15T09:59:58.123456Z",
          "transport": "soap",                         # soap | fhir | oauth
          "transaction": "ITI-41",                     # ITI-41/18/43/57/65/66/67/68, token, FHIR metadata, FHIR, SOAP
          "name": "Provide and Register Document Set-b",
          "profile": "XDS.b",                          # XDS.b | MHD | security | consent
          "actor": "Document Source (your connector)",
          "reference": "ITI TF-2b 3.41",
          "path": "/xds/repository",
          "caller": "nihii:10*******04 (persphysician)",  # or "unsigned", "invalid signature", "no token"...
          "verdict": "failed",                         # passed | failed
          "checks": {                                  # always these five, in this order
            "transport": {"status": "passed", "requires": "...", "detail": "...", "failures": [], "warnings": []},
            "schema": {"status": "not-run", "requires": "...", "detail": "schema check not run: ...", ...},
            "security": {"status": "passed", ...},
            "metadata": {
              "status": "failed", "requires": "...", "detail": "...",
              "failures": [{"code": "XDSRegistryMetadataError",
                            "path": "DocumentEntry[Document01].classCode", "message": "..."}],
              "warnings": []
            },
            "mhd-profile": {"status": "not-applicable", ...}
          },
          "answer": {"http_status": 200, "status": "Failure", "errors": ["XDSRegistryMetadataError"], "message": ""},
          "excerpt": "POST /xds/repository\\nContent-Type: multipart/related; ...\\n\\n<soap:Envelope ..."
        }
      ]
    }

:func:`rsb_connector.conformance.connector.fetch_connector_report` turns it into a report like a suite run's.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import copy
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from ..errors import Problem, QueryError
from ..identifiers import mask_ssin
from ..metadata.content import ContentDigest, digest
from ..metadata.rules import CodeChecker, validate_hash_and_size, validate_submission
from ..mhd.outcome import operation_outcome_to_problems
from ..security.redact import redact
from ..security.wssec import WSSE, WsSecurityError
from ..xds import constants as c
from ..xds import iti18, iti41, iti43, iti57, soap
from ..xds.parts import Inline, XopRef
from ..xds.schema import load_schema, validate
from ..xds.xop import XOP_INCLUDE
from .registry import Caller

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ..mhd.bundle import ParsedBundle
    from ..xds.mtom import MtomMessage
    from .store import Store

__all__ = [
    "DEFAULT_KEEP",
    "EXCERPT_LIMIT",
    "FAMILIES",
    "NOT_RUN_NOTE",
    "OFF_MESSAGE",
    "REPORT_PATH",
    "TRANSACTIONS",
    "Check",
    "CheckStatus",
    "ConnectorValidator",
    "FhirTrace",
    "GradedMessage",
    "RecordingMiddleware",
    "SoapTrace",
    "TransactionInfo",
    "describe_caller",
    "normalise_since",
    "observe_bundle",
    "report_routes",
]

log = logging.getLogger("rsb_connector.hub.connector")

DEFAULT_KEEP: Final = 10_000
"""How many recent messages the hub keeps (older ones are dropped as new ones come)."""
EXCERPT_LIMIT: Final = 12_000
"""Characters kept of each request (after redaction): room for the metadata of a few documents."""
REPORT_PATH: Final = "/conformance/report"
FAMILIES: Final = ("transport", "schema", "security", "metadata", "mhd-profile")
"""The rule families, in the order each message lists them."""
NOT_RUN_NOTE: Final = "schema check not run: start the hub with --schemas DIR"
OFF_MESSAGE: Final = (
    "this hub runs without connector validation, so it records no messages: start it with "
    "`rsb hub serve --connector-validation` (the default of rsb hub serve), or build_hub(connector_validation=True)"
)
POLICY_CODES: Final = frozenset({"LocalPolicyRestrictionError"})
"""Codes of a refusal by the hub's access policy: its decision about its data, not a rule the message broke."""

_CAPTURE_LIMIT: Final = 1024 * 1024
"""Bytes of a FHIR request (or of a JSON answer) kept while it passes, to grade it and write its excerpt."""
_RAW_LIMIT: Final = 256 * 1024
"""Bytes of an unreadable SOAP message kept for its excerpt."""
_FHIR_PREFIX: Final = "/fhir"
_TOKEN_PATH: Final = "/oauth2/token"  # noqa: S105 - a URL path
_XML_DOCUMENT: Final = re.compile(r"(<(?:[\w.-]+:)?Document\b[^>]*>)([^<]*)")
_JSON_DATA: Final = re.compile(r'("data"\s*:\s*")((?:[^"\\]|\\.)*)(")')
_JSON_OPEN_DATA: Final = re.compile(r'("data"\s*:\s*")((?:[^"\\]|\\.)*)$')
_BEARER: Final = re.compile(r"\s*bearer\s+(\S+)\s*", re.IGNORECASE)


# ================================================================================================ model


class CheckStatus(StrEnum):
    """How one rule family came out for one message."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not-run"
    """The hub did not get that far with the message (or, for ``schema``, has no schemas)."""
    NOT_APPLICABLE = "not-applicable"
    """The rule family does not apply to this kind of message."""


@dataclass(frozen=True, slots=True)
class TransactionInfo:
    """What a transaction is, for people: its name, profile, the connector's actor and the spec section."""

    name: str
    profile: str
    actor: str
    reference: str


TRANSACTIONS: Final[Mapping[str, TransactionInfo]] = {
    "ITI-41": TransactionInfo(
        "Provide and Register Document Set-b", "XDS.b", "Document Source (your connector)", "ITI TF-2b 3.41"
    ),
    "ITI-18": TransactionInfo("Registry Stored Query", "XDS.b", "Document Consumer (your connector)", "ITI TF-2a 3.18"),
    "ITI-43": TransactionInfo("Retrieve Document Set", "XDS.b", "Document Consumer (your connector)", "ITI TF-2b 3.43"),
    "ITI-57": TransactionInfo(
        "Update Document Set", "XDS.b", "Document Administrator (your connector)", "ITI TF-2b 3.57"
    ),
    "ITI-65": TransactionInfo("Provide Document Bundle", "MHD", "Document Source (your connector)", "IHE MHD 2:3.65"),
    "ITI-66": TransactionInfo("Find Document Lists", "MHD", "Document Consumer (your connector)", "IHE MHD 2:3.66"),
    "ITI-67": TransactionInfo(
        "Find Document References", "MHD", "Document Consumer (your connector)", "IHE MHD 2:3.67"
    ),
    "ITI-68": TransactionInfo("Retrieve Document", "MHD", "Document Consumer (your connector)", "IHE MHD 2:3.68"),
    "token": TransactionInfo(
        "Access token request",
        "security",
        "OAuth client (your connector)",
        "RFC 6749 4.4 (client_credentials); RFC 7523 (private_key_jwt); SMART Backend Services",
    ),
    "FHIR metadata": TransactionInfo(
        "CapabilityStatement read", "MHD", "FHIR client (your connector)", "FHIR R4 http.html#capabilities"
    ),
    "FHIR": TransactionInfo("FHIR request", "consent", "FHIR client (your connector)", "FHIR R4 http.html"),
    "SOAP": TransactionInfo(
        "SOAP request", "XDS.b", "XDS actor (your connector)", "ITI TF-2x Appendix V (Web Services for IHE)"
    ),
}
"""Every transaction a message may be filed under (``SOAP``: the action was missing or unknown; ``FHIR``: another
FHIR request, e.g. the consent resources)."""

_ACTIONS: Final = {
    c.ACTION_ITI41: "ITI-41",
    c.ACTION_ITI18: "ITI-18",
    c.ACTION_ITI43: "ITI-43",
    c.ACTION_ITI57: "ITI-57",
}
_PAYLOADS: Final = {
    f"{{{c.XDSB}}}ProvideAndRegisterDocumentSetRequest": "ITI-41",
    f"{{{c.QUERY}}}AdhocQueryRequest": "ITI-18",
    f"{{{c.XDSB}}}RetrieveDocumentSetRequest": "ITI-43",
    f"{{{c.LCM}}}SubmitObjectsRequest": "ITI-57",
}

_REQUIRES: Final[Mapping[tuple[str, str], str]] = {
    ("transport", "soap"): "SOAP 1.2 over HTTP (application/soap+xml, or MTOM/XOP multipart/related), a well-formed "
    "envelope, and a wsa:Action served at this endpoint that matches the Body (ITI TF-2x Appendix V)",
    ("transport", "fhir"): "a request the FHIR server accepts: JSON bodies (application/fhir+json), an Accept that "
    "admits JSON (or the document), a supported method, within the size limits",
    ("transport", "oauth"): "a POST with an application/x-www-form-urlencoded body (RFC 6749 4.4)",
    ("schema", "soap"): "the SOAP Body, XOP-resolved, validates against the official IHE XDS.b / ebRS 3.0 XSDs",
    ("schema", "fhir"): "no XSD applies to FHIR JSON",
    ("schema", "oauth"): "no XSD applies to a token request",
    ("security", "soap"): "a WS-Security signature (RSA-SHA256, exclusive C14N) over the Body, the Timestamp and the "
    "WS-Addressing headers, by a certificate the hub trusts; a fresh Timestamp and a MessageID never seen before",
    ("security", "fhir"): "Authorization: Bearer <access token>, issued by this hub's /oauth2/token and not expired",
    ("security", "oauth"): "grant_type=client_credentials with a private_key_jwt client assertion (RS256, x5c chained "
    "to the hub's trust store, iss = sub = the certificate's client id, aud = the token URL, a jti never seen)",
    ("metadata", "ITI-41"): "the ITI-41 metadata rules (ITI TF-3 4.3.1, Table 4.3.1-3) and the registry's checks, "
    "reported with their exact XDS error codes and paths",
    ("metadata", "ITI-18"): "the stored query's parameter rules (ITI TF-2a 3.18.4.1.2.3.7): a known query id, each "
    "required parameter present once, well-formed values",
    ("metadata", "ITI-43"): "a well-formed RetrieveDocumentSetRequest (ITI TF-2b 3.43.4.1): each DocumentRequest "
    "with its RepositoryUniqueId and DocumentUniqueId",
    ("metadata", "ITI-57"): "a well-formed availability status update (ITI TF-2b 3.57.4.1.3.3.1): one SubmissionSet, "
    "UpdateAvailabilityStatus associations with OriginalStatus and NewStatus, and the registry's checks",
    ("metadata", "ITI-65"): "the ITI-41 metadata rules on the bundle mapped to XDS (MHD ITI-65 to ITI-41) and the "
    "registry's checks, with their exact XDS error codes at FHIRPaths into the bundle",
    ("mhd-profile", "ITI-65"): "the MHD ProvideBundle profile (IHE MHD 2:3.65.4.1): a transaction Bundle declaring "
    "meta.profile, valid R4 resources, each profile's required elements, references that resolve",
    ("mhd-profile", "ITI-66"): "valid ITI-66 search parameters (IHE MHD 2:3.66.4.1.2): patient or "
    "patient.identifier, code=submissionset, known tokens",
    ("mhd-profile", "ITI-67"): "valid ITI-67 search parameters (IHE MHD 2:3.67.4.1.2): patient or "
    "patient.identifier with status (or an id or identifier), well-formed tokens and dates",
    ("mhd-profile", "ITI-68"): "a retrieve the Document Responder can honour (IHE MHD 2:3.68.4.1): GET the "
    "attachment.url of a DocumentReference",
}


_FAMILY_REQUIRES: Final = {
    "transport": "a request in the binding this endpoint serves",
    "schema": "the official IHE XSDs, for SOAP Bodies",
    "security": "an authenticated request",
    "metadata": "the XDS metadata rules: ITI-41, ITI-57 and ITI-65 mapped to XDS; the stored query's parameters "
    "(ITI-18); a well-formed retrieve request (ITI-43)",
    "mhd-profile": "the IHE MHD profile: ITI-65 bundles, ITI-66 / ITI-67 search parameters, ITI-68 retrieves",
}


def _requires(family: str, key: str) -> str:
    """What ``family`` requires of a message of ``key`` (a transport or a transaction)."""
    return _REQUIRES.get((family, key)) or _FAMILY_REQUIRES[family]


@dataclass(slots=True)
class Check:
    """One rule family's result for one message.

    Attributes:
        status: passed, failed, not-run or not-applicable.
        requires: what the rules require, for a person.
        detail: what was seen (why it passed, why it did not run).
        failures: the broken rules (errors), each with its code, path and message.
        warnings: what the rules flag without failing the message.
    """

    status: CheckStatus
    requires: str
    detail: str = ""
    failures: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @classmethod
    def of(cls, requires: str, problems: Iterable[Problem], *, detail: str = "") -> Check:
        """``failed`` when a problem is an error, else ``passed``; warnings are listed either way."""
        found = list(problems)
        errors = [p for p in found if p.is_error]
        warnings = [p for p in found if not p.is_error]
        status = CheckStatus.FAILED if errors else CheckStatus.PASSED
        return cls(status, requires, detail, errors, warnings)

    @classmethod
    def not_run(cls, requires: str, why: str) -> Check:
        return cls(CheckStatus.NOT_RUN, requires, why)

    @classmethod
    def not_applicable(cls, requires: str, why: str) -> Check:
        return cls(CheckStatus.NOT_APPLICABLE, requires, why)

    def to_json(self) -> dict[str, Any]:
        """The check as stored and reported (messages and paths masked)."""
        return {
            "status": self.status.value,
            "requires": self.requires,
            "detail": mask_ssin(self.detail),
            "failures": [_problem_json(p) for p in self.failures],
            "warnings": [_problem_json(p) for p in self.warnings],
        }


def _problem_json(problem: Problem) -> dict[str, str]:
    return {"code": problem.code, "path": mask_ssin(problem.path), "message": mask_ssin(problem.message)}


@dataclass(slots=True)
class GradedMessage:
    """One received message, graded: what the store keeps of it."""

    received: str
    transport: str
    transaction: str
    path: str
    caller: str
    checks: dict[str, Check]
    answer: dict[str, Any]
    excerpt: str

    @property
    def verdict(self) -> str:
        """``failed`` when any check failed, else ``passed``."""
        return "failed" if any(ch.status is CheckStatus.FAILED for ch in self.checks.values()) else "passed"

    def row(self) -> dict[str, Any]:
        """The ``connector_messages`` columns."""
        return {
            "received": self.received,
            "transport": self.transport,
            "transaction_name": self.transaction,
            "path": mask_ssin(self.path),
            "caller": mask_ssin(self.caller),
            "verdict": self.verdict,
            "checks": json.dumps({name: self.checks[name].to_json() for name in FAMILIES}, ensure_ascii=False),
            "answer": json.dumps(self.answer, ensure_ascii=False),
            "excerpt": self.excerpt,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    """The stored time format: ISO 8601 UTC with microseconds and ``Z`` (fixed width, so it sorts as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalise_since(text: str) -> str:
    """``since`` as stored times are written (a naive time is UTC).

    Raises:
        ValueError: not an ISO 8601 date or date-time.
    """
    # an unencoded "+01:00" arrives as " 01:00" (a form-encoded query reads "+" as a space)
    cleaned = re.sub(r" (\d{2}(?::?\d{2})?)$", r"+\1", text.strip())
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(
            f"since={text!r} is not an ISO 8601 date-time: use e.g. 2025-01-15T10:00:00Z or 2025-01-15"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _stamp(moment)


# ================================================================================================ callers


def describe_caller(caller: Caller) -> str:
    """A printable description of a verified caller: subject and role; a patient's SSIN masked."""
    subject = caller.subject
    who = mask_ssin(subject) if caller.ssin or subject.startswith("ssin:") else subject
    return f"{who} ({caller.role})" if caller.role else who


def _describe_claims(claims: Mapping[str, Any]) -> str:
    subject = str(claims.get("sub") or claims.get("iss") or "unknown subject")
    who = mask_ssin(subject) if claims.get("ssin") or subject.startswith("ssin:") else subject
    role = claims.get("profession") or claims.get("kind")
    return f"{who} ({role})" if isinstance(role, str) and role else who


def _jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT, read WITHOUT verifying it (only to name a caller the hub already judged)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(raw)
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


# ================================================================================================ SOAP


@dataclass(slots=True)
class SoapTrace:
    """What the SOAP pipeline learnt about one request, step by step (filled in by
    :class:`~rsb_connector.hub.app.SoapPipeline` when connector validation is on)."""

    endpoint: str
    path: str
    received: datetime
    content_type: str = ""
    root: bytes | None = None
    mtom: bool = False
    attachments: dict[str, ContentDigest] = field(default_factory=dict)
    message: soap.SoapMessage | None = None
    """The message as parsed, before authentication (what the connector sent)."""
    caller: Caller | None = None
    signed: bool = False
    authenticated: bool = False
    security_error: WsSecurityError | None = None
    answered: bool = False
    status: str = ""
    problems: list[Problem] = field(default_factory=list)
    request_problems: list[Problem] | None = None
    fault_stage: str | None = None
    fault_code: str = ""
    fault_reason: str = ""
    http_status: int = 500

    def on_receive(self, root: bytes, mtom: MtomMessage | None) -> None:
        """The root part (or plain body) and the attachments' digests (before they are adopted or deleted)."""
        self.root = root
        if mtom is not None:
            self.mtom = True
            self.attachments = {cid: att.digest for cid, att in mtom.attachments.items()}

    def on_parse(self, message: soap.SoapMessage) -> None:
        """The envelope as parsed, before authentication."""
        self.message = message

    def on_authenticated(self, caller: Caller, *, signed: bool) -> None:
        """The authenticator accepted the message (``signed``: a signature was verified)."""
        self.caller = caller
        self.signed = signed
        self.authenticated = True

    def on_security_error(self, error: WsSecurityError) -> None:
        """The authenticator refused the message."""
        self.security_error = error

    def on_answer(
        self, status: str, problems: Sequence[Problem], request_problems: Sequence[Problem] | None = None
    ) -> None:
        """The transaction's answer: its status, every problem answered, and those that are faults of the request
        itself (``None``: all of them)."""
        self.answered = True
        self.status = status
        self.problems = list(problems)
        self.request_problems = list(request_problems) if request_problems is not None else None

    def on_fault(self, code: str, reason: str) -> None:
        """The pipeline answered with a SOAP Fault (at the step reached so far)."""
        if self.message is None:
            self.fault_stage = "receive"
        elif self.security_error is not None:
            self.fault_stage = "security"
        else:
            self.fault_stage = "dispatch"
        self.fault_code = code
        self.fault_reason = reason

    @property
    def transaction(self) -> str:
        """ITI-41/18/43/57 from the (unverified) ``wsa:Action``, else from the Body; ``SOAP`` when neither says."""
        if self.message is not None:
            if self.message.action in _ACTIONS:
                return _ACTIONS[self.message.action]
            payload = self.message.payload
            if payload is not None and payload.tag in _PAYLOADS and not self.message.action:
                return _PAYLOADS[payload.tag]
        return "SOAP"


def _has_security_header(message: soap.SoapMessage) -> bool:
    return any(block.tag == f"{{{WSSE}}}Security" for block in message.header_blocks)


def _xop_resolved(payload: etree._Element) -> etree._Element:
    """A copy of ``payload`` where each ``xop:Include`` is replaced by placeholder base64 text: the XSDs type
    ``xdsb:Document`` as base64Binary, and the attachment's bytes are not needed to check the structure."""
    resolved = copy.deepcopy(payload)
    for include in list(resolved.iter(XOP_INCLUDE)):
        parent = include.getparent()
        if parent is None:
            continue
        parent.remove(include)
        parent.text = (parent.text or "").strip() + "AA=="
    return resolved


def _local_rules(
    transaction: str,
    payload: etree._Element,
    attachments: Mapping[str, ContentDigest],
    value_sets: CodeChecker | None,
) -> list[Problem] | None:
    """The request's own rules, run on a message the hub refused before processing it (None: not an XDS
    transaction this module knows)."""
    if transaction == "ITI-41":
        parsed = iti41.parse_request(payload)
        submission = copy.deepcopy(parsed.submission)
        declared = list(submission.document_ids)
        submission.document_ids = declared + [d for d in parsed.documents if d not in declared]
        problems = list(parsed.problems) + validate_submission(submission, value_sets=value_sets)
        entries = {e.entry_uuid: e for e in submission.entries}
        for doc_id, part in parsed.documents.items():
            entry = entries.get(doc_id)
            if entry is None:
                continue
            computed: ContentDigest | None = None
            if isinstance(part, XopRef):
                computed = attachments.get(part.cid)
            elif isinstance(part, Inline):
                computed = digest(part.data)
            if computed is not None:
                problems += validate_hash_and_size(entry, computed, path=f"DocumentEntry[{doc_id}]")
        return problems
    if transaction == "ITI-18":
        try:
            iti18.parse_request(payload)
        except QueryError as exc:
            return list(exc.problems)
        return []
    if transaction == "ITI-43":
        try:
            iti43.parse_request(payload)
        except iti43.RetrieveRequestError as exc:
            return list(exc.problems)
        return []
    if transaction == "ITI-57":
        return iti57.parse_status_update(payload)[2]
    return None


def _document_placeholder(match: re.Match[str]) -> str:
    content = match.group(2)
    if not content.strip() or content.startswith("[document content"):
        return match.group(0)
    return f"{match.group(1)}[document content: {len(content.strip())} characters, not kept]"


def _soap_excerpt(trace: SoapTrace, limit: int) -> str:
    lines = [f"POST {trace.path}", f"Content-Type: {trace.content_type or '(none)'}"]
    for cid, att in trace.attachments.items():
        lines.append(f"[MTOM attachment cid:{cid}: {att.size} bytes, not kept]")
    if trace.message is not None:
        envelope = copy.deepcopy(trace.message.envelope)
        for security in envelope.iter(f"{{{WSSE}}}Security"):
            # The security check grades it; its certificate and signature would crowd the metadata out.
            parts = [etree.QName(child).localname for child in security if isinstance(child.tag, str)]
            for child in list(security):
                security.remove(child)
            security.text = f"[{', '.join(parts) or 'empty'}: graded by the security check, not kept]"
        for document in envelope.iter(f"{{{c.XDSB}}}Document"):
            text = (document.text or "").strip()
            if text:
                document.text = f"[document content: {len(text)} base64 characters, not kept]"
        body = etree.tostring(envelope, encoding="unicode")
        # and any other element named Document (another namespace, a misplaced one): its content is not kept either
        body = _XML_DOCUMENT.sub(_document_placeholder, body)
    elif trace.root is not None:
        body = trace.root[:_RAW_LIMIT].decode("utf-8", errors="replace")
        body = _XML_DOCUMENT.sub(_document_placeholder, body)
        if len(trace.root) > _RAW_LIMIT:
            body += f"\n… [{len(trace.root) - _RAW_LIMIT} more bytes not kept]"
    else:
        body = "(the message body could not be read)"
    return redact("\n".join(lines) + "\n\n" + body, limit)


# ================================================================================================ FHIR


@dataclass(slots=True)
class FhirTrace:
    """One FHIR (or token) request as it passed through the recording middleware."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    received: datetime
    body: bytearray = field(default_factory=bytearray)
    body_size: int = 0
    bundle: ParsedBundle | None = None
    """The parsed ITI-65 bundle, handed over by the hub (:func:`observe_bundle`)."""
    http_status: int = 500
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytearray = field(default_factory=bytearray)
    capture_response: bool = False
    recorded: bool = False

    @property
    def transport(self) -> str:
        return "oauth" if self.path == _TOKEN_PATH else "fhir"

    @property
    def transaction(self) -> str:
        """ITI-65/66/67/68, ``token``, ``FHIR metadata`` or ``FHIR`` (any other FHIR request)."""
        if self.path == _TOKEN_PATH:
            return "token"
        rest = self.path[len(_FHIR_PREFIX) :].strip("/")
        first = rest.split("/", 1)[0]
        if not rest:
            return "ITI-65" if self.method == "POST" else "FHIR"
        if "$" in rest:
            return "FHIR"  # an operation ($hold-back, $release, $check-access): not an MHD transaction
        return {
            "DocumentReference": "ITI-67",
            "List": "ITI-66",
            "Binary": "ITI-68",
            "metadata": "FHIR metadata",
        }.get(first, "FHIR")

    def add_body(self, chunk: bytes) -> None:
        self.body_size += len(chunk)
        room = _CAPTURE_LIMIT - len(self.body)
        if room > 0:
            self.body += chunk[:room]

    def add_response(self, chunk: bytes) -> None:
        room = _CAPTURE_LIMIT - len(self.response_body)
        if room > 0:
            self.response_body += chunk[:room]

    def response_json(self) -> dict[str, Any] | None:
        """The answer's JSON (an OperationOutcome, a transaction-response, a token error), when captured."""
        if not self.response_body:
            return None
        try:
            data = json.loads(bytes(self.response_body))
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None


_CURRENT: contextvars.ContextVar[FhirTrace | None] = contextvars.ContextVar("rsb_connector_trace", default=None)


def observe_bundle(parsed: ParsedBundle) -> None:
    """Hand the parsed ITI-65 bundle to the connector-validation trace of the request in progress, so that its
    profile checks are graded as the hub ran them. A no-op (one context variable read) when the hub runs without
    connector validation."""
    trace = _CURRENT.get()
    if trace is not None:
        trace.bundle = parsed


def _answer_problems(data: Mapping[str, Any] | None) -> list[Problem]:
    """The problems of a FHIR answer: an OperationOutcome's issues, or the warnings of a transaction-response."""
    if data is None:
        return []
    if data.get("resourceType") == "OperationOutcome":
        return operation_outcome_to_problems(data)
    if data.get("resourceType") == "Bundle":
        entries = data.get("entry")
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            response = entries[0].get("response")
            outcome = response.get("outcome") if isinstance(response, dict) else None
            if isinstance(outcome, dict):
                return operation_outcome_to_problems(outcome)
    return []


def _outcome_message(data: Mapping[str, Any] | None) -> str:
    if data is None:
        return ""
    if "error" in data:
        return f"{data.get('error')}: {data.get('error_description', '')}"
    issues = data.get("issue")
    if isinstance(issues, list):
        texts = [str(i.get("diagnostics", "")) for i in issues if isinstance(i, dict) and i.get("diagnostics")]
        return "; ".join(texts)
    return ""


def _fhir_excerpt(trace: FhirTrace, limit: int) -> str:
    line = f"{trace.method} {trace.path}" + (f"?{trace.query}" if trace.query else "")
    lines = [line]
    for name, label in (("content-type", "Content-Type"), ("accept", "Accept"), ("authorization", "Authorization")):
        if name in trace.headers:
            lines.append(f"{label}: {trace.headers[name]}")
    text = bytes(trace.body).decode("utf-8", errors="replace")
    text = _JSON_DATA.sub(
        lambda m: f"{m.group(1)}[document content: {len(m.group(2))} base64 characters, not kept]{m.group(3)}", text
    )
    if trace.body_size > len(trace.body):
        text = _JSON_OPEN_DATA.sub(lambda m: f"{m.group(1)}[document content, not kept]", text)
        text += f"\n… [{trace.body_size - len(trace.body)} more bytes not kept]"
    return redact("\n".join(lines) + ("\n\n" + text if text else ""), limit)


# ================================================================================================ the validator


class ConnectorValidator:
    """Grades and records the messages a hub receives (module docstring).

    Args:
        store: the hub's store (rows in ``connector_messages``).
        schemas: the folder of the official IHE XDS schemas (``ihe-xds-schemas``, the one holding ``iti/schema``);
            None: the schema check is not run.
        value_sets: the registry's value sets, for the local rules run on refused messages.
        keep: how many recent messages to keep.
        excerpt_limit: characters kept of each request.

    Raises:
        SchemaUnavailable: ``schemas`` does not hold the XSDs, or they do not load.
    """

    def __init__(
        self,
        store: Store,
        *,
        schemas: Path | None = None,
        value_sets: CodeChecker | None = None,
        keep: int = DEFAULT_KEEP,
        excerpt_limit: int = EXCERPT_LIMIT,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.store = store
        self.schema_dir = Path(schemas).expanduser().resolve() if schemas is not None else None
        self.schema = load_schema(self.schema_dir) if self.schema_dir is not None else None
        self.value_sets = value_sets
        self.keep = keep
        self.excerpt_limit = excerpt_limit
        self.clock = clock

    # ------------------------------------------------------------------------------------------ statements
    @property
    def schema_statement(self) -> str:
        """What the report says about the schema check."""
        if self.schema_dir is None:
            return NOT_RUN_NOTE
        return (
            f"schema check: SOAP Bodies validated against the official IHE XDS.b / ebRS 3.0 XSDs in {self.schema_dir}"
        )

    def startup_line(self) -> str:
        """``connector validation: on (schema check: <dir> | not run)``."""
        return f"connector validation: on (schema check: {self.schema_dir if self.schema_dir else 'not run'})"

    def records(self, path: str) -> bool:
        """Whether requests to ``path`` are recorded by the middleware (FHIR and the token endpoint; SOAP is
        recorded by its pipeline)."""
        return path in (_TOKEN_PATH, _FHIR_PREFIX) or path.startswith(_FHIR_PREFIX + "/")

    # ------------------------------------------------------------------------------------------ SOAP
    def soap_trace(self, request: Request, endpoint: str) -> SoapTrace:
        """A new trace for a SOAP request arriving now."""
        return SoapTrace(
            endpoint=endpoint,
            path=request.url.path,
            received=self.clock(),
            content_type=request.headers.get("content-type", ""),
        )

    async def record_soap(self, trace: SoapTrace, http_status: int) -> None:
        """Grade and store a SOAP request (in the thread pool); never raises."""
        trace.http_status = http_status
        await self._record(lambda: self.grade_soap(trace))

    def grade_soap(self, trace: SoapTrace) -> GradedMessage:
        """The checks of a SOAP request, from what its pipeline found."""
        transaction = trace.transaction
        message = trace.message
        payload = message.payload if message is not None else None
        checks: dict[str, Check] = {}

        # transport
        requires = _requires("transport", "soap")
        if trace.fault_stage in ("receive", "dispatch"):
            checks["transport"] = Check(
                CheckStatus.FAILED,
                requires,
                "the hub answered with a SOAP Fault",
                [Problem(trace.fault_code or "soap:Sender", trace.fault_reason, "Envelope")],
            )
        elif message is None:
            checks["transport"] = Check.not_run(requires, "the hub could not finish reading the message")
        else:
            packaging = f"MTOM/XOP with {len(trace.attachments)} attachment(s)" if trace.mtom else "plain SOAP 1.2"
            checks["transport"] = Check(
                CheckStatus.PASSED, requires, f"{packaging}; wsa:Action {message.action} served at {trace.path}"
            )

        # schema
        requires = _requires("schema", "soap")
        if self.schema is None:
            checks["schema"] = Check.not_run(requires, NOT_RUN_NOTE)
        elif message is None:
            checks["schema"] = Check.not_run(requires, "the message could not be read as a SOAP envelope")
        elif payload is None:
            checks["schema"] = Check(
                CheckStatus.FAILED, requires, "", [Problem("XSD", "the SOAP Body is empty", "Body")]
            )
        else:
            errors = validate(_xop_resolved(payload), schema=self.schema)
            name = etree.QName(payload).localname
            checks["schema"] = Check.of(
                requires,
                [Problem("XSD", text, f"Body/{name}") for text in errors],
                detail=f"{name} validated against the XSDs in {self.schema_dir}"
                + (" (line numbers count in the Body element, pretty-printed)" if errors else ""),
            )

        # security
        requires = _requires("security", "soap")
        caller = "unsigned"
        if trace.security_error is not None:
            error = trace.security_error
            has_header = message is not None and _has_security_header(message)
            caller = "invalid signature" if has_header else "unsigned"
            checks["security"] = Check(
                CheckStatus.FAILED,
                requires,
                "the hub refused the message (SOAP Fault with this WS-Security code)",
                [Problem(error.fault_code, error.message, "Header/wsse:Security")],
            )
        elif trace.authenticated and trace.signed and trace.caller is not None:
            caller = describe_caller(trace.caller)
            checks["security"] = Check(
                CheckStatus.PASSED,
                requires,
                f"signed by {caller}: signature valid, certificate chained to the hub's trust store, Timestamp "
                "fresh, MessageID not replayed; the hub processed only the signed parts",
            )
        elif trace.authenticated:
            if message is not None and _has_security_header(message):
                caller = "signature not verified"
                checks["security"] = Check.not_run(
                    requires, "the hub runs without a PKI and did not verify the signature"
                )
            else:
                checks["security"] = Check(
                    CheckStatus.FAILED,
                    requires,
                    "the hub accepted the message only because it runs with --allow-unsigned",
                    [
                        Problem(
                            "wsse:InvalidSecurity",
                            "the message is not signed: the Brussels Health Network requires a WS-Security "
                            "signature on every SOAP request",
                            "Header/wsse:Security",
                        )
                    ],
                )
        else:
            checks["security"] = Check.not_run(requires, "the hub refused the message before checking its signature")

        # metadata
        requires = _requires("metadata", transaction)
        if transaction not in ("ITI-41", "ITI-18", "ITI-43", "ITI-57"):
            checks["metadata"] = Check.not_run(requires, "the message is no XDS transaction the hub serves here")
        elif trace.answered:
            rules = trace.request_problems if trace.request_problems is not None else trace.problems
            own = [p for p in rules if p.code not in POLICY_CODES]
            others = sorted({p.code for p in trace.problems if p.is_error} - {p.code for p in own if p.is_error})
            detail = "the hub's checks found no problem in the request" if not own else "found by the hub"
            if others:
                detail += (
                    f"; the hub also answered {', '.join(others)}: its decision about its data or its policy, "
                    "not a rule of the message"
                )
            checks["metadata"] = Check.of(requires, own, detail=detail)
        elif payload is not None:
            local = _local_rules(transaction, payload, trace.attachments, self.value_sets)
            if local is None:
                checks["metadata"] = Check.not_run(requires, "no rules for this message")
            else:
                checks["metadata"] = Check.of(
                    requires,
                    local,
                    detail="checked on the message as received: the hub refused it before processing, so the "
                    "registry's own checks (patient known, duplicates, consent) did not run",
                )
        else:
            checks["metadata"] = Check.not_run(requires, "the message has no readable Body")

        checks["mhd-profile"] = Check.not_applicable(
            _requires("mhd-profile", transaction), "a SOAP message: the MHD profile applies to FHIR requests"
        )

        answer: dict[str, Any] = {"http_status": trace.http_status}
        if trace.fault_stage is not None:
            answer.update(status="Fault", errors=[trace.fault_code] if trace.fault_code else [])
            answer["message"] = mask_ssin(trace.fault_reason)[:500]
        elif trace.answered:
            answer.update(
                status=trace.status.rsplit(":", 1)[-1],
                errors=sorted({p.code for p in trace.problems if p.is_error}),
                message="",
            )
        else:
            answer.update(status="internal error", errors=[], message="the hub failed to process the message")
        return GradedMessage(
            received=_stamp(trace.received),
            transport="soap",
            transaction=transaction,
            path=trace.path,
            caller=caller,
            checks=checks,
            answer=answer,
            excerpt=_soap_excerpt(trace, self.excerpt_limit),
        )

    # ------------------------------------------------------------------------------------------ FHIR
    def fhir_trace(self, scope: Scope) -> FhirTrace:
        """A new trace for an HTTP request arriving now (from its ASGI scope)."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            headers[raw_name.decode("latin-1").lower()] = raw_value.decode("latin-1")
        return FhirTrace(
            method=str(scope.get("method", "GET")).upper(),
            path=str(scope.get("path", "")),
            query=bytes(scope.get("query_string", b"")).decode("latin-1"),
            headers=headers,
            received=self.clock(),
        )

    async def record_fhir(self, trace: FhirTrace) -> None:
        """Grade and store a FHIR or token request (in the thread pool); never raises."""
        trace.recorded = True
        await self._record(lambda: self.grade_fhir(trace))

    def grade_fhir(self, trace: FhirTrace) -> GradedMessage:
        """The checks of a FHIR or token request, from the hub's answer and the parsed bundle."""
        transaction = trace.transaction
        kind = trace.transport
        status = trace.http_status
        data = trace.response_json()
        answered = _answer_problems(data) if kind == "fhir" else []
        challenged = "www-authenticate" in trace.response_headers
        checks: dict[str, Check] = {}

        # transport
        requires = _requires("transport", kind)
        if status in (405, 406, 413, 415):
            checks["transport"] = Check(
                CheckStatus.FAILED,
                requires,
                f"the hub answered {status}",
                [Problem(f"HTTP {status}", _outcome_message(data) or f"refused with {status}", trace.path)],
            )
        else:
            checks["transport"] = Check(CheckStatus.PASSED, requires, f"{trace.method} {trace.path} accepted")

        checks["schema"] = Check.not_applicable(
            _requires("schema", kind),
            "FHIR JSON has no XSD: for ITI-65 the mhd-profile check validates each resource against the FHIR R4 models"
            if kind == "fhir"
            else "a form-encoded token request has no XSD",
        )

        # security
        caller, checks["security"] = self._fhir_security(trace, transaction, data, challenged)
        security_failed = checks["security"].status is CheckStatus.FAILED and (status in (400, 401) and challenged)

        # metadata and mhd-profile
        checks["metadata"], checks["mhd-profile"] = self._fhir_rules(trace, transaction, answered, security_failed)

        answer = {
            "http_status": status,
            "status": str(data.get("resourceType") or data.get("error") or "") if data else "",
            "errors": sorted({p.code for p in answered if p.is_error}),
            "message": mask_ssin(_outcome_message(data))[:500] if status >= 400 else "",
        }
        return GradedMessage(
            received=_stamp(trace.received),
            transport=kind,
            transaction=transaction,
            path=trace.path,
            caller=caller,
            checks=checks,
            answer=answer,
            excerpt=_fhir_excerpt(trace, self.excerpt_limit),
        )

    def _fhir_security(
        self, trace: FhirTrace, transaction: str, data: Mapping[str, Any] | None, challenged: bool
    ) -> tuple[str, Check]:
        status = trace.http_status
        if transaction == "token":
            requires = _requires("security", "oauth")
            form = dict(parse_qsl(bytes(trace.body).decode("latin-1"), keep_blank_values=True))
            claims = _jwt_claims(form.get("client_assertion", ""))
            if status == 200:
                who = _describe_claims(claims) if claims else "unknown client"
                return who, Check(CheckStatus.PASSED, requires, f"token issued to {who}")
            error = str((data or {}).get("error") or f"HTTP {status}")
            description = str((data or {}).get("error_description") or "")
            who = "invalid client assertion" if form.get("client_assertion") else "no client assertion"
            return who, Check(CheckStatus.FAILED, requires, "the hub refused the token request", [
                Problem(error, description or f"refused with {status}", "client_assertion")
            ])  # fmt: skip
        requires = _requires("security", "fhir")
        if transaction == "FHIR metadata":
            return "public", Check.not_applicable(requires, "the CapabilityStatement is public: no token needed")
        header = trace.headers.get("authorization")
        if header is None:
            if status == 401:
                return "no token", Check(
                    CheckStatus.FAILED,
                    requires,
                    "the hub refused the request (401)",
                    [Problem("401", "no Authorization header: get a token at /oauth2/token", "Authorization")],
                )
            return "no token", Check(
                CheckStatus.FAILED,
                requires,
                "the hub accepted the request only because it runs with --allow-unsigned",
                [
                    Problem(
                        "401",
                        "no Authorization header: the Brussels Health Network requires a bearer token on every "
                        "FHIR request",
                        "Authorization",
                    )
                ],
            )
        if challenged and status in (400, 401):
            challenge = trace.response_headers.get("www-authenticate", "")
            found = re.search(r'error="([^"]*)"', challenge)
            code = found.group(1) if found else str(status)
            return "invalid token", Check(
                CheckStatus.FAILED,
                requires,
                f"the hub refused the token ({status})",
                [Problem(code, _outcome_message(data) or challenge, "Authorization")],
            )
        match = _BEARER.fullmatch(header)
        claims = _jwt_claims(match.group(1)) if match else None
        who = _describe_claims(claims) if claims else "token holder"
        return who, Check(CheckStatus.PASSED, requires, f"a valid bearer token of {who}")

    def _fhir_rules(
        self, trace: FhirTrace, transaction: str, answered: Sequence[Problem], security_failed: bool
    ) -> tuple[Check, Check]:
        status = trace.http_status
        metadata_requires = _requires("metadata", transaction)
        profile_requires = _requires("mhd-profile", transaction)
        refused_early = security_failed or status in (405, 406, 413, 415)
        if transaction == "ITI-65":
            bundle = trace.bundle
            if bundle is None:
                why = "the hub refused the request before reading the bundle"
                return Check.not_run(metadata_requires, why), Check.not_run(profile_requires, why)
            profile = Check.of(
                profile_requires,
                bundle.problems,
                detail=f"profile {bundle.profile.name if bundle.profile else '(none)'}"
                if bundle.ok
                else "the hub refused the bundle",
            )
            if not bundle.ok:
                return (
                    Check.not_run(
                        metadata_requires,
                        "the bundle failed the MHD profile checks: the hub maps a bundle to XDS and runs the "
                        "ITI-41 rules only on one that passes them",
                    ),
                    profile,
                )
            seen = {(p.code, p.path, p.message) for p in bundle.problems}
            registry = [p for p in answered if (p.code, p.path, p.message) not in seen]
            own = [p for p in registry if p.code not in POLICY_CODES]
            others = sorted({p.code for p in registry if p.is_error} - {p.code for p in own if p.is_error})
            detail = "the hub's checks found no problem" if not own else "found by the hub"
            if others:
                detail += f"; the hub also answered {', '.join(others)}: its policy decision, not a rule of the bundle"
            return Check.of(metadata_requires, own, detail=detail), profile
        metadata = Check.not_applicable(metadata_requires, "XDS metadata rules apply to ITI-41, ITI-57 and ITI-65")
        if transaction in ("ITI-66", "ITI-67", "ITI-68"):
            if refused_early:
                return metadata, Check.not_run(profile_requires, "the hub refused the request before reading it")
            if status == 400 and transaction != "ITI-68":
                return metadata, Check.of(
                    profile_requires,
                    answered or [Problem("HTTP 400", "the search was refused", trace.path)],
                    detail="the hub refused the search",
                )
            return metadata, Check(CheckStatus.PASSED, profile_requires, f"the hub answered {status}")
        return metadata, Check.not_applicable(profile_requires, "not an MHD transaction")

    # ------------------------------------------------------------------------------------------ storage
    async def _record(self, grade: Callable[[], GradedMessage]) -> None:
        def work() -> None:
            graded = grade()
            with self.store.write() as w:
                w.add_connector_message(graded.row(), keep=self.keep)

        try:
            await run_in_threadpool(work)
        except Exception:  # recording must never change the answer
            log.exception("connector validation: recording a message failed")

    def report(self, since: str | None = None) -> dict[str, Any]:
        """The report JSON (module docstring); ``since`` in the stored format (:func:`normalise_since`)."""
        with self.store.read() as r:
            rows = r.connector_messages(since=since)
        messages = [_message_json(row) for row in rows]
        failed = sum(1 for m in messages if m["verdict"] == "failed")
        notes = [
            self.schema_statement,
            "FHIR messages have no XSD: the mhd-profile check validates ITI-65 resources against the FHIR R4 models",
            f"the hub keeps the {self.keep} most recent messages; DELETE {REPORT_PATH} starts a new session",
        ]
        return {
            "hub": f"rsb-connector mock hub {__version__}",
            "generated": _stamp(self.clock()),
            "since": since,
            "kept": self.keep,
            "schema_check": {"run": self.schema_dir is not None, "schemas": str(self.schema_dir or "") or None},
            "notes": notes,
            "summary": {"messages": len(messages), "passed": len(messages) - failed, "failed": failed},
            "messages": messages,
        }

    def clear(self) -> int:
        """Forget every recorded message; return how many there were."""
        with self.store.write() as w:
            return w.clear_connector_messages()


def _message_json(row: Mapping[str, Any]) -> dict[str, Any]:
    transaction = str(row["transaction_name"])
    info = TRANSACTIONS.get(transaction, TRANSACTIONS["FHIR"] if row["transport"] != "soap" else TRANSACTIONS["SOAP"])
    return {
        "id": f"MSG-{int(row['id']):06d}",
        "seq": int(row["id"]),
        "received": row["received"],
        "transport": row["transport"],
        "transaction": transaction,
        "name": info.name,
        "profile": info.profile,
        "actor": info.actor,
        "reference": info.reference,
        "path": row["path"],
        "caller": row["caller"],
        "verdict": row["verdict"],
        "checks": json.loads(row["checks"]),
        "answer": json.loads(row["answer"]),
        "excerpt": row["excerpt"],
    }


# ================================================================================================ middleware


class RecordingMiddleware:
    """ASGI middleware recording FHIR and token requests: the request body is captured as it is read, the answer
    as it is sent, and the message is graded and stored before the last byte of the answer leaves (so a client
    that asks for the report right after its request finds it)."""

    def __init__(self, app: ASGIApp, validator: ConnectorValidator) -> None:
        self.app = app
        self.validator = validator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.validator.records(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        trace = self.validator.fhir_trace(scope)
        token = _CURRENT.set(trace)

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                trace.add_body(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                trace.http_status = int(message["status"])
                trace.response_headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])
                }
                media = trace.response_headers.get("content-type", "")
                trace.capture_response = "json" in media and (
                    trace.http_status >= 400 or trace.transaction in ("ITI-65", "token")
                )
            elif message["type"] == "http.response.body":
                if trace.capture_response:
                    trace.add_response(message.get("body", b""))
                if not message.get("more_body", False) and not trace.recorded:
                    await self.validator.record_fhir(trace)
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except Exception:
            if not trace.recorded:
                trace.http_status = 500
                await self.validator.record_fhir(trace)
            raise
        finally:
            _CURRENT.reset(token)


# ================================================================================================ routes


def report_routes(validator: ConnectorValidator | None, *, path: str = REPORT_PATH) -> list[Route]:
    """``GET`` and ``DELETE`` ``/conformance/report`` (module docstring); 404 with :data:`OFF_MESSAGE` when
    ``validator`` is None."""

    async def endpoint(request: Request) -> Response:
        if validator is None:
            return JSONResponse({"error": "connector-validation-off", "message": OFF_MESSAGE}, status_code=404)
        if request.method == "DELETE":
            deleted = await run_in_threadpool(validator.clear)
            return JSONResponse(
                {"deleted": deleted, "message": f"a new session starts: {deleted} recorded message(s) forgotten"}
            )
        since_text = request.query_params.get("since")
        try:
            since = normalise_since(since_text) if since_text else None
        except ValueError as exc:
            return JSONResponse({"error": "invalid-since", "message": str(exc)}, status_code=400)
        report = await run_in_threadpool(validator.report, since)
        return JSONResponse(report, headers={"cache-control": "no-store"})

    return [Route(path, endpoint, methods=["GET", "DELETE"], name="conformance-report")]

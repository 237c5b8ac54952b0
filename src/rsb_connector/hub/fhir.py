"""The mock hub's IHE MHD face (FHIR R4): Document Recipient and Document Responder over the XDS registry.

MHD and XDS share one :class:`~rsb_connector.hub.registry.Registry` and one store: a document published with ITI-41
is found with ITI-67 and retrieved with ITI-68, and one published with ITI-65 is found with ITI-18 and retrieved
with ITI-43. The FHIR resources are views of the XDS objects, built and read by the shared binding
(:mod:`rsb_connector.mhd`); nothing FHIR-specific is stored.

Routes (under ``base_path``, ``/fhir`` by default), mounted with :func:`fhir_routes`:

======================================  =====================================================================
``POST /fhir`` and ``POST /fhir/``      ITI-65 Provide Document Bundle (transaction Bundle, all or nothing)
``GET /fhir/DocumentReference``         ITI-67 Find Document References (also ``POST .../_search``, form body)
``GET /fhir/DocumentReference/<id>``    read one DocumentReference
``GET /fhir/List``                      ITI-66 Find Document Lists: SubmissionSets (also ``POST .../_search``)
``GET /fhir/List/<id>``                 read one SubmissionSet List
``GET /fhir/Binary/<id>``               ITI-68 Retrieve Document (the ``attachment.url`` of a DocumentReference)
``GET /fhir/metadata``                  the CapabilityStatement (no authentication: clients discover OAuth here)
======================================  =====================================================================

Break-the-glass: a professional reading in an emergency adds ``X-Break-The-Glass: <reason of 10-200 characters>``
to a reading request (ITI-66, ITI-67, a DocumentReference read, ITI-68) beside the bearer token
(:func:`~rsb_connector.hub.auth.with_break_the_glass`). The consent enforcement then passes the therapeutic link and
access matrix barriers (never the consent, an exclusion, a disallow or a very restricted document) and audits the
access with the reason, which the patient sees in their trail (``GET /fhir/AuditEvent``, ``purposeOfUse`` BTG). A
reason of another length is 403 (``LocalPolicyRestrictionError``, rule ``break-the-glass-reason``), audited under the
patient concerned so that they see the attempt: the patient searched for (ITI-66, ITI-67), or the patient of the
DocumentReference, List or document asked for by id when it exists (a DocumentReference read, ITI-68) — the caller
gets the same 403 either way, so it learns nothing of what exists; a patient, organisation or anonymous caller
sending the header is 403; the header on ITI-65 is 400 (publishing needs the publisher's own therapeutic link).

Audit: one request, one audit event per patient concerned, labelled with the MHD transaction — ``ITI-67`` for a
DocumentReference search or read, ``ITI-66`` for a List search or read (action ``find``), ``ITI-68`` for a document
read (action ``read``), ``ITI-65`` for a submission — however many registry queries the request runs (the
relationships of the documents found, the members of the submission sets); those follow-up queries answer through
the request's access view, so they show nothing the caller may not see, and add no events of their own.

Conventions:

- **Ids.** The FHIR id of a DocumentReference, of its Binary and of a SubmissionSet List is the UUID of the XDS
  entryUUID (:func:`~rsb_connector.mhd.mapping.resource_id_for`): ``urn:uuid:5f0c…`` is ``DocumentReference/5f0c…``
  and its document is at ``<base>/Binary/5f0c…``. ITI-65 answers with the ids the registry assigned.
- **Patients.** The hub's Patient ids are SSINs: ``patient=Patient/87041213797`` (or a full URL ending so, or the
  bare SSIN) means the patient with that SSIN; ``patient.identifier=<ssin system>|<ssin>`` is the same patient. An
  ITI-65 subject may reference ``Patient/<ssin>`` or carry the SSIN identifier; any other literal reference that is
  not a Patient of the bundle is a bad patient link (``XDSUnknownPatientId``). The hub serves no Patient resources.
- **Errors** are always an OperationOutcome (``application/fhir+json``), with the XDS ``errorCode`` in
  ``issue.details`` where one applies (:mod:`rsb_connector.mhd.outcome`), never a stack trace. A refused ITI-65
  stores nothing. Statuses: 400 malformed request or search, 401 unauthenticated (from the authenticator), 403
  policy, 404 unknown, 405 method, 406 unacceptable ``Accept``, 409 duplicate/conflict, 410 deprecated, 413 body too
  large, 415 media type, 422 business rule. A refused ITI-65 bundle is never a 404: a reference in it that
  resolves to nothing (a bad patient link) is a 400.
- **Formats.** JSON only: ``application/fhir+json``, ``application/json`` (and the DSTU2 ``application/json+fhir``),
  with any parameters (``charset``, ``fhirVersion``). XML bodies are refused with 415 and XML answers with 406.

ITI-68 reading of the IHE MHD IG (2:3.68.4.2.2, Table 3.68.4.2.2-1):

- "Document is Deprecated or not available" -> **410 Gone**. A superseded (Deprecated) DocumentEntry is therefore
  *not* served over MHD, although XDS ITI-43 still retrieves it: MHD says so explicitly, and a consumer that lists
  superseded DocumentReferences learns from the 410 that a newer version exists. An entry whose content is missing
  from the repository is "not available": 410 too.
- "unable to format document in content types listed in the Accept field" -> **406**. The document is served as
  itself (its ``mimeType``, byte-exact) when ``Accept`` is absent or admits that type (``*/*``, ``type/*``, the
  type). When ``Accept`` prefers ``application/fhir+json`` (or ``application/json``) to the document's own type,
  the answer is the FHIR ``Binary`` resource with the content base64-encoded — the FHIR R4 rule for reading a
  Binary in a FHIR format — up to :data:`BINARY_RESOURCE_LIMIT` bytes; larger documents are only served as
  themselves. The IG assures only the document's own type.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import decimal
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeAlias
from urllib.parse import parse_qsl, unquote, urlencode

from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.utils import get_base64_encoder, is_primitive_type
from pydantic_core import to_jsonable_python
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from .. import __version__
from ..errors import Problem, QueryError, Severity
from ..identifiers import Cx, Ssin, parse_cx
from ..metadata.model import AssociationType, AvailabilityStatus, Code, DocumentEntry, SubmissionSet
from ..metadata.valuesets import CodeKind, ValueSets, load_value_sets
from ..mhd import constants as mc
from ..mhd.bundle import ParsedBundle, parse_provide_bundle
from ..mhd.mapping import (
    Json,
    as_json,
    entry_to_document_reference,
    resource_id_for,
    submission_set_to_list,
    system_to_scheme,
)
from ..mhd.outcome import http_status, problems_to_operation_outcome
from ..mhd.search import parse_search
from ..query import (
    FindDocuments,
    FindDocumentsByReferenceId,
    FindSubmissionSets,
    GetAssociations,
    GetDocuments,
    GetSubmissionSetAndContents,
    Query,
)
from .auth import BREAK_THE_GLASS_HEADER, with_break_the_glass
from .connector_validation import observe_bundle
from .registry import ANONYMOUS, Caller, IncomingDocument, QueryResult, Registry, RetrievedDocument

if TYPE_CHECKING:
    from .enforcement import AccessView

__all__ = [
    "BINARY_RESOURCE_LIMIT",
    "CXI_TYPES",
    "FHIR_JSON",
    "HOLD_BACK_OPERATION",
    "MAX_BUNDLE_BYTES",
    "MAX_SEARCH_BODY_BYTES",
    "RELEASE_OPERATION",
    "Authenticate",
    "capability_statement",
    "choose_representation",
    "fhir_routes",
    "resolve_patient_reference",
    "resource_json",
    "with_cxi_types",
]

log = logging.getLogger("rsb_connector.hub.fhir")

Authenticate: TypeAlias = Callable[[Request], Awaitable[Caller]]
"""Establishes who makes a FHIR request (e.g. from its bearer token); raises
:class:`starlette.exceptions.HTTPException` (401) to refuse it. The refusal is answered as an OperationOutcome with
the exception's status and headers (``WWW-Authenticate``)."""

FHIR_JSON: Final = "application/fhir+json"
"""The media type of every answer except a document served as itself."""
MAX_BUNDLE_BYTES: Final = 50 * 1024 * 1024
"""Default largest ITI-65 request body (413 above)."""
MAX_SEARCH_BODY_BYTES: Final = 1024 * 1024
"""Largest form body of a ``POST _search`` (413 above)."""
BINARY_RESOURCE_LIMIT: Final = 16 * 1024 * 1024
"""Largest document ITI-68 returns wrapped in a FHIR Binary resource (base64 in JSON) when ``Accept`` asks for FHIR
JSON rather than the document's own type; larger ones are served only as themselves (406 otherwise)."""

HOLD_BACK_OPERATION: Final = "urn:rsb-connector:OperationDefinition:DocumentReference-hold-back"
"""The canonical of ``POST DocumentReference/$hold-back`` (served by :mod:`rsb_connector.hub.consent_api`)."""
RELEASE_OPERATION: Final = "urn:rsb-connector:OperationDefinition:DocumentReference-release"
"""The canonical of ``POST DocumentReference/$release``."""

FHIR_VERSION: Final = "4.0.1"
CAPABILITY_DATE: Final = "2025-01-15"
"""``CapabilityStatement.date``: when the capabilities described last changed."""

MHD_CAPABILITIES: Final = (
    f"{mc.MHD_BASE}/CapabilityStatement/IHE.MHD.DocumentRecipient",
    f"{mc.MHD_BASE}/CapabilityStatement/IHE.MHD.DocumentRecipient.Comprehensive",
    f"{mc.MHD_BASE}/CapabilityStatement/IHE.MHD.DocumentRecipient.UnContained",
    f"{mc.MHD_BASE}/CapabilityStatement/IHE.MHD.DocumentResponder",
)
"""The MHD actor CapabilityStatements this hub instantiates (``CapabilityStatement.instantiates``)."""

_JSON_MEDIA: Final = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
_XML_MEDIA: Final = frozenset({"application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir"})
_FORM: Final = "application/x-www-form-urlencoded"
_ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PATIENT_REFERENCE: Final = re.compile(r"(?:.*/)?Patient/([^/?#]+)(?:/_history/[^/?#]+)?/?")
_CHUNK: Final = 200  # ids per GetDocuments / GetAssociations call (keeps each answer far below max_results)
_LIST_PATIENT_PARAMS: Final = frozenset({"patient", "patient.identifier"})
_DOCUMENT_STATUSES: Final = {"current": AvailabilityStatus.APPROVED, "superseded": AvailabilityStatus.DEPRECATED}
_ALIASES: Final = {
    "patient:identifier": "patient.identifier",
    "subject": "patient",
    "subject:identifier": "patient.identifier",
    "subject.identifier": "patient.identifier",
    "source:given": "source.given",
    "source:family": "source.family",
}

CXI_TYPES: Final = (
    "urn:ihe:iti:xds:2013:uniqueId",
    "urn:ihe:iti:xds:2013:accession",
    "urn:ihe:iti:xds:2013:referral",
    "urn:ihe:iti:xds:2013:order",
    "urn:ihe:iti:xdw:2013:workflowInstanceId",
    "urn:ihe:iti:xds:2015:encounterId",
)
"""The referenceIdList CXi identifier types of ITI TF-3 Table 4.2.3.2-1 (CX.5)."""

_Handler: TypeAlias = Callable[[Request], Awaitable[Response]]


# ================================================================================================ errors


class _FhirError(Exception):
    """Raised inside a handler to answer with an OperationOutcome."""

    def __init__(
        self,
        status: int,
        problems: Sequence[Problem] | None = None,
        *,
        message: str = "",
        issue: str = "processing",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message or "; ".join(str(p) for p in problems or ()))
        self.status = status
        self.problems = list(problems or ())
        self.message = message
        self.issue = issue
        self.headers = dict(headers or {})

    def outcome(self) -> Json:
        """The OperationOutcome JSON: one issue per problem, or one plain issue for an HTTP-level refusal."""
        if self.problems:
            return as_json(problems_to_operation_outcome(self.problems))
        return {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": self.issue, "diagnostics": self.message}],
        }


def _error(code: str, path: str, message: str) -> Problem:
    return Problem(code=code, message=message, path=path, severity=Severity.ERROR)


def _json_bytes(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _fhir_response(data: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        _json_bytes(data),
        status_code=status,
        headers=dict(headers or {}),
        media_type=f"{FHIR_JSON}; charset=utf-8",
    )


def _outcome_response(error: _FhirError) -> Response:
    return _fhir_response(error.outcome(), error.status, error.headers)


def _refusal_status(problems: Sequence[Problem]) -> int:
    """The HTTP status of a refused request: :func:`~rsb_connector.mhd.outcome.http_status`, except that a
    request-level "exception" code (an unreadable body) is the client's fault: 400, not 500."""
    status = http_status(problems)
    return 400 if status >= 500 else status


def _registry_status(problems: Sequence[Problem]) -> int:
    status = http_status(problems)
    return status if status != 200 else 400


def _provide_status(status: int) -> int:
    """The status of a refused ITI-65 bundle: never 404. The transaction endpoint exists; a reference inside the
    bundle that resolves to nothing (a bad patient link, ``XDSUnknownPatientId``) makes the request a bad one: 400
    (FHIR R4 http.html keeps 404 on create/transaction for a type or endpoint that is not served; the asbestos MHD
    test Bad_Patient_Link expects 400)."""
    return 400 if status == 404 else status


# ================================================================================================ small helpers


def resolve_patient_reference(reference: str) -> str | None:
    """The XDS patientId (CX) of a patient reference, by the hub's convention that Patient ids are SSINs.

    ``Patient/87041213797``, ``https://hub.example/fhir/Patient/87041213797`` and the bare ``87041213797`` all name
    the patient with that SSIN. Anything else (a ``urn:uuid:`` that is not a Patient of the bundle, an id that is
    not a valid SSIN) is unknown: None.
    """
    text = reference.strip()
    match = _PATIENT_REFERENCE.fullmatch(text)
    candidate = match.group(1) if match else text
    if not candidate.isdigit() or not Ssin.is_valid(candidate):
        return None
    return Ssin(candidate).to_cx()


def with_cxi_types(reference_ids: Sequence[str]) -> tuple[str, ...]:
    """The referenceIdList values an ITI-67 ``related`` search matches.

    A token ``system|value`` carries no CXi identifier type (CX.5), but the registry stores each referenceIdList value
    whole (``ORDER-1^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2013:order``) and matches values exactly; so a value without a
    type is also looked up with each standard type of :data:`CXI_TYPES`.
    """
    out: list[str] = []
    for ref in reference_ids:
        out.append(ref)
        parts = ref.split("^")
        if len(parts) < 5 or not parts[4]:
            head = "^".join([*parts, "", "", "", ""][:4])
            out += [f"{head}^{kind}" for kind in CXI_TYPES]
    return tuple(dict.fromkeys(out))


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _accept_ranges(accept: str | None) -> list[tuple[str, float]]:
    """``Accept`` as (media range, q) pairs (malformed q values count as 1)."""
    ranges: list[tuple[str, float]] = []
    for part in (accept or "").split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        if not media:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 1.0
        ranges.append((media, q))
    return ranges


def _quality(ranges: Sequence[tuple[str, float]], candidate: str) -> tuple[float, int]:
    """(q, specificity) of ``candidate`` under the most specific matching range; (0, 0) when none matches."""
    best: tuple[int, float] | None = None
    main = candidate.split("/", 1)[0]
    for media, q in ranges:
        if media == candidate:
            specificity = 3
        elif media == f"{main}/*":
            specificity = 2
        elif media == "*/*":
            specificity = 1
        else:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, q)
    return (best[1], best[0]) if best else (0.0, 0)


def choose_representation(accept: str | None, mime_type: str) -> str | None:
    """ITI-68 content negotiation: ``"document"`` (the document as itself), ``"resource"`` (a FHIR Binary
    resource in JSON) or None (406). Ties go to the document itself."""
    ranges = _accept_ranges(accept)
    if not ranges:
        return "document"
    document = _quality(ranges, _media(mime_type) or "application/octet-stream")
    resource = max(_quality(ranges, media) for media in sorted(_JSON_MEDIA))
    if document[0] <= 0 and resource[0] <= 0:
        return None
    return "resource" if resource > document else "document"


def _check_json_answer(request: Request, params: Iterable[tuple[str, str]] = ()) -> None:
    """Refuse (406) a request that only accepts XML (or another non-JSON format) for a FHIR resource answer."""
    for name, value in params:
        if name == "_format":
            fmt = value.strip().lower()
            if fmt in ("xml", "text/xml", "application/xml") or fmt.endswith("+xml"):
                raise _FhirError(
                    406,
                    message=f"_format={value}: this hub answers in JSON only; use _format=json or leave it out",
                    issue="not-supported",
                )
    ranges = _accept_ranges(request.headers.get("accept"))
    if not ranges:
        return
    if max(_quality(ranges, media)[0] for media in _JSON_MEDIA) <= 0:
        raise _FhirError(
            406,
            message=f"Accept {request.headers.get('accept')!r} admits no JSON: this hub answers with "
            f"{FHIR_JSON} only (XML is not supported)",
            issue="not-supported",
        )


def _normalise_params(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Parameter names decoded (``patient%3Aidentifier``) and aliased (``patient:identifier`` -> dotted form)."""
    out: list[tuple[str, str]] = []
    for name, value in pairs:
        key = unquote(name).strip() if "%" in name else name.strip()
        out.append((_ALIASES.get(key, key), value))
    return out


def _split_or(value: str) -> list[str]:
    parts: list[str] = []
    current = ""
    escaped = False
    for ch in value:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in (part.strip() for part in parts) if p]


def _token(value: str) -> tuple[str | None, str]:
    decoded = unquote(value) if re.search(r"%[0-9A-Fa-f]{2}", value) else value
    system, bar, code = decoded.partition("|")
    return (system, code) if bar else (None, decoded)


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterable[tuple[str, ...]]:
    for start in range(0, len(items), size):
        yield tuple(items[start : start + size])


# ================================================================================================ resource JSON


class _Unsupported(Exception):
    """A value :func:`resource_json` does not know how to write: the model's own serializer takes over."""


@dataclass(frozen=True, slots=True)
class _Element:
    key: str
    name: str
    primitive: bool
    encoder: Any
    extension_key: str | None
    extension_name: str | None


_PLANS: dict[type[Any], tuple[str | None, tuple[_Element, ...]]] = {}


def _plan(cls: type[Any]) -> tuple[str | None, tuple[_Element, ...]]:
    plan = _PLANS.get(cls)
    if plan is None:
        aliases = cls.get_alias_mapping()
        fields = cls.model_fields
        elements: list[_Element] = []
        for prop in cls.elements_sequence():
            key = aliases[prop]
            info = fields[key]
            primitive = bool(is_primitive_type(info))
            ext_key = f"{key}__ext" if primitive and f"{key}__ext" in fields else None
            ext_name = (fields[ext_key].alias or ext_key) if ext_key else None
            encoder = get_base64_encoder(info) if primitive else None
            elements.append(_Element(key, info.alias or key, primitive, encoder, ext_key, ext_name))
        resource_type = cls.__resource_type__ if cls.has_resource_base() else None
        plan = _PLANS[cls] = (resource_type, tuple(elements))
    return plan


def _primitive_json(value: Any, encoder: Any) -> Any:
    if isinstance(value, list):
        return [_primitive_json(v, encoder) for v in value]
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes | bytearray):
        if encoder is None:
            raise _Unsupported
        encoded = encoder.encode(bytes(value))
        return encoded.decode("ascii") if isinstance(encoded, bytes | bytearray) else encoded
    if isinstance(value, uuid.UUID):
        return f"urn:uuid:{value}"
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        if value.is_finite() and value == value.to_integral_value() and isinstance(exponent, int) and exponent >= 0:
            return int(value)
        return float(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return to_jsonable_python(value)
    raise _Unsupported


def _complex_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_complex_json(v) for v in value]
    if isinstance(value, FHIRAbstractModel):
        return _model_json(value)
    raise _Unsupported


def _model_json(model: FHIRAbstractModel) -> Json:
    resource_type, elements = _plan(type(model))
    out: Json = {"resourceType": resource_type} if resource_type else {}
    values = model.__dict__
    for element in elements:
        value = values.get(element.key)
        if value is not None and value != []:
            out[element.name] = _primitive_json(value, element.encoder) if element.primitive else _complex_json(value)
        if element.extension_key is not None and element.extension_name is not None:
            extension = values.get(element.extension_key)
            if extension is not None:
                written = _complex_json(extension)
                if written:
                    out[element.extension_name] = written
    comments = values.get("fhir_comments")
    if comments is not None:
        out["fhir_comments"] = comments
    return out


def resource_json(model: FHIRAbstractModel) -> Json:
    """The JSON of a fhir.resources model, as ``model.model_dump(mode="json")`` writes it, several times faster.

    Search answers hold many resources and the models' own serializer dominated their cost. This writes the same
    elements in the same order from the model's FHIR element table; a value of a kind it does not know makes it fall
    back to the model's serializer. Tests check both give identical JSON.
    """
    try:
        return _model_json(model)
    except (_Unsupported, AttributeError, KeyError):
        return as_json(model)


# ================================================================================================ the endpoints


@dataclass(slots=True)
class _FhirApi:
    """The MHD transactions over one registry (handlers are bound methods; sync work runs in the thread pool)."""

    registry: Registry
    authenticate: Authenticate | None
    base_path: str
    max_bundle_bytes: int
    value_sets: ValueSets = field(default_factory=load_value_sets)

    # ------------------------------------------------------------------------------------------ plumbing
    async def caller(self, request: Request, *, reading: bool = False) -> Caller:
        """The caller (the authenticator's verdict; anonymous when the hub runs without one). A ``reading``
        request may carry a professional's break-the-glass reason (:data:`BREAK_THE_GLASS_HEADER`); any other is
        refused with 400 when it does."""
        caller = ANONYMOUS if self.authenticate is None else await self.authenticate(request)
        if reading:
            return with_break_the_glass(request, caller)
        if request.headers.get(BREAK_THE_GLASS_HEADER) is not None:
            raise _FhirError(
                400,
                message=f"{BREAK_THE_GLASS_HEADER} applies to reading (ITI-66, ITI-67, ITI-68) only: publishing needs "
                "the publisher's own therapeutic link with the patient; send the request without it",
                issue="not-supported",
            )
        return caller

    def base_url(self, request: Request) -> str:
        """The FHIR base URL as the client sees it: ``<scheme>://<host>[:port][root_path]<base_path>``."""
        return str(request.base_url).rstrip("/") + self.base_path

    def origin(self, request: Request) -> str:
        """The hub's root URL (where ``/oauth2/token`` lives)."""
        return str(request.base_url).rstrip("/")

    async def read_body(self, request: Request, limit: int) -> bytes:
        """The request body, refused with 413 as soon as it exceeds ``limit`` bytes."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(int(declared), limit)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise self._too_large(len(body), limit)
        return bytes(body)

    @staticmethod
    def _too_large(size: int, limit: int) -> _FhirError:
        return _FhirError(
            413,
            message=f"the request body is {size} bytes or more; this hub accepts at most {limit} bytes: send large "
            "documents in separate bundles (or over XDS with MTOM)",
            issue="too-long",
        )

    def query(self, query: Query, caller: Caller, view: AccessView | None = None) -> QueryResult:
        """A stored query, one step of the request ``view`` belongs to (audited with it); a refusal becomes an
        OperationOutcome with the status its XDS code calls for."""
        try:
            return self.registry.stored_query(query, caller=caller, view=view)
        except QueryError as exc:
            raise _FhirError(_registry_status(exc.problems), exc.problems) from None

    @contextlib.contextmanager
    def find_request(
        self, caller: Caller, transaction: str, patients: Iterable[str | None] = ()
    ) -> Iterator[AccessView | None]:
        """One reading request (ITI-67, ITI-66, a resource read by id), audited ONCE as ``transaction`` whatever
        queries it runs (:meth:`Registry.find_request <rsb_connector.hub.registry.Registry.find_request>`).

        A professional's break-the-glass reason of the wrong length is refused (403) before anything is searched,
        audited under ``patients`` (the patient searched for, or the patient of the resource asked for when it
        exists), so that the patient sees the attempt in their trail; the answer is the same whatever they are."""
        stack = contextlib.ExitStack()
        try:
            view = stack.enter_context(self.registry.find_request(caller, transaction=transaction, patients=patients))
        except QueryError as exc:
            raise _FhirError(_registry_status(exc.problems), exc.problems) from None
        with stack:
            yield view

    async def search_params(self, request: Request) -> list[tuple[str, str]]:
        """The parameters of a search: the query string, plus the form body of a ``POST _search``."""
        pairs = list(request.query_params.multi_items())
        if request.method.upper() == "POST":
            media = _media(request.headers.get("content-type"))
            body = await self.read_body(request, MAX_SEARCH_BODY_BYTES)
            if body.strip():
                if media != _FORM:
                    raise _FhirError(
                        415,
                        message=f"a POST _search sends its parameters as {_FORM}, not {media or '(no content type)'}",
                        issue="not-supported",
                    )
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise _FhirError(400, message="the form body is not UTF-8", issue="invalid") from None
                pairs += parse_qsl(text, keep_blank_values=True)
        return _normalise_params(pairs)

    def _patients(self, query: Query) -> list[str]:
        """The patients a search is about, for the hub's audit only: the patient searched for, else the patients of
        the documents named (whoever may see them)."""
        patient_id = getattr(query, "patient_id", None)
        if patient_id:
            return [patient_id]
        if isinstance(query, GetDocuments):
            return self.registry.patients_of(entry_uuids=query.entry_uuids, unique_ids=query.unique_ids)
        return []

    def _resource_patients(self, rid: str) -> list[str]:
        """The patient of the DocumentReference or List ``rid`` when it exists (for the hub's audit only)."""
        return self.registry.patients_of(entry_uuids=[f"urn:uuid:{rid.lower()}"]) if _UUID.fullmatch(rid) else []

    # ------------------------------------------------------------------------------------------ ITI-65
    async def transaction(self, request: Request) -> Response:
        """ITI-65 Provide Document Bundle."""
        caller = await self.caller(request)
        media = _media(request.headers.get("content-type"))
        if media not in _JSON_MEDIA:
            hint = "XML is not supported by this hub; " if media in _XML_MEDIA or media.endswith("+xml") else ""
            raise _FhirError(
                415,
                message=f"Content-Type {media or '(none)'!r} is not accepted: {hint}send the transaction Bundle as "
                f"{FHIR_JSON} (or application/json)",
                issue="not-supported",
            )
        body = await self.read_body(request, self.max_bundle_bytes)
        status, answer = await run_in_threadpool(self._provide, body, caller)
        return _fhir_response(answer, status)

    def _provide(self, body: bytes, caller: Caller) -> tuple[int, Json]:
        # The registry runs the core ITI-41 rules itself (mapped back to FHIR paths below): not twice.
        parsed = parse_provide_bundle(
            body, resolve_patient=resolve_patient_reference, value_sets=self.value_sets, validate=False
        )
        observe_bundle(parsed)  # connector validation grades the profile checks as run here (no-op when off)
        warnings = [p for p in parsed.problems if not p.is_error]
        if not parsed.ok:
            return _provide_status(_refusal_status(parsed.problems)), as_json(
                problems_to_operation_outcome(parsed.problems)
            )
        documents = {doc_id: IncomingDocument.from_bytes(data) for doc_id, data in parsed.documents.items()}
        outcome = self.registry.provide_and_register(parsed.submission, documents, caller=caller, transaction="ITI-65")
        problems = parsed.fhir_problems(outcome.problems)
        if not outcome.ok:
            refused = problems + warnings
            return _provide_status(_registry_status(refused)), as_json(problems_to_operation_outcome(refused))
        return 200, self._transaction_response(parsed, outcome.registered, warnings + problems)

    @staticmethod
    def _transaction_response(parsed: ParsedBundle, registered: Mapping[str, str], warnings: Sequence[Problem]) -> Json:
        """One response entry per request entry, in order: ``201 Created`` and ``<Type>/<id>`` with the
        registry's ids (``200 OK`` for a document already registered by an identical earlier submission, and for
        a Patient entry, which names a patient the hub already knows)."""
        entries: list[Json] = []
        for info in parsed.entries:
            response: Json
            if info.resource_type in ("List", "DocumentReference", "Binary") and info.object_id:
                final = registered.get(info.object_id, info.object_id)
                rid = resource_id_for(final) or info.index
                status = "201 Created" if final == info.object_id else "200 OK"
                response = {"status": status, "location": f"{info.resource_type}/{rid}"}
            elif info.resource_type == "Patient" and info.object_id:
                response = {"status": "200 OK", "location": f"Patient/{parse_cx(info.object_id).id}"}
            else:
                response = {"status": "200 OK"}
            entries.append({"response": response})
        if warnings and entries:
            entries[0]["response"]["outcome"] = as_json(problems_to_operation_outcome(warnings))
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}

    # ------------------------------------------------------------------------------------------ ITI-67
    async def search_documents(self, request: Request) -> Response:
        """ITI-67 Find Document References (GET, or POST ``_search`` with a form body)."""
        caller = await self.caller(request, reading=True)
        params = await self.search_params(request)
        _check_json_answer(request, params)
        base = self.base_url(request)
        answer = await run_in_threadpool(self._find_documents, params, caller, base)
        return _fhir_response(answer)

    def _find_documents(self, params: list[tuple[str, str]], caller: Caller, base: str) -> Json:
        try:
            query = parse_search(params, resolve_patient=resolve_patient_reference, value_sets=self.value_sets)
        except QueryError as exc:
            raise _FhirError(400, exc.problems) from None
        if isinstance(query, FindDocumentsByReferenceId):
            query = dataclasses.replace(query, reference_ids=with_cxi_types(query.reference_ids))
        with self.find_request(caller, "ITI-67", self._patients(query)) as view:
            entries = self.query(query, caller, view).entries
            if isinstance(query, GetDocuments):
                entries = self._narrow(entries, params)
                if view is not None:
                    view.answered(entries)
            resources = self._document_references(entries, caller, base, view)
        self_link = f"{base}/DocumentReference"
        if params:
            self_link += "?" + urlencode(params)
        return _searchset(base, "DocumentReference", resources, self_link)

    def _narrow(self, entries: Sequence[DocumentEntry], params: Sequence[tuple[str, str]]) -> list[DocumentEntry]:
        """The entries of an ``identifier`` / ``_id`` search that also match its ``patient`` (``patient.identifier``)
        and ``status``: FHIR ANDs the parameters of a search, and ITI-67 sends both with every search, so a document
        of another patient, or not in the status asked for, is no match even when named by its identifier. (The other
        filters are not applied to an identifier search.)"""
        problems: list[Problem] = []
        patient: Cx | None = None
        patient_params = [(n, v) for n, v in params if n in _LIST_PATIENT_PARAMS]
        if patient_params:
            try:
                probe = parse_search(
                    [*patient_params, ("status", "current")],
                    resolve_patient=resolve_patient_reference,
                    value_sets=self.value_sets,
                )
            except QueryError as exc:
                raise _FhirError(400, exc.problems) from None
            assert isinstance(probe, FindDocuments)
            patient = parse_cx(probe.patient_id)
        statuses: set[AvailabilityStatus] = set()
        for token in (t for name, raw in params if name == "status" for t in _split_or(raw)):
            system, code = _token(token)
            if code in _DOCUMENT_STATUSES and system in (None, "", mc.DOCUMENT_REFERENCE_STATUS_SYSTEM):
                statuses.add(_DOCUMENT_STATUSES[code])
            else:
                problems.append(_error("XDSRegistryError", "status", f"status {token!r}: use current or superseded"))
        if problems:
            raise _FhirError(400, problems)

        def same_patient(entry: DocumentEntry) -> bool:
            try:
                cx = parse_cx(entry.patient_id or "")
            except ValueError:
                return False
            return patient is not None and (cx.id, cx.authority_oid) == (patient.id, patient.authority_oid)

        return [
            e
            for e in entries
            if (patient is None or same_patient(e)) and (not statuses or e.availability_status in statuses)
        ]

    def _document_references(
        self, entries: Sequence[DocumentEntry], caller: Caller, base: str, view: AccessView | None
    ) -> list[Json]:
        """The DocumentReferences of ``entries``, with the relationships (``relatesTo``) each is the source of (looked
        up as part of the request ``view`` belongs to)."""
        relations: dict[str, list[tuple[AssociationType, str]]] = {}
        ids = [e.entry_uuid for e in entries]
        wanted = set(ids)
        for chunk in _chunks(ids):
            for assoc in self.query(GetAssociations(entry_uuids=chunk), caller, view).associations:
                if assoc.type.is_relationship and assoc.source in wanted:
                    pair = (assoc.type, assoc.target)
                    if pair not in relations.setdefault(assoc.source, []):
                        relations[assoc.source].append(pair)
        return [self._document_reference(e, base, relations.get(e.entry_uuid, ())) for e in entries]

    def _document_reference(
        self, entry: DocumentEntry, base: str, relates_to: Sequence[tuple[AssociationType, str]]
    ) -> Json:
        rid = resource_id_for(entry.entry_uuid)
        resource = entry_to_document_reference(
            entry,
            resource_id=rid,
            attachment_url=f"{base}/Binary/{rid}",
            relates_to=relates_to,
            value_sets=self.value_sets,
        )
        return resource_json(resource)

    async def read_document(self, request: Request) -> Response:
        """Read one DocumentReference (``GET /DocumentReference/<id>``)."""
        caller = await self.caller(request, reading=True)
        _check_json_answer(request, request.query_params.multi_items())
        rid = str(request.path_params["id"])
        base = self.base_url(request)
        answer = await run_in_threadpool(self._read_document, rid, caller, base)
        return _fhir_response(answer)

    def _read_document(self, rid: str, caller: Caller, base: str) -> Json:
        with self.find_request(caller, "ITI-67", self._resource_patients(rid)) as view:
            entry = self._entry(rid, caller, view)
            return self._document_references([entry], caller, base, view)[0]

    def _entry(self, rid: str, caller: Caller, view: AccessView | None) -> DocumentEntry:
        if _UUID.fullmatch(rid):
            found = self.query(GetDocuments(entry_uuids=(f"urn:uuid:{rid.lower()}",)), caller, view).entries
            if found:
                return found[0]
        raise _not_found(rid, "DocumentReference")

    async def search_lists(self, request: Request) -> Response:
        """ITI-66 Find Document Lists (SubmissionSets; this hub stores no Folders)."""
        caller = await self.caller(request, reading=True)
        params = await self.search_params(request)
        _check_json_answer(request, params)
        base = self.base_url(request)
        answer = await run_in_threadpool(self._find_lists, params, caller, base)
        return _fhir_response(answer)

    def _find_lists(self, params: list[tuple[str, str]], caller: Caller, base: str) -> Json:
        query, want_sets, identifiers = self._list_query(params)
        self_link = f"{base}/List" + ("?" + urlencode(params) if params else "")
        if not want_sets:
            return _searchset(base, "List", [], self_link)  # folders only: none are stored
        with self.find_request(caller, "ITI-66", self._patients(query)) as view:
            sets = self.query(query, caller, view).submission_sets
            if identifiers:
                sets = [s for s in sets if {s.entry_uuid.lower(), s.unique_id or ""} & identifiers]
            lists = self._lists(sets, caller, view)
        return _searchset(base, "List", lists, self_link)

    def _list_query(self, params: list[tuple[str, str]]) -> tuple[FindSubmissionSets, bool, set[str]]:
        """ITI-66 parameters -> FindSubmissionSets (ITI TF-2 Table 2:3.66.4.1.3.1-1), whether SubmissionSets are
        asked for at all (``code``), and the ``identifier``/``_id`` values to keep."""
        problems: list[Problem] = []
        values: dict[str, list[str]] = {}
        for name, value in params:
            values.setdefault(name, []).append(value)

        # patient and date are read exactly as ITI-67 reads them (same resolver, same FHIR date prefixes).
        probe_params = [(n, v) for n, v in params if n in _LIST_PATIENT_PARAMS or n == "date"]
        patient_id = ""
        time_from: str | None = None
        time_to: str | None = None
        try:
            probe = parse_search(
                [*probe_params, ("status", "current")],
                resolve_patient=resolve_patient_reference,
                value_sets=self.value_sets,
            )
            assert isinstance(probe, FindDocuments)
            patient_id, time_from, time_to = probe.patient_id, probe.creation_time_from, probe.creation_time_to
        except QueryError as exc:
            problems += exc.problems

        want_sets = False
        codes = values.get("code", [])
        if not codes:
            problems.append(
                _error(
                    "XDSStoredQueryMissingParam",
                    "code",
                    f"code is required: code=submissionset (or {mc.LIST_TYPES_SYSTEM}|submissionset)",
                )
            )
        for token in (t for raw in codes for t in _split_or(raw)):
            system, code = _token(token)
            if system not in (None, "") and mc.canonical(system) != mc.LIST_TYPES_SYSTEM:
                problems.append(
                    _error("XDSRegistryError", "code", f"code {token!r}: the system must be {mc.LIST_TYPES_SYSTEM}")
                )
            elif code == mc.LIST_TYPE_SUBMISSION_SET:
                want_sets = True
            elif code == mc.LIST_TYPE_FOLDER:
                continue  # accepted, and answered empty: this hub stores no Folders
            else:
                problems.append(_error("XDSRegistryError", "code", f"code {code!r}: use submissionset or folder"))

        statuses: list[AvailabilityStatus] = []
        for token in (t for raw in values.get("status", []) for t in _split_or(raw)):
            code = _token(token)[1]
            if code == "current":
                statuses.append(AvailabilityStatus.APPROVED)
            elif code in ("superseded", "retired"):
                statuses.append(AvailabilityStatus.DEPRECATED)
            else:
                problems.append(_error("XDSRegistryError", "status", f"status {token!r}: use current or superseded"))

        content_types: list[Code] = []
        for token in (t for raw in values.get("designationType", []) for t in _split_or(raw)):
            found = self._content_type(token)
            if found is None:
                problems.append(
                    _error(
                        "XDSRegistryError",
                        "designationType",
                        f"designationType {token!r} has no system and is not a known contentTypeCode: send system|code",
                    )
                )
            else:
                content_types.append(found)

        source_ids = [
            _token(t)[1].removeprefix("urn:oid:") for raw in values.get("sourceId", []) for t in _split_or(raw)
        ]
        author: str | None = None
        family, given = values.get("source.family", []), values.get("source.given", [])
        if len(family) > 1 or len(given) > 1 or any("," in v for v in family + given):
            problems.append(
                _error(
                    "XDSStoredQueryParamNumber",
                    "source.family" if len(family) > 1 else "source.given",
                    "FindSubmissionSets takes one author person: give source.family and source.given once, one value",
                )
            )
        elif family and given:
            author = f"%^{family[0]}^{given[0]}%"
        elif family:
            author = f"%^{family[0]}%"
        elif given:
            author = f"%^%^{given[0]}%"

        identifiers: set[str] = set()
        for token in (t for raw in values.get("identifier", []) for t in _split_or(raw)):
            value = _token(token)[1]
            identifiers.add(value.lower() if value.lower().startswith("urn:uuid:") else value.removeprefix("urn:oid:"))
        for token in (t for raw in values.get("_id", []) for t in _split_or(raw)):
            identifiers.add(f"urn:uuid:{token.lower()}")

        if problems:
            raise _FhirError(400, problems)
        query = FindSubmissionSets(
            patient_id=patient_id,
            statuses=tuple(dict.fromkeys(statuses)) or (AvailabilityStatus.APPROVED,),
            source_ids=tuple(source_ids),
            submission_time_from=time_from,
            submission_time_to=time_to,
            author_person=author,
            content_type_codes=tuple(content_types),
        )
        return query, want_sets, identifiers

    def _content_type(self, token: str) -> Code | None:
        system, code = _token(token)
        if not code:
            return None
        if system:
            return Code(code, system_to_scheme(system, CodeKind.CONTENT_TYPE_CODE, self.value_sets))
        known = self.value_sets.value_set(CodeKind.CONTENT_TYPE_CODE).find(code)
        return Code(known.code, known.scheme) if known is not None else None

    def _lists(self, sets: Sequence[SubmissionSet], caller: Caller, view: AccessView | None) -> list[Json]:
        """SubmissionSet Lists whose entries reference the DocumentReferences each set holds (HasMember), looked up
        as part of the request ``view`` belongs to (the documents referenced are what its audit lists)."""
        set_ids = [s.entry_uuid for s in sets]
        members: dict[str, list[str]] = {}
        for chunk in _chunks(set_ids):
            sources = set(chunk)
            for assoc in self.query(GetAssociations(entry_uuids=chunk), caller, view).associations:
                if assoc.type is AssociationType.HAS_MEMBER and assoc.source in sources:
                    members.setdefault(assoc.source, []).append(assoc.target)
        targets = list(dict.fromkeys(t for ts in members.values() for t in ts))
        documents: set[str] = set()
        for chunk in _chunks(targets):
            documents |= {e.entry_uuid for e in self.query(GetDocuments(entry_uuids=chunk), caller, view).entries}
        return [self._list(ss, [t for t in members.get(ss.entry_uuid, []) if t in documents]) for ss in sets]

    def _list(self, ss: SubmissionSet, member_ids: Sequence[str]) -> Json:
        references = [f"DocumentReference/{resource_id_for(t)}" for t in member_ids]
        resource = submission_set_to_list(
            ss, references=references, resource_id=resource_id_for(ss.entry_uuid), value_sets=self.value_sets
        )
        return resource_json(resource)

    async def read_list(self, request: Request) -> Response:
        """Read one SubmissionSet List (``GET /List/<id>``)."""
        caller = await self.caller(request, reading=True)
        _check_json_answer(request, request.query_params.multi_items())
        rid = str(request.path_params["id"])
        answer = await run_in_threadpool(self._read_list, rid, caller)
        return _fhir_response(answer)

    def _read_list(self, rid: str, caller: Caller) -> Json:
        with self.find_request(caller, "ITI-66", self._resource_patients(rid)) as view:
            return self._list_by_id(rid, caller, view)

    def _list_by_id(self, rid: str, caller: Caller, view: AccessView | None) -> Json:
        if _UUID.fullmatch(rid):
            uuid = f"urn:uuid:{rid.lower()}"
            result = self.query(GetSubmissionSetAndContents(entry_uuids=(uuid,)), caller, view)
            if result.submission_sets:
                ss = result.submission_sets[0]
                documents = {e.entry_uuid for e in result.entries}
                members = [
                    a.target
                    for a in result.associations
                    if a.type is AssociationType.HAS_MEMBER and a.source == ss.entry_uuid and a.target in documents
                ]
                return self._list(ss, list(dict.fromkeys(members)))
        raise _FhirError(
            404,
            [
                _error(
                    "XDSRegistryError",
                    f"List/{rid}",
                    f"no SubmissionSet List {rid!r} here: find them with GET List?patient.identifier=...&"
                    "code=submissionset",
                )
            ],
            issue="not-found",
        )

    # ------------------------------------------------------------------------------------------ ITI-68
    async def binary(self, request: Request) -> Response:
        """ITI-68 Retrieve Document: the document itself, or a FHIR Binary resource when FHIR JSON is preferred."""
        caller = await self.caller(request, reading=True)
        rid = str(request.path_params["id"])
        document = await run_in_threadpool(self._retrieve, rid, caller)
        accept = request.headers.get("accept")
        choice = choose_representation(accept, document.mime_type)
        if choice == "resource" and document.size > BINARY_RESOURCE_LIMIT:
            admits_document = _quality(_accept_ranges(accept), _media(document.mime_type))[0] > 0
            choice = "document" if admits_document else None
        if choice is None:
            raise _FhirError(
                406,
                message=f"Accept {accept!r} excludes this document's type {document.mime_type!r}: ask for "
                f"{document.mime_type} (or */*)"
                + (f", or {FHIR_JSON} for a Binary resource" if document.size <= BINARY_RESOURCE_LIMIT else ""),
                issue="not-supported",
            )
        if choice == "resource":
            data = await run_in_threadpool(document.path.read_bytes)
            resource = {
                "resourceType": "Binary",
                "id": rid.lower(),
                "contentType": document.mime_type,
                "data": base64.b64encode(data).decode("ascii"),
            }
            return _fhir_response(resource)
        # The mimeType exactly as registered (Starlette would append a charset to text/* types).
        headers = {
            "content-type": document.mime_type,
            "etag": f'"{document.sha256}"',
            "x-content-type-options": "nosniff",
            "vary": "Accept",
        }
        return FileResponse(document.path, media_type=document.mime_type, headers=headers)

    def _retrieve(self, rid: str, caller: Caller) -> RetrievedDocument:
        """ITI-68 through the registry: one read, audited as ITI-68 (a refused break-the-glass reason under the
        document's patient when it exists); a document the caller may not read is answered like an unknown one."""
        entry_uuid = f"urn:uuid:{rid.lower()}" if _UUID.fullmatch(rid) else rid
        outcome = self.registry.retrieve_entry(entry_uuid, caller=caller, transaction="ITI-68")
        if outcome.documents:
            return outcome.documents[0]
        problems = outcome.problems or [_error("XDSRepositoryError", f"Binary/{rid}", "the document is unavailable")]
        codes = {p.code for p in problems if p.is_error}
        if "XDSDocumentUniqueIdError" in codes:
            raise _not_found(rid, "Binary")
        if "XDSRegistryDeprecatedDocumentError" in codes:
            raise _FhirError(
                410,
                [
                    _error(
                        "XDSRegistryDeprecatedDocumentError",
                        f"Binary/{rid}",
                        "this document is Deprecated (superseded by a newer version): MHD serves current documents "
                        "only; follow the newer DocumentReference (search with status=current)",
                    )
                ],
            )
        status = _registry_status(problems)
        if "XDSRepositoryError" in codes:
            status = 410  # registered, but its content is not available: "Document is ... not available"
        raise _FhirError(status, problems)

    # ------------------------------------------------------------------------------------------ metadata
    async def metadata(self, request: Request) -> Response:
        """``GET /metadata``: the CapabilityStatement (public, so clients can find the token endpoint)."""
        _check_json_answer(request, request.query_params.multi_items())
        statement = capability_statement(
            self.base_url(request),
            token_url=f"{self.origin(request)}/oauth2/token" if self.authenticate is not None else None,
        )
        return _fhir_response(statement)


def _not_found(rid: str, kind: str) -> _FhirError:
    """The 404 of a DocumentReference or Binary id that names nothing the caller may see (unknown and hidden alike)."""
    return _FhirError(
        404,
        [
            _error(
                "XDSDocumentUniqueIdError",
                f"{kind}/{rid}",
                f"no {kind} {rid!r} here: ids are the UUIDs of registered entries; find them with "
                "GET DocumentReference?patient.identifier=...&status=current",
            )
        ],
    )


def _searchset(base: str, resource_type: str, resources: Sequence[Json], self_link: str) -> Json:
    """A ``searchset`` Bundle of all matches (no paging), ``fullUrl`` ``<base>/<Type>/<id>``.

    Assembled as JSON from resources the binding already validated (re-validating the whole Bundle would double the
    cost of a search)."""
    bundle: Json = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": self_link}],
    }
    if resources:
        bundle["entry"] = [
            {"fullUrl": f"{base}/{resource_type}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ]
    return bundle


# ================================================================================================ CapabilityStatement

_DOCUMENT_REFERENCE_SEARCH: Final = (
    ("_id", "token", "the DocumentReference id (GetDocuments by entryUUID)"),
    ("identifier", "token", "masterIdentifier (uniqueId, urn:oid:) or identifier (entryUUID, urn:uuid:)"),
    ("patient", "reference", "Patient/<SSIN>: the hub's Patient ids are SSINs"),
    ("patient.identifier", "token", "the patient's SSIN: <ssin NamingSystem>|<SSIN>"),
    ("status", "token", "current (Approved) and/or superseded (Deprecated); required with patient"),
    ("category", "token", "classCode"),
    ("type", "token", "typeCode"),
    ("setting", "token", "practiceSettingCode"),
    ("facility", "token", "healthcareFacilityTypeCode"),
    ("format", "token", "formatCode"),
    ("event", "token", "eventCodeList (repeat to AND, comma to OR)"),
    ("security-label", "token", "confidentialityCode (repeat to AND, comma to OR)"),
    ("creation", "date", "creationTime (eq, ge, gt, le, lt)"),
    ("date", "date", "read as creation (XDS has no attribute for DocumentReference.date)"),
    ("period", "date", "serviceStartTime / serviceStopTime"),
    ("author.given", "string", "authorPerson given name"),
    ("author.family", "string", "authorPerson family name"),
    ("related", "token", "referenceIdList (FindDocumentsByReferenceId)"),
)
_LIST_SEARCH: Final = (
    ("_id", "token", "the List id (the SubmissionSet entryUUID)"),
    ("identifier", "token", "uniqueId (urn:oid:) or entryUUID (urn:uuid:)"),
    ("patient", "reference", "Patient/<SSIN>: the hub's Patient ids are SSINs"),
    ("patient.identifier", "token", "the patient's SSIN: <ssin NamingSystem>|<SSIN>"),
    ("code", "token", "submissionset (folder is accepted and matches nothing: no Folders are stored); required"),
    ("status", "token", "current (default) or superseded"),
    ("date", "date", "submissionTime (eq, ge, gt, le, lt)"),
    ("designationType", "token", "contentTypeCode"),
    ("sourceId", "token", "sourceId"),
    ("source.given", "string", "SubmissionSet authorPerson given name"),
    ("source.family", "string", "SubmissionSet authorPerson family name"),
)


def capability_statement(base_url: str, *, token_url: str | None = None) -> Json:
    """The CapabilityStatement of the hub's FHIR face: exactly what :func:`fhir_routes` serves.

    Args:
        base_url: the FHIR base URL (``implementation.url``).
        token_url: the OAuth2 token endpoint when requests are authenticated with bearer tokens (declared with
            the SMART ``oauth-uris`` extension); None when the hub runs without authentication.
    """
    security: Json
    if token_url is not None:
        security = {
            "extension": [
                {
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{"url": "token", "valueUri": token_url}],
                }
            ],
            "cors": False,
            "service": [
                {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth"}
                    ],
                    "text": "OAuth2 client_credentials with a private_key_jwt client assertion",
                }
            ],
            "description": f"Requests authenticate with a bearer token from {token_url} (client_credentials grant, "
            "private_key_jwt client authentication signed with the caller's certificate key); /metadata is public. "
            "The Belgian consent rules decide every access (consent, exclusions, therapeutic links, access matrix, "
            "confidentiality, documents held back from the patient) and every decision is audited. Break-the-glass: "
            f"a professional reading in an emergency (ITI-66, ITI-67, ITI-68) adds the header {BREAK_THE_GLASS_HEADER}"
            ": <reason of 10-200 characters>; it passes the therapeutic link and access matrix (never the consent, "
            "an exclusion or a very restricted document), is audited with the reason and shown to the patient. A "
            "reason of another length is refused (403); patients and organisations cannot break the glass (403).",
        }
    else:
        security = {
            "cors": False,
            "description": "No authentication: this hub accepts anonymous requests (development mode).",
        }

    def params(table: Sequence[tuple[str, str, str]]) -> list[Json]:
        return [{"name": name, "type": kind, "documentation": doc} for name, kind, doc in table]

    search_types = [{"code": "read"}, {"code": "search-type"}]
    return {
        "resourceType": "CapabilityStatement",
        "id": "rsb-mock-hub",
        "name": "RsbMockHubMhd",
        "title": "rsb-connector mock hub: IHE MHD Document Recipient and Document Responder",
        "status": "active",
        "experimental": True,
        "date": CAPABILITY_DATE,
        "publisher": "rsb-connector",
        "description": "IHE MHD 4.2 (FHIR R4) over the same XDS.b registry and repository as the hub's SOAP "
        "endpoints: ITI-65 Provide Document Bundle, ITI-66 Find Document Lists (SubmissionSets), ITI-67 Find "
        "Document References, ITI-68 Retrieve Document. JSON only.",
        "kind": "instance",
        "instantiates": list(MHD_CAPABILITIES),
        "software": {"name": "rsb-connector mock hub", "version": __version__},
        "implementation": {"description": "rsb-connector mock hub (FHIR R4, MHD)", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", FHIR_JSON],
        "rest": [
            {
                "mode": "server",
                "documentation": "Patient ids are SSINs (Patient/<SSIN>); DocumentReference, Binary and "
                "SubmissionSet List ids are the UUIDs of the XDS entryUUIDs. A Deprecated document answers ITI-68 "
                "with 410 Gone.",
                "security": security,
                "resource": [
                    {
                        "type": "DocumentReference",
                        "supportedProfile": [
                            mc.DOCUMENT_REFERENCE_MINIMAL,
                            mc.DOCUMENT_REFERENCE_COMPREHENSIVE,
                            mc.DOCUMENT_REFERENCE_UNCONTAINED,
                        ],
                        "documentation": "Created by ITI-65 only; searched with GET or POST _search (ITI-67). "
                        "An author holds a document back from the patient with POST DocumentReference/$hold-back "
                        "(Parameters: uniqueId, optional until) and releases it with POST DocumentReference/$release "
                        "(Parameters: uniqueId).",
                        "interaction": search_types,
                        "versioning": "no-version",
                        "readHistory": False,
                        "updateCreate": False,
                        "searchParam": params(_DOCUMENT_REFERENCE_SEARCH),
                        "operation": [
                            {
                                "name": "hold-back",
                                "definition": HOLD_BACK_OPERATION,
                                "documentation": "An author hides a document from the patient until a day (Parameters "
                                "until, a date after today) or for good; the patient's other access is unchanged.",
                            },
                            {
                                "name": "release",
                                "definition": RELEASE_OPERATION,
                                "documentation": "An author releases a held-back document to the patient at once.",
                            },
                        ],
                    },
                    {
                        "type": "List",
                        "supportedProfile": [
                            mc.SUBMISSION_SET_MINIMAL,
                            mc.SUBMISSION_SET_COMPREHENSIVE,
                            mc.SUBMISSION_SET_UNCONTAINED,
                        ],
                        "documentation": "SubmissionSets, created by ITI-65; searched with ITI-66. No Folders.",
                        "interaction": search_types,
                        "versioning": "no-version",
                        "readHistory": False,
                        "updateCreate": False,
                        "searchParam": params(_LIST_SEARCH),
                    },
                    {
                        "type": "Patient",
                        "documentation": "Patient identity feed only: a hospital identity POSTs a Patient with an "
                        "SSIN identifier to make the person known to the registry (201 new, 200 already known). "
                        "Patient resources are not served.",
                        "interaction": [{"code": "create"}],
                        "versioning": "no-version",
                        "readHistory": False,
                        "updateCreate": False,
                    },
                    {
                        "type": "Binary",
                        "documentation": "ITI-68: the document as itself (its mimeType), or a Binary resource when "
                        f"Accept prefers {FHIR_JSON}; 410 for a Deprecated document.",
                        "interaction": [{"code": "read"}],
                        "versioning": "no-version",
                        "readHistory": False,
                        "updateCreate": False,
                    },
                ],
                "interaction": [
                    {
                        "code": "transaction",
                        "documentation": "ITI-65 Provide Document Bundle only (meta.profile one of the MHD "
                        "Minimal, Comprehensive or UnContained.Comprehensive ProvideBundle profiles); all or nothing.",
                    }
                ],
            }
        ],
    }


# ================================================================================================ routes


def fhir_routes(
    registry: Registry,
    *,
    authenticate: Authenticate | None = None,
    base_path: str = "/fhir",
    max_bundle_bytes: int = MAX_BUNDLE_BYTES,
    catch_all: bool = True,
) -> list[Route]:
    """The hub's MHD routes over ``registry``, to add to the Starlette app (e.g. ``create_app(extra_routes=...)``).

    Args:
        registry: the same registry the XDS endpoints use.
        authenticate: establishes the :class:`~rsb_connector.hub.registry.Caller` of each request (raise
            ``HTTPException(401)`` to refuse); None accepts every request as the anonymous caller. ``/metadata``
            is never authenticated.
        base_path: where the FHIR base lives (``/fhir``).
        max_bundle_bytes: largest ITI-65 body (413 above).
        catch_all: add a last route answering any other path under ``base_path`` with a 404 OperationOutcome.
            Routes that must also live under ``base_path`` (e.g. consent resources) go *before* these in the app's
            route list, or pass False.
    """
    if max_bundle_bytes < 1:
        raise ValueError("max_bundle_bytes must be at least 1")
    prefix = "/" + base_path.strip("/") if base_path.strip("/") else ""
    api = _FhirApi(registry, authenticate, prefix, max_bundle_bytes)
    table: list[tuple[str, dict[str, _Handler]]] = [
        (prefix or "/", {"POST": api.transaction}),
        ("/metadata", {"GET": api.metadata}),
        ("/DocumentReference", {"GET": api.search_documents}),
        ("/DocumentReference/_search", {"POST": api.search_documents}),
        ("/DocumentReference/{id}", {"GET": api.read_document}),
        ("/List", {"GET": api.search_lists}),
        ("/List/_search", {"POST": api.search_lists}),
        ("/List/{id}", {"GET": api.read_list}),
        ("/Binary/{id}", {"GET": api.binary}),
    ]
    routes: list[Route] = []
    for i, (path, handlers) in enumerate(table):
        full = path if i == 0 else prefix + path
        routes.append(Route(full, _endpoint(handlers), methods=_ALL_METHODS, name=f"fhir{full}"))
        if i == 0 and prefix:
            routes.append(Route(prefix + "/", _endpoint(handlers), methods=_ALL_METHODS, name=f"fhir{prefix}/"))
    if catch_all:
        routes.append(Route(prefix + "/{rest:path}", _unknown_path, methods=_ALL_METHODS, name="fhir-unknown"))
    return routes


def _endpoint(handlers: Mapping[str, _Handler]) -> _Handler:
    """One route's endpoint: dispatch on the method (405 OperationOutcome otherwise), answer every failure as an
    OperationOutcome."""
    allowed = sorted({*handlers, *(("HEAD",) if "GET" in handlers else ())})

    async def endpoint(request: Request) -> Response:
        method = request.method.upper()
        handler = handlers.get("GET" if method == "HEAD" else method)
        if handler is None:
            error = _FhirError(
                405,
                message=f"{method} is not supported on {request.url.path}: use {', '.join(allowed)}",
                issue="not-supported",
                headers={"Allow": ", ".join(allowed)},
            )
            return _outcome_response(error)
        return await _guarded(handler, request)

    return endpoint


async def _guarded(handler: _Handler, request: Request) -> Response:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except _FhirError as refusal:
        response = _outcome_response(refusal)
    except HTTPException as exc:
        issue = {400: "invalid", 401: "login", 403: "forbidden"}.get(exc.status_code, "processing")
        response = _outcome_response(
            _FhirError(exc.status_code, message=str(exc.detail), issue=issue, headers=exc.headers)
        )
    except Exception:  # never a stack trace to the client; the log has it
        log.exception("FHIR %s %s failed", request.method, request.url.path)
        internal = _FhirError(
            500,
            message="the hub failed to process this request (an internal error, logged on the hub): try again or "
            "report it with the time of the request",
            issue="exception",
        )
        response = _outcome_response(internal)
    log.info(
        "FHIR %s %s -> %d in %.1f ms",
        request.method,
        request.url.path,
        response.status_code,
        (time.perf_counter() - started) * 1000,
    )
    return response


async def _unknown_path(request: Request) -> Response:
    error = _FhirError(
        404,
        message=f"{request.url.path} is not served here: this hub serves ITI-65 (POST [base]), DocumentReference, "
        "List, Binary and metadata (see GET [base]/metadata)",
        issue="not-found",
    )
    return _outcome_response(error)

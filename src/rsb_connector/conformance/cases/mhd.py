"""MHD cases (``conformance/catalogue/mhd.toml``): the hub as Document Recipient (ITI-65) and Document Responder
(ITI-66, ITI-67, ITI-68).

The ITI-65 cases build their transaction Bundles with the shared binding
(:func:`~rsb_connector.mhd.build_provide_bundle`) and then change the JSON by hand (an element removed, a relatesTo
added) before posting it raw, so that the exact request is what the step says. The search and retrieve cases publish
their documents with the SDK over MHD (``t.client(protocol="mhd")``) and then query the FHIR face directly. Every
call carries the suite identity's bearer token; every answer is checked for what MHD 4.2 (and FHIR R4 where MHD
defers to it) requires, not for what this hub happens to do.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from ...client.models import NewDocument
from ...identifiers import SSIN_SYSTEM
from ...metadata.builder import new_document, new_submission
from ...metadata.model import Code, DocumentEntry
from ...metadata.valuesets import CodeKind
from ...mhd import build_provide_bundle
from ...mhd.constants import EXT_DESIGNATION_TYPE, EXT_SOURCE_ID, LIST_TYPES_SYSTEM, URI_SYSTEM
from ...mhd.mapping import Json, as_json, scheme_to_system
from ...mhd.outcome import operation_outcome_to_problems
from ..context import CaseContext
from ..results import excerpt
from . import implements

PDF: Final = b"%PDF-1.7\n% rsb-connector MHD conformance document\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
"""A small PDF-like document holding every byte value (what comes back must be byte-exact)."""

FORM: Final = "application/x-www-form-urlencoded"
CURRENT_OR_SUPERSEDED: Final = "current,superseded"
_LOCATION: Final = r"(?:^|/){kind}/([A-Za-z0-9\-.]{{1,64}})(?:/_history/[^/]*)?/?$"


def _text(label: str) -> bytes:
    """A short text/plain document, unique to this run."""
    return f"{label}\r\nrsb-connector MHD conformance {uuid.uuid4()}\r\n".encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ================================================================================================ the FHIR face


class _Fhir:
    """Raw FHIR calls on the hub's base (``<hub>/fhir``) as the suite's identity, every exchange recorded."""

    def __init__(self, t: CaseContext) -> None:
        self.t = t
        self.http = t.http()
        self.headers = t.bearer()

    def transaction(self, bundle: Json) -> httpx.Response:
        """ITI-65: POST the Bundle to [base]."""
        return self.http.post("/fhir", content=json.dumps(bundle).encode("utf-8"), headers=self.headers)

    def read(self, kind: str, rid: str) -> httpx.Response:
        """GET [base]/<kind>/<id>."""
        return self.http.get(f"/fhir/{kind}/{rid}", headers=self.headers)

    def search(self, params: Sequence[tuple[str, str]], kind: str = "DocumentReference") -> httpx.Response:
        """GET [base]/<kind>?<params> (ITI-67 or ITI-66)."""
        return self.http.get(f"/fhir/{kind}", params=list(params), headers=self.headers)

    def post_search(self, params: Sequence[tuple[str, str]], kind: str = "DocumentReference") -> httpx.Response:
        """POST [base]/<kind>/_search with the parameters as a form body."""
        headers = {**self.headers, "content-type": FORM}
        return self.http.post(f"/fhir/{kind}/_search", content=urlencode(list(params)).encode(), headers=headers)

    def retrieve(self, url: str, accept: str | None) -> httpx.Response:
        """ITI-68: GET a document's attachment.url (absolute, as the hub gave it). The bearer token goes only to the
        hub's own origin: a URL elsewhere gets the request without it."""
        hub = urlsplit(str(self.http.base_url))
        target = urlsplit(url)
        same_origin = (target.scheme, target.netloc) == (hub.scheme, hub.netloc) or not target.netloc
        headers = {"authorization": self.headers["authorization"]} if same_origin else {}
        if accept is not None:
            headers["accept"] = accept
        return self.http.get(url, headers=headers)


def _patient(ssin: str) -> list[tuple[str, str]]:
    return [("patient.identifier", f"{SSIN_SYSTEM}|{ssin}")]


def _current(ssin: str) -> list[tuple[str, str]]:
    return [*_patient(ssin), ("status", "current")]


# ================================================================================================ bundles


@dataclass(slots=True)
class _Doc:
    """A document to send: its bytes and its DocumentEntry."""

    content: bytes
    entry: DocumentEntry

    @property
    def unique_id(self) -> str:
        return self.entry.unique_id or ""


def _doc(
    t: CaseContext,
    patient: str,
    content: bytes,
    *,
    document_type: str = "contactreport",
    mime_type: str = "text/plain",
    **options: Any,
) -> _Doc:
    entry = new_document(
        content, patient=patient, document_type=document_type, mime_type=mime_type, author=t.author(), **options
    )
    return _Doc(content, entry)


def _bundle(t: CaseContext, docs: Sequence[_Doc], profile: str = "Comprehensive") -> Json:
    """The ITI-65 Bundle (JSON) of one SubmissionSet holding ``docs``: entries List, DocumentReference(s),
    Binary(ies)."""
    submission = new_submission([d.entry for d in docs], author=t.author())
    return as_json(build_provide_bundle(submission, {d.entry.entry_uuid: d.content for d in docs}, profile=profile))


def _resources(bundle: Json, kind: str) -> list[Json]:
    """The resources of that type in a request Bundle, in entry order (mutable: they are the bundle's own)."""
    return [e["resource"] for e in bundle["entry"] if e["resource"].get("resourceType") == kind]


def _one_doc_bundle(t: CaseContext, patient: str, label: str) -> Json:
    return _bundle(t, [_doc(t, patient, _text(label))])


# ================================================================================================ checks


def _got(response: httpx.Response) -> str:
    return f"HTTP {response.status_code}: {excerpt(response.text, 600)}"


def _json(t: CaseContext, response: httpx.Response, what: str) -> Json:
    """The answer's JSON object (fails the step when the body is not one)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    t.check(isinstance(data, dict), f"{what} is a FHIR JSON resource", got=_got(response))
    assert isinstance(data, dict)
    return data


def _location_id(location: str, kind: str) -> str | None:
    match = re.search(_LOCATION.format(kind=kind), location)
    return match.group(1) if match else None


def _created(t: CaseContext, response: httpx.Response, bundle: Json) -> dict[str, list[str]]:
    """Check an ITI-65 success (200, transaction-response, one 201 entry with a location per request entry, in
    order); the ids of the locations by resource type, in order."""
    t.check(response.status_code == 200, "ITI-65 answers 200 OK", got=_got(response))
    data = _json(t, response, "the ITI-65 answer")
    t.check(
        data.get("resourceType") == "Bundle" and data.get("type") == "transaction-response",
        "the answer is a Bundle of type transaction-response",
        got=f"{data.get('resourceType')} {data.get('type')}",
    )
    kinds = [str(e["resource"]["resourceType"]) for e in bundle["entry"]]
    entries = [e for e in data.get("entry") or [] if isinstance(e, dict)]
    t.check(
        len(entries) == len(kinds),
        f"one response entry per request entry ({len(kinds)})",
        got=len(entries),
    )
    ids: dict[str, list[str]] = {}
    for n, (kind, item) in enumerate(zip(kinds, entries, strict=True)):
        answer = item.get("response") if isinstance(item.get("response"), dict) else {}
        assert isinstance(answer, dict)
        status = str(answer.get("status") or "")
        location = str(answer.get("location") or "")
        t.check(status.split(" ")[0] == "201", f"entry {n} ({kind}): response.status 201", got=status)
        rid = _location_id(location, kind)
        t.check(rid is not None, f"entry {n}: response.location names a {kind}", got=location)
        assert rid is not None
        ids.setdefault(kind, []).append(rid)
    t.observe(", ".join(f"{kind}/{rid}" for kind, rids in ids.items() for rid in rids))
    return ids


def _searchset(t: CaseContext, response: httpx.Response, kind: str = "DocumentReference") -> list[Json]:
    """Check a search answer (200, searchset Bundle, total = matches when given); the matched resources."""
    t.check(response.status_code == 200, "the search answers 200 OK", got=_got(response))
    data = _json(t, response, "the search answer")
    t.check(
        data.get("resourceType") == "Bundle" and data.get("type") == "searchset",
        "the answer is a Bundle of type searchset",
        got=f"{data.get('resourceType')} {data.get('type')}",
    )
    found = [
        e["resource"]
        for e in data.get("entry") or []
        if isinstance(e, dict) and isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == kind
    ]
    total = data.get("total")
    if total is not None:
        t.check(total == len(found), f"Bundle.total is the number of {kind} matches ({len(found)})", got=total)
    return found


def _unique_id(resource: Json) -> str:
    master = resource.get("masterIdentifier")
    value = str(master.get("value") or "") if isinstance(master, dict) else ""
    return value.removeprefix("urn:oid:")


def _found(t: CaseContext, response: httpx.Response, expected: Iterable[str], what: str) -> list[Json]:
    """Check that a DocumentReference search found exactly the documents of these uniqueIds."""
    resources = _searchset(t, response)
    got = sorted(_unique_id(r) for r in resources)
    t.check(got == sorted(expected), what, got=got)
    t.observe(f"{len(resources)} match(es): {', '.join(r.get('id', '?') for r in resources) or 'none'}")
    return resources


def _refused(
    t: CaseContext,
    response: httpx.Response,
    statuses: Sequence[int] = (400,),
    code: str | None = None,
    element: str | None = None,
) -> None:
    """Check a refusal: one of ``statuses``, an OperationOutcome with an error issue (carrying the XDS ``code`` when
    given; when the hub names elements, one of them is ``element``)."""
    wanted = " or ".join(str(s) for s in statuses)
    t.check(response.status_code in statuses, f"the hub answers {wanted}", got=_got(response))
    data = _json(t, response, "the refusal")
    t.check(
        data.get("resourceType") == "OperationOutcome", "the body is an OperationOutcome", got=data.get("resourceType")
    )
    try:
        problems = operation_outcome_to_problems(data)
    except ValueError as exc:
        problems = []
        t.check(False, "the OperationOutcome can be read", got=str(exc))
    errors = [p for p in problems if p.is_error]
    t.check(errors, "the OperationOutcome holds an issue of severity error (or fatal)", got=data.get("issue"))
    if code is not None:
        t.check(
            any(p.code == code for p in errors),
            f"an error issue carries the XDS error code {code} (ITI TF-3 Table 4.2.4.1-2)",
            got=sorted({p.code for p in errors}),
        )
    paths = [p.path for p in errors if p.path]
    if element is not None and paths:
        t.check(any(element in path for path in paths), f"the issue names the element {element}", got=paths)
    t.observe("; ".join(f"{p.code} at {p.path or '-'}: {p.message}" for p in errors))


def _nothing_stored(t: CaseContext, fhir: _Fhir, *patients: str) -> None:
    """Check that neither ITI-67 nor ITI-66 finds anything for these patients."""
    for ssin in patients:
        documents = _searchset(t, fhir.search([*_patient(ssin), ("status", CURRENT_OR_SUPERSEDED)]))
        t.check(not documents, "ITI-67 finds no DocumentReference: nothing was stored", got=len(documents))
        lists = _searchset(
            t, fhir.search([*_patient(ssin), ("code", "submissionset"), ("status", "current")], "List"), "List"
        )
        t.check(not lists, "ITI-66 finds no SubmissionSet List: nothing was stored", got=len(lists))
    t.observe("ITI-67 and ITI-66 find nothing")


def _codings(element: object) -> set[tuple[str, str]]:
    """(system, code) of a CodeableConcept, a list of them, or a Coding."""
    items = element if isinstance(element, list) else [element]
    out: set[tuple[str, str]] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        for coding in item.get("coding", [item] if "code" in item else []):
            if isinstance(coding, dict):
                out.add((str(coding.get("system") or ""), str(coding.get("code") or "")))
    return out


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _relates_to(t: CaseContext, resource: Json, code: str, target_id: str) -> None:
    """Check that ``resource`` has a relatesTo of ``code`` whose target references DocumentReference/<target_id>."""
    relations = [r for r in resource.get("relatesTo") or [] if isinstance(r, dict)]
    references = [
        str(r["target"].get("reference") or "")
        for r in relations
        if r.get("code") == code and isinstance(r.get("target"), dict)
    ]
    t.check(
        any(_location_id(reference, "DocumentReference") == target_id for reference in references),
        f"relatesTo holds code {code} with a target referencing DocumentReference/{target_id}",
        got=relations,
    )
    t.observe(f"relatesTo {code} -> {', '.join(references)}")


def _status(t: CaseContext, fhir: _Fhir, rid: str, expected: str) -> Json:
    response = fhir.read("DocumentReference", rid)
    t.check(response.status_code == 200, f"GET DocumentReference/{rid} answers 200 OK", got=_got(response))
    resource = _json(t, response, "the DocumentReference")
    t.check(
        resource.get("status") == expected, f"the DocumentReference has status {expected}", got=resource.get("status")
    )
    t.observe(f"DocumentReference/{rid}: {resource.get('status')}")
    return resource


# ================================================================================================ ITI-65 accepted


@implements("MHD-001")
def minimal_single_document(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    doc = _doc(t, patient, _text("minimal"))
    bundle = _bundle(t, [doc], profile="Minimal")
    with t.step(1):
        ids = _created(t, fhir.transaction(bundle), bundle)
        t.check(
            sorted(ids) == ["Binary", "DocumentReference", "List"],
            "the locations name a List, a DocumentReference and a Binary",
            got=sorted(ids),
        )
    with t.step(2):
        [resource] = _found(t, fhir.search(_current(patient)), [doc.unique_id], "exactly the document sent is found")
        t.check(
            resource.get("id") == ids["DocumentReference"][0],
            "its id is the one of the location",
            got=resource.get("id"),
        )
        t.check(resource.get("status") == "current", "its status is current", got=resource.get("status"))
    with t.step(3):
        url = str(((resource.get("content") or [{}])[0].get("attachment") or {}).get("url") or "")
        t.check(url, "the DocumentReference has a content.attachment.url", got=resource.get("content"))
        answer = fhir.retrieve(url, "*/*")
        t.check(answer.status_code == 200, "ITI-68 answers 200 OK", got=_got(answer))
        t.check(
            _sha256(answer.content) == _sha256(doc.content),
            "the bytes served are the document sent",
            got=f"{len(answer.content)} bytes, SHA-256 {_sha256(answer.content)}",
        )
        t.observe(f"{len(answer.content)} bytes, {answer.headers.get('content-type')}")


@implements("MHD-002")
def comprehensive_metadata_kept(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    doc = _doc(
        t,
        patient,
        PDF,
        document_type="labresult",
        mime_type="application/pdf",
        class_code="result",
        confidentiality="R",
        language="nl-BE",
        facility_type="hospital",
        practice_setting="cardiology",
        creation_time="2024-03-15T10:15:00+01:00",
        service_start="2024-03-01T08:00:00+01:00",
        service_stop="2024-03-10T18:00:00+01:00",
    )
    bundle = _bundle(t, [doc])
    sent = _resources(bundle, "DocumentReference")[0]
    with t.step(1):
        ids = _created(t, fhir.transaction(bundle), bundle)
    with t.step(2):
        response = fhir.read("DocumentReference", ids["DocumentReference"][0])
        t.check(response.status_code == 200, "the read answers 200 OK", got=_got(response))
        kept = _json(t, response, "the DocumentReference")
        t.check(kept.get("status") == "current", "status current", got=kept.get("status"))
        t.check(
            _unique_id(kept) == doc.unique_id, "masterIdentifier is the uniqueId sent", got=kept.get("masterIdentifier")
        )
        for name in ("type", "category", "securityLabel"):
            t.check(_codings(kept.get(name)) == _codings(sent[name]), f"{name} is the one sent", got=kept.get(name))
        content, sent_content = (kept.get("content") or [{}])[0], sent["content"][0]
        t.check(_codings(content.get("format")) == _codings(sent_content["format"]), "content.format kept", got=content)
        attachment, sent_attachment = content.get("attachment") or {}, sent_content["attachment"]
        for name in ("contentType", "language", "size", "hash"):
            t.check(attachment.get(name) == sent_attachment[name], f"attachment.{name} kept", got=attachment.get(name))
        t.check(
            _instant(attachment.get("creation")) == _instant(sent_attachment["creation"]),
            "attachment.creation is the instant sent",
            got=attachment.get("creation"),
        )
        context, sent_context = kept.get("context") or {}, sent["context"]
        for name in ("facilityType", "practiceSetting"):
            t.check(_codings(context.get(name)) == _codings(sent_context[name]), f"context.{name} kept", got=context)
        period, sent_period = context.get("period") or {}, sent_context["period"]
        t.check(
            (_instant(period.get("start")), _instant(period.get("end")))
            == (_instant(sent_period["start"]), _instant(sent_period["end"])),
            "context.period is the service period sent",
            got=period,
        )
        t.observe(f"DocumentReference/{kept.get('id')} kept every attribute sent")


@implements("MHD-003")
def two_documents(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    docs = [
        _doc(t, patient, _text("lab result"), document_type="labresult"),
        _doc(t, patient, PDF, document_type="contactreport", mime_type="application/pdf"),
    ]
    bundle = _bundle(t, docs)
    with t.step(1):
        ids = _created(t, fhir.transaction(bundle), bundle)
        kinds = [str(e["resource"]["resourceType"]) for e in bundle["entry"]]
        t.check(
            kinds == ["List", "DocumentReference", "DocumentReference", "Binary", "Binary"],
            "the request holds List, DocumentReference x2, Binary x2",
            got=kinds,
        )
        t.check(len(ids["DocumentReference"]) == 2, "two DocumentReferences are created", got=ids)
    with t.step(2):
        found = _found(t, fhir.search(_current(patient)), [d.unique_id for d in docs], "exactly the two documents")
    with t.step(3):
        by_uid = {_unique_id(r): r for r in found}
        for doc in docs:
            url = str(((by_uid[doc.unique_id].get("content") or [{}])[0].get("attachment") or {}).get("url") or "")
            answer = fhir.retrieve(url, "*/*")
            t.check(answer.status_code == 200, f"ITI-68 of {doc.unique_id} answers 200 OK", got=_got(answer))
            t.check(
                _sha256(answer.content) == _sha256(doc.content),
                f"{url} serves the content of {doc.unique_id}",
                got=f"{len(answer.content)} bytes",
            )
        t.observe("each URL serves its own document")


def _related_publication(t: CaseContext, code: str) -> None:
    """MHD-004/005/006: an original, then a document related to it by ``code``; statuses and relatesTo read back."""
    patient = t.new_patient()
    fhir = _Fhir(t)
    original = _doc(t, patient, _text("original"))
    if code == "transforms":
        related = _doc(t, patient, PDF, mime_type="application/pdf")
    else:
        related = _doc(t, patient, _text(f"{code} the original"))
    with t.step(1):
        first = _bundle(t, [original])
        original_id = _created(t, fhir.transaction(first), first)["DocumentReference"][0]
    second = _bundle(t, [related])
    _resources(second, "DocumentReference")[0]["relatesTo"] = [
        {"code": code, "target": {"reference": f"DocumentReference/{original_id}"}}
    ]
    with t.step(2):
        related_id = _created(t, fhir.transaction(second), second)["DocumentReference"][0]
    with t.step(3):
        _status(t, fhir, original_id, "superseded" if code == "replaces" else "current")
    with t.step(4):
        resource = _status(t, fhir, related_id, "current")
        _relates_to(t, resource, code, original_id)
    with t.step(5):
        expected = [related.unique_id] if code == "replaces" else [original.unique_id, related.unique_id]
        what = "exactly the replacement is current" if code == "replaces" else "both documents are current"
        _found(t, fhir.search(_current(patient)), expected, what)


@implements("MHD-004")
def replace(t: CaseContext) -> None:
    _related_publication(t, "replaces")


@implements("MHD-005")
def addendum(t: CaseContext) -> None:
    _related_publication(t, "appends")


@implements("MHD-006")
def transform(t: CaseContext) -> None:
    _related_publication(t, "transforms")


# ================================================================================================ ITI-65 refused

Mutation = Callable[[Json], None]


def _refuse_each(
    t: CaseContext,
    fhir: _Fhir,
    patient: str,
    mutations: Sequence[tuple[Mutation, str | None, str | None]],
    first_step: int = 1,
) -> None:
    """One step per mutation: a fresh valid bundle, changed, posted; refused with 400 and the XDS code."""
    for n, (mutate, code, element) in enumerate(mutations, first_step):
        with t.step(n):
            bundle = _one_doc_bundle(t, patient, f"refused {n}")
            original = copy.deepcopy(bundle)
            mutate(bundle)
            if bundle == original:
                raise RuntimeError(f"{t.case.id} step {n}: the mutation changed nothing")
            _refused(t, fhir.transaction(bundle), (400,), code, element)


def _document_reference(bundle: Json) -> Json:
    return _resources(bundle, "DocumentReference")[0]


def _submission_set(bundle: Json) -> Json:
    return _resources(bundle, "List")[0]


def _drop(path: Sequence[str], owner: Callable[[Json], Json] = _document_reference) -> Mutation:
    """Remove the element at ``path`` (keys; ``content`` steps into its first item) of the bundle's resource."""

    def mutate(bundle: Json) -> None:
        node: Any = owner(bundle)
        for key in path[:-1]:
            node = node[key][0] if isinstance(node[key], list) else node[key]
        node.pop(path[-1], None)

    return mutate


def _drop_extension(url: str) -> Mutation:
    def mutate(bundle: Json) -> None:
        lst = _submission_set(bundle)
        lst["extension"] = [e for e in lst.get("extension", []) if e.get("url") != url]
        if not lst["extension"]:
            del lst["extension"]

    return mutate


def _drop_source_patient(bundle: Json) -> None:
    dr = _document_reference(bundle)
    spi = dr["context"].pop("sourcePatientInfo")
    local = str(spi.get("reference") or "").removeprefix("#")
    dr["contained"] = [r for r in dr.get("contained", []) if r.get("id") != local]
    if not dr["contained"]:
        del dr["contained"]


def _drop_binary(bundle: Json) -> None:
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"].get("resourceType") != "Binary"]


def _drop_binary_data(bundle: Json) -> None:
    _resources(bundle, "Binary")[0].pop("data")


def _drop_document_reference(bundle: Json) -> None:
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"].get("resourceType") != "DocumentReference"]
    _submission_set(bundle).pop("entry", None)


@implements("MHD-007")
def bad_profile(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)

    def no_meta(bundle: Json) -> None:
        del bundle["meta"]

    def foreign(bundle: Json) -> None:
        bundle["meta"] = {"profile": ["http://hl7.org/fhir/StructureDefinition/Bundle"]}

    _refuse_each(t, fhir, patient, [(no_meta, None, None), (foreign, None, None)])
    with t.step(3):
        _nothing_stored(t, fhir, patient)


@implements("MHD-008")
def bad_patient_link(t: CaseContext) -> None:
    patient = t.new_patient()
    other = t.new_patient()
    fhir = _Fhir(t)
    with t.step(1):
        bundle = _one_doc_bundle(t, patient, "dangling subject")
        _document_reference(bundle)["subject"] = {"reference": f"urn:uuid:{uuid.uuid4()}"}
        _refused(t, fhir.transaction(bundle), (400,), "XDSUnknownPatientId", "subject")
    with t.step(2):
        bundle = _one_doc_bundle(t, patient, "dangling list subject")
        _submission_set(bundle)["subject"] = {"reference": f"https://patients.invalid/fhir/Patient/{uuid.uuid4()}"}
        _refused(t, fhir.transaction(bundle), (400,), "XDSUnknownPatientId", "subject")
    with t.step(3):
        bundle = _bundle(t, [_doc(t, other, _text("the other patient's document"))])
        _submission_set(bundle)["subject"] = {"identifier": {"system": SSIN_SYSTEM, "value": patient}}
        _refused(t, fhir.transaction(bundle), (400, 422), "XDSPatientIdDoesNotMatch", None)
    with t.step(4):
        _nothing_stored(t, fhir, patient, other)


@implements("MHD-009")
def missing_unique_ids(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    metadata = "XDSRegistryMetadataError"
    _refuse_each(
        t,
        fhir,
        patient,
        [
            (_drop(["masterIdentifier"]), metadata, "masterIdentifier"),
            (_drop(["identifier"], _submission_set), metadata, "identifier"),
        ],
    )
    with t.step(3):
        _nothing_stored(t, fhir, patient)


@implements("MHD-010")
def missing_codes(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    metadata = "XDSRegistryMetadataError"
    _refuse_each(
        t,
        fhir,
        patient,
        [
            (_drop(["type"]), metadata, "type"),
            (_drop(["category"]), metadata, "category"),
            (_drop(["securityLabel"]), metadata, "securityLabel"),
            (_drop(["content", "format"]), metadata, "format"),
            (_drop(["content", "attachment", "language"]), metadata, "language"),
            (_drop(["context", "facilityType"]), metadata, "facilityType"),
            (_drop(["context", "practiceSetting"]), metadata, "practiceSetting"),
        ],
    )
    with t.step(8):
        _nothing_stored(t, fhir, patient)


@implements("MHD-011")
def missing_patient(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    metadata = "XDSRegistryMetadataError"
    _refuse_each(
        t,
        fhir,
        patient,
        [
            (_drop(["subject"]), metadata, "subject"),
            (_drop(["subject"], _submission_set), metadata, "subject"),
            (_drop_source_patient, metadata, "sourcePatientInfo"),
        ],
    )
    with t.step(4):
        _nothing_stored(t, fhir, patient)


@implements("MHD-012")
def missing_submission_set_attributes(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    metadata = "XDSRegistryMetadataError"
    _refuse_each(
        t,
        fhir,
        patient,
        [
            (_drop_extension(EXT_SOURCE_ID), metadata, "sourceId"),
            (_drop(["date"], _submission_set), metadata, "date"),
            (_drop_extension(EXT_DESIGNATION_TYPE), metadata, "designationType"),
        ],
    )
    with t.step(4):
        _nothing_stored(t, fhir, patient)


@implements("MHD-013")
def missing_document(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    _refuse_each(
        t,
        fhir,
        patient,
        [
            (_drop(["content", "attachment", "contentType"]), "XDSRegistryMetadataError", "contentType"),
            (_drop(["content", "attachment", "url"]), "XDSMissingDocument", None),
            (_drop_binary, "XDSMissingDocument", None),
            (_drop_binary_data, "XDSMissingDocument", None),
            (_drop_document_reference, "XDSMissingDocumentMetadata", None),
        ],
    )
    with t.step(6):
        _nothing_stored(t, fhir, patient)


# ================================================================================================ ITI-67


def _publish(t: CaseContext, docs: Sequence[_Doc]) -> None:
    """Publish the documents in one submission set with the SDK over MHD (ITI-65), as the suite's identity."""
    t.client(protocol="mhd").publish_many([NewDocument(d.content, d.entry) for d in docs], author=t.author())


def _token(code: Code | None, kind: CodeKind) -> str:
    """A code as a FHIR token ``system|code``."""
    if code is None:
        raise RuntimeError(f"setup: the document has no {kind.value}")
    return f"{scheme_to_system(code.scheme, kind)}|{code.code}"


@implements("MHD-014")
def find_by_patient(t: CaseContext) -> None:
    patient, other = t.new_patient(), t.new_patient()
    fhir = _Fhir(t)
    mine = [_doc(t, patient, _text("first")), _doc(t, patient, _text("second"), document_type="labresult")]
    theirs = _doc(t, other, _text("someone else's"))
    for docs in (mine[:1], mine[1:], [theirs]):
        _publish(t, docs)
    expected = [d.unique_id for d in mine]
    with t.step(1):
        found = _found(t, fhir.search(_current(patient)), expected, "exactly the patient's two documents")
    with t.step(2):
        subject = found[0].get("subject") if isinstance(found[0].get("subject"), dict) else {}
        assert isinstance(subject, dict)
        literal = str(subject.get("reference") or "")
        reference = literal if "Patient/" in literal else f"Patient/{patient}"
        _found(
            t, fhir.search([("patient", reference), ("status", "current")]), expected, f"patient={reference} finds both"
        )
    with t.step(3):
        _found(t, fhir.post_search(_current(patient)), expected, "POST _search finds the same two documents")
    with t.step(4):
        _found(t, fhir.search(_current(other)), [theirs.unique_id], "exactly the second patient's document")


@implements("MHD-015")
def find_by_status(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    vault = t.client(protocol="mhd")
    first = vault.publish(
        _text("version 1"), patient=patient, document_type="note", author=t.author(), mime_type="text/plain"
    )
    second = vault.replace(first.document.unique_id, _text("version 2"), author=t.author(), mime_type="text/plain")
    old, new = first.document.unique_id, second.document.unique_id
    with t.step(1):
        _found(t, fhir.search(_current(patient)), [new], "status=current finds only the replacement")
    with t.step(2):
        [resource] = _found(
            t,
            fhir.search([*_patient(patient), ("status", "superseded")]),
            [old],
            "status=superseded finds only the original",
        )
        t.check(resource.get("status") == "superseded", "its status is superseded", got=resource.get("status"))
    with t.step(3):
        _found(t, fhir.search([*_patient(patient), ("status", CURRENT_OR_SUPERSEDED)]), [old, new], "both are found")


@implements("MHD-016")
def find_by_category_and_type(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    lab = _doc(t, patient, _text("lab result"), document_type="labresult", class_code="result")
    contact = _doc(t, patient, _text("contact report"), document_type="contactreport", class_code="report")
    _publish(t, [lab, contact])
    lab_type = _token(lab.entry.type_code, CodeKind.TYPE_CODE)
    contact_type = _token(contact.entry.type_code, CodeKind.TYPE_CODE)
    contact_class = _token(contact.entry.class_code, CodeKind.CLASS_CODE)
    with t.step(1):
        _found(t, fhir.search([*_current(patient), ("type", lab_type)]), [lab.unique_id], f"type={lab_type}")
    with t.step(2):
        _found(
            t,
            fhir.search([*_current(patient), ("category", contact_class)]),
            [contact.unique_id],
            f"category={contact_class}",
        )
    with t.step(3):
        _found(
            t,
            fhir.search([*_current(patient), ("type", f"{lab_type},{contact_type}")]),
            [lab.unique_id, contact.unique_id],
            "either type finds both",
        )


@implements("MHD-017")
def find_by_creation(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    older = _doc(t, patient, _text("2021"), creation_time="2021-03-10T10:00:00Z")
    newer = _doc(t, patient, _text("2023"), creation_time="2023-06-20T10:00:00Z")
    _publish(t, [older, newer])

    def creation(*bounds: str) -> list[tuple[str, str]]:
        return [*_current(patient), *(("creation", b) for b in bounds)]

    with t.step(1):
        _found(t, fhir.search(creation("ge2022-01-01")), [newer.unique_id], "creation=ge2022-01-01")
    with t.step(2):
        _found(t, fhir.search(creation("lt2022-01-01")), [older.unique_id], "creation=lt2022-01-01")
    with t.step(3):
        _found(
            t,
            fhir.search(creation("ge2021-01-01", "lt2024-01-01")),
            [older.unique_id, newer.unique_id],
            "creation=ge2021-01-01&creation=lt2024-01-01",
        )
    with t.step(4):
        _found(t, fhir.search(creation("ge2024-01-01")), [], "creation=ge2024-01-01 finds nothing")


@implements("MHD-018")
def find_by_identifier(t: CaseContext) -> None:
    patient, other = t.new_patient(), t.new_patient()
    fhir = _Fhir(t)
    first, second = _doc(t, patient, _text("first")), _doc(t, patient, _text("second"))
    _publish(t, [first, second])
    by_uid = ("identifier", f"{URI_SYSTEM}|urn:oid:{first.unique_id}")
    with t.step(1):
        _found(t, fhir.search([*_current(patient), by_uid]), [first.unique_id], "the uniqueId finds the first document")
    with t.step(2):
        listed = _found(t, fhir.search(_current(patient)), [first.unique_id, second.unique_id], "both documents")
        resource = next(r for r in listed if _unique_id(r) == second.unique_id)
        entry_uuids = [
            str(i.get("value"))
            for i in resource.get("identifier") or []
            if isinstance(i, dict) and str(i.get("value") or "").startswith("urn:uuid:")
        ]
        t.check(entry_uuids, "the second DocumentReference has a urn:uuid: identifier (its entryUUID)", got=resource)
        _found(
            t,
            fhir.search([*_current(patient), ("identifier", f"{URI_SYSTEM}|{entry_uuids[0]}")]),
            [second.unique_id],
            f"identifier {entry_uuids[0]} finds exactly the second document",
        )
    with t.step(3):
        _found(
            t,
            fhir.search([*_current(patient), ("identifier", f"{URI_SYSTEM}|urn:oid:{t.unique_id()}")]),
            [],
            "an unused uniqueId finds nothing",
        )
    with t.step(4):
        _found(
            t,
            fhir.search([*_patient(patient), ("status", "superseded"), by_uid]),
            [],
            "the current document is no match for status=superseded",
        )
    with t.step(5):
        _found(t, fhir.search([*_current(other), by_uid]), [], "the document is no match for another patient")


@implements("MHD-019")
def empty_and_bad_searches(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    doc = _doc(t, patient, _text("the only document"))
    _publish(t, [doc])
    with t.step(1):
        _found(t, fhir.search([*_patient(patient), ("status", "superseded")]), [], "an empty searchset")
    with t.step(2):
        _found(
            t,
            fhir.search([*_current(patient), ("x-rsb-unknown", "1")]),
            [doc.unique_id],
            "the unknown parameter is ignored",
        )
    with t.step(3):
        _found(t, fhir.search(_current(t.fresh_ssin())), [], "an unknown patient has no documents")
    with t.step(4):
        _refused(t, fhir.search([("patient.identifier", f"{SSIN_SYSTEM}|"), ("status", "current")]), (400,))


# ================================================================================================ ITI-66


def _usual_identifier(resource: Json) -> str:
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("use") == "usual":
            return str(identifier.get("value") or "").removeprefix("urn:oid:")
    return ""


def _members(resource: Json) -> list[str]:
    items = [e.get("item") for e in resource.get("entry") or [] if isinstance(e, dict)]
    return sorted(
        _location_id(str(i.get("reference") or ""), "DocumentReference") or str(i.get("reference"))
        for i in items
        if isinstance(i, dict)
    )


@implements("MHD-020")
def find_submission_sets(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    vault = t.client(protocol="mhd")
    pair = [_doc(t, patient, _text("one of two")), _doc(t, patient, _text("two of two"))]
    both = vault.publish_many([NewDocument(d.content, d.entry) for d in pair], author=t.author())
    alone = vault.publish(
        _text("alone"), patient=patient, document_type="note", author=t.author(), mime_type="text/plain"
    )
    params = [*_patient(patient), ("code", "submissionset"), ("status", "current")]
    expected = sorted([both.submission_set_unique_id, alone.submission_set_unique_id])
    pair_ids: list[str] = []

    def check_lists(response: httpx.Response) -> Json:
        lists = _searchset(t, response, "List")
        t.check(
            sorted(_usual_identifier(r) for r in lists) == expected,
            "exactly the two SubmissionSets (by uniqueId)",
            got=[_usual_identifier(r) for r in lists],
        )
        for resource in lists:
            t.check(
                (LIST_TYPES_SYSTEM, "submissionset") in _codings(resource.get("code")),
                "each List has code submissionset",
                got=resource.get("code"),
            )
        listed = next(r for r in lists if _usual_identifier(r) == both.submission_set_unique_id)
        t.check(
            _members(listed) == pair_ids,
            f"the two-document List references its two DocumentReferences {pair_ids}",
            got=_members(listed),
        )
        t.observe(f"Lists {', '.join(str(r.get('id')) for r in lists)}")
        return listed

    with t.step(1):
        documents = _found(
            t,
            fhir.search(_current(patient)),
            [*(d.unique_id for d in pair), alone.document.unique_id],
            "ITI-67 finds the patient's three documents",
        )
        pair_ids.extend(sorted(str(r.get("id")) for r in documents if _unique_id(r) in {d.unique_id for d in pair}))
        listed = check_lists(fhir.search(params, "List"))
    with t.step(2):
        response = fhir.read("List", str(listed.get("id")))
        t.check(response.status_code == 200, "the read answers 200 OK", got=_got(response))
        read = _json(t, response, "the List")
        t.check(
            (_usual_identifier(read), _members(read)) == (_usual_identifier(listed), _members(listed)),
            "the List read is the one found",
            got=read,
        )
        t.observe(f"List/{read.get('id')}: {_usual_identifier(read)}, entries {', '.join(_members(read))}")
    with t.step(3):
        check_lists(fhir.post_search(params, "List"))


# ================================================================================================ ITI-68


def _attachment(resource: Json) -> Json:
    content = resource.get("content") or [{}]
    attachment = content[0].get("attachment") if isinstance(content[0], dict) else None
    return attachment if isinstance(attachment, dict) else {}


def _check_bytes(t: CaseContext, response: httpx.Response, expected: bytes, mime_type: str) -> None:
    t.check(response.status_code == 200, "ITI-68 answers 200 OK", got=_got(response))
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    t.check(media == mime_type, f"Content-Type is {mime_type}", got=response.headers.get("content-type"))
    t.check(
        (_sha256(response.content), len(response.content)) == (_sha256(expected), len(expected)),
        "the body has the SHA-256 and size of the document sent",
        got=f"{len(response.content)} bytes, SHA-256 {_sha256(response.content)}",
    )
    t.observe(f"{len(response.content)} bytes of {media}, SHA-256 {_sha256(response.content)[:16]}…")


@implements("MHD-021")
def retrieve_exact_bytes(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    receipt = t.client(protocol="mhd").publish(
        PDF, patient=patient, document_type="contactreport", author=t.author(), mime_type="application/pdf"
    )
    with t.step(1):
        [resource] = _found(t, fhir.search(_current(patient)), [receipt.document.unique_id], "the document is found")
        attachment = _attachment(resource)
        sha1 = base64.b64encode(hashlib.sha1(PDF, usedforsecurity=False).digest()).decode("ascii")
        t.check(attachment.get("contentType") == "application/pdf", "contentType application/pdf", got=attachment)
        t.check(attachment.get("size") == len(PDF), f"size {len(PDF)}", got=attachment.get("size"))
        t.check(attachment.get("hash") == sha1, "hash is the SHA-1 of the content (base64)", got=attachment.get("hash"))
        url = str(attachment.get("url") or "")
        t.check(url.startswith(("http://", "https://")), "attachment.url is an absolute URL", got=url)
    with t.step(2):
        _check_bytes(t, fhir.retrieve(url, "application/pdf"), PDF, "application/pdf")
    with t.step(3):
        _check_bytes(t, fhir.retrieve(url, "*/*"), PDF, "application/pdf")


@implements("MHD-022")
def retrieve_errors(t: CaseContext) -> None:
    patient = t.new_patient()
    fhir = _Fhir(t)
    vault = t.client(protocol="mhd")
    original = vault.publish(
        _text("version 1"), patient=patient, document_type="note", author=t.author(), mime_type="text/plain"
    )
    replacement = _text("version 2")
    replaced = vault.replace(original.document.unique_id, replacement, author=t.author(), mime_type="text/plain")
    with t.step(1):
        [current] = _found(t, fhir.search(_current(patient)), [replaced.document.unique_id], "the replacement")
        current_url = str(_attachment(current).get("url") or "")
        t.check(current_url.startswith(("http://", "https://")), "it has an absolute attachment.url", got=current_url)
        parts = urlsplit(current_url)
        head = parts.path.rstrip("/").rsplit("/", 1)[0]
        unknown = urlunsplit((parts.scheme, parts.netloc, f"{head}/{uuid.uuid4()}", "", ""))
        answer = fhir.retrieve(unknown, "*/*")
        t.check(answer.status_code == 404, "ITI-68 of an unknown URL answers 404 Not Found", got=_got(answer))
        t.observe(f"GET {unknown} -> {answer.status_code}")
    with t.step(2):
        superseded = [*_patient(patient), ("status", "superseded")]
        [old] = _found(t, fhir.search(superseded), [original.document.unique_id], "the original is superseded")
        old_url = str(_attachment(old).get("url") or "")
        t.check(old_url.startswith(("http://", "https://")), "it has an absolute attachment.url", got=old_url)
        answer = fhir.retrieve(old_url, "*/*")
        t.check(
            answer.status_code in (410, 404),
            "ITI-68 of a superseded document answers 410 Gone (or 404 by policy)",
            got=_got(answer),
        )
        t.observe(f"GET {old_url} -> {answer.status_code}")
    with t.step(3):
        answer = fhir.retrieve(current_url, "image/png")
        t.check(answer.status_code == 406, "Accept: image/png answers 406 Not Acceptable", got=_got(answer))
        t.observe(f"GET {current_url} (Accept: image/png) -> {answer.status_code}")
    with t.step(4):
        _check_bytes(t, fhir.retrieve(current_url, "text/plain"), replacement, "text/plain")

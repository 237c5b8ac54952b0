"""Security cases (``conformance/catalogue/security.toml``): WS-Security on the XDS.b endpoints, OAuth2 on FHIR.

Each attack is built like a genuine message (the shared binding builds the envelope, :func:`sign_envelope` signs it
as the identity concerned) and then tampered with, byte for byte, the way an attacker would; the raw bytes go to the
hub through the case's recording transport. The hub's answers are read only after their own signature was checked
against the run's trust store (when the run has one), so a forged "refusal" cannot pass for the hub's.

Certificates and keys of the attacker (a certificate authority the hub does not trust, and a certificate naming the
suite's own identity issued by it) are made in memory, once per process, and never written anywhere.

After every refusal the case asks again, properly signed, whether anything was stored: a refusal that stored the
document anyway is a failure.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from ...identifiers import Ssin
from ...metadata.builder import new_document, new_submission
from ...metadata.model import DocumentEntry, Submission
from ...mhd.bundle import build_provide_bundle
from ...mhd.mapping import as_json
from ...query import FindDocuments
from ...security.identity import Identity
from ...security.jwt import CLIENT_ASSERTION_TYPE, make_client_assertion
from ...security.pki import DevelopmentCa
from ...security.wssec import WSSE, VerifiedMessage, WsSecurityVerifier, sign_envelope
from ...security.xml import parse_xml
from ...xds import constants as c
from ...xds import iti18, iti41, soap
from ...xds.mtom import MtomParser, MtomWriter, OutgoingAttachment, is_mtom
from ...xds.parts import XopRef
from ...xds.rs import RegistryResult
from .. import wire
from ..context import AUTHOR, CaseContext, MissingNeed
from . import implements
from ._common import attachment_url

CID: Final = "doc0@rsb-conformance.test"
FHIR_JSON: Final = "application/fhir+json"
TOKEN_PATH: Final = "/oauth2/token"  # noqa: S105 - a URL path
OTHER_NIHII: Final = "14087170580"
"""A professional's NIHII (the sample specialist's) that a forged token claims instead of the author's."""


# ============================================================================================== the attacker's PKI


@cache
def _rogue_ca() -> DevelopmentCa:
    """A certificate authority the hub has never heard of (in memory, once per process)."""
    return DevelopmentCa.create(name="rsb-connector conformance: untrusted CA", key_size=2048)


def _impostor(t: CaseContext, name: str = AUTHOR) -> Identity:
    """A certificate with ``name``'s very subject (name, NIHII, profession), issued by the untrusted CA."""
    rogue = _rogue_ca()
    genuine = t.identity(name)
    cert, key = rogue.issue(genuine.certificate.subject, key=_rogue_key())
    return Identity(cert, key, [rogue.certificate], source="conformance impostor (in memory)")


@cache
def _rogue_key() -> rsa.RSAPrivateKey:
    """The impostor's key (in memory, once per process)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# ============================================================================================== SOAP building blocks


def _document(t: CaseContext, patient: str, label: str) -> tuple[Submission, DocumentEntry, bytes]:
    """A one-document submission by the author (hash and size of ``content`` in the metadata)."""
    content = f"rsb-connector conformance {t.case.id}: {label} ({uuid.uuid4()})\n".encode()
    entry = new_document(
        content,
        patient=patient,
        document_type="contactreport",
        author=t.author(),
        mime_type="text/plain",
        title=f"{t.case.id} {label}",
        unique_id=t.unique_id(),
    )
    return new_submission([entry], author=t.author(), unique_id=t.unique_id()), entry, content


def _envelope(t: CaseContext, submission: Submission, action: str = c.ACTION_ITI41) -> etree._Element:
    """The unsigned ITI-41 envelope of ``submission``: the document as an ``xop:Include`` of :data:`CID`."""
    payload = iti41.build_request(submission, {submission.entries[0].entry_uuid: XopRef(CID)})
    return soap.build_envelope(payload, action=action, to=f"{t.env.hub_url.rstrip('/')}/xds/repository")


def _signed(envelope: etree._Element, identity: Identity, **options: Any) -> bytes:
    """``envelope`` signed (WS-Security) and serialized once: the exact bytes to send."""
    return soap.serialize(sign_envelope(envelope, identity, **options))


def _send(t: CaseContext, root: bytes, attachment: bytes) -> httpx.Response:
    """Post ``root`` as an MTOM ITI-41 with ``attachment`` as part :data:`CID`."""
    writer = MtomWriter(root, [OutgoingAttachment(CID, attachment, "text/plain")], action=c.ACTION_ITI41)
    return t.http().post("/xds/repository", content=writer.to_bytes(), headers={"content-type": writer.content_type})


def _root(response: httpx.Response) -> bytes:
    """The SOAP envelope of an answer (the root part of an MTOM answer)."""
    content_type = response.headers.get("content-type", "")
    if not is_mtom(content_type):
        return response.content
    parser = MtomParser(content_type, spool_dir=Path(tempfile.gettempdir()))
    parser.feed(response.content)
    message = parser.close()
    try:
        return message.root
    finally:
        message.discard()


def _verified(t: CaseContext, response: httpx.Response) -> VerifiedMessage:
    """The hub's answer, its WS-Security signature checked against the run's trust store."""
    if t.env.trust is None:
        raise MissingNeed("the hub's CA (a trust store) to check the signature of its answers")
    verifier = WsSecurityVerifier(t.env.trust, require_signed_addressing=True)
    return verifier.verify(parse_xml(_root(response)))


def _answer(t: CaseContext, response: httpx.Response) -> soap.SoapMessage:
    """The hub's answer: its signed parts when the run has a trust store, else as parsed."""
    if t.env.trust is None:
        return soap.parse_envelope(parse_xml(_root(response)))
    return _verified(t, response).soap_message()


def _check_fault(t: CaseContext, response: httpx.Response, codes: Sequence[str]) -> None:
    """HTTP 400 with a SOAP Fault, Code Sender, Subcode one of the WS-Security ``codes`` (local names)."""
    fault = soap.parse_fault(_answer(t, response))
    wanted = " or ".join(f"wsse:{code}" for code in codes)
    t.check(fault is not None, f"a SOAP Fault with Subcode {wanted}", got=(response.status_code, response.text[:300]))
    assert fault is not None
    subcode = _wsse_local_name(fault)
    t.check(
        response.status_code == 400 and fault.code == "Sender" and subcode in codes,
        f"HTTP 400, a SOAP Fault with Code Sender and Subcode {wanted}",
        got=(response.status_code, fault.code, fault.subcode, fault.reason),
    )
    t.observe(f"{fault.subcode}: {fault.reason}")


def _wsse_local_name(fault: soap.SoapFaultInfo) -> str | None:
    """The local name of a WS-Security fault Subcode: resolved by namespace when the answer declares it, else by
    the conventional ``wsse:`` prefix (a signed copy may have lost the declaration); None for any other Subcode."""
    if fault.subcode_name is not None:
        namespace, local = fault.subcode_name
        return local if namespace == WSSE else None
    prefix, _, local = (fault.subcode or "").rpartition(":")
    return local if prefix == "wsse" else None


def _registry_result(t: CaseContext, response: httpx.Response) -> RegistryResult:
    message = _answer(t, response)
    t.check(
        message.action == c.ACTION_ITI41_RESPONSE and message.payload is not None,
        "an ITI-41 RegistryResponse",
        got=(response.status_code, message.action, response.text[:300]),
    )
    assert message.payload is not None
    return iti41.parse_response(message.payload)


def _found(t: CaseContext, patient: str) -> list[DocumentEntry]:
    """FindDocuments for ``patient``, signed by the author (a Success is required)."""
    answer = wire.query(t.peer(AUTHOR), FindDocuments(patient_id=Ssin(patient).to_cx()))
    t.check(
        answer.status == c.STATUS_SUCCESS and not [p for p in answer.problems if p.is_error],
        "the author's FindDocuments: Success",
        got=(answer.status.rpartition(":")[2], [str(p) for p in answer.problems]),
    )
    return answer.entries


def _check_nothing_stored(t: CaseContext, *patients: str) -> None:
    for patient in patients:
        found = _found(t, patient)
        t.check(not found, "no entry: nothing was stored", got=[e.unique_id for e in found])


def _one_element(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces={"s": c.SOAP12, "wsse": WSSE})
    if not isinstance(found, list) or len(found) != 1 or not isinstance(found[0], etree._Element):
        raise RuntimeError(f"setup: the signed envelope has no single {path}")
    return found[0]


# ============================================================================================== SOAP cases


@implements("SEC-001")
def unsigned_request(t: CaseContext) -> None:
    patient = t.new_patient()
    submission, _, content = _document(t, patient, "unsigned")
    with t.step(1):
        _check_fault(
            t, _send(t, soap.serialize(_envelope(t, submission)), content), ["InvalidSecurity", "FailedAuthentication"]
        )
    with t.step(2):
        _check_nothing_stored(t, patient)


@implements("SEC-002")
def expired_timestamp(t: CaseContext) -> None:
    patient = t.new_patient()
    submission, _, content = _document(t, patient, "expired")
    old = datetime.now(UTC) - timedelta(minutes=10)
    root = _signed(_envelope(t, submission), t.identity(), now=old, ttl=60)
    with t.step(1):
        _check_fault(t, _send(t, root, content), ["MessageExpired"])
    with t.step(2):
        _check_nothing_stored(t, patient)


@implements("SEC-003")
def untrusted_certificate(t: CaseContext) -> None:
    patient = t.new_patient()
    impostor = _impostor(t)
    submission, _, content = _document(t, patient, "impostor")
    with t.step(1):
        _check_fault(
            t,
            _send(t, _signed(_envelope(t, submission), impostor), content),
            ["InvalidSecurityToken", "FailedAuthentication"],
        )
    with t.step(2):
        _check_nothing_stored(t, patient)


@implements("SEC-004")
def replayed_message(t: CaseContext) -> None:
    patient = t.new_patient()
    submission, entry, content = _document(t, patient, "replayed")
    root = _signed(_envelope(t, submission), t.identity())
    with t.step(1):
        result = _registry_result(t, _send(t, root, content))
        t.check(result.ok, "RegistryResponse Success", got=[str(p) for p in result.problems])
    with t.step(2):
        _check_fault(t, _send(t, root, content), ["InvalidSecurity", "FailedAuthentication"])
    with t.step(3):
        found = [e.unique_id for e in _found(t, patient)]
        t.check(found == [entry.unique_id], "exactly the document of step 1", got=found)


@implements("SEC-005")
def body_changed_after_signing(t: CaseContext) -> None:
    patient_a, patient_b = t.new_patient(), t.new_patient()
    submission, _, content = _document(t, patient_a, "rewritten")
    root = _signed(_envelope(t, submission), t.identity())
    forged = root.replace(patient_a.encode(), patient_b.encode())
    if forged == root:
        raise RuntimeError("setup: the signed message does not carry the patient's SSIN")
    with t.step(1):
        _check_fault(t, _send(t, forged, content), ["FailedCheck"])
    with t.step(2):
        _check_nothing_stored(t, patient_a, patient_b)


@implements("SEC-006")
def signature_wrapping(t: CaseContext) -> None:
    patient_a, patient_b = t.new_patient(), t.new_patient()
    submission, _, content = _document(t, patient_a, "genuine")
    evil_submission, _, _ = _document(t, patient_b, "smuggled")
    root = parse_xml(_signed(_envelope(t, submission), t.identity()))
    signed_body = _one_element(root, "/s:Envelope/s:Body")
    wrapper = etree.SubElement(_one_element(root, "/s:Envelope/s:Header"), "{urn:attacker}Wrapper")
    root.remove(signed_body)
    wrapper.append(signed_body)
    evil = etree.SubElement(root, f"{{{c.SOAP12}}}Body")
    evil.append(iti41.build_request(evil_submission, {evil_submission.entries[0].entry_uuid: XopRef(CID)}))
    with t.step(1):
        _check_fault(t, _send(t, soap.serialize(root), content), ["InvalidSecurity", "FailedCheck"])
    with t.step(2):
        _check_nothing_stored(t, patient_a, patient_b)


@implements("SEC-007")
def attachment_swapped(t: CaseContext) -> None:
    patient = t.new_patient()
    submission, entry, content = _document(t, patient, "genuine report")
    swapped = bytes(reversed(content[:-1])) + content[-1:]  # same length, other bytes
    if swapped == content:
        swapped = content.upper()
    with t.step(1):
        result = _registry_result(t, _send(t, _signed(_envelope(t, submission), t.identity()), swapped))
        codes = {p.code for p in result.problems if p.is_error}
        t.check(
            result.status == c.STATUS_FAILURE and codes == {"XDSRepositoryMetadataError"},
            "RegistryResponse Failure whose only error code is XDSRepositoryMetadataError",
            got=(result.status.rpartition(":")[2], [str(p) for p in result.problems]),
        )
    with t.step(2):
        _check_nothing_stored(t, patient)
    with t.step(3):
        result = _registry_result(t, _send(t, _signed(_envelope(t, submission), t.identity()), content))
        t.check(result.ok, "RegistryResponse Success with the genuine bytes", got=[str(p) for p in result.problems])
        found = _found(t, patient)
        sha1 = hashlib.sha1(content, usedforsecurity=False).hexdigest()
        t.check(
            [(e.unique_id, (e.hash or "").lower()) for e in found] == [(entry.unique_id, sha1)],
            "the document is registered with the SHA-1 of the genuine bytes",
            got=[(e.unique_id, e.hash) for e in found],
        )


@implements("SEC-011")
def signed_answers(t: CaseContext) -> None:
    if t.env.trust is None:
        raise MissingNeed("the hub's CA (a trust store) to check the signature of its answers")
    patient = t.new_patient()
    query = iti18.build_request(FindDocuments(patient_id=Ssin(patient).to_cx()))
    url = f"{t.env.hub_url.rstrip('/')}/xds/registry"

    def post(root: bytes) -> httpx.Response:
        return t.http().post(
            "/xds/registry", content=root, headers={"content-type": soap.soap_content_type(c.ACTION_ITI18)}
        )

    with t.step(1):
        message_id = soap.new_message_id()
        envelope = soap.build_envelope(query, action=c.ACTION_ITI18, message_id=message_id, to=url)
        verified = _verified(t, post(_signed(envelope, t.identity())))
        t.check(
            verified.action == c.ACTION_ITI18_RESPONSE and verified.relates_to == message_id,
            "the signed wsa:Action is the ITI-18 response action and the signed wsa:RelatesTo the request's MessageID",
            got=(verified.action, verified.relates_to, message_id),
        )
        t.observe(f"signed by {verified.signer.describe()}; signed parts: {len(verified.signed_ids)}")
    with t.step(2):
        message_id = soap.new_message_id()
        unsigned = soap.build_envelope(
            iti18.build_request(FindDocuments(patient_id=Ssin(patient).to_cx())),
            action=c.ACTION_ITI18,
            message_id=message_id,
            to=url,
        )
        verified = _verified(t, post(soap.serialize(unsigned)))
        fault = soap.parse_fault(verified.soap_message())
        t.check(fault is not None, "the answer is a SOAP Fault", got=verified.action)
        t.check(
            verified.relates_to == message_id,
            "the fault's signed wsa:RelatesTo names the request",
            got=(verified.relates_to, message_id),
        )


# ============================================================================================== FHIR building blocks


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64url(header)), json.loads(_unb64url(payload)), signature


def _jwt(header: Mapping[str, Any], claims: Mapping[str, Any], key: rsa.RSAPrivateKey | None) -> str:
    signing_input = f"{_b64url(json.dumps(dict(header)).encode())}.{_b64url(json.dumps(dict(claims)).encode())}"
    if key is None:
        return f"{signing_input}."
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def _published(t: CaseContext) -> tuple[str, str, bytes]:
    """The case's own patient with one document by the author: (SSIN, uniqueId, content)."""
    patient = t.new_patient()
    submission, entry, content = _document(t, patient, "published")
    result = wire.provide(t.peer(AUTHOR), submission, {entry.entry_uuid: content})
    if not result.ok:
        raise RuntimeError(f"setup: the author could not publish ({[str(p) for p in result.problems]})")
    return patient, entry.unique_id or "", content


def _search(t: CaseContext, patient: str, headers: Mapping[str, str]) -> httpx.Response:
    params = {"patient": f"Patient/{patient}", "status": "current"}
    return t.http().get("/fhir/DocumentReference", params=params, headers=dict(headers))


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": FHIR_JSON}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _check_challenge(t: CaseContext, response: httpx.Response, *, error: str | None = None) -> None:
    """HTTP 401 with ``WWW-Authenticate: Bearer ...`` (naming ``error`` when given) and no Bundle."""
    challenge = response.headers.get("www-authenticate", "")
    body = _json(response)
    t.check(
        response.status_code == 401 and challenge.lower().startswith("bearer"),
        "HTTP 401 with a WWW-Authenticate header of scheme Bearer",
        got=(response.status_code, challenge),
    )
    if error is not None:
        t.check(f'error="{error}"' in challenge, f'the challenge names error="{error}"', got=challenge)
    t.check(body.get("resourceType") != "Bundle" and "entry" not in body, "no Bundle in the answer", got=body)


def _attachment_url(t: CaseContext, patient: str, unique_id: str) -> str:
    url = attachment_url(_json(_search(t, patient, _bearer(t.token(AUTHOR)))), unique_id)
    if url:
        return url
    raise RuntimeError(f"setup: the author does not find the DocumentReference of {unique_id} over MHD (ITI-67)")


# ============================================================================================== FHIR cases


@implements("SEC-008")
def no_bearer_token(t: CaseContext) -> None:
    patient, unique_id, content = _published(t)
    url = _attachment_url(t, patient, unique_id)
    with t.step(1):
        response = _search(t, patient, {"accept": FHIR_JSON})
        _check_challenge(t, response)
        t.check(unique_id not in response.text, "the document's uniqueId is not in the answer")
    with t.step(2):
        response = t.http().get(url, headers={"accept": "*/*"})
        _check_challenge(t, response)
        t.check(content not in response.content, "the document's bytes are not in the answer")
    with t.step(3):
        _, entry, data = _document(t, patient, "unauthenticated ITI-65")
        bundle = as_json(build_provide_bundle(new_submission([entry], author=t.author()), {entry.entry_uuid: data}))
        response = t.http().post("/fhir", json=bundle, headers={"accept": FHIR_JSON, "content-type": FHIR_JSON})
        _check_challenge(t, response)
        found = [e.unique_id for e in _found(t, patient)]
        t.check(found == [unique_id], "FindDocuments lists only the document published before", got=found)


@implements("SEC-009")
def forged_tokens(t: CaseContext) -> None:
    patient, unique_id, _ = _published(t)
    genuine = t.token(AUTHOR)
    header, claims, signature = _jwt_parts(genuine)
    with t.step(1):
        response = _search(t, patient, _bearer(genuine))
        body = _json(response)
        listed = [
            str((e.get("resource") or {}).get("masterIdentifier", {}).get("value", "")) for e in body.get("entry") or []
        ]
        t.check(
            response.status_code == 200 and [u.removeprefix("urn:oid:") for u in listed] == [unique_id],
            "HTTP 200, a searchset Bundle listing the patient's document",
            got=(response.status_code, listed),
        )
    with t.step(2):
        unsigned = _jwt({**header, "alg": "none"}, claims, None)
        _check_challenge(t, _search(t, patient, _bearer(unsigned)), error="invalid_token")
    with t.step(3):
        other = OTHER_NIHII if claims.get("nihii") != OTHER_NIHII else "12345625004"
        altered = {**claims, "sub": f"nihii:{other}", "nihii": other}
        payload = _b64url(json.dumps(altered).encode())
        tampered = f"{genuine.split('.')[0]}.{payload}.{signature}"
        _check_challenge(t, _search(t, patient, _bearer(tampered)), error="invalid_token")
    with t.step(4):
        foreign = _jwt(header, claims, _rogue_key())
        _check_challenge(t, _search(t, patient, _bearer(foreign)), error="invalid_token")


def _token_request(t: CaseContext, assertion: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    return t.http().post(TOKEN_PATH, data=form)


def _check_invalid_client(t: CaseContext, response: httpx.Response) -> None:
    body = _json(response)
    t.check(
        response.status_code in (400, 401) and body.get("error") == "invalid_client" and "access_token" not in body,
        "HTTP 400 or 401, error invalid_client, no access_token",
        got=(response.status_code, body),
    )
    t.observe(str(body.get("error_description", "")))


@implements("SEC-010")
def token_endpoint(t: CaseContext) -> None:
    token_url = f"{t.env.hub_url.rstrip('/')}{TOKEN_PATH}"
    genuine = make_client_assertion(t.identity(), token_url=token_url)
    with t.step(1):
        response = _token_request(t, genuine)
        body = _json(response)
        t.check(
            response.status_code == 200 and body.get("token_type") == "Bearer" and bool(body.get("access_token")),
            "HTTP 200, token_type Bearer and an access_token",
            got=(response.status_code, {k: v for k, v in body.items() if k != "access_token"}),
        )
    with t.step(2):
        _check_invalid_client(t, _token_request(t, make_client_assertion(_impostor(t), token_url=token_url)))
    with t.step(3):
        stale = make_client_assertion(
            t.identity(), token_url=token_url, now=datetime.now(UTC) - timedelta(minutes=10), lifetime=60
        )
        _check_invalid_client(t, _token_request(t, stale))
    with t.step(4):
        _check_invalid_client(t, _token_request(t, genuine))

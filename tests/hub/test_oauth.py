"""The hub's OAuth2 side over HTTP: ``POST /oauth2/token`` (client_credentials + private_key_jwt) and the
``require_bearer`` guard FHIR routes use. Every attack on the token endpoint is refused with the RFC 6749 error
code; every forged or stale access token is refused with 401 and a ``WWW-Authenticate`` challenge."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rsb_connector.hub.auth import require_bearer
from rsb_connector.hub.server import Hub, build_hub
from rsb_connector.security.identity import Identity
from rsb_connector.security.jwt import CLIENT_ASSERTION_TYPE, issue_access_token, make_client_assertion
from rsb_connector.security.pki import SAMPLE_IDENTITIES, DevelopmentCa, PkiDescription
from rsb_connector.testing import SyncASGITransport

BASE = "http://hub.test"
TOKEN_URL = f"{BASE}/oauth2/token"


async def whoami(request: Request) -> Response:
    """What a FHIR route sees: the caller ``require_bearer`` established."""
    caller = await require_bearer(request)
    return JSONResponse(
        {
            "subject": caller.subject,
            "role": caller.role,
            "nihii": caller.nihii,
            "ssin": caller.ssin,
            "authenticated": caller.authenticated,
        }
    )


WHOAMI = [Route("/fhir/whoami", whoami, methods=["GET"])]


@pytest.fixture
def hub(tmp_path: Path, rsb_pki: PkiDescription) -> Iterator[Hub]:
    built = build_hub(tmp_path / "hub", seed=True, pki=rsb_pki, extra_routes=WHOAMI)
    yield built
    built.close()


@pytest.fixture
def http(hub: Hub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE, transport=SyncASGITransport(hub.app)) as client:
        yield client


@pytest.fixture(scope="module")
def impostor() -> Identity:
    rogue = DevelopmentCa.create(name="Rogue CA", key_size=2048)
    cert, key = rogue.issue_identity(SAMPLE_IDENTITIES[0])
    return Identity(cert, key, [rogue.certificate], source="impostor")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes] | None) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode())) if sign else ''}"


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))),
        json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))),
    )


def rs256(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def token_request(http: httpx.Client, assertion: str | None, **fields: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE, **fields}
    if assertion is not None:
        form["client_assertion"] = assertion
    return http.post("/oauth2/token", data=form)


def oauth_error(response: httpx.Response, error: str, status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error, body
    return str(body["error_description"])


def access_token(http: httpx.Client, identity: Identity, **fields: str) -> str:
    response = token_request(http, make_client_assertion(identity, token_url=TOKEN_URL), **fields)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def challenge(response: httpx.Response, status: int = 401) -> str:
    assert response.status_code == status, response.text
    header = response.headers["www-authenticate"]
    assert header.startswith('Bearer realm="rsb-hub"')
    return header


# ------------------------------------------------------------------------------------------------ the token


def test_a_professional_gets_a_bearer_token(http: httpx.Client, rsb_identity: Callable[[str], Identity]) -> None:
    gp = rsb_identity("gp")
    response = token_request(http, make_client_assertion(gp, token_url=TOKEN_URL))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "system/*.*"
    header, claims = decode(body["access_token"])
    assert header["alg"] == "RS256"
    assert claims["iss"] == BASE
    assert claims["aud"] == f"{BASE}/fhir"
    assert claims["sub"] == "nihii:12345625004"
    assert (claims["kind"], claims["profession"], claims["nihii"]) == ("professional", "persphysician", "12345625004")

    who = http.get("/fhir/whoami", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert who.status_code == 200
    assert who.json() == {
        "subject": "nihii:12345625004",
        "role": "persphysician",
        "nihii": "12345625004",
        "ssin": None,
        "authenticated": True,
    }


def test_a_patient_token_names_the_patient(http: httpx.Client, rsb_identity: Callable[[str], Identity]) -> None:
    token = access_token(http, rsb_identity("patient1"), scope="patient/DocumentReference.read")
    who = http.get("/fhir/whoami", headers={"Authorization": f"bearer {token}"}).json()
    assert (who["role"], who["ssin"], who["subject"]) == ("patient", "87041213797", "ssin:87041213797")
    assert decode(token)[1]["scope"] == "patient/DocumentReference.read"


# ------------------------------------------------------------------------------------------------ malformed requests


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        ({"grant_type": ""}, "invalid_request"),
        ({"client_assertion_type": "urn:example:saml"}, "invalid_client"),
        ({"client_secret": "hunter2"}, "invalid_request"),
        ({"scope": "everything"}, "invalid_scope"),
    ],
    ids=["password-grant", "code-grant", "no-grant", "saml-assertion", "client-secret", "bad-scope"],
)
def test_malformed_token_requests(
    http: httpx.Client, rsb_identity: Callable[[str], Identity], fields: dict[str, str], error: str
) -> None:
    assertion = make_client_assertion(rsb_identity("gp"), token_url=TOKEN_URL)
    oauth_error(token_request(http, assertion, **fields), error)


def test_requests_that_are_not_a_form_or_lack_authentication(
    http: httpx.Client, rsb_identity: Callable[[str], Identity]
) -> None:
    assertion = make_client_assertion(rsb_identity("gp"), token_url=TOKEN_URL)
    as_json = http.post("/oauth2/token", json={"grant_type": "client_credentials", "client_assertion": assertion})
    assert "x-www-form-urlencoded" in oauth_error(as_json, "invalid_request")
    oauth_error(token_request(http, None), "invalid_request")
    repeated = http.post(
        "/oauth2/token",
        content=f"grant_type=client_credentials&grant_type=client_credentials&client_assertion={assertion}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert "repeated" in oauth_error(repeated, "invalid_request")
    assert http.get("/oauth2/token").status_code == 405


# -------------------------------------------------------------------------------- attacks on the token endpoint


def _claims(identity: Identity, **overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": identity.client_id,
        "sub": identity.client_id,
        "aud": TOKEN_URL,
        "jti": f"jti-{now}-{id(overrides)}",
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    return claims


def _x5c(identity: Identity) -> list[str]:
    return [base64.b64encode(identity.certificate.public_bytes(serialization.Encoding.DER)).decode()]


def test_alg_none_is_refused(http: httpx.Client, rsb_identity: Callable[[str], Identity]) -> None:
    gp = rsb_identity("gp")
    token = forge({"alg": "none", "typ": "JWT", "x5c": _x5c(gp)}, _claims(gp), None)
    assert "algorithm" in oauth_error(token_request(http, token), "invalid_client")


def test_hs256_keyed_with_the_public_key_is_refused(
    http: httpx.Client, rsb_identity: Callable[[str], Identity]
) -> None:
    gp = rsb_identity("gp")
    pem = gp.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    token = forge(
        {"alg": "HS256", "typ": "JWT", "x5c": _x5c(gp)},
        _claims(gp),
        lambda data: hmac.new(pem, data, hashlib.sha256).digest(),
    )
    assert "algorithm" in oauth_error(token_request(http, token), "invalid_client")


def test_a_signature_by_the_wrong_key_is_refused(http: httpx.Client, rsb_identity: Callable[[str], Identity]) -> None:
    gp, nurse = rsb_identity("gp"), rsb_identity("nurse")
    token = forge({"alg": "RS256", "typ": "JWT", "x5c": _x5c(gp)}, _claims(gp), rs256(nurse.private_key))
    assert "signature" in oauth_error(token_request(http, token), "invalid_client")


def test_speaking_for_someone_else_is_refused(http: httpx.Client, rsb_identity: Callable[[str], Identity]) -> None:
    gp, nurse = rsb_identity("gp"), rsb_identity("nurse")
    claims = _claims(gp, iss=nurse.client_id, sub=nurse.client_id)
    token = forge({"alg": "RS256", "typ": "JWT", "x5c": _x5c(gp)}, claims, rs256(gp.private_key))
    assert "client id" in oauth_error(token_request(http, token), "invalid_client")


def test_a_certificate_from_another_ca_is_refused(http: httpx.Client, impostor: Identity) -> None:
    token = make_client_assertion(impostor, token_url=TOKEN_URL)
    assert "not trusted" in oauth_error(token_request(http, token), "invalid_client")


def test_an_expired_assertion_is_refused(http: httpx.Client, rsb_identity: Callable[[str], Identity]) -> None:
    old = datetime.now(UTC) - timedelta(minutes=10)
    token = make_client_assertion(rsb_identity("gp"), token_url=TOKEN_URL, now=old)
    assert "expired" in oauth_error(token_request(http, token), "invalid_client")


def test_an_assertion_for_another_audience_is_refused(
    http: httpx.Client, rsb_identity: Callable[[str], Identity]
) -> None:
    token = make_client_assertion(rsb_identity("gp"), token_url="https://other-hub.example/oauth2/token")
    assert "aud" in oauth_error(token_request(http, token), "invalid_client")


def test_a_replayed_assertion_is_refused(http: httpx.Client, rsb_identity: Callable[[str], Identity]) -> None:
    token = make_client_assertion(rsb_identity("gp"), token_url=TOKEN_URL)
    assert token_request(http, token).status_code == 200
    assert "already used" in oauth_error(token_request(http, token), "invalid_client")


# ------------------------------------------------------------------------------------------------ require_bearer


def test_no_token_is_a_401_challenge(http: httpx.Client) -> None:
    header = challenge(http.get("/fhir/whoami"))
    assert "error=" not in header  # RFC 6750 §3.1: no error code when no credentials were sent


def test_a_malformed_authorization_header_is_a_400(http: httpx.Client) -> None:
    header = challenge(http.get("/fhir/whoami", headers={"Authorization": "Basic Z3A6c2VjcmV0"}), 400)
    assert 'error="invalid_request"' in header


def test_forged_and_stale_access_tokens_are_refused(
    http: httpx.Client, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    genuine = access_token(http, rsb_identity("gp"))
    header, claims = decode(genuine)
    hub_identity = rsb_pki.load_hub_identity()
    pem = hub_identity.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims["profession"] = "perspharmacist"  # what a forger wants to change
    forged = {
        "garbage": "not-a-jwt",
        "alg-none": forge({**header, "alg": "none"}, claims, None),
        "hs256-public-key": forge(
            {**header, "alg": "HS256"}, claims, lambda data: hmac.new(pem, data, hashlib.sha256).digest()
        ),
        "other-key": forge(header, claims, rs256(rsb_identity("gp").private_key)),
        "expired": issue_access_token(
            hub_identity,
            subject="nihii:12345625004",
            claims={"kind": "professional"},
            issuer=BASE,
            audience=f"{BASE}/fhir",
            now=datetime.now(UTC) - timedelta(hours=1),
        ),
        "other-audience": issue_access_token(
            hub_identity, subject="nihii:12345625004", claims={}, issuer=BASE, audience="https://elsewhere/fhir"
        ),
        "other-issuer": issue_access_token(
            hub_identity, subject="nihii:12345625004", claims={}, issuer="http://other.test", audience=f"{BASE}/fhir"
        ),
    }
    for name, token in forged.items():
        response = http.get("/fhir/whoami", headers={"Authorization": f"Bearer {token}"})
        assert 'error="invalid_token"' in challenge(response), name
    assert http.get("/fhir/whoami", headers={"Authorization": f"Bearer {genuine}"}).status_code == 200


def test_a_token_is_bound_to_the_hub_url_it_was_issued_at(
    hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity]
) -> None:
    token = access_token(http, rsb_identity("gp"))
    with httpx.Client(base_url="http://another-name.test", transport=SyncASGITransport(hub.app)) as elsewhere:
        challenge(elsewhere.get("/fhir/whoami", headers={"Authorization": f"Bearer {token}"}))


def test_an_allow_unsigned_hub_lets_anonymous_requests_through(tmp_path: Path, rsb_pki: PkiDescription) -> None:
    hub = build_hub(tmp_path / "open", pki=rsb_pki, allow_unsigned=True, extra_routes=WHOAMI)
    try:
        with httpx.Client(base_url=BASE, transport=SyncASGITransport(hub.app)) as http:
            who = http.get("/fhir/whoami").json()
            assert (who["subject"], who["authenticated"]) == ("anonymous", False)
            challenge(http.get("/fhir/whoami", headers={"Authorization": "Bearer not-a-jwt"}))  # still checked
    finally:
        hub.close()

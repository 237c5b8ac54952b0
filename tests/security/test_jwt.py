"""private_key_jwt client assertions and hub access tokens: RS256 pinned, every claim checked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rsb_connector.security.identity import Identity
from rsb_connector.security.jwt import (
    INVALID_CLIENT,
    INVALID_TOKEN,
    JwtError,
    issue_access_token,
    key_id,
    make_client_assertion,
    verify_access_token,
    verify_client_assertion,
)
from rsb_connector.security.trust import ReplayCache, TrustStore

from .conftest import TOKEN_URL

HUB = "http://localhost:8080"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))),
        json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))),
    )


def rs256(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes] | None) -> str:
    signing_input = f"{part(header)}.{part(claims)}"
    signature = b64url(sign(signing_input.encode())) if sign else ""
    return f"{signing_input}.{signature}"


def refused(code: str, call: Callable[[], object], match: str | None = None) -> JwtError:
    with pytest.raises(JwtError, match=match) as caught:
        call()
    assert caught.value.error == code
    return caught.value


@pytest.fixture
def replay() -> ReplayCache:
    return ReplayCache()


@pytest.fixture
def check(trust: TrustStore, replay: ReplayCache) -> Callable[..., object]:
    def run(token: str, **kwargs: Any) -> object:
        kwargs.setdefault("audience", TOKEN_URL)
        return verify_client_assertion(token, trust=trust, replay=replay, **kwargs)

    return run


# ---------------------------------------------------------------------------------------------- client assertion


def test_client_assertion_round_trip(gp: Identity, check: Callable[..., Any]) -> None:
    token = make_client_assertion(gp, token_url=TOKEN_URL)
    header, claims = decode(token)
    assert header["alg"] == "RS256"
    assert header["typ"] == "JWT"
    assert header["kid"] == key_id(gp.public_key)
    assert base64.b64decode(header["x5c"][0]) == gp.certificate.public_bytes(serialization.Encoding.DER)
    assert len(header["x5c"]) == 1  # the self-signed root is not sent
    assert claims["iss"] == claims["sub"] == "nihii:12345625004"
    assert claims["aud"] == TOKEN_URL
    assert claims["exp"] - claims["iat"] == 60
    result = check(token)
    assert result.client_id == gp.client_id
    assert result.principal.profession == "persphysician"
    assert result.certificate == gp.certificate
    assert result.jti == claims["jti"]
    assert result.chain[-1].subject == result.chain[-1].issuer


def test_audience_may_be_one_of_several(patient: Identity, check: Callable[..., Any]) -> None:
    token = make_client_assertion(patient, token_url=TOKEN_URL)
    assert check(token, audience=["http://127.0.0.1:8080/oauth2/token", TOKEN_URL]).client_id.startswith("ssin:")


def test_alg_none_refused(gp: Identity, check: Callable[..., Any]) -> None:
    _, claims = decode(make_client_assertion(gp, token_url=TOKEN_URL))
    header = {"alg": "none", "typ": "JWT"}
    refused(INVALID_CLIENT, lambda: check(forge(header, claims, None)), "only RS256")


def test_hs256_with_the_public_key_as_secret_refused(gp: Identity, check: Callable[..., Any]) -> None:
    header, claims = decode(make_client_assertion(gp, token_url=TOKEN_URL))
    header["alg"] = "HS256"
    pem = gp.certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = forge(header, claims, lambda data: hmac.new(pem, data, hashlib.sha256).digest())
    refused(INVALID_CLIENT, lambda: check(token), "only RS256")


def test_signed_with_the_wrong_key(gp: Identity, nurse: Identity, check: Callable[..., Any]) -> None:
    header, claims = decode(make_client_assertion(gp, token_url=TOKEN_URL))
    refused(INVALID_CLIENT, lambda: check(forge(header, claims, rs256(nurse.private_key))), "does not verify")


def test_tampered_claims(gp: Identity, check: Callable[..., Any]) -> None:
    token = make_client_assertion(gp, token_url=TOKEN_URL)
    header, claims = decode(token)
    claims["exp"] += 3600
    forged = f"{part(header)}.{part(claims)}.{token.split('.')[2]}"
    refused(INVALID_CLIENT, lambda: check(forged), "does not verify")


def test_expired_assertion(gp: Identity, check: Callable[..., Any]) -> None:
    token = make_client_assertion(gp, token_url=TOKEN_URL, now=datetime.now(UTC) - timedelta(minutes=10))
    refused(INVALID_CLIENT, lambda: check(token), "expired")


def test_future_assertion(gp: Identity, check: Callable[..., Any]) -> None:
    token = make_client_assertion(gp, token_url=TOKEN_URL, now=datetime.now(UTC) + timedelta(minutes=10))
    refused(INVALID_CLIENT, lambda: check(token), "not valid before")


def test_leeway_tolerates_small_skew(gp: Identity, check: Callable[..., Any]) -> None:
    token = make_client_assertion(gp, token_url=TOKEN_URL, now=datetime.now(UTC) + timedelta(seconds=60))
    assert check(token, leeway=120).client_id == gp.client_id


def test_lifetime_too_long(gp: Identity, check: Callable[..., Any]) -> None:
    token = make_client_assertion(gp, token_url=TOKEN_URL, lifetime=3600)
    refused(INVALID_CLIENT, lambda: check(token, max_lifetime=300), "lives longer")


def test_wrong_audience(gp: Identity, check: Callable[..., Any]) -> None:
    token = make_client_assertion(gp, token_url="https://other-hub.example/oauth2/token")
    refused(INVALID_CLIENT, lambda: check(token), "aud")


def test_replayed_jti(gp: Identity, check: Callable[..., Any]) -> None:
    token = make_client_assertion(gp, token_url=TOKEN_URL)
    check(token)
    refused(INVALID_CLIENT, lambda: check(token), "already used")


def test_refused_assertion_does_not_burn_its_jti(gp: Identity, check: Callable[..., Any]) -> None:
    token = make_client_assertion(gp, token_url=TOKEN_URL)
    refused(INVALID_CLIENT, lambda: check(token, audience="https://elsewhere.example/token"))
    assert check(token).client_id == gp.client_id


def test_x5c_from_another_ca(impostor: Identity, check: Callable[..., Any]) -> None:
    token = make_client_assertion(impostor, token_url=TOKEN_URL)
    refused(INVALID_CLIENT, lambda: check(token), "not trusted")
    header, claims = decode(token)
    assert len(header["x5c"]) == 1  # the impostor's root is not sent; sending it would not help:
    root = base64.b64encode(impostor.chain[-1].public_bytes(serialization.Encoding.DER)).decode()
    header["x5c"].append(root)
    refused(INVALID_CLIENT, lambda: check(forge(header, claims, rs256(impostor.private_key))), "not trusted")


def test_iss_must_be_the_certificate_holder(gp: Identity, nurse: Identity, check: Callable[..., Any]) -> None:
    header, claims = decode(make_client_assertion(gp, token_url=TOKEN_URL))
    claims["iss"] = claims["sub"] = nurse.client_id
    refused(INVALID_CLIENT, lambda: check(forge(header, claims, rs256(gp.private_key))), "not the client id")
    claims["iss"], claims["sub"] = gp.client_id, nurse.client_id
    refused(INVALID_CLIENT, lambda: check(forge(header, claims, rs256(gp.private_key))), "'iss' and 'sub'")


def test_key_pointing_headers_refused(gp: Identity, check: Callable[..., Any]) -> None:
    header, claims = decode(make_client_assertion(gp, token_url=TOKEN_URL))
    extras: list[tuple[str, object]] = [
        ("jwk", {"kty": "RSA"}),
        ("jku", "https://evil.example/jwks"),
        ("crit", ["exp"]),
    ]
    for name, value in extras:
        token = forge({**header, name: value}, claims, rs256(gp.private_key))
        refused(INVALID_CLIENT, partial(check, token), name)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        "e30.e30.",
        f"{b64url(b'[1]')}.e30.c2ln",
        "eyJhbGciOiJSUzI1NiIsImFsZyI6Im5vbmUifQ.e30.c2ln",
    ],
)
def test_malformed_tokens(token: str, check: Callable[..., Any]) -> None:
    # the last one repeats "alg" (RS256 then none): duplicate members are refused
    refused(INVALID_CLIENT, lambda: check(token))


def test_missing_claims(gp: Identity, check: Callable[..., Any]) -> None:
    header, claims = decode(make_client_assertion(gp, token_url=TOKEN_URL))
    for name in ("exp", "jti", "aud"):
        token = forge(header, {k: v for k, v in claims.items() if k != name}, rs256(gp.private_key))
        refused(INVALID_CLIENT, partial(check, token), name)


# ------------------------------------------------------------------------------------------------ access tokens


def test_access_token_round_trip(hub_identity: Identity, gp: Identity) -> None:
    token = issue_access_token(
        hub_identity,
        subject=gp.client_id,
        claims={"kind": gp.kind, "nihii": str(gp.nihii), "profession": gp.profession, "scope": "system/*.read"},
        issuer=HUB,
        audience=f"{HUB}/fhir",
    )
    header, _ = decode(token)
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": key_id(hub_identity.public_key)}
    claims = verify_access_token(token, hub_public_key=hub_identity.certificate, issuer=HUB, audience=f"{HUB}/fhir")
    assert claims["sub"] == gp.client_id
    assert claims["profession"] == "persphysician"
    assert claims["exp"] - claims["iat"] == 300
    assert verify_access_token(token, hub_public_key=hub_identity, issuer=HUB)["kind"] == "professional"


def test_access_token_refusals(hub_identity: Identity, gp: Identity) -> None:
    token = issue_access_token(hub_identity, subject=gp.client_id, claims={}, issuer=HUB, audience=f"{HUB}/fhir")
    key = hub_identity.public_key
    refused(INVALID_TOKEN, lambda: verify_access_token(token, hub_public_key=key, issuer="http://evil"), "issued")
    refused(
        INVALID_TOKEN,
        lambda: verify_access_token(token, hub_public_key=key, issuer=HUB, audience="http://other/fhir"),
        "not meant",
    )
    refused(
        INVALID_TOKEN,
        lambda: verify_access_token(token, hub_public_key=key, issuer=HUB, now=datetime.now(UTC) + timedelta(hours=1)),
        "expired",
    )
    # a token "issued" by a client with its own key
    forged = issue_access_token(gp, subject=gp.client_id, claims={}, issuer=HUB)
    refused(INVALID_TOKEN, lambda: verify_access_token(forged, hub_public_key=key, issuer=HUB), "does not verify")


def test_access_token_alg_confusion(hub_identity: Identity) -> None:
    header, claims = decode(issue_access_token(hub_identity, subject="ssin:73032929895", claims={}, issuer=HUB))
    pem = hub_identity.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims["sub"] = "nihii:12345625003"
    candidates: list[tuple[str, Callable[[bytes], bytes] | None]] = [
        ("HS256", lambda data: hmac.new(pem, data, hashlib.sha256).digest()),
        ("none", None),
        ("PS256", rs256(hub_identity.private_key)),
    ]
    for alg, sign in candidates:
        token = forge({**header, "alg": alg}, claims, sign)
        refused(INVALID_TOKEN, partial(verify_access_token, token, hub_public_key=pem_key(pem), issuer=HUB))


def pem_key(pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def test_access_token_claims_cannot_override_registered(hub_identity: Identity) -> None:
    with pytest.raises(ValueError, match="registered"):
        issue_access_token(hub_identity, subject="x", claims={"exp": 0}, issuer=HUB)

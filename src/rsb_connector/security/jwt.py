"""OAuth2 ``private_key_jwt`` client assertions (SMART Backend Services) and the hub's access tokens — RS256 only.

The FHIR side of the hub authenticates clients the way SMART Backend Services does: the client posts
``grant_type=client_credentials`` with ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``
and a ``client_assertion`` JWT signed by its identity's key (:func:`make_client_assertion`). The hub checks it
(:func:`verify_client_assertion`) and answers with an access token it signs itself (:func:`issue_access_token`),
which the FHIR routes check on every request (:func:`verify_access_token`).

Compact JWS only, written here with ``cryptography`` (no JWT library): base64url without padding, JSON objects
with unique keys, and the algorithm PINNED to RS256 — ``alg: none``, HS256 (including an HMAC "keyed" with the
RSA public key: the classic confusion attack), PS/ES algorithms and headers that point elsewhere for keys
(``jwk``, ``jku``, ``x5u``) or that demand unknown processing (``crit``) are all refused.

Client assertion header: ``{"alg": "RS256", "typ": "JWT", "kid": …, "x5t#S256": …, "x5c": [leaf, intermediates…]}``
(``x5c`` entries are standard base64 of DER, as RFC 7515 says). Claims: ``iss = sub = client_id`` where the client
id is derived from the certificate subject (``nihii:<n>``, ``ssin:<n>`` or ``cbe:<n>``, see
:attr:`rsb_connector.security.identity.Principal.client_id`), ``aud`` = the token URL, ``jti`` (UUID4), ``iat``,
``nbf``, ``exp``. The hub verifies the ``x5c`` chain against its trust store and requires ``iss`` to be the
client id of that certificate, so a valid certificate cannot speak for someone else.

Every refusal raises :class:`JwtError` with an OAuth2 ``error`` code: ``invalid_client`` for a bad client
assertion (RFC 6749 §5.2), ``invalid_token`` for a bad access token (RFC 6750 §3.1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rsb_connector.errors import RsbError
from rsb_connector.security.identity import MIN_RSA_KEY_SIZE, Identity, IdentityError, Principal, read_principal
from rsb_connector.security.trust import ReplayCache, ReplayCacheFull, TrustStore, UntrustedCertificate

__all__ = [
    "ALGORITHM",
    "CLIENT_ASSERTION_TYPE",
    "INVALID_CLIENT",
    "INVALID_GRANT",
    "INVALID_REQUEST",
    "INVALID_TOKEN",
    "ClientAssertion",
    "JwtError",
    "issue_access_token",
    "key_id",
    "make_client_assertion",
    "verify_access_token",
    "verify_client_assertion",
]

ALGORITHM: Final = "RS256"
CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
INVALID_CLIENT: Final = "invalid_client"
INVALID_GRANT: Final = "invalid_grant"
INVALID_REQUEST: Final = "invalid_request"
INVALID_TOKEN: Final = "invalid_token"  # noqa: S105 - an OAuth2 error code

MAX_TOKEN_LENGTH: Final = 32 * 1024
MAX_X5C: Final = 8
_REGISTERED: Final = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
_FORBIDDEN_HEADERS: Final = frozenset({"jwk", "jku", "x5u", "crit"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class JwtError(RsbError):
    """A JWT was refused (or could not be made).

    Attributes:
        error: the OAuth2 error code (``invalid_client``, ``invalid_grant``, ``invalid_token``, ``invalid_request``)
            to put in the token endpoint's JSON answer or the ``WWW-Authenticate`` header.
        description: what was wrong, for a person (``error_description``).
    """

    def __init__(self, error: str, description: str) -> None:
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}")


@dataclass(frozen=True, slots=True)
class ClientAssertion:
    """A verified client assertion.

    Attributes:
        client_id: ``iss`` (= ``sub``), equal to the certificate's client id.
        principal: who the certificate names (kind, NIHII / SSIN / CBE, profession).
        certificate: the signer's leaf certificate; ``chain`` the verified path to the trust anchor.
        jti / issued_at / expires_at: the assertion's id and times.
        claims / header: the decoded JSON objects.
    """

    client_id: str
    principal: Principal
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    jti: str
    issued_at: datetime | None
    expires_at: datetime
    claims: Mapping[str, Any] = field(repr=False)
    header: Mapping[str, Any] = field(repr=False)


# ------------------------------------------------------------------------------------------------ encoding


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str, what: str, error: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise JwtError(error, f"the JWT {what} is not base64url (unpadded)")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(data: bytes, what: str, error: str) -> dict[str, Any]:
    try:
        value = json.loads(data, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JwtError(error, f"the JWT {what} is not a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise JwtError(error, f"the JWT {what} is not a JSON object")
    return value


def _json_bytes(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """A key id: base64url SHA-256 of the DER SubjectPublicKeyInfo (stable for a key, whatever the certificate)."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64url(hashlib.sha256(spki).digest())


def _sign(header: Mapping[str, Any], claims: Mapping[str, Any], key: rsa.RSAPrivateKey) -> str:
    signing_input = f"{_b64url(_json_bytes(header))}.{_b64url(_json_bytes(claims))}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode('ascii')}.{_b64url(signature)}"


@dataclass(frozen=True, slots=True)
class _Parsed:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _parse(token: str, error: str) -> _Parsed:
    if not isinstance(token, str) or not token:
        raise JwtError(error, "no JWT given")
    if len(token) > MAX_TOKEN_LENGTH:
        raise JwtError(error, f"the JWT is longer than {MAX_TOKEN_LENGTH} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError(error, "not a compact JWS: expected header.payload.signature")
    header = _json_object(_unb64url(parts[0], "header", error), "header", error)
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise JwtError(error, f"JWT algorithm {alg!r} refused: only {ALGORITHM} is accepted")
    forbidden = sorted(_FORBIDDEN_HEADERS & header.keys())
    if forbidden:
        raise JwtError(error, f"JWT header parameters {forbidden} are not accepted")
    claims = _json_object(_unb64url(parts[1], "payload", error), "payload", error)
    signature = _unb64url(parts[2], "signature", error)
    if not signature:
        raise JwtError(error, "the JWT has no signature")
    return _Parsed(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def _verify_signature(parsed: _Parsed, public_key: rsa.RSAPublicKey, error: str) -> None:
    if public_key.key_size < MIN_RSA_KEY_SIZE:
        raise JwtError(error, f"the signing key has {public_key.key_size} bits; at least {MIN_RSA_KEY_SIZE} needed")
    try:
        public_key.verify(parsed.signature, parsed.signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise JwtError(error, "the JWT signature does not verify") from exc


def _number(claims: Mapping[str, Any], name: str, error: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise JwtError(error, f"the JWT has no {name!r} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JwtError(error, f"the JWT {name!r} claim must be a number of seconds since the epoch")
    return float(value)


def _check_times(claims: Mapping[str, Any], now: datetime, leeway: float, error: str) -> tuple[float, float | None]:
    stamp = now.timestamp()
    exp = _number(claims, "exp", error, required=True)
    assert exp is not None
    nbf = _number(claims, "nbf", error, required=False)
    iat = _number(claims, "iat", error, required=False)
    if stamp > exp + leeway:
        raise JwtError(error, f"the JWT expired at {datetime.fromtimestamp(exp, UTC).isoformat()}")
    if nbf is not None and stamp + leeway < nbf:
        raise JwtError(error, f"the JWT is not valid before {datetime.fromtimestamp(nbf, UTC).isoformat()}")
    if iat is not None and iat > stamp + leeway:
        raise JwtError(error, "the JWT is issued in the future (iat); check clocks")
    return exp, iat


def _audiences(claims: Mapping[str, Any], error: str) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        return aud
    raise JwtError(error, "the JWT 'aud' claim must be a string or a non-empty list of strings")


# ------------------------------------------------------------------------------------------ client assertions


def _der_b64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")


def make_client_assertion(
    identity: Identity, *, token_url: str, lifetime: int = 60, now: datetime | None = None
) -> str:
    """A ``private_key_jwt`` client assertion for the token endpoint ``token_url``, signed by ``identity``.

    Args:
        identity: the client; its chain goes into ``x5c`` and its client id into ``iss`` / ``sub``.
        token_url: the token endpoint URL (the ``aud``).
        lifetime: seconds until ``exp`` (SMART: at most 300).
        now: issue time (default: now).
    """
    if lifetime <= 0:
        raise ValueError("the assertion lifetime must be positive")
    issued = int(_utc(now).timestamp())
    chain = [c for c in identity.chain if c is identity.certificate or c.issuer != c.subject]
    header = {
        "alg": ALGORITHM,
        "typ": "JWT",
        "kid": key_id(identity.public_key),
        "x5t#S256": _b64url(identity.certificate.fingerprint(hashes.SHA256())),
        "x5c": [_der_b64(c) for c in chain],
    }
    client_id = identity.client_id
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
    }
    return _sign(header, claims, identity.private_key)


def _x5c(header: Mapping[str, Any]) -> list[x509.Certificate]:
    entries = header.get("x5c")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
        raise JwtError(INVALID_CLIENT, "the client assertion header must carry 'x5c': the certificate chain")
    if len(entries) > MAX_X5C:
        raise JwtError(INVALID_CLIENT, f"'x5c' holds {len(entries)} certificates; at most {MAX_X5C} accepted")
    certificates = []
    for index, entry in enumerate(entries):
        try:
            certificates.append(x509.load_der_x509_certificate(base64.b64decode(entry, validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise JwtError(INVALID_CLIENT, f"'x5c'[{index}] is not a base64 DER certificate") from exc
    return certificates


def verify_client_assertion(
    assertion: str,
    *,
    trust: TrustStore,
    audience: str | Sequence[str],
    replay: ReplayCache,
    now: datetime | None = None,
    max_lifetime: int = 300,
    leeway: int = 120,
) -> ClientAssertion:
    """Verify a ``private_key_jwt`` client assertion (module docstring) and remember its ``jti``.

    Args:
        assertion: the compact JWS from the ``client_assertion`` form field.
        trust: the CAs whose certificates may authenticate clients.
        audience: the token endpoint URL(s) this hub answers to; ``aud`` must name one of them.
        replay: remembers ``jti`` values until the assertion expires.
        now: verification time (default: now).
        max_lifetime: the longest accepted ``exp - iat`` (and ``exp - now``), in seconds.
        leeway: clock skew tolerated on ``exp``, ``nbf`` and ``iat``, in seconds.

    Raises:
        JwtError: (``invalid_client``) on any failure: algorithm, chain, signature, claims, replay.
    """
    at = _utc(now)
    parsed = _parse(assertion, INVALID_CLIENT)
    typ = parsed.header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() not in ("JWT", "APPLICATION/JWT")):
        raise JwtError(INVALID_CLIENT, f"the client assertion 'typ' is {typ!r}, expected 'JWT'")
    certificates = _x5c(parsed.header)
    leaf = certificates[0]
    try:
        chain = trust.verify_chain(leaf, certificates[1:], now=at)
    except UntrustedCertificate as exc:
        raise JwtError(INVALID_CLIENT, str(exc)) from exc
    public_key = leaf.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise JwtError(INVALID_CLIENT, "the client certificate does not hold an RSA key (RS256 needs one)")
    _verify_signature(parsed, public_key, INVALID_CLIENT)
    try:
        principal = read_principal(leaf)
    except IdentityError as exc:
        raise JwtError(INVALID_CLIENT, f"the client certificate names no principal: {exc}") from exc

    claims = parsed.claims
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or not iss or iss != sub:
        raise JwtError(INVALID_CLIENT, "the client assertion needs 'iss' and 'sub', both equal to the client id")
    if iss != principal.client_id:
        raise JwtError(
            INVALID_CLIENT, f"'iss' {iss!r} is not the client id of the signing certificate ({principal.client_id!r})"
        )
    expected = [audience] if isinstance(audience, str) else list(audience)
    if not set(_audiences(claims, INVALID_CLIENT)) & set(expected):
        raise JwtError(INVALID_CLIENT, f"the client assertion 'aud' does not name this token endpoint ({expected[0]})")
    exp, iat = _check_times(claims, at, leeway, INVALID_CLIENT)
    if exp - at.timestamp() > max_lifetime + leeway or (iat is not None and exp - iat > max_lifetime):
        raise JwtError(INVALID_CLIENT, f"the client assertion lives longer than {max_lifetime} s")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= 256:
        raise JwtError(INVALID_CLIENT, "the client assertion needs a 'jti' (a unique id, at most 256 characters)")
    expires_at = datetime.fromtimestamp(exp, UTC)
    try:
        fresh = replay.remember(f"jti:{iss}:{jti}", datetime.fromtimestamp(exp + leeway, UTC), now=at)
    except ReplayCacheFull as exc:
        raise JwtError(INVALID_CLIENT, str(exc)) from exc
    if not fresh:
        raise JwtError(INVALID_CLIENT, f"the client assertion jti {jti!r} was already used")
    return ClientAssertion(
        client_id=iss,
        principal=principal,
        certificate=leaf,
        chain=tuple(chain),
        jti=jti,
        issued_at=datetime.fromtimestamp(iat, UTC) if iat is not None else None,
        expires_at=expires_at,
        claims=claims,
        header=parsed.header,
    )


# ------------------------------------------------------------------------------------------------ access tokens


def issue_access_token(
    signer: Identity | rsa.RSAPrivateKey,
    *,
    subject: str,
    claims: Mapping[str, Any],
    issuer: str,
    lifetime: int = 300,
    audience: str | None = None,
    now: datetime | None = None,
) -> str:
    """An RS256 access token signed by the hub.

    Args:
        signer: the hub's identity (or bare RSA key).
        subject: ``sub``: the client id (``nihii:...``).
        claims: further claims, e.g. ``kind``, ``nihii`` / ``ssin`` / ``cbe``, ``profession``, ``scope``; they may
            not redefine the registered claims (iss, sub, aud, exp, nbf, iat, jti).
        issuer: ``iss``: the hub's base URL.
        lifetime: seconds until ``exp``.
        audience: ``aud``, when given (e.g. the FHIR base URL).
        now: issue time (default: now).

    Raises:
        ValueError: ``claims`` redefines a registered claim, or ``lifetime`` is not positive.
    """
    clash = sorted(_REGISTERED & claims.keys())
    if clash:
        raise ValueError(f"claims may not redefine registered claims {clash}")
    if lifetime <= 0:
        raise ValueError("the token lifetime must be positive")
    key = signer.private_key if isinstance(signer, Identity) else signer
    issued = int(_utc(now).timestamp())
    body: dict[str, Any] = {"iss": issuer, "sub": subject}
    if audience is not None:
        body["aud"] = audience
    body.update({"iat": issued, "nbf": issued, "exp": issued + lifetime, "jti": str(uuid.uuid4())})
    body.update(claims)
    header = {"alg": ALGORITHM, "typ": "at+jwt", "kid": key_id(key.public_key())}
    return _sign(header, body, key)


def verify_access_token(
    token: str,
    *,
    hub_public_key: rsa.RSAPublicKey | x509.Certificate | Identity,
    issuer: str,
    audience: str | None = None,
    now: datetime | None = None,
    leeway: int = 60,
) -> dict[str, Any]:
    """Verify an access token issued by :func:`issue_access_token` and return its claims.

    Args:
        token: the bearer token.
        hub_public_key: the hub's public key (or its certificate / identity).
        issuer: the expected ``iss``.
        audience: when given, ``aud`` must name it.
        now: verification time (default: now).
        leeway: clock skew tolerated on ``exp`` / ``nbf`` / ``iat``, in seconds.

    Raises:
        JwtError: (``invalid_token``) wrong algorithm, signature, issuer, audience, or expired.
    """
    if isinstance(hub_public_key, Identity):
        public_key: object = hub_public_key.public_key
    elif isinstance(hub_public_key, x509.Certificate):
        public_key = hub_public_key.public_key()
    else:
        public_key = hub_public_key
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise TypeError("hub_public_key must be an RSA public key, certificate or identity")
    parsed = _parse(token, INVALID_TOKEN)
    typ = parsed.header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in ("at+jwt", "application/at+jwt", "jwt")):
        raise JwtError(INVALID_TOKEN, f"the token 'typ' is {typ!r}, expected 'at+jwt'")
    _verify_signature(parsed, public_key, INVALID_TOKEN)
    claims = parsed.claims
    if claims.get("iss") != issuer:
        raise JwtError(INVALID_TOKEN, "the access token was not issued by this hub")
    if not isinstance(claims.get("sub"), str):
        raise JwtError(INVALID_TOKEN, "the access token has no 'sub'")
    if audience is not None and audience not in _audiences(claims, INVALID_TOKEN):
        raise JwtError(INVALID_TOKEN, f"the access token is not meant for {audience}")
    _check_times(claims, _utc(now), leeway, INVALID_TOKEN)
    return dict(claims)

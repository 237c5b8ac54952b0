"""Who is calling the hub: WS-Security on the SOAP endpoints, OAuth2 bearer tokens on the FHIR side.

:class:`HubSecurity` holds what the hub trusts (the development CA of its PKI, or any trust store), its own
identity (it signs every SOAP answer and every access token with it) and one replay cache shared by
``wsa:MessageID`` and JWT ``jti`` checks.

SOAP
    :class:`WsSecurityAuthenticator` verifies the ``wsse:Security`` header of each request
    (:class:`~rsb_connector.security.wssec.WsSecurityVerifier`: chain to the trust store, Timestamp freshness,
    MessageID replay, signed elements at the expected positions) and hands the pipeline the SIGNED copies only: the
    Body, the action and the message id the hub processes are those the signature covers. An unsigned request is
    refused (``wsse:InvalidSecurity``) unless the hub runs with ``allow_unsigned`` (a first local try), in which
    case it is processed as the anonymous caller; a signed request is verified either way.

OAuth2 (FHIR)
    ``POST /oauth2/token`` (:func:`token_route`) implements the ``client_credentials`` grant with ``private_key_jwt``
    client authentication (SMART Backend Services): form-encoded ``grant_type=client_credentials``,
    ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``, ``client_assertion=<JWT>``
    and an optional ``scope``. The assertion is verified by
    :func:`~rsb_connector.security.jwt.verify_client_assertion` (RS256 only, ``x5c`` chained to the trust store,
    ``iss`` = ``sub`` = the certificate's client id, ``aud`` = this token URL, ``jti`` never seen). The answer is
    ``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``; errors follow RFC 6749 §5.2 (HTTP 400,
    JSON ``{"error", "error_description"}``). The access token is an RS256 JWT signed by the hub (``iss`` = the
    hub's base URL, ``aud`` = ``<base>/fhir``) carrying who the caller is.

    :func:`require_bearer` is what FHIR routes call (``fhir_routes(authenticate=require_bearer)``): it returns the
    :class:`~rsb_connector.hub.registry.Caller` of a valid ``Authorization: Bearer`` token, and otherwise raises
    :class:`BearerError` (HTTP 401 with ``WWW-Authenticate: Bearer ...`` as RFC 6750 §3 says).

Break-the-glass (FHIR)
    A professional reading in an emergency sends ``X-Break-The-Glass: <reason>`` (:data:`BREAK_THE_GLASS_HEADER`)
    beside the bearer token on a reading request (ITI-66, ITI-67, a DocumentReference read, ITI-68).
    :func:`with_break_the_glass` sets the reason as the caller's
    :attr:`~rsb_connector.hub.registry.Caller.break_the_glass`; the consent enforcement then lets the professional
    pass the therapeutic link and access matrix barriers (never the consent, an exclusion, a disallow or a ``V``
    document) and audits the access with the reason. The reason is free text of 10–200 characters (surrounding
    whitespace not counted); one of another length is refused by the enforcement with ``LocalPolicyRestrictionError``
    (rule ``break-the-glass-reason``, HTTP 403), audited. Only an authenticated professional may break the glass:
    a patient, an organisation or an anonymous caller sending the header is refused with 403
    (:class:`BreakTheGlassRefused`). The header value is read as UTF-8 (ASCII is safest in HTTP headers).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..identifiers import mask_ssin
from ..mhd.constants import BREAK_THE_GLASS_HEADER
from ..policy import ActorKind
from ..security.identity import Identity, Principal
from ..security.jwt import (
    CLIENT_ASSERTION_TYPE,
    INVALID_CLIENT,
    INVALID_REQUEST,
    JwtError,
    issue_access_token,
    verify_access_token,
    verify_client_assertion,
)
from ..security.pki import PkiDescription
from ..security.trust import ReplayCache, TrustStore
from ..security.wssec import WSSE, WsSecurityVerifier
from ..xds import soap
from .registry import PATIENT_ROLE, Caller

if TYPE_CHECKING:
    from .app import SoapContext

__all__ = [
    "BREAK_THE_GLASS_HEADER",
    "DEFAULT_SCOPE",
    "TOKEN_PATH",
    "Authentication",
    "BearerError",
    "BreakTheGlassRefused",
    "HubSecurity",
    "WsSecurityAuthenticator",
    "caller_from_claims",
    "caller_from_principal",
    "require_bearer",
    "token_route",
    "with_break_the_glass",
]

log = logging.getLogger("rsb_connector.hub")

TOKEN_PATH: Final = "/oauth2/token"  # noqa: S105 - a URL path
DEFAULT_SCOPE: Final = "system/*.*"
"""The scope granted when a token request names none (SMART v1 syntax: every resource, read and write; the
consent rules still decide per document)."""
INVALID_SCOPE: Final = "invalid_scope"
UNSUPPORTED_GRANT_TYPE: Final = "unsupported_grant_type"
MAX_TOKEN_REQUEST_BYTES: Final = 64 * 1024
REALM: Final = "rsb-hub"
_SCOPE = re.compile(r"(system|user|patient)/(\*|[A-Z][A-Za-z]*)\.(\*|read|write|[cruds]+)")
_FORM_MEDIA = "application/x-www-form-urlencoded"


@dataclass(slots=True)
class HubSecurity:
    """What the hub trusts, who it is, and how strict it is.

    Attributes:
        trust: the CAs whose certificates may sign requests and client assertions.
        identity: the hub's own identity: signs every SOAP answer and every access token. ``None`` only for a
            hub without a PKI (then it issues no tokens and answers unsigned).
        allow_unsigned: accept unsigned SOAP requests (and FHIR requests without a token) as the anonymous
            caller. Signed requests and presented tokens are verified all the same.
        replay: remembers ``wsa:MessageID`` / signature values and JWT ``jti`` until they expire.
        ttl_max / clock_skew: accepted Timestamp lifetime and clock tolerance, in seconds.
        token_lifetime: seconds an access token is valid.
        issuer: the ``iss`` of access tokens; ``None`` uses the base URL the request came to (what clients use).
        response_ttl: lifetime in seconds of the Timestamp of the hub's signed answers.
    """

    trust: TrustStore
    identity: Identity | None = None
    allow_unsigned: bool = False
    replay: ReplayCache = field(default_factory=ReplayCache)
    ttl_max: int = 300
    clock_skew: int = 120
    token_lifetime: int = 300
    issuer: str | None = None
    response_ttl: int = 60
    verifier: WsSecurityVerifier = field(init=False)

    def __post_init__(self) -> None:
        self.verifier = WsSecurityVerifier(
            self.trust,
            ttl_max=self.ttl_max,
            clock_skew=self.clock_skew,
            replay_cache=self.replay,
            require_signed_addressing=True,
        )

    @classmethod
    def from_pki(cls, pki: PkiDescription, *, allow_unsigned: bool = False, **kwargs: Any) -> HubSecurity:
        """Trust the PKI's CA and sign with the PKI's hub identity (``kwargs``: the other attributes)."""
        return cls(pki.trust_store(), pki.load_hub_identity(), allow_unsigned=allow_unsigned, **kwargs)

    def issuer_for(self, request: Request) -> str:
        """The ``iss`` of tokens issued (and accepted) for ``request``."""
        return self.issuer or _origin(request)


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


# ------------------------------------------------------------------------------------------------ callers


def caller_from_principal(principal: Principal) -> Caller:
    """The :class:`Caller` a verified certificate names.

    ``subject`` is the principal's client id (``nihii:…``, ``ssin:…``, ``cbe:…``); ``role`` the CD-HCPARTY code of
    a professional or organisation, ``"patient"`` for a patient; ``organisation`` the NIHII (else CBE) of an
    organisation.
    """
    if principal.kind == "patient":
        return Caller(
            subject=principal.client_id,
            role=PATIENT_ROLE,
            ssin=str(principal.ssin) if principal.ssin else None,
            authenticated=True,
        )
    if principal.kind == "professional":
        return Caller(
            subject=principal.client_id,
            role=principal.profession,
            nihii=str(principal.nihii) if principal.nihii else None,
            ssin=str(principal.ssin) if principal.ssin else None,
            authenticated=True,
        )
    organisation = principal.nihii or principal.cbe
    return Caller(
        subject=principal.client_id,
        role=principal.profession or "organisation",
        nihii=str(principal.nihii) if principal.nihii else None,
        organisation=str(organisation) if organisation else None,
        authenticated=True,
    )


def _token_claims(principal: Principal, scope: str) -> dict[str, Any]:
    claims: dict[str, Any] = {"kind": principal.kind, "scope": scope}
    for name, value in (
        ("nihii", principal.nihii),
        ("ssin", principal.ssin),
        ("cbe", principal.cbe),
        ("profession", principal.profession),
    ):
        if value is not None:
            claims[name] = str(value)
    return claims


def caller_from_claims(claims: Mapping[str, Any]) -> Caller:
    """The :class:`Caller` an access token (issued by :func:`token_route`) names."""
    kind = claims.get("kind")
    subject = str(claims.get("sub"))

    def text(name: str) -> str | None:
        value = claims.get(name)
        return value if isinstance(value, str) and value else None

    if kind == "patient":
        return Caller(subject=subject, role=PATIENT_ROLE, ssin=text("ssin"), authenticated=True)
    if kind == "professional":
        return Caller(
            subject=subject, role=text("profession"), nihii=text("nihii"), ssin=text("ssin"), authenticated=True
        )
    return Caller(
        subject=subject,
        role=text("profession") or "organisation",
        nihii=text("nihii"),
        organisation=text("nihii") or text("cbe"),
        authenticated=True,
    )


# ------------------------------------------------------------------------------------------------ SOAP


@dataclass(frozen=True, slots=True)
class Authentication:
    """An authenticator's verdict on a SOAP request.

    Attributes:
        caller: who is calling.
        message: the message to process: for a signed request, a view built from the SIGNED copies only (Body,
            WS-Addressing values); for an accepted unsigned request, the message as parsed.
        signed: True when a WS-Security signature was verified.
    """

    caller: Caller
    message: soap.SoapMessage
    signed: bool = False


class WsSecurityAuthenticator:
    """Verifies WS-Security on each SOAP request (module docstring); raises
    :class:`~rsb_connector.security.wssec.WsSecurityError` to refuse."""

    def __init__(self, security: HubSecurity) -> None:
        self.security = security

    def authenticate(self, context: SoapContext) -> Authentication:
        message = context.message
        if self.security.allow_unsigned and not _has_security_header(message):
            return Authentication(Caller(), message, signed=False)
        verified = self.security.verifier.verify(message.envelope)
        return Authentication(caller_from_principal(verified.signer), verified.soap_message(), signed=True)


def _has_security_header(message: soap.SoapMessage) -> bool:
    return any(block.tag == f"{{{WSSE}}}Security" for block in message.header_blocks)


# ------------------------------------------------------------------------------------------------ OAuth2


def _token_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"cache-control": "no-store", "pragma": "no-cache"},
    )


def _form(body: bytes) -> dict[str, str]:
    """The form fields (each at most once, RFC 6749 §3.2); ValueError when the body is not a form."""
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body))
    except UnicodeDecodeError as exc:
        raise ValueError("the body is not application/x-www-form-urlencoded (non-ASCII bytes)") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise ValueError(f"the parameter {name!r} is repeated")
        fields[name] = value
    return fields


def _check_scope(requested: str | None) -> str:
    if requested is None or not requested.strip():
        return DEFAULT_SCOPE
    scopes = requested.split()
    bad = [s for s in scopes if not _SCOPE.fullmatch(s)]
    if bad:
        raise JwtError(
            INVALID_SCOPE,
            f"scope {bad[0]!r} is not a SMART scope such as system/DocumentReference.read or system/*.*",
        )
    return " ".join(dict.fromkeys(scopes))


def token_route(security: HubSecurity, *, path: str = TOKEN_PATH, audiences: Iterable[str] = ()) -> Route:
    """The ``POST /oauth2/token`` route (module docstring).

    Args:
        security: trust store, hub identity (signs the tokens) and replay cache.
        path: where the endpoint lives.
        audiences: further URLs a client assertion's ``aud`` may name (e.g. the public URL behind a proxy); the
            URL the request came to is always accepted.
    """
    extra = list(audiences)

    async def token(request: Request) -> Response:
        if security.identity is None:
            return _token_error(INVALID_CLIENT, "this hub has no identity to sign access tokens with", 400)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != _FORM_MEDIA:
            return _token_error(INVALID_REQUEST, f"send the token request as {_FORM_MEDIA}, not {media or 'nothing'}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_TOKEN_REQUEST_BYTES:
                return _token_error(
                    INVALID_REQUEST, f"the token request is larger than {MAX_TOKEN_REQUEST_BYTES} bytes"
                )
        try:
            fields = _form(bytes(body))
        except ValueError as exc:
            return _token_error(INVALID_REQUEST, str(exc))
        grant_type = fields.get("grant_type")
        if not grant_type:
            return _token_error(INVALID_REQUEST, "grant_type is missing: send grant_type=client_credentials")
        if grant_type != "client_credentials":
            return _token_error(
                UNSUPPORTED_GRANT_TYPE, f"grant_type {grant_type!r} is not supported: use client_credentials"
            )
        if "client_secret" in fields or request.headers.get("authorization"):
            return _token_error(
                INVALID_REQUEST, "authenticate with a private_key_jwt client assertion only (no secret, no Basic)"
            )
        assertion_type = fields.get("client_assertion_type")
        assertion = fields.get("client_assertion")
        if not assertion_type or not assertion:
            return _token_error(
                INVALID_REQUEST,
                "client authentication is missing: send client_assertion_type and client_assertion "
                "(a JWT signed with your certificate's key)",
            )
        if assertion_type != CLIENT_ASSERTION_TYPE:
            return _token_error(
                INVALID_CLIENT,
                f"client_assertion_type {assertion_type!r} is not supported: use {CLIENT_ASSERTION_TYPE}",
            )
        url = f"{_origin(request)}{request.url.path}"
        try:
            scope = _check_scope(fields.get("scope"))
            verified = verify_client_assertion(
                assertion,
                trust=security.trust,
                audience=[url, *extra],
                replay=security.replay,
                leeway=security.clock_skew,
            )
        except JwtError as exc:
            log.info("token refused: %s: %s", exc.error, mask_ssin(exc.description))
            return _token_error(exc.error, exc.description)
        issuer = security.issuer_for(request)
        access_token = issue_access_token(
            security.identity,
            subject=verified.client_id,
            claims=_token_claims(verified.principal, scope),
            issuer=issuer,
            audience=f"{issuer}/fhir",
            lifetime=security.token_lifetime,
        )
        log.info("token issued to %s (%s)", mask_ssin(verified.client_id), scope)
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": security.token_lifetime,
                "scope": scope,
            },
            headers={"cache-control": "no-store", "pragma": "no-cache"},
        )

    return Route(path, token, methods=["POST"], name="oauth2-token")


class BearerError(HTTPException):
    """A request without a usable bearer token: HTTP 401 (400 for a malformed header) with a ``WWW-Authenticate``
    header (RFC 6750 §3). FHIR routes may catch it to answer an OperationOutcome with the same status and header.

    Attributes:
        error: ``invalid_token`` / ``invalid_request``, or ``None`` when no credentials were sent at all.
        description: what was wrong, for a person.
    """

    def __init__(self, error: str | None, description: str, *, status_code: int = 401) -> None:
        challenge = f'Bearer realm="{REALM}"'
        if error is not None:
            safe = description.replace("\\", "\\\\").replace('"', "'")
            challenge += f', error="{error}", error_description="{safe}"'
        super().__init__(status_code=status_code, detail=description, headers={"WWW-Authenticate": challenge})
        self.error = error
        self.description = description


async def require_bearer(request: Request) -> Caller:
    """The caller of a FHIR request, from its ``Authorization: Bearer <access token>`` header.

    The token must be an RS256 JWT (the algorithm is pinned: ``none``, HMAC and others are refused) issued by this
    hub (its signature, ``iss`` and ``aud`` = ``<base>/fhir``) and unexpired. A hub running with
    ``allow_unsigned`` accepts a request without any ``Authorization`` header as the anonymous caller.

    Raises:
        BearerError: no token (401, no error code), a malformed header (400 ``invalid_request``) or a refused
            token (401 ``invalid_token``).
    """
    security: HubSecurity | None = getattr(request.app.state, "rsb_security", None)
    header = request.headers.get("authorization")
    if header is None:
        if security is None or security.allow_unsigned:
            return Caller()
        raise BearerError(None, "authentication required: send Authorization: Bearer <access token> from /oauth2/token")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise BearerError(INVALID_REQUEST, "the Authorization header must be 'Bearer <access token>'", status_code=400)
    if security is None or security.identity is None:
        raise BearerError("invalid_token", "this hub issues no access tokens (it runs without a PKI)")
    issuer = security.issuer_for(request)
    try:
        claims = verify_access_token(
            token,
            hub_public_key=security.identity,
            issuer=issuer,
            audience=f"{issuer}/fhir",
            leeway=security.clock_skew,
        )
    except JwtError as exc:
        raise BearerError(exc.error, exc.description) from exc
    return caller_from_claims(claims)


# ------------------------------------------------------------------------------------------------ break-the-glass


class BreakTheGlassRefused(HTTPException):
    """A break-the-glass header the hub does not accept: HTTP 403 (400 for a repeated header). FHIR routes answer
    it as an OperationOutcome.

    Attributes:
        description: what was wrong, for a person.
    """

    def __init__(self, description: str, *, status_code: int = 403) -> None:
        super().__init__(status_code=status_code, detail=description)
        self.description = description


def _header_text(raw: str) -> str:
    """A header value as text: HTTP carries bytes, which Starlette decodes as Latin-1; UTF-8 is what clients send
    for non-ASCII text, so the bytes are read again as UTF-8 when they are valid UTF-8."""
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def with_break_the_glass(request: Request, caller: Caller) -> Caller:
    """``caller`` with the break-the-glass reason of the request's ``X-Break-The-Glass`` header (module docstring);
    ``caller`` unchanged when the header is absent.

    The reason's length is not checked here: the consent enforcement refuses (and audits) a reason that is not
    10–200 characters long, with the rule that says so.

    Raises:
        BreakTheGlassRefused: the header is repeated (400), or the caller is not an authenticated professional
            (403: patients read their own documents without it; organisations do not read).
    """
    values = request.headers.getlist(BREAK_THE_GLASS_HEADER)
    if not values:
        return caller
    if len(values) > 1:
        raise BreakTheGlassRefused(
            f"{BREAK_THE_GLASS_HEADER} is repeated: send one reason (10-200 characters)", status_code=400
        )
    reason = _header_text(values[0])
    if not caller.authenticated or caller.actor().kind is not ActorKind.PROFESSIONAL:
        who = "an anonymous caller" if not caller.authenticated else f"{mask_ssin(caller.subject)} (not a professional)"
        raise BreakTheGlassRefused(
            f"{who} cannot break the glass: only an authenticated healthcare professional may, with a reason of "
            "10-200 characters (patients read their own documents without it; organisations do not read). "
            f"Send the request without {BREAK_THE_GLASS_HEADER}"
        )
    log.info("break-the-glass by %s", mask_ssin(caller.subject))
    return dataclasses.replace(caller, break_the_glass=reason)

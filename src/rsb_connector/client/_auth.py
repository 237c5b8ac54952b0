"""OAuth2 bearer tokens for the hub's FHIR side, obtained with the client's identity (``private_key_jwt``).

:class:`TokenSource` asks ``POST {base}/oauth2/token`` for an access token with the ``client_credentials`` grant,
authenticating with a client assertion signed by the identity's key
(:func:`~rsb_connector.security.jwt.make_client_assertion`: a fresh ``jti``, ``aud`` = the token URL), keeps the
token and asks again shortly before it expires, or when the hub says it is no longer valid. It fits the three ways
requests are made here:

- the sans-IO core: ``token = yield from source.flow()`` inside an operation flow (the sync and async clients run
  the token request like any other);
- a plain ``httpx.Client`` / ``httpx.AsyncClient``: ``source.get(http)`` / ``await source.aget(http)``;
- any httpx request: ``auth=source.auth()`` adds ``Authorization: Bearer ...`` and, when the server answers 401
  ``invalid_token``, fetches a new token and sends the request once more.

A refusal by the token endpoint (RFC 6749 §5.2 JSON error) raises :class:`~rsb_connector.errors.HubRefused` whose
problem code is the OAuth2 ``error`` (``invalid_client``...).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import httpx

from ..errors import HubRefused, Problem, ProtocolError
from ..security.identity import Identity
from ..security.jwt import CLIENT_ASSERTION_TYPE, make_client_assertion
from ._core import Flow, HttpRequest, ResponseSink, Send
from .models import HttpStatusError

__all__ = ["TOKEN_PATH", "AccessToken", "BearerAuth", "TokenSink", "TokenSource"]

TOKEN_PATH: Final = "/oauth2/token"  # noqa: S105 - a URL path
MAX_TOKEN_RESPONSE_BYTES: Final = 64 * 1024
_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An access token as the token endpoint issued it.

    Attributes:
        value: the bearer token (a JWT the hub verifies; opaque to the client).
        expires_at: when it expires, in ``time.time()`` seconds (issue time + ``expires_in``).
        scope: the scope granted.
    """

    value: str
    expires_at: float
    scope: str

    def valid(self, now: float, margin: float = 0.0) -> bool:
        """True until ``margin`` seconds before expiry."""
        return now + margin < self.expires_at


def parse_token_response(
    status_code: int, headers: Mapping[str, str], body: bytes, *, url: str, now: float
) -> AccessToken:
    """Read the token endpoint's answer (RFC 6749 §5.1 / §5.2).

    Raises:
        HubRefused: a JSON error answer (code = the OAuth2 ``error``).
        HttpStatusError: an HTTP error without an OAuth2 JSON body.
        ProtocolError: a success answer that is not a usable Bearer token.
    """
    media = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    document: Any = None
    if media in ("application/json", "application/problem+json") or media.endswith("+json"):
        try:
            document = json.loads(body)
        except ValueError:
            document = None
    if status_code >= 400:
        if isinstance(document, dict) and isinstance(document.get("error"), str):
            description = str(document.get("error_description") or "the token endpoint refused the request")
            raise HubRefused(
                [Problem(document["error"], description, f"POST {url}")],
                f"the token endpoint refused: {document['error']}: {description}",
            )
        raise HttpStatusError(
            f"POST {url}: HTTP {status_code} without an OAuth2 error (is this the hub's token endpoint?)",
            status_code=status_code,
            url=url,
        )
    if not isinstance(document, dict):
        raise ProtocolError(f"POST {url}: the token answer is not a JSON object (Content-Type {media or 'none'})")
    token = document.get("access_token")
    token_type = document.get("token_type")
    expires_in = document.get("expires_in")
    if not isinstance(token, str) or not token:
        raise ProtocolError(f"POST {url}: the token answer has no access_token")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise ProtocolError(f"POST {url}: token_type {token_type!r} is not Bearer")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
        raise ProtocolError(f"POST {url}: the token answer has no positive expires_in")
    scope = document.get("scope")
    return AccessToken(token, now + float(expires_in), scope if isinstance(scope, str) else "")


class TokenSink(ResponseSink[AccessToken]):
    """Reads a token endpoint answer for the sans-IO core."""

    def __init__(self, url: str, clock: Callable[[], float]) -> None:
        self.url = url
        self.clock = clock
        self.status_code = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.started = clock()

    def start(self, status_code: int, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.headers = {k.lower(): v for k, v in headers.items()}

    def feed(self, chunk: bytes) -> None:
        self.body += chunk
        if len(self.body) > MAX_TOKEN_RESPONSE_BYTES:
            raise ProtocolError(f"POST {self.url}: the token answer is larger than {MAX_TOKEN_RESPONSE_BYTES} bytes")

    def finish(self) -> AccessToken:
        return parse_token_response(self.status_code, self.headers, bytes(self.body), url=self.url, now=self.started)

    def abort(self) -> None:
        self.body.clear()


class TokenSource:
    """Access tokens for one identity at one token endpoint, fetched when needed (module docstring).

    Args:
        identity: signs the client assertions; its certificate says who the token is for.
        token_url: the token endpoint, e.g. ``http://127.0.0.1:8080/oauth2/token``.
        scope: the scope to ask for (``None``: the hub's default).
        refresh_margin: fetch a new token this many seconds before the current one expires.
        assertion_lifetime: seconds a client assertion is valid.
        clock: ``time.time`` (tests inject their own).

    Thread-safe: concurrent callers of :meth:`get` share one fetch.
    """

    def __init__(
        self,
        identity: Identity,
        token_url: str,
        *,
        scope: str | None = None,
        refresh_margin: float = 30.0,
        assertion_lifetime: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identity = identity
        self.token_url = token_url
        self.scope = scope
        self.refresh_margin = refresh_margin
        self.assertion_lifetime = assertion_lifetime
        self.clock = clock
        self._token: AccessToken | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------------ state
    def current(self) -> AccessToken | None:
        """The kept token while it is valid beyond the refresh margin, else ``None``."""
        token = self._token
        if token is not None and token.valid(self.clock(), self.refresh_margin):
            return token
        return None

    def invalidate(self) -> None:
        """Forget the kept token (the server refused it): the next call fetches a new one."""
        self._token = None

    def accept(self, token: AccessToken) -> AccessToken:
        """Keep ``token`` (as read from the endpoint's answer)."""
        self._token = token
        return token

    # ------------------------------------------------------------------------------------------------ request
    def request_body(self) -> bytes:
        """A token request body with a fresh client assertion."""
        assertion = make_client_assertion(self.identity, token_url=self.token_url, lifetime=self.assertion_lifetime)
        fields = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        if self.scope:
            fields["scope"] = self.scope
        return urlencode(fields).encode("ascii")

    def request(self) -> tuple[HttpRequest, TokenSink]:
        """The token request and the sink that reads its answer (sans-IO)."""
        headers = {"content-type": _FORM, "accept": "application/json"}
        return HttpRequest("POST", self.token_url, headers, self.request_body()), TokenSink(self.token_url, self.clock)

    def _httpx_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.token_url,
            content=self.request_body(),
            headers={"content-type": _FORM, "accept": "application/json"},
        )

    def _read(self, response: httpx.Response, started: float) -> AccessToken:
        return self.accept(
            parse_token_response(
                response.status_code, response.headers, response.content, url=self.token_url, now=started
            )
        )

    # ------------------------------------------------------------------------------------------------ drivers
    def flow(self) -> Flow[str]:
        """The bearer token, fetched through the sans-IO core when none is kept (``yield from source.flow()``)."""
        token = self.current()
        if token is None:
            request, sink = self.request()
            try:
                yield Send(request, sink)
                token = self.accept(sink.finish())
            except BaseException:
                sink.abort()
                raise
        return token.value

    def get(self, http: httpx.Client) -> str:
        """The bearer token, fetched with ``http`` when none is kept."""
        with self._lock:
            token = self.current()
            if token is None:
                started = self.clock()
                token = self._read(http.send(self._httpx_request()), started)
            return token.value

    async def aget(self, http: httpx.AsyncClient) -> str:
        """The bearer token, fetched with ``http`` when none is kept."""
        token = self.current()
        if token is None:
            started = self.clock()
            token = self._read(await http.send(self._httpx_request()), started)
        return token.value

    def auth(self) -> BearerAuth:
        """An ``httpx.Auth`` adding this source's bearer token to requests."""
        return BearerAuth(self)


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` from a :class:`TokenSource`, for sync and async httpx clients alike; on a
    401 ``invalid_token`` answer the token is renewed and the request sent once more."""

    requires_response_body = True

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.source.current()
        if token is None:
            started = self.source.clock()
            token = self.source._read((yield self.source._httpx_request()), started)
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        if response.status_code == 401 and "invalid_token" in response.headers.get("www-authenticate", ""):
            self.source.invalidate()
            started = self.source.clock()
            token = self.source._read((yield self.source._httpx_request()), started)
            request.headers["Authorization"] = f"Bearer {token.value}"
            yield request

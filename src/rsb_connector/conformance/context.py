"""What a case implementation works with: :class:`CaseContext` (steps, checks, clients that record evidence, the
case's own patients) over an :class:`Environment` (the hub, the identities, how to reach it).

An implementation is a function ``def run(t: CaseContext) -> None`` registered with
:func:`~rsb_connector.conformance.cases.implements`. It performs the catalogue's steps in order::

    with t.step(1):
        receipt = t.client().publish(...)
    with t.step(2):
        t.check(found == [receipt.document.unique_id], "the published document is found")

Every HTTP exchange of the clients it gets from the context is recorded, masked, under the step in progress.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import httpx

from ..client import VaultClient
from ..identifiers import SSIN_SYSTEM, Ssin
from ..metadata.builder import professional_author
from ..metadata.model import Author
from ..security.identity import Identity
from ..security.trust import TrustStore
from .catalogue import Case
from .results import CaseResult, Evidence, Outcome, StepResult, excerpt
from .wire import Peer

__all__ = ["AUTHOR", "CaseContext", "CaseFailure", "Environment", "MissingNeed", "RecordingTransport"]

AUTHOR: Final = "author"
"""The identity under which the suite runs (``--identity``): a professional who may publish."""

FHIR_JSON: Final = "application/fhir+json"


class CaseFailure(AssertionError):
    """A check failed: the hub did not answer as a conformant hub must (the message says what was expected and
    what came)."""


class MissingNeed(Exception):
    """The case needs something the run does not have (an identity, a seeded population)."""


@dataclass(slots=True)
class Environment:
    """What every case runs against.

    Attributes:
        hub_url: the hub's base URL.
        identities: name → identity; ``author`` is the suite's own (``--identity``), the others come from the
            development PKI beside it (``identities.json``) or ``--identities``.
        trust: the CA(s) whose certificates sign the hub's answers (None: answers are not signature-checked).
        transport: makes the httpx transport to reach the hub (None: a plain HTTP(S) transport). Tests pass an
            in-process ASGI transport.
        verify: TLS verification for https hubs (True, a CA file, or False).
        work_dir: a scratch folder (retrieved documents).
        seeded: the hub holds the mock hub's seeded population (``seed.json``); cases needing it are skipped
            otherwise.
    """

    hub_url: str
    identities: Mapping[str, Identity]
    trust: TrustStore | None = None
    transport: Callable[[], httpx.BaseTransport] | None = None
    verify: bool | str = True
    work_dir: Path = field(default_factory=lambda: Path.cwd())
    seeded: bool = False

    def make_transport(self) -> httpx.BaseTransport:
        if self.transport is not None:
            return self.transport()
        return httpx.HTTPTransport(verify=self.verify)


_TRANSACTIONS: Final = {
    "ProvideAndRegisterDocumentSet-b": "ITI-41",
    "RegistryStoredQuery": "ITI-18",
    "RetrieveDocumentSet": "ITI-43",
    "UpdateDocumentSet": "ITI-57",
}


def _label(request: httpx.Request) -> str:
    path = request.url.path
    label = f"{request.method} {path}"
    action = request.headers.get("content-type", "")
    for marker, transaction in _TRANSACTIONS.items():
        if marker in action:
            return f"{label} ({transaction})"
    if path.endswith("/fhir") and request.method == "POST":
        return f"{label} (ITI-65)"
    if "/DocumentReference" in path and request.method == "GET":
        return f"{label}?{request.url.query.decode()} (ITI-67)" if request.url.query else f"{label} (ITI-67)"
    if "/List" in path:
        return f"{label} (ITI-66)"
    if "/Binary/" in path or "/documents/" in path:
        return f"{label} (ITI-68)"
    return label


def _body_text(content: bytes, content_type: str) -> str:
    if "multipart/related" in content_type:
        # MTOM: keep the root part (the SOAP envelope); attachments are documents, reported by size only.
        boundary = next(
            (p.split("=", 1)[1].strip('"') for p in content_type.split(";") if p.strip().startswith("boundary=")),
            None,
        )
        if boundary:
            parts = content.split(b"--" + boundary.encode())
            bodies = [p for p in parts if p.strip() and p.strip() != b"--"]
            if bodies:
                root = bodies[0].split(b"\r\n\r\n", 1)[-1]
                others = [len(p.split(b"\r\n\r\n", 1)[-1]) for p in bodies[1:]]
                text = root.decode("utf-8", "replace")
                for n, size in enumerate(others, 1):
                    text += f"\n[MTOM attachment {n}: {size} bytes, not shown]"
                return text
    if any(t in content_type for t in ("xml", "json", "text", "x-www-form-urlencoded")) or not content_type:
        return content.decode("utf-8", "replace")
    return f"[{len(content)} bytes of {content_type}, not shown]"


def _headers(headers: httpx.Headers, keep: tuple[str, ...]) -> str:
    return "".join(f"{k}: {v}\n" for k, v in headers.items() if k.lower() in keep)


class RecordingTransport(httpx.BaseTransport):
    """Wraps a transport and hands every exchange to ``record`` as masked :class:`Evidence`."""

    def __init__(self, inner: httpx.BaseTransport, record: Callable[[Evidence], None]) -> None:
        self._inner = inner
        self._record = record

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()
        sent = _headers(request.headers, ("content-type", "authorization", "accept")) + "\n"
        sent += _body_text(content, request.headers.get("content-type", ""))
        response = self._inner.handle_request(request)
        try:
            body = b"".join(response.stream)  # type: ignore[arg-type]
        finally:
            response.close()
        answer = _headers(response.headers, ("content-type", "www-authenticate", "location")) + "\n"
        answer += _body_text(body, response.headers.get("content-type", ""))
        self._record(Evidence(_label(request), excerpt(sent), excerpt(answer), response.status_code))
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, extensions=response.extensions
        )

    def close(self) -> None:
        self._inner.close()


def _random_ssin(rng: random.SystemRandom) -> str:
    """A valid SSIN (national number, not BIS) of someone born 1940–2005 on a random day."""
    while True:
        year = rng.randint(1940, 2005)
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        serial = rng.randint(1, 997)
        body = f"{year % 100:02d}{month:02d}{day:02d}{serial:03d}"
        base = int(body) + (2_000_000_000 if year >= 2000 else 0)
        candidate = body + f"{97 - base % 97:02d}"
        if Ssin.is_valid(candidate):
            return candidate


class CaseContext:
    """The handle a case implementation gets (see the module docstring)."""

    def __init__(self, case: Case, env: Environment, result: CaseResult) -> None:
        self.case = case
        self.env = env
        self.result = result
        self._current: StepResult | None = None
        self._next_step = 1
        self._closers: list[Callable[[], None]] = []
        self._rng = random.SystemRandom()
        self._tokens: dict[str, str] = {}

    # ------------------------------------------------------------------------------------------ steps
    @contextmanager
    def step(self, number: int) -> Iterator[StepResult]:
        """Carry out step ``number`` of the catalogue (steps run in order, each once)."""
        if number != self._next_step or number > len(self.result.steps):
            raise RuntimeError(
                f"{self.case.id}: step {number} started, but the next catalogue step is {self._next_step} "
                f"of {len(self.result.steps)}"
            )
        step = self.result.steps[number - 1]
        self._current = step
        self._next_step += 1
        started = time.perf_counter()
        try:
            yield step
        except CaseFailure as exc:
            step.outcome = Outcome.FAILED
            step.message = str(exc)
            raise
        except MissingNeed:
            raise
        except Exception as exc:
            step.outcome = Outcome.ERROR
            step.message = f"{type(exc).__name__}: {excerpt(str(exc), 2000)}"
            raise
        else:
            step.outcome = Outcome.PASSED
        finally:
            step.seconds = time.perf_counter() - started
            self._current = None

    def check(self, condition: object, expectation: str, *, got: object = None) -> None:
        """Fail the step in progress unless ``condition`` holds; ``expectation`` says what a conformant hub does
        and ``got`` (when given) what this one did."""
        if not condition:
            message = expectation if got is None else f"{expectation}; got {got!r}"
            raise CaseFailure(excerpt(message, 2000))

    def observe(self, text: str) -> None:
        """Note what was observed in the step in progress (shown in the report when the step passed)."""
        if self._current is not None:
            self._current.message = excerpt(text, 2000)

    def record(self, evidence: Evidence) -> None:
        """Attach an exchange to the step in progress (to the case's setup outside a step)."""
        if self._current is not None:
            self._current.evidence.append(evidence)
        else:
            self.result.setup.append(evidence)

    # ------------------------------------------------------------------------------------------ identities
    def identity(self, name: str = AUTHOR) -> Identity:
        """An identity of the run; MissingNeed when the run has none of that name."""
        try:
            return self.env.identities[name]
        except KeyError:
            raise MissingNeed(f"identity {name!r} (give the development PKI with --pki)") from None

    def author(self, name: str = AUTHOR) -> Author:
        """The XDS author of documents published as ``name`` (the hub accepts only documents naming their
        publisher)."""
        who = self.identity(name)
        if who.nihii is None:
            raise MissingNeed(f"identity {name!r} is not a professional with an NIHII")
        family, _, given = who.name.partition(" ")
        return professional_author(who.nihii.digits, family=given or family, given=family if given else None)

    # ------------------------------------------------------------------------------------------ clients
    def transport(self) -> httpx.BaseTransport:
        """A transport to the hub that records every exchange in the report."""
        return RecordingTransport(self.env.make_transport(), self.record)

    def client(
        self, name: str | None = AUTHOR, *, protocol: Literal["xds", "mhd"] = "xds", **options: Any
    ) -> VaultClient:
        """An SDK client signing as ``name`` (None: unsigned), checking the hub's signed answers, recording."""
        identity = self.identity(name) if name is not None else None
        settings: dict[str, Any] = {"trust": self.env.trust, "retries": 0, "precheck": False}
        settings.update(options)
        client = VaultClient(
            self.env.hub_url, protocol=protocol, identity=identity, transport=self.transport(), **settings
        )
        self._closers.append(client.close)
        return client

    def peer(self, name: str | None = AUTHOR, *, verify_answers: bool = True) -> httpx.Client:
        """A raw XDS.b peer (:mod:`~rsb_connector.conformance.wire`) that sends exactly what it is given: signed
        as ``name`` (None: an unsigned plain client), answers checked against the trust store when
        ``verify_answers``."""
        trust = self.env.trust if verify_answers else None
        http: httpx.Client
        if name is None:
            http = httpx.Client(base_url=self.env.hub_url, transport=self.transport(), timeout=30.0)
        else:
            http = Peer(
                base_url=self.env.hub_url,
                transport=self.transport(),
                timeout=30.0,
                identity=self.identity(name),
                trust=trust,
            )
        self._closers.append(http.close)
        return http

    def http(self) -> httpx.Client:
        """A plain recording httpx client on the hub (FHIR calls with :meth:`bearer` headers)."""
        http = httpx.Client(base_url=self.env.hub_url, transport=self.transport(), timeout=30.0)
        self._closers.append(http.close)
        return http

    def token(self, name: str = AUTHOR) -> str:
        """An access token for ``name`` from the hub's token endpoint (cached for the case)."""
        if name not in self._tokens:
            client = self.client(name)
            self._tokens[name] = client.access_token()
        return self._tokens[name]

    def bearer(self, name: str = AUTHOR) -> dict[str, str]:
        """FHIR request headers with ``name``'s bearer token."""
        return {"authorization": f"Bearer {self.token(name)}", "accept": FHIR_JSON, "content-type": FHIR_JSON}

    # ------------------------------------------------------------------------------------------ patients
    def fresh_ssin(self) -> str:
        """A valid SSIN that is (with overwhelming likelihood) unknown to the hub: never fed, never seeded."""
        return _random_ssin(self._rng)

    def new_patient(
        self,
        *,
        consent: bool = True,
        links: tuple[str, ...] = (AUTHOR,),
        feeder: str = "hospital",
    ) -> str:
        """A patient of the case's own: a fresh SSIN fed to the hub's patient registry by ``feeder`` (a hospital
        identity), with a sharing consent (registered by the author) and a therapeutic link of each identity of
        ``links`` unless told otherwise. Returns the SSIN's digits."""
        ssin = self.fresh_ssin()
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "active": True,
            "identifier": [{"system": SSIN_SYSTEM, "value": ssin}],
        }
        born = Ssin(ssin).birth_date
        if born is not None:
            patient["birthDate"] = born.isoformat()
        answer = self.http().post("/fhir/Patient", json=patient, headers=self.bearer(feeder))
        if answer.status_code not in (200, 201):
            raise RuntimeError(
                f"setup: the hub refused to register the case's patient (POST /fhir/Patient → {answer.status_code})"
            )
        if consent:
            self.client(AUTHOR).consent.grant(ssin)
        for name in links:
            self.client(name).links.declare(ssin)
        return ssin

    def unique_id(self) -> str:
        """A fresh document or submission set uniqueId (an OID under the UUID arc 2.25)."""
        return f"2.25.{uuid.uuid4().int}"

    def close(self) -> None:
        """Close every client the case opened."""
        for close in reversed(self._closers):
            with suppress(Exception):  # a broken client must not hide the case's result
                close()
        self._closers.clear()

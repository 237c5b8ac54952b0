"""The blocking client: :class:`VaultClient`, the I/O half of the sans-IO core (``httpx.Client`` + ``time.sleep``)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar, Unpack

import httpx

from ..identifiers import Ssin
from ..metadata.content import ContentSource
from ..metadata.model import Association, AssociationType, Author, DocumentEntry
from ..policy import Decision
from ..security.identity import Identity
from ..security.trust import TrustStore
from ._auth import TokenSource
from ._consent import (
    ConsentApi,
    ConsentFlows,
    ExclusionsApi,
    LinksApi,
)
from ._core import (
    DEFAULT_LIMITS,
    RELATIONSHIP_TYPES,
    ClientCore,
    CodeArg,
    Flow,
    ProgressCallback,
    Send,
    Sleep,
    StatusFilter,
    TimeArg,
    wire_headers,
)
from ._tls import CertArg, VerifyArg, ssl_context
from .models import DocumentOptions, NewDocument, Receipt, RelatedDocuments, RetrievedDocument, SubmissionSetContents

__all__ = ["VaultClient"]

T = TypeVar("T")


class VaultClient:
    """Publish, find and fetch documents on the Brussels Health Network vault (or the mock hub).

    Shaped like ``httpx.Client``: create one per application (it pools connections), use it as a context manager
    or call :meth:`close`. :class:`~rsb_connector.client.AsyncVaultClient` is its ``async`` twin: same methods, same
    behaviour, one shared core.

    Example::

        from pathlib import Path
        from rsb_connector import VaultClient

        with VaultClient("http://127.0.0.1:8080") as vault:
            receipt = vault.publish(Path("report.pdf"), patient="73032929895", document_type="contactreport")
            for entry in vault.find("73032929895"):
                print(entry.unique_id, entry.title)
            doc = vault.retrieve(receipt.document.unique_id)
            assert doc.read_bytes() == Path("report.pdf").read_bytes()

    Errors (all :class:`~rsb_connector.errors.RsbError`): local validation → ``MetadataError`` (nothing sent); a SOAP
    Fault or a Failure answer → ``HubRefused`` carrying every problem; PartialSuccess → ``HubError``; network
    failures, timeouts, HTTP error pages → ``TransportError``; a malformed answer (Content-Type, truncated MTOM, a
    ``wsa:RelatesTo`` that is not the request's MessageID) → ``ProtocolError``; retrieved bytes that do not match
    their metadata → ``IntegrityError``.

    Retries: exponential backoff with jitter (``backoff`` seconds, doubling, ±50 %), at most ``retries`` times.
    Queries and retrieves are retried on connect errors, timeouts, dropped connections and HTTP 502/503/504.
    A publish is retried only on connect errors and timeouts, and only because XDS makes it safe: a retry is a *new*
    message (new ``wsa:MessageID``) with *identical* metadata, and a registry accepts a document it already holds
    with the same uniqueId and hash (the hub treats the repeated submission set as success). Content given as a
    stream that cannot seek back is never retried. A refusal is never retried. Status updates (deprecate) are
    retried only when the connection could not be made.

    Logging: one line per transaction on the ``rsb_connector.client`` logger, with structured ``extra`` fields
    (``transaction``, ``action``, ``url``, ``status``, ``duration_ms``, ``attempts``, ``patient`` masked); never
    document content.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        *,
        protocol: Literal["xds", "mhd"] = "xds",
        identity: Identity | None = None,
        trust: TrustStore | str | os.PathLike[str] | None = None,
        verify: VerifyArg = True,
        cert: CertArg = None,
        timeout: float | httpx.Timeout = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        limits: httpx.Limits | None = None,
        transport: httpx.BaseTransport | None = None,
        repository_unique_id: str | None = None,
        source_id: str | None = None,
        mtom: bool = True,
        precheck: bool = True,
    ) -> None:
        """Configure the client (nothing is sent yet).

        Args:
            base_url: the hub, e.g. ``http://127.0.0.1:8080`` (XDS endpoints ``/xds/registry`` and
                ``/xds/repository`` below it).
            protocol: ``"xds"`` (XDS.b SOAP, signed) or ``"mhd"`` (IHE MHD 4.2, FHIR R4 JSON under ``/fhir``, with
                bearer tokens obtained with ``identity``): the same operations, results and errors. Over MHD,
                ``deprecate`` is an XDS ITI-57 (MHD has no status update) and the stored queries ITI-67 cannot
                express (submission set contents, related documents) are XDS ITI-18.
            identity: who is calling (an :class:`~rsb_connector.Identity`, e.g. ``Identity.load("gp.p12",
                password)``): every SOAP request is signed with it (WS-Security), and it obtains the FHIR side's
                bearer tokens (:attr:`tokens`).
            trust: the CA(s) whose certificates may sign the hub's answers: a
                :class:`~rsb_connector.security.trust.TrustStore` or a PEM file (the development PKI's ``ca.pem``).
                With it every answer must carry a valid hub signature, and only its signed parts are read; without
                it answers are not signature-checked.
            verify: for ``https://`` hubs: ``True`` (public CAs), a CA file (``ca.pem``), an ``ssl.SSLContext``,
                or ``False`` (no check: never in production).
            cert: a client certificate for mutual TLS: an identity (usually the same as ``identity``) or
                ``(cert_file, key_file[, password])``.
            timeout: seconds (or an ``httpx.Timeout``) for connecting, each read and each write.
            retries: how many times a failed request may be repeated (see the class docstring).
            backoff: the first retry delay in seconds.
            limits: connection pool limits (default 100 connections, 20 kept alive).
            transport: an httpx transport (tests: ``httpx.MockTransport``, respx, an ASGI/WSGI transport).
            repository_unique_id: the repository to retrieve from when an entry does not say
                (default :data:`~rsb_connector.xds.constants.DEFAULT_REPOSITORY_UNIQUE_ID`).
            source_id: this application's Document Source OID (the SubmissionSet ``sourceId``).
            mtom: send and receive documents as MTOM attachments, streamed (True) or inline base64 (False).
            precheck: with an identity, ask the hub's policy (``GET /fhir/$check-access``) before publishing or
                retrieving, and raise :class:`~rsb_connector.AccessDenied` naming the rule and the fix before any
                document moves (one small request per patient and document class; skipped if the hub lacks it).

        Raises:
            ValueError: ``base_url`` is not an http(s) URL, an unknown protocol, negative retries or backoff.
        """
        self._core = ClientCore(
            base_url,
            protocol=protocol,
            identity=identity,
            trust=trust,
            retries=retries,
            backoff=backoff,
            repository_unique_id=repository_unique_id,
            source_id=source_id,
            mtom=mtom,
            precheck=precheck,
        )
        self._http = httpx.Client(
            timeout=timeout,
            limits=limits or DEFAULT_LIMITS,
            transport=transport,
            follow_redirects=False,
            verify=ssl_context(verify, cert),
        )
        consent_flows = ConsentFlows(self._core)
        self.consent = ConsentApi(consent_flows, self._run)
        """The patient's sharing consent: ``grant``, ``revoke``, ``status``, ``trail`` (the patient's audit trail)."""
        self.links = LinksApi(consent_flows, self._run)
        """Therapeutic links: ``declare``, ``revoke``, ``list``."""
        self.exclusions = ExclusionsApi(consent_flows, self._run)
        """Professionals the patient excludes: ``add``, ``remove``, ``list``."""
        self._consent_flows = consent_flows

    # ---------------------------------------------------------------------------------------------- I/O
    def _run(self, flow: Flow[T]) -> T:
        """Perform the core's instructions until the flow returns."""
        try:
            instruction = next(flow)
            while True:
                try:
                    if isinstance(instruction, Sleep):
                        time.sleep(instruction.seconds)
                    else:
                        self._send(instruction)
                except Exception as exc:  # the core decides: retry, convert, clean up
                    instruction = flow.throw(exc)
                else:
                    instruction = flow.send(None)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            flow.close()

    def _send(self, send: Send) -> None:
        request, sink = send.request, send.sink
        content = request.body if isinstance(request.body, bytes) else iter(request.body)
        with self._http.stream(
            request.method, request.url, headers=wire_headers(request.headers), content=content
        ) as reply:
            sink.start(reply.status_code, reply.headers)
            for chunk in reply.iter_bytes():
                sink.feed(chunk)

    # ---------------------------------------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        """The hub's base URL."""
        return self._core.base_url

    @property
    def identity(self) -> Identity | None:
        """The identity requests are signed with."""
        return self._core.identity

    @property
    def tokens(self) -> TokenSource:
        """OAuth2 bearer tokens for the hub's FHIR side, obtained with :attr:`identity` and refreshed by
        themselves: ``vault.tokens.get(http)``, or ``auth=vault.tokens.auth()`` on any httpx request."""
        return self._core.tokens

    def check_access(
        self,
        patient: Ssin | str,
        action: Literal["read", "find", "publish"] = "read",
        *,
        document_class: str | None = None,
        break_the_glass: str | None = None,
        confidentiality: str = "N",
    ) -> Decision:
        """Whether the hub would let this client's identity ``action`` the patient's documents (of
        ``document_class``, e.g. ``labresult``; a read needs it), decided by the hub's own rules
        (``GET /fhir/$check-access``): a :class:`~rsb_connector.policy.Decision` naming the rule that would deny
        and what would fix it. Nothing is read or written; the hub's answer may change as consents change."""
        return self._run(
            self._consent_flows.check_access(patient, action, document_class, break_the_glass, confidentiality)
        )

    def access_token(self) -> str:
        """A valid bearer token for the hub's FHIR side (fetched from ``/oauth2/token`` when needed)."""
        return self._run(self._core.tokens.flow())

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> VaultClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------- publish
    def publish(
        self,
        content: ContentSource,
        *,
        patient: Ssin | str,
        document_type: str,
        author: Author | None = None,
        mime_type: str | None = None,
        title: str | None = None,
        **options: Unpack[DocumentOptions],
    ) -> Receipt:
        """Publish one document in its own submission set (ITI-41).

        The metadata is built by :func:`~rsb_connector.metadata.builder.new_document` (``options`` are its other
        keyword arguments) and validated locally with the ITI-41 rules *before* anything is sent. The content is
        streamed as an MTOM attachment from bytes, a path or a binary stream: a large file is never held in memory.

        Example::

            receipt = vault.publish(Path("letter.pdf"), patient="73032929895", document_type="referral",
                                    author=professional_author("11478761004", family="Peeters"))
            receipt.document.unique_id   # keep it: it names the document everywhere

        Raises:
            MetadataError: local validation failed (nothing was sent).
            ValueError / InvalidIdentifier: an unknown code key, a bad SSIN, no MIME type...
            HubRefused: the hub refused the submission (every problem it gave is in ``problems``).
            TransportError / ProtocolError: no usable answer (see the class docstring about retries).
        """
        return self._run(
            self._core.publish(
                content,
                patient=patient,
                document_type=document_type,
                author=author,
                mime_type=mime_type,
                title=title,
                **options,
            )
        )

    def publish_many(
        self,
        documents: Sequence[NewDocument | tuple[ContentSource, DocumentEntry]],
        *,
        author: Author | None = None,
        content_type: str | None = None,
        title: str | None = None,
        associations: Sequence[Association] = (),
    ) -> Receipt:
        """Publish several documents of one patient in one submission set (all or nothing).

        Each document is a ``(content, entry)`` pair, the entry built with
        :func:`~rsb_connector.metadata.builder.new_document` or by hand. ``author``, ``content_type`` (a
        contentTypeCode key; default the first entry's class) and ``title`` describe the submission set;
        ``associations`` adds document relationships (RPLC, APND...) to send along.

        Example::

            docs = [NewDocument(data, new_document(data, patient=ssin, document_type="labresult",
                                                   mime_type="text/plain")) for data in (b"Hb 14", b"Fe 90")]
            receipt = vault.publish_many(docs)

        Raises: as :meth:`publish`.
        """
        return self._run(
            self._core.publish_many(
                documents, author=author, content_type=content_type, title=title, associations=associations
            )
        )

    def replace(
        self,
        old: DocumentEntry | str,
        content: ContentSource,
        *,
        patient: Ssin | str | None = None,
        document_type: str | None = None,
        author: Author | None = None,
        mime_type: str | None = None,
        title: str | None = None,
        **options: Unpack[DocumentOptions],
    ) -> Receipt:
        """Publish ``content`` as the new version of ``old`` (an RPLC association): the registry deprecates the old
        entry in the same transaction.

        ``old`` is a DocumentEntry (from :meth:`find`) or a uniqueId / ``urn:uuid:`` entryUUID (looked up first).
        Arguments left out are taken from the old entry (patient, type, class, title; the MIME type when the
        content's cannot be guessed).

        Example::

            receipt = vault.replace(entry, b"corrected report", mime_type="text/plain")

        Raises: as :meth:`publish`; ``MetadataError`` (XDSPatientIdDoesNotMatch) for another patient,
        ``NotFoundError`` when ``old`` is not registered.
        """
        return self._run(
            self._core.relate(
                AssociationType.RPLC,
                old,
                content,
                patient=patient,
                document_type=document_type,
                author=author,
                mime_type=mime_type,
                title=title,
                **options,
            )
        )

    def append(
        self,
        old: DocumentEntry | str,
        content: ContentSource,
        *,
        patient: Ssin | str | None = None,
        document_type: str | None = None,
        author: Author | None = None,
        mime_type: str | None = None,
        title: str | None = None,
        **options: Unpack[DocumentOptions],
    ) -> Receipt:
        """Publish ``content`` as an addendum to ``old`` (an APND association); ``old`` stays Approved.

        Arguments as :meth:`replace`.
        """
        return self._run(
            self._core.relate(
                AssociationType.APND,
                old,
                content,
                patient=patient,
                document_type=document_type,
                author=author,
                mime_type=mime_type,
                title=title,
                **options,
            )
        )

    def deprecate(self, entry: DocumentEntry | str) -> None:
        """Mark a document Deprecated (ITI-57 Update Document Set, Approved → Deprecated).

        ``entry`` is a DocumentEntry or a uniqueId / ``urn:uuid:`` entryUUID (looked up first).

        Example::

            vault.deprecate(receipt.document.unique_id)

        Raises:
            HubRefused: e.g. ``XDSMetadataUpdateError`` when it is not Approved.
            NotFoundError: no such document.
        """
        self._run(self._core.deprecate(entry))

    # ---------------------------------------------------------------------------------------------- queries
    def find(
        self,
        patient: Ssin | str,
        *,
        status: StatusFilter = "approved",
        class_codes: CodeArg = None,
        type_codes: CodeArg = None,
        practice_settings: CodeArg = None,
        facility_types: CodeArg = None,
        event_codes: CodeArg = None,
        confidentiality: CodeArg = None,
        format_codes: CodeArg = None,
        created_from: TimeArg = None,
        created_to: TimeArg = None,
        service_from: TimeArg = None,
        service_to: TimeArg = None,
        author_person: str | None = None,
        break_the_glass: str | None = None,
    ) -> list[DocumentEntry]:
        """A patient's documents (ITI-18 FindDocuments; ITI-67 over MHD), filtered.

        Codes are :class:`~rsb_connector.metadata.model.Code` values or value-set keys (``"labresult"``, ``"gp"``,
        ``"pdf"``, ``"N"``); several values of one filter are OR-ed. Times are datetimes, DTM or ISO 8601 text;
        ``created_from`` is inclusive, ``created_to`` exclusive; ``service_from`` / ``service_to`` keep documents
        whose service period overlaps that range. ``status="all"`` includes deprecated (replaced) documents.

        The hub leaves out, silently, what the caller may not see. ``break_the_glass``: in an emergency, a healthcare
        professional without a therapeutic link gives the reason (10 to 200 characters) and finds what the link or
        the access matrix would hide — never against the patient's consent or exclusion, never a very restricted
        document. The access is audited with the reason, which the patient reads in their trail. It needs
        ``protocol="mhd"`` (the reason travels as the ``X-Break-The-Glass`` header of the hub's FHIR reads).

        Example::

            labs = vault.find("73032929895", class_codes=["labresult"], created_from="2024-01-01")

            with VaultClient(url, protocol="mhd", identity=emergency_doctor, trust="ca.pem") as vault:
                entries = vault.find("73032929895", break_the_glass="Unconscious patient at the ER, no relative")

        Raises:
            ValueError / InvalidIdentifier: an unknown code key or a bad SSIN (nothing sent); a break-the-glass
                reason over XDS, from an identity that is not a professional, or not 10-200 characters long.
            HubRefused: the registry refused the query (e.g. ``XDSTooManyResults``).
        """
        return self._run(
            self._core.find(
                patient,
                status=status,
                class_codes=class_codes,
                type_codes=type_codes,
                practice_settings=practice_settings,
                facility_types=facility_types,
                event_codes=event_codes,
                confidentiality=confidentiality,
                format_codes=format_codes,
                created_from=created_from,
                created_to=created_to,
                service_from=service_from,
                service_to=service_to,
                author_person=author_person,
                break_the_glass=break_the_glass,
            )
        )

    def get_documents(
        self, *, entry_uuids: Sequence[str] = (), unique_ids: Sequence[str] = (), break_the_glass: str | None = None
    ) -> list[DocumentEntry]:
        """Document entries by entryUUIDs or by uniqueIds (ITI-18 GetDocuments, ITI-67 over MHD; give one of the
        two). ``break_the_glass``: an emergency reason, as for :meth:`find` (MHD only).

        Example::

            [entry] = vault.get_documents(unique_ids=[receipt.document.unique_id])
        """
        return self._run(
            self._core.get_documents(entry_uuids=entry_uuids, unique_ids=unique_ids, break_the_glass=break_the_glass)
        )

    def submission_set_contents(self, submission_set: str) -> SubmissionSetContents:
        """A submission set (by uniqueId or ``urn:uuid:`` entryUUID) with its entries and associations.

        Example::

            contents = vault.submission_set_contents(receipt.submission_set_unique_id)

        Raises:
            NotFoundError: no such submission set.
        """
        return self._run(self._core.submission_set_contents(submission_set))

    def related_documents(
        self, entry: DocumentEntry | str, *, types: Sequence[AssociationType] = RELATIONSHIP_TYPES
    ) -> RelatedDocuments:
        """Documents related to ``entry`` by the given association types (default: RPLC, APND, XFRM, XFRM_RPLC,
        signs), with those associations (ITI-18 GetRelatedDocuments).

        Example::

            related = vault.related_documents(old_entry, types=[AssociationType.RPLC])
        """
        return self._run(self._core.related_documents(entry, types=types))

    # ---------------------------------------------------------------------------------------------- retrieve
    def retrieve(
        self,
        document: DocumentEntry | str,
        *,
        to: Path | str | None = None,
        verify: bool = True,
        progress: ProgressCallback | None = None,
        break_the_glass: str | None = None,
    ) -> RetrievedDocument:
        """Fetch one document (ITI-43; ITI-68 over MHD), into memory (``to=None``) or streamed to a file.

        ``document`` is a DocumentEntry or a uniqueId (its entry is fetched first with GetDocuments, to know its
        repository, hash and size). With ``verify`` (the default) the SHA-1 (case-insensitively) and size of the
        bytes received are compared with the entry's metadata. ``to`` is a file path or an existing directory (the
        file is then named after the uniqueId); the file appears only once complete and verified (it is written
        beside the target and renamed), so no partial file is ever left; it is readable by its owner only (health
        data). ``progress(received, total)`` is called as bytes arrive.

        ``break_the_glass``: an emergency reason, as for :meth:`find` (MHD only): it goes with the lookup, the
        access pre-check (:meth:`check_access`) and the retrieve itself.

        Example::

            doc = vault.retrieve(entry, to=Path("downloads"))
            print(doc.path, doc.size, doc.mime_type)

            urgent = vault.retrieve(entry, break_the_glass="Unconscious patient at the ER, no relative")

        Raises:
            IntegrityError: hash or size differ from the metadata (nothing kept).
            NotFoundError: no such document; HubRefused: the repository refused.
            ValueError: a break-the-glass reason that cannot be sent (see :meth:`find`).
        """
        return self._run(
            self._core.retrieve(document, to=to, verify=verify, progress=progress, break_the_glass=break_the_glass)
        )

    def retrieve_many(
        self,
        documents: Sequence[DocumentEntry | str],
        *,
        to_dir: Path | str | None = None,
        verify: bool = True,
        progress: ProgressCallback | None = None,
        break_the_glass: str | None = None,
    ) -> list[RetrievedDocument]:
        """Fetch several documents in one ITI-43 request, in the order given (into memory, or into ``to_dir``).

        Ids are looked up first (one GetDocuments) to verify hash and size; an id the registry does not know is
        still asked for, and reported missing with the others. When the repository returns only some documents
        (PartialSuccess), a
        :class:`~rsb_connector.client.PartialRetrieveError` (a ``HubError``, not a refusal) is raised: its
        ``problems`` say which are missing and why, and its ``partial`` attribute holds the documents that *were*
        retrieved (verified, and written to ``to_dir`` when given). ``break_the_glass``: an emergency reason, as for
        :meth:`find` (MHD only), sent with every request of the operation.

        Example::

            try:
                docs = vault.retrieve_many(entries, to_dir=Path("out"))
            except PartialRetrieveError as exc:
                docs = exc.partial

            urgent = vault.retrieve_many(entries, break_the_glass="Unconscious patient at the ER, no relative")

        Raises:
            PartialRetrieveError: some documents missing (see above).
            HubRefused: none could be returned; IntegrityError: one did not match its metadata (none kept).
            ValueError: a break-the-glass reason that cannot be sent (see :meth:`find`).
        """
        return self._run(
            self._core.retrieve_many(
                documents, to_dir=to_dir, verify=verify, progress=progress, break_the_glass=break_the_glass
            )
        )

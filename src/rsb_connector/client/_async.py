"""The asyncio client: :class:`AsyncVaultClient`, the I/O half of the sans-IO core (``httpx.AsyncClient`` +
``asyncio.sleep``). Every method behaves exactly as its :class:`~rsb_connector.client.VaultClient` twin."""

from __future__ import annotations

import asyncio
import os
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
    AsyncConsentApi,
    AsyncExclusionsApi,
    AsyncLinksApi,
    ConsentFlows,
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

__all__ = ["AsyncVaultClient"]

T = TypeVar("T")


class AsyncVaultClient:
    """The ``async`` twin of :class:`~rsb_connector.client.VaultClient`: same arguments, same methods (awaited), same
    errors, retries and logging, over the same sans-IO core.

    Example::

        async with AsyncVaultClient("http://127.0.0.1:8080") as vault:
            receipt = await vault.publish(b"Hb 14 g/dl", patient="73032929895", document_type="labresult",
                                          mime_type="text/plain")
            entries = await vault.find("73032929895")
            doc = await vault.retrieve(receipt.document.unique_id)

    One client may serve many concurrent tasks (it pools connections); every operation is independent.
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
        transport: httpx.AsyncBaseTransport | None = None,
        repository_unique_id: str | None = None,
        source_id: str | None = None,
        mtom: bool = True,
        precheck: bool = True,
    ) -> None:
        """Configure the client (nothing is sent yet); arguments as :class:`VaultClient` (``transport`` is an
        ``httpx.AsyncBaseTransport``, e.g. ``httpx.ASGITransport(app=hub.app)``)."""
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
        self._http = httpx.AsyncClient(
            timeout=timeout,
            limits=limits or DEFAULT_LIMITS,
            transport=transport,
            follow_redirects=False,
            verify=ssl_context(verify, cert),
        )
        consent_flows = ConsentFlows(self._core)
        self.consent = AsyncConsentApi(consent_flows, self._run)
        """The patient's sharing consent: ``grant``, ``revoke``, ``status``, ``trail`` (the patient's audit trail)."""
        self.links = AsyncLinksApi(consent_flows, self._run)
        """Therapeutic links: ``declare``, ``revoke``, ``list``."""
        self.exclusions = AsyncExclusionsApi(consent_flows, self._run)
        """Professionals the patient excludes: ``add``, ``remove``, ``list``."""
        self._consent_flows = consent_flows

    # ---------------------------------------------------------------------------------------------- I/O
    async def _run(self, flow: Flow[T]) -> T:
        """Perform the core's instructions until the flow returns."""
        try:
            instruction = next(flow)
            while True:
                try:
                    if isinstance(instruction, Sleep):
                        await asyncio.sleep(instruction.seconds)
                    else:
                        await self._send(instruction)
                except Exception as exc:  # the core decides: retry, convert, clean up
                    instruction = flow.throw(exc)
                else:
                    instruction = flow.send(None)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            flow.close()

    async def _send(self, send: Send) -> None:
        request, sink = send.request, send.sink
        content = request.body if isinstance(request.body, bytes) else aiter(request.body)
        async with self._http.stream(
            request.method, request.url, headers=wire_headers(request.headers), content=content
        ) as reply:
            sink.start(reply.status_code, reply.headers)
            async for chunk in reply.aiter_bytes():
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
        """OAuth2 bearer tokens for the hub's FHIR side (see :attr:`VaultClient.tokens`)."""
        return self._core.tokens

    async def check_access(
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
        return await self._run(
            self._consent_flows.check_access(patient, action, document_class, break_the_glass, confidentiality)
        )

    async def access_token(self) -> str:
        """A valid bearer token for the hub's FHIR side (fetched from ``/oauth2/token`` when needed)."""
        return await self._run(self._core.tokens.flow())

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def close(self) -> None:
        """Close the connection pool (same as :meth:`aclose`)."""
        await self.aclose()

    async def __aenter__(self) -> AsyncVaultClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ---------------------------------------------------------------------------------------------- publish
    async def publish(
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
        """Publish one document in its own submission set (see :meth:`VaultClient.publish`).

        Example::

            receipt = await vault.publish(Path("letter.pdf"), patient=ssin, document_type="referral")
        """
        return await self._run(
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

    async def publish_many(
        self,
        documents: Sequence[NewDocument | tuple[ContentSource, DocumentEntry]],
        *,
        author: Author | None = None,
        content_type: str | None = None,
        title: str | None = None,
        associations: Sequence[Association] = (),
    ) -> Receipt:
        """Publish several documents of one patient in one submission set (see :meth:`VaultClient.publish_many`)."""
        return await self._run(
            self._core.publish_many(
                documents, author=author, content_type=content_type, title=title, associations=associations
            )
        )

    async def replace(
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
        """Publish the new version of ``old`` (RPLC; see :meth:`VaultClient.replace`)."""
        return await self._run(
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

    async def append(
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
        """Publish an addendum to ``old`` (APND; see :meth:`VaultClient.append`)."""
        return await self._run(
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

    async def deprecate(self, entry: DocumentEntry | str) -> None:
        """Mark a document Deprecated (ITI-57; see :meth:`VaultClient.deprecate`)."""
        await self._run(self._core.deprecate(entry))

    # ---------------------------------------------------------------------------------------------- queries
    async def find(
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
        """A patient's documents, filtered (ITI-18 FindDocuments, ITI-67 over MHD; see :meth:`VaultClient.find`,
        also for ``break_the_glass``, a professional's emergency reason of 10-200 characters, MHD only).

        Example::

            entries = await vault.find("73032929895", status="all", type_codes=["contactreport"])
            urgent = await vault.find("73032929895", break_the_glass="Unconscious patient at the ER, no relative")
        """
        return await self._run(
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

    async def get_documents(
        self, *, entry_uuids: Sequence[str] = (), unique_ids: Sequence[str] = (), break_the_glass: str | None = None
    ) -> list[DocumentEntry]:
        """Document entries by entryUUIDs or uniqueIds (see :meth:`VaultClient.get_documents`).

        Example::

            [entry] = await vault.get_documents(unique_ids=[unique_id], break_the_glass="Unconscious patient, ER")
        """
        return await self._run(
            self._core.get_documents(entry_uuids=entry_uuids, unique_ids=unique_ids, break_the_glass=break_the_glass)
        )

    async def submission_set_contents(self, submission_set: str) -> SubmissionSetContents:
        """A submission set with its entries and associations (see :meth:`VaultClient.submission_set_contents`)."""
        return await self._run(self._core.submission_set_contents(submission_set))

    async def related_documents(
        self, entry: DocumentEntry | str, *, types: Sequence[AssociationType] = RELATIONSHIP_TYPES
    ) -> RelatedDocuments:
        """Documents related to ``entry`` (see :meth:`VaultClient.related_documents`)."""
        return await self._run(self._core.related_documents(entry, types=types))

    # ---------------------------------------------------------------------------------------------- retrieve
    async def retrieve(
        self,
        document: DocumentEntry | str,
        *,
        to: Path | str | None = None,
        verify: bool = True,
        progress: ProgressCallback | None = None,
        break_the_glass: str | None = None,
    ) -> RetrievedDocument:
        """Fetch one document, into memory or streamed to a file, verified (see :meth:`VaultClient.retrieve`, also
        for ``break_the_glass``).

        Example::

            doc = await vault.retrieve(entry, to="report.pdf")
            urgent = await vault.retrieve(entry, break_the_glass="Unconscious patient at the ER, no relative")
        """
        return await self._run(
            self._core.retrieve(document, to=to, verify=verify, progress=progress, break_the_glass=break_the_glass)
        )

    async def retrieve_many(
        self,
        documents: Sequence[DocumentEntry | str],
        *,
        to_dir: Path | str | None = None,
        verify: bool = True,
        progress: ProgressCallback | None = None,
        break_the_glass: str | None = None,
    ) -> list[RetrievedDocument]:
        """Fetch several documents in one request (see :meth:`VaultClient.retrieve_many`, also for
        ``break_the_glass``; PartialSuccess raises :class:`~rsb_connector.client.PartialRetrieveError` whose
        ``partial`` holds what came back).

        Example::

            docs = await vault.retrieve_many(entries, break_the_glass="Unconscious patient at the ER, no relative")
        """
        return await self._run(
            self._core.retrieve_many(
                documents, to_dir=to_dir, verify=verify, progress=progress, break_the_glass=break_the_glass
            )
        )

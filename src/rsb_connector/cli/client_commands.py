"""``rsb publish``, ``rsb find`` and ``rsb fetch``: the SDK client from the command line.

Each command talks to a hub (``--hub URL``, default ``$RSB_HUB_URL`` or ``http://127.0.0.1:8080``) as an identity
(``--identity FILE`` with ``--password``, default ``$RSB_IDENTITY`` / ``$RSB_IDENTITY_PASSWORD``: every request is
signed with it, and over ``https://`` it is the TLS client certificate too) and checks the hub's signed answers
against ``--ca FILE`` (default ``$RSB_CA``; also the TLS trust anchor). It prints a table
(or JSON with ``--json``) and exits with the codes of :mod:`rsb_connector.cli`: 0 done, 1 the hub or local validation
refused (a verdict about the data), 2 usage error, 3 no usable answer (network, protocol, integrity). Errors are
printed as sentences and XDS problems, never as tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn
from rich.table import Table

from ..client import Receipt, RetrievedDocument, VaultClient
from ..client.models import NewDocument
from ..errors import HubError, IntegrityError, InvalidIdentifier, MetadataError, Problem, RsbError, TransportError
from ..metadata.builder import new_document, professional_author
from ..metadata.model import DocumentEntry
from ..security.identity import Identity, IdentityError
from . import EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE

__all__ = ["DEFAULT_HUB", "register"]

DEFAULT_HUB = "http://127.0.0.1:8080"
"""The hub URL when neither ``--hub`` nor ``$RSB_HUB_URL`` is given."""

_Command = Callable[[argparse.Namespace], int]


class _UsageError(Exception):
    """A command line that cannot be carried out as given (exit code 2)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``publish``, ``find`` and ``fetch`` commands to the ``rsb`` parser's subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--hub",
        default=os.environ.get("RSB_HUB_URL", DEFAULT_HUB),
        metavar="URL",
        help=f"the hub's base URL (default $RSB_HUB_URL or {DEFAULT_HUB})",
    )
    common.add_argument(
        "--identity",
        default=os.environ.get("RSB_IDENTITY") or None,
        metavar="FILE",
        help="sign requests as this identity: a .p12 (eHealth certificate) or .pem (default $RSB_IDENTITY)",
    )
    common.add_argument(
        "--password",
        default=os.environ.get("RSB_IDENTITY_PASSWORD") or None,
        metavar="PW",
        help="the identity's password (default $RSB_IDENTITY_PASSWORD)",
    )
    common.add_argument(
        "--ca",
        default=os.environ.get("RSB_CA") or None,
        metavar="FILE",
        help="CA certificate(s) (PEM) the hub's signed answers must chain to; also trusted for https (default $RSB_CA)",
    )
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    common.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="network timeout (default 30)")

    publish = subparsers.add_parser(
        "publish",
        parents=[common],
        help="publish documents for a patient (one submission set)",
        description="Publish one or more files for one patient, as one submission set (ITI-41).",
    )
    publish.add_argument("files", nargs="+", type=Path, metavar="FILE", help="the document(s) to publish")
    publish.add_argument("--patient", required=True, metavar="SSIN", help="the patient's SSIN")
    publish.add_argument(
        "--type",
        required=True,
        dest="document_type",
        metavar="TYPE",
        help="document type, a CD-TRANSACTION code (contactreport, labresult, referral, sumehr...)",
    )
    publish.add_argument("--author-nihii", metavar="NIHII", help="the author's NIHII (a healthcare professional)")
    publish.add_argument("--title", help="the document title (default: the file name)")
    publish.add_argument("--mime-type", help="MIME type (default: guessed from the file name)")
    publish.add_argument("--confidentiality", default="N", help="confidentiality code: N, R or V (default N)")
    publish.set_defaults(func=_guard(_publish))

    find = subparsers.add_parser(
        "find",
        parents=[common],
        help="list a patient's documents",
        description="List a patient's documents (ITI-18 FindDocuments).",
    )
    find.add_argument("--patient", required=True, metavar="SSIN", help="the patient's SSIN")
    find.add_argument("--class", dest="class_codes", action="append", metavar="CODE", help="class code (repeatable)")
    find.add_argument("--type", dest="type_codes", action="append", metavar="CODE", help="type code (repeatable)")
    find.add_argument(
        "--status", choices=("approved", "deprecated", "all"), default="approved", help="default: approved"
    )
    find.add_argument("--from", dest="created_from", metavar="TIME", help="created at or after (ISO 8601 or DTM)")
    find.add_argument("--to", dest="created_to", metavar="TIME", help="created before (ISO 8601 or DTM)")
    find.set_defaults(func=_guard(_find))

    fetch = subparsers.add_parser(
        "fetch",
        parents=[common],
        help="download documents by uniqueId",
        description="Download documents (ITI-43), checking each against its registered hash and size.",
    )
    fetch.add_argument("unique_ids", nargs="+", metavar="DOCUMENT_ID", help="the documents' uniqueIds")
    fetch.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="a file (one document) or a directory (created if needed; files named after the uniqueIds)",
    )
    fetch.add_argument("--no-verify", action="store_true", help="do not check hash and size against the metadata")
    fetch.set_defaults(func=_guard(_fetch))


# ------------------------------------------------------------------------------------------------- errors


def _problem_json(problem: Problem) -> dict[str, str]:
    return {
        "code": problem.code,
        "message": problem.message,
        "path": problem.path,
        "severity": problem.severity.value.rsplit(":", 1)[-1],
    }


def _report(args: argparse.Namespace, exc: BaseException, kind: str, problems: Sequence[Problem] = ()) -> None:
    if getattr(args, "json", False):
        payload: dict[str, Any] = {"error": {"kind": kind, "type": type(exc).__name__, "message": str(exc)}}
        if problems:
            payload["error"]["problems"] = [_problem_json(p) for p in problems]
        print(json.dumps(payload, indent=2))
        return
    console = Console(stderr=True, highlight=False)
    if problems:
        first = str(exc).splitlines()[0].rstrip(":")
        console.print(f"[bold red]error:[/] {first}", markup=True)
        for p in problems:
            where = f" [dim]at {p.path}[/]" if p.path else ""
            console.print(f"  - [bold]{p.code}[/]{where}: {p.message}", markup=True, soft_wrap=True)
    else:
        console.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)


def _guard(command: _Command) -> _Command:
    """Run ``command``, turning every expected failure into a readable message and an exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except _UsageError as exc:
            _report(args, exc, "usage")
            return EXIT_USAGE
        except (InvalidIdentifier, IdentityError) as exc:
            _report(args, exc, "usage")
            return EXIT_USAGE
        except (MetadataError, HubError) as exc:
            _report(args, exc, "refused", exc.problems)
            return EXIT_REFUSED
        except (TransportError, IntegrityError) as exc:
            _report(args, exc, "failure")
            return EXIT_FAILURE
        except RsbError as exc:
            _report(args, exc, "failure")
            return EXIT_FAILURE
        except ValueError as exc:
            _report(args, exc, "usage")
            return EXIT_USAGE
        except OSError as exc:
            _report(args, exc, "failure")
            return EXIT_FAILURE

    return run


def _client(args: argparse.Namespace) -> VaultClient:
    identity = Identity.load(args.identity, args.password) if args.identity else None
    if args.ca and not Path(args.ca).is_file():
        raise _UsageError(f"--ca {args.ca}: no such file")
    https = str(args.hub).lower().startswith("https://")
    return VaultClient(
        args.hub,
        timeout=args.timeout,
        identity=identity,
        trust=args.ca,
        verify=args.ca if https and args.ca else True,
        cert=identity if https else None,
    )


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# ------------------------------------------------------------------------------------------------- publish


def _publish(args: argparse.Namespace) -> int:
    files: list[Path] = args.files
    for path in files:
        if not path.is_file():
            raise _UsageError(f"{path} is not a file")
    author = professional_author(args.author_nihii) if args.author_nihii else None
    documents = [
        NewDocument(
            path,
            new_document(
                path,
                patient=args.patient,
                document_type=args.document_type,
                author=author,
                mime_type=args.mime_type,
                title=args.title if args.title is not None else path.name,
                confidentiality=args.confidentiality,
            ),
        )
        for path in files
    ]
    with _client(args) as vault:
        receipt = vault.publish_many(documents, author=author)
    _show_receipt(args, files, receipt)
    return EXIT_OK


def _show_receipt(args: argparse.Namespace, files: Sequence[Path], receipt: Receipt) -> None:
    if args.json:
        _print_json(
            {
                "submission_set_unique_id": receipt.submission_set_unique_id,
                "submission_set_entry_uuid": receipt.submission_set_entry_uuid,
                "documents": [
                    {
                        "file": str(path),
                        "unique_id": doc.unique_id,
                        "entry_uuid": doc.entry_uuid,
                        "hash": doc.hash,
                        "size": doc.size,
                        "mime_type": doc.mime_type,
                    }
                    for path, doc in zip(files, receipt.documents, strict=True)
                ],
                "warnings": [_problem_json(p) for p in receipt.warnings],
            }
        )
        return
    table = Table(title=f"published: submission set {receipt.submission_set_unique_id}")
    table.add_column("file")
    table.add_column("uniqueId", overflow="fold")
    table.add_column("MIME type")
    table.add_column("size", justify="right")
    for path, doc in zip(files, receipt.documents, strict=True):
        table.add_row(path.name, doc.unique_id, doc.mime_type or "", "" if doc.size is None else str(doc.size))
    Console().print(table)


# ------------------------------------------------------------------------------------------------- find


def _entry_json(entry: DocumentEntry) -> dict[str, Any]:
    return {
        "unique_id": entry.unique_id,
        "entry_uuid": entry.entry_uuid,
        "status": entry.availability_status.short,
        "class_code": entry.class_code.code if entry.class_code else None,
        "type_code": entry.type_code.code if entry.type_code else None,
        "creation_time": entry.creation_time,
        "title": entry.title,
        "mime_type": entry.mime_type,
        "size": entry.size,
        "hash": entry.hash,
        "repository_unique_id": entry.repository_unique_id,
    }


def _created(dtm: str | None) -> str:
    if not dtm:
        return ""
    parts = [dtm[0:4], dtm[4:6], dtm[6:8]]
    date = "-".join(p for p in parts if p)
    if len(dtm) >= 12:
        return f"{date} {dtm[8:10]}:{dtm[10:12]}"
    return date


def _find(args: argparse.Namespace) -> int:
    with _client(args) as vault:
        entries = vault.find(
            args.patient,
            status=args.status,
            class_codes=args.class_codes,
            type_codes=args.type_codes,
            created_from=args.created_from,
            created_to=args.created_to,
        )
    entries.sort(key=lambda e: e.creation_time or "", reverse=True)
    if args.json:
        _print_json([_entry_json(e) for e in entries])
        return EXIT_OK
    table = Table(title=f"{len(entries)} document{'s' if len(entries) != 1 else ''}")
    table.add_column("uniqueId", overflow="fold")
    table.add_column("type")
    table.add_column("created (UTC)")
    table.add_column("status")
    table.add_column("title")
    table.add_column("size", justify="right")
    for e in entries:
        table.add_row(
            e.unique_id or "",
            e.type_code.code if e.type_code else "",
            _created(e.creation_time),
            e.availability_status.short,
            e.title or "",
            "" if e.size is None else str(e.size),
        )
    Console().print(table)
    return EXIT_OK


# ------------------------------------------------------------------------------------------------- fetch


def _doc_json(doc: RetrievedDocument) -> dict[str, Any]:
    return {
        "unique_id": doc.unique_id,
        "path": str(doc.path) if doc.path else None,
        "mime_type": doc.mime_type,
        "size": doc.size,
        "hash": doc.hash,
        "verified": doc.verified,
    }


def _fetch(args: argparse.Namespace) -> int:
    ids: list[str] = list(dict.fromkeys(args.unique_ids))
    raw: str = args.output
    output = Path(raw)
    if len(ids) > 1 or output.is_dir() or raw.endswith(("/", os.sep)):
        if output.exists() and not output.is_dir():
            raise _UsageError(f"{output} is a file: give a directory to fetch several documents into")
        output.mkdir(parents=True, exist_ok=True)
    elif not output.parent.is_dir():
        raise _UsageError(f"the directory {output.parent} does not exist")
    done: list[RetrievedDocument] = []
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with (
        _client(args) as vault,
        Progress(*columns, console=console, transient=True, disable=args.json or not console.is_terminal) as bar,
    ):
        for unique_id in ids:
            task = bar.add_task(unique_id[-24:], total=None)
            try:
                doc = vault.retrieve(unique_id, to=output, verify=not args.no_verify, progress=_updater(bar, task))
            finally:
                bar.remove_task(task)
            done.append(doc)
    if args.json:
        _print_json([_doc_json(d) for d in done])
        return EXIT_OK
    out = Console(highlight=False)
    for doc in done:
        check = "verified" if doc.verified else "not verified"
        out.print(f"{doc.unique_id} → {doc.path} ({doc.size} bytes, {doc.mime_type}, {check})")
    return EXIT_OK


def _updater(bar: Progress, task: TaskID) -> Callable[[int, int | None], None]:
    def update(received: int, total: int | None) -> None:
        bar.update(task, completed=received, total=total)

    return update

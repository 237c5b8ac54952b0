"""``rsb conformance list``, ``rsb conformance run`` and ``rsb conformance connector-report``.

``run`` carries out the catalogue's cases (all, or ``--only`` / ``--profile``) against a hub as ``--identity`` and
writes ``report.html``, ``junit.xml`` and ``report.json`` into ``--report-dir``. The other identities the cases
need (a hospital that registers their patients, a nurse, a patient...) come from a development PKI: ``--pki DIR``,
or the one the identity file lives in (``DIR/identities/<id>.p12`` beside ``DIR/identities.json``). The hub's signed
answers are checked against ``--ca FILE``, else that PKI's CA; over https the same CA is the TLS trust anchor and the
identity the client certificate.

Exit codes: 0 every selected case passed (every recorded message conforms); 1 one did not (failed, error or
skipped); 2 a usage error: a bad selection, an identity that cannot be read, a hub that does not answer, a hub
without connector validation.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import ssl
import sys
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..conformance.cases import implementations
from ..conformance.catalogue import Case, Catalogue, CatalogueError, load_catalogue
from ..conformance.context import Environment
from ..conformance.report import write_reports
from ..conformance.results import CaseResult, Outcome, SuiteResult
from ..conformance.runner import run_suite
from ..errors import ConnectorValidationUnavailable, RsbError
from ..security.identity import Identity, IdentityError
from ..security.pki import DESCRIPTION_FILE, PkiDescription, PkiError, load_pki
from ..security.trust import TrustStore
from . import EXIT_OK, EXIT_REFUSED, EXIT_USAGE

__all__ = ["register"]

DEFAULT_HUB = "http://127.0.0.1:8080"
_Command = Callable[[argparse.Namespace], int]
_STYLES = {
    Outcome.PASSED: "bold green",
    Outcome.FAILED: "bold red",
    Outcome.ERROR: "bold dark_orange",
    Outcome.SKIPPED: "bold bright_black",
}


class _UsageError(Exception):
    """A command line that cannot be carried out as given (exit code 2)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rsb conformance`` and its subcommands to the ``rsb`` parser's subcommands."""
    conformance = subparsers.add_parser(
        "conformance",
        help="the conformance suite: list its cases, run them against a hub, connector-validation reports",
        description="The conformance suite (a catalogue of XDS.b, MHD, security and consent cases) and the "
        "connector-validation reports of the mock hub.",
    )
    sub = conformance.add_subparsers(dest="conformance_command", required=True)

    listing = sub.add_parser(
        "list",
        help="print the catalogue",
        description="Print the catalogue's cases: id, profile, title, actor under test, spec reference.",
    )
    _selection_options(listing)
    listing.add_argument("--json", action="store_true", help="print the cases (with their steps) as JSON")
    listing.set_defaults(func=_guard(_list))

    run = sub.add_parser(
        "run",
        help="run the suite against a hub and write the reports",
        description="Run the selected cases against a hub and write report.html, junit.xml and report.json. "
        "Exit code 0 only when every selected case passed.",
    )
    _hub_option(run)
    run.add_argument(
        "--identity",
        default=os.environ.get("RSB_IDENTITY") or None,
        metavar="FILE",
        help="the suite signs as this identity (.p12 or .pem; a professional who may publish), the cases' "
        "'author' (default $RSB_IDENTITY)",
    )
    run.add_argument(
        "--password",
        metavar="PW",
        help="the identity's password (default $RSB_PASSWORD or $RSB_IDENTITY_PASSWORD; asked for on a terminal)",
    )
    run.add_argument(
        "--pki",
        metavar="DIR",
        help="development PKI (rsb hub pki init) whose identities the cases may use (default: the one the "
        "identity file lives in, if any)",
    )
    _ca_option(run)
    run.add_argument("--report-dir", required=True, metavar="DIR", help="where to write the reports (created)")
    _selection_options(run)
    run.add_argument(
        "--seeded",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the hub holds the mock hub's seeded population (rsb hub serve --seed), so the cases that need it run "
        "(default: detected, when a selected case needs it, by asking the hub about the PKI's patient1)",
    )
    run.add_argument("--json", action="store_true", help="print the summary as JSON instead of the live display")
    run.set_defaults(func=_guard(_run))

    connector = sub.add_parser(
        "connector-report",
        help="write the reports of the hub's connector validation (what an app sent it)",
        description="Fetch the hub's grading of every message it received (GET /conformance/report) and write "
        "report.html, junit.xml and report.json. Exit code 0 only when every recorded message conforms.",
    )
    _hub_option(connector)
    connector.add_argument("--report-dir", required=True, metavar="DIR", help="where to write the reports (created)")
    connector.add_argument("--since", metavar="TIME", help="only the messages received at or after TIME (ISO 8601)")
    _ca_option(connector, signed_answers=False)
    connector.add_argument("--json", action="store_true", help="print the summary as JSON")
    connector.set_defaults(func=_guard(_connector_report))


def _hub_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hub",
        default=os.environ.get("RSB_HUB_URL", DEFAULT_HUB),
        metavar="URL",
        help=f"the hub's base URL (default $RSB_HUB_URL or {DEFAULT_HUB})",
    )


def _ca_option(parser: argparse.ArgumentParser, *, signed_answers: bool = True) -> None:
    parser.add_argument(
        "--ca",
        default=os.environ.get("RSB_CA") or None,
        metavar="FILE",
        help=(
            "CA certificate(s) (PEM) the hub's signed answers must chain to; also trusted for https "
            "(default $RSB_CA, else the development PKI's CA)"
            if signed_answers
            else "CA certificate(s) (PEM) trusted for an https hub (default $RSB_CA, else the system's CAs)"
        ),
    )


def _selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="IDS",
        help="only these cases: ids or prefixes ending in * (XDS-001,SEC-*), comma-separated or repeated",
    )
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="P",
        help="only the cases of this profile: XDS.b (or xds), MHD, security, consent (repeatable)",
    )


# ------------------------------------------------------------------------------------------------- errors


def _guard(command: _Command) -> _Command:
    """Run ``command``; a usage error becomes a sentence on stderr (or JSON) and exit code 2, never a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (_UsageError, CatalogueError, IdentityError, PkiError) as exc:
            _error(args, str(exc))
            return EXIT_USAGE

    return run


def _error(args: argparse.Namespace, message: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"error": {"kind": "usage", "message": message}}, indent=2))
        return
    Console(stderr=True, highlight=False).print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)


# ------------------------------------------------------------------------------------------------- list


def _list(args: argparse.Namespace) -> int:
    cases = load_catalogue().select(args.only, args.profile)
    if args.json:
        print(json.dumps([c.to_json() for c in cases], indent=2, ensure_ascii=False))
        return EXIT_OK
    table = Table(title=f"{len(cases)} conformance case{'s' if len(cases) != 1 else ''}")
    table.add_column("id", no_wrap=True)
    table.add_column("profile", no_wrap=True)
    table.add_column("title")
    table.add_column("actor")
    table.add_column("reference")
    for case in cases:
        table.add_row(case.id, case.profile, case.title, case.actor, case.reference)
    Console(highlight=False).print(table)
    return EXIT_OK


# ------------------------------------------------------------------------------------------------- run


def _password(args: argparse.Namespace) -> str | None:
    """--password, else $RSB_PASSWORD / $RSB_IDENTITY_PASSWORD, else a prompt when stdin is a terminal."""
    if args.password is not None:
        return str(args.password)
    for variable in ("RSB_PASSWORD", "RSB_IDENTITY_PASSWORD"):
        value = os.environ.get(variable)
        if value:
            return value
    if args.identity and Path(args.identity).name.lower().endswith((".p12", ".pfx", "-p12")) and sys.stdin.isatty():
        return getpass.getpass(f"password of {args.identity}: ")
    return None


def _pki_of(args: argparse.Namespace, identity_file: Path) -> PkiDescription | None:
    """--pki, else the development PKI the identity file lives in (None when it lives in none)."""
    if args.pki:
        return load_pki(args.pki)
    folder = identity_file.resolve().parent
    if folder.name == "identities" and (folder.parent / DESCRIPTION_FILE).is_file():
        return load_pki(folder.parent)
    return None


def _identities(author: Identity, pki: PkiDescription | None, warn: Callable[[str], None]) -> dict[str, Identity]:
    """The PKI's identities by id, plus ``author``; one that cannot be loaded is left out with a warning (the
    cases needing it are then skipped, saying so)."""
    identities: dict[str, Identity] = {}
    if pki is not None:
        for record in pki.identities:
            try:
                identities[record.id] = pki.load_identity(record.id)
            except (IdentityError, OSError) as exc:
                warn(f"identity {record.id!r} of {pki.directory} left out: {exc}")
    identities["author"] = author
    return identities


def _trust(args: argparse.Namespace, pki: PkiDescription | None) -> tuple[TrustStore | None, Path | None]:
    """The trust store for the hub's signed answers and the CA file for https (both None: no CA known)."""
    if args.ca:
        ca = Path(args.ca)
        if not ca.is_file():
            raise _UsageError(f"--ca {args.ca}: no such file")
        try:
            return TrustStore.from_pem_file(ca), ca
        except (ValueError, RsbError) as exc:
            raise _UsageError(f"--ca {args.ca}: not a PEM certificate file ({exc})") from None
    if pki is not None:
        return pki.trust_store(), pki.ca_cert
    return None, None


def _tls(hub: str, ca: Path | None, identity: Identity | None) -> Any:
    """What httpx takes as ``verify`` for ``hub``: for https, a context trusting ``ca`` (the system's CAs when
    None) and presenting ``identity`` as client certificate; True for plain http."""
    if not hub.lower().startswith("https://"):
        return True
    from ..client._tls import ssl_context

    return ssl_context(str(ca) if ca is not None else True, identity)


def _check_hub(hub: str, verify: Any) -> None:
    """``GET /healthz``; a usage error saying plainly that the hub is unreachable or unhealthy."""
    try:
        answer = httpx.get(f"{hub}/healthz", verify=verify, timeout=10.0)
    except httpx.HTTPError as exc:
        if isinstance(exc.__context__, ssl.SSLError) or "SSL" in str(exc):
            raise _UsageError(
                f"the hub at {hub} is unreachable over TLS ({exc}): check --ca (the CA of the hub's certificate) "
                "and that the hub accepts --identity as client certificate"
            ) from None
        raise _UsageError(f"the hub at {hub} is unreachable ({type(exc).__name__}: {exc or 'no answer'})") from None
    if answer.status_code != 200:
        raise _UsageError(f"the hub at {hub} is not healthy: GET /healthz answered HTTP {answer.status_code}")


def _report_dir(path: str) -> Path:
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"--report-dir {path}: cannot create it ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK):
        raise _UsageError(f"--report-dir {path}: not writable")
    return folder


def _case_line(result: CaseResult) -> Text:
    line = Text.assemble(
        (f"{result.outcome.value.upper():<8}", _STYLES[result.outcome]),
        (f"{result.id:<9}", "bold"),
        result.title,
        (f"  {result.seconds:.2f} s", "dim"),
    )
    if result.outcome is not Outcome.PASSED and result.message:
        line.append(f"\n         ↳ {result.message}", style=_STYLES[result.outcome].replace("bold ", ""))
    return line


def _run(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    selected = catalogue.select(args.only, args.profile)
    if not selected:
        raise _UsageError("the selection holds no case")
    registry = implementations()
    missing = [c.id for c in selected if c.id not in registry]
    if missing:
        raise _UsageError(
            f"no implementation for {', '.join(missing)}: this installation's catalogue and cases do not match "
            "(leave them out with --only / --profile)"
        )
    if not args.identity:
        raise _UsageError("--identity FILE is required: the suite signs its requests as that identity")
    hub = str(args.hub).rstrip("/")
    identity_file = Path(args.identity)
    author = Identity.load(identity_file, _password(args))
    pki = _pki_of(args, identity_file)
    trust, ca = _trust(args, pki)
    verify = _tls(hub, ca, author)
    _check_hub(hub, verify)
    folder = _report_dir(args.report_dir)

    err = Console(stderr=True, highlight=False)
    identities = _identities(author, pki, lambda text: err.print(Text.assemble(("warning: ", "yellow"), text)))
    with tempfile.TemporaryDirectory(prefix="rsb-conformance-") as work:
        env = Environment(
            hub_url=hub,
            identities=identities,
            trust=trust,
            transport=(lambda: httpx.HTTPTransport(verify=verify)) if verify is not True else None,
            verify=str(ca) if ca is not None and verify is not True else True,
            work_dir=Path(work),
        )
        seeded = _seeded(args, selected, env)
        env.seeded = seeded[0]
        result = _run_with_display(args, catalogue, selected, env, author)
    result.notes.extend(_notes(args, selected, len(catalogue), trust is not None, pki, seeded[1]))
    paths = _write(result, folder)
    _summary(args, result, paths)
    return EXIT_OK if result.passed else EXIT_REFUSED


def _run_with_display(
    args: argparse.Namespace, catalogue: Catalogue, selected: list[Case], env: Environment, author: Identity
) -> SuiteResult:
    """Run the cases with a live bar and one line per finished case (nothing of it with --json)."""
    console = Console(highlight=False)
    quiet = bool(args.json)
    if not quiet:
        console.print(
            Text.assemble(
                ("rsb conformance run", "bold"),
                f": {len(selected)} of {len(catalogue)} cases against {env.hub_url} as {author.principal.describe()}",
            ),
            soft_wrap=True,
        )
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=quiet or not console.is_terminal) as bar:
        task = bar.add_task("starting", total=len(selected))

        def started(case: Case) -> None:
            bar.update(task, description=f"{case.id} {case.title[:50]}")

        def finished(result: CaseResult) -> None:
            bar.advance(task)
            if not quiet:
                console.print(_case_line(result), soft_wrap=True)

        return run_suite(
            catalogue,
            env,
            cases=selected,
            on_start=started,
            on_result=finished,
            caller=author.principal.describe(),
        )


def _seeded(args: argparse.Namespace, selected: list[Case], env: Environment) -> tuple[bool, str]:
    """Whether the hub holds the mock hub's seeded population, and a note saying how that was decided (none when
    no selected case needs it).

    Without ``--seeded`` / ``--no-seeded`` it is detected: the development PKI's ``patient1`` is a seeded patient,
    and on a seeded hub their consent is on record; they are asked for their own consent status (a read)."""
    needed = any("seed" in c.needs for c in selected)
    if args.seeded is not None:
        if needed and not args.seeded:
            return False, "--no-seeded: the cases needing the mock hub's seeded population were skipped."
        return bool(args.seeded), ""
    if not needed:
        return False, ""
    patient = env.identities.get("patient1")
    if patient is None or patient.ssin is None:
        return False, (
            "Whether the hub holds the mock hub's seeded population could not be told (the run has no patient1 "
            "identity): the cases needing it were skipped; --seeded runs them."
        )
    from ..client import VaultClient

    try:
        with VaultClient(
            env.hub_url, identity=patient, trust=env.trust, transport=env.make_transport(), retries=0, precheck=False
        ) as client:
            known = bool(client.consent.status(patient.ssin.digits).records)
    except (RsbError, httpx.HTTPError) as exc:
        return False, (
            f"Whether the hub holds the mock hub's seeded population could not be told ({type(exc).__name__}): the "
            "cases needing it were skipped; --seeded runs them."
        )
    if known:
        return True, "The hub holds the mock hub's seeded population (patient1's consent is on record)."
    return False, (
        "The hub does not hold the mock hub's seeded population (patient1 has no consent on record): the cases "
        "needing it were skipped."
    )


def _notes(
    args: argparse.Namespace,
    selected: list[Case],
    total: int,
    trusted: bool,
    pki: PkiDescription | None,
    seeded: str,
) -> list[str]:
    """Plain statements about how the run was set up, for the reports."""
    filters = [f"--only {','.join(args.only)}"] if args.only else []
    filters += [f"--profile {','.join(args.profile)}"] if args.profile else []
    chosen = f" ({' '.join(filters)})" if filters else ""
    notes = [f"Selected {len(selected)} of the catalogue's {total} cases{chosen}."]
    others = sorted({n for c in selected for n in c.needs if n not in ("author", "seed")})
    if pki is None and others:
        notes.append(f"No development PKI was given (--pki): the cases needing {', '.join(others)} could not use them.")
    if not trusted:
        notes.append("The hub's signed answers were not checked against a trust store (no --ca and no PKI).")
    if seeded:
        notes.append(seeded)
    return notes


def _write(result: SuiteResult, folder: Path) -> dict[str, Path]:
    try:
        return write_reports(result, folder)
    except OSError as exc:
        raise _UsageError(f"cannot write the reports into {folder} ({exc.strerror or exc})") from None


def _summary(args: argparse.Namespace, result: SuiteResult, paths: Mapping[str, Path]) -> None:
    if args.json:
        payload = {
            "kind": result.kind,
            "target": result.target,
            "passed": result.passed,
            "summary": result.summary(),
            "seconds": round(result.seconds, 3),
            "reports": {key: str(path) for key, path in paths.items()},
            "cases": [
                {
                    "id": c.id,
                    "title": c.title,
                    "profile": c.profile,
                    "outcome": c.outcome.value,
                    "message": c.message,
                    "seconds": round(c.seconds, 4),
                }
                for c in result.cases
            ],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    console = Console(highlight=False)
    what = "message" if result.kind == "connector" else "case"
    what += "" if len(result.cases) == 1 else "s"
    counts = ", ".join(f"{result.count(o)} {o.value}" for o in Outcome)
    verdict = ("PASS", "bold white on green") if result.passed else ("FAIL", "bold white on red")
    console.print()
    console.print(
        Text.assemble(
            (f" {verdict[0]} ", verdict[1]),
            f" {counts} of {len(result.cases)} {what}",
            f" received over {result.seconds:.1f} s" if result.kind == "connector" else f" in {result.seconds:.1f} s",
        )
    )
    for note in result.notes:
        console.print(Text(f"note: {note}", style="dim"), soft_wrap=True)
    console.print("reports:")
    for path in paths.values():
        console.print(Text(f"  {path}"), soft_wrap=True)


# ------------------------------------------------------------------------------------------------- connector


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _UsageError(f"--since {text!r} is not an ISO 8601 time (e.g. 2025-03-01T09:00:00Z)") from None


def _connector_report(args: argparse.Namespace) -> int:
    since = _since(args.since)
    hub = str(args.hub).rstrip("/")
    if args.ca and not Path(args.ca).is_file():
        raise _UsageError(f"--ca {args.ca}: no such file")
    verify: bool | str = str(args.ca) if args.ca else True
    _check_hub(hub, _tls(hub, Path(args.ca) if args.ca else None, None))
    folder = _report_dir(args.report_dir)
    from ..conformance import connector

    try:
        result = connector.fetch_connector_report(hub, since=since, verify=verify)
    except ConnectorValidationUnavailable as exc:
        raise _UsageError(f"the hub at {hub} has no connector validation: {exc}") from None
    except (RsbError, httpx.HTTPError) as exc:
        raise _UsageError(f"the hub at {hub} gave no connector report: {exc}") from None
    paths = _write(result, folder)
    _summary(args, result, paths)
    return EXIT_OK if result.passed else EXIT_REFUSED

"""``rsb consent``, ``rsb links``, ``rsb exclusions``, ``rsb audit`` (over HTTP) and ``rsb hub audit`` (the store).

The HTTP commands take the options of ``rsb publish`` (``--hub``, ``--identity``, ``--password``, ``--ca``,
``--json``, ``--timeout`` with the same environment defaults) and use the hub's FHIR consent API with a bearer token
obtained with the identity. ``rsb hub audit`` reads the audit trail straight from a hub's data directory (the
operator's view), SSINs masked.

Exit codes: 0 done, 1 the hub refused (not allowed, nothing to revoke, conflicting state), 2 usage error, 3 no
usable answer (network, protocol).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..errors import AccessDenied, HubError, InvalidIdentifier, RsbError, TransportError
from ..security.identity import Identity, IdentityError
from . import EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE

__all__ = ["register"]

DEFAULT_HUB = "http://127.0.0.1:8080"
_Command = Callable[[argparse.Namespace], int]
_Subparsers = argparse._SubParsersAction  # argparse exposes no public name for it


class _UsageError(Exception):
    """A command line that cannot be carried out as given (exit code 2)."""


def _guard(command: _Command) -> _Command:
    """Run ``command``; expected failures become a sentence on stderr and an exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (_UsageError, InvalidIdentifier, IdentityError, ValueError) as exc:
            _error(args, "usage", str(exc))
            return EXIT_USAGE
        except AccessDenied as exc:
            _error(args, "refused", exc.reason or str(exc), rule=exc.rule, fix=exc.fix)
            return EXIT_REFUSED
        except HubError as exc:
            _error(args, "refused", str(exc))
            return EXIT_REFUSED
        except (TransportError, RsbError, OSError) as exc:
            _error(args, "failure", str(exc))
            return EXIT_FAILURE

    return run


def _error(args: argparse.Namespace, kind: str, message: str, **extra: Any) -> None:
    import sys

    if getattr(args, "json", False):
        print(json.dumps({"error": kind, "message": message, **{k: v for k, v in extra.items() if v}}))
        return
    print(f"rsb: {kind}: {message}", file=sys.stderr)
    if extra.get("rule"):
        print(f"  rule: {extra['rule']}", file=sys.stderr)
    if extra.get("fix"):
        print(f"  fix: {extra['fix']}", file=sys.stderr)


def _client(args: argparse.Namespace) -> Any:
    from ..client import VaultClient

    if not args.identity:
        raise _UsageError("--identity FILE is required: the hub's consent API needs to know who you are")
    identity = Identity.load(args.identity, args.password)
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


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _show(args: argparse.Namespace, value: Any, lines: list[str]) -> int:
    if args.json:
        print(json.dumps(_jsonable(value), indent=2, ensure_ascii=False))
    else:
        for line in lines:
            print(line)
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ consent


def _consent(args: argparse.Namespace) -> int:
    with _client(args) as vault:
        if args.action == "grant":
            record = vault.consent.grant(args.patient, args.type, signed=_day(args.signed))
            return _show(args, record, [f"{record.type} consent registered ({record.id}, signed {record.signed})"])
        if args.action == "revoke":
            record = vault.consent.revoke(args.patient)
            return _show(args, record, [f"consent {record.id} revoked"])
        status = vault.consent.status(args.patient)
        lines = [f"active: {'yes' if status.active else 'no'}"]
        lines += [
            f"  {r.id}: {r.type} signed {r.signed}{'' if r.active else f', ended {r.ended}'}" for r in status.records
        ]
        return _show(args, {"active": status.active, "records": status.records}, lines)


def _links(args: argparse.Namespace) -> int:
    with _client(args) as vault:
        if args.action == "declare":
            link = vault.links.declare(
                args.patient,
                args.type,
                args.proof,
                _day(args.start),
                _day(args.end),
                professional_nihii=args.professional,
            )
            return _show(args, link, [f"{link.type} link declared ({link.id}, proof {link.proof})"])
        if args.action == "revoke":
            revoked = vault.links.revoke(args.patient, args.professional, type=args.link_type)
            return _show(args, revoked, [f"link {r.id} revoked" for r in revoked])
        links = vault.links.list(args.patient)
        lines = [
            f"{r.id}: NIHII {r.professional_nihii} {r.type} ({r.proof}) {r.start}..{r.end or ''} "
            f"{'active' if r.active else 'inactive'}"
            for r in links
        ] or ["no therapeutic links"]
        return _show(args, links, lines)


def _exclusions(args: argparse.Namespace) -> int:
    with _client(args) as vault:
        if args.action == "add":
            if not args.professional:
                raise _UsageError("--professional NIHII is required")
            record = vault.exclusions.add(args.patient, args.professional, start=_day(args.start), end=_day(args.end))
            return _show(args, record, [f"NIHII {record.professional_nihii} excluded ({record.id})"])
        if args.action == "remove":
            if not args.professional:
                raise _UsageError("--professional NIHII is required")
            lifted = vault.exclusions.remove(args.patient, args.professional)
            return _show(args, lifted, [f"exclusion {r.id} lifted" for r in lifted])
        found = vault.exclusions.list(args.patient)
        lines = [
            f"{r.id}: NIHII {r.professional_nihii} from {r.start} {'active' if r.active else 'inactive'}" for r in found
        ] or ["no exclusions"]
        return _show(args, found, lines)


def _audit(args: argparse.Namespace) -> int:
    with _client(args) as vault:
        events = vault.consent.trail(args.patient)
    lines = []
    for event in events:
        who = event["agent"][0]["who"]
        name = who.get("identifier", {}).get("value") or who.get("display", "")
        verdict = "allowed" if event.get("outcome") == "0" else "denied"
        glass = " BREAK-THE-GLASS" if event.get("purposeOfUse") else ""
        action = next((c["code"] for c in event.get("subtype", [])), "")
        lines.append(f"{event['recorded']} {verdict} {action} by {name}{glass}: {event.get('outcomeDesc', '')}")
    return _show(args, events, lines or ["no events"])


def _hub_audit(args: argparse.Namespace) -> int:
    from ..hub.audit import AuditTrail
    from ..hub.store import SqliteStore

    directory = Path(args.data_dir)
    if not directory.is_dir():
        raise _UsageError(f"--data-dir {directory}: no such directory (a hub's data directory)")
    store = SqliteStore.open(directory)
    try:
        events = AuditTrail(store).query(patient=args.patient, limit=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps([e.to_dict(masked=True) for e in events], indent=2, ensure_ascii=False))
    else:
        for event in events:
            print(str(event))
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ parser


def register(subparsers: _Subparsers[argparse.ArgumentParser], hub: _Subparsers[argparse.ArgumentParser]) -> None:
    """Add ``consent``, ``links``, ``exclusions`` and ``audit`` to ``rsb``, and ``audit`` to ``rsb hub``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--hub", default=os.environ.get("RSB_HUB_URL", DEFAULT_HUB), metavar="URL", help="hub URL")
    common.add_argument(
        "--identity", default=os.environ.get("RSB_IDENTITY") or None, metavar="FILE", help="your identity (.p12/.pem)"
    )
    common.add_argument(
        "--password", default=os.environ.get("RSB_IDENTITY_PASSWORD") or None, metavar="PW", help="its password"
    )
    common.add_argument("--ca", default=os.environ.get("RSB_CA") or None, metavar="FILE", help="the hub's CA (PEM)")
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    common.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="network timeout (default 30)")
    common.add_argument("--patient", required=True, metavar="SSIN", help="the patient's SSIN")

    consent = subparsers.add_parser(
        "consent", parents=[common], help="the patient's sharing consent", description="Grant, revoke or show it."
    )
    consent.add_argument("action", choices=("grant", "revoke", "status"))
    consent.add_argument("--type", default="retrospective", choices=("local", "prospective", "retrospective"))
    consent.add_argument("--signed", metavar="YYYY-MM-DD", help="the day it was signed (default today)")
    consent.set_defaults(func=_guard(_consent))

    links = subparsers.add_parser(
        "links", parents=[common], help="therapeutic links", description="Declare, revoke or list therapeutic links."
    )
    links.add_argument("action", choices=("declare", "revoke", "list"))
    links.add_argument("--type", default="gpconsultation", help="CD-THERAPEUTICLINKTYPE (default gpconsultation)")
    links.add_argument("--link-type", help="revoke only links of this type")
    links.add_argument("--proof", default="eidreading", help="proof of the patient's presence (default eidreading)")
    links.add_argument("--start", metavar="YYYY-MM-DD", help="first day (default today)")
    links.add_argument("--end", metavar="YYYY-MM-DD", help="last day (default: the profession's validity)")
    links.add_argument("--professional", metavar="NIHII", help="the professional (default: your identity's NIHII)")
    links.set_defaults(func=_guard(_links))

    exclusions = subparsers.add_parser(
        "exclusions", parents=[common], help="professionals the patient excludes", description="Add, remove or list."
    )
    exclusions.add_argument("action", choices=("add", "remove", "list"))
    exclusions.add_argument("--professional", metavar="NIHII", help="the excluded professional")
    exclusions.add_argument("--start", metavar="YYYY-MM-DD", help="first day (default today)")
    exclusions.add_argument("--end", metavar="YYYY-MM-DD", help="last day (default: until lifted)")
    exclusions.set_defaults(func=_guard(_exclusions))

    audit = subparsers.add_parser(
        "audit",
        parents=[common],
        help="a patient's own audit trail, over HTTP",
        description="Who accessed the patient's documents, allowed or not (for the patient or a minor's "
        "representative).",
    )
    audit.set_defaults(func=_guard(_audit))

    hub_audit = hub.add_parser(
        "audit",
        help="the hub's audit trail, read from its data directory (masked)",
        description="List the audit trail of a hub's store, oldest first, SSINs masked.",
    )
    hub_audit.add_argument("--data-dir", default=".rsb-data", help="the hub's data directory (default .rsb-data)")
    hub_audit.add_argument("--patient", metavar="SSIN", help="only events about this patient")
    hub_audit.add_argument("--limit", type=int, metavar="N", help="only the N most recent events")
    hub_audit.add_argument("--json", action="store_true", help="print JSON")
    hub_audit.set_defaults(func=_guard(_hub_audit))

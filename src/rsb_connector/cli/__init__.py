"""The ``rsb`` command.

Exit codes: 0 success; 1 the hub or local validation refused the request (a verdict about the data);
2 usage error; 3 failure to get an answer (network, protocol, integrity).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import __version__

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_FAILURE = 3

Command = Callable[[argparse.Namespace], int]


_WARNING = "\033[1;31m"
_RESET = "\033[0m"


def _megabytes(text: str) -> int:
    """An ``--max-...-mb`` value in bytes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of megabytes") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("the limit must be a positive number of megabytes")
    return int(value * 1024 * 1024)


def _hub_serve(args: argparse.Namespace) -> int:
    from ..hub.app import HubConfig
    from ..hub.server import default_pki, serve
    from ..security.pki import PkiError, load_pki
    from ..xds.schema import SchemaUnavailable, load_schema

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    schemas = Path(args.schemas).expanduser() if args.schemas else None
    if schemas is not None and not args.connector_validation:
        print("error: --schemas is used by connector validation: drop --no-connector-validation", file=sys.stderr)
        return EXIT_USAGE
    if schemas is not None:
        try:
            load_schema(schemas)  # refuse a wrong folder now, before anything is created or served (cached for the hub)
        except SchemaUnavailable as exc:
            print(f"error: --schemas: {exc}", file=sys.stderr)
            return EXIT_USAGE
    data_dir = Path(args.data_dir)
    try:
        if args.pki:
            pki = load_pki(args.pki)
            print(f"development PKI: {pki.directory} (trust store {pki.ca_cert.name}, hub identity {pki.hub.file})")
        else:
            pki, created = default_pki(data_dir)
            what = "created a development PKI" if created else "development PKI"
            print(f"{what} in {pki.directory}: sign with identities/<id>.p12 (password {pki.password!r}), "
                  f"trust {pki.ca_cert}; see {pki.directory / 'identities.json'}")  # fmt: skip
    except PkiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.allow_unsigned:
        print(
            f"{_WARNING}WARNING: --allow-unsigned: this hub accepts UNSIGNED requests as an anonymous caller. For a "
            f"first local try only — never expose it; signed requests are still verified.{_RESET}",
            file=sys.stderr,
        )
    if args.connector_validation:
        where = schemas.resolve() if schemas is not None else "not run"
        print(
            f"connector validation: on (schema check: {where}): every message is graded; "
            "see GET /conformance/report or rsb conformance connector-report"
        )
    else:
        print("connector validation: off")
    config = HubConfig()
    if args.max_message_mb is not None:
        config.max_message_bytes = args.max_message_mb
    if args.max_attachment_mb is not None:
        config.max_attachment_bytes = args.max_attachment_mb
    try:
        serve(
            data_dir,
            host=args.host,
            port=args.port,
            seed=args.seed,
            max_results=args.max_results,
            pki=pki,
            allow_unsigned=args.allow_unsigned,
            tls=args.tls,
            config=config,
            connector_validation=args.connector_validation,
            schemas=schemas,
        )
    except (ValueError, SchemaUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _pki_init(args: argparse.Namespace) -> int:
    from ..security.pki import PkiError, init_pki

    try:
        pki = init_pki(args.directory, password=args.password, force=args.force)
    except PkiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"development PKI written to {pki.directory} (password {pki.password!r}; for development only)")
    print(f"  trust anchor  {pki.ca_cert}")
    print(f"  hub identity  {pki.path(pki.hub.file)}")
    for record in pki.identities:
        number = record.nihii or record.ssin or record.cbe or ""
        print(f"  {record.id:<16}{record.kind:<14}{record.name:<24}{number:<13}{pki.path(record.file)}")
    print(f"described in {pki.directory / 'identities.json'}; start a hub on it: rsb hub serve --pki {pki.directory}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rsb`` (also used to render the CLI reference)."""
    parser = argparse.ArgumentParser(
        prog="rsb", description="Brussels Health Network connector: mock hub, SDK commands, conformance."
    )
    parser.add_argument("--version", action="version", version=f"rsb-connector {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    hub = sub.add_parser("hub", help="run and manage the mock hub")
    hub_sub = hub.add_subparsers(dest="hub_command", required=True)
    serve = hub_sub.add_parser("serve", help="serve the mock hub (XDS.b registry + repository, OAuth2 tokens)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    serve.add_argument("--data-dir", default=".rsb-data", help="where the store lives (default .rsb-data)")
    serve.add_argument(
        "--pki",
        metavar="DIR",
        help="development PKI (rsb hub pki init): its CA is the trust store, hub.p12 signs answers and tokens "
        "(default DATA_DIR/pki, created when missing)",
    )
    serve.add_argument(
        "--seed", action="store_true", help="load the synthetic population (and the PKI's patients); writes seed.json"
    )
    serve.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="accept unsigned requests as an anonymous caller (a first local try only; signed ones are still verified)",
    )
    serve.add_argument("--tls", action="store_true", help="serve HTTPS requiring a client certificate from the PKI")
    serve.add_argument(
        "--max-message-mb", type=_megabytes, metavar="MB", help="largest SOAP message or MTOM root part (default 10)"
    )
    serve.add_argument(
        "--max-attachment-mb", type=_megabytes, metavar="MB", help="largest single MTOM attachment (default 2048)"
    )
    serve.add_argument(
        "--max-results", type=int, default=1000, help="stored query result cap → XDSTooManyResults (default 1000)"
    )
    serve.add_argument(
        "--connector-validation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="grade and record every message received (schema, metadata, security, MHD profile) for "
        "GET /conformance/report and rsb conformance connector-report (default: on)",
    )
    serve.add_argument(
        "--schemas",
        metavar="DIR",
        help="the official IHE XDS schemas (the ihe-xds-schemas folder, holding iti/schema) for the connector "
        "validation's schema check; without it the check is not run",
    )
    serve.set_defaults(func=_hub_serve)

    pki = hub_sub.add_parser("pki", help="development PKI: a CA, the hub's certificate, sample identities")
    pki_sub = pki.add_subparsers(dest="pki_command", required=True)
    init = pki_sub.add_parser(
        "init",
        help="create a development CA, the hub's certificate and sample identities (PKCS#12 + PEM)",
        description="Create a development PKI in DIR, described in DIR/identities.json. For development only.",
    )
    init.add_argument("directory", metavar="DIR", help="where to write (created if needed)")
    init.add_argument("--password", default="rsb-dev", help="protects every key file (default rsb-dev)")
    init.add_argument("--force", action="store_true", help="replace a PKI already in DIR")
    init.set_defaults(func=_pki_init)

    from .client_commands import register as register_client_commands

    register_client_commands(sub)
    from .consent_commands import register as register_consent_commands

    register_consent_commands(sub, hub_sub)
    from .conformance_commands import register as register_conformance_commands

    register_conformance_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rsb`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

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


def _hub_serve(args: argparse.Namespace) -> int:
    from ..hub.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(Path(args.data_dir), host=args.host, port=args.port, seed=args.seed, max_results=args.max_results)
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
    serve = hub_sub.add_parser("serve", help="serve the mock hub (XDS.b registry + repository)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    serve.add_argument("--data-dir", default=".rsb-data", help="where the store lives (default .rsb-data)")
    serve.add_argument("--seed", action="store_true", help="load the synthetic population; writes seed.json")
    serve.add_argument(
        "--max-results", type=int, default=1000, help="stored query result cap → XDSTooManyResults (default 1000)"
    )
    serve.set_defaults(func=_hub_serve)
    from .client_commands import register as register_client_commands

    register_client_commands(sub)
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

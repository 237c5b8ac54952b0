"""Load benchmark: many concurrent AsyncVaultClient sessions against a real mock hub process.

Starts ``rsb hub serve --seed --pki DIR`` on a free port with a temporary data dir and development PKI (or uses
``--hub`` with ``--identity`` / ``--password`` / ``--ca``), waits for ``/healthz``, then runs ``--sessions`` concurrent
sessions for ``--duration`` seconds. Each session has its own :class:`~rsb_connector.client.AsyncVaultClient`, signing
as the PKI's GP and checking the hub's signed answers, and loops over a mix of operations on seeded patients:

- publish (ITI-41, MTOM): a document of ``--size`` bytes;
- find (ITI-18 FindDocuments): the patient's documents created in the last few seconds;
- retrieve (ITI-43, MTOM, hash and size verified): one of the documents this session published.

Prints throughput (operations per second), p50 / p99 latency per operation and the error count (the goal is zero);
exits 1 when any operation failed.

Usage::

    python bench/bench_load.py [--duration 20] [--sessions 32] [--size 20000] [--hub URL --identity P12 --ca PEM]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import NO_RECORDING
from rsb_connector.client import AsyncVaultClient
from rsb_connector.errors import RsbError
from rsb_connector.hub.population import SEED_PATIENTS
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import init_pki
from rsb_connector.testing import LiveHub

OPERATIONS = ("publish", "find", "retrieve")
WEIGHTS = (3, 4, 3)


class Stats:
    """Latencies and errors per operation."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.samples: list[str] = []

    def error(self, operation: str, exc: BaseException) -> None:
        self.errors[operation] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{operation}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


def gp_patients(seed_json: Path) -> list[str]:
    """The seeded patients the GP may publish for and read: a valid therapeutic link (and so a consent)."""
    seed = json.loads(seed_json.read_text())["consent"]
    consenting = {c["patient"] for c in seed["consents"] if c["revoked"] is None}
    keys = {
        link["patient"]
        for link in seed["links"]
        if link["professional"] == "gp" and link["valid_today"] and link["patient"] in consenting
    }
    return [p.ssin for p in SEED_PATIENTS if p.key in keys]


async def session(
    index: int, url: str, deadline: float, size: int, stats: Stats, security: dict[str, Any], patients: list[str]
) -> None:
    rng = random.Random(index)
    published: list[str] = []
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    async with AsyncVaultClient(url, timeout=30.0, limits=limits, **security) as vault:
        while time.monotonic() < deadline:
            operation = rng.choices(OPERATIONS, WEIGHTS)[0]
            if operation == "retrieve" and not published:
                operation = "publish"
            patient = rng.choice(patients)
            started = time.perf_counter()
            try:
                if operation == "publish":
                    content = os.urandom(size)
                    receipt = await vault.publish(
                        content, patient=patient, document_type="labresult", mime_type="application/octet-stream"
                    )
                    published.append(receipt.document.unique_id)
                elif operation == "find":
                    since = datetime.now(UTC) - timedelta(seconds=3)
                    await vault.find(patient, created_from=since)
                else:
                    await vault.retrieve(rng.choice(published))
            except (RsbError, OSError) as exc:
                stats.error(operation, exc)
                continue
            stats.latencies[operation].append((time.perf_counter() - started) * 1000)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def drive(
    url: str, sessions: int, duration: float, size: int, security: dict[str, Any], patients: list[str]
) -> tuple[Stats, float]:
    stats = Stats()
    started = time.monotonic()
    deadline = started + duration
    await asyncio.gather(*(session(i, url, deadline, size, stats, security, patients) for i in range(sessions)))
    return stats, time.monotonic() - started


def report(stats: Stats, elapsed: float, sessions: int, size: int) -> int:
    total = sum(len(v) for v in stats.latencies.values())
    errors = sum(stats.errors.values())
    print(f"\n{sessions} sessions, {elapsed:.1f} s, documents of {size} bytes")
    print(f"{'operation':<10} {'count':>7} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for operation in OPERATIONS:
        values = stats.latencies.get(operation, [])
        print(
            f"{operation:<10} {len(values):>7} {len(values) / elapsed:>8.1f} "
            f"{percentile(values, 0.5):>8.1f} {percentile(values, 0.99):>8.1f} {stats.errors[operation]:>7}"
        )
    every = [v for values in stats.latencies.values() for v in values]
    median = statistics.median(every) if every else float("nan")
    print(f"{'all':<10} {total:>7} {total / elapsed:>8.1f} {median:>8.1f} {percentile(every, 0.99):>8.1f} {errors:>7}")
    for sample in stats.samples:
        print(f"  error sample: {sample}")
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load (default 20)")
    parser.add_argument("--sessions", type=int, default=32, help="concurrent client sessions (default 32)")
    parser.add_argument("--size", type=int, default=20_000, help="bytes per published document (default 20000)")
    parser.add_argument("--hub", help="use this running hub instead of starting one")
    parser.add_argument("--identity", help="with --hub: sign as this identity (.p12 or .pem)")
    parser.add_argument("--password", help="with --hub: the identity's password")
    parser.add_argument("--ca", help="with --hub: the CA the hub's signed answers chain to")
    parser.add_argument("--seed-json", help="with --hub: its seed.json, to pick the patients the GP may publish for")
    args = parser.parse_args(argv)
    if args.hub:
        security: dict[str, Any] = {
            "identity": Identity.load(args.identity, args.password) if args.identity else None,
            "trust": args.ca,
        }
        patients = gp_patients(Path(args.seed_json)) if args.seed_json else [p.ssin for p in SEED_PATIENTS]
        stats, elapsed = asyncio.run(drive(args.hub, args.sessions, args.duration, args.size, security, patients))
        return report(stats, elapsed, args.sessions, args.size)
    with tempfile.TemporaryDirectory(prefix="rsb-bench-") as tmp:
        pki = init_pki(Path(tmp) / "pki")
        with LiveHub(Path(tmp) / "data", seed=True, pki=pki, extra_args=NO_RECORDING) as hub:
            print(f"hub at {hub.url} (log: {hub.log_path}), clients sign as the GP")
            security = {"identity": pki.load_identity("gp"), "trust": pki.trust_store()}
            patients = gp_patients(hub.data_dir / "seed.json")
            print(f"publishing for the {len(patients)} seeded patients the GP has a therapeutic link with")
            stats, elapsed = asyncio.run(drive(hub.url, args.sessions, args.duration, args.size, security, patients))
    return report(stats, elapsed, args.sessions, args.size)


if __name__ == "__main__":
    sys.exit(main())

"""Load benchmark: many concurrent AsyncVaultClient sessions against a real mock hub process.

Starts ``python -m rsb_connector.cli hub serve --seed`` on a free port with a temporary data dir (or uses ``--hub``),
waits for ``/healthz``, then runs ``--sessions`` concurrent sessions for ``--duration`` seconds. Each session has its
own :class:`~rsb_connector.client.AsyncVaultClient` and loops over a mix of operations on seeded patients:

- publish (ITI-41, MTOM): a document of ``--size`` bytes;
- find (ITI-18 FindDocuments): the patient's documents created in the last few seconds;
- retrieve (ITI-43, MTOM, hash and size verified): one of the documents this session published.

Prints throughput (operations per second), p50 / p99 latency per operation and the error count (the goal is zero);
exits 1 when any operation failed.

Usage::

    python bench/bench_load.py [--duration 20] [--sessions 32] [--size 20000] [--hub URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from rsb_connector.client import AsyncVaultClient
from rsb_connector.errors import RsbError
from rsb_connector.hub.population import SEED_PATIENTS

OPERATIONS = ("publish", "find", "retrieve")
WEIGHTS = (3, 4, 3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def hub_process(log_path: Path) -> Iterator[str]:
    """Run a seeded hub in a child process; yield its URL; stop it (SIGTERM, then kill) on exit."""
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="rsb-bench-"))
    command = [
        sys.executable, "-m", "rsb_connector.cli", "hub", "serve",
        "--seed", "--data-dir", str(data_dir), "--port", str(port),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the hub exited with code {process.returncode}; see {log_path}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the hub did not become healthy in 30 s; see {log_path}")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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


async def session(index: int, url: str, deadline: float, size: int, stats: Stats) -> None:
    rng = random.Random(index)
    patients = [p.ssin for p in SEED_PATIENTS]
    published: list[str] = []
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    async with AsyncVaultClient(url, timeout=30.0, limits=limits) as vault:
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


async def drive(url: str, sessions: int, duration: float, size: int) -> tuple[Stats, float]:
    stats = Stats()
    started = time.monotonic()
    deadline = started + duration
    await asyncio.gather(*(session(i, url, deadline, size, stats) for i in range(sessions)))
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
    args = parser.parse_args(argv)
    if args.hub:
        stats, elapsed = asyncio.run(drive(args.hub, args.sessions, args.duration, args.size))
        return report(stats, elapsed, args.sessions, args.size)
    log_path = Path(tempfile.gettempdir()) / "rsb-bench-hub.log"
    with hub_process(log_path) as url:
        print(f"hub at {url} (log: {log_path})")
        stats, elapsed = asyncio.run(drive(url, args.sessions, args.duration, args.size))
    return report(stats, elapsed, args.sessions, args.size)


if __name__ == "__main__":
    sys.exit(main())

"""MHD (FHIR R4) throughput of the mock hub: ITI-65 ingest rate, and ITI-67 latency with 100k documents.

Both run against a hub *process* over loopback: this script started again with ``--serve`` (a SQLite store with its
default durability, ``synchronous=FULL``, the registry, and the MHD routes of :func:`rsb_connector.hub.fhir.fhir_routes`
under uvicorn). The clients run in this process.

1. **ITI-65 ingest**: ``--bundles`` Provide Document Bundles (one DocumentReference and a 10 KiB Binary each, for
   the seeded patients), built and serialized beforehand, posted by ``--concurrency`` concurrent httpx clients
   (asyncio, keep-alive) after a warm-up. Prints bundles/s and checks every answer is a 200 transaction-response;
   then the CPU each side spent per bundle, and the same work without HTTP, one bundle at a time (the binding's
   parse and check + ``Registry.provide_and_register``): the ceiling of one hub process whatever its HTTP layer.
   Goal: ≥ 300 bundles/s with 2 cores for hub and clients together.
2. **ITI-67 at 100k**: a store bulk-filled with ``--documents`` entries through the store's write path (as
   ``bench_find.py`` does: 10 entries per patient, 1000 submissions per transaction), then ``GET /fhir/DocumentReference
   ?patient.identifier=<ssin system>|<ssin>&status=current`` for random patients, one request at a time. Prints p50 /
   p99 in ms, measured by the client (HTTP included), and the mean number of DocumentReferences per answer.
   Goal: p50 ≤ 15 ms.

Run: ``python bench/bench_mhd.py [--bundles 3000] [--concurrency 16] [--documents 100000] [--searches 1000]``.
Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

try:  # run as ``python -m bench.bench_mhd`` or as ``python bench/bench_mhd.py``
    from bench.bench_find import fill
except ImportError:  # pragma: no cover - script mode: bench/ is sys.path[0]
    from bench_find import fill  # type: ignore[no-redef]

FHIR_JSON = "application/fhir+json"
SSIN_SYSTEM = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"
BINARY_SIZE = 10 * 1024
INGEST_GOAL = 300.0
SEARCH_GOAL_MS = 15.0


# ================================================================================================ the hub process


def serve(data_dir: Path, port: int, *, seed: bool) -> None:
    """The hub process: store + registry + MHD routes under uvicorn, one process (as ``rsb hub serve`` runs)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from rsb_connector.hub.fhir import fhir_routes
    from rsb_connector.hub.population import seed as seed_population
    from rsb_connector.hub.registry import Registry
    from rsb_connector.hub.store import SqliteStore

    store = SqliteStore.open(data_dir)
    if seed:
        seed_population(store)
    registry = Registry(store)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/healthz", healthz), *fhir_routes(registry)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far, all threads (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class HubProcess:
    """A running hub process: its URL and pid."""

    url: str
    pid: int

    def cpu(self) -> float:
        """CPU seconds the hub used so far."""
        return cpu_seconds(self.pid)


@contextlib.contextmanager
def hub_process(data_dir: Path, *, seed: bool) -> Iterator[HubProcess]:
    """Start ``--serve`` as a child process, wait for ``/healthz``, yield it, terminate it."""
    port = free_port()
    args = [sys.executable, str(Path(__file__).resolve()), "--serve", str(data_dir), "--port", str(port)]
    if seed:
        args.append("--seed-population")
    log_path = data_dir.parent / f"{data_dir.name}.log"
    with log_path.open("wb") as log:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent), *sys.path])}
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the hub process exited ({process.returncode}):\n{log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"the hub process did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield HubProcess(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ================================================================================================ ITI-65


def bundles(count: int, rng: random.Random) -> list[bytes]:
    """``count`` serialized ITI-65 bundles: one text document of BINARY_SIZE bytes each, seeded patients."""
    from rsb_connector.hub.population import SEED_PATIENTS
    from rsb_connector.metadata.builder import new_document, new_submission
    from rsb_connector.mhd import build_provide_bundle
    from rsb_connector.mhd.mapping import as_json

    out: list[bytes] = []
    for i in range(count):
        content = (f"document {i} ".encode() * (BINARY_SIZE // 8 + 1))[:BINARY_SIZE]
        patient = rng.choice(SEED_PATIENTS).ssin
        entry = new_document(content, patient=patient, document_type="contactreport", mime_type="text/plain")
        bundle = build_provide_bundle(new_submission([entry]), {entry.entry_uuid: content})
        out.append(json.dumps(as_json(bundle), separators=(",", ":")).encode())
    return out


async def post_all(url: str, bodies: Sequence[bytes], concurrency: int) -> tuple[float, list[str]]:
    """Post every body with ``concurrency`` workers; (elapsed seconds, errors)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    errors: list[str] = []
    pending = iter(bodies)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def worker() -> None:
            for body in pending:
                response = await client.post("/fhir", content=body, headers={"content-type": FHIR_JSON})
                if response.status_code != 200 or b"transaction-response" not in response.content:
                    errors.append(f"{response.status_code} {response.text[:300]}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, errors


def in_process_ms(base: Path, bodies: Sequence[bytes]) -> float:
    """Mean ms per bundle of the hub's work without HTTP, one at a time: the binding's parse and check
    (:func:`~rsb_connector.mhd.parse_provide_bundle`), then ``Registry.provide_and_register`` (durable commit)."""
    from rsb_connector.hub.fhir import resolve_patient_reference
    from rsb_connector.hub.population import seed as seed_population
    from rsb_connector.hub.registry import IncomingDocument, Registry
    from rsb_connector.hub.store import SqliteStore
    from rsb_connector.mhd import parse_provide_bundle

    store = SqliteStore.open(base / "in-process")
    try:
        seed_population(store)
        registry = Registry(store)
        start = time.perf_counter()
        for body in bodies:
            parsed = parse_provide_bundle(body, resolve_patient=resolve_patient_reference, validate=False)
            documents = {k: IncomingDocument.from_bytes(v) for k, v in parsed.documents.items()}
            if not (parsed.ok and registry.provide_and_register(parsed.submission, documents).ok):
                raise SystemExit("an in-process ITI-65 failed")
        return (time.perf_counter() - start) / len(bodies) * 1000
    finally:
        store.close()


def bench_ingest(base: Path, count: int, concurrency: int, rng: random.Random) -> float:
    """ITI-65 bundles/s against a fresh hub process."""
    warmup = bundles(min(200, max(count // 10, 20)), rng)
    bodies = bundles(count, rng)
    print(f"ITI-65: {count} bundles of {len(bodies[0]):,} bytes (10 KiB Binary), {concurrency} concurrent clients")
    with hub_process(base / "ingest", seed=True) as hub:
        asyncio.run(post_all(hub.url, warmup, concurrency))
        hub_cpu, client_cpu = hub.cpu(), time.process_time()
        elapsed, errors = asyncio.run(post_all(hub.url, bodies, concurrency))
        hub_cpu, client_cpu = hub.cpu() - hub_cpu, time.process_time() - client_cpu
    if errors:
        raise SystemExit(f"{len(errors)} ITI-65 bundles failed, e.g. {errors[0]}")
    rate = count / elapsed
    verdict = "ok" if rate >= INGEST_GOAL else "MISSED"
    print(f"  {rate:8.1f} bundles/s ({elapsed:.2f} s)   goal ≥ {INGEST_GOAL:.0f}   {verdict}")
    print(
        f"  CPU per bundle: hub {hub_cpu / count * 1000:.2f} ms, clients {client_cpu / count * 1000:.2f} ms "
        f"(hub at {hub_cpu / elapsed * 100:.0f} % of a core)"
    )
    ceiling = in_process_ms(base, bundles(300, rng))
    print(
        f"  without HTTP, one at a time: {ceiling:.2f} ms per bundle (parse + register): {1000 / ceiling:.0f} bundles/s"
    )
    return rate


# ================================================================================================ ITI-67


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p99)."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def bench_search(base: Path, documents: int, searches: int, rng: random.Random) -> float:
    """ITI-67 p50 (ms) against a hub process whose store holds ``documents`` entries."""
    from rsb_connector.hub.store import SqliteStore
    from rsb_connector.identifiers import parse_cx

    data_dir = base / "search"
    store = SqliteStore.open(data_dir)
    try:
        start = time.perf_counter()
        patients = [parse_cx(cx).id for cx in fill(store, documents, rng)]
        print(
            f"ITI-67: filled {documents:,} entries ({len(patients):,} patients) in {time.perf_counter() - start:.1f} s"
        )
    finally:
        store.close()
    samples: list[float] = []
    sizes: list[int] = []
    with hub_process(data_dir, seed=False) as hub, httpx.Client(base_url=hub.url, timeout=30) as client:

        def one(ssin: str) -> float:
            params = {"patient.identifier": f"{SSIN_SYSTEM}|{ssin}", "status": "current"}
            t0 = time.perf_counter()
            response = client.get("/fhir/DocumentReference", params=params)
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code != 200:
                raise SystemExit(f"ITI-67 failed: {response.status_code} {response.text[:300]}")
            sizes.append(int(response.json()["total"]))
            return elapsed

        for ssin in patients[:50]:  # warm the connection, the page cache and the code paths
            one(ssin)
        sizes.clear()
        samples = [one(rng.choice(patients)) for _ in range(searches)]
    p50, p99 = percentiles(samples)
    verdict = "ok" if p50 <= SEARCH_GOAL_MS else "MISSED"
    print(
        f"  GET DocumentReference?patient.identifier&status, {searches} searches: p50 {p50:.2f} ms   p99 {p99:.2f} ms"
        f"   {statistics.mean(sizes):.1f} DocumentReferences/answer   goal p50 ≤ {SEARCH_GOAL_MS:.0f}   {verdict}"
    )
    return p50


# ================================================================================================ main


def main(argv: Sequence[str] | None = None) -> int:
    """Run both measurements (or serve, with ``--serve``); exit status 1 when a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bundles", type=int, default=3000, help="ITI-65 bundles to post (0: skip)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent ITI-65 clients")
    parser.add_argument("--documents", type=int, default=100_000, help="entries in the ITI-67 store (0: skip)")
    parser.add_argument("--searches", type=int, default=1000, help="ITI-67 searches to time")
    parser.add_argument("--seed", type=int, default=20250115)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed-population", dest="seed_population", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.port, seed=args.seed_population)
        return 0
    print(f"{os.cpu_count()} CPUs")
    rng = random.Random(args.seed)
    ok = True
    with tempfile.TemporaryDirectory(prefix="rsb-bench-mhd-") as tmp:
        if args.bundles:
            ok &= bench_ingest(Path(tmp), args.bundles, args.concurrency, rng) >= INGEST_GOAL
        if args.documents:
            ok &= bench_search(Path(tmp), args.documents, args.searches, rng) <= SEARCH_GOAL_MS
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

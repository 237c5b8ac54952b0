"""Signed publish: what WS-Security costs on a round trip, and publishes per second against a hub process.

1. **In-process round trip.** An :class:`~rsb_connector.AsyncVaultClient` publishes a 10 KB document (ITI-41,
   MTOM) to a hub in the same process over ``httpx.ASGITransport``; the client signs the request and verifies the
   hub's signed answer, the hub verifies the request and signs its answer. Compared with:

   - the **floor** measured in the same run with the same libraries: two RSA-2048 PKCS#1 v1.5 SHA-256 signatures,
     two verifications, and the exclusive C14N of the two messages (the request and answer envelopes as sent) —
     what any WS-Security implementation must do at the least;
   - the same round trip **unsigned** (an ``allow_unsigned`` hub without a PKI, a client without identity).

   The goal is a signing overhead (signed − unsigned) of at most 2× the floor: the rest of the round trip (XDS
   metadata, SQLite commit with fsync, MTOM) is the hub's work, not security's.

2. **Separate processes.** A :class:`~rsb_connector.testing.LiveHub` (``rsb hub serve --pki``) and signed
   :class:`~rsb_connector.VaultClient` publishes in a loop: publishes per second, one client, then 8 concurrent
   async clients.

3. **Profile.** cProfile of the in-process signed round trip (the hub's thread-pool work run inline so that one
   profile sees everything): the top functions by own time, and the time per stage.

Run: ``python bench/bench_signed.py [--rounds 300] [--seconds 8]`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from bench import NO_RECORDING
from rsb_connector.client import AsyncVaultClient
from rsb_connector.hub import app as hub_app
from rsb_connector.hub.population import SEED_PATIENTS
from rsb_connector.hub.server import build_hub
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import PkiDescription, init_pki
from rsb_connector.security.xml import parse_xml
from rsb_connector.testing import LiveHub
from rsb_connector.xds.mtom import MtomParser

T = TypeVar("T")
DOC_SIZE = 10 * 1024
PATIENT = SEED_PATIENTS[0].ssin


# ------------------------------------------------------------------------------------------------ in-process


class Recording(httpx.ASGITransport):
    """Keeps the last ITI-41 request and answer bodies (to measure the floor on the real messages)."""

    last_request: bytes = b""
    last_answer: bytes = b""
    last_answer_type: str = ""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await super().handle_async_request(request)
        content = await response.aread()
        if b"ProvideAndRegisterDocumentSetRequest" in body:
            self.last_request = body
            self.last_answer = content
            self.last_answer_type = response.headers.get("content-type", "")
        return httpx.Response(response.status_code, headers=response.headers, content=content)


async def _publish_loop(vault: AsyncVaultClient, rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        content = os.urandom(DOC_SIZE)
        started = time.perf_counter()
        await vault.publish(content, patient=PATIENT, document_type="labresult", mime_type="application/octet-stream")
        timings.append(time.perf_counter() - started)
    return timings


def _root_part(body: bytes, content_type: str, spool: Path) -> bytes:
    parser = MtomParser(content_type, spool_dir=spool)
    parser.feed(body)
    message = parser.close()
    try:
        return message.root
    finally:
        message.discard()


def _mtom_type(body: bytes) -> str:
    boundary = body.split(b"\r\n", 1)[0][2:].decode()
    return f'multipart/related; type="application/xop+xml"; boundary="{boundary}"'


class Floor:
    """2 RSA-2048 signatures + 2 verifications + exclusive C14N of the request and answer envelopes as sent."""

    def __init__(self, client: Identity, hub: Identity, request: bytes, answer: bytes) -> None:
        self.client, self.hub = client, hub
        self.request, self.answer = parse_xml(request), parse_xml(answer)
        self.request_size, self.answer_size = len(request), len(answer)
        self.signed_info = b"<ds:SignedInfo>" + b"x" * 1200 + b"</ds:SignedInfo>"  # the size of a real SignedInfo
        self.client_signature = client.private_key.sign(self.signed_info, padding.PKCS1v15(), hashes.SHA256())
        self.hub_signature = hub.private_key.sign(self.signed_info, padding.PKCS1v15(), hashes.SHA256())

    def __call__(self) -> float:
        started = time.perf_counter()
        pkcs1, sha256, data = padding.PKCS1v15(), hashes.SHA256(), self.signed_info
        etree.tostring(self.request, method="c14n", exclusive=True)  # client: the request it signs
        self.client.private_key.sign(data, pkcs1, sha256)
        self.client.public_key.verify(self.client_signature, data, pkcs1, sha256)  # hub: verifies the request
        etree.tostring(self.answer, method="c14n", exclusive=True)  # hub: the answer it signs
        self.hub.private_key.sign(data, pkcs1, sha256)
        self.hub.public_key.verify(self.hub_signature, data, pkcs1, sha256)  # client: verifies the answer
        return time.perf_counter() - started


def in_process(tmp: Path, pki: PkiDescription, identity: Identity, rounds: int) -> tuple[list[float], ...]:
    """Signed round trip, unsigned round trip and floor, interleaved so that machine noise hits all three alike."""
    signed_hub = build_hub(tmp / "signed", seed=True, pki=pki)
    unsigned_hub = build_hub(tmp / "unsigned", seed=True, allow_unsigned=True)
    recording = Recording(app=signed_hub.app)

    async def run() -> tuple[list[float], ...]:
        async with (
            AsyncVaultClient(
                "http://hub.bench", transport=recording, identity=identity, trust=pki.trust_store()
            ) as signed,
            AsyncVaultClient("http://hub.bench", transport=httpx.ASGITransport(app=unsigned_hub.app)) as unsigned,
        ):
            await _publish_loop(signed, 20)  # warm up: imports, caches, SQLite pages
            await _publish_loop(unsigned, 20)
            request = _root_part(recording.last_request, _mtom_type(recording.last_request), tmp)
            answer = _root_part(recording.last_answer, recording.last_answer_type, tmp)
            floor = Floor(identity, pki.load_hub_identity(), request, answer)
            print(
                f"  (the floor's messages: the {floor.request_size} B signed request envelope and the "
                f"{floor.answer_size} B signed answer envelope)"
            )
            signed_times, unsigned_times, floor_times = [], [], []
            for _ in range(rounds):
                signed_times += await _publish_loop(signed, 1)
                unsigned_times += await _publish_loop(unsigned, 1)
                floor_times.append(floor())
            return signed_times, unsigned_times, floor_times

    try:
        return asyncio.run(run())
    finally:
        signed_hub.close()
        unsigned_hub.close()


# ------------------------------------------------------------------------------------------------ profile


@contextlib.contextmanager
def inline_threadpool() -> Iterator[None]:
    """Run the hub's ``run_in_threadpool`` work inline, so that cProfile (one thread) sees it."""
    original = hub_app.run_in_threadpool

    async def inline(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return func(*args, **kwargs)

    hub_app.run_in_threadpool = inline  # type: ignore[assignment]
    try:
        yield
    finally:
        hub_app.run_in_threadpool = original


STAGES: dict[str, tuple[str, ...]] = {
    "WS-Security sign (client request + hub answer)": ("wssec.py:*(sign_envelope)",),
    "WS-Security verify (hub: request, client: answer)": ("wssec.py:*(verify)",),
    "hub: ITI-41 registry (rules, SQLite commit, fsync)": ("registry.py:*(provide_and_register)",),
    "both: ebRIM build + parse": ("iti41.py:*(build_request)", "iti41.py:*(parse_request)"),
    "both: MTOM write + parse": ("mtom.py:*(feed)", "mtom.py:*(close)", "mtom.py:*(__aiter__)"),
    "both: wire XML parse (hardened parser + limits)": ("xml.py:*(parse_xml)",),
    "both: serialize (once per message)": ("soap.py:*(serialize)",),
    "client: metadata builder + local rules": ("builder.py:*(new_document)", "rules.py:*(check_submission)"),
}


def profile(pki: PkiDescription, identity: Identity, tmp: Path, rounds: int) -> None:
    hub = build_hub(tmp, seed=True, pki=pki)
    profiler = cProfile.Profile()

    async def run() -> None:
        async with AsyncVaultClient(
            "http://hub.bench", transport=httpx.ASGITransport(app=hub.app), identity=identity, trust=pki.trust_store()
        ) as vault:
            await _publish_loop(vault, 20)
            profiler.enable()
            await _publish_loop(vault, rounds)
            profiler.disable()

    with inline_threadpool():
        asyncio.run(run())
    hub.close()
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    print(f"\nprofile of {rounds} signed publishes ({total / rounds * 1000:.2f} ms each under cProfile):")
    print("  top functions by own time:")
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, calls, tottime, _cum, _callers) in rows[:15]:
        where = f"{Path(filename).name}:{line}({name})" if filename != "~" else name
        print(f"    {tottime / total:6.1%}  {tottime / rounds * 1000:6.3f} ms  {calls // rounds:>4}x  {where}")
    print("  time per stage (cumulative, may overlap):")
    for stage, patterns in STAGES.items():
        cumulative = 0.0
        for (filename, _line, name), (_cc, _calls, _tottime, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            label = f"{Path(filename).name}:*({name})"
            if label in patterns:
                cumulative += cum
        print(f"    {cumulative / total:6.1%}  {cumulative / rounds * 1000:6.3f} ms  {stage}")


# ------------------------------------------------------------------------------------------------ processes


def publishes_per_second(hub: LiveHub, seconds: float) -> float:
    with hub.client("gp") as vault:
        for _ in range(10):
            vault.publish(os.urandom(DOC_SIZE), patient=PATIENT, document_type="labresult", mime_type="text/plain")
        done = 0
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            vault.publish(os.urandom(DOC_SIZE), patient=PATIENT, document_type="labresult", mime_type="text/plain")
            done += 1
        return done / (time.perf_counter() - started)


def concurrent_publishes_per_second(hub: LiveHub, seconds: float, sessions: int) -> float:
    counts = [0] * sessions
    lock = threading.Lock()

    async def session(index: int, deadline: float) -> None:
        async with hub.async_client("gp") as vault:
            while time.perf_counter() < deadline:
                await vault.publish(
                    os.urandom(DOC_SIZE), patient=PATIENT, document_type="labresult", mime_type="text/plain"
                )
                with lock:
                    counts[index] += 1

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(session(i, started + seconds) for i in range(sessions)))
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    return sum(counts) / elapsed


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:6.2f} ms, mean {statistics.fmean(values) * 1000:6.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="in-process publishes per measurement (default 300)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per hub-process run (default 8)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rsb-bench-signed-") as tmp_name:
        tmp = Path(tmp_name)
        pki = init_pki(tmp / "pki")
        gp = pki.load_identity("gp")

        print(f"in-process publish of a {DOC_SIZE // 1024} KB document (ITI-41, MTOM), {args.rounds} rounds each:")
        signed, unsigned, floors = in_process(tmp, pki, gp, args.rounds)
        signed_s, unsigned_s, floor_s = (statistics.median(v) for v in (signed, unsigned, floors))
        overhead = signed_s - unsigned_s
        print(f"  signed   (sign + verify on both sides): {_ms(signed)}")
        print(f"  unsigned (same hub code, no security):  {_ms(unsigned)}")
        print(f"  floor (2 RSA-2048 sign + 2 verify + exc-C14N of both envelopes): {_ms(floors)}")
        ratio, whole = overhead / floor_s, signed_s / floor_s
        print(
            f"  signing overhead (signed - unsigned): {overhead * 1000:6.3f} ms = {ratio:4.2f}x the floor (goal <= 2x)"
        )
        print(f"  whole signed round trip:              {signed_s * 1000:6.3f} ms = {whole:4.2f}x the floor")

        with LiveHub(tmp / "live", seed=True, pki=pki, extra_args=NO_RECORDING) as hub:
            one = publishes_per_second(hub, args.seconds)
            many = concurrent_publishes_per_second(hub, args.seconds, 8)
        print("hub and client in separate processes (LiveHub + signed VaultClient, loopback):")
        print(f"  1 sync client:      {one:7.1f} signed publishes/s")
        print(f"  8 async sessions:   {many:7.1f} signed publishes/s")

        if not args.no_profile:
            profile(pki, gp, tmp / "profiled", args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

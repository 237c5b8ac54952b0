"""FindDocuments latency of the mock hub's registry at 1k and 100k entries, and the cost of durable commits.

Fills a fresh SQLite store with N entries (10 per patient: 1k entries = 100 patients, 100k = 10k patients) through
the store's regular write path (one transaction per 1000 submissions), then runs FindDocuments through
:class:`~rsb_connector.hub.registry.Registry` for random patients with the two typical filter sets:

- ``patient+status``: ``$XDSDocumentEntryPatientId`` + ``$XDSDocumentEntryStatus`` (Approved);
- ``patient+class``: the same plus one ``$XDSDocumentEntryClassCode``.

It prints p50 / p99 in milliseconds for each size and the 100k / 1k ratio of the p50. Goals: p50 ≤ 10 ms at 100k
entries, ratio ≤ 2 (an indexed lookup, independent of the registry's size).

It then times ITI-41 ``provide_and_register`` of one small document with ``synchronous=FULL`` (the default: every
acknowledged submission survives a power cut) and ``NORMAL`` (survives a process crash only), to show what the
durability costs.

Run: ``python bench/bench_find.py [--sizes 1000 100000] [--queries 2000]`` or ``python -m bench.bench_find``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from rsb_connector.hub.population import SEED_PROFESSIONALS
from rsb_connector.hub.registry import IncomingDocument, Registry
from rsb_connector.hub.store import SqliteStore
from rsb_connector.identifiers import Ssin
from rsb_connector.metadata.model import (
    Association,
    AssociationType,
    Author,
    Code,
    DocumentEntry,
    Submission,
    SubmissionSet,
    SubmissionSetStatus,
)
from rsb_connector.query import FindDocuments

ENTRIES_PER_PATIENT = 10
BATCH = 1000  # submissions per write transaction during the fill
CLASSES = ("report", "note", "labresult", "prescription", "discharge")
TYPES = ("contactreport", "labresult", "referral", "sumehr", "vaccination", "medicationscheme", "result", "alert")
SCHEME = "1.3.6.1.4.1.48336.1"
CONF = "2.16.840.1.113883.5.25"
REPO = "1.3.6.1.4.1.21367.2017.3.1990000728.1"


def synthetic_ssin(n: int) -> str:
    """The n-th synthetic SSIN: a valid check digit, born in the 1900s (day and sequence from ``n``)."""
    yy, mm, dd, seq = 30 + n % 60, 1 + n // 60 % 12, 1 + n // 720 % 28, 1 + n // 20160 % 997
    base = f"{yy:02d}{mm:02d}{dd:02d}{seq:03d}"
    ssin = f"{base}{97 - int(base) % 97:02d}"
    Ssin(ssin)  # valid by construction; fail loudly otherwise
    return ssin


def submissions(patients: Sequence[str], rng: random.Random) -> Iterator[Submission]:
    """One submission per patient holding ENTRIES_PER_PATIENT entries, ids already assigned (as stored)."""
    authors = [p.author_person for p in SEED_PROFESSIONALS]
    for counter, pid in enumerate(patients, start=1):
        ss_uuid = f"urn:uuid:00000000-0000-4000-8000-{counter:012d}"
        ss = SubmissionSet(
            entry_uuid=ss_uuid,
            unique_id=f"1.3.6.1.4.1.21367.2017.77.{counter}",
            source_id="1.3.6.1.4.1.21367.2017.2.1",
            patient_id=pid,
            submission_time="20241224120000",
            content_type_code=Code("report", SCHEME),
        )
        entries: list[DocumentEntry] = []
        associations: list[Association] = []
        for i in range(ENTRIES_PER_PATIENT):
            n = counter * ENTRIES_PER_PATIENT + i
            entry_uuid = f"urn:uuid:10000000-0000-4000-8000-{n:012d}"
            year = rng.randint(2015, 2024)
            entries.append(
                DocumentEntry(
                    entry_uuid=entry_uuid,
                    unique_id=f"1.3.6.1.4.1.21367.2017.88.{n}",
                    patient_id=pid,
                    mime_type="application/pdf",
                    class_code=Code(rng.choice(CLASSES), SCHEME),
                    type_code=Code(rng.choice(TYPES), SCHEME),
                    format_code=Code("urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3"),
                    healthcare_facility_type_code=Code("hospital", SCHEME),
                    practice_setting_code=Code("cardiology", SCHEME),
                    confidentiality_codes=[Code(rng.choice("NNNR"), CONF)],
                    event_codes=[Code(f"e{rng.randint(1, 20)}", SCHEME)],
                    creation_time=f"{year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}120000",
                    language_code="fr-BE",
                    source_patient_id=pid,
                    hash="0" * 40,
                    size=1000 + n % 5000,
                    repository_unique_id=REPO,
                    title="Synthetic document",
                    authors=[Author(person=rng.choice(authors))],
                    logical_id=entry_uuid,
                    version="1",
                )
            )
            associations.append(
                Association(
                    entry_uuid=f"urn:uuid:20000000-0000-4000-8000-{n:012d}",
                    type=AssociationType.HAS_MEMBER,
                    source=ss_uuid,
                    target=entry_uuid,
                    submission_set_status=SubmissionSetStatus.ORIGINAL,
                )
            )
        yield Submission(submission_set=ss, entries=entries, associations=associations)


def fill(store: SqliteStore, entries: int, rng: random.Random) -> list[str]:
    """Register entries // 10 patients with 10 entries each; return the patient ids."""
    patients = [Ssin(synthetic_ssin(i)).to_cx() for i in range(entries // ENTRIES_PER_PATIENT)]
    with store.write() as w:
        for pid in patients:
            w.register_patient(pid, {"synthetic": True})
    pending = submissions(patients, rng)
    while True:
        with store.write() as w:
            done = 0
            for sub in pending:
                w.add_submission(sub, blobs={}, received_at="20241224120000", submitter="bench")
                done += 1
                if done == BATCH:
                    break
        if done < BATCH:
            break
    with store.write():
        store._connection().execute("ANALYZE")
    return patients


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    """(p50, p99) of the samples."""
    ordered = sorted(samples_ms)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return p50, p99


def time_queries(
    registry: Registry, patients: Sequence[str], queries: int, rng: random.Random
) -> dict[str, tuple[float, float, float]]:
    """p50, p99 (ms) and mean result size for each filter set."""
    out: dict[str, tuple[float, float, float]] = {}
    kinds = {
        "patient+status": lambda pid: FindDocuments(patient_id=pid),
        "patient+class": lambda pid: FindDocuments(patient_id=pid, class_codes=(Code(rng.choice(CLASSES), SCHEME),)),
    }
    for name, make in kinds.items():
        for pid in patients[:50]:  # warm the page cache and the connection
            registry.stored_query(make(pid))
        samples: list[float] = []
        sizes: list[int] = []
        for _ in range(queries):
            query = make(rng.choice(patients))
            start = time.perf_counter()
            result = registry.stored_query(query)
            samples.append((time.perf_counter() - start) * 1000)
            sizes.append(len(result.entries))
        p50, p99 = percentiles(samples)
        out[name] = (p50, p99, statistics.mean(sizes))
    return out


def time_submissions(base: Path, synchronous: str, count: int) -> tuple[float, float]:
    """p50 / p99 (ms) of provide_and_register of one 4 KiB document, with the given synchronous mode."""
    from rsb_connector.metadata.builder import new_document, new_submission

    store = SqliteStore.open(base / f"sync-{synchronous}", synchronous=synchronous)  # type: ignore[arg-type]
    try:
        registry = Registry(store)
        ssin = synthetic_ssin(1)
        registry.register_patient(Ssin(ssin).to_cx())
        samples: list[float] = []
        for i in range(count):
            data = (f"document {i} ".encode() * 400)[:4096]
            entry = new_document(data, patient=ssin, document_type="labresult", mime_type="text/plain")
            sub = new_submission([entry])
            start = time.perf_counter()
            outcome = registry.provide_and_register(sub, {entry.entry_uuid: IncomingDocument.from_bytes(data)})
            samples.append((time.perf_counter() - start) * 1000)
            if not outcome.ok:
                raise SystemExit(f"submission failed: {[str(p) for p in outcome.problems]}")
        return percentiles(samples)
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the numbers; exit status 1 when a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000], help="registry sizes (entries)")
    parser.add_argument("--queries", type=int, default=2000, help="queries per size and filter set")
    parser.add_argument("--submissions", type=int, default=200, help="ITI-41 calls per synchronous mode (0: skip)")
    parser.add_argument("--seed", type=int, default=20241224)
    args = parser.parse_args(argv)

    results: dict[int, dict[str, tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="rsb-bench-find-") as tmp:
        for size in args.sizes:
            rng = random.Random(args.seed)
            store = SqliteStore.open(Path(tmp) / f"n{size}")
            try:
                start = time.perf_counter()
                patients = fill(store, size, rng)
                elapsed = time.perf_counter() - start
                print(
                    f"filled {size:>7} entries ({len(patients)} patients) in {elapsed:5.1f} s "
                    f"({size / elapsed:,.0f} entries/s)"
                )
                results[size] = time_queries(Registry(store), patients, args.queries, rng)
            finally:
                store.close()
        print()
        print(f"{'entries':>8} {'filter':<15} {'p50 ms':>8} {'p99 ms':>8} {'results':>8}")
        for size, by_kind in results.items():
            for name, (p50, p99, mean) in by_kind.items():
                print(f"{size:>8} {name:<15} {p50:8.3f} {p99:8.3f} {mean:8.1f}")
        ok = True
        if len(results) >= 2:
            small, large = min(results), max(results)
            print()
            for name in results[large]:
                ratio = results[large][name][0] / results[small][name][0]
                p50 = results[large][name][0]
                verdict = "ok" if p50 <= 10 and ratio <= 2 else "MISSED"
                ok = ok and verdict == "ok"
                print(
                    f"{name:<15} p50 at {large}: {p50:.3f} ms (goal ≤ 10)   ratio {large}/{small}: {ratio:.2f} "
                    f"(goal ≤ 2)   {verdict}"
                )
        if args.submissions:
            print()
            print(f"provide_and_register, one 4 KiB document, {args.submissions} calls:")
            for mode in ("FULL", "NORMAL"):
                p50, p99 = time_submissions(Path(tmp), mode, args.submissions)
                print(f"  synchronous={mode:<6} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

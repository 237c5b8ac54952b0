"""Durability: a hub killed with SIGKILL in the middle of concurrent publishes loses nothing it acknowledged and
keeps no half submission.

The hub runs as a real process. Eight threads publish two-document submissions (256 KiB each, MTOM) as fast as
they can; once enough have been acknowledged the hub is killed, mid-stream. It is restarted on the same data dir
and every acknowledged submission must be complete and retrievable with its hash; the database must pass SQLite's
integrity check, and every submission set in it must hold exactly its two entries, each with its document file.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from rsb_connector.conformance import wire
from rsb_connector.hub.population import SEED_PATIENTS
from rsb_connector.identifiers import Ssin
from rsb_connector.metadata.builder import new_document, new_submission
from rsb_connector.metadata.model import AssociationType
from rsb_connector.query import GetDocuments
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import PkiDescription
from rsb_connector.testing import LiveHub
from rsb_connector.xds import constants as c

DOC_SIZE = 256 * 1024


@pytest.fixture
def peer(rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]) -> Callable[[str], wire.Peer]:
    """A signing peer of a hub at a URL (the hubs below run with the session PKI)."""

    def make(url: str) -> wire.Peer:
        return wire.Peer(base_url=url, timeout=30, identity=rsb_identity("gp"), trust=rsb_pki.trust_store())

    return make


@pytest.mark.slow
def test_sigkill_mid_stream_keeps_acknowledged_and_no_partial_submissions(
    tmp_path: Path, rsb_pki: PkiDescription, peer: Callable[[str], wire.Peer]
) -> None:
    data_dir = tmp_path / "hub"
    acknowledged: list[tuple[str, str, str]] = []  # (submission set uniqueId, document uniqueId, sha1)
    lock = threading.Lock()
    stop = threading.Event()
    patient = SEED_PATIENTS[0].ssin

    def publisher(worker: int) -> None:
        with peer(hub.url) as http:
            n = 0
            while not stop.is_set():
                n += 1
                contents = [os.urandom(DOC_SIZE), os.urandom(DOC_SIZE)]
                entries = [
                    new_document(
                        data,
                        author=wire.GP_AUTHOR,
                        patient=patient,
                        document_type="report",
                        mime_type="application/pdf",
                    )
                    for data in contents
                ]
                submission = new_submission(entries)
                try:
                    result = wire.provide(
                        http,
                        submission,
                        {e.entry_uuid: d for e, d in zip(entries, contents, strict=True)},
                        tmp_dir=str(tmp_path),
                    )
                except (httpx.HTTPError, AssertionError, Exception):  # the hub died under us: stop quietly
                    return
                if result.status == c.STATUS_SUCCESS:
                    with lock:
                        for entry, data in zip(entries, contents, strict=True):
                            acknowledged.append(
                                (
                                    submission.submission_set.unique_id or "",
                                    entry.unique_id or "",
                                    hashlib.sha1(data, usedforsecurity=False).hexdigest(),
                                )
                            )

    hub = LiveHub(data_dir, seed=True, pki=rsb_pki, log_path=tmp_path / "hub.log")
    hub.start()
    threads = [threading.Thread(target=publisher, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    hub.kill()  # SIGKILL while the other submissions are in flight
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert len(acknowledged) >= 40, hub.log()

    # The store opens cleanly and holds no partial submission.
    db = sqlite3.connect(data_dir / "registry.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        per_set = db.execute(
            "SELECT s.unique_id, count(d.id) FROM submission_sets s "
            "LEFT JOIN document_entries d ON d.submission_set_uuid = s.entry_uuid GROUP BY s.id"
        ).fetchall()
        rows = db.execute("SELECT unique_id, hash, sha256, size FROM document_entries").fetchall()
        members = db.execute(
            "SELECT count(*) FROM associations WHERE type = ?", (AssociationType.HAS_MEMBER.value,)
        ).fetchone()[0]
    finally:
        db.close()
    assert per_set, "no submission set was stored at all"
    ours = {ss for ss, _uid, _sha1 in acknowledged}
    # Every submission set of this test holds exactly its two entries; the seeded ones are whole too.
    assert all(count == 2 for ss, count in per_set if ss in ours), [s for s in per_set if s[1] != 2]
    assert all(count >= 1 for _, count in per_set)
    assert members == len(rows)
    for _uid, sha1, sha256, size in rows:
        blob = data_dir / "documents" / sha256[:2] / sha256
        assert blob.stat().st_size == size
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == sha256
        assert hashlib.sha1(blob.read_bytes(), usedforsecurity=False).hexdigest() == sha1

    # Restarted on the same data dir, every acknowledged document is there and retrievable with its hash.
    with (
        LiveHub(data_dir, seed=False, pki=rsb_pki, log_path=tmp_path / "hub2.log") as again,
        peer(again.url) as http,
    ):
        stored = {uid for uid, *_ in rows}
        for _ss, uid, _sha1 in acknowledged:
            assert uid in stored
        sample = acknowledged[:: max(1, len(acknowledged) // 10)]
        for _ss, uid, sha1 in sample:
            response, docs = wire.retrieve(http, [(c.DEFAULT_REPOSITORY_UNIQUE_ID, uid)], tmp_dir=str(tmp_path))
            assert response.status == c.STATUS_SUCCESS
            assert hashlib.sha1(docs[uid], usedforsecurity=False).hexdigest() == sha1
        found = wire.query(http, GetDocuments(unique_ids=tuple(uid for _s, uid, _h in sample)))
        assert {e.unique_id for e in found.entries} == {uid for _s, uid, _h in sample}
        assert all(e.patient_id == Ssin(patient).to_cx() for e in found.entries)


@pytest.mark.slow
def test_graceful_shutdown_finishes_and_reopens(
    tmp_path: Path, rsb_pki: PkiDescription, peer: Callable[[str], wire.Peer]
) -> None:
    hub = LiveHub(tmp_path / "hub", seed=True, pki=rsb_pki, extra_args=["--max-results", "1"])
    hub.start()
    patient = SEED_PATIENTS[0].ssin
    with peer(hub.url) as http:
        published = set()
        for _ in range(2):
            entry = new_document(
                b"x" * 10, author=wire.GP_AUTHOR, patient=patient, document_type="note", mime_type="text/plain"
            )
            submission = new_submission([entry])
            assert wire.provide(http, submission, {entry.entry_uuid: b"x" * 10}, tmp_dir=str(tmp_path)).ok
            published.add(entry.unique_id)
        from rsb_connector.query import FindDocuments

        capped = wire.query(http, FindDocuments(patient_id=Ssin(patient).to_cx()))
        assert [p.code for p in capped.problems] == ["XDSTooManyResults"]
    # uvicorn finishes in-flight work, runs the shutdown hooks (store closed), then re-raises SIGTERM.
    assert hub.stop() in (0, -signal.SIGTERM), hub.log()
    assert "Application shutdown complete" in hub.log()
    db = sqlite3.connect(tmp_path / "hub" / "registry.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        uids = {row[0] for row in db.execute("SELECT unique_id FROM document_entries")}
        assert published <= uids
    finally:
        db.close()

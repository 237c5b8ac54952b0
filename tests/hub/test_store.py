"""The SQLite store: lossless JSON, migrations, blobs, durability, concurrency, query plans."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import date
from pathlib import Path

import pytest

from rsb_connector.hub.population import SEED_PATIENTS, SEED_PROFESSIONALS, seed, write_seed_json
from rsb_connector.hub.registry import Registry
from rsb_connector.hub.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SqliteStore,
    association_from_json,
    association_to_json,
    entry_from_json,
    entry_to_json,
    submission_set_from_json,
    submission_set_to_json,
)
from rsb_connector.identifiers import Nihii, Ssin
from rsb_connector.metadata.content import digest
from rsb_connector.metadata.model import (
    DOCUMENT_ENTRY_ON_DEMAND,
    Association,
    AssociationType,
    Author,
    AvailabilityStatus,
    Code,
    DocumentEntry,
    SubmissionSet,
    SubmissionSetStatus,
)
from rsb_connector.query import FindDocuments

try:  # tests/hub as a package (tests.hub.conftest) or as a rootdir-relative folder
    from .conftest import PID_A, HubEnv, content_for, documents_for, make_entry, make_submission
except ImportError:
    from conftest import PID_A, HubEnv, content_for, documents_for, make_entry, make_submission  # type: ignore[no-redef]

# ------------------------------------------------------------------------------------------------- JSON codec


def test_entry_json_round_trip_is_lossless() -> None:
    entry = DocumentEntry(
        entry_uuid="urn:uuid:0f2b1a4e-1111-4222-8333-444455556666",
        unique_id="1.2.3.4^ext-9",
        patient_id=PID_A,
        mime_type="application/pdf",
        class_code=Code("report", "1.2", "Report"),
        type_code=Code("labresult", "1.3"),
        format_code=Code("fmt", "1.4", None),
        healthcare_facility_type_code=Code("hospital", "1.5", "Hôpital"),
        practice_setting_code=Code("cardiology", "1.6"),
        confidentiality_codes=[Code("N", "2.16.840.1.113883.5.25"), Code("R", "2.16.840.1.113883.5.25")],
        event_codes=[Code("e1", "1.7"), Code("e2", "1.7", "Event 2")],
        creation_time="2024",
        language_code="nl-BE",
        source_patient_id=PID_A,
        source_patient_info=["PID-3|x", "PID-5|Doe^Jane"],
        legal_authenticator="123^Legal^Auth",
        service_start_time="20240101",
        service_stop_time="202401021200",
        hash="a" * 40,
        size=1234,
        repository_unique_id="1.2.3",
        uri="http://example.org/doc",
        title="Titre — accentué",
        comments="multi\nline",
        authors=[
            Author(person="p1", institutions=("i1", "i2"), roles=("r",), specialties=("s",), telecommunications=("t",)),
            Author(institutions=("only institution",)),
        ],
        reference_ids=["ref1^^^&1.2&ISO^urn:ihe:iti:xds:2013:order"],
        availability_status=AvailabilityStatus.DEPRECATED,
        object_type=DOCUMENT_ENTRY_ON_DEMAND,
        home_community_id="urn:oid:1.2.3.4",
        logical_id="urn:uuid:0f2b1a4e-1111-4222-8333-444455550000",
        version="3",
        extra_slots={"urn:custom": ["a", "b"], "empty": []},
    )
    assert entry_from_json(entry_to_json(entry)) == entry


def test_minimal_entry_round_trips() -> None:
    entry = DocumentEntry(entry_uuid="Document01")
    assert entry_from_json(entry_to_json(entry)) == entry


def test_submission_set_and_association_round_trip() -> None:
    ss = SubmissionSet(
        entry_uuid="urn:uuid:0f2b1a4e-1111-4222-8333-444455556667",
        unique_id="1.2.3.5",
        source_id="1.2.3.6",
        patient_id=PID_A,
        submission_time="20241224",
        content_type_code=Code("c", "s", "d"),
        authors=[Author(person="x", roles=("r1", "r2"))],
        title="t",
        comments="c",
        intended_recipients=["a|b"],
        availability_status=AvailabilityStatus.APPROVED,
        home_community_id="urn:oid:1.2",
    )
    assert submission_set_from_json(submission_set_to_json(ss)) == ss
    for assoc in (
        Association(
            entry_uuid="a1",
            type=AssociationType.HAS_MEMBER,
            source="s",
            target="t",
            submission_set_status=SubmissionSetStatus.REFERENCE,
        ),
        Association(
            entry_uuid="a2",
            type=AssociationType.UPDATE_AVAILABILITY_STATUS,
            source="s",
            target="t",
            original_status=AvailabilityStatus.APPROVED,
            new_status=AvailabilityStatus.DEPRECATED,
            availability_status=AvailabilityStatus.DEPRECATED,
        ),
    ):
        assert association_from_json(association_to_json(assoc)) == assoc


def test_registered_entry_reads_back_as_stored(hub: HubEnv) -> None:
    entry = make_entry(events=("e1", "e2"), reference_ids=("r1",), service_start="2023", service_stop="2024")
    published = hub.publish(entry)
    with hub.store.read() as r:
        (stored,) = r.entries(entry_uuids=[published.uuid()])
    expected = entry_from_json(entry_to_json(entry))
    expected.entry_uuid = published.uuid()
    data = content_for(entry)
    expected.hash, expected.size = digest(data).sha1, len(data)
    expected.repository_unique_id = hub.registry.repository_unique_id
    expected.logical_id, expected.version = published.uuid(), "1"
    assert stored.entry == expected
    assert stored.sha256 == digest(data).sha256


# ------------------------------------------------------------------------------------------------- schema


def test_open_sets_wal_foreign_keys_and_full_sync(store: SqliteStore) -> None:
    conn = sqlite3.connect(store.db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    internal = store._connection()
    assert internal.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert internal.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with SqliteStore.open(data) as s:
        assert s.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
        assert s.migrate() == SCHEMA_VERSION
        with s.write() as w:
            w.register_patient(PID_A, {"n": 1})
    with SqliteStore.open(data) as s:
        assert s.schema_version() == SCHEMA_VERSION
        conn = s._connection()
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
        with s.read() as r:
            assert r.patient_info(PID_A) == {"n": 1}


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    conn = sqlite3.connect(data / SqliteStore.DB_NAME)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version(version) VALUES (1)")
    conn.execute("INSERT INTO patients(patient_id, info) VALUES (?, ?)", (PID_A, '{"kept": true}'))
    conn.commit()
    conn.close()
    with SqliteStore.open(data) as s:
        assert s.schema_version() == SCHEMA_VERSION >= 2
        with s.read() as r:
            assert r.patient_info(PID_A) == {"kept": True}
            assert r.policy_records("sharing_consents") == [] and r.audit_events() == []
        tables = {row[0] for row in s._connection().execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"professionals", "sharing_consents", "therapeutic_links", "audit_events", "policy_history"} <= tables


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with SqliteStore.open(data) as s:
        s._connection().execute("INSERT INTO schema_version(version) VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer than this code"):
        SqliteStore.open(data)


def test_foreign_keys_refuse_an_entry_of_an_unknown_patient(store: SqliteStore) -> None:
    sub = make_submission([make_entry()])
    sub.submission_set.entry_uuid = "urn:uuid:00000000-0000-4000-8000-000000000001"
    sub.entries[0].entry_uuid = "urn:uuid:00000000-0000-4000-8000-000000000002"
    sub.associations = []
    with pytest.raises(sqlite3.IntegrityError), store.write() as w:
        w.add_submission(sub, blobs={}, received_at="20240101000000")
    with store.read() as r:
        assert r.count("submission_sets") == 0


def test_find_documents_uses_the_patient_indexes(hub: HubEnv) -> None:
    hub.publish(make_entry())
    conn = hub.store._connection()
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM document_entries d WHERE d.patient_id = ? AND d.status IN ('Approved') "
        "AND (d.class_code, d.class_scheme) IN (VALUES ('a','b'))",
        (PID_A,),
    ).fetchall()
    text = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX document_entries_patient" in text, text
    assert "SCAN d" not in text, text


# ------------------------------------------------------------------------------------------------- blobs


def test_write_and_open_blob(store: SqliteStore) -> None:
    dig = store.write_blob([b"hello ", b"world"])
    assert dig == digest(b"hello world")
    assert store.has_blob(dig.sha256)
    assert store.blob_path(dig.sha256) == store.data_dir / "documents" / dig.sha256[:2] / dig.sha256
    with store.open_blob(dig.sha256) as fh:
        assert fh.read() == b"hello world"
    assert list(store.spool_dir.iterdir()) == []


def test_adopting_existing_content_deletes_the_spooled_file(store: SqliteStore) -> None:
    first = store.write_blob([b"same"])
    spooled = store.spool_blob([b"same"])
    assert spooled.path.exists()
    store.adopt_blob(spooled.path, spooled.digest)
    assert not spooled.path.exists()
    assert store.has_blob(first.sha256)
    assert store.blob_count() == 1


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "abc", "g" * 64])
def test_blob_path_refuses_anything_but_a_sha256(store: SqliteStore, bad: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        store.blob_path(bad)


def test_open_clears_leftover_spool_files(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with SqliteStore.open(data) as s:
        leftover = s.spool_dir / "upload-crashed"
        leftover.write_bytes(b"half an upload")
    with SqliteStore.open(data) as s:
        assert list(s.spool_dir.iterdir()) == []


def test_gc_removes_only_unreferenced_blobs(hub: HubEnv) -> None:
    hub.publish(make_entry())
    orphan = hub.store.write_blob([b"adopted, then the process died before commit"])
    assert hub.store.blob_count() == 2
    assert hub.store.gc_blobs() == 1
    assert not hub.store.has_blob(orphan.sha256)
    assert hub.store.blob_count() == 1


# ------------------------------------------------------------------------------------------------- transactions


def test_write_rolls_back_on_error(store: SqliteStore) -> None:
    def failing_transaction() -> None:
        with store.write() as w:
            w.register_patient(PID_A)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_transaction()
    with store.read() as r:
        assert not r.has_patient(PID_A)


def test_nested_write_is_refused(store: SqliteStore) -> None:
    with store.read(), pytest.raises(RuntimeError, match="nested"), store.write():
        pass


def test_reader_sees_a_snapshot_while_a_writer_commits(store: SqliteStore) -> None:
    with store.write() as w:
        w.register_patient(PID_A)
    seen: list[int] = []
    with store.read() as r:
        before = r.count("patients")

        def writer() -> None:
            with store.write() as w2:
                w2.register_patient("other^^^&1.2.3&ISO")

        t = threading.Thread(target=writer)
        t.start()
        t.join(timeout=10)
        seen.append(r.count("patients"))
    with store.read() as r:
        after = r.count("patients")
    assert (before, seen[0], after) == (1, 1, 2)


def test_restart_keeps_everything(tmp_path: Path) -> None:
    data = tmp_path / "d"
    store = SqliteStore.open(data)
    registry = Registry(store)
    registry.register_patient(PID_A)
    sub = make_submission([make_entry()])
    outcome = registry.provide_and_register(sub, documents_for(sub))
    assert outcome.ok
    store.close()
    with pytest.raises(RuntimeError, match="closed"), store.read():
        pass

    reopened = SqliteStore.open(data)
    try:
        result = Registry(reopened).stored_query(FindDocuments(patient_id=PID_A))
        assert [e.entry_uuid for e in result.entries] == [outcome.registered["Document01"]]
        retrieved = Registry(reopened).retrieve(
            [(result.entries[0].repository_unique_id or "", sub.entries[0].unique_id or "")]
        )
        assert retrieved.ok
        assert retrieved.documents[0].path.read_bytes().startswith(b"content of")
    finally:
        reopened.close()


def test_acknowledged_submission_survives_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "d"
    tests_dir = Path(__file__).parent
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(tests_dir)!r})
        from pathlib import Path
        from conftest import PID_A, documents_for, make_entry, make_submission
        from rsb_connector.hub.registry import Registry
        from rsb_connector.hub.store import SqliteStore
        store = SqliteStore.open(Path({str(data)!r}))
        registry = Registry(store)
        registry.register_patient(PID_A)
        sub = make_submission([make_entry()])
        outcome = registry.provide_and_register(sub, documents_for(sub))
        print(outcome.registered["Document01"], sub.entries[0].unique_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    entry_uuid, unique_id = proc.stdout.split()
    with SqliteStore.open(data) as store:
        registry = Registry(store)
        found = registry.stored_query(FindDocuments(patient_id=PID_A))
        assert [e.entry_uuid for e in found.entries] == [entry_uuid]
        got = registry.retrieve([(registry.repository_unique_id, unique_id)])
        assert got.ok
        assert got.documents[0].path.read_bytes() == f"content of {unique_id}\n".encode()


def test_close_is_safe_with_connections_from_other_threads(store: SqliteStore) -> None:
    def reader() -> None:
        with store.read() as r:
            r.count("entries")

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store._connections) == 5
    store.close()
    assert store._connections == []
    assert os.path.exists(store.db_path)


# ------------------------------------------------------------------------------------------------- population


def test_seed_population_is_valid_and_covers_the_cases() -> None:
    assert len(SEED_PATIENTS) >= 6
    ssins = [Ssin(p.ssin) for p in SEED_PATIENTS]  # raises on an invalid number
    assert len(set(ssins)) == len(ssins)
    assert any(s.birth_year >= 2000 for s in ssins)
    assert any(s.is_bis for s in ssins)
    ages = [p.age_on(date(2025, 1, 1)) for p in SEED_PATIENTS]
    assert any(age is not None and age < 16 for age in ages)
    for p in SEED_PATIENTS:
        assert (int(p.ssin[6:9]) % 2 == 1) == (p.sex == "male")  # the sequence number's parity gives the sex
    assert len(SEED_PROFESSIONALS) >= 5
    nihiis = [Nihii(p.nihii) for p in SEED_PROFESSIONALS]
    assert {n.hcparty for n in nihiis} >= {"persphysician", "persnurse", "persphysiotherapist", "perspharmacist"}
    assert sum(n.hcparty == "persphysician" for n in nihiis) >= 2  # a GP and a specialist


def test_seed_registers_patients_and_writes_seed_json(store: SqliteStore, tmp_path: Path) -> None:
    description = seed(store, today=date(2025, 1, 1))
    again = seed(store, today=date(2025, 1, 1))  # idempotent
    assert again == description
    with store.read() as r:
        assert r.count("patients") == len(SEED_PATIENTS)
        for patient in SEED_PATIENTS:
            info = r.patient_info(patient.patient_id)
            assert info is not None
            assert info["family"] == patient.family
    path = write_seed_json(tmp_path / "data", description)
    assert path == tmp_path / "data" / "seed.json"
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert loaded == description
    assert loaded["version"] == 1
    assert "synthetic" in loaded["notice"]
    by_key = {p["key"]: p for p in loaded["patients"]}
    assert by_key["oksana"]["bis"] is True
    assert by_key["noor"]["minor"] is True
    assert by_key["lucas"]["patient_id"] == Ssin(by_key["lucas"]["ssin"]).to_cx()
    assert by_key["lucas"]["birth_date"] == "1987-04-12"
    pro = {p["key"]: p for p in loaded["professionals"]}
    assert pro["gp"]["author_person"].startswith(pro["gp"]["nihii"] + "^Claes^Sophie^")
    assert [p.name for p in path.parent.iterdir()] == ["seed.json"]  # no temp file left


def test_seeded_patient_can_publish(store: SqliteStore) -> None:
    seed(store)
    registry = Registry(store)
    sub = make_submission([make_entry(patient=SEED_PATIENTS[0].patient_id)])
    assert registry.provide_and_register(sub, documents_for(sub)).ok

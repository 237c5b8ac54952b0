"""``rsb publish / find / fetch`` against a hub on a real socket: JSON output, tables, and exit codes."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from rsb_connector.cli import EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, main
from rsb_connector.security.pki import PkiDescription

from .conftest import PATIENT, UNREGISTERED


@pytest.fixture(autouse=True)
def signed(monkeypatch: pytest.MonkeyPatch, rsb_pki: PkiDescription) -> None:
    """The commands sign as the GP and check the hub's answers (through the documented environment variables)."""
    monkeypatch.setenv("RSB_IDENTITY", str(rsb_pki.path(rsb_pki.identity("gp").file)))
    monkeypatch.setenv("RSB_IDENTITY_PASSWORD", rsb_pki.password)
    monkeypatch.setenv("RSB_CA", str(rsb_pki.ca_cert))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, _err = run(capsys, *argv, "--json")
    return code, json.loads(out)


def test_publish_find_fetch(socket_hub: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    letter = tmp_path / "letter.txt"
    letter.write_bytes(b"Dear colleague, " + os.urandom(8).hex().encode())
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF-1.7 " + os.urandom(2000))
    code, published = run_json(
        capsys,
        "publish", str(letter), str(scan),
        "--patient", PATIENT, "--type", "contactreport", "--author-nihii", "12345625004", "--hub", socket_hub,
    )  # fmt: skip
    assert code == EXIT_OK
    letter_id, scan_id = (d["unique_id"] for d in published["documents"])
    assert [d["mime_type"] for d in published["documents"]] == ["text/plain", "application/pdf"]
    assert published["documents"][0]["size"] == letter.stat().st_size

    code, found = run_json(capsys, "find", "--patient", PATIENT, "--type", "contactreport", "--hub", socket_hub)
    assert code == EXIT_OK
    by_id = {e["unique_id"]: e for e in found}
    assert by_id[letter_id]["title"] == "letter.txt"
    assert by_id[scan_id]["status"] == "Approved"

    code, out, _err = run(capsys, "find", "--patient", PATIENT, "--hub", socket_hub)
    assert code == EXIT_OK
    assert "letter.txt" in out
    assert "uniqueId" in out

    target = tmp_path / "fetched.txt"
    code, fetched = run_json(capsys, "fetch", letter_id, "-o", str(target), "--hub", socket_hub)
    assert code == EXIT_OK
    assert fetched[0]["verified"] is True
    assert target.read_bytes() == letter.read_bytes()

    downloads = tmp_path / "downloads"
    code, out, _err = run(capsys, "fetch", letter_id, scan_id, "-o", str(downloads), "--hub", socket_hub)
    assert code == EXIT_OK
    files = sorted(downloads.iterdir())
    assert sorted(f.read_bytes() for f in files) == sorted([letter.read_bytes(), scan.read_bytes()])
    assert "verified" in out

    fresh = str(tmp_path / "fresh") + "/"  # a trailing slash asks for a directory, created if needed
    code, out, _err = run(capsys, "fetch", letter_id, "-o", fresh, "--hub", socket_hub)
    assert code == EXIT_OK
    assert [f.read_bytes() for f in Path(fresh).iterdir()] == [letter.read_bytes()]


def test_exit_codes(socket_hub: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello")

    code, refused = run_json(
        capsys, "publish", str(note), "--patient", UNREGISTERED, "--type", "note", "--hub", socket_hub
    )
    assert code == EXIT_REFUSED
    assert refused["error"]["kind"] == "refused"
    assert [p["code"] for p in refused["error"]["problems"]] == ["XDSUnknownPatientId"]

    code, out, err = run(capsys, "publish", str(note), "--patient", UNREGISTERED, "--type", "note", "--hub", socket_hub)
    assert code == EXIT_REFUSED
    assert "XDSUnknownPatientId" in err
    assert "Traceback" not in err + out
    assert UNREGISTERED not in err

    code, out, err = run(capsys, "fetch", "1.2.3.4.404", "-o", str(tmp_path / "x"), "--hub", socket_hub)
    assert code == EXIT_REFUSED
    assert "XDSDocumentUniqueIdError" in err

    code, out, err = run(capsys, "find", "--patient", "12345678901", "--hub", socket_hub)
    assert code == EXIT_USAGE
    assert "invalid SSIN" in err

    code, out, err = run(capsys, "publish", str(tmp_path / "missing.pdf"), "--patient", PATIENT, "--type", "note")
    assert code == EXIT_USAGE
    assert "is not a file" in err

    code, out, err = run(capsys, "find", "--patient", PATIENT, "--type", "nonsense", "--hub", socket_hub)
    assert code == EXIT_USAGE
    assert "unknown typeCode" in err


def test_an_unreachable_hub_is_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, failure = run_json(
        capsys, "find", "--patient", PATIENT, "--hub", f"http://127.0.0.1:{port}", "--timeout", "2"
    )
    assert code == EXIT_FAILURE
    assert failure["error"]["kind"] == "failure"
    assert "could not connect" in failure["error"]["message"]


# ------------------------------------------------------------------------------------------------- identities


def test_a_wrong_identity_password_or_ca_file_is_a_usage_error(
    socket_hub: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RSB_IDENTITY_PASSWORD", "not-the-password")
    code, _out, err = run(capsys, "find", "--patient", PATIENT, "--hub", socket_hub)
    assert code == EXIT_USAGE
    assert "password is wrong" in err
    code, _out, err = run(
        capsys, "find", "--patient", PATIENT, "--hub", socket_hub, "--password", "rsb-dev", "--ca", str(tmp_path / "x")
    )
    assert code == EXIT_USAGE
    assert "no such file" in err


def test_without_an_identity_the_hub_refuses(
    socket_hub: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RSB_IDENTITY")
    code, refused = run_json(capsys, "find", "--patient", PATIENT, "--hub", socket_hub)
    assert code == EXIT_REFUSED
    assert [p["code"] for p in refused["error"]["problems"]] == ["InvalidSecurity"]


def test_pki_init_writes_the_identities(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "hub", "pki", "init", str(tmp_path / "pki"), "--password", "s3cret")
    assert code == EXIT_OK
    assert "Dr Sophie Claes" in out and "12345625004" in out and "rsb hub serve --pki" in out
    described = json.loads((tmp_path / "pki" / "identities.json").read_text())
    assert described["password"] == "s3cret"
    assert {r["id"] for r in described["identities"]} >= {"gp", "patient1", "hospital"}
    assert (tmp_path / "pki" / "identities" / "gp.p12").stat().st_mode & 0o077 == 0
    code, _out, err = run(capsys, "hub", "pki", "init", str(tmp_path / "pki"))
    assert code == EXIT_USAGE
    assert "already holds a PKI" in err


def test_hub_serve_options_reach_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rsb_pki: PkiDescription
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("rsb_connector.hub.server.serve", lambda data_dir, **kwargs: seen.update(kwargs))
    code, out, err = run(
        capsys,
        "hub", "serve", "--data-dir", str(tmp_path / "data"), "--pki", str(rsb_pki.directory), "--allow-unsigned",
        "--tls", "--max-message-mb", "1.5", "--max-attachment-mb", "3",
    )  # fmt: skip
    assert code == EXIT_OK
    assert seen["pki"].directory == rsb_pki.directory
    assert seen["allow_unsigned"] is True and seen["tls"] is True
    assert seen["config"].max_message_bytes == int(1.5 * 1024 * 1024)
    assert seen["config"].max_attachment_bytes == 3 * 1024 * 1024
    assert "WARNING: --allow-unsigned" in err and "UNSIGNED" in err
    assert str(rsb_pki.directory) in out

    # Without --pki one command still starts a working hub: a development PKI is created in the data dir.
    seen.clear()
    code, out, err = run(capsys, "hub", "serve", "--data-dir", str(tmp_path / "fresh"))
    assert code == EXIT_OK
    assert seen["allow_unsigned"] is False
    assert seen["pki"].directory == (tmp_path / "fresh" / "pki").absolute()
    assert "created a development PKI in" in out and "WARNING" not in err
    code, out, _err = run(capsys, "hub", "serve", "--data-dir", str(tmp_path / "fresh"))
    assert "created" not in out  # reused


def test_a_bad_size_limit_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["hub", "serve", "--max-message-mb", "zero"])
    assert exited.value.code == EXIT_USAGE
    assert "megabytes" in capsys.readouterr().err

"""``rsb conformance list | run | connector-report``: the catalogue, a run against a real hub process (exit codes,
live output, the three reports) and the connector-validation report's plumbing."""

from __future__ import annotations

import json
import socket
import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from rsb_connector.cli import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, main
from rsb_connector.conformance import Case, Step, load_catalogue
from rsb_connector.conformance.results import CaseResult, Outcome, ResultFormatError, StepResult, SuiteResult
from rsb_connector.errors import ConnectorValidationUnavailable
from rsb_connector.hub.server import Hub, build_hub
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import PkiDescription
from rsb_connector.testing import LiveHub

from .conftest import environment


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands see only what a test gives them."""
    for name in ("RSB_HUB_URL", "RSB_IDENTITY", "RSB_PASSWORD", "RSB_IDENTITY_PASSWORD", "RSB_CA"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gp_p12(rsb_pki: PkiDescription) -> str:
    """The GP's PKCS#12 file, inside the development PKI (``<pki>/identities/gp.p12``)."""
    return str(rsb_pki.path(rsb_pki.identity("gp").file))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _foreign_ca(path: Path) -> Path:
    """A CA certificate that has issued nothing the hub has: its signed answers will not chain to it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some other CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


# ------------------------------------------------------------------------------------------------- list


def test_list_prints_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "conformance", "list")
    assert code == EXIT_OK
    assert "XDS-001" in out
    assert "conformance case" in out
    assert "reference" in out

    code, out, _err = run(capsys, "conformance", "list", "--json")
    assert code == EXIT_OK
    listed = json.loads(out)
    assert [c["id"] for c in listed] == [c.id for c in load_catalogue()]
    first = next(c for c in listed if c["id"] == "XDS-001")
    assert set(first) >= {"id", "title", "profile", "actor", "reference", "needs", "steps"}
    assert first["steps"][0]["expect"]

    code, out, _err = run(capsys, "conformance", "list", "--profile", "xds", "--only", "XDS-001", "--json")
    assert code == EXIT_OK
    assert [c["id"] for c in json.loads(out)] == ["XDS-001"]


def test_list_with_a_bad_selection_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "conformance", "list", "--only", "NOPE-001")
    assert code == EXIT_USAGE
    assert "matches no case" in err
    code, _out, err = run(capsys, "conformance", "list", "--profile", "smtp")
    assert code == EXIT_USAGE
    assert "unknown profile" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------------- run


def test_run_one_case_against_a_live_hub(
    rsb_live_hub: LiveHub, gp_p12: str, rsb_pki: PkiDescription, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    code, out, err = run(
        capsys,
        "conformance", "run", "--hub", rsb_live_hub.url, "--identity", gp_p12, "--password", rsb_pki.password,
        "--report-dir", str(reports), "--only", "XDS-001", "--json",
    )  # fmt: skip
    assert code == EXIT_OK, out + err
    summary = json.loads(out)
    assert summary["passed"] is True
    assert summary["summary"] == {"passed": 1, "failed": 0, "error": 0, "skipped": 0, "total": 1}
    assert [(c["id"], c["outcome"]) for c in summary["cases"]] == [("XDS-001", "passed")]
    assert summary["reports"] == {
        "html": str(reports / "report.html"),
        "junit": str(reports / "junit.xml"),
        "json": str(reports / "report.json"),
    }

    result = SuiteResult.from_json(json.loads((reports / "report.json").read_text(encoding="utf-8")))
    assert result.target == rsb_live_hub.url
    assert "NIHII" in result.caller
    case = result.cases[0]
    assert case.outcome is Outcome.PASSED
    assert all(s.evidence for s in case.steps)
    assert case.setup, "registering the case's own patient is recorded as setup"
    assert any(n.startswith("Selected 1 of the catalogue's") for n in result.notes)
    junit = etree.parse(str(reports / "junit.xml")).getroot()
    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("1", "0", "0")
    html = (reports / "report.html").read_text(encoding="utf-8")
    assert "PASS — every selected case passed (1 case)" in html
    patient_ssins = [r.ssin for r in rsb_pki.identities if r.ssin]
    for ssin in patient_ssins:
        assert ssin not in html


def test_run_shows_each_case_and_the_reports(
    rsb_live_hub: LiveHub,
    gp_p12: str,
    rsb_pki: PkiDescription,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RSB_PASSWORD", rsb_pki.password)
    code, out, _err = run(
        capsys, "conformance", "run", "--hub", rsb_live_hub.url + "/", "--identity", gp_p12,
        "--report-dir", str(tmp_path), "--only", "xds-001",
    )  # fmt: skip
    assert code == EXIT_OK, out
    lines = out.splitlines()
    assert any(line.startswith("PASSED") and "XDS-001" in line and line.rstrip().endswith(" s") for line in lines)
    assert "PASS" in out and "1 passed, 0 failed, 0 error, 0 skipped of 1 case in" in out
    assert str(tmp_path / "report.html") in out
    assert str(tmp_path / "junit.xml") in out


def test_untrusted_answers_make_the_case_error_and_the_run_fail(
    rsb_live_hub: LiveHub, gp_p12: str, rsb_pki: PkiDescription, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_ca = _foreign_ca(tmp_path / "other-ca.pem")
    code, out, err = run(
        capsys,
        "conformance", "run", "--hub", rsb_live_hub.url, "--identity", gp_p12, "--password", rsb_pki.password,
        "--ca", str(other_ca), "--report-dir", str(tmp_path / "r"), "--only", "XDS-001",
    )  # fmt: skip
    assert code == EXIT_REFUSED, out + err
    assert "ERROR" in out and "XDS-001" in out
    assert "FAIL" in out
    result = SuiteResult.from_json(json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8")))
    case = result.cases[0]
    assert case.outcome is Outcome.ERROR
    assert case.message
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "FAIL — 1 of 1 case did not pass" in html
    junit = etree.parse(str(tmp_path / "r" / "junit.xml")).getroot()
    assert junit.find("testsuite/testcase/error") is not None


def test_run_usage_errors(
    rsb_live_hub: LiveHub, gp_p12: str, rsb_pki: PkiDescription, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--report-dir", str(tmp_path / "r"), "--password", rsb_pki.password]

    code, _out, err = run(capsys, "conformance", "run", "--hub", rsb_live_hub.url, *common, "--only", "XDS-001")
    assert code == EXIT_USAGE
    assert "--identity FILE is required" in err

    identity = ["--identity", gp_p12]
    code, _out, err = run(capsys, "conformance", "run", "--hub", rsb_live_hub.url, *identity, *common, "--only", "X")
    assert code == EXIT_USAGE
    assert "matches no case" in err

    code, _out, err = run(
        capsys, "conformance", "run", "--hub", rsb_live_hub.url, "--identity", str(tmp_path / "missing.p12"), *common
    )
    assert code == EXIT_USAGE
    assert "missing.p12" in err

    code, _out, err = run(
        capsys, "conformance", "run", "--hub", rsb_live_hub.url, *identity, "--password", "wrong",
        "--report-dir", str(tmp_path / "r"), "--only", "XDS-001",
    )  # fmt: skip
    assert code == EXIT_USAGE
    assert "Traceback" not in err

    down = f"http://127.0.0.1:{_closed_port()}"
    code, out, err = run(capsys, "conformance", "run", "--hub", down, *identity, *common, "--only", "XDS-001", "--json")
    assert code == EXIT_USAGE
    problem = json.loads(out)["error"]
    assert problem["kind"] == "usage"
    assert f"the hub at {down} is unreachable" in problem["message"]

    code, _out, err = run(capsys, "conformance", "run", "--hub", down, *identity, *common, "--only", "XDS-001")
    assert code == EXIT_USAGE
    assert "unreachable" in err
    assert not (tmp_path / "r" / "report.html").exists(), "no report for a run that did not happen"

    code, _out, err = run(
        capsys, "conformance", "run", "--hub", rsb_live_hub.url, *identity, *common, "--ca", str(tmp_path / "no.pem")
    )
    assert code == EXIT_USAGE
    assert "no such file" in err


def test_without_a_pki_the_cases_needing_other_identities_are_skipped(
    rsb_live_hub: LiveHub, rsb_pki: PkiDescription, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lone = tmp_path / "gp.p12"  # the GP's file outside its PKI: no hospital to register the case's patient
    lone.write_bytes(rsb_pki.path(rsb_pki.identity("gp").file).read_bytes())
    code, out, err = run(
        capsys,
        "conformance", "run", "--hub", rsb_live_hub.url, "--identity", str(lone), "--password", rsb_pki.password,
        "--ca", str(rsb_pki.ca_cert), "--report-dir", str(tmp_path / "r"), "--only", "XDS-001", "--json",
    )  # fmt: skip
    assert code == EXIT_REFUSED, out + err
    summary = json.loads(out)
    assert summary["cases"][0]["outcome"] == "skipped"
    assert "hospital" in summary["cases"][0]["message"]

    code, out, err = run(
        capsys,
        "conformance", "run", "--hub", rsb_live_hub.url, "--identity", str(lone), "--password", rsb_pki.password,
        "--pki", str(rsb_pki.directory), "--report-dir", str(tmp_path / "r2"), "--only", "XDS-001", "--json",
    )  # fmt: skip
    assert code == EXIT_OK, out + err


# ------------------------------------------------------------------------------------------------- connector-report


def _connector_result(*outcomes: Outcome) -> SuiteResult:
    now = datetime.now(UTC)
    cases = [
        CaseResult(
            id=f"msg-{n}",
            title=f"ITI-41 from nihii:12345625004 #{n}",
            profile="XDS.b",
            actor="Document Source (the app)",
            reference="ITI TF-2b 3.41",
            outcome=outcome,
            message="" if outcome is Outcome.PASSED else "metadata: XDSRegistryMetadataError",
            steps=[StepResult(1, "schema", "valid against the XDS.b XSDs", outcome, "")],
        )
        for n, outcome in enumerate(outcomes, 1)
    ]
    return SuiteResult("connector validation", "http://hub", now, now, cases, kind="connector")


@pytest.fixture
def fake_fetch(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``fetch_connector_report`` replaced: it answers ``state["result"]`` (or raises ``state["raise"]``) and
    records its arguments."""
    from rsb_connector.conformance import connector

    state: dict[str, Any] = {"calls": []}

    def fetch(hub_url: str, *, since: datetime | None = None, verify: Any = True) -> SuiteResult:
        state["calls"].append((hub_url, since, verify))
        if "raise" in state:
            raise state["raise"]
        result: SuiteResult = state["result"]
        return result

    monkeypatch.setattr(connector, "fetch_connector_report", fetch)
    return state


def test_connector_report(
    rsb_live_hub: LiveHub,
    rsb_pki: PkiDescription,
    fake_fetch: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_fetch["result"] = _connector_result(Outcome.PASSED, Outcome.PASSED)
    code, out, err = run(
        capsys, "conformance", "connector-report", "--hub", rsb_live_hub.url, "--report-dir", str(tmp_path / "ok"),
        "--since", "2025-03-01T09:00:00Z", "--ca", str(rsb_pki.ca_cert),
    )  # fmt: skip
    assert code == EXIT_OK, out + err
    assert fake_fetch["calls"] == [
        (rsb_live_hub.url, datetime(2025, 3, 1, 9, tzinfo=UTC), str(rsb_pki.ca_cert)),
    ]
    assert "2 passed" in out and "of 2 messages" in out
    html = (tmp_path / "ok" / "report.html").read_text(encoding="utf-8")
    assert "Connector validation report" in html
    assert "PASS — every recorded message conforms (2 messages)" in html
    assert json.loads((tmp_path / "ok" / "report.json").read_text(encoding="utf-8"))["kind"] == "connector"

    fake_fetch["result"] = _connector_result(Outcome.PASSED, Outcome.FAILED)
    code, out, _err = run(
        capsys, "conformance", "connector-report", "--hub", rsb_live_hub.url, "--report-dir", str(tmp_path / "bad"),
        "--json",
    )  # fmt: skip
    assert code == EXIT_REFUSED
    assert json.loads(out)["summary"]["failed"] == 1
    assert fake_fetch["calls"][-1] == (rsb_live_hub.url, None, True)
    junit = etree.parse(str(tmp_path / "bad" / "junit.xml")).getroot()
    assert junit.get("failures") == "1"

    fake_fetch["raise"] = ConnectorValidationUnavailable("GET /conformance/report: 404")
    code, _out, err = run(
        capsys, "conformance", "connector-report", "--hub", rsb_live_hub.url, "--report-dir", str(tmp_path / "none")
    )
    assert code == EXIT_USAGE
    assert "has no connector validation" in err

    fake_fetch["raise"] = ResultFormatError("report: 'cases' is missing")
    code, _out, err = run(
        capsys, "conformance", "connector-report", "--hub", rsb_live_hub.url, "--report-dir", str(tmp_path / "none")
    )
    assert code == EXIT_USAGE
    assert "gave no connector report: report: 'cases' is missing" in err


def test_connector_report_usage_errors(
    fake_fetch: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_fetch["result"] = _connector_result(Outcome.PASSED)
    code, _out, err = run(
        capsys, "conformance", "connector-report", "--hub", "http://127.0.0.1:1", "--report-dir", str(tmp_path),
        "--since", "last tuesday",
    )  # fmt: skip
    assert code == EXIT_USAGE
    assert "not an ISO 8601 time" in err
    down = f"http://127.0.0.1:{_closed_port()}"
    code, _out, err = run(capsys, "conformance", "connector-report", "--hub", down, "--report-dir", str(tmp_path))
    assert code == EXIT_USAGE
    assert "unreachable" in err
    assert fake_fetch["calls"] == []


# ------------------------------------------------------------------------------------------------- TLS, password


@pytest.mark.slow
def test_run_against_a_mutual_tls_hub(
    rsb_pki: PkiDescription, gp_p12: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over https the PKI's CA is the TLS trust anchor and the identity the client certificate."""
    with LiveHub(tmp_path / "hub", pki=rsb_pki, tls=True) as hub:
        assert hub.url.startswith("https://")
        common = ["--identity", gp_p12, "--password", rsb_pki.password, "--only", "XDS-001", "--json"]
        code, out, err = run(
            capsys, "conformance", "run", "--hub", hub.url, *common, "--report-dir", str(tmp_path / "r")
        )
        assert code == EXIT_OK, out + err
        assert json.loads(out)["summary"]["passed"] == 1

        other_ca = _foreign_ca(tmp_path / "other-ca.pem")
        code, out, _err = run(
            capsys,
            "conformance",
            "run",
            "--hub",
            hub.url,
            *common,
            "--ca",
            str(other_ca),
            "--report-dir",
            str(tmp_path),
        )
        assert code == EXIT_USAGE
        assert "unreachable over TLS" in json.loads(out)["error"]["message"]


def test_the_password_comes_from_the_option_the_environment_or_a_terminal_prompt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rsb_connector.cli import conformance_commands as commands

    asked: list[str] = []
    monkeypatch.setattr(commands.getpass, "getpass", lambda prompt: asked.append(prompt) or "typed")
    args = types.SimpleNamespace(password=None, identity="me.p12")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    assert commands._password(args) is None  # no terminal: nobody to ask
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    assert commands._password(args) == "typed"
    assert asked == ["password of me.p12: "]
    monkeypatch.setenv("RSB_IDENTITY_PASSWORD", "from-identity-variable")
    assert commands._password(args) == "from-identity-variable"
    monkeypatch.setenv("RSB_PASSWORD", "from-variable")
    assert commands._password(args) == "from-variable"
    args.password = "given"
    assert commands._password(args) == "given"
    assert asked == ["password of me.p12: "]


def test_a_case_without_implementation_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch, gp_p12: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rsb_connector.cli import conformance_commands as commands

    monkeypatch.setattr(commands, "implementations", dict)
    down = f"http://127.0.0.1:{_closed_port()}"
    code, _out, err = run(
        capsys,
        "conformance",
        "run",
        "--hub",
        down,
        "--identity",
        gp_p12,
        "--report-dir",
        str(tmp_path),
        "--only",
        "XDS-001",
    )
    assert code == EXIT_USAGE
    assert "no implementation for XDS-001" in err


def test_connector_report_of_what_was_sent_to_a_live_hub(
    rsb_live_hub: LiveHub, gp_p12: str, rsb_pki: PkiDescription, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real thing: the hub grades what a conformant client sent (every message passes), then an unsigned
    request (its security check fails)."""
    since = (datetime.now(UTC) - timedelta(milliseconds=1)).isoformat()
    code, out, err = run(
        capsys, "conformance", "run", "--hub", rsb_live_hub.url, "--identity", gp_p12, "--password", rsb_pki.password,
        "--report-dir", str(tmp_path / "suite"), "--only", "XDS-001", "--json",
    )  # fmt: skip
    assert code == EXIT_OK, out + err
    code, out, err = run(
        capsys, "conformance", "connector-report", "--hub", rsb_live_hub.url, "--since", since,
        "--report-dir", str(tmp_path / "good"), "--json",
    )  # fmt: skip
    assert code == EXIT_OK, out + err
    summary = json.loads(out)
    assert summary["kind"] == "connector"
    assert summary["summary"]["total"] >= 3, "token, patient feed, consent, link, ITI-41, ITI-18, ITI-43"
    assert summary["summary"]["passed"] == summary["summary"]["total"]
    assert any(c["title"].startswith("ITI-41") for c in summary["cases"])
    html = (tmp_path / "good" / "report.html").read_text(encoding="utf-8")
    assert "Connector validation report" in html

    unsigned = httpx.post(
        f"{rsb_live_hub.url}/xds/registry",
        content=b"<not-soap/>",
        headers={"content-type": "application/soap+xml; charset=utf-8"},
        timeout=10,
    )
    assert unsigned.status_code >= 400
    code, out, err = run(
        capsys, "conformance", "connector-report", "--hub", rsb_live_hub.url, "--since", since,
        "--report-dir", str(tmp_path / "bad"),
    )  # fmt: skip
    assert code == EXIT_REFUSED, out + err
    assert "FAIL" in out
    junit = etree.parse(str(tmp_path / "bad" / "junit.xml")).getroot()
    assert int(junit.get("failures")) >= 1
    assert junit.get("tests") == str(summary["summary"]["total"] + 1)


@pytest.mark.slow
def test_connector_report_of_a_hub_without_connector_validation(
    rsb_pki: PkiDescription, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LiveHub(tmp_path / "hub", pki=rsb_pki, extra_args=["--no-connector-validation"]) as hub:
        code, _out, err = run(
            capsys, "conformance", "connector-report", "--hub", hub.url, "--report-dir", str(tmp_path / "r")
        )
    assert code == EXIT_USAGE
    assert f"the hub at {hub.url} has no connector validation" in err
    assert not (tmp_path / "r" / "report.html").exists()


def test_whether_the_hub_is_seeded_is_detected_through_patient1(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity], tmp_path: Path
) -> None:
    from rsb_connector.cli.conformance_commands import _seeded

    needs_seed = [Case("CON-999", "t", "consent", "a", "r", (Step("do", "expect"),), needs=("patient1", "seed"))]
    plain = [Case("XDS-999", "t", "XDS.b", "a", "r", (Step("do", "expect"),), needs=("author",))]
    auto, yes, no = (types.SimpleNamespace(seeded=v) for v in (None, True, False))
    seeded_env = environment(rsb_hub, rsb_pki, rsb_identity, tmp_path)
    assert _seeded(auto, needs_seed, seeded_env) == (
        True,
        "The hub holds the mock hub's seeded population (patient1's consent is on record).",
    )
    assert _seeded(auto, plain, seeded_env) == (False, ""), "nobody asks when no case needs it"

    bare = build_hub(tmp_path / "bare", seed=False, pki=rsb_pki)
    try:
        bare_env = environment(bare, rsb_pki, rsb_identity, tmp_path)
        seeded, note = _seeded(auto, needs_seed, bare_env)
        assert not seeded and "does not hold" in note
        assert _seeded(yes, needs_seed, bare_env) == (True, "")
    finally:
        bare.close()
    assert _seeded(no, needs_seed, seeded_env)[0] is False
    without_patient = environment(rsb_hub, rsb_pki, rsb_identity, tmp_path)
    without_patient.identities = {k: v for k, v in without_patient.identities.items() if k != "patient1"}
    seeded, note = _seeded(auto, needs_seed, without_patient)
    assert not seeded and "no patient1 identity" in note

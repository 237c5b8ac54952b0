"""``rsb hub serve --tls``: HTTPS with client-certificate authentication from the same PKI, over a real socket.

The hub process trusts the development CA for TLS client certificates and WS-Security signatures alike; the client
trusts the CA for the hub's certificate and signed answers, and presents its identity as client certificate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsb_connector.cli import EXIT_OK, main
from rsb_connector.client import VaultClient
from rsb_connector.errors import HubRefused, TransportError
from rsb_connector.security.pki import PkiDescription
from rsb_connector.testing import LiveHub

from .conftest import PATIENT


@pytest.fixture(scope="module")
def tls_hub(tmp_path_factory: pytest.TempPathFactory, rsb_pki: PkiDescription) -> Iterator[LiveHub]:
    hub = LiveHub(
        tmp_path_factory.mktemp("tls-hub"), seed=True, pki=rsb_pki, tls=True, extra_args=["--max-message-mb", "0.0625"]
    )
    with hub:
        yield hub


@pytest.mark.slow
def test_mutual_tls_round_trip(tls_hub: LiveHub, tmp_path: Path) -> None:
    assert tls_hub.url.startswith("https://")
    with tls_hub.client("gp") as vault:
        receipt = vault.publish(b"over TLS", patient=PATIENT, document_type="note", mime_type="text/plain")
        assert receipt.document.unique_id in {e.unique_id for e in vault.find(PATIENT)}
        assert vault.retrieve(receipt.document.unique_id).content == b"over TLS"
        assert vault.access_token().count(".") == 2


@pytest.mark.slow
def test_no_client_certificate_no_connection(tls_hub: LiveHub) -> None:
    gp = tls_hub.identity("gp")
    ca = str(tls_hub.pki.ca_cert)
    with VaultClient(tls_hub.url, identity=gp, trust=ca, verify=ca, retries=0) as vault, pytest.raises(TransportError):
        vault.find(PATIENT)


@pytest.mark.slow
def test_the_hub_certificate_must_chain_to_a_trusted_ca(tls_hub: LiveHub) -> None:
    gp = tls_hub.identity("gp")
    with VaultClient(tls_hub.url, identity=gp, cert=gp, retries=0) as vault, pytest.raises(TransportError):
        vault.find(PATIENT)  # the public CAs do not know the development CA


@pytest.mark.slow
def test_the_message_size_limit_from_the_command_line(tls_hub: LiveHub) -> None:
    with tls_hub.client("gp", mtom=False) as vault, pytest.raises(HubRefused) as refused:
        vault.publish(b"x" * 100_000, patient=PATIENT, document_type="note", mime_type="text/plain")
    assert "larger than 65536 bytes" in str(refused.value)


@pytest.mark.slow
def test_the_cli_over_mutual_tls(tls_hub: LiveHub, capsys: pytest.CaptureFixture[str]) -> None:
    pki = tls_hub.pki
    code = main(
        [
            "find", "--patient", PATIENT, "--hub", tls_hub.url, "--json",
            "--identity", str(pki.path(pki.identity("gp").file)), "--password", pki.password, "--ca", str(pki.ca_cert),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert isinstance(json.loads(out), list)

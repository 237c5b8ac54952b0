"""The examples run as documented, against a real hub process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rsb_connector.testing import LiveHub

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, hub: LiveHub | None = None) -> str:
    env = dict(os.environ)
    if hub is not None:
        gp = hub.pki.identity("gp")
        env.update(
            RSB_HUB_URL=hub.url,
            RSB_IDENTITY=str(hub.pki.path(gp.file)),
            RSB_IDENTITY_PASSWORD=gp.password,
            RSB_CA=str(hub.pki.ca_cert),
        )
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_core_walkthrough_explains_the_problems() -> None:
    out = _run("core_walkthrough.py")
    assert "ITI-41 rules: 0 problems" in out
    for code in ("XDSRegistryMetadataError", "XDSRepositoryMetadataError", "XDSMissingDocument"):
        assert code in out


def test_quickstart_publishes_finds_and_fetches_signed(rsb_live_hub: LiveHub) -> None:
    out = _run("quickstart.py", rsb_live_hub)
    assert "signing as  Dr Sophie Claes" in out
    assert "published" in out and "found" in out
    assert "identical to what was sent: True" in out

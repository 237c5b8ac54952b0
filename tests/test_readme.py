"""The README's quickstart runs as written, against a real hub (only the URL and the PKI folder are swapped)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from rsb_connector.testing import LiveHub

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quickstart_runs(rsb_live_hub: LiveHub, tmp_path: Path) -> None:
    snippet = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert snippet is not None, "README has no python snippet"
    assert rsb_live_hub.pki is not None
    code = snippet.group(1).replace("http://127.0.0.1:8080", rsb_live_hub.url)
    code = code.replace(".rsb-data/pki", str(rsb_live_hub.pki.directory))
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.7\n% a report\n%%EOF\n")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("bytes")

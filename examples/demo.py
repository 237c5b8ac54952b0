"""`make demo`: the whole story on a fresh machine, in a minute.

1. the core at work (identifiers, metadata from five arguments, validation) — no hub needed;
2. start the mock hub with its seeded population (a real process on a free port, fresh data dir);
3. run the quickstart against it: publish, find, fetch;
4. show how refusals read: local validation before sending, and the hub's own verdict;
5. stop the hub and say how to run it yourself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rsb_connector import HubRefused, MetadataError, VaultClient
from rsb_connector.testing import LiveHub

HERE = Path(__file__).parent


def chapter(title: str) -> None:
    print(f"\n\033[1m== {title} ==\033[0m")


def main() -> None:
    chapter("1. The core, no hub needed")
    subprocess.run([sys.executable, str(HERE / "core_walkthrough.py")], check=True)

    chapter("2. Starting the mock hub with its seeded population")
    with tempfile.TemporaryDirectory(prefix="rsb-demo-") as tmp, LiveHub(Path(tmp) / "data", seed=True) as hub:
        print(f"   hub at {hub.url} (data in {hub.data_dir}; who is who: {hub.data_dir / 'seed.json'})")

        chapter("3. Quickstart: publish, find, fetch")
        env = {**os.environ, "RSB_HUB_URL": hub.url}
        subprocess.run([sys.executable, str(HERE / "quickstart.py")], check=True, env=env)

        chapter("4. When the answer is no")
        with VaultClient(hub.url) as vault:
            try:
                vault.publish(
                    b"note",
                    patient="87041213797",
                    document_type="contactreport",
                    mime_type="text/plain",
                    creation_time="24/12/2024",
                )
            except (MetadataError, ValueError) as exc:
                print(f"   refused before sending: {exc}")
            try:
                vault.publish(b"note", patient="82121210976", document_type="note", mime_type="text/plain")
            except HubRefused as exc:
                for problem in exc.problems:
                    print(f"   the hub said {problem.code}: {problem.message}")

        chapter("5. Done")
        print("   The hub is stopping. Run your own with:   .venv/bin/rsb hub serve --seed")
        print("   Documentation:                            .venv/bin/mkdocs serve   (then http://127.0.0.1:8000)")


if __name__ == "__main__":
    main()

"""The wheel carries the conformance catalogue (``rsb_connector/conformance/catalogue/*.toml``) and ``py.typed``, and
the catalogue loads from an unpacked wheel: ``rsb conformance`` works after ``pip install``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from hatchling.builders.wheel import WheelBuilder

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "conformance" / "catalogue"

PROBE = """
import json, sys
from rsb_connector.conformance.catalogue import catalogue_dir, load_catalogue
import rsb_connector
print(json.dumps({
    "package": rsb_connector.__file__,
    "catalogue": str(catalogue_dir()),
    "ids": [case.id for case in load_catalogue()],
}))
"""


def test_the_wheel_ships_the_catalogue(tmp_path: Path) -> None:
    wheel = Path(next(WheelBuilder(str(ROOT)).build(directory=str(tmp_path / "dist"), versions=["standard"])))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        expected = {f"rsb_connector/conformance/catalogue/{p.name}" for p in CATALOGUE.glob("*.toml")}
        assert expected, "the source tree has catalogue files"
        assert expected <= names
        assert "rsb_connector/py.typed" in names
        assert not any(n.startswith("conformance/") for n in names), "the catalogue is inside the package only"
        for name in expected:
            source = CATALOGUE / Path(name).name
            assert archive.read(name) == source.read_bytes()
        archive.extractall(tmp_path / "unpacked")

    unpacked = tmp_path / "unpacked"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(unpacked)  # ahead of the editable install's source tree
    probe = subprocess.run(  # a fresh interpreter: this one has already imported the source tree's package
        [sys.executable, "-c", PROBE], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert Path(found["package"]).is_relative_to(unpacked)
    assert Path(found["catalogue"]) == unpacked / "rsb_connector" / "conformance" / "catalogue"
    from rsb_connector.conformance import load_catalogue

    assert found["ids"] == [c.id for c in load_catalogue(CATALOGUE)]

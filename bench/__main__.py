"""Run every benchmark in turn: ``python -m bench`` (``make bench``). Each prints its own numbers and ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = ["bench_find.py", "bench_transfer.py", "bench_load.py", "bench_signed.py", "bench_mhd.py"]


def main() -> int:
    here = Path(__file__).parent
    failed = 0
    for name in BENCHES:
        path = here / name
        if not path.exists():
            continue
        print(f"\n=== {name} ===", flush=True)
        failed += subprocess.call([sys.executable, str(path)]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

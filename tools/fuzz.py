"""The long fuzz run: the in-suite fuzz tests (tests/test_fuzz_*.py) with many more examples each.

    make fuzz                                   # 1000 examples per fuzz test (about 9,000 requests)
    .venv/bin/python tools/fuzz.py --examples 3000

Prints one line per fuzz target and the total number of requests sent to the app, by status. Exits
non-zero when any test failed (a 5xx, an invalid CDS Hooks response, or a wrongly accepted token)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ_TESTS = ["tests/test_fuzz_hooks.py", "tests/test_fuzz_openapi.py", "tests/test_fuzz_auth.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="examples per fuzz test")
    parser.add_argument(
        "--report", type=Path, default=ROOT / "test-artifacts" / "fuzz-report.jsonl"
    )
    args = parser.parse_args()
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.unlink(missing_ok=True)
    env = {**os.environ, "FUZZ_EXAMPLES": str(args.examples), "FUZZ_REPORT": str(args.report)}
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", *FUZZ_TESTS, "-p", "no:logging", "-q",
               "--hypothesis-show-statistics"]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    elapsed = time.monotonic() - started

    total: Counter[str] = Counter()
    requests = 0
    lines = args.report.read_text(encoding="utf-8").splitlines() if args.report.exists() else []
    for line in lines:
        entry = json.loads(line)
        requests += entry["requests"]
        total.update({str(k): v for k, v in entry["statuses"].items()})
        print(f"[fuzz] {entry['fuzz']}: {entry['requests']} requests, statuses {entry['statuses']}")
    outcome = "passed" if result.returncode == 0 else f"FAILED (pytest exit {result.returncode})"
    print(
        f"[fuzz] total: {requests} requests in {elapsed:.0f} s, statuses {dict(total)}: {outcome}"
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())

"""Stopping what a test started: SIGTERM, then SIGKILL if it has not exited in time."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str], timeout_s: float = 10) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)

"""What tests that start processes on loopback share: a free port, waiting until something listens
on it, and stopping the process (SIGTERM, then SIGKILL if it has not exited in time)."""

from __future__ import annotations

import socket
import subprocess
import time

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, seconds: float = 30.0) -> None:
    """Return once something accepts connections on the port; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {seconds:g} s")


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str], timeout_s: float = 10) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)

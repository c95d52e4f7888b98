"""A real `meshgate serve` process over the demo mesh, watched from outside: alive, RSS, log.

The fuzz must hit what operators run, so the server is the CLI in its own process (a crash
there is a crash, not a Python exception in the test), with its log in a file the driver
reads to match client-facing error ids. Handles live seconds, not minutes, so expired tickets
and prepared statements can be tried within a run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from pyarrow import flight

from meshgate.demo.generate import prepare_demo

HANDLE_TTL_SECONDS = 2
QUERY_TIMEOUT_SECONDS = 5
SERVER_CONFIG = f"""\
# Written by tests/fuzz: short-lived handles, so expired ones can be tried within a run.
server:
  ticket_ttl_seconds: {HANDLE_TTL_SECONDS}
  prepared_statement_ttl_seconds: {HANDLE_TTL_SECONDS}
  query_timeout_seconds: {QUERY_TIMEOUT_SECONDS}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServedDemo:
    """`python -m meshgate.cli serve` over a fresh copy of the demo mesh in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.config_dir = prepare_demo(directory / "mesh")
        (self.config_dir / "server.yaml").write_text(SERVER_CONFIG, encoding="utf-8")
        self.log_path = directory / "server.log"
        self.port = free_port()
        self.uri = f"grpc://127.0.0.1:{self.port}"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "meshgate.cli", "serve", "--config", str(self.config_dir),
             "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ),
        )  # fmt: skip
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> ServedDemo:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _wait_until_serving(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"meshgate serve exited early:\n{self.log_text()}")
            client = flight.FlightClient(self.uri)
            try:
                client.authenticate_basic_token("admin", "admin")
                return
            except flight.FlightError:
                time.sleep(0.2)
            finally:
                client.close()
        raise RuntimeError(f"meshgate serve did not answer on {self.uri} within {timeout} s")

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_bytes(self) -> int:
        """The server's resident set size now (VmRSS of /proc/<pid>/status)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status (is this Linux?)")

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

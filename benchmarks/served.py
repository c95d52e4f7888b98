"""`meshgate serve` in its own process, as users run it, with its audit log read as it comes.

The server writes one JSON line per query to stderr (logger `meshgate.audit`): who ran it and,
per fragment, the source and the rows it sent. Benchmarks read those lines to count what left
each source. Reading stderr continuously also keeps the pipe from filling up, which would
otherwise stall the server once a few dozen queries have been logged.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

AUDIT_MARKER = " meshgate.audit: "
START_SECONDS = 180


class AuditLog:
    """The audit records a served process has written so far, in order."""

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._other: deque[str] = deque(maxlen=50)  # for error messages
        self._changed = threading.Condition()

    def follow(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            _, marker, payload = line.partition(AUDIT_MARKER)
            with self._changed:
                if marker:
                    self._records.append(json.loads(payload))
                else:
                    self._other.append(line)
                self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._records)

    def record_after(self, index: int, user: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first record of `user` at position `index` or later, waiting for it to appear.

        The server writes a query's line once its stream is closed, which may be just after
        the client has read the last batch.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for record in self._records[index:]:
                    if record.get("user") == user:
                        return record
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"no audit line for {user!r} within {timeout:.0f}s")
                self._changed.wait(left)

    def other_lines(self) -> str:
        with self._changed:
            return "\n".join(self._other)


@dataclass(frozen=True)
class ServedMeshgate:
    port: int
    audit: AuditLog
    pid: int  # of the server process, whose memory benchmarks/load.py samples

    @property
    def uri(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def meshgate_server(directory: Path, port: int | None = None) -> Iterator[ServedMeshgate]:
    """Start `meshgate serve --config directory` on `port` (default: a free one); stop it on
    exit."""
    port = free_port() if port is None else port
    process = subprocess.Popen(
        [sys.executable, "-m", "meshgate.cli", "serve", "--config", str(directory),
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy(),
    )  # fmt: skip
    assert process.stderr is not None
    audit = AuditLog()
    reader = threading.Thread(target=audit.follow, args=(process.stderr,), daemon=True)
    reader.start()
    try:
        # Start-up (imports, connectors, metadata) took over 60 s on the shared 2-core machine
        # at load average 40; a server that is merely slow must not end the benchmark.
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                reader.join(timeout=5)
                raise SystemExit(f"meshgate serve exited:\n{audit.other_lines()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"meshgate serve did not listen within {START_SECONDS} s")
            time.sleep(0.1)
        yield ServedMeshgate(port, audit, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=5)

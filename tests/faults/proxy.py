"""A TCP proxy a test controls, put between meshgate and a real PostgreSQL to break the link.

The shared PostgreSQL must never be stopped, so faults are made here instead: the proxy can
refuse connections (its port closed, every open connection dropped, as when the server is
down), black-hole them (accept, then never answer), slow every chunk down, cut each
connection after a number of bytes sent to meshgate (a source dying mid-stream), and come
back on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

_CHUNK = 65536


@dataclass
class _Link:
    """One client connection and its upstream; `remaining` bytes may still go downstream."""

    client: socket.socket
    upstream: socket.socket | None
    remaining: int | None = None
    closed: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class FaultProxy:
    """Forwards 127.0.0.1:`port` to `upstream`; each fault method changes what it does now."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self.delay = 0.0  # seconds each forwarded chunk waits
        self._cut_after: int | None = None
        self._blackhole = False
        self._listener: socket.socket | None = None
        self.port = 0
        self.resume()

    # --- faults ---------------------------------------------------------------------------
    def refuse(self) -> None:
        """The server is down: the port refuses connections and open ones are dropped."""
        with self._lock:
            listener, self._listener = self._listener, None
            links, self._links = self._links, []
        if listener is not None:
            with contextlib.suppress(OSError):  # shutdown wakes the thread in accept()
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for link in links:
            link.close()

    def resume(self) -> None:
        """The server is back on the same port; every fault is cleared."""
        with self._lock:
            self.delay = 0.0
            self._cut_after = None
            self._blackhole = False
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self.port = listener.getsockname()[1]
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut_after(self, nbytes: int) -> None:
        """Every connection, open or new, dies after `nbytes` more bytes towards meshgate."""
        with self._lock:
            self._cut_after = nbytes
            for link in self._links:
                link.remaining = nbytes

    def blackhole(self) -> None:
        """New connections are accepted and never answered (a host that stopped responding)."""
        with self._lock:
            self._blackhole = True

    def connections(self) -> int:
        """Connections open through the proxy now."""
        with self._lock:
            return sum(not link.closed.is_set() for link in self._links)

    def close(self) -> None:
        self.refuse()

    # --- forwarding -----------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: refusing
            with self._lock:
                blackhole = self._blackhole
            upstream = None if blackhole else socket.create_connection(self._upstream)
            link = _Link(client, upstream)
            with self._lock:
                link.remaining = self._cut_after
                self._links.append(link)
            if upstream is None:
                continue  # held open, never read
            threading.Thread(target=self._pump, args=(link, client, upstream, False),
                             daemon=True).start()  # fmt: skip
            threading.Thread(target=self._pump, args=(link, upstream, client, True),
                             daemon=True).start()  # fmt: skip

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket,
              downstream: bool) -> None:  # fmt: skip
        try:
            while not link.closed.is_set():
                data = source.recv(_CHUNK)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)
                if downstream and link.remaining is not None:
                    if len(data) >= link.remaining:
                        target.sendall(data[: link.remaining])
                        break
                    link.remaining -= len(data)
                target.sendall(data)
        except OSError:
            pass
        link.close()

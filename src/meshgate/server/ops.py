"""The operators' HTTP port (`server.http_port`): `/healthz`, `/readyz` and `/metrics`.

Plain HTTP from the standard library (wsgiref, one thread per request), apart from the Flight
port so that an orchestrator's probes and a Prometheus scrape never queue behind queries.
`/readyz` is for operators: it names each source by its configured name and says why one is
down (the message a caller would get, never its address or credentials; the log has those).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, TimeoutError, wait
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST

from meshgate.errors import MeshgateError
from meshgate.service import QueryService

log = logging.getLogger(__name__)

# A source that has not answered its check within this many seconds counts as down.
CHECK_TIMEOUT_SECONDS = 5.0

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApplication = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
CATALOG = "/catalog"  # where the catalog web page is mounted


@dataclass(frozen=True)
class SourceStatus:
    """One source's answer to a readiness check."""

    kind: str
    up: bool
    error: str | None = None

    def json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"kind": self.kind, "status": "up" if self.up else "down"}
        if self.error is not None:
            answer["error"] = self.error
        return answer


def _checked(check: Callable[[], None]) -> str | None:
    """None if `check()` passes, else what went wrong in words a caller could be shown."""
    try:
        check()
    except MeshgateError as exc:
        return exc.message
    except Exception as exc:
        return f"the check failed unexpectedly ({type(exc).__name__})"
    return None


class Readiness:
    """Checks every configured source, concurrently and with a time limit, on each probe;
    logs a source going down (with the details) and coming back."""

    def __init__(self, service: QueryService) -> None:
        self._service = service
        self._down: set[str] = set()
        self._lock = threading.Lock()
        self.draining = False  # set on shutdown: not ready, so balancers stop sending

    def sources(self) -> dict[str, SourceStatus]:
        connectors = dict(self._service.connectors)
        kinds = {name: source.kind for name, source in self._service.definition.sources.items()}
        workers = ThreadPoolExecutor(max_workers=max(1, len(connectors)),
                                     thread_name_prefix="meshgate-readyz")  # fmt: skip
        futures = {name: workers.submit(_checked, c.check) for name, c in connectors.items()}
        wait(futures.values(), timeout=CHECK_TIMEOUT_SECONDS)
        workers.shutdown(wait=False)  # a hung check must not hold the probe
        statuses: dict[str, SourceStatus] = {}
        for name, future in sorted(futures.items()):
            try:
                error = future.result(timeout=0)
            except TimeoutError:
                error = f"no answer within {CHECK_TIMEOUT_SECONDS:.0f}s"
            statuses[name] = SourceStatus(kinds.get(name, "?"), error is None, error)
        self._log_changes(statuses)
        return statuses

    def _log_changes(self, statuses: dict[str, SourceStatus]) -> None:
        down = {name for name, status in statuses.items() if not status.up}
        with self._lock:
            went_down, came_back = down - self._down, self._down - down
            self._down = down
        for name in sorted(went_down):
            log.warning("readiness: source %r is down: %s", name, statuses[name].error)
        for name in sorted(came_back):
            log.info("readiness: source %r is up again", name)

    def report(self) -> tuple[bool, dict[str, Any]]:
        """Whether the server is ready, and the JSON body that says why."""
        sources = self.sources()
        ready = not self.draining and all(s.up for s in sources.values())
        body: dict[str, Any] = {
            "status": "ready" if ready else "not ready",
            "mesh": self._service.definition.mesh.name,
            "config": {"loaded": True, "generation": self._service.generation},
            "sources": {name: status.json() for name, status in sources.items()},
        }
        if self.draining:
            body["shutting_down"] = True
        return ready, body


class _QuietHandler(WSGIRequestHandler):
    """Requests logged at debug level on meshgate's logger, not printed to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class OpsEndpoint:
    """The HTTP server for probes and metrics, on a daemon thread of its own."""

    def __init__(self, service: QueryService, host: str, port: int,
                 catalog: WSGIApplication | None = None) -> None:
        self._service = service
        self._catalog = catalog  # the catalog web page, served under /catalog
        self.readiness = Readiness(service)
        try:
            self._server = make_server(host, port, self.application,
                                       server_class=_ThreadingWSGIServer,
                                       handler_class=_QuietHandler)  # fmt: skip
        except OSError as exc:
            raise MeshgateError(
                f"the operations HTTP port {host}:{port} (server.http_port) cannot be opened: "
                f"{exc.strerror or exc}; if it is taken, choose another, or 0 for any free port"
            ) from None
        self.host = host
        self.port: int = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="meshgate-ops",
                                        daemon=True)  # fmt: skip

    def start(self) -> OpsEndpoint:
        self._thread.start()
        log.info("operations endpoint on http://%s:%d (/healthz, /readyz, /metrics%s)",
                 self.host, self.port, ", /catalog/" if self._catalog else "")  # fmt: skip
        return self

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def application(self, environ: dict[str, Any],
                    start_response: StartResponse) -> Iterable[bytes]:  # fmt: skip
        """The WSGI app: three GET routes."""
        path = environ.get("PATH_INFO", "")
        if self._catalog is not None and (path == CATALOG or path.startswith(CATALOG + "/")):
            inner = dict(environ, SCRIPT_NAME=CATALOG, PATH_INFO=path[len(CATALOG):] or "/")
            answer: Iterable[bytes] = self._catalog(inner, start_response)
            return answer
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed", b"GET only\n")
        if path == "/healthz":
            return _answer(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            ready, body = self.readiness.report()
            return _answer(start_response, "200 OK" if ready else "503 Service Unavailable",
                           json.dumps(body, indent=2).encode() + b"\n", "application/json")
        if path == "/metrics":
            return _answer(start_response, "200 OK", self._service.metrics.text(),
                           CONTENT_TYPE_LATEST)  # fmt: skip
        return _answer(start_response, "404 Not Found",
                       b"not found: this port serves /healthz, /readyz and /metrics\n")


def _answer(start_response: StartResponse, status: str, body: bytes,
            content_type: str = "text/plain; charset=utf-8") -> list[bytes]:  # fmt: skip
    start_response(status, [("Content-Type", content_type),
                            ("Content-Length", str(len(body)))])  # fmt: skip
    return [body]

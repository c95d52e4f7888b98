"""What emitting OpenLineage run events costs a query: the demo mesh, the same query run
`--runs` times with `server.openlineage` off, with the file transport, and with the HTTP
transport pointed at a port nobody listens on; median and 95th percentile per setting.

    python -m benchmarks.openlineage_overhead --runs 200
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

from meshgate.demo.generate import prepare_demo
from meshgate.service import QueryService

QUERY = "SELECT region, count(*) AS n FROM hr.employees GROUP BY region"


def _dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    root = Path(tempfile.mkdtemp(prefix="meshgate-ol-"))
    settings = {
        "off": "",
        "file": "server:\n  openlineage: {transport: file, path: lineage/events.jsonl}\n",
        "http, dead endpoint": f"server:\n  openlineage: {{transport: http, url: '{_dead_url()}'"
        ", timeout_seconds: 0.5}\n",
    }
    services = {}
    for number, (name, server_yaml) in enumerate(settings.items()):
        demo = prepare_demo(root / str(number))
        (demo / "server.yaml").write_text(server_yaml, encoding="utf-8")
        services[name] = QueryService.from_config(demo)
    seconds: dict[str, list[float]] = {name: [] for name in settings}
    try:
        for service in services.values():
            service.query(QUERY, service.principal("analyst"))  # plan cached, files open
        for _ in range(runs):  # interleaved, so the machine's load falls on every setting
            for name, service in services.items():
                started = time.perf_counter()
                service.query(QUERY, service.principal("analyst"))
                seconds[name].append(time.perf_counter() - started)
    finally:
        for service in services.values():
            service.close()
    print(f"{'setting':<20} {'median ms':>10} {'p95 ms':>10}")
    for name, timings in seconds.items():
        timings.sort()
        p95 = timings[int(len(timings) * 0.95) - 1] * 1000
        print(f"{name:<20} {statistics.median(timings) * 1000:>10.2f} {p95:>10.2f}")


if __name__ == "__main__":
    main()

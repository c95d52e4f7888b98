"""A local multi-process Spark cluster for the distributed residual engine (tests, benchmarks).

    python -m benchmarks.spark_cluster start [--directory /tmp/meshgate-spark] [--workers 2]
    python -m benchmarks.spark_cluster stop  [--directory /tmp/meshgate-spark]

Everything comes from the pip-installed pyspark (`pyspark[connect]`, its bundled jars and
`bin/spark-class`; Java 17 on the PATH): a standalone Master, `workers` Workers (one core
each) and the Spark Connect server, each its own JVM started in its own process group, with
small heaps so the cluster fits a shared laptop-sized machine. `start` returns once every
worker has registered and the Connect port answers, prints the `remote` and the staging
directory meshgate's `server.residual.spark` needs, and records the processes in
`<directory>/cluster.json`; `stop` ends exactly those processes. Logs are under
`<directory>/logs`. Meshgate and the workers share the machine, so the staging directory
(`<directory>/staging`) is seen by both at the same path, as the engine requires.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_DIRECTORY = Path("/tmp/meshgate-spark")
STATE_FILE = "cluster.json"
CONNECT_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


@dataclass
class SparkCluster:
    """A running cluster's addresses and the process ids `stop` ends."""

    directory: Path
    master_port: int
    master_ui_port: int
    connect_port: int
    driver_ui_port: int = 0  # the Connect server's application UI and REST API (its jobs)
    pids: list[int] = field(default_factory=list)

    @property
    def remote(self) -> str:
        """What `server.residual.spark.remote` is set to."""
        return f"sc://127.0.0.1:{self.connect_port}"

    @property
    def staging_directory(self) -> Path:
        return self.directory / "staging"

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"


def spark_home() -> Path:
    """The pip-installed pyspark package: its `bin/`, `jars/` make a Spark distribution."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(directory: Path = DEFAULT_DIRECTORY, workers: int = 2,
          worker_memory: str = "768m", executor_memory: str = "512m",
          driver_memory: str = "768m", shuffle_partitions: int = 4,
          timeout: float = 180.0) -> SparkCluster:  # fmt: skip
    """Start Master, Workers and Connect server; refuse if a cluster runs from `directory`."""
    directory = directory.resolve()
    state = directory / STATE_FILE
    if state.exists():
        running = _load(state)
        if any(_alive(pid) for pid in running.pids):
            raise RuntimeError(
                f"a Spark cluster started from {directory} is still running; stop it first "
                f"(python -m benchmarks.spark_cluster stop --directory {directory})"
            )
        state.unlink()
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    (directory / "staging").mkdir(parents=True, exist_ok=True)
    cluster = SparkCluster(directory, free_port(), free_port(), free_port(), free_port())
    try:
        cluster.pids.append(_spawn(cluster, "master", [
            "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
            "--port", str(cluster.master_port), "--webui-port", str(cluster.master_ui_port)]))
        _save(cluster)
        for number in range(workers):
            work = directory / f"worker-{number}"
            work.mkdir(exist_ok=True)
            cluster.pids.append(_spawn(cluster, f"worker-{number}", [
                "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                "--cores", "1", "--memory", worker_memory, "--work-dir", str(work),
                "--webui-port", str(free_port()), cluster.master_url]))
            _save(cluster)
        _wait_for_workers(cluster, workers, timeout)
        settings = {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(cluster.connect_port),
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.executor.memory": executor_memory,
            "spark.executor.cores": "1",
            "spark.cores.max": str(workers),
            "spark.sql.shuffle.partitions": str(shuffle_partitions),
            "spark.default.parallelism": str(shuffle_partitions),
            "spark.ui.port": str(cluster.driver_ui_port),
            "spark.ui.retainedJobs": "200",
            "spark.sql.session.timeZone": "UTC",
        }
        submit = ["org.apache.spark.deploy.SparkSubmit", "--master", cluster.master_url,
                  "--class", CONNECT_CLASS, "--name", "meshgate residual",
                  "--driver-memory", driver_memory]  # fmt: skip
        for key, value in settings.items():
            submit += ["--conf", f"{key}={value}"]
        cluster.pids.append(_spawn(cluster, "connect", [*submit, "spark-internal"],
                                   {"SPARK_DRIVER_MEMORY": driver_memory}))
        _save(cluster)
        _wait_for_port(cluster, timeout)
    except BaseException:
        stop(directory)
        raise
    return cluster


def stop(directory: Path = DEFAULT_DIRECTORY, grace: float = 20.0) -> None:
    """End the processes `start` recorded in `directory` (their process groups), and nothing
    else; the staging directory's leftovers go with them."""
    state = directory.resolve() / STATE_FILE
    if not state.exists():
        return
    cluster = _load(state)
    for pid in reversed(cluster.pids):  # the Connect server first, the Master last
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(pid) for pid in cluster.pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in cluster.pids:
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
    state.unlink()


def attach(directory: Path) -> SparkCluster:
    """The cluster `start` (e.g. `python -m benchmarks.spark_cluster start`) runs from
    `directory`; refused if it is not running."""
    state = directory.resolve() / STATE_FILE
    if not state.exists():
        raise RuntimeError(f"no Spark cluster was started from {directory}")
    cluster = _load(state)
    if not all(_alive(pid) for pid in cluster.pids):
        raise RuntimeError(f"the Spark cluster started from {directory} is not running whole")
    return cluster


@contextmanager
def running_cluster(directory: Path, workers: int = 2,
                    shuffle_partitions: int = 4) -> Iterator[SparkCluster]:
    """A cluster for the body's duration (the tests' session fixture)."""
    cluster = start(directory, workers, shuffle_partitions=shuffle_partitions)
    try:
        yield cluster
    finally:
        stop(directory)


def _spawn(cluster: SparkCluster, name: str, arguments: Sequence[str],
           memory: dict[str, str] | None = None) -> int:
    """One JVM through `spark-class`, in its own process group, logging to logs/<name>.log;
    `memory` sets the driver's heap (a daemon's is SPARK_DAEMON_MEMORY, small)."""
    home = spark_home()
    environment = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        **(memory or {"SPARK_DAEMON_MEMORY": "256m"}),
        "SPARK_LOG_DIR": str(cluster.directory / "logs"),
        "SPARK_NO_DAEMONIZE": "1",
        "PYSPARK_PYTHON": sys.executable,
    }
    log = (cluster.directory / "logs" / f"{name}.log").open("ab")
    with log:
        process = subprocess.Popen(  # our own Spark distribution's launcher
            [str(home / "bin" / "spark-class"), *arguments],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=environment, cwd=cluster.directory, start_new_session=True,
        )  # fmt: skip
    return process.pid


def _wait_for_workers(cluster: SparkCluster, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{cluster.master_ui_port}/json/"
    alive = 0
    while time.monotonic() < deadline:
        _check_running(cluster)
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # the Master, on localhost
                alive = int(json.load(answer).get("aliveworkers", 0))
        except (OSError, ValueError):
            alive = 0
        if alive >= count:
            return
        time.sleep(0.5)
    raise RuntimeError(f"only {alive} of {count} Spark workers registered within {timeout:.0f} "
                       f"s; see {cluster.directory / 'logs'}")  # fmt: skip


def _wait_for_port(cluster: SparkCluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_running(cluster)
        try:
            with socket.create_connection(("127.0.0.1", cluster.connect_port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the Spark Connect server did not listen on {cluster.remote} within "
                       f"{timeout:.0f} s; see {cluster.directory / 'logs' / 'connect.log'}")


def _check_running(cluster: SparkCluster) -> None:
    for pid in cluster.pids:
        if not _alive(pid):
            raise RuntimeError(f"a Spark process ({pid}) exited at start; see "
                               f"{cluster.directory / 'logs'}")  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # reaps our own child if it ended
        if finished:
            return False
    except ChildProcessError:
        pass  # started by another process (`start` run from the command line)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[-1].split()[0] == "Z"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """`sig` to the process group `pid` leads (each JVM was started as a group leader)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _save(cluster: SparkCluster) -> None:
    data = {**asdict(cluster), "directory": str(cluster.directory)}
    (cluster.directory / STATE_FILE).write_text(json.dumps(data))


def _load(state: Path) -> SparkCluster:
    data = json.loads(state.read_text())
    return SparkCluster(Path(data["directory"]), data["master_port"], data["master_ui_port"],
                        data["connect_port"], data.get("driver_ui_port", 0),
                        list(data["pids"]))  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spark_cluster",
                                     description=(__doc__ or "").split("\n\n")[0])  # fmt: skip
    parser.add_argument("command", choices=("start", "stop"))
    parser.add_argument("--directory", type=Path, default=DEFAULT_DIRECTORY,
                        help="logs, staging directory and the record of the processes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="768m")
    parser.add_argument("--executor-memory", default="512m")
    parser.add_argument("--driver-memory", default="768m")
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    arguments = parser.parse_args(argv)
    if arguments.command == "stop":
        stop(arguments.directory)
        return 0
    cluster = start(arguments.directory, arguments.workers, arguments.worker_memory,
                    arguments.executor_memory, arguments.driver_memory,
                    arguments.shuffle_partitions)  # fmt: skip
    print(f"remote: {cluster.remote}")
    print(f"staging_directory: {cluster.staging_directory}")
    print(f"master: {cluster.master_url} (web UI http://127.0.0.1:{cluster.master_ui_port})")
    print(f"jobs: http://127.0.0.1:{cluster.driver_ui_port} (the Connect server's application)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

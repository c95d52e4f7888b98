"""Background work of queries runs on threads that wait for the next task when done."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from meshgate.spi import threads
from meshgate.spi.threads import idle_threads, start_task


def _wait_until(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_a_task_after_another_runs_on_the_thread_the_first_left_idle() -> None:
    seen: list[int] = []
    first = start_task(lambda: seen.append(threading.get_ident()), name="first")
    first.join(5)
    _wait_until(lambda: idle_threads() > 0)
    second = start_task(lambda: seen.append(threading.get_ident()), name="second")
    second.join(5)
    assert not first.is_alive()
    assert not second.is_alive()
    assert seen[0] == seen[1]


def test_tasks_that_wait_for_each_other_all_get_a_thread() -> None:
    # A load reads a prefetch that itself runs as a task: no bound may starve either.
    count = 40
    release = threading.Event()
    arrived = threading.Barrier(count + 1)

    def waiting() -> None:
        arrived.wait(10)
        release.wait(10)

    tasks = [start_task(waiting, name=f"waiting-{i}") for i in range(count)]
    arrived.wait(10)  # every task runs at once, or this times out
    assert all(task.is_alive() for task in tasks)
    release.set()
    for task in tasks:
        task.join(5)
    assert not any(task.is_alive() for task in tasks)


def test_the_thread_is_named_after_its_task_while_it_runs() -> None:
    names: list[str] = []
    start_task(lambda: names.append(threading.current_thread().name), name="fragment-x").join(5)
    start_task(lambda: names.append(threading.current_thread().name), name="load-y").join(5)
    assert names == ["fragment-x", "load-y"]


def test_a_failing_task_is_logged_and_its_thread_serves_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def failing() -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="meshgate.spi.threads"):
        task = start_task(failing, name="failing")
        task.join(5)
    assert not task.is_alive()
    assert any("failing" in r.getMessage() and r.exc_info for r in caplog.records)
    done = threading.Event()
    start_task(done.set, name="after").join(5)
    assert done.is_set()


def test_an_idle_thread_ends_after_the_idle_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "IDLE_SECONDS", 0.05)
    ident: list[int] = []
    start_task(lambda: ident.append(threading.get_ident()), name="short").join(5)
    _wait_until(lambda: not any(t.ident == ident[0] for t in threading.enumerate()))


def test_join_with_a_timeout_returns_while_the_task_still_runs() -> None:
    release = threading.Event()
    task = start_task(release.wait, 10, name="slow")
    started = time.monotonic()
    task.join(0.05)
    assert task.is_alive()
    assert time.monotonic() - started < 2
    release.set()
    task.join(5)
    assert not task.is_alive()


def test_a_forked_child_runs_its_tasks_on_threads_of_its_own() -> None:
    start_task(lambda: None, name="before-fork").join(5)
    _wait_until(lambda: idle_threads() > 0)
    pid = os.fork()
    if pid == 0:  # the child: the parent's idle thread is not here
        done = threading.Event()
        start_task(done.set, name="in-child")
        os._exit(0 if done.wait(5) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

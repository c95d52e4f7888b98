"""The served process gives back what a sign-in borrows (scrypt's 16 MB working area), and
keeps what start-up made out of the garbage collector's walks, letting it go after a reload."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyarrow import flight

from meshgate.server.memory import YOUNG_GENERATION_THRESHOLD, collect_garbage_less_often
from tests.fuzz.served import ServedDemo

SIGN_INS = 30


def test_sign_ins_do_not_grow_the_server(tmp_path: Path) -> None:
    """Found by tests/fuzz: each password sign-in kept ~1 MB of the server's RSS."""
    with ServedDemo(tmp_path) as served:
        client = flight.connect(served.uri)
        try:
            for _ in range(3):
                client.authenticate_basic_token("partner", "partner")
            before = served.rss_bytes()
            for _ in range(SIGN_INS):
                client.authenticate_basic_token("partner", "partner")
            grown = served.rss_bytes() - before
        finally:
            client.close()
    assert grown < 10 * 1024 * 1024, f"{SIGN_INS} sign-ins grew the server {grown} bytes"


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class Held:
    """A cycle, as sqlglot's nodes are (a child points at its parent)."""

    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("restored")
def test_start_up_objects_are_frozen_and_released_at_the_next_call() -> None:
    held = Held()
    alive = weakref.ref(held)
    collect_garbage_less_often()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD
    del held
    gc.collect()
    assert alive() is not None  # frozen: a full collection leaves it alone
    collect_garbage_less_often()  # as after a reload
    assert alive() is None

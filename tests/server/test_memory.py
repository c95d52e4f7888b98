"""The server's garbage collection settings: what start-up made is frozen out of the
collector's walks, and a reload lets the previous definition's objects go."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from meshgate.server.memory import YOUNG_GENERATION_THRESHOLD, collect_garbage_less_often


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

"""The merge's spill folder: one per server process under the state directory, removed at
shutdown, and at the next start when its process died without removing it.

A killed server used to leave gigabytes of DuckDB spill files in its working directory. Now
each process creates `<state>/spill-<pid>-<random>/` and holds an exclusive `flock` on a file
in it for its lifetime; any process starting on the same state directory removes every spill
folder whose lock it can take (the kernel drops a dead process's locks, so a live server's
folder is never touched, even if its pid was reused).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_PREFIX = "spill-"
_LOCK = ".owner.lock"


class SpillDirectory:
    """This process's spill folder; `path` exists from construction until `remove`."""

    def __init__(self, state_directory: Path) -> None:
        state_directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        remove_stale(state_directory)
        self.path = state_directory / f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir(mode=0o700)
        self._lock: IO[bytes] | None = (self.path / _LOCK).open("wb")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def remove(self) -> None:
        if self._lock is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.close()
        self._lock = None


def remove_stale(state_directory: Path) -> list[Path]:
    """Remove the spill folders no live process holds; the ones removed."""
    removed = []
    for folder in sorted(state_directory.glob(f"{_PREFIX}*")):
        if not folder.is_dir():
            continue
        try:
            with (folder / _LOCK).open("ab") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(folder, ignore_errors=True)
        except BlockingIOError:
            continue  # a running server's
        except OSError as exc:
            log.warning("could not remove stale spill folder %s: %s", folder, exc)
            continue
        removed.append(folder)
    if removed:
        log.info("removed %d stale spill folder(s) under %s", len(removed), state_directory)
    return removed

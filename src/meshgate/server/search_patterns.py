"""Flight SQL search patterns (SQL LIKE: `%`, `_`, escape `\\`) matched in linear time.

A regex translation (`%` -> `.*`) backtracks exponentially on patterns such as twenty `%` and
a suffix that never matches, holding the GIL while every other client waits. Here a pattern is
split at its `%` into segments of literal characters and single-character wildcards; the first
segment is anchored at the start, the last at the end, and each middle one is taken at its
leftmost place, which is always safe because a later `%` can absorb whatever lies between.
"""

from __future__ import annotations

ESCAPE = "\\"
_ANY = None  # a `_`: any one character

Segment = tuple[str | None, ...]


class SearchPattern:
    """One parsed pattern; `matches` costs at most len(value) x len(pattern) comparisons."""

    def __init__(self, pattern: str, escape: str = ESCAPE) -> None:
        segments: list[list[str | None]] = [[]]
        chars = iter(pattern)
        for char in chars:
            if char == escape:
                segments[-1].append(next(chars, escape))  # a trailing escape is itself
            elif char == "%":
                segments.append([])
            elif char == "_":
                segments[-1].append(_ANY)
            else:
                segments[-1].append(char)
        self._segments: tuple[Segment, ...] = tuple(tuple(s) for s in segments)
        self._fixed = sum(len(s) for s in self._segments)

    def matches(self, value: str) -> bool:
        first, last = self._segments[0], self._segments[-1]
        if len(self._segments) == 1:
            return len(value) == len(first) and _fits(first, value, 0)
        if self._fixed > len(value):
            return False
        end = len(value) - len(last)
        if not (_fits(first, value, 0) and _fits(last, value, end)):
            return False
        start = len(first)
        for segment in self._segments[1:-1]:
            found = _find(segment, value, start, end)
            if found < 0:
                return False
            start = found + len(segment)
        return True


def _fits(segment: Segment, value: str, at: int) -> bool:
    return all(want is _ANY or want == value[at + i] for i, want in enumerate(segment))


def _find(segment: Segment, value: str, start: int, end: int) -> int:
    """The leftmost place in value[start:end] where `segment` fits, or -1."""
    for at in range(start, end - len(segment) + 1):
        if _fits(segment, value, at):
            return at
    return -1


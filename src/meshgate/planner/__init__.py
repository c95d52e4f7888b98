"""Decide where each part of a query runs: fragments at sources, the rest in the merge."""

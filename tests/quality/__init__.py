"""A mesh for quality checks: one good, one bad (and stale) and one ungranted product."""

"""Hypothesis profiles: the suite explores, a mutation run repeats the same examples.

``MESHGATE_HYPOTHESIS_PROFILE=mutation`` (set by scripts/mutation) draws the same examples on
every run and keeps no example database, so a mutant's verdict does not depend on which
mutants ran before it.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("mutation", derandomize=True, database=None)
settings.load_profile(os.environ.get("MESHGATE_HYPOTHESIS_PROFILE", "default"))

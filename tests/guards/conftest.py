"""Hypothesis profiles: the suite explores, a mutation run repeats the same examples.

``MESHGATE_HYPOTHESIS_PROFILE=mutation`` (set by scripts/mutation) draws the same examples on
every run, keeps no example database (a mutant's verdict must not depend on which mutants
ran before it) and does not shrink a failure (a killed mutant needs no minimal example).
"""

from __future__ import annotations

import os

from hypothesis import Phase, settings

settings.register_profile(
    "mutation",
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    report_multiple_bugs=False,
)
settings.load_profile(os.environ.get("MESHGATE_HYPOTHESIS_PROFILE", "default"))

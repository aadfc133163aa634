"""Hypothesis profiles, chosen with HYPOTHESIS_PROFILE (loaded by tests/conftest.py): "gpu" for
the one GPU run under its time cap (every new random setting compiles a Triton variant there, a
second or more each) and "rehearsal" for its rehearsal on CPU (bench/gpu_run.py). Without it the
tests run their own example counts."""

import os

from hypothesis import settings

PROFILE_ENV = "HYPOTHESIS_PROFILE"
settings.register_profile("gpu", max_examples=10, deadline=None, database=None)
settings.register_profile("rehearsal", max_examples=2, deadline=None, database=None)


def load() -> None:
    if os.environ.get(PROFILE_ENV):
        settings.load_profile(os.environ[PROFILE_ENV])


def max_examples(n: int) -> int:
    """n, or the loaded profile's example count when HYPOTHESIS_PROFILE names one with fewer."""
    return min(n, settings.default.max_examples) if os.environ.get(PROFILE_ENV) else n

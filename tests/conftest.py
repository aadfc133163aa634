"""Test-wide set-up. The Triton interpreter must be switched on before anything imports triton,
so this runs first: on a machine without CUDA the kernels run interpreted on CPU tensors. A
Hypothesis profile named by HYPOTHESIS_PROFILE is loaded (tests/hypothesis_profiles.py)."""

import os

import torch

from . import hypothesis_profiles

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

hypothesis_profiles.load()

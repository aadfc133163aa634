"""Test-wide set-up. The Triton interpreter must be switched on before anything imports triton,
so this runs first: on a machine without CUDA the kernels run interpreted on CPU tensors."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

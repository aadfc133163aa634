"""The LIF scan: `lif_scan` (scan.py), its backends (backends.py) and their settings (params.py)."""

from .backends import BACKENDS, FUSED_BACKENDS
from .params import RESETS, SURROGATES, LIFParams
from .scan import lif_scan

__all__ = ["lif_scan", "LIFParams", "BACKENDS", "FUSED_BACKENDS", "SURROGATES", "RESETS"]

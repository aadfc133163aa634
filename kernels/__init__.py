"""Fused spiking-neuron kernels (Triton) and their PyTorch references. No nn.Modules here."""

from .lif import BACKENDS, FUSED_BACKENDS, RESETS, SURROGATES, LIFParams, lif_scan

__all__ = ["lif_scan", "LIFParams", "BACKENDS", "FUSED_BACKENDS", "SURROGATES", "RESETS"]

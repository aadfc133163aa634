"""Bridges from other spiking-network libraries to `snn` (each an optional dependency).

    from snn.interop import spikingjelly
    spikingjelly.convert(model)   # SpikingJelly LIF / IF nodes -> snn.LIF, in place
"""

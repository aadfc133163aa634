"""Bridges from other spiking-network libraries to `snn` (each an optional dependency).

    from snn.interop import spikingjelly
    spikingjelly.convert(model)   # SpikingJelly LIF / IF nodes -> snn.LIF, in place

    from snn.interop import nir
    model = nir.load("model.nir", dt=1e-4)   # a NIR graph (snnTorch, Norse, ...) on the kernels
    graph = nir.export(model, sample, dt=1e-4)   # and back out, for a library or a chip's toolchain
"""

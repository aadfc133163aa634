"""Every range check of kernels.lif.params.LIFParams at its exact edge and one step outside (the
next float), with the edges written from IEEE-754 single precision, not read from the module:
smallest normal 2^-126, largest finite (2 - 2^-23) 2^127."""

import math

import pytest

from kernels.lif.params import SURROGATES, LIFParams

TINY = 2.0 ** -126
MAX = (2 - 2 ** -23) * 2.0 ** 127


def below(v):
    return math.nextafter(v, -math.inf)


def above(v):
    return math.nextafter(v, math.inf)


@pytest.mark.parametrize("name", ["vth", "decay", "alpha"])
@pytest.mark.parametrize("value", [True, False, "1", None, 1j])
def test_non_real_values_are_type_errors(name, value):
    with pytest.raises(TypeError, match=name):
        LIFParams(**{name: value})


@pytest.mark.parametrize("alpha, ok", [(2.0 ** -125, True), (below(2.0 ** -125), False),
                                       (2.0 ** 126, True), (above(2.0 ** 126), False),
                                       (1.0, True), (0.0, False), (-1.0, False), (math.inf, False)])
@pytest.mark.parametrize("surrogate", [s for s in SURROGATES if s != "dspike"])  # dspike: its own ranges below
def test_alpha_edges(surrogate, alpha, ok):
    """alpha / 2 >= 2^-126 and 1 / alpha >= 2^-126 (normal): alpha in [2^-125, 2^126]."""
    if ok:
        assert LIFParams(surrogate=surrogate, alpha=alpha).alpha == alpha
    else:
        with pytest.raises(ValueError, match="alpha"):
            LIFParams(surrogate=surrogate, alpha=alpha)


@pytest.mark.parametrize("decay, ok", [(0.0, True), (1.0, True), (above(1.0), False), (TINY, True),
                                       (below(TINY), False), (-0.0, True), (-TINY, False)])
def test_decay_edges(decay, ok):
    if ok:
        LIFParams(decay=decay)
    else:
        with pytest.raises(ValueError, match="decay"):
            LIFParams(decay=decay)


@pytest.mark.parametrize("vth, ok", [(0.0, True), (TINY, True), (below(TINY), False), (-TINY, True),
                                     (MAX, True), (-MAX, True), (math.inf, False)])
def test_vth_edges_for_tanh(vth, ok):
    if ok:
        LIFParams(vth=vth)
    else:
        with pytest.raises(ValueError, match="vth"):
            LIFParams(vth=vth)


@pytest.mark.parametrize("vth, ok", [(MAX / 2, True), (above(MAX / 2), False), (0.0, False), (-0.5, False),
                                     (0.5, True)])
def test_vth_upper_edge_for_dspike(vth, ok):
    """Dspike works on u / (2 vth): 2 vth must be finite, vth <= 2^127 (1 - 2^-24) = MAX / 2 (alpha
    100 keeps its gradient scale 100 / (4 vth) normal there)."""
    if ok:
        LIFParams(surrogate="dspike", vth=vth, alpha=100.0)
    else:
        with pytest.raises(ValueError, match="vth"):
            LIFParams(surrogate="dspike", vth=vth, alpha=100.0)


@pytest.mark.parametrize("vth, ok", [(TINY, True), (below(TINY), False)])
def test_vth_lower_edge_for_dspike(vth, ok):
    """2 vth must be normal: vth >= 2^-126. With alpha = 2^-125, tanh(alpha / 2) = alpha / 2 and the
    scale is 1 / (2 vth) = 2^125 at the edge, within range, so only the vth bound decides."""
    if ok:
        LIFParams(surrogate="dspike", vth=vth, alpha=2.0 ** -125)
    else:
        with pytest.raises(ValueError, match=r"needs vth in"):
            LIFParams(surrogate="dspike", vth=vth, alpha=2.0 ** -125)


def test_dspike_scale_edge():
    """The gradient scale alpha / (2 tanh(alpha / 2) 2 vth) must be <= MAX / 4. With alpha = 100,
    tanh(50) = 1 in double precision and the scale is 25 / vth: the edge is vth = 100 / MAX."""
    edge = 100 / MAX
    LIFParams(surrogate="dspike", vth=above(above(edge)), alpha=100.0)
    with pytest.raises(ValueError, match="gradient scale"):
        LIFParams(surrogate="dspike", vth=below(below(edge)), alpha=100.0)

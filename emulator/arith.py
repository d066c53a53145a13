"""The model's arithmetic, one named helper per rule of docs/model.md.

Every helper takes and returns Python-width integers (``int64`` inside compiled code),
so a caller never relies on a narrower type wrapping. Each is an ``@njit`` function:
the emulator's kernels inline them, and plain Python may call them too (tests do).

- :func:`sat` clamps to the signed range of ``bits`` bits (``sat(x, b)`` in the model).
- :func:`toward_zero` subtracts ``ceil(|x| / 2^s)`` toward zero (trace and eligibility decay).
- :func:`lfsr_step` advances the 16-bit Galois LFSR once (taps 0xB400).
- The initial LFSR of a neuron is :func:`neurofab.rng.initial_lfsr` (shared with the
  compiler and the RTL host).
- :func:`graded_payload` is the payload of a spike fired at membrane ``v``.
- :func:`graded_contribution` is ``(w * g) >> 7``, floor shift.
- :func:`clamp_weight` keeps a plastic weight in 0 .. 32767.
"""

from numba import njit

__all__ = [
    "V_BITS",
    "WEIGHT_MAX",
    "ELIG_BITS",
    "TRACE_MAX",
    "LFSR_TAPS",
    "sat",
    "sat24",
    "toward_zero",
    "lfsr_step",
    "graded_payload",
    "graded_contribution",
    "clamp_weight",
]

#: membrane ``v`` is signed 24 bit
V_BITS = 24
#: a plastic weight stays in 0 .. WEIGHT_MAX
WEIGHT_MAX = 32767
#: eligibility ``e`` is signed 16 bit
ELIG_BITS = 16
#: traces are set to this value when their neuron spikes
TRACE_MAX = 255
LFSR_TAPS = 0xB400

_V_MIN = -(1 << (V_BITS - 1))
_V_MAX = (1 << (V_BITS - 1)) - 1


@njit(cache=True)
def sat(x, bits):
    """``x`` clamped to ``[-2^(bits-1), 2^(bits-1) - 1]``."""
    lo = -(1 << (bits - 1))
    hi = (1 << (bits - 1)) - 1
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


@njit(cache=True)
def sat24(x):
    """``sat(x, 24)``: the membrane's range, with constant bounds for the hot loop."""
    if x < _V_MIN:
        return _V_MIN
    if x > _V_MAX:
        return _V_MAX
    return x


@njit(cache=True)
def toward_zero(x, s):
    """``x - sign(x) * ((|x| + 2^s - 1) >> s)``: every non-zero value moves at least 1 toward 0."""
    if x > 0:
        return x - ((x + (1 << s) - 1) >> s)
    if x < 0:
        return x + ((-x + (1 << s) - 1) >> s)
    return x


@njit(cache=True)
def lfsr_step(lfsr):
    """One advance of the 16-bit Galois LFSR: shift right, xor the taps if a 1 fell out."""
    bit = lfsr & 1
    lfsr >>= 1
    if bit:
        lfsr ^= LFSR_TAPS
    return lfsr


@njit(cache=True)
def graded_payload(v, threshold):
    """``min(255, 128 + ((v - threshold) >> 3))`` for a neuron that fired at ``v >= threshold``."""
    g = 128 + ((v - threshold) >> 3)
    return 255 if g > 255 else g


@njit(cache=True)
def graded_contribution(w, g):
    """What a graded spike of payload ``g`` adds through weight ``w``: ``(w * g) >> 7``, floor."""
    return (w * g) >> 7


@njit(cache=True)
def clamp_weight(w):
    """A plastic weight after an update: clamped to 0 .. 32767."""
    if w < 0:
        return 0
    if w > WEIGHT_MAX:
        return WEIGHT_MAX
    return w

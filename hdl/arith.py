"""Combinational arithmetic of the neuron model, as Amaranth expression builders.

Each helper mirrors one named rule of docs/model.md and returns an Amaranth value of a
stated shape; widths are chosen so that no intermediate result can wrap, so the only
place a value is ever limited is the explicit saturation the model asks for.

These are functions, not components: they are the combinational bodies of the neuron
pipeline's register stages (:mod:`neurofab.hdl.neuron`), which own all timing.
"""

from amaranth.hdl import Mux, Value

__all__ = [
    "V_BITS",
    "saturate",
    "toward_resting",
    "dendrite_gate",
    "graded_payload",
]

#: Width of the membrane potential ``v``: "v (membrane, signed 24 bit)".
V_BITS = 24


def saturate(value, width: int) -> Value:
    """``sat(value, width)``: clamp a signed value to ``[-2^(width-1), 2^(width-1) - 1]``.

    ``value`` may be any width; the result has shape ``signed(width)``. A value that
    already fits is passed through unchanged (as its low ``width`` bits, which for a
    value in range are the value itself).
    """
    if width < 2:
        raise ValueError(f"saturate width must be at least 2, not {width}")
    value = Value.cast(value)
    lo = -(1 << (width - 1))
    hi = (1 << (width - 1)) - 1
    return Mux(value > hi, hi, Mux(value < lo, lo, value))[:width].as_signed()


def toward_resting(v, resting, leak) -> Value:
    """The leak of step 5: move ``v`` by ``leak`` toward ``resting``, never past it.

    "if v > resting: v = max(resting, v - leak); if v < resting: v = min(resting, v + leak)".
    ``v`` and ``resting`` are ``signed(24)``, ``leak`` is ``unsigned(16)``; the result is
    ``signed(24)`` and always lies between ``v`` and ``resting``, so it cannot overflow.
    """
    v = Value.cast(v)
    resting = Value.cast(resting)
    leak = Value.cast(leak)
    down = v - leak  # signed(26): cannot wrap
    up = v + leak
    return Mux(v > resting, Mux(down > resting, down, resting),
               Mux(v < resting, Mux(up < resting, up, resting), v))[:V_BITS].as_signed()


def dendrite_gate(a, dend_threshold, dendritic) -> Value:
    """Step 2's gate for one distal compartment (c = 1..3).

    "With dendritic: ... (A_c if A_c >= dend_threshold else 0)"; without ``dendritic``
    every compartment passes. The result has ``a``'s shape.
    """
    a = Value.cast(a)
    passes = ~Value.cast(dendritic) | (a >= dend_threshold)
    return Mux(passes, a, 0)


def graded_payload(v, threshold) -> Value:
    """Step 5's spike payload: ``g = min(255, 128 + ((v - threshold) >> 3))``, as ``unsigned(8)``.

    Only meaningful when ``v >= threshold`` (the neuron spikes), where ``v - threshold``
    is non-negative and ``g`` lies in 128 .. 255.
    """
    excess = (Value.cast(v) - Value.cast(threshold)) >> 3
    return Mux(excess >= 127, 255, 128 + excess[:7])[:8]

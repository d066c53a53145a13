"""The per-neuron noise source: a 16-bit Galois LFSR, advanced once per timestep.

docs/model.md step 4: "The neuron's lfsr advances once, every step, refractory or not:
b = lfsr & 1; lfsr >>= 1; if b: lfsr ^= 0xB400". Each neuron's LFSR lives in its state
word (16 bits beside ``v`` and ``r``), so the core needs no LFSR register per neuron:
the neuron update pipeline reads it, advances it with :func:`lfsr_advance` and writes
it back. The initial value (``splitmix32(seed ^ gid) & 0xFFFF``, or 0xACE1 for 0) is
computed by the compiler, not in hardware.

:class:`Lfsr` is the same step as a free-running register, for blocks that need one
private random stream (and as the unit under test for the sequence itself).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

__all__ = ["LFSR_BITS", "LFSR_TAPS", "lfsr_advance", "noise_term", "Lfsr"]

LFSR_BITS = 16
#: The Galois feedback mask: "if b: lfsr ^= 0xB400" (taps 16, 14, 13, 11; maximal length).
LFSR_TAPS = 0xB400


def lfsr_advance(lfsr) -> Value:
    """One LFSR step as a combinational expression of shape ``unsigned(16)``.

    A zero state stays zero (it is the one state outside the maximal cycle); the
    compiler never loads one.
    """
    lfsr = Value.cast(lfsr)
    shifted = lfsr[1:LFSR_BITS]
    return Mux(lfsr[0], shifted ^ LFSR_TAPS, shifted)[:LFSR_BITS]


def noise_term(lfsr) -> Value:
    """The noise added to ``v``: ``(lfsr & 0xFF) - 128``, shape ``signed(8)``, -128 .. 127.

    ``lfsr`` is the value *after* this step's advance (step 4 precedes step 5).
    """
    byte = Value.cast(lfsr)[:8]
    # byte - 128 is the byte with its top bit flipped, read as signed: no adder needed.
    return Cat(byte[:7], ~byte[7]).as_signed()


class Lfsr(wiring.Component):
    """A free-running 16-bit Galois LFSR with the model's taps.

    Parameters
    ----------
    seed : int
        State after reset, 1 .. 65535 (zero would lock the register at zero).

    Members
    -------
    enable : ``In(1)``
        Advance on this clock edge when high; hold otherwise.
    value : ``Out(16)``
        The current state. After reset it is ``seed``; each enabled clock replaces it
        with :func:`lfsr_advance` of itself, so the first values are exactly the
        model's ``lfsr`` sequence. Period 65535.
    """

    enable: In(1)
    value: Out(LFSR_BITS)

    def __init__(self, seed: int):
        if not isinstance(seed, int) or isinstance(seed, bool) or not 1 <= seed <= 0xFFFF:
            raise ValidationError("Lfsr.seed", f"must be an integer in 1 .. 65535, not {seed!r}")
        self._seed = seed
        super().__init__()

    @property
    def seed(self) -> int:
        return self._seed

    def elaborate(self, platform):
        m = Module()
        state = Signal(LFSR_BITS, init=self._seed)
        with m.If(self.enable):
            m.d.sync += state.eq(lfsr_advance(state))
        m.d.comb += self.value.eq(state)
        return m

"""The noise source: the LFSR step and the noise term, in the Amaranth simulator."""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module, Signal, signed
from amaranth.sim import Simulator
from neuron_model import lfsr_step

from neurofab.hdl.lfsr import Lfsr, lfsr_advance, noise_term

# The classic 0xACE1 sequence of this Galois LFSR (taps 0xB400), worked by hand.
ACE1_SEQUENCE = [0xE270, 0x7138, 0x389C, 0x1C4E, 0x0E27, 0xB313, 0xED89, 0xC2C4]


class _Step(Elaboratable):
    """lfsr_advance and noise_term on one input, combinationally."""

    def __init__(self):
        self.state = Signal(16)
        self.advanced = Signal(16)
        self.noise = Signal(signed(8))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.advanced.eq(lfsr_advance(self.state)), self.noise.eq(noise_term(self.advanced))]
        return m


def test_model_known_sequence():
    state, seen = 0xACE1, []
    for _ in ACE1_SEQUENCE:
        state = lfsr_step(state)
        seen.append(state)
    assert seen == ACE1_SEQUENCE


def test_register_known_sequence():
    dut = Lfsr(seed=0xACE1)
    seen = []

    async def bench(ctx):
        seen.append(ctx.get(dut.value))
        ctx.set(dut.enable, 1)
        for _ in ACE1_SEQUENCE:
            await ctx.tick()
            seen.append(ctx.get(dut.value))
        # Held while disabled.
        ctx.set(dut.enable, 0)
        await ctx.tick().repeat(3)
        seen.append(ctx.get(dut.value))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [0xACE1, *ACE1_SEQUENCE, ACE1_SEQUENCE[-1]]


def test_step_and_noise_for_every_state():
    """All 65536 states: the step matches the model, the noise term is (lfsr & 0xFF) - 128."""
    dut = _Step()
    mismatches = []

    async def bench(ctx):
        for state in range(1 << 16):
            ctx.set(dut.state, state)
            advanced, noise = ctx.get(dut.advanced), ctx.get(dut.noise)
            expected = lfsr_step(state)
            if (advanced, noise) != (expected, (expected & 0xFF) - 128):
                mismatches.append((state, advanced, noise))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert mismatches == []


def test_model_period_is_maximal():
    state, steps = 1, 0
    while True:
        state = lfsr_step(state)
        steps += 1
        if state == 1:
            break
    assert steps == 65535

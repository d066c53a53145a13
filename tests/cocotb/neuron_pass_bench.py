"""cocotb bench for the neuron pass with its memories (``PassTop`` as Verilog).

Run by tests/cocotb/test_cocotb_neuron_pass.py; settings in ``NEUROFAB_BENCH_*``. The
core's initial neuron words and profiles are drawn from the seed exactly as the test
drew them for the memories' initial contents. Each pass then:

1. :class:`MemoryLoader` writes fresh accumulators and stimulus sums (the host's job);
2. the pass runs, with ``Backpressure`` on the spike list and a ``StreamMonitor``
   collecting it;
3. :class:`MemoryPeeker` reads every neuron word and accumulator word back;
4. the model (``pass_model.expected_pass``) says what they and the spike list must be,
   and the bench compares, and checks the pass's length: ``count + NeuronPass.LATENCY``
   clocks plus one for every clock the spike list stalled it.
"""

from __future__ import annotations

import os
import random

import cocotb
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from pass_model import expected_pass, fields_of, random_pass_inputs, random_profiles, random_words, small_core
from stream_agents import Backpressure, StreamMonitor

from neurofab.hdl.layouts import STIMULUS_BITS, core_layouts
from neurofab.hdl.neuron_pass import NeuronPass, spike_layout

__all__ = ["MemoryLoader", "MemoryPeeker", "bench_core"]


def _setting(name: str, default: int) -> int:
    return int(os.environ.get(f"NEUROFAB_BENCH_{name}", default))


def bench_core():
    """The core shape and initial contents the test built the Verilog with (from the settings)."""
    config = small_core(compartments=_setting("COMPARTMENTS", 3), max_cores=_setting("MAX_CORES", 4),
                        neurons=_setting("NEURONS", 32))
    rng = random.Random(_setting("SEED", 1))
    profiles = random_profiles(rng, config)
    words = random_words(rng, config, profiles)
    return config, profiles, words, rng


class MemoryLoader:
    """Writes values through a ``<prefix>__addr/data/en`` write port, one word a clock."""

    def __init__(self, dut, prefix: str, clock, width: int):
        self._addr = getattr(dut, f"{prefix}__addr")
        self._data = getattr(dut, f"{prefix}__data")
        self._en = getattr(dut, f"{prefix}__en")
        self._clock = clock
        self._mask = (1 << width) - 1

    async def load(self, values):
        for address, value in enumerate(values):
            self._addr.value = address
            self._data.value = value & self._mask
            self._en.value = 1
            await RisingEdge(self._clock)
        self._en.value = 0


class MemoryPeeker:
    """Reads words through a ``<prefix>__addr/en/data`` read port (data one clock later)."""

    def __init__(self, dut, prefix: str, clock):
        self._addr = getattr(dut, f"{prefix}__addr")
        self._en = getattr(dut, f"{prefix}__en")
        self._data = getattr(dut, f"{prefix}__data")
        self._clock = clock

    async def read(self, depth: int) -> list[int]:
        """Words ``0 .. depth - 1`` as unsigned integers (unpacked with the memory's layout)."""
        values = []
        for address in range(depth):
            self._addr.value = address
            self._en.value = 1
            await RisingEdge(self._clock)
            await ReadOnly()
            value = self._data.value
            values.append(value.to_unsigned())
            await RisingEdge(self._clock)  # leave the read-only phase before the next write
        self._en.value = 0
        return values


@cocotb.test()
async def neuron_pass_random_passes(dut):
    """Many passes with fresh inputs, random counts and a stalling spike list; all state checked."""
    config, profiles, words, rng = bench_core()
    passes = _setting("PASSES", 20)
    p_ready = _setting("P_READY_PERCENT", 50) / 100
    neuron_layout = core_layouts(config).neuron
    acc_layout = core_layouts(config).accumulator
    dut._log.info("seed=%d passes=%d core=%s p_ready=%.2f", _setting("SEED", 1), passes, config, p_ready)

    spikes = []

    def on_spike(word, _cycle):
        entry = data.Const(spike_layout(config), word)
        spikes.append((entry.neuron, entry.payload))

    acc_loader = MemoryLoader(dut, "acc_load", dut.clk, acc_layout.size)
    stim_loader = MemoryLoader(dut, "stim_load", dut.clk, STIMULUS_BITS)
    neuron_peeker = MemoryPeeker(dut, "neuron_peek", dut.clk)
    acc_peeker = MemoryPeeker(dut, "acc_peek", dut.clk)
    backpressure = Backpressure(dut, "spikes", dut.clk, random.Random(rng.random()), p_ready)
    spike_monitor = StreamMonitor(dut, "spikes", dut.clk, on_spike)

    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.start.value = 0
    for port in ("acc_load", "stim_load", "neuron_peek", "acc_peek"):
        getattr(dut, f"{port}__en").value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    cocotb.start_soon(backpressure.run())
    cocotb.start_soon(spike_monitor.run())

    fired = 0
    for k in range(passes):
        accumulators, stimulus, flags, count = random_pass_inputs(rng, config)
        # Packed with the hardware's own layout: element c of a word is compartment c.
        await acc_loader.load([acc_layout.const(sums).as_bits() for sums in accumulators])
        await stim_loader.load(stimulus)
        want_words, want_acc, want_spikes = expected_pass(config, words, profiles, accumulators, stimulus,
                                                          count, flags)

        spikes.clear()
        stalls_before = spike_monitor.stalls
        dut.count.value = count
        for name, value in flags.items():
            getattr(dut, name).value = value
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        clocks = 1
        while True:
            await ReadOnly()
            if dut.done.value:
                break
            # A bound in clocks, far above any stall the spike list can cause.
            assert clocks < 100 * (count + 2), f"pass {k} (count {count}) never finished"
            await RisingEdge(dut.clk)
            clocks += 1
        await RisingEdge(dut.clk)
        stalls = spike_monitor.stalls - stalls_before

        raw_words = await neuron_peeker.read(config.neurons)
        got_words = [fields_of(data.Const(neuron_layout, w)) for w in raw_words]
        got_acc = [list(data.Const(acc_layout, w)) for w in await acc_peeker.read(config.neurons)]
        label = f"pass {k} (count {count}, flags {flags}, {clocks} clocks, {stalls} stalled)"
        assert clocks == (count + NeuronPass.LATENCY + stalls if count else 1), f"{label}: pass length"
        for n in range(config.neurons):
            assert got_words[n] == want_words[n], \
                f"{label}: neuron {n}\n  expected {want_words[n]}\n  got      {got_words[n]}"
        assert got_acc == want_acc, f"{label}: accumulators"
        assert spikes == want_spikes, f"{label}: spike list\n  expected {want_spikes}\n  got {spikes}"
        fired += len(spikes)
        words = want_words

    dut._log.info("%d passes checked, %d spikes, spike list stalled %d cycles",
                  passes, fired, spike_monitor.stalls)
    assert fired > passes, "too few spikes for the bench to mean much"
    assert spike_monitor.stalls > 0

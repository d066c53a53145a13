"""The neuron pass over real memories, in the Amaranth simulator, against the plain model.

A bench holds the memories a core would (neuron words, profiles, accumulators, the
stimulus sums), connects their ports to ``NeuronPass``, and runs several passes with
fresh accumulators and stimuli each time. After every pass each neuron word, each
accumulator and the spike list are compared with ``neuron_model.neuron_update``.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Elaboratable, Module, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from pass_model import expected_pass, fields_of, random_pass_inputs, random_profiles, random_words, small_core

from neurofab.hdl.config import CoreConfig
from neurofab.hdl.layouts import PROFILE_LAYOUT, core_layouts
from neurofab.hdl.neuron import NeuronUpdate
from neurofab.hdl.neuron_pass import NeuronPass


class PassBench(Elaboratable):
    """The memories of one core's neuron side, wired to a ``NeuronPass``."""

    def __init__(self, config: CoreConfig, words, profiles, stimulus_width: int = 32):
        layouts = core_layouts(config)
        self.config = config
        self.dut = NeuronPass(config, stimulus_width=stimulus_width)
        self.neurons = Memory(shape=layouts.neuron, depth=config.neurons, init=words)
        self.profiles = Memory(shape=PROFILE_LAYOUT, depth=config.profiles, init=profiles)
        self.accumulators = Memory(shape=signed(config.acc_bits), depth=config.neurons * config.compartments,
                                   init=[])
        self.stimulus = Memory(shape=signed(stimulus_width), depth=config.neurons, init=[])

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        m.submodules.neurons = self.neurons
        m.submodules.profiles = self.profiles
        m.submodules.accumulators = self.accumulators
        m.submodules.stimulus = self.stimulus
        wiring.connect(m, dut.neuron_rd, self.neurons.read_port())
        wiring.connect(m, dut.neuron_wr, self.neurons.write_port())
        wiring.connect(m, dut.profile_rd, self.profiles.read_port())
        wiring.connect(m, dut.acc_rd, self.accumulators.read_port())
        wiring.connect(m, dut.acc_wr, self.accumulators.write_port())
        wiring.connect(m, dut.stim_rd, self.stimulus.read_port())
        return m


def run_passes(config: CoreConfig, seed: int, passes: int, *, p_ready: float = 0.7, counts=None):
    """Run ``passes`` passes on a random core and check each one; return the pass lengths in clocks."""
    rng = random.Random(seed)
    profiles = random_profiles(rng, config)
    words = random_words(rng, config, profiles)
    bench = PassBench(config, words, profiles)
    dut = bench.dut
    c = config.compartments
    lengths = []
    checked = []

    async def testbench(ctx):
        nonlocal words
        for k in range(passes):
            accumulators, stimulus, flags, count = random_pass_inputs(rng, config, counts, k)
            for i, value in enumerate(accumulators):
                ctx.set(bench.accumulators.data[i], value)
            for i, value in enumerate(stimulus):
                ctx.set(bench.stimulus.data[i], value)
            want_words, want_acc, want_spikes = expected_pass(config, words, profiles, accumulators, stimulus,
                                                              count, flags)

            ctx.set(dut.count, count)
            for name, value in flags.items():
                ctx.set(getattr(dut, name), value)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            spikes, clocks = [], 1
            while True:
                ctx.set(dut.spikes.ready, rng.random() < p_ready)
                _, _, done, busy, valid, ready, spike = await ctx.tick().sample(
                    dut.done, dut.busy, dut.spikes.valid, dut.spikes.ready, dut.spikes.payload)
                if valid and ready:
                    spikes.append((spike.neuron, spike.payload))
                if done:
                    break
                assert busy, f"pass {k}: idle before done"
                clocks += 1
                assert clocks < 50 * (count + 2), f"pass {k} never finished"
            lengths.append(clocks)

            got_words = [fields_of(ctx.get(bench.neurons.data[i])) for i in range(config.neurons)]
            got_acc = [ctx.get(bench.accumulators.data[i]) for i in range(config.neurons * c)]
            for n in range(config.neurons):
                assert got_words[n] == want_words[n], f"pass {k} (count {count}, {flags}) neuron {n}"
            assert got_acc == want_acc, f"pass {k}: accumulators"
            assert spikes == want_spikes, f"pass {k}: spike list"
            checked.append((count, len(spikes)))
            words = want_words

    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return lengths, checked


@pytest.mark.parametrize("compartments", [4, 2, 1])
@pytest.mark.parametrize("seed", [1, 2])
def test_passes_match_model(compartments, seed):
    lengths, checked = run_passes(small_core(compartments=compartments), seed, passes=6)
    assert len(checked) == 6
    assert sum(spiked for _, spiked in checked) > 5  # the passes really fired neurons


def test_words_with_routes_keep_their_static_fields():
    """On a multi-core shape the word has route fields; the pass writes them back as read."""
    lengths, checked = run_passes(small_core(max_cores=4), seed=3, passes=4)
    assert len(checked) == 4


def test_pass_length_and_empty_pass():
    config = small_core(compartments=4, neurons=24)
    lengths, checked = run_passes(config, seed=4, passes=3, p_ready=1.0, counts=[24, 0, 5])
    per_neuron = 3 + config.compartments
    # Reads dominate; the last neuron's update adds the pipeline's latency.
    assert lengths[0] == per_neuron * 24 + NeuronUpdate.LATENCY + 1
    assert lengths[1] == 2
    assert lengths[2] == per_neuron * 5 + NeuronUpdate.LATENCY + 1


def test_spike_list_backpressure():
    """A spike list that is rarely ready stalls the pass but loses nothing."""
    lengths, checked = run_passes(small_core(), seed=5, passes=3, p_ready=0.1)
    assert sum(spiked for _, spiked in checked) > 3

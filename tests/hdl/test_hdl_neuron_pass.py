"""The neuron pass over real memories, in the Amaranth simulator, against the plain model.

A bench holds the memories a core would (neuron words, profiles, one accumulator bank,
the stimulus sums), connects their ports to ``NeuronPass``, and runs several passes
with fresh accumulator words and stimuli each time, a spike list that is ready at
random, and random idle gaps between passes (none at all: the next ``start`` on the
clock of ``done``). A monitor watches every port on every clock. After every pass each
neuron word, each accumulator word and the spike list are compared with
``neuron_model.neuron_update``, and the pass's length with its exact contract:
``count + LATENCY`` clocks plus one for each clock the spike list stalled the pass.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import pytest
from amaranth.hdl import Elaboratable, Module
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

    def __init__(self, config: CoreConfig, words, profiles):
        layouts = core_layouts(config)
        self.config = config
        self.dut = NeuronPass(config)
        self.neurons = Memory(shape=layouts.neuron, depth=config.neurons, init=words)
        self.profiles = Memory(shape=PROFILE_LAYOUT, depth=config.profiles, init=profiles)
        self.accumulators = Memory(shape=layouts.accumulator, depth=config.neurons, init=[])
        self.stimulus = Memory(shape=layouts.stimulus, depth=config.neurons, init=[])

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


@dataclass
class PassTrace:
    """What the monitor saw during one pass (clock 1 is the clock after the ``start`` edge)."""

    clocks: int = 0  # the clock on which done was high
    stalls: int = 0  # clocks with a spike offered and not taken
    spikes: list = field(default_factory=list)
    reads: dict = field(default_factory=lambda: {name: Counter() for name in ("neuron", "acc", "stim")})
    profile_reads: int = 0
    word_writes: Counter = field(default_factory=Counter)
    acc_writes: Counter = field(default_factory=Counter)
    write_clocks: list = field(default_factory=list)  # (clock, neuron) of each word write


def run_passes(config: CoreConfig, seed: int, passes: int, *, p_ready: float = 0.7, counts=None,
               gaps=(0, 1, 3), start_while_busy: bool = False):
    """Run ``passes`` passes on a random core and check each one; return their traces.

    Between passes the bench waits a gap drawn from ``gaps`` clocks (0: the next
    ``start`` is raised on the clock of ``done``). With ``start_while_busy`` it also
    pulses ``start`` (with another count) in the middle of each pass, which must be ignored.
    """
    rng = random.Random(seed)
    profiles = random_profiles(rng, config)
    words = random_words(rng, config, profiles)
    bench = PassBench(config, words, profiles)
    dut = bench.dut
    traces = []

    async def testbench(ctx):
        nonlocal words
        done_now = False  # done was high on the clock just sampled
        for k in range(passes):
            accumulators, stimulus, flags, count = random_pass_inputs(rng, config, counts, k)
            # The host writes the memories between steps; the simulator does it directly.
            for i, sums in enumerate(accumulators):
                ctx.set(bench.accumulators.data[i], sums)
            for i, value in enumerate(stimulus):
                ctx.set(bench.stimulus.data[i], value)
            want_words, want_acc, want_spikes = expected_pass(config, words, profiles, accumulators, stimulus,
                                                              count, flags)
            gap = rng.choice(gaps) if done_now else 0
            for _ in range(gap):
                ctx.set(dut.spikes.ready, 0)
                assert not ctx.get(dut.busy)
                await ctx.tick()

            ctx.set(dut.count, count)
            for name, value in flags.items():
                ctx.set(getattr(dut, name), value)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            # Inputs other than start may change once the pass is under way.
            ctx.set(dut.count, rng.randrange(config.neurons + 1))
            trace = PassTrace()
            limit = 50 * (count + 2) + 20  # a hang fails, it does not time out
            while True:
                trace.clocks += 1
                ctx.set(dut.spikes.ready, rng.random() < p_ready)
                ctx.set(dut.start, start_while_busy and trace.clocks == 3)
                sampled = await ctx.tick().sample(
                    dut.done, dut.busy, dut.spikes.valid, dut.spikes.ready, dut.spikes.payload,
                    dut.neuron_rd.en, dut.neuron_rd.addr, dut.acc_rd.en, dut.acc_rd.addr,
                    dut.stim_rd.en, dut.stim_rd.addr, dut.profile_rd.en,
                    dut.neuron_wr.en, dut.neuron_wr.addr, dut.acc_wr.en, dut.acc_wr.addr, dut.acc_wr.data)
                (_, _, done, busy, valid, ready, spike, n_en, n_addr, a_en, a_addr, s_en, s_addr, p_en,
                 nw_en, nw_addr, aw_en, aw_addr, aw_data) = sampled
                stalled = valid and not ready
                if stalled:
                    # The whole pass holds: no read port enabled (their data must hold), no write.
                    assert not (n_en or a_en or s_en or p_en or nw_en or aw_en), \
                        f"pass {k} clock {trace.clocks}: a port moved during a spike stall"
                    trace.stalls += 1
                if valid and ready:
                    trace.spikes.append((spike.neuron, spike.payload))
                reads = (("neuron", n_en, n_addr), ("acc", a_en, a_addr), ("stim", s_en, s_addr))
                for name, en, addr in reads:
                    if en:
                        trace.reads[name][addr] += 1
                trace.profile_reads += p_en
                if nw_en:
                    trace.word_writes[nw_addr] += 1
                    trace.write_clocks.append((trace.clocks, nw_addr))
                if aw_en:
                    assert list(aw_data) == [0] * config.compartments
                    trace.acc_writes[aw_addr] += 1
                assert busy, f"pass {k}: busy low on clock {trace.clocks}, before done"
                if done:
                    break
                assert trace.clocks < limit, f"pass {k} (count {count}) never finished"
            done_now = True
            traces.append(trace)

            label = f"seed={seed} pass {k} (count {count}, {flags})"
            got_words = [fields_of(ctx.get(bench.neurons.data[i])) for i in range(config.neurons)]
            got_acc = [list(ctx.get(bench.accumulators.data[i])) for i in range(config.neurons)]
            for n in range(config.neurons):
                assert got_words[n] == want_words[n], f"{label}: neuron {n}"
                assert got_acc[n] == want_acc[n], f"{label}: accumulator word {n}"
            assert trace.spikes == want_spikes, f"{label}: spike list"
            # Each neuron read once, written once; nothing else touched.
            once = Counter(range(count))
            for name in ("neuron", "acc", "stim"):
                assert trace.reads[name] == once, f"{label}: {name} reads {trace.reads[name]}"
            assert trace.profile_reads == count, f"{label}: profile reads"
            assert trace.word_writes == once and trace.acc_writes == once, f"{label}: writes"
            # Exact timing: n + LATENCY clocks, one more for each stalled clock; 1 for n = 0.
            assert trace.clocks == (count + NeuronPass.LATENCY + trace.stalls if count else 1), \
                f"{label}: {trace.clocks} clocks with {trace.stalls} stalls"
            words = want_words
            await ctx.tick()  # the clock after done: it must have fallen
            ctx.set(dut.start, 0)
            done_now = False
            assert not ctx.get(dut.done)

    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return traces


def test_latency_is_the_update_pipelines_plus_five():
    """Issue, word register, reads, their registers, and into the update: 5 clocks before it."""
    assert NeuronPass.LATENCY == NeuronUpdate.LATENCY + 5 == 11


@pytest.mark.parametrize("compartments", [4, 2, 1])
@pytest.mark.parametrize("seed", [1, 2])
def test_passes_match_model(compartments, seed):
    traces = run_passes(small_core(compartments=compartments), seed, passes=6)
    assert len(traces) == 6
    assert sum(len(t.spikes) for t in traces) > 5  # the passes really fired neurons
    assert sum(t.stalls for t in traces) > 0  # and the spike list really stalled them


def test_words_with_routes_keep_their_static_fields():
    """On a multi-core shape the word has route fields; the pass writes them back as read."""
    traces = run_passes(small_core(max_cores=4, neurons=32), seed=3, passes=4)
    assert len(traces) == 4


@pytest.mark.parametrize("acc_bits", [18, 40])
def test_accumulator_widths(acc_bits):
    """Narrow and wide accumulator sums, each compartment a field of the one word."""
    traces = run_passes(small_core(acc_bits=acc_bits, compartments=3), seed=6, passes=4)
    assert sum(len(t.spikes) for t in traces) > 3


def test_one_neuron_per_clock():
    """A ready spike list: the pass takes exactly n + LATENCY clocks; neuron k is written on
    clock k + LATENCY (so done follows the last write by a clock); an empty pass takes 1."""
    config = small_core(compartments=4, neurons=24)
    traces = run_passes(config, seed=4, passes=4, p_ready=1.0, counts=[24, 0, 5, 1])
    assert [t.clocks for t in traces] == [24 + 11, 1, 5 + 11, 1 + 11]
    assert all(t.stalls == 0 for t in traces)
    for trace in traces:
        assert trace.write_clocks == [(k + NeuronPass.LATENCY, k) for k in range(len(trace.write_clocks))]


def test_start_while_busy_is_ignored():
    traces = run_passes(small_core(), seed=8, passes=3, start_while_busy=True)
    assert len(traces) == 3


def test_spike_list_backpressure():
    """A spike list that is rarely ready stalls the pass but loses and repeats nothing."""
    traces = run_passes(small_core(), seed=5, passes=3, p_ready=0.1)
    assert sum(len(t.spikes) for t in traces) > 3
    assert sum(t.stalls for t in traces) > 20


@pytest.mark.parametrize("neurons", [1, 2])
def test_tiny_cores(neurons):
    """One neuron (a zero-width address) and two: the counters' edges."""
    traces = run_passes(small_core(neurons=neurons), seed=9, passes=8, counts=[neurons, 0, neurons, 1] * 2)
    assert [t.clocks - t.stalls for t in traces] == [c + NeuronPass.LATENCY if c else 1
                                                     for c in [neurons, 0, neurons, 1] * 2]

"""The neuron pass over real memories, in the Amaranth simulator, against the plain model.

A bench holds the memories a core would (neuron words, profiles, one accumulator bank,
the stimulus sums), connects their ports to ``NeuronPass``, and runs several passes
with fresh accumulator words and stimuli each time, a spike list that is ready at
random, and random idle gaps between passes (none at all: the next ``start`` on the
clock of ``done``). A monitor watches every port on every clock. After every pass each
neuron word, each accumulator word and the spike list are compared with
``neuron_model.neuron_update``, and the pass's length with its exact contract:
``count + LATENCY`` clocks plus one for each clock the spike list stalled the pass.

The profile cache (``config.spram``: the profile table as 16-bit rows, one profile in
a register) runs the same benches and must leave the same memories and spike lists as
the full table, its passes ``count + LATENCY + k * RELOAD`` clocks for ``k`` profile
loads (exactly, with a ready spike list), with runs of profiles along the neurons.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import pytest
from amaranth.hdl import Elaboratable, Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from pass_model import expected_pass, fields_of, random_pass_inputs, random_profiles, random_words, small_core

from neurofab.hdl.config import CoreConfig
from neurofab.hdl.layouts import PROFILE_LAYOUT, core_layouts
from neurofab.hdl.neuron import NeuronUpdate
from neurofab.hdl.neuron_pass import PROFILE_ROW_BITS, PROFILE_ROWS, NeuronPass, profile_rows


class PassBench(Elaboratable):
    """The memories of one core's neuron side, wired to a ``NeuronPass``."""

    def __init__(self, config: CoreConfig, words, profiles):
        layouts = core_layouts(config)
        self.config = config
        self.dut = NeuronPass(config)
        self.neurons = Memory(shape=layouts.neuron, depth=config.neurons, init=words)
        if config.spram:  # the profile cache's table: 6 rows of 16 bits a profile
            rows = [row for p in profiles for row in profile_rows(PROFILE_LAYOUT.const(p).as_bits())]
            self.profiles = Memory(shape=unsigned(PROFILE_ROW_BITS), depth=config.profiles * PROFILE_ROWS,
                                   init=rows)
        else:
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
    loads: int = 0  # profile loads the cache must make: the runs of profiles along the neurons
    words: list = field(default_factory=list)  # every neuron word after the pass
    accumulators: list = field(default_factory=list)  # every accumulator word after the pass


def run_passes(config: CoreConfig, seed: int, passes: int, *, p_ready: float = 0.7, counts=None,
               gaps=(0, 1, 3), start_while_busy: bool = False, mean_run: float = 1.0):
    """Run ``passes`` passes on a random core and check each one; return their traces.

    Between passes the bench waits a gap drawn from ``gaps`` clocks (0: the next
    ``start`` is raised on the clock of ``done``). With ``start_while_busy`` it also
    pulses ``start`` (with another count) in the middle of each pass, which must be ignored.
    Profiles come in runs of ``mean_run`` neurons on average. The contents (words,
    profiles, sums, counts, flags) are drawn from ``seed`` alone and the timing (gaps,
    ready, the count changed under way) from another stream, so a profile-cache core and
    a full-table one of the same shape see the same passes.
    """
    rng = random.Random(seed)
    timing = random.Random(seed + 1_000_003)
    profiles = random_profiles(rng, config)
    words = random_words(rng, config, profiles, mean_run=mean_run)
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
            gap = timing.choice(gaps) if done_now else 0
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
            ctx.set(dut.count, timing.randrange(config.neurons + 1))
            trace = PassTrace()
            limit = 50 * (count + 2) + 20  # a hang fails, it does not time out
            while True:
                trace.clocks += 1
                ctx.set(dut.spikes.ready, timing.random() < p_ready)
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
                    # The whole pass holds: no read port enabled (their data must hold), no
                    # write. (With the profile cache the neurons before the update may go on
                    # into a gap a miss left in it, their reads and accumulator writes with
                    # them; no word is written back.)
                    moved = nw_en or (not config.spram and (n_en or a_en or s_en or p_en or aw_en))
                    assert not moved, f"pass {k} clock {trace.clocks}: a port moved during a spike stall"
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
            run = [w["profile"] for w in words[:count]]
            trace.loads = sum(1 for n in range(count) if n == 0 or run[n] != run[n - 1])

            label = f"seed={seed} pass {k} (count {count}, {flags})"
            got_words = [fields_of(ctx.get(bench.neurons.data[i])) for i in range(config.neurons)]
            got_acc = [list(ctx.get(bench.accumulators.data[i])) for i in range(config.neurons)]
            for n in range(config.neurons):
                assert got_words[n] == want_words[n], f"{label}: neuron {n}"
                assert got_acc[n] == want_acc[n], f"{label}: accumulator word {n}"
            assert trace.spikes == want_spikes, f"{label}: spike list"
            trace.words, trace.accumulators = got_words, got_acc
            # Each neuron read once (the cache reads the missed neuron's words again after
            # a miss), written once; nothing else touched.
            once = Counter(range(count))
            assert trace.word_writes == once and trace.acc_writes == once, f"{label}: writes"
            if config.spram:
                # the neuron, accumulator and stimulus words are read together
                assert trace.reads["neuron"] == trace.reads["acc"] == trace.reads["stim"], f"{label}: reads"
                assert set(trace.reads["neuron"]) == set(once), f"{label}: neuron reads"
                assert trace.reads["neuron"].total() == count + trace.loads, f"{label}: one word again a load"
                assert trace.profile_reads == PROFILE_ROWS * trace.loads, f"{label}: profile rows read"
                # n + SPRAM_LATENCY + RELOAD a load, exactly with a ready spike list; a
                # stalled clock adds at most one (a gap behind a miss may absorb it)
                base = count + NeuronPass.SPRAM_LATENCY + trace.loads * NeuronPass.RELOAD if count else 1
                assert base <= trace.clocks <= base + trace.stalls, \
                    f"{label}: {trace.clocks} clocks with {trace.stalls} stalls and {trace.loads} loads"
            else:
                for name in ("neuron", "acc", "stim"):
                    assert trace.reads[name] == once, f"{label}: {name} reads {trace.reads[name]}"
                assert trace.profile_reads == count, f"{label}: profile reads"
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
    assert NeuronPass.latency(small_core()) == NeuronPass.LATENCY


def test_cache_latency_is_the_update_pipelines_plus_two():
    """config.spram: issue (every word read together), then into the update straight off
    the ports: 2 clocks before it. A load: the miss, the drain of the neuron just ahead
    through the five stages that read the cache, and the 6 rows."""
    assert NeuronPass.SPRAM_LATENCY == NeuronUpdate.LATENCY + 2 == 8
    assert NeuronPass.latency(small_core(spram=True)) == NeuronPass.SPRAM_LATENCY
    assert NeuronPass.RELOAD == 1 + 5 + PROFILE_ROWS == 12


@pytest.mark.parametrize("compartments", [4, 2, 1])
@pytest.mark.parametrize("seed", [1, 2])
def test_passes_match_model(compartments, seed):
    traces = run_passes(small_core(compartments=compartments), seed, passes=8)
    assert len(traces) == 8
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


# --- the profile cache (config.spram) ---------------------------------------------------


def test_profile_rows_split_the_layout_low_first():
    assert PROFILE_LAYOUT.size == 96 and PROFILE_ROWS == 6
    bits = PROFILE_LAYOUT.const({"threshold": -2, "resting": 5, "dend_threshold": 7, "leak": 0x1234,
                                 "refrac": 0xAB}).as_bits()
    rows = profile_rows(bits)
    assert sum(row << (16 * r) for r, row in enumerate(rows)) == bits
    assert rows[0] == 0xFFFE and all(0 <= row < 1 << 16 for row in rows)


@pytest.mark.parametrize("mean_run", [1.0, 4.0, 1000.0])
def test_profile_cache_matches_model(mean_run):
    """Random runs of profiles (a fresh one at every neuron, runs of about 4, one for
    all), a spike list ready 70% of the time: the model's memories and spikes, acc and
    stimulus read once, 6 rows a load, within the clock bounds."""
    traces = run_passes(small_core(spram=True), seed=21, passes=6, mean_run=mean_run)
    assert sum(len(t.spikes) for t in traces) > 5 and sum(t.stalls for t in traces) > 0
    assert sum(t.loads for t in traces) >= len([t for t in traces if t.loads])


@pytest.mark.parametrize("mean_run", [1.0, 3.0, 1000.0])
def test_profile_cache_clocks_are_exact(mean_run):
    """A ready spike list: count + LATENCY + k RELOAD clocks for k loads, and the same
    memories and spike lists as the full table after every pass."""
    counts = [24, 0, 24, 7, 1, 24]
    cached = run_passes(small_core(spram=True), seed=22, passes=6, p_ready=1.0, counts=counts,
                        mean_run=mean_run)
    full = run_passes(small_core(), seed=22, passes=6, p_ready=1.0, counts=counts, mean_run=mean_run)
    for count, c, f in zip(counts, cached, full, strict=True):
        assert c.clocks == (count + NeuronPass.SPRAM_LATENCY + c.loads * NeuronPass.RELOAD if count else 1)
        assert f.clocks == (count + NeuronPass.LATENCY if count else 1)
        assert (c.spikes, c.words, c.accumulators) == (f.spikes, f.words, f.accumulators)
    if mean_run == 1000.0:  # one profile for the whole core: a single load a pass
        assert [c.loads for c in cached] == [1 if n else 0 for n in counts]
    else:
        assert max(c.loads for c in cached) > 3


def test_profile_cache_with_stalls_equals_full_table():
    """Stalls in every pass, a rarely ready spike list: the same results as the full table."""
    cached = run_passes(small_core(spram=True, compartments=2), seed=23, passes=4, p_ready=0.2, mean_run=2.0)
    full = run_passes(small_core(compartments=2), seed=23, passes=4, p_ready=0.2, mean_run=2.0)
    for c, f in zip(cached, full, strict=True):
        assert (c.spikes, c.words, c.accumulators) == (f.spikes, f.words, f.accumulators)
    assert sum(c.stalls for c in cached) > 20


@pytest.mark.parametrize("neurons", [1, 2])
def test_profile_cache_tiny_cores(neurons):
    traces = run_passes(small_core(neurons=neurons, spram=True), seed=24, passes=6,
                        counts=[neurons, 0, neurons, 1] * 2)
    assert len(traces) == 6

"""Synthesis smoke checks of the neuron update pipeline with the PyPI toolchain.

Budgets are fractions of the smallest target, the iCEBreaker's iCE40UP5K (5280 logic
cells, 12 MHz board clock): the update pipeline is one of about six blocks of the core,
so it must stay well under a quarter of the chip, use no block RAM or DSP (it has no
multiplier), and close timing at the board clock.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from neurofab.hdl.config import CoreConfig, addr_bits, get_preset
from neurofab.hdl.event_queue import EventQueue
from neurofab.hdl.fanout import FanOut
from neurofab.hdl.layouts import PROFILE_LAYOUT, STIMULUS_BITS, core_layouts
from neurofab.hdl.neuron import NeuronUpdate
from neurofab.hdl.neuron_pass import NeuronPass
from neurofab.hdl.spram import NO_RW_CHECK
from neurofab.hdl.synthesis import (
    PlaceAndRouteError,
    place_and_route_ecp5,
    place_and_route_ice40,
    shortfall,
    synthesize,
)

UP5K_CELLS = 5280
ICEBREAKER_MHZ = 12.0


def icebreaker_pipeline() -> NeuronUpdate:
    core = get_preset("icebreaker")
    return NeuronUpdate(input_width=core.acc_bits, stimulus_width=32, tag_width=core.neuron_bits)


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_pipeline_synthesises_within_budget(family, record_property):
    report = synthesize(icebreaker_pipeline(), family=family, top="neuron_update")
    record_property("synthesis", report.summary())
    assert report.luts > 300, report.summary()  # the arithmetic is really there
    assert report.luts < UP5K_CELLS // 5, report.summary()
    # Six stages of payload registers (one carry chain each), about 920 bits in all, and
    # nothing else.
    assert 800 < report.ffs < 1000, report.summary()
    assert report.brams == 0 and report.dsps == 0, report.summary()


def test_synthesis_reads_rtlil_not_verilog(tmp_path):
    """Memory contents reach Yosys as one ``$meminit_v2`` cell per memory (RTLIL), not one
    Verilog ``initial`` assignment per word, which Yosys digests in minutes for the core."""
    report = synthesize(_MacWithMemory(), family="ecp5", top="mac", workdir=tmp_path)
    assert report.brams == 1 and report.dsps == 1, report.summary()
    design = (tmp_path / "mac.il").read_text()
    assert design.count("cell $meminit_v2") == 1 and "initial" not in design
    log = (tmp_path / "yosys.log").read_text()
    assert "Executing RTLIL frontend" in log and "Verilog-2005 frontend: mac" not in log


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_no_rw_check_memories_are_bare_block_rams(family, tmp_path):
    """A 2,048 x 18 memory with one read and one write port: marked ``NO_RW_CHECK`` it is
    block RAM alone; unmarked, Yosys keeps the read-old-word rule on a collision with
    registers and logic around the block RAMs (the write delayed a clock, a comparator,
    a bypass register and a multiplexer after the output)."""
    plain = synthesize(_ReadWriteMemory(None), family=family, top="rw")
    marked = synthesize(_ReadWriteMemory(NO_RW_CHECK), family=family, top="rw", workdir=tmp_path)
    assert plain.brams == marked.brams > 0, (plain.summary(), marked.summary())
    assert plain.ffs > 18 and plain.luts > 10, plain.summary()
    assert marked.ffs == 0 and marked.luts == 0, marked.summary()
    # the step ran on the marked memory (and only there: the log names the parameter set)
    log = (tmp_path / "yosys.log").read_text()
    assert "setparam -set RD_COLLISION_X_MASK" in log


def test_ice40_multipliers_map_onto_dsps():
    """``synth_ice40 -dsp``: a registered 16 x 16 product is one ``SB_MAC16`` (with its
    output register), not LUTs and carries."""
    mac = synthesize(_Multiplier(), family="ice40", top="mul")
    assert mac.dsps == 1, mac.summary()
    assert mac.luts < 40 and mac.carries < 40, mac.summary()


def test_neuron_pass_synthesises_within_budget(record_property):
    """The pass around the pipeline: its memories are outside, so this is sequencing logic,
    and every memory word registered once before any logic reads it (the neuron word three
    times, to meet its profile, accumulator and stimulus words at the update)."""
    config = get_preset("icebreaker")
    report = synthesize(NeuronPass(config), family="ice40", top="neuron_pass")
    record_property("synthesis", report.summary())
    pipeline = synthesize(icebreaker_pipeline(), family="ice40", top="neuron_update")
    assert pipeline.luts < report.luts < UP5K_CELLS // 4, report.summary()
    layouts = core_layouts(config)
    staged = 3 * layouts.neuron.size + PROFILE_LAYOUT.size + layouts.accumulator.size + STIMULUS_BITS
    # beyond those: the words' other fields riding the update, the counters, the stage flags
    assert report.ffs < pipeline.ffs + staged + 300, report.summary()
    assert report.brams == 0 and report.dsps == 0, report.summary()


@pytest.mark.slow
def test_pipeline_closes_timing_on_up5k(record_property):
    report = place_and_route_ice40(icebreaker_pipeline(), top="neuron_update_harness")
    record_property("place_and_route", report.summary())
    assert report.fmax_mhz >= ICEBREAKER_MHZ, report.summary()


def test_fanout_and_event_queue_synthesise_within_budget(record_property):
    """The event side at icebreaker size: the fan-out (SPRAM mode) is logic and one DSP
    (its 16 x 8 product in an ``SB_MAC16``: ``synth_ice40 -dsp``) in under an eighth of
    the UP5K's cells, its flip-flops mostly the registers straight after its memories and
    the FIFOs of axon entries, compartment rows and synapse words in flight (under a
    tenth, plus the 35 of the skid register that ends the queue's ``push.ready`` at the
    fan-out's output); core v2's queue (``EventQueue``, the ECP5's; the iCE40 core has its chunked
    one) at 1,024 events on the iCE40's EBR: each of its three memories is EBRs in the
    shape Yosys picks for its depth: the pool (1,024 event words) and the free FIFO
    (1,024 indices) as 1024 x 4, the arrival table (64 slots) and the drain's copy of it
    as 256 x 16 each."""
    config = dataclasses.replace(get_preset("ulx3s-25f"), name="v2-1024", event_queue=1024)
    layouts = core_layouts(config)
    ebrs = (-(-layouts.event.size // 4) + -(-addr_bits(config.event_queue) // 4)
            + 2 * -(-layouts.arrival.size // 16))
    spram = get_preset("icebreaker")  # the iCE40 core's shape
    fanout = synthesize(FanOut(spram), family="ice40", top="fanout")
    queue = synthesize(EventQueue(config), family="ice40", top="event_queue")
    record_property("synthesis", f"{fanout.summary()}; {queue.summary()}")
    assert 100 < fanout.luts < UP5K_CELLS // 8, fanout.summary()
    assert fanout.brams == 0 and fanout.ffs < UP5K_CELLS // 10 + 35, fanout.summary()
    assert fanout.dsps == 1, fanout.summary()
    assert queue.brams == ebrs, queue.summary()
    assert queue.luts < UP5K_CELLS // 5 and queue.ffs < 1000, queue.summary()


class _ReadWriteMemory(wiring.Component):
    """A 2,048 x 18 memory, its read and write ports straight on the component's ports."""

    def __init__(self, attrs):
        self._attrs = attrs
        super().__init__({"raddr": In(11), "waddr": In(11), "wdata": In(18), "we": In(1), "rdata": Out(18)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = memory = Memory(shape=18, depth=2048, init=[], attrs=self._attrs)
        read, write = memory.read_port(), memory.write_port()
        m.d.comb += [read.addr.eq(self.raddr), self.rdata.eq(read.data), write.addr.eq(self.waddr),
                     write.data.eq(self.wdata), write.en.eq(self.we)]
        return m


class _Multiplier(wiring.Component):
    """A registered 16 x 16 unsigned product."""

    def __init__(self):
        super().__init__({"a": In(16), "b": In(16), "out": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.out.eq(self.a * self.b)
        return m


class _MacWithMemory(wiring.Component):
    """A registered 18 x 18 multiply-accumulate into a 1024 x 18 memory: one DSP, one block RAM."""

    def __init__(self):
        # a signature dict, not annotations: this module has ``from __future__ import annotations``
        super().__init__({"a": In(signed(18)), "b": In(signed(18)), "addr": In(10), "out": Out(18)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = memory = Memory(shape=18, depth=1024, init=[])
        read, write = memory.read_port(), memory.write_port()
        product = Signal(signed(36))
        m.d.sync += product.eq(self.a * self.b)
        m.d.comb += [read.addr.eq(self.addr), write.addr.eq(self.addr),
                     write.data.eq(read.data + product[18:]), write.en.eq(1), self.out.eq(read.data)]
        return m


def test_place_and_route_ecp5_counts_block_rams_and_dsps(record_property):
    report = place_and_route_ecp5(_MacWithMemory(), top="mac_harness")
    record_property("place_and_route", report.summary())
    assert report.family == "ecp5" and report.device == "85k-CABGA381"
    assert report.brams == 1 and report.dsps == 1, report.summary()
    # nextpnr placed what Yosys counted, on a device of the LFE5U-85F's size
    assert report.utilization["DP16KD"] == (1, 208)
    assert report.utilization["MULT18X18D"] == (1, 156)
    # the harness's shift registers hold every port bit
    assert report.utilization["TRELLIS_FF"][0] == report.ffs >= 18 + 18 + 10 + 18, report.summary()
    assert 10 < report.fmax_mhz < 1000, report.summary()


def test_a_design_too_big_for_the_device_is_refused_with_the_numbers():
    """A memory of 32 EBRs' worth on the UP5K (30 EBRs): refused before nextpnr, with
    Yosys's counts and what is short."""

    class TooBig(wiring.Component):
        def __init__(self):
            super().__init__({"addr": In(13), "data": In(16), "out": Out(16)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.memory = memory = Memory(shape=16, depth=8192, init=[])
            read, write = memory.read_port(), memory.write_port()
            m.d.comb += [read.addr.eq(self.addr), write.addr.eq(~self.addr), write.data.eq(self.data),
                         write.en.eq(1), self.out.eq(read.data)]
            return m

    with pytest.raises(PlaceAndRouteError, match="too_big does not fit the ice40 up5k: bram 32") as caught:
        place_and_route_ice40(TooBig(), top="too_big")
    assert caught.value.report.brams == 32, caught.value.report.summary()
    assert caught.value.reason == "needs more than the up5k has: bram 32 > 30"
    assert shortfall(caught.value.report, "up5k") == ["bram 32 > 30"]
    assert shortfall(caught.value.report, "85k") == []  # not an ECP5 device: nothing known


def test_place_and_route_ecp5_names_its_routers():
    with pytest.raises(ValueError, match="router must be one of router1, router2, not 'router3'"):
        place_and_route_ecp5(None, top="unused", router="router3")  # refused before synthesis


def test_nextpnr_failure_carries_its_error_line():
    with pytest.raises(PlaceAndRouteError, match="nextpnr-ecp5 failed on mac_harness") as caught:
        place_and_route_ecp5(_MacWithMemory(), top="mac_harness", package="NOPACKAGE")
    assert caught.value.reason.startswith("ERROR") and "NOPACKAGE" in caught.value.reason
    assert caught.value.report.dsps == 1


# --- bench/hdl.py: its measurement on a tiny core, so the script cannot rot -----------------


def _bench_module():
    """bench/hdl.py as a module (bench/ is a folder of scripts, not a package)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "hdl.py"
    spec = importlib.util.spec_from_file_location("bench_hdl", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


#: 64 neurons x 16 synapses; a queue of 320 events overflows at 10% activity and holds 5%
TINY = CoreConfig(name="bench-tiny", max_cores=1, neurons=64, compartments=4, profiles=4,
                  synapse_words=64 * 16, axons=64, route_words=0, delay_slots=64, event_queue=320,
                  acc_bits=32)


def test_bench_measures_cycles_per_step_on_the_rtl():
    bench = _bench_module()
    logged = []
    measurement = bench.measure_cycles(TINY, timesteps=40, log=logged.append)
    # 10% overflows the queue (the emulator says at which step); 5% is measured
    assert len(measurement.refused) == 1 and logged == [f"  {measurement.refused[0]}"]
    assert measurement.refused[0].startswith("10% activity: the event queue overflowed at step 4")
    # each neuron spikes every 20 steps exactly, from its phase on
    assert measurement.period == 20 and measurement.spikes == 64 * 40 // 20, measurement
    assert measurement.events == bench.FAN_OUT * measurement.spikes
    assert measurement.events_per_step == measurement.events / 40
    assert len(measurement.cycles) == 40 and 0 < measurement.events_held_max <= TINY.event_queue
    # the pass alone takes a clock per neuron; each step's events add to that
    assert min(measurement.cycles) >= TINY.neurons, measurement.cycles
    assert measurement.cycles_per_step == sum(measurement.cycles) / 40
    # clock counts are deterministic: a second run gives the same numbers
    again = bench.measure_cycles(TINY, timesteps=40, log=lambda _: None)
    assert (again.cycles, again.spikes, again.refused) == (measurement.cycles, measurement.spikes,
                                                           measurement.refused)

    row = bench.json_row(TINY, None, 0, 50.0, measurement)
    assert tuple(row) == bench.JSON_KEYS
    assert row["events_per_s"] == round(measurement.events_per_step * 50e6 / measurement.cycles_per_step)
    assert (row["neurons"], row["synapses"], row["events_in_flight"]) == (64, 1024, 320)
    assert bench.json_row(TINY, None, 0, None, measurement)["events_per_s"] is None


def test_bench_judges_the_targets():
    bench = _bench_module()
    target = bench.TARGETS["ulx3s-85f"]

    def run(cycles, events):
        return bench.Measurement(neurons=1000, period=10, timesteps=2, spikes=events // 16, events=2 * events,
                                 cycles=(cycles, cycles), events_held_max=0, refused=(), rtl_seconds=0.0)

    assert bench.cycle_budget(1000, 1600, 1) == pytest.approx(1.1 * 2600 + 64)
    assert bench.cycle_budget(1000, 1600, 2) == pytest.approx(1.1 * 4200 + 64)
    config = get_preset("ulx3s-85f")
    met = dict(bench.verdicts(config, target, fits=True, fmax_mhz=101.0, measurement=run(2924, 1600)))
    assert set(met.values()) == {"met"}, met
    missed = bench.verdicts(config, target, fits=False, fmax_mhz=70.0, measurement=run(2925, 1600))
    assert [status for _, status in missed][:3] == ["MISSED", "MISSED (floor 62.5 MHz met)", "MISSED"]
    small = bench.verdicts(get_preset("icebreaker"), bench.TARGETS["icebreaker"], fits=True, fmax_mhz=20.0,
                           measurement=None)
    assert dict(small)["Fmax 20.0 MHz >= 30 MHz"] == "MISSED (below the floor of 24 MHz)"
    assert small[0][1].startswith("MISSED")

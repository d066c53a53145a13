"""Synthesis smoke checks of the neuron update pipeline with the PyPI toolchain.

Budgets are fractions of the smallest target, the iCEBreaker's iCE40UP5K (5280 logic
cells, 12 MHz board clock): the update pipeline is one of about six blocks of the core,
so it must stay well under a quarter of the chip, use no block RAM or DSP (it has no
multiplier), and close timing at the board clock.
"""

from __future__ import annotations

import pytest

from neurofab.hdl.config import get_preset
from neurofab.hdl.event_queue import EventQueue
from neurofab.hdl.fanout import FanOut
from neurofab.hdl.neuron import NeuronUpdate
from neurofab.hdl.neuron_pass import NeuronPass
from neurofab.hdl.synthesis import place_and_route_ice40, synthesize

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
    # Four stages of payload registers, about 490 bits in all, and nothing else.
    assert 400 < report.ffs < 600, report.summary()
    assert report.brams == 0 and report.dsps == 0, report.summary()


def test_neuron_pass_synthesises_within_budget(record_property):
    """The pass around the pipeline: its memories are outside, so this is sequencing logic."""
    report = synthesize(NeuronPass(get_preset("icebreaker")), family="ice40", top="neuron_pass")
    record_property("synthesis", report.summary())
    pipeline = synthesize(icebreaker_pipeline(), family="ice40", top="neuron_update")
    assert pipeline.luts < report.luts < UP5K_CELLS // 4, report.summary()
    assert report.ffs < 900, report.summary()
    assert report.brams == 0 and report.dsps == 0, report.summary()


@pytest.mark.slow
def test_pipeline_closes_timing_on_up5k(record_property):
    report = place_and_route_ice40(icebreaker_pipeline(), top="neuron_update_harness")
    record_property("place_and_route", report.summary())
    assert report.fmax_mhz >= ICEBREAKER_MHZ, report.summary()


def test_fanout_and_event_queue_synthesise_within_budget(record_property):
    """The event side at icebreaker size: the fan-out is logic only (its 16 x 8 product in
    LUTs on the iCE40), the queue's pool and arrival lists take the 12 EBRs the memory map
    gives them (docs/memory-map.md: 10 + 2)."""
    config = get_preset("icebreaker")
    fanout = synthesize(FanOut(config), family="ice40", top="fanout")
    queue = synthesize(EventQueue(config), family="ice40", top="event_queue")
    record_property("synthesis", f"{fanout.summary()}; {queue.summary()}")
    assert 100 < fanout.luts < UP5K_CELLS // 10, fanout.summary()
    assert fanout.brams == 0 and fanout.ffs < 150, fanout.summary()
    assert queue.brams == 12, queue.summary()
    assert queue.luts < UP5K_CELLS // 10 and queue.ffs < 500, queue.summary()

"""cocotb bench for the converted neuron update pipeline (``NeuronUpdate`` as Verilog).

Run by tests/cocotb/test_cocotb_neuron.py through ``cocotb_tools.runner`` in a
Verilator process; settings come in environment variables (``NEUROFAB_BENCH_*``). The
parts are kept apart, as in cocotb's own examples (the agents are in stream_agents.py):

- ``StreamDriver`` offers input items with random gaps and holds each one until it is
  taken (valid/ready rules);
- ``Backpressure`` drives ``o.ready`` at random;
- ``StreamMonitor`` watches one stream and reports every transfer (one instance on the
  input side, one on the output side);
- the model (``neuron_model.neuron_update``) turns observed inputs into expected outputs;
- :class:`Scoreboard` compares observed outputs, in order, with expected ones.

Payloads are packed and unpacked with the same Amaranth layouts the hardware uses,
so the bench holds no second copy of any field offset.
"""

from __future__ import annotations

import collections
import os
import random

import cocotb
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from neuron_model import NeuronInput, NeuronOutput, neuron_update, random_inputs
from stream_agents import Backpressure, StreamDriver, StreamMonitor

from neurofab.hdl.neuron import update_input_layout, update_output_layout

__all__ = ["Scoreboard", "random_stream"]


def _setting(name: str, default: int) -> int:
    return int(os.environ.get(f"NEUROFAB_BENCH_{name}", default))


class Scoreboard:
    """Expected outputs in, observed outputs in; every observation must match the oldest
    expectation. Mismatches are collected (up to a few, with their inputs) for the report."""

    def __init__(self):
        self.expected: collections.deque[tuple[NeuronInput, NeuronOutput]] = collections.deque()
        self.checked = 0
        self.errors: list[str] = []

    def expect(self, x: NeuronInput, output: NeuronOutput):
        self.expected.append((x, output))

    def observe(self, got: NeuronOutput):
        if not self.expected:
            self.errors.append(f"unexpected output {got} (nothing pending)")
            return
        x, want = self.expected.popleft()
        self.checked += 1
        if got != want and len(self.errors) < 10:
            self.errors.append(f"output {self.checked - 1}: input {x}\n  expected {want}\n  got      {got}")


def random_stream(seed: int, count: int, widths: dict) -> list[NeuronInput]:
    """The bench's input items: the same generator as the Amaranth simulator tests."""
    return random_inputs(seed, count, **widths)


@cocotb.test()
async def neuron_update_random_stream(dut):
    """Thousands of random updates, random input gaps and output stalls, every output checked."""
    seed = _setting("SEED", 1)
    count = _setting("ITEMS", 5000)
    widths = dict(input_width=_setting("INPUT_WIDTH", 32), stimulus_width=_setting("STIMULUS_WIDTH", 32),
                  tag_width=_setting("TAG_WIDTH", 16))
    p_valid = _setting("P_VALID_PERCENT", 80) / 100
    p_ready = _setting("P_READY_PERCENT", 60) / 100
    dut._log.info("seed=%d items=%d widths=%s p_valid=%.2f p_ready=%.2f",
                  seed, count, widths, p_valid, p_ready)

    in_layout = update_input_layout(**widths)
    out_layout = update_output_layout(widths["tag_width"])
    items = random_stream(seed, count, widths)
    words = [in_layout.const(x.as_fields()).as_bits() for x in items]
    by_word = dict(zip(words, items, strict=True))

    scoreboard = Scoreboard()

    def on_input(word, _cycle):
        # The model: what the hardware must produce for the input it actually took.
        x = by_word[word]
        scoreboard.expect(x, neuron_update(x))

    def on_output(word, _cycle):
        view = data.Const(out_layout, word)
        scoreboard.observe(NeuronOutput(tag=view.tag, v=view.v, r=view.r, lfsr=view.lfsr,
                                        spike=view.spike, payload=view.payload))

    rng = random.Random(seed)
    driver = StreamDriver(dut, "i", dut.clk, random.Random(rng.random()), p_valid)
    backpressure = Backpressure(dut, "o", dut.clk, random.Random(rng.random()), p_ready)
    in_monitor = StreamMonitor(dut, "i", dut.clk, on_input)
    out_monitor = StreamMonitor(dut, "o", dut.clk, on_output)

    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    cocotb.start_soon(in_monitor.run())
    cocotb.start_soon(out_monitor.run())
    cocotb.start_soon(backpressure.run())
    await driver.send(words)

    # Drain: a bound in cycles, far above what the stalls can cost; a hang is a failure.
    for _ in range(100 * count):
        if scoreboard.checked >= count:
            break
        await RisingEdge(dut.clk)
    for _ in range(20):  # anything more coming out would be a duplicate
        await RisingEdge(dut.clk)

    dut._log.info("checked %d outputs; input stalled %d cycles, output stalled %d cycles",
                  scoreboard.checked, in_monitor.stalls, out_monitor.stalls)
    assert not scoreboard.errors, "\n".join(scoreboard.errors)
    assert in_monitor.transfers == count, f"{in_monitor.transfers} inputs taken, {count} sent"
    assert scoreboard.checked == count, f"only {scoreboard.checked} of {count} outputs came out"
    assert not scoreboard.expected
    # The run exercised backpressure on both sides.
    assert in_monitor.stalls > count // 20 and out_monitor.stalls > count // 20

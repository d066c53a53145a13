"""The neuron update pipeline as Verilog, under Verilator and cocotb, against the model.

The Amaranth design is converted with ``amaranth.back.verilog`` and built once per
width set (cached in build/cocotb); the bench (tests/cocotb/neuron_bench.py) streams
thousands of random updates through it with random input gaps and output stalls.
"""

from __future__ import annotations

import time

import pytest
from verilator_harness import build_with_verilator, run_bench

from neurofab.hdl.neuron import NeuronUpdate

CONFIGS = {
    "default": dict(input_width=32, stimulus_width=32, tag_width=16),
    "narrow": dict(input_width=20, stimulus_width=24, tag_width=1),
}


@pytest.mark.slow
@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
def test_neuron_update_random_stream(config, tmp_path, record_property):
    widths = CONFIGS[config]
    build = build_with_verilator(NeuronUpdate(**widths), "neuron_update", f"neuron_update_{config}")
    started = time.perf_counter()
    ran = run_bench(build, "neuron_bench", tmp_path,
                    dict(seed=7, items=5000, p_valid_percent=80, p_ready_percent=60, **widths))
    record_property("verilator_build_seconds", round(build.seconds, 2))
    record_property("cocotb_run_seconds", round(time.perf_counter() - started, 2))
    assert ran == 1

"""The neuron pass and its memories as Verilog, under Verilator and cocotb, against the model.

Checks what the Amaranth simulator cannot: that the converted memories (initial
contents, read-port enables, two write ports) behave in Verilog as the pass expects,
one neuron a clock, with the pass's exact length (bench: tests/cocotb/neuron_pass_bench.py).
"""

from __future__ import annotations

import random

import pytest
from pass_model import random_profiles, random_words, small_core
from pass_top import PassTop
from verilator_harness import build_with_verilator, run_bench

SETTINGS = dict(seed=11, passes=25, compartments=3, max_cores=4, neurons=32, p_ready_percent=50)


@pytest.mark.slow
def test_neuron_pass_random_passes(tmp_path):
    # The same draw as neuron_pass_bench.bench_core, for the memories' initial contents.
    config = small_core(compartments=SETTINGS["compartments"], max_cores=SETTINGS["max_cores"],
                        neurons=SETTINGS["neurons"])
    rng = random.Random(SETTINGS["seed"])
    profiles = random_profiles(rng, config)
    words = random_words(rng, config, profiles)
    build = build_with_verilator(PassTop(config, words, profiles), "pass_top", "neuron_pass")
    assert run_bench(build, "neuron_pass_bench", tmp_path, SETTINGS) == 1

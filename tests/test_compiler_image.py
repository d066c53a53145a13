"""Images: bytes round trip, decoding errors, rebuilding the netlist, report, no per-word const."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from amaranth.lib import data
from netgen import random_case
from reference import initial_lfsr as reference_lfsr
from test_compiler_nets import all_to_all, build_netlist

from neurofab.compiler import compile_network, decode_image
from neurofab.compiler.budget import core_bits
from neurofab.compiler.image import IMAGE_MEMORIES, initial_lfsr
from neurofab.errors import ValidationError
from neurofab.hdl.config import PRESETS
from neurofab.hdl.layouts import Memory, core_layouts, spram_regions
from neurofab.network import NeuronParams

NETLIST_FIELDS = ("threshold", "leak", "resting", "refrac", "dend_threshold", "src", "tgt", "weight", "delay",
                  "compartment", "plastic", "connection_offsets")


def assert_same_netlist(a, b):
    for name in NETLIST_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype or name == "connection_offsets", (name, x.dtype, y.dtype)
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.seed == b.seed and a.populations == b.populations


def _two_populations():
    return build_netlist(
        [("exc", 6, NeuronParams(threshold=900, leak=2)), ("inh", 4, NeuronParams(resting=-50, refrac=7)),
         ("out", 3, NeuronParams(threshold=900, leak=2))],
        [
            {"source": "exc", "target": "inh", "pairs": all_to_all(6, 4), "weight": np.arange(24) * 100 - 900,
             "delay": np.arange(24) % 64, "compartment": np.arange(24) % 4},
            {"source": "inh", "target": "exc", "pairs": ([0, 0, 3, 3], [5, 5, 0, 1]), "weight": -300,
             "plastic": False},
            {"source": "exc", "target": "out", "pairs": ([5, 0, 2], [2, 2, 0]), "weight": [32767, -32768, 0]},
        ], seed=1234)


@pytest.mark.parametrize("preset", ["sim", "icebreaker", "ulx3s-25f", "ulx3s-85f"])
@pytest.mark.parametrize("per_core", [None, 1, 4, 5])
def test_bytes_round_trip_exactly_and_rebuild_the_netlist(preset, per_core):
    net = _two_populations()
    if preset != "sim" and per_core is not None:
        pytest.raises(ValidationError, compile_network, net, preset, max_neurons_per_core=per_core)
        return
    image = compile_network(net, preset, max_neurons_per_core=per_core)
    raw = image.to_bytes()
    back = decode_image(raw)
    assert back.to_bytes() == raw
    assert back.sha256() == image.sha256()
    assert back.config == image.config
    assert_same_netlist(back.to_netlist(net.populations), net)
    for c in range(image.n_cores):
        for m in IMAGE_MEMORIES:
            np.testing.assert_array_equal(back.memories[c][m], image.memories[c][m])


@pytest.mark.parametrize("seed", range(12))
def test_random_networks_round_trip_on_every_split(seed):
    case = random_case(seed)
    net = case.netlist
    for per_core in (None, 1, 2, 3, max(1, net.n_neurons // 2)):
        image = decode_image(compile_network(net, "sim", max_neurons_per_core=per_core).to_bytes())
        assert_same_netlist(image.to_netlist(net.populations), net)


def test_image_words_hold_what_the_memory_map_says():
    net = _two_populations()
    image = compile_network(net, "sim", max_neurons_per_core=5)
    assert image.bounds.tolist() == [0, 5, 10, 13]
    # profiles are shared: exc and out have equal parameters
    assert image.fields(0, Memory.PROFILE)["threshold"].tolist() == [900]
    assert image.fields(2, Memory.PROFILE)["threshold"].tolist() == [900]
    core1 = image.fields(1, Memory.PROFILE)
    assert core1["threshold"].tolist() == [900, 1000] and core1["resting"].tolist() == [0, -50]
    neuron = image.fields(1, Memory.NEURON)
    assert neuron["profile"].tolist() == [0, 1, 1, 1, 1]
    assert neuron["v"].tolist() == [0, -50, -50, -50, -50]
    assert neuron["lfsr"].tolist() == [reference_lfsr(0, g) for g in range(5, 10)]
    # exc[5] (core 1, local 0) reaches out (core 2) by a route; inh[0]'s targets are local;
    # inh[3] (local 4) reaches exc[0], exc[1] on core 0
    assert neuron["route_count"].tolist() == [1, 0, 0, 0, 1]
    assert neuron["route_base"].tolist() == [0, 1, 1, 1, 1]
    route = image.fields(1, Memory.ROUTE)
    # core 2's remote axons are exc[0], exc[2], exc[5] (gid order) after its 3 neurons
    assert list(zip(route["core"].tolist(), route["axon"].tolist(), strict=True)) == [(2, 5), (0, 5)]
    axon = image.fields(0, Memory.AXON)
    assert axon["syn_count"].tolist()[5:] == [2] and axon["syn_base"].size == 6
    syn = image.fields(0, Memory.SYNAPSE)
    order = image.fields(0, Memory.SYNAPSE_ORDER)["index"]
    assert np.all(np.diff(axon["syn_base"]) == axon["syn_count"][:-1])
    assert syn["elig"].tolist() == [0] * syn["elig"].size
    np.testing.assert_array_equal(syn["weight"], net.weight[order])
    np.testing.assert_array_equal(syn["target"], net.tgt[order] - 0)


def test_initial_lfsr_matches_the_model():
    gids = np.arange(0, 70000, 7)
    for seed in (0, 1, 0xFFFFFFFF, 123456789):
        assert initial_lfsr(seed, gids).tolist() == [reference_lfsr(seed, int(g)) for g in gids]


def test_empty_network_parts_compile():
    net = build_netlist([("solo", 3)], [])
    image = compile_network(net, "icebreaker")
    assert image.n_cores == 1 and image.n_synapses == 0
    assert_same_netlist(decode_image(image.to_bytes()).to_netlist(net.populations), net)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b"XXXXXXXX" + b[8:], "is not a NeuroFab image"),
    (lambda b: b[:7] + b"\x01" + b[8:], "has format version 1; this build reads 2"),
    (lambda b: b[:-8], "runs past the end"),
    (lambda b: b + b"\0" * 8, "has 8 bytes after its last section"),
    (lambda b: b[:12] + b"}" + b[13:], "header is not valid JSON"),
])
def test_decoding_refuses_broken_images(mutate, message):
    raw = compile_network(_two_populations(), "sim", max_neurons_per_core=4).to_bytes()
    with pytest.raises(ValidationError, match=message):
        decode_image(mutate(raw))


def test_to_netlist_wants_the_image_populations():
    net = _two_populations()
    image = compile_network(net, "sim")
    other = build_netlist([("exc", 6), ("inh", 5), ("out", 3)], []).populations
    with pytest.raises(ValidationError, match=r"populations must be the image's \[\('exc', 6\)"):
        image.to_netlist(other)


def test_report_lists_cores_and_use_against_capacity():
    net = _two_populations()
    image = compile_network(net, "sim", max_neurons_per_core=5)
    report = image.report()
    assert report["cores_used"] == 3 and report["preset"] == "sim"
    assert [c["neurons"] for c in report["cores"]] == [5, 5, 3]
    assert [c["populations"] for c in report["cores"]] == [{"exc": 5}, {"exc": 1, "inh": 4}, {"out": 3}]
    assert sum(c["synapse_words"] for c in report["cores"]) == net.n_synapses
    assert report["cores"][1]["memories"]["synapse"]["capacity"] == 1 << 24
    assert report["image_bytes"] == len(image.to_bytes()) and report["sha256"] == image.sha256()
    ice = compile_network(net, "icebreaker").report_text()
    assert "core preset icebreaker" in ice and "1 of 1 cores used" in ice
    assert "synapse words" in ice and "/ 16,384" in ice and "of a 1,171,456-bit device budget" in ice


def test_no_per_word_const_in_the_image_path(monkeypatch):
    net = random_case(3).netlist
    populations = net.populations

    def forbidden(*args, **kwargs):
        raise AssertionError("Layout.const in the image path")

    monkeypatch.setattr(data.Layout, "const", forbidden)
    monkeypatch.setattr(data.StructLayout, "const", forbidden, raising=False)
    image = decode_image(compile_network(net, "sim", max_neurons_per_core=2).to_bytes())
    image.report()
    assert_same_netlist(image.to_netlist(populations), net)


@pytest.mark.parametrize("preset", ["icebreaker", "ulx3s-25f", "ulx3s-85f", "sim"])
def test_report_memory_bits_are_the_budget_and_the_documents_figure(preset):
    """One computation: the report's per-core bits are budget.core_bits, the doc's "Logical bits"."""
    cfg = PRESETS[preset]
    net = build_netlist([("exc", 6), ("inh", 5)],
                        [{"source": "exc", "target": "inh", "pairs": all_to_all(6, 5)}])
    report = compile_network(net, preset).report()
    lay = core_layouts(cfg)
    # spelt out: the image memories at full depth, then two accumulator banks, stimulus
    # sums, event pool and its free list, arrival lists, spike FIFO and remote axons' traces
    by_hand = (cfg.profiles * lay.profile.size + cfg.neurons * lay.neuron.size + cfg.axons * lay.axon.size
               + cfg.synapse_words * lay.synapse.size + cfg.route_words * lay.route.size
               + 2 * cfg.accumulators * cfg.acc_bits + cfg.neurons * 32
               + cfg.event_queue * (lay.event.size + cfg.queue_bits)
               + cfg.delay_slots * lay.arrival.size + cfg.neurons * (cfg.neuron_bits + 8)
               + (cfg.axons - cfg.neurons) * 8)
    if cfg.spram:
        # the iCE40 core: one accumulator bank, 32-bit SPRAM words for the synapses, the
        # pool, the axon rows and the compartment rows (16 a row), the chunked lists'
        # arrival table (head, tail, fill, full), links and free chunks, the spike list
        regions = spram_regions(cfg)
        chunk_bits = (regions.pool_chunks - 1).bit_length()
        by_hand = (cfg.profiles * lay.profile.size + cfg.neurons * lay.neuron.size
                   + cfg.accumulators * cfg.acc_bits + cfg.neurons * 32
                   + 32 * (cfg.synapse_words + regions.pool_rows + cfg.axons + -(-cfg.synapse_words // 16))
                   + cfg.delay_slots * (2 * chunk_bits + 6 + 1) + 2 * regions.pool_chunks * chunk_bits
                   + cfg.neurons * (cfg.neuron_bits + 7) + cfg.route_words * lay.route.size)
    assert [c["memory_bits"] for c in report["cores"]] == [core_bits(cfg)] == [by_hand]
    if preset != "sim":  # the doc prints the block-RAM arithmetic of the hardware presets
        doc = (Path(__file__).resolve().parent.parent / "docs" / "memory-map.md").read_text()
        section = doc[doc.index(f"#### `{preset}`"):]
        logical = re.search(r"Logical bits ([\d,]+) of", section).group(1)
        assert report["cores"][0]["memory_bits"] == int(logical.replace(",", ""))
        assert f"needs {logical} with its runtime memories" in compile_network(net, preset).report_text()

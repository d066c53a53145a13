"""Core shapes, memory-word layouts, bulk packing, device budgets and the memory map document."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest

from neurofab.compiler.budget import OVER_BUDGET, core_memories, device_budget
from neurofab.compiler.memory_map import update_document
from neurofab.errors import ValidationError
from neurofab.hdl.config import PRESETS, CoreConfig, get_preset
from neurofab.hdl.layouts import (
    Memory,
    core_layouts,
    pack_words,
    unpack_words,
    word_lanes,
    words_from_bytes,
    words_to_bytes,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "memory-map.md"
LAYOUT_NAMES = ("profile", "neuron", "axon", "synapse", "route", "synapse_order", "event", "arrival")


def _config(**changes) -> CoreConfig:
    base = PRESETS["ulx3s-85f"].to_dict()
    base.update(changes)
    return CoreConfig(**base)


def test_get_preset_names_the_unknown_one_and_lists_the_known():
    assert get_preset("icebreaker") is PRESETS["icebreaker"]
    with pytest.raises(ValidationError, match=r"preset 'icebreakr' is unknown; known presets: "
                       r"icebreaker, ulx3s-25f, ulx3s-85f, sim"):
        get_preset("icebreakr")


@pytest.mark.parametrize("field, value, message", [
    ("neurons", 0, r"core.neurons must be an integer in 1 \.\. 1048576, not 0"),
    ("compartments", 5, r"core.compartments must be an integer in 1 \.\. 4, not 5"),
    ("acc_bits", 16, r"core.acc_bits must be an integer in 18 \.\. 64, not 16"),
    ("delay_slots", 65, r"core.delay_slots must be an integer in 1 \.\. 64, not 65"),
    ("synapse_words", 1.5, r"core.synapse_words must be an integer in 1 \.\. \d+, not 1.5"),
    ("axons", 512, r"core.axons must be at least neurons \(1024\).*not 512"),
    ("max_cores", 4, r"core.route_words must be positive when max_cores is 4, not 0"),
    ("name", "", r"core.name must be a non-empty string"),
])
def test_core_config_rejects_bad_values_by_name(field, value, message):
    with pytest.raises(ValidationError, match=message):
        _config(**{field: value})


def test_presets_meet_the_issue_and_fit_their_devices():
    ice, big, small = PRESETS["icebreaker"], PRESETS["ulx3s-85f"], PRESETS["ulx3s-25f"]
    # issue #4: the UP5K holds >= 512 neurons x 4 compartments, >= 16K synapses, delays
    # 0 .. 63 and >= 4K events in flight (docs/ice40-plan.md: 1,024 cannot fit)
    assert ice.max_cores == 1 and ice.neurons >= 512 and ice.compartments == 4
    assert ice.synapse_words >= 16384 and ice.delay_slots == 64 and ice.event_queue >= 4096
    assert (ice.spram, ice.accumulator_banks) == (True, 1)
    assert big.neurons >= 1024 and big.compartments == 4 and big.synapse_words >= 48 * 1024
    assert ice.memory_bits == 30 * 4096 + 4 * 256 * 1024 == 1_171_456
    assert big.memory_bits == 208 * 18 * 1024
    for cfg in (ice, big, small):
        # the model sums in at least 32 bits; a narrower accumulator refuses the jobs
        # whose sums it cannot hold (emulator/capacity.py): the iCE40 has room for 20
        assert cfg.acc_bits >= (20 if cfg is ice else 32)
        placed, totals = device_budget(cfg)
        fits = all(used <= available for used, available in totals.values())
        # a preset over budget says so, with the plan that will fit (docs/memory-map.md prints it)
        assert fits == (cfg.name not in OVER_BUDGET), (cfg.name, totals)
        if fits:
            assert sum(m.bits for m in core_memories(cfg).values()) <= cfg.memory_bits
        # every non-empty memory is mapped, every bit of it
        mapped = {}
        for p in placed:
            mapped.setdefault(p.memory, []).append(p.bits)
        for mem in core_memories(cfg).values():
            if mem.bits:
                spans = sorted(mapped[mem.name])
                assert spans[0][0] == 0 and spans[-1][1] == mem.width
                assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert PRESETS["sim"].max_cores >= 1 << 16


def _random_values(layout, count, rng):
    values = {}
    for name, field in layout:
        w = field.width
        if w == 0:
            values[name] = np.zeros(count, np.int64)
        elif field.shape.signed:
            lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
            values[name] = np.array([rng.choice([lo, hi, 0, -1, rng.randint(lo, hi)]) for _ in range(count)])
        else:
            hi = (1 << w) - 1
            values[name] = np.array([rng.choice([0, hi, rng.randint(0, hi)]) for _ in range(count)])
    return values


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_bulk_packing_agrees_with_amaranth_const(preset, name):
    layout = getattr(core_layouts(PRESETS[preset]), name)
    rng = random.Random(f"{preset}/{name}")
    count = 24
    values = _random_values(layout, count, rng)
    words = pack_words(layout, values, count)
    assert words.shape == (count, word_lanes(layout)) and words.dtype == np.uint64
    for i in range(count):
        expected = layout.const({k: int(v[i]) for k, v in values.items()}).as_value().value
        packed = sum(int(words[i, lane]) << (64 * lane) for lane in range(words.shape[1]))
        assert packed == expected, (name, i)
    back = unpack_words(layout, words)
    for k in values:
        np.testing.assert_array_equal(back[k], values[k])
    raw = words_to_bytes(words)
    assert len(raw) == count * 8 * word_lanes(layout)
    np.testing.assert_array_equal(words_from_bytes(raw, layout, count), words)


def test_pack_refuses_a_value_outside_its_field():
    layout = core_layouts(PRESETS["ulx3s-85f"]).synapse
    with pytest.raises(ValueError, match=r"field target holds 0 \.\. 1023 \(unsigned\(10\)\), not 1024"):
        pack_words(layout, {"target": [5, 1024]}, 2)
    with pytest.raises(ValueError, match=r"field weight holds -32768 \.\. 32767 \(signed\(16\)\),"
                                         r" not -32769"):
        pack_words(layout, {"weight": [-32769]}, 1)
    with pytest.raises(ValueError, match=r"no field 'weigth'"):
        pack_words(layout, {"weigth": [1]}, 1)


def test_every_image_memory_has_a_layout_and_depth():
    layouts = core_layouts(PRESETS["ulx3s-85f"])
    assert layouts.depth(Memory.SYNAPSE) == 49152
    assert layouts.for_memory(Memory.ROUTE) is layouts.route
    assert [m.value for m in Memory] == list(range(9))
    assert layouts.depth(Memory.COMPARTMENT) == 49152 // 16
    assert layouts.depth(Memory.ACCUMULATOR) == 2 * 1024
    assert layouts.for_memory(Memory.ACCUMULATOR).size == 4 * 32


def test_memory_map_document_is_current():
    text = DOC.read_text(encoding="utf-8")
    assert update_document(text) == text, "run: python -m neurofab.compiler.memory_map"


def _doc_table(text: str, heading: str) -> list[list[str]]:
    block = text.split(f"#### `{heading}`\n", 1)[1].strip("\n").split("\n\n", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()[2:]]


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_memory_map_tables_give_every_field_offset_and_width(name):
    # read the document as a person would, and compare with the layouts
    rows = _doc_table(DOC.read_text(encoding="utf-8"), name)
    for column, cfg in enumerate(PRESETS.values()):
        layout = getattr(core_layouts(cfg), name)
        fields = [(n, f) for n, f in layout]
        assert [r[0].strip("`") for r in rows[:-1]] == [n for n, _ in fields]
        for row, (_, f) in zip(rows, fields, strict=False):
            cell = row[2 + column]
            if f.width:
                assert cell == f"{f.offset}..{f.offset + f.width - 1} ({f.width})"
            else:
                assert cell == "- (0)"
            assert row[1] == ("signed" if f.shape.signed else "unsigned")
        assert rows[-1][2 + column].startswith(f"{layout.size} bits")


def test_the_spram_memory_system_fits_the_up5k_exactly():
    """hdl/spram_core.py's memories at 512 neurons: 30 of 30 EBR, 4 of 4 SPRAM (docs/ice40-plan.md)."""
    cfg = dataclasses.replace(PRESETS["icebreaker"], neurons=512, axons=512, event_queue=10240, acc_bits=20,
                              accumulator_banks=1, spram=True)
    placed, totals = device_budget(cfg)
    assert totals == {"SPRAM": (4, 4), "EBR": (30, 30)}
    blocks = {p.memory: p.blocks for p in placed}
    assert (blocks["neuron"], blocks["acc_bank0"], blocks["stimulus"], blocks["spike_list"]) == (9, 10, 4, 2)
    assert "acc_bank1" not in core_memories(cfg)
    # the pool SPRAM: events, then axon rows, then compartment rows, 16,384 rows in all
    stacked = [p for p in placed if p.note.endswith("(stacked)")]
    assert [p.memory for p in stacked] == ["event", "axon", "compartment"]
    assert sum(p.depth for p in stacked) == 16384

"""The iCE40 SPRAM formats of hdl/layouts.py: the 32-bit synapse word, the compartment
rows, the pool SPRAM's region map, and the bulk conversions from an image's logical words.

Every physical row is checked against ``Layout.const`` of the layout it claims to be, and
every conversion round-trips back to the logical words.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from neurofab.errors import ValidationError
from neurofab.hdl.config import CoreConfig, get_preset
from neurofab.hdl.layouts import (
    CHUNK_EVENTS,
    COMPARTMENT_ROW_LAYOUT,
    COMPARTMENTS_PER_ROW,
    SPRAM_ROWS,
    SpramImage,
    core_layouts,
    pack_words,
    spram_axon_rows,
    spram_axon_words,
    spram_image,
    spram_image_words,
    spram_regions,
    spram_synapse_layout,
    spram_synapse_rows,
    spram_synapse_words,
)

#: the icebreaker-to-be of docs/ice40-plan.md
ICEBREAKER_512 = dataclasses.replace(get_preset("icebreaker"), neurons=512, axons=512, event_queue=8192,
                                     acc_bits=20, accumulator_banks=1, spram=True)


def small_config(**changes) -> CoreConfig:
    base = dict(name="test", max_cores=1, neurons=16, compartments=4, profiles=4, synapse_words=200,
                axons=20, route_words=0, delay_slots=64, event_queue=256, acc_bits=20, accumulator_banks=1,
                spram=True)
    return CoreConfig(**{**base, **changes})


def random_synapses(rng: random.Random, config: CoreConfig, count: int) -> list[dict]:
    return [{
        "weight": rng.choice([rng.randint(-32768, 32767), -32768, 32767, 0, -1]),
        "elig": 0,
        "delay": rng.randrange(config.delay_slots),
        "target": rng.randrange(config.neurons),
        "compartment": rng.randrange(config.compartments),
        "plastic": rng.randrange(2),
    } for _ in range(count)]


def logical_words(layout, fields: list[dict]) -> np.ndarray:
    """The words one at a time through ``Layout.const``: the readable definition."""
    return np.array([[layout.const(f).as_bits()] for f in fields], dtype=np.uint64).reshape(-1, 1)


def test_region_map_of_the_icebreaker_to_be():
    regions = spram_regions(ICEBREAKER_512)
    assert regions.pool_chunks == 232 and regions.pool_rows == 14848
    assert regions.axon_base == 14848
    assert regions.compartment_base == 15360
    assert regions.compartment_rows == 1024
    assert regions.end == SPRAM_ROWS  # nothing spare at this preset
    # the chunked queue's bound holds with room: (232 - 64 - 1) * 64 = 10,688 >= 8,192
    assert (regions.pool_chunks - ICEBREAKER_512.delay_slots - 1) * CHUNK_EVENTS >= ICEBREAKER_512.event_queue


def test_region_map_keeps_whole_chunks():
    config = small_config()  # 16,384 - 20 axon rows - 13 compartment rows = 16,351: 255 chunks
    regions = spram_regions(config)
    assert regions.compartment_rows == 13
    assert regions.pool_chunks == 255 and regions.axon_base == 255 * 64
    assert regions.compartment_base == regions.axon_base + 20
    assert regions.end == 16320 + 33 <= SPRAM_ROWS


def test_spram_synapse_word_fields():
    layout = spram_synapse_layout(ICEBREAKER_512)
    assert layout.size == 32
    # weight alone in SP0 (bits 0 .. 15), the rest in SP1
    assert [(name, f.offset, f.width) for name, f in layout] == [
        ("weight", 0, 16), ("delay", 16, 6), ("target", 22, 9), ("plastic", 31, 1)]
    assert layout["weight"].shape.signed
    assert COMPARTMENTS_PER_ROW == 16 and COMPARTMENT_ROW_LAYOUT.size == 32


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("config", [ICEBREAKER_512, small_config(), small_config(compartments=1, neurons=3)],
                         ids=["icebreaker-512", "small", "one-compartment"])
def test_synapse_rows_round_trip(config, seed):
    rng = random.Random(seed)
    count = rng.randrange(1, 300)  # an image holds its used words only
    fields = random_synapses(rng, config, count)
    words = logical_words(core_layouts(config).synapse, fields)
    rows, compartments = spram_synapse_rows(config, words)
    assert rows.dtype == np.uint32 and compartments.dtype == np.uint32
    layout = spram_synapse_layout(config)
    want_rows = [layout.const({k: f[k] for k in ("weight", "delay", "target", "plastic")}).as_bits()
                 for f in fields]
    assert rows.tolist() == want_rows
    assert len(compartments) == -(-count // 16)
    for r, row in enumerate(compartments.tolist()):
        group = [f["compartment"] for f in fields[16 * r:16 * r + 16]]
        assert row == COMPARTMENT_ROW_LAYOUT.const(group + [0] * (16 - len(group))).as_bits()
    back = spram_synapse_words(config, rows, compartments)
    assert back.shape == words.shape and np.array_equal(back, words)
    # a 1-D array of words is taken too
    again, _ = spram_synapse_rows(config, words[:, 0])
    assert np.array_equal(again, rows)


def test_bulk_words_from_pack_words():
    """The compiler's bulk packing and the readable one give the same rows."""
    config = ICEBREAKER_512
    rng = random.Random(7)
    fields = random_synapses(rng, config, 1000)
    columns = {name: np.array([f[name] for f in fields]) for name in fields[0]}
    bulk = pack_words(core_layouts(config).synapse, columns, len(fields))
    assert np.array_equal(bulk, logical_words(core_layouts(config).synapse, fields))
    rows, compartments = spram_synapse_rows(config, bulk)
    assert np.array_equal(spram_synapse_words(config, rows, compartments), bulk)


def test_axon_rows_round_trip():
    config = ICEBREAKER_512
    rng = random.Random(3)
    layout = core_layouts(config).axon
    assert layout.size == 29
    fields = [{"syn_base": rng.randrange(16384), "syn_count": rng.randrange(16385)} for _ in range(300)]
    words = logical_words(layout, fields)
    rows = spram_axon_rows(config, words)
    assert rows.tolist() == [layout.const(f).as_bits() for f in fields]
    assert np.array_equal(spram_axon_words(config, rows), words)


def test_image_rows_round_trip():
    config = small_config()
    rng = random.Random(11)
    synapses = random_synapses(rng, config, 150)
    synapse_words = logical_words(core_layouts(config).synapse, synapses)
    axon_fields = [{"syn_base": 10 * a, "syn_count": 10} for a in range(15)]  # fewer than the 20 axons
    axon_words = logical_words(core_layouts(config).axon, axon_fields)
    image = spram_image(config, axon_words, synapse_words)
    regions = spram_regions(config)
    # the aux rows load from axon_base: every axon row, then the compartment rows
    assert len(image.aux_rows) == 20 + 10
    assert image.aux_rows[:15].tolist() == [core_layouts(config).axon.const(f).as_bits() for f in axon_fields]
    assert image.aux_rows[15:20].tolist() == [0] * 5
    assert regions.compartment_base - regions.axon_base == 20
    assert image.aux_rows[20:].tolist() == spram_synapse_rows(config, synapse_words)[1].tolist()
    axons_back, synapses_back = spram_image_words(config, image)
    assert np.array_equal(axons_back[:15], axon_words) and not axons_back[15:].any()
    assert np.array_equal(synapses_back, synapse_words)
    # an image without synapses: every axon row zero, no compartment row
    empty = spram_image(config, np.zeros((0, 1), np.uint64), np.zeros((0, 1), np.uint64))
    assert empty.synapse_rows.shape == (0,) and empty.aux_rows.tolist() == [0] * 20
    assert [w.shape for w in spram_image_words(config, empty)] == [(20, 1), (0, 1)]


def test_configs_that_do_not_fit_are_refused():
    with pytest.raises(ValidationError, match=r"core\.neurons is 1024: .*33 bits"):
        spram_regions(dataclasses.replace(get_preset("icebreaker"), neurons=1024, axons=1024))
    with pytest.raises(ValidationError, match=r"core\.neurons is 513"):
        spram_synapse_layout(small_config(neurons=513, axons=513))
    with pytest.raises(ValidationError, match=r"core\.synapse_words is 16385: the synapse SPRAM has 16384"):
        spram_regions(small_config(synapse_words=16385))
    # 16,384 - 512 axon rows - 1,024 compartment rows leave 232 chunks: the queue holds (232 - 65) x 64
    assert spram_regions(dataclasses.replace(ICEBREAKER_512, event_queue=167 * 64))
    with pytest.raises(ValidationError, match=r"core\.event_queue is 10689: .* leave 232 chunks"):
        spram_regions(dataclasses.replace(ICEBREAKER_512, event_queue=167 * 64 + 1))
    with pytest.raises(ValidationError, match=r"core\.event_queue is 256: .*12000 axon rows"):
        spram_regions(small_config(axons=12000))


def test_bad_words_are_refused():
    config = small_config()
    layout = core_layouts(config).synapse
    fields = random_synapses(random.Random(1), config, 40)
    fields[33]["elig"] = -5
    with pytest.raises(ValidationError, match=r"synapse\[33\]\.elig is -5"):
        spram_synapse_rows(config, logical_words(layout, fields))
    fields[33]["elig"] = 0
    many = logical_words(layout, fields * 6)  # 240 > 200 words
    with pytest.raises(ValidationError, match=r"synapse has 240 words, more than core\.synapse_words"):
        spram_synapse_rows(config, many)
    with pytest.raises(ValidationError, match="synapse must be packed integer words"):
        spram_synapse_rows(config, np.zeros(3, float))
    with pytest.raises(ValidationError, match=r"axon has 21 words, more than core\.axons \(20\)"):
        spram_axon_rows(config, np.zeros((21, 1), np.uint64))
    rows, compartments = spram_synapse_rows(config, logical_words(layout, fields))
    with pytest.raises(ValidationError, match="compartment_rows has 2 rows, too few for 40"):
        spram_synapse_words(config, rows, compartments[:2])
    with pytest.raises(ValidationError, match="synapse_rows holds rows of 32 bits"):
        spram_synapse_words(config, np.array([1 << 32]), compartments)
    # compartment 3 does not fit a two-compartment core's 1-bit field
    two = small_config(compartments=2)
    with pytest.raises(ValidationError, match="compartment_rows .*compartment"):
        spram_synapse_words(two, rows[:1], np.array([3], np.uint32))
    with pytest.raises(ValidationError, match="axon_rows holds axon entries of"):
        spram_axon_words(config, np.array([1 << 31]))
    with pytest.raises(ValidationError, match="compartment_rows"):
        spram_image_words(config, SpramImage(rows, np.zeros(20, np.uint32)))

"""The fused packers against Amaranth's own ``Layout.const``, and the narrow image sections.

``pack_words`` packs every field of a word in one compiled pass (words of up to two
lanes; wider words one pass per field), ``pack_words_by_key`` sorts the words by a key
in the same pass. Each is checked word by word against ``Layout.const`` for every
layout of every preset, with the column dtypes the compiler really passes.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from netgen import random_case
from test_compiler_image import assert_same_netlist
from test_compiler_nets import all_to_all, build_netlist

from neurofab.compiler import compile_network, decode_image
from neurofab.compiler import image as image_module
from neurofab.compiler import placement as placement_module
from neurofab.errors import ValidationError
from neurofab.hdl.config import PRESETS, CoreConfig
from neurofab.hdl.layouts import (
    Memory,
    core_layouts,
    pack_words,
    pack_words_by_key,
    unpack_words,
    word_bytes,
    word_lanes,
    words_from_bytes,
    words_to_bytes,
)

LAYOUT_NAMES = ("profile", "neuron", "axon", "synapse", "route", "synapse_order", "event", "arrival")

#: a core shape whose neuron word is wider than two lanes (profile 20 + route base 32 +
#: route count 20 bits after the 64-bit state), so it takes the per-field path
WIDE = CoreConfig(**{**PRESETS["sim"].to_dict(), "name": "wide", "profiles": 1 << 20,
                     "route_words": 1 << 32, "max_cores": 1 << 20})


def _const(layout, values: dict, i: int) -> int:
    return layout.const({k: int(v[i]) for k, v in values.items()}).as_value().value


def _as_int(words: np.ndarray, i: int) -> int:
    return sum(int(words[i, lane]) << (64 * lane) for lane in range(words.shape[1]))


def _narrow_dtype(field) -> np.dtype:
    """The narrowest numpy integer type holding the field (as the netlist's arrays are)."""
    w = field.width
    if field.shape.signed:
        return next(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64) if np.iinfo(t).bits >= w)
    if w == 1:
        return np.dtype(bool)
    return next(np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64) if np.iinfo(t).bits >= w)


def _random_values(layout, count: int, rng: random.Random, narrow: bool) -> dict:
    """Random values of every field (width > 0), extremes included; narrow dtypes if asked."""
    values = {}
    for name, field in layout:
        w = field.width
        if w == 0:
            continue
        if field.shape.signed:
            lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
            picks = [rng.choice([lo, hi, 0, -1, rng.randint(lo, hi)]) for _ in range(count)]
        else:
            hi = min((1 << w) - 1, (1 << 63) - 1)
            picks = [rng.choice([0, hi, rng.randint(0, hi)]) for _ in range(count)]
        dtype = _narrow_dtype(field) if narrow else np.dtype(np.int64)
        values[name] = np.array(picks, dtype=np.int64).astype(dtype)
    return values


def _configs():
    return [*PRESETS.values(), WIDE]


@pytest.mark.parametrize("config", _configs(), ids=lambda c: c.name)
@pytest.mark.parametrize("name", LAYOUT_NAMES)
@pytest.mark.parametrize("narrow", [False, True], ids=["int64", "narrow"])
def test_fused_packing_equals_layout_const_word_for_word(config, name, narrow):
    layout = getattr(core_layouts(config), name)
    rng = random.Random(f"{config.name}/{name}/{narrow}")
    count = 40
    values = _random_values(layout, count, rng, narrow)
    words = pack_words(layout, values, count)
    assert words.shape == (count, word_lanes(layout)) and words.dtype == np.uint64
    for i in range(count):
        assert _as_int(words, i) == _const(layout, values, i), (name, i)

    # the same words gathered through an order, and sorted by a key in the same pass
    order = np.array([rng.randrange(count) for _ in range(count)], dtype=np.int64)
    gathered = pack_words(layout, values, count, order=order)
    np.testing.assert_array_equal(gathered, words[order])
    keys = np.array([rng.randrange(5) for _ in range(count)], dtype=np.int32)
    if name != "synapse":  # only the synapse memory is sorted by key with narrow columns:
        values = {k: v.astype(np.int64) for k, v in values.items()}  # fewer specialisations
    by_key, index, counts = pack_words_by_key(layout, values, keys, 6)
    np.testing.assert_array_equal(index, np.argsort(keys, kind="stable"))
    np.testing.assert_array_equal(counts, np.bincount(keys, minlength=6))
    for p in range(count):
        assert _as_int(by_key, p) == _const(layout, values, int(index[p])), (name, p)
    back = unpack_words(layout, by_key)
    for k, v in values.items():
        np.testing.assert_array_equal(back[k], v.astype(np.int64)[index])


def test_the_wide_shape_really_takes_the_per_field_path():
    assert word_lanes(core_layouts(WIDE).neuron) == 3
    assert max(word_lanes(getattr(core_layouts(c), n)) for c in PRESETS.values() for n in LAYOUT_NAMES) == 2


def test_a_layout_of_more_fields_than_one_pass_takes_is_packed_in_groups():
    # 11 fields (one pass takes 8), some spilling across the lane boundary
    layout = data.StructLayout({f"f{i}": (signed if i % 3 == 0 else unsigned)(5 + i) for i in range(11)})
    assert len(list(layout)) == 11 and word_lanes(layout) == 2
    rng = random.Random("groups")
    values = _random_values(layout, 30, rng, narrow=True)
    words = pack_words(layout, values, 30)
    keys = np.array([rng.randrange(4) for _ in range(30)], dtype=np.int64)
    by_key, index, _ = pack_words_by_key(layout, values, keys, 4)
    for i in range(30):
        assert _as_int(words, i) == _const(layout, values, i)
        assert _as_int(by_key, i) == _const(layout, values, int(index[i]))


def test_sorting_by_key_is_stable_and_runs_of_equal_keys_stay_in_order():
    layout = core_layouts(PRESETS["sim"]).synapse
    # runs of equal keys, as a connection lists a source's synapses together
    keys = np.array([3, 3, 3, 0, 0, 2, 3, 3, 0, 1, 1, 1, 3], dtype=np.int32)
    weight = np.arange(keys.size, dtype=np.int32) * 7 - 40
    words, index, counts = pack_words_by_key(layout, {"weight": weight}, keys, 5)
    assert index.tolist() == [3, 4, 8, 9, 10, 11, 5, 0, 1, 2, 6, 7, 12]
    assert counts.tolist() == [3, 3, 1, 6, 0]
    assert unpack_words(layout, words)["weight"].tolist() == weight[index].tolist()


def test_packing_refuses_what_does_not_fit_naming_field_and_value():
    layout = core_layouts(PRESETS["ulx3s-85f"]).synapse
    keys = np.zeros(3, np.int32)
    with pytest.raises(ValueError, match=r"field delay holds 0 \.\. 63 \(unsigned\(6\)\), not 64"):
        pack_words_by_key(layout, {"delay": np.array([1, 64, 70], np.uint8)}, keys, 1)
    with pytest.raises(ValueError, match=r"field weight holds -32768 \.\. 32767 \(signed\(16\)\), not 40000"):
        pack_words_by_key(layout, {"weight": np.array([0, 40000, -40000], np.int32)}, keys, 1)
    with pytest.raises(ValueError, match=r"field target holds 0 \.\. 1023 \(unsigned\(10\)\), "
                                         r"not 18446744073709551615"):
        pack_words(layout, {"target": np.array([1, 2**64 - 1], np.uint64)}, 2)
    with pytest.raises(ValueError, match=r"key 4 is outside 0 \.\. 3"):
        pack_words_by_key(layout, {"weight": np.zeros(3, np.int32)}, np.array([0, 4, 1]), 4)
    with pytest.raises(ValueError, match=r"key -1 is outside 0 \.\. 3"):
        pack_words_by_key(layout, {"weight": np.zeros(3, np.int32)}, np.array([0, -1, 1]), 4)
    with pytest.raises(ValueError, match=r"field weight has 2 values, not 3"):
        pack_words_by_key(layout, {"weight": np.zeros(2, np.int32)}, keys, 1)
    with pytest.raises(ValueError, match=r"field weight has 2 values, not 3"):
        pack_words(layout, {"weight": [1, 2]}, 3)
    with pytest.raises(ValueError, match=r"field weight takes integers, not float64 values"):
        pack_words(layout, {"weight": [1.5]}, 1)
    with pytest.raises(ValueError, match=r"order indexes 0 \.\. 5, beyond field weight's 2 values"):
        pack_words(layout, {"weight": [1, 2]}, 2, order=[0, 5])
    # a field of width 0 (no routes on a one-core board) holds only 0
    route = core_layouts(PRESETS["icebreaker"]).route
    assert pack_words(route, {"core": [0, 0], "axon": [3, 4]}, 2)[:, 0].tolist() == [3, 4]
    with pytest.raises(ValueError, match=r"field core holds 0 \.\. 0 \(unsigned\(0\)\), not 2"):
        pack_words(route, {"core": [0, 2]}, 2)


@pytest.mark.parametrize("config", _configs(), ids=lambda c: c.name)
def test_words_keep_only_their_own_bytes_and_read_back(config):
    rng = random.Random(config.name)
    for name in LAYOUT_NAMES:
        layout = getattr(core_layouts(config), name)
        values = _random_values(layout, 17, rng, narrow=False)
        words = pack_words(layout, values, 17)
        nbytes = word_bytes(layout)
        assert nbytes == max(1, -(-layout.size // 8))
        raw = words_to_bytes(words, nbytes)
        assert len(raw) == 17 * nbytes
        np.testing.assert_array_equal(words_from_bytes(raw, layout, 17, nbytes), words)
        # byte k of a word is bits 8k .. 8k + 7, little-endian
        first = _as_int(words, 0)
        assert int.from_bytes(raw[:nbytes], "little") == first
    layout = core_layouts(PRESETS["sim"]).synapse_order
    words = pack_words(layout, {"index": [5, 70000]}, 2)
    with pytest.raises(ValueError, match="words do not fit 2 bytes"):
        words_to_bytes(words, 2)
    with pytest.raises(ValueError, match=r"a word of 1 lanes is stored in 1 \.\. 8 bytes, not 9"):
        words_to_bytes(words, 9)
    with pytest.raises(ValueError, match=r"2 words of 3 bytes need 6 bytes, not 5"):
        words_from_bytes(b"\0" * 5, layout, 2, 3)


def _chain(n_synapses: int):
    """One population whose synapses number exactly ``n_synapses`` (all-to-all rows, then a rest)."""
    size = 20
    src, tgt = all_to_all(size, size)
    return build_netlist([("p", size)], [{"source": "p", "target": "p",
                                          "pairs": (src[:n_synapses], tgt[:n_synapses])}])


@pytest.mark.parametrize("n_synapses, order_bytes", [(0, 1), (1, 1), (256, 1), (257, 2), (400, 2)])
def test_the_synapse_order_takes_as_few_bytes_as_the_synapse_count_needs(n_synapses, order_bytes):
    net = _chain(n_synapses)
    image = compile_network(net, "sim", max_neurons_per_core=7)
    raw = image.to_bytes()
    length = int.from_bytes(raw[8:12], "little")
    header = json.loads(raw[12:12 + length])
    assert header["format"] == 2 and raw[:8] == b"NFIMAGE\x02"
    layouts = core_layouts(image.config)
    data_bytes = 0
    for s in header["sections"]:
        memory = Memory[s["memory"]]
        expected = order_bytes if memory is Memory.SYNAPSE_ORDER else word_bytes(layouts.for_memory(memory))
        assert s["bytes"] == expected == image.stored_bytes(memory)
        data_bytes += s["words"] * s["bytes"]
    start = 12 + length
    assert len(raw) == start + (-start % 8) + data_bytes
    assert_same_netlist(decode_image(raw).to_netlist(net.populations), net)


def test_the_synapse_order_words_are_the_numbers_and_never_exceed_their_field():
    layout = core_layouts(PRESETS["sim"]).synapse_order
    order = np.array([4, 0, 3, 1, 2], np.int64)
    words = image_module._order_words(layout, order)
    np.testing.assert_array_equal(words, pack_words(layout, {"index": order}, 5))
    narrow = data.StructLayout({"index": unsigned(2)})  # holds 0 .. 3: five synapses do not fit
    with pytest.raises(ValueError, match=r"field index holds 0 \.\. 3 \(unsigned\(2\)\), not 4"):
        image_module._order_words(narrow, order)


def test_decoding_refuses_a_section_of_impossible_width():
    raw = compile_network(_chain(30), "sim").to_bytes()
    length = int.from_bytes(raw[8:12], "little")
    text = raw[12:12 + length].decode()
    bad = text.replace('"bytes":8', '"bytes":9', 1)
    assert bad != text and len(bad) == len(text)
    with pytest.raises(ValidationError, match=r"stores words in 9 bytes; a word of 1 lanes takes 1 \.\. 8"):
        decode_image(raw[:12] + bad.encode() + raw[12 + length:])


@pytest.mark.parametrize("seed", range(8))
def test_one_core_shortcut_gives_the_image_greedy_filling_gives(seed, monkeypatch):
    net = random_case(seed).netlist
    for preset in ("sim", "ulx3s-85f"):
        try:
            fast = compile_network(net, preset)
        except ValidationError:
            continue
        with monkeypatch.context() as m:
            m.setattr(placement_module._Fill, "fits_one_core", lambda self: False)
            slow = compile_network(net, preset)
        assert fast.n_cores == slow.n_cores == 1
        assert fast.to_bytes() == slow.to_bytes()


def test_multi_core_keys_and_targets_pack_as_on_one_core():
    # the same network on one core and on many: every synapse word agrees field for field
    net = random_case(5).netlist
    one = compile_network(net, "sim")
    many = compile_network(net, "sim", max_neurons_per_core=3)
    fields_one = one.fields(0, Memory.SYNAPSE)
    order_one = one.fields(0, Memory.SYNAPSE_ORDER)["index"]
    by_synapse = {int(k): {f: int(v[i]) for f, v in fields_one.items()} for i, k in enumerate(order_one)}
    for c in range(many.n_cores):
        first = int(many.bounds[c])
        fields = many.fields(c, Memory.SYNAPSE)
        for i, k in enumerate(many.fields(c, Memory.SYNAPSE_ORDER)["index"]):
            expected = dict(by_synapse[int(k)])
            expected["target"] -= first
            assert {f: int(v[i]) for f, v in fields.items()} == expected


def test_rebuilding_refuses_routes_to_axons_that_do_not_exist():
    net = random_case(4).netlist
    image = compile_network(net, "sim", max_neurons_per_core=2)
    core = next(c for c in range(image.n_cores) if image.memories[c][Memory.ROUTE].shape[0])
    route = image.fields(core, Memory.ROUTE)
    route["axon"][0] = 999
    layout = core_layouts(image.config).route
    image.memories[core][Memory.ROUTE] = pack_words(layout, route, route["axon"].size)
    with pytest.raises(ValidationError, match=rf"core {core} has a route to core \d+ axon 999, which does"):
        image.to_netlist(net.populations)

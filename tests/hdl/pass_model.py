"""The neuron pass's model: random core contents and what one pass must leave behind.

Shared by the Amaranth simulator tests (tests/hdl/test_hdl_neuron_pass.py) and the
cocotb bench of the pass under Verilator (tests/cocotb/neuron_pass_bench.py). Steps 2
to 5 come from ``neuron_model.neuron_update``; the pass itself is plain: every neuron
``0 .. count - 1`` in order, its accumulators read then cleared, the static fields of
its word kept.
"""

from __future__ import annotations

import random

from neuron_model import NeuronInput, neuron_update, random_input

from neurofab.hdl.config import CoreConfig
from neurofab.hdl.layouts import core_layouts

__all__ = ["small_core", "random_profiles", "random_words", "fields_of", "expected_pass",
           "random_pass_inputs"]

V_MIN, V_MAX = -(1 << 23), (1 << 23) - 1


def small_core(*, compartments: int = 4, max_cores: int = 1, neurons: int = 24) -> CoreConfig:
    """A small core shape for tests; with ``max_cores > 1`` its neuron words have route fields."""
    return CoreConfig(
        name="test", max_cores=max_cores, neurons=neurons, compartments=compartments, profiles=5,
        synapse_words=64, axons=neurons, route_words=8 if max_cores > 1 else 0, delay_slots=64,
        event_queue=64, acc_bits=32)


def random_profiles(rng: random.Random, config: CoreConfig) -> list[dict]:
    """``config.profiles`` parameter sets, drawn like ``neuron_model.random_input``'s."""
    profiles = []
    for _ in range(config.profiles):
        x = random_input(rng)
        profiles.append({name: getattr(x, name) for name in ("threshold", "leak", "resting", "refrac",
                                                             "dend_threshold")})
    return profiles


def random_words(rng: random.Random, config: CoreConfig, profiles: list[dict]) -> list[dict]:
    """``config.neurons`` neuron words: random state, profile index and route fields."""
    layout = core_layouts(config).neuron
    words = []
    for _ in range(config.neurons):
        profile = rng.randrange(config.profiles)
        p = profiles[profile]
        word = {
            "v": rng.choice([rng.randint(V_MIN, V_MAX), p["resting"], p["threshold"] - rng.randint(0, 500)]),
            "r": rng.choice([0, 0, 0, 1, 255, rng.randrange(256)]),
            "lfsr": rng.randrange(1, 1 << 16),
            "x": rng.randrange(256),
            "y": rng.randrange(256),
            "profile": profile,
        }
        # Fields the pass must leave alone, at random values of their width.
        for name in ("route_base", "route_count"):
            width = layout[name].shape.width
            word[name] = rng.randrange(1 << width) if width else 0
        word["v"] = max(V_MIN, min(V_MAX, word["v"]))
        words.append(word)
    return words


def fields_of(word) -> dict:
    """A neuron word as a plain dict (from the simulator's ``data.Const``)."""
    return {name: getattr(word, name) for name, _ in word.shape()}


def expected_pass(config, words, profiles, accumulators, stimulus, count, flags):
    """What one pass must leave: the words, the accumulators and the spike list."""
    words = [dict(w) for w in words]
    accumulators = list(accumulators)
    spikes = []
    c = config.compartments
    for n in range(count):
        w = words[n]
        p = profiles[w["profile"]]
        sums = accumulators[n * c:(n + 1) * c] + [0] * (4 - c)
        out = neuron_update(NeuronInput(tag=n, **flags, v=w["v"], r=w["r"], lfsr=w["lfsr"], **p,
                                        a=tuple(sums), s=stimulus[n]))
        w.update(v=out.v, r=out.r, lfsr=out.lfsr)
        accumulators[n * c:(n + 1) * c] = [0] * c
        if out.spike:
            spikes.append((n, out.payload))
    return words, accumulators, spikes


def random_pass_inputs(rng: random.Random, config: CoreConfig, counts=None, k: int = 0):
    """One pass's accumulators, stimulus sums, flags and count, biased so that neurons fire."""
    c = config.compartments
    scale = rng.choice([100, 2000, 1 << 20, (1 << 31) - 1])
    accumulators = [rng.randint(-scale // 4, scale) for _ in range(config.neurons * c)]
    stimulus = [rng.choice([0, rng.randint(-scale // 4, scale)]) for _ in range(config.neurons)]
    flags = {name: rng.randrange(2) for name in ("dendritic", "noise", "graded")}
    if counts:
        count = counts[k]
    else:
        count = rng.choice([config.neurons, config.neurons, rng.randrange(config.neurons)])
    return accumulators, stimulus, flags, count

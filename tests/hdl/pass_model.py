"""The neuron pass's model: random core contents and what one pass must leave behind.

Shared by the Amaranth simulator tests (tests/hdl/test_hdl_neuron_pass.py) and the
cocotb bench of the pass under Verilator (tests/cocotb/neuron_pass_bench.py). Steps 2
to 5 come from ``neuron_model.neuron_update``; the pass itself is plain: every neuron
``0 .. count - 1`` in order, its accumulator word (one sum per compartment) read then
cleared, the static fields of its word kept.
"""

from __future__ import annotations

import random

from neuron_model import NeuronInput, neuron_update, random_input

from neurofab.hdl.config import CoreConfig
from neurofab.hdl.layouts import STIMULUS_BITS, core_layouts

__all__ = ["small_core", "random_profiles", "random_words", "fields_of", "expected_pass",
           "random_pass_inputs"]

V_MIN, V_MAX = -(1 << 23), (1 << 23) - 1


def small_core(*, compartments: int = 4, max_cores: int = 1, neurons: int = 24,
               acc_bits: int = 32, spram: bool = False) -> CoreConfig:
    """A small core shape for tests; with ``max_cores > 1`` its neuron words have route fields,
    with ``spram`` the neuron pass keeps its profile in a cache (``NeuronPass``)."""
    return CoreConfig(
        name="test", max_cores=max_cores, neurons=neurons, compartments=compartments, profiles=5,
        synapse_words=64, axons=neurons, route_words=8 if max_cores > 1 else 0, delay_slots=64,
        event_queue=64, acc_bits=acc_bits, spram=spram)


def random_profiles(rng: random.Random, config: CoreConfig) -> list[dict]:
    """``config.profiles`` parameter sets, drawn like ``neuron_model.random_input``'s."""
    profiles = []
    for _ in range(config.profiles):
        x = random_input(rng)
        profiles.append({name: getattr(x, name) for name in ("threshold", "leak", "resting", "refrac",
                                                             "dend_threshold")})
    return profiles


def random_words(rng: random.Random, config: CoreConfig, profiles: list[dict], *,
                 mean_run: float = 1.0) -> list[dict]:
    """``config.neurons`` neuron words: random state, profile index and route fields.

    Profiles come in runs along the neurons: each neuron after the first keeps its
    predecessor's profile with probability ``1 - 1 / mean_run`` (``mean_run`` 1: every
    profile drawn afresh), else draws one anew (which may be the same).
    """
    layout = core_layouts(config).neuron
    words = []
    for n in range(config.neurons):
        if n == 0 or mean_run == 1 or rng.random() < 1 / mean_run:
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
    """What one pass must leave: the words, the accumulator words and the spike list.

    ``accumulators[n]`` is neuron ``n``'s accumulator word as a list of ``compartments``
    sums; the pass reads it, and leaves it all zero, for ``n < count``.
    """
    words = [dict(w) for w in words]
    accumulators = [list(sums) for sums in accumulators]
    spikes = []
    c = config.compartments
    for n in range(count):
        w = words[n]
        p = profiles[w["profile"]]
        sums = accumulators[n] + [0] * (4 - c)
        out = neuron_update(NeuronInput(tag=n, **flags, v=w["v"], r=w["r"], lfsr=w["lfsr"], **p,
                                        a=tuple(sums), s=stimulus[n]))
        w.update(v=out.v, r=out.r, lfsr=out.lfsr)
        accumulators[n] = [0] * c
        if out.spike:
            spikes.append((n, out.payload))
    return words, accumulators, spikes


def random_pass_inputs(rng: random.Random, config: CoreConfig, counts=None, k: int = 0):
    """One pass's accumulator words, stimulus sums, flags and count, biased so that neurons fire.

    The sums use the whole signed ``acc_bits`` range at times, the stimulus the whole
    ``STIMULUS_BITS`` range; ``counts[k]`` is the count when given.
    """
    c = config.compartments
    acc_hi = (1 << (config.acc_bits - 1)) - 1
    scale = min(acc_hi, rng.choice([100, 2000, 1 << 20, acc_hi]))
    accumulators = [[rng.randint(-scale // 4, scale) for _ in range(c)] for _ in range(config.neurons)]
    stim_hi = (1 << (STIMULUS_BITS - 1)) - 1
    stimulus = [rng.choice([0, rng.randint(-scale // 4, min(scale, stim_hi))]) for _ in range(config.neurons)]
    if rng.random() < 0.2:  # the ends of both ranges
        n = rng.randrange(config.neurons)
        accumulators[n] = [rng.choice([-acc_hi - 1, acc_hi]) for _ in range(c)]
        stimulus[n] = rng.choice([-stim_hi - 1, stim_hi])
    flags = {name: rng.randrange(2) for name in ("dendritic", "noise", "graded")}
    if counts:
        count = counts[k]
    else:
        count = rng.choice([config.neurons, config.neurons, rng.randrange(config.neurons)])
    return accumulators, stimulus, flags, count

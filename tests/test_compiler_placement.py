"""Placement: capacity errors by message, and identical emulator results on any split."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from netgen import random_case
from test_compiler_nets import all_to_all, build_netlist

from neurofab.compiler import CapacityError, compile_network, decode_image
from neurofab.emulator import simulate
from neurofab.errors import ValidationError
from neurofab.hdl.config import PRESETS, CoreConfig
from neurofab.hdl.layouts import Memory
from neurofab.job import Job, Learning, Stimulus
from neurofab.network import NeuronParams


def _shape(name="tiny", **changes) -> CoreConfig:
    return CoreConfig(**{**PRESETS["sim"].to_dict(), "name": name, **changes})


# -- capacity errors, by message ---------------------------------------------------------

def test_a_connection_too_big_for_the_preset_is_named_with_its_size():
    net = build_netlist([("exc", 256), ("inh", 256)],
                        [{"source": "exc", "target": "inh", "pairs": all_to_all(256, 256)}])
    with pytest.raises(CapacityError) as err:
        compile_network(net, "icebreaker")
    assert str(err.value) == (
        "connection exc->inh needs 65,536 synapse words; core preset icebreaker holds 16,384 per core "
        "(the network needs 4 cores of this shape; preset icebreaker has 1); presets that fit it:"
        " sim (1 core)")
    assert isinstance(err.value, ValidationError) and err.value.path == "core"


def test_many_small_connections_name_the_total_and_the_largest():
    pops = [("a", 200), ("b", 200)]
    conns = [{"source": "a", "target": "b", "pairs": all_to_all(200, 50)},
             {"source": "b", "target": "a", "pairs": all_to_all(200, 40)}]
    with pytest.raises(CapacityError, match=r"^the network needs 18,000 synapse words \(the"
                                            r" largest, connection "
                       r"a->b, 10,000\); core preset icebreaker holds 16,384 per core \(the"
                       r" network needs 2 cores"
                       r".*presets that fit it: ulx3s-85f \(1 core\), sim \(1 core\)$"):
        compile_network(build_netlist(pops, conns), "icebreaker")


def test_too_many_neurons_names_the_population_and_what_fits():
    with pytest.raises(CapacityError, match=r"^the network has 2,000 neurons \(the largest population, big, "
                       r"1,500\); core preset ulx3s-25f holds 1,024 per core \(the network needs 2"
                       r" cores of this "
                       r"shape; preset ulx3s-25f has 1\); presets that fit it: sim \(1 core\)$"):
        compile_network(build_netlist([("small", 500), ("big", 1500)], []), "ulx3s-25f")


def test_a_neuron_with_more_synapses_than_a_core_holds():
    net = build_netlist([("a", 1000), ("b", 1)], [
        {"source": "a", "target": "b", "pairs": (np.arange(1000).repeat(20), np.zeros(20000, int))}])
    with pytest.raises(CapacityError, match=r"^neuron b\[0\] receives 20,000 synapses, so it needs 20,000 "
                       r"synapse words; core preset icebreaker holds 16,384 per core; presets that fit it: "
                       r"ulx3s-85f \(1 core\), sim \(1 core\)$"):
        compile_network(net, "icebreaker")


def test_a_neuron_with_more_sources_than_axon_entries():
    net = build_netlist([("a", 8), ("b", 8)], [{"source": "a", "target": "b", "pairs": all_to_all(8, 8)}])
    with pytest.raises(CapacityError, match=r"^neuron b\[0\] receives synapses from 8 other"
                                            r" neurons, so it needs 9 "
                       r"axon entries; core preset tiny holds 6 per core; presets that fit it: icebreaker"):
        compile_network(net, _shape(neurons=4, axons=6, route_words=64))


def test_too_many_profiles():
    pops = [(f"p{i}", 2, NeuronParams(threshold=100 + i)) for i in range(40)]
    with pytest.raises(CapacityError, match=r"^the network has 40 distinct neuron parameter sets"
                                            r" \(profiles\); "
                       r"core preset icebreaker holds 16 per core \(the network needs 3 cores"):
        compile_network(build_netlist(pops, []), "icebreaker")


def test_route_table_overflow():
    net = build_netlist([("a", 4), ("b", 8)], [{"source": "a", "target": "b", "pairs": all_to_all(4, 8)}])
    with pytest.raises(CapacityError, match=r"^core 0 needs 8 route entries .*core preset tiny"
                                            r" holds 3 per core"):
        compile_network(net, _shape(neurons=4, axons=8, route_words=3, max_cores=8))


def test_delays_and_compartments_beyond_the_core():
    net = build_netlist([("a", 3), ("b", 2)],
                        [{"source": "a", "target": "b", "pairs": ([0, 1], [1, 0]), "delay": [3, 40],
                          "compartment": [0, 3]}])
    with pytest.raises(CapacityError, match=r"^connection a->b uses delay 40; core preset tiny has"
                                            r" 32 delay slots "
                       r"\(delay 0 \.\. 31\)$"):
        compile_network(net, _shape(delay_slots=32))
    with pytest.raises(CapacityError, match=r"^connection a->b uses compartment 3; core preset tiny has 2 "
                       r"compartments \(compartment 0 \.\. 1\)$"):
        compile_network(net, _shape(compartments=2))


def test_forced_split_beyond_the_boards_cores_blames_the_option():
    with pytest.raises(CapacityError, match=r"^200 neurons at most 100 per core"
                                            r" \(--max-neurons-per-core\) need 2 "
                       r"cores; core preset icebreaker has 1; presets that fit it: sim \(2 cores\)$") as err:
        compile_network(build_netlist([("a", 200)], []), "icebreaker", max_neurons_per_core=100)
    assert err.value.path == "max_neurons_per_core"


@pytest.mark.parametrize("value", [0, -3, 1.5, "8", True])
def test_max_neurons_per_core_must_be_a_positive_integer(value):
    with pytest.raises(ValidationError, match=rf"^max_neurons_per_core must be a positive integer,"
                                              rf" not {value!r}"):
        compile_network(build_netlist([("a", 4)], []), "sim", max_neurons_per_core=value)


def test_unknown_preset_name():
    with pytest.raises(ValidationError, match=r"preset 'ice' is unknown; known presets: icebreaker"):
        compile_network(build_netlist([("a", 4)], []), "ice")


# -- placement ---------------------------------------------------------------------------

def test_populations_share_cores_and_split_only_when_full():
    net = build_netlist([("a", 3), ("b", 6), ("c", 2)], [])
    assert compile_network(net, "sim", max_neurons_per_core=4).bounds.tolist() == [0, 4, 8, 11]
    assert compile_network(net, "sim").bounds.tolist() == [0, 11]


def test_synapse_and_axon_capacity_shape_the_split():
    # b[0..3] each receive 5 synapses: a core of 12 synapse words takes two of them
    net = build_netlist([("a", 5), ("b", 4)], [{"source": "a", "target": "b", "pairs": all_to_all(5, 4)}])
    image = compile_network(net, _shape(neurons=16, synapse_words=12, axons=16, route_words=16))
    assert image.bounds.tolist() == [0, 7, 9]  # a (no inputs) + b[0..1], then b[2..3]
    for c in range(image.n_cores):
        assert image.memories[c][Memory.SYNAPSE].shape[0] <= 12
    # axons: 2 local + 5 remote sources exceed 6 entries, so b splits one neuron a core
    image = compile_network(net, _shape(neurons=5, axons=6, route_words=32))
    assert image.bounds.tolist() == [0, 5, 6, 7, 8, 9]


# -- the same results from any partitioning ----------------------------------------------

def assert_same_run(a, b, label):
    np.testing.assert_array_equal(a.spike_times, b.spike_times, err_msg=label)
    np.testing.assert_array_equal(a.spike_gids, b.spike_gids, err_msg=label)
    np.testing.assert_array_equal(a.final_weights, b.final_weights, err_msg=label)
    assert sorted(a.final_state) == sorted(b.final_state), label
    for key in a.final_state:
        np.testing.assert_array_equal(a.final_state[key], b.final_state[key], err_msg=f"{label} {key}")


def _splits(n: int) -> list[tuple[str, int | None, int]]:
    """(name, max_neurons_per_core, expected cores): 1, 2, 3 and many cores."""
    out = [("1 core", None, 1)]
    for cores in (2, 3):
        if n >= cores:
            k = -(-n // cores)
            out.append((f"{cores} cores", k, -(-n // k)))
    out.append(("one neuron a core", 1, n))
    return out


@functools.cache
def _active_cases(learning: bool, count: int = 10) -> tuple:
    """The first ``count`` random cases (seeds from 7000, logged in the test ids' describe())
    with at least 4 neurons, 10 synapses and some spikes; with learning, weights that move."""
    found, seed = [], 7000
    while len(found) < count:
        force = {"stdp": learning, "three_factor": learning and seed % 2 == 1}
        case = random_case(seed, force=force)
        seed += 1
        if case.netlist.n_neurons < 4 or case.netlist.n_synapses < 10:
            continue
        direct = simulate(case.netlist, case.job)
        if direct.total_spikes == 0:
            continue
        if learning and np.array_equal(direct.final_weights, case.netlist.weight):
            continue
        found.append((case, direct))
    return tuple(found)


@pytest.mark.parametrize("learning", [False, True], ids=["static", "learning"])
@pytest.mark.parametrize("index", range(10))
def test_any_split_gives_identical_results(index, learning):
    case, direct = _active_cases(learning)[index]
    net, job = case.netlist, case.job
    assert job.learning.enabled == learning
    for name, per_core, cores in _splits(net.n_neurons):
        image = decode_image(compile_network(net, "sim", max_neurons_per_core=per_core).to_bytes())
        assert image.n_cores == cores, (case.describe(), name)
        assert_same_run(direct, simulate(image.to_netlist(net.populations), job), f"{case.describe()} {name}")
    # the boards run the same image contents, whatever their word widths
    image = decode_image(compile_network(net, "icebreaker").to_bytes())
    assert_same_run(direct, simulate(image.to_netlist(net.populations), job), f"{case.describe()} icebreaker")


def _larger_case(seed: int):
    """Populations of 20 .. 60 neurons, sparse random synapses, a few parameter sets, STDP."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(20, 61, size=3)
    params = [NeuronParams(threshold=int(rng.integers(300, 900)), leak=int(rng.integers(0, 8)),
                           refrac=int(rng.integers(0, 4))) for _ in range(2)]
    pops = [(f"p{i}", int(s), params[i % 2]) for i, s in enumerate(sizes)]
    conns = []
    for i in range(4):
        a, b = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        ns, nt = int(sizes[a]), int(sizes[b])
        keep = rng.random(ns * nt) < 0.15
        s_idx, t_idx = all_to_all(ns, nt)
        k = int(keep.sum())
        conns.append({"source": f"p{a}", "target": f"p{b}", "pairs": (s_idx[keep], t_idx[keep]),
                      "weight": rng.integers(-200, 600, size=k), "delay": rng.integers(0, 8, size=k),
                      "compartment": rng.integers(0, 4, size=k), "plastic": i != 3})
    net = build_netlist(pops, conns, seed=seed)
    stimuli = (Stimulus(population="p0", current=400, start=0, stop=120),
               Stimulus(population="p1", current=250, neurons=(0, 3, 5), times=(4, 9, 60)))
    job = Job(timesteps=150, stimuli=stimuli,
              learning=Learning(enabled=True, dendritic=bool(seed % 2), a_plus=40, a_minus=30), seed=seed)
    return net, job


@pytest.mark.parametrize("seed", range(4))
def test_tight_cores_split_by_synapses_axons_and_profiles_give_identical_results(seed):
    net, job = _larger_case(seed)
    indeg = np.bincount(net.tgt, minlength=net.n_neurons)
    shape = _shape(neurons=net.n_neurons, profiles=1,
                   synapse_words=max(int(indeg.max()), net.n_synapses // 5),
                   axons=net.n_neurons, route_words=net.n_neurons * 8)
    image = decode_image(compile_network(net, shape).to_bytes())
    assert image.n_cores >= 5, image.n_cores
    direct = simulate(net, job)
    assert direct.total_spikes > 0 and np.any(direct.final_weights != net.weight)
    assert_same_run(direct, simulate(image.to_netlist(net.populations), job), f"seed {seed}")


@pytest.mark.parametrize("seed", range(3))
def test_both_axon_assignments_agree_with_a_plain_reference(seed):
    """The pair-table kernel and the sorting kernel against the placement's rules, spelt out."""
    from neurofab.compiler.placement import _assign_axons, _assign_axons_dense

    rng = np.random.default_rng(seed)
    n, m = 60, 900
    src = rng.integers(0, n, m).astype(np.int32)
    tgt = rng.integers(0, n, m).astype(np.int32)
    bounds = np.unique(np.r_[0, rng.integers(1, n, 6), n]).astype(np.int64)
    core_of = np.repeat(np.arange(bounds.size - 1, dtype=np.int64), np.diff(bounds))
    # reference: a core's remote axons follow its neurons, one per distinct source, ascending
    n_axons = np.diff(bounds).copy()
    axon_of = {}
    for s in range(n):
        for c in range(bounds.size - 1):
            if any(core_of[tgt[k]] == c and core_of[s] != c for k in np.flatnonzero(src == s)):
                axon_of[s, c] = n_axons[c]
                n_axons[c] += 1
    base = np.r_[0, np.cumsum(n_axons)]
    key = [base[core_of[t]] + (s - bounds[core_of[s]] if core_of[s] == core_of[t] else axon_of[s, core_of[t]])
           for s, t in zip(src, tgt, strict=True)]
    routes = sorted(axon_of.items())  # by source, then core
    for kernel in (_assign_axons, _assign_axons_dense):
        axon_key, got_axons, syn_count, r_src, r_core, r_axon, by_core = kernel(src, tgt, bounds, core_of)
        assert axon_key.tolist() == key, kernel.__name__
        assert got_axons.tolist() == n_axons.tolist()
        assert syn_count.tolist() == np.bincount(core_of[tgt], minlength=bounds.size - 1).tolist()
        assert by_core.tolist() == np.argsort(core_of[tgt], kind="stable").tolist()
        assert list(zip(r_src.tolist(), r_core.tolist(), r_axon.tolist(), strict=True)) == [
            (s, c, a) for (s, c), a in routes]

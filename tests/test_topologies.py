"""Expanding connections to synapses: exact counts, order, statistics of the random
topologies, determinism, golden values, and an independent reimplementation of
docs/model.md "Drawing the random topologies (draw version 1)".

The reimplementation below is written from that text alone (plain Python integers,
no numpy, nothing imported from neurofab.rng); that it equals ``expand`` exactly
shows the text is complete.
"""

# Network documents and expected pair lists read best unbroken, so long lines are allowed here.
# ruff: noqa: E501

from __future__ import annotations

import hashlib
import math

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurofab import rng
from neurofab.network import Netlist, expand, parse_network, synapse_counts

# --- the documented procedure, written out independently -------------------------------------

MOD = 2**64


def doc_mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % MOD
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % MOD
    return z ^ (z >> 31)


def doc_H(key, counter):
    return doc_mix64((key + (counter + 1) * 0x9E3779B97F4A7C15) % MOD)


class DocStream:
    def __init__(self, key):
        self.key, self.counter = key, 0

    def uniform(self, m):
        while True:
            x = doc_H(self.key, self.counter) >> 32
            self.counter += 1
            prod = x * m
            if prod % 2**32 >= (2**32 - m) % m:
                return prod >> 32


def doc_floyd(stream, n, k):
    chosen = set()
    for t in range(n - k, n):
        r = stream.uniform(t + 1)
        chosen.add(t if r in chosen else r)
    return chosen


def doc_expand(doc):
    """Per connection, the list of (source, target, weight, delay) in synapse order,
    local indices; from the document with the defaults of docs/model.md."""
    sizes = {p["label"]: p["size"] for p in doc["populations"]}
    result = []
    for c, conn in enumerate(doc.get("connections") or []):
        ns, nt = sizes[conn["source"]], sizes[conn["target"]]
        topology = conn.get("topology") or "all_to_all"
        weight = conn.get("weight", 200) if conn.get("weight") is not None else 200
        delay = conn.get("delay", 0) if conn.get("delay") is not None else 0
        p = conn["p"] if conn.get("p") is not None else 0.1
        K = doc_H(doc["seed"], c)
        if topology == "all_to_all":
            pairs = [(i, j) for i in range(ns) for j in range(nt)]
        elif topology == "one_to_one":
            pairs = [(i, i) for i in range(ns)]
        elif topology == "random_sparse":
            P = int(p * 2.0**64)  # exact: scaling by a power of two, then floor
            pairs = [(i, j) for i in range(ns) for j in range(nt) if doc_H(K, i * nt + j) < P]
        elif topology == "fixed_fan_in":
            k = conn["n"] if conn.get("n") is not None else math.floor(p * ns + 0.5)
            pairs = sorted((i, j) for j in range(nt) for i in doc_floyd(DocStream(doc_H(K, j)), ns, k))
        elif topology == "fixed_fan_out":
            k = conn["n"] if conn.get("n") is not None else math.floor(p * nt + 0.5)
            pairs = sorted((i, j) for i in range(ns) for j in doc_floyd(DocStream(doc_H(K, i)), nt, k))
        else:
            full = [(s[0], s[1], s[2] if len(s) > 2 else weight, s[3] if len(s) > 3 else delay)
                    for s in conn["synapses"]]
            result.append(sorted(full, key=lambda s: (s[0], s[1])))  # sorted() is stable
            continue
        result.append([(i, j, weight, delay) for i, j in pairs])
    return result


def netlist_connections(netlist: Netlist, network):
    """The netlist as per-connection lists of local (source, target, weight, delay)."""
    pops = {p.label: p for p in network.populations}
    out = []
    for c, conn in enumerate(network.connections):
        a, b = netlist.connection_offsets[c], netlist.connection_offsets[c + 1]
        so, to = pops[conn.source].offset, pops[conn.target].offset
        out.append(list(zip((netlist.src[a:b] - so).tolist(), (netlist.tgt[a:b] - to).tolist(),
                            netlist.weight[a:b].tolist(), netlist.delay[a:b].tolist(), strict=True)))
    return out


# --- rng primitives --------------------------------------------------------------------------------

def test_hash_is_splitmix64():
    # SplitMix64 seeded with 0: its first outputs are well known
    assert rng.hash64(0, 0) == 0xE220A8397B1DCDAF
    assert rng.hash64(0, 1) == 0x6E789E6AA1B965F4
    assert rng.hash64(0, 2) == 0x06C45D188009454F
    assert rng.mix64(0) == 0
    for key, counter in [(0, 0), (2**64 - 1, 5), (12345, 2**40), (2**63, 0)]:
        assert rng.hash64(key, counter) == doc_H(key, counter)


def test_connection_keys_of_the_documented_example():
    assert rng.connection_key(42, 0) == 0xBDD732262FEB6E95
    assert rng.connection_key(42, 1) == 0x28EFE333B266F103


@pytest.mark.parametrize("p, threshold", [
    (0.0, 0), (1.0, 2**64), (0.5, 2**63), (0.25, 2**62), (2.0**-64, 1), (5e-324, 0),
    (0.1, 1844674407370955264),  # the binary64 value of 0.1 is 0.1000000000000000055511151231257827...
])
def test_sparse_threshold_is_exact(p, threshold):
    assert rng.sparse_threshold(p) == threshold


def test_uniform_below_stays_in_range_and_matches_the_text():
    for m in (1, 2, 3, 7, 1000, 2**20, 2**31 + 11, 2**32):
        stream = DocStream(rng.hash64(9, m))
        counter = 0
        for _ in range(50):
            value, counter = rng.uniform_below(stream.key, counter, m)
            assert 0 <= value < m
            assert value == stream.uniform(m)
            assert counter == stream.counter
    # m = 2^32 never rejects and returns the high half
    assert rng.uniform_below(5, 0, 2**32) == (rng.hash64(5, 0) >> 32, 1)


def test_uniform_below_rejects_the_biased_tail():
    # Find a draw in the rejected zone for m = 3 * 2^30 + 1 (a large zone: (2^32 - m) mod m = 2^30 - 1)
    # and check that the next counter's value is taken instead.
    m = 3 * 2**30 + 1
    reject_below = (2**32 - m) % m
    key = 77
    for counter in range(1000):
        low = ((rng.hash64(key, counter) >> 32) * m) % 2**32
        if low < reject_below:
            break
    else:
        pytest.fail("no rejected draw found")
    value, next_counter = rng.uniform_below(key, counter, m)
    assert next_counter > counter + 1
    expected = DocStream(key)
    expected.counter = counter
    assert value == expected.uniform(m) and next_counter == expected.counter


# --- deterministic topologies -------------------------------------------------------------------

def net(*connections, sizes=(("a", 6), ("b", 4)), seed=5):
    return parse_network({
        "populations": [{"label": label, "size": size} for label, size in sizes],
        "connections": list(connections),
        "seed": seed,
    })


def test_netlist_arrays_and_dtypes():
    network = parse_network({
        "populations": [{"label": "a", "size": 3, "params": {"threshold": 7, "leak": 1, "resting": -2, "refrac": 9,
                                                              "dend_threshold": 11}},
                        {"label": "b", "size": 2}],
        "connections": [{"source": "a", "target": "b", "weight": -5, "delay": 63, "compartment": 3}],
        "seed": 1,
    })
    nl = expand(network)
    assert nl.n_neurons == 5 and nl.n_synapses == 6
    assert nl.threshold.tolist() == [7, 7, 7, 1000, 1000]
    assert nl.leak.tolist() == [1, 1, 1, 3, 3]
    assert nl.resting.tolist() == [-2, -2, -2, 0, 0]
    assert nl.refrac.tolist() == [9, 9, 9, 3, 3]
    assert nl.dend_threshold.tolist() == [11, 11, 11, 500, 500]
    for name in ("threshold", "leak", "resting", "refrac", "dend_threshold", "src", "tgt", "weight"):
        assert getattr(nl, name).dtype == np.int32, name
    assert nl.delay.dtype == np.uint8 and nl.compartment.dtype == np.uint8
    assert nl.plastic.dtype == np.bool_
    assert nl.connection_offsets.dtype == np.int64
    assert nl.src.tolist() == [0, 0, 1, 1, 2, 2]
    assert nl.tgt.tolist() == [3, 4, 3, 4, 3, 4]
    assert set(nl.weight.tolist()) == {-5} and set(nl.delay.tolist()) == {63}
    assert set(nl.compartment.tolist()) == {3}
    assert not nl.plastic.any()  # weight <= 0 is never plastic
    assert nl.seed == 1 and nl.populations == network.populations
    assert nl.extra["draw_version"] == 1


def test_no_connections():
    nl = expand(net())
    assert nl.n_synapses == 0 and nl.n_neurons == 10
    assert nl.connection_offsets.tolist() == [0]
    assert (nl.src.dtype, nl.delay.dtype, nl.plastic.dtype) == (np.int32, np.uint8, np.bool_)


def test_all_to_all_and_one_to_one():
    network = net({"source": "a", "target": "b"}, {"source": "b", "target": "b", "topology": "one_to_one"},
                  {"source": "a", "target": "a"})
    nl = expand(network)
    assert nl.connection_offsets.tolist() == [0, 24, 28, 64]
    local = netlist_connections(nl, network)
    assert [(s, t) for s, t, _, _ in local[0]] == [(i, j) for i in range(6) for j in range(4)]
    assert [(s, t) for s, t, _, _ in local[1]] == [(i, i) for i in range(4)]
    assert [(s, t) for s, t, _, _ in local[2]] == [(i, j) for i in range(6) for j in range(6)]
    assert nl.tgt[24:28].tolist() == [6, 7, 8, 9]  # global ids: b starts at 6
    assert synapse_counts(network) == [24.0, 4.0, 36.0]


def test_plastic_rule():
    network = net(
        {"source": "a", "target": "b", "weight": 1},
        {"source": "a", "target": "b", "weight": 0},
        {"source": "a", "target": "b", "weight": 5, "plastic": False},
        {"source": "a", "target": "b", "topology": "explicit", "weight": 3,
         "synapses": [[0, 0], [0, 1, -1], [0, 2, 0], [0, 3, 9]]},
        {"source": "a", "target": "b", "topology": "explicit", "plastic": False, "synapses": [[0, 0, 9]]},
    )
    nl = expand(network)
    o = nl.connection_offsets
    assert nl.plastic[o[0]:o[1]].all()
    assert not nl.plastic[o[1]:o[2]].any()
    assert not nl.plastic[o[2]:o[3]].any()
    assert nl.plastic[o[3]:o[4]].tolist() == [True, False, False, True]
    assert nl.plastic[o[4]:o[5]].tolist() == [False]


def test_explicit_sorted_stably_with_defaults():
    network = net({"source": "a", "target": "b", "topology": "explicit", "weight": 10, "delay": 2,
                   "synapses": [[3, 1, 7], [0, 2], [3, 1, 8, 5], [0, 0, -3, 1], [3, 1], [5, 3, None, 9]]})
    nl = expand(network)
    assert netlist_connections(nl, network)[0] == [
        (0, 0, -3, 1), (0, 2, 10, 2), (3, 1, 7, 2), (3, 1, 8, 5), (3, 1, 10, 2), (5, 3, 10, 9)]
    assert synapse_counts(network) == [6.0]
    empty = net({"source": "a", "target": "b", "topology": "explicit", "synapses": []})
    assert expand(empty).n_synapses == 0 and synapse_counts(empty) == [0.0]


# --- fixed fan-in / fan-out ---------------------------------------------------------------------------

def pairs_of(nl, c=0):
    a, b = nl.connection_offsets[c], nl.connection_offsets[c + 1]
    return nl.src[a:b].astype(np.int64), nl.tgt[a:b].astype(np.int64)


def assert_source_then_target_order(src, tgt):
    key = src * (1 << 32) + tgt
    assert np.all(np.diff(key) > 0), "synapses must be sorted by source, then target, without repeats"


@pytest.mark.parametrize("ns, nt, n", [(50, 30, 7), (50, 30, 50), (50, 30, 0), (1, 5, 1), (13, 1, 6)])
def test_fixed_fan_in_exact(ns, nt, n):
    network = net({"source": "a", "target": "b", "topology": "fixed_fan_in", "n": n}, sizes=(("a", ns), ("b", nt)))
    src, tgt = pairs_of(expand(network))
    assert src.shape[0] == n * nt
    assert_source_then_target_order(src, tgt)
    assert np.bincount(tgt - ns, minlength=nt).tolist() == [n] * nt
    assert src.min(initial=0) >= 0 and src.max(initial=0) < ns
    assert synapse_counts(network) == [float(n * nt)]


@pytest.mark.parametrize("ns, nt, n", [(30, 50, 7), (30, 50, 50), (30, 50, 0), (5, 1, 1)])
def test_fixed_fan_out_exact(ns, nt, n):
    network = net({"source": "a", "target": "b", "topology": "fixed_fan_out", "n": n}, sizes=(("a", ns), ("b", nt)))
    src, tgt = pairs_of(expand(network))
    assert src.shape[0] == n * ns
    assert_source_then_target_order(src, tgt)
    assert np.bincount(src, minlength=ns).tolist() == [n] * ns
    assert (tgt - ns).min(initial=0) >= 0 and (tgt - ns).max(initial=0) < nt
    assert synapse_counts(network) == [float(n * ns)]


@pytest.mark.parametrize("topology, p, size, k", [
    ("fixed_fan_in", None, 10, 1),     # default p = 0.1
    ("fixed_fan_in", 0.15, 10, 2),     # binary64: 0.15 * 10 = 1.5, + 0.5 = 2.0
    ("fixed_fan_in", 0.25, 10, 3),     # 2.5 rounds up
    ("fixed_fan_in", 0.04, 10, 0),     # 0.9 floors to 0
    ("fixed_fan_in", 1, 10, 10),
    ("fixed_fan_out", 0.5, 7, 4),      # fan-out uses the target size: 3.5 + 0.5
    ("fixed_fan_out", 0.0, 7, 0),
])
def test_k_from_p(topology, p, size, k):
    sizes = (("a", size), ("b", size + 3)) if topology == "fixed_fan_in" else (("a", size + 3), ("b", size))
    conn = {"source": "a", "target": "b", "topology": topology}
    if p is not None:
        conn["p"] = p
    network = net(conn, sizes=sizes)
    nl = expand(network)
    owners = size + 3
    assert nl.n_synapses == k * owners
    assert synapse_counts(network) == [float(k * owners)]


def test_floyd_draws_every_subset_uniformly():
    # 4000 targets each drawing 2 of 5 sources: the 10 subsets should be equally likely.
    network = net({"source": "a", "target": "b", "topology": "fixed_fan_in", "n": 2},
                  sizes=(("a", 5), ("b", 4000)), seed=3)
    src, tgt = pairs_of(expand(network))
    order = np.lexsort((src, tgt))
    pairs = src[order].reshape(-1, 2)
    subset = pairs[:, 0] * 5 + pairs[:, 1]
    counts = np.unique(subset, return_counts=True)[1]
    assert counts.shape[0] == 10
    expected = 4000 / 10
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 35.0  # 9 degrees of freedom: p ~ 7e-5


@pytest.mark.parametrize("topology", ["fixed_fan_in", "fixed_fan_out"])
def test_fixed_fan_choices_are_uniform_over_candidates(topology):
    owners, candidates, k = 3000, 60, 6
    sizes = (("a", candidates), ("b", owners)) if topology == "fixed_fan_in" else (("a", owners), ("b", candidates))
    network = net({"source": "a", "target": "b", "topology": topology, "n": k}, sizes=sizes, seed=11)
    src, tgt = pairs_of(expand(network))
    chosen = src if topology == "fixed_fan_in" else tgt - owners
    counts = np.bincount(chosen, minlength=candidates)
    q = k / candidates
    expected = owners * q
    chi2 = float(((counts - expected) ** 2).sum() / (owners * q * (1 - q)))
    df = candidates - 1
    assert abs(chi2 - df) < 6 * math.sqrt(2 * df)


# --- random_sparse --------------------------------------------------------------------------------

def test_random_sparse_extremes():
    all_pairs = expand(net({"source": "a", "target": "b"}))
    p1 = expand(net({"source": "a", "target": "b", "topology": "random_sparse", "p": 1}))
    assert np.array_equal(p1.src, all_pairs.src) and np.array_equal(p1.tgt, all_pairs.tgt)
    p0 = expand(net({"source": "a", "target": "b", "topology": "random_sparse", "p": 0}))
    assert p0.n_synapses == 0


@pytest.mark.parametrize("seed", range(6))
def test_random_sparse_count_within_a_few_sigma(seed):
    ns, nt, p = 300, 200, 0.05
    network = net({"source": "a", "target": "b", "topology": "random_sparse", "p": p},
                  sizes=(("a", ns), ("b", nt)), seed=seed)
    src, tgt = pairs_of(expand(network))
    mean, sigma = p * ns * nt, math.sqrt(ns * nt * p * (1 - p))
    assert abs(src.shape[0] - mean) < 4 * sigma
    assert_source_then_target_order(src, tgt)
    assert synapse_counts(network) == [pytest.approx(mean)]


def test_random_sparse_is_uniform_over_rows_columns_and_positions():
    ns, nt, p = 400, 300, 0.1
    network = net({"source": "a", "target": "b", "topology": "random_sparse", "p": p},
                  sizes=(("a", ns), ("b", nt)), seed=123)
    src, tgt = pairs_of(expand(network))
    tgt = tgt - ns
    # Row and column counts are Binomial(n, p): their chi-square is near its degrees of freedom.
    for counts, n in ((np.bincount(src, minlength=ns), nt), (np.bincount(tgt, minlength=nt), ns)):
        chi2 = float(((counts - n * p) ** 2).sum() / (n * p * (1 - p)))
        df = counts.shape[0]
        assert abs(chi2 - df) < 6 * math.sqrt(2 * df)
    # No structure along the counter i * nt + j: hits fall evenly into 16 residue classes
    # of the counter and of i + j.
    for values in ((src * nt + tgt) % 16, (src + tgt) % 16, (src ^ tgt) % 16):
        counts = np.bincount(values, minlength=16)
        expected = src.shape[0] / 16
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 50.0  # 15 degrees of freedom: p ~ 1e-5


# --- determinism ----------------------------------------------------------------------------------

RANDOM_CONNECTIONS = [
    {"source": "a", "target": "b", "topology": "random_sparse", "p": 0.3},
    {"source": "a", "target": "b", "topology": "fixed_fan_in", "n": 3},
    {"source": "a", "target": "b", "topology": "fixed_fan_out", "n": 2},
]


@pytest.mark.parametrize("conn", RANDOM_CONNECTIONS, ids=lambda c: c["topology"])
def test_same_seed_same_synapses_other_seed_other_synapses(conn):
    sizes = (("a", 40), ("b", 30))
    first = expand(net(conn, sizes=sizes, seed=99))
    again = expand(net(conn, sizes=sizes, seed=99))
    other = expand(net(conn, sizes=sizes, seed=100))
    assert np.array_equal(first.src, again.src) and np.array_equal(first.tgt, again.tgt)
    assert not (np.array_equal(first.src, other.src) and np.array_equal(first.tgt, other.tgt))


def test_connections_draw_independently():
    # Two identical connections in one network get different keys, hence different synapses.
    conn = RANDOM_CONNECTIONS[0]
    nl = expand(net(conn, conn, sizes=(("a", 40), ("b", 30))))
    first, second = pairs_of(nl, 0), pairs_of(nl, 1)
    assert set(zip(*map(np.ndarray.tolist, first), strict=True)) != set(zip(*map(np.ndarray.tolist, second),
                                                                            strict=True))


def test_thread_count_does_not_matter():
    doc_conns = [dict(c) for c in RANDOM_CONNECTIONS]
    network = net(*doc_conns, sizes=(("a", 3000), ("b", 2000)), seed=8)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = expand(network)
    finally:
        numba.set_num_threads(threads)
    parallel = expand(network)
    assert np.array_equal(single.src, parallel.src) and np.array_equal(single.tgt, parallel.tgt)


# --- the documented procedure, reimplemented -------------------------------------------------------

def test_the_documented_example():
    doc = {"populations": [{"label": "a", "size": 6}, {"label": "b", "size": 5}],
           "connections": [{"source": "a", "target": "b", "topology": "random_sparse", "p": 0.3},
                           {"source": "a", "target": "b", "topology": "fixed_fan_in", "n": 2},
                           {"source": "b", "target": "a", "topology": "fixed_fan_out", "n": 3}],
           "seed": 42}
    network = parse_network(doc)
    local = [[(s, t) for s, t, _, _ in conn] for conn in netlist_connections(expand(network), network)]
    # the lists printed in docs/model.md
    assert local[0] == [(0, 3), (1, 0), (1, 1), (1, 3), (2, 1), (2, 2), (2, 3), (3, 4), (4, 3)]
    assert local[1] == [(0, 2), (1, 0), (1, 4), (2, 3), (3, 0), (3, 1), (4, 2), (4, 3), (4, 4), (5, 1)]
    assert local[2] == [(0, 2), (0, 4), (0, 5), (1, 1), (1, 2), (1, 4), (2, 0), (2, 2), (2, 5), (3, 0), (3, 1),
                        (3, 4), (4, 0), (4, 2), (4, 4)]
    assert [[(s, t) for s, t, _, _ in conn] for conn in doc_expand(doc)] == local


def test_golden_expansion():
    """A change here means the draw changed: that is a new draw version (docs/model.md)."""
    doc = {"populations": [{"label": "in", "size": 300}, {"label": "out", "size": 200}],
           "connections": [
               {"source": "in", "target": "out", "topology": "random_sparse", "p": 0.05},
               {"source": "in", "target": "out", "topology": "fixed_fan_in", "n": 7},
               {"source": "out", "target": "in", "topology": "fixed_fan_out", "p": 0.03},
               {"source": "out", "target": "out", "topology": "random_sparse"},
           ], "seed": 20240601}
    nl = expand(parse_network(doc))
    assert nl.connection_offsets.tolist() == [0, 3013, 4413, 6213, 10238]
    digest = hashlib.sha256(nl.src.astype("<i4").tobytes() + nl.tgt.astype("<i4").tobytes()).hexdigest()
    assert digest == "0c0027073bbc615b4b86fb6a12f81fe51848e6e88a99426dbcb5269ca72eafa6"


@st.composite
def small_networks(draw):
    labels = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    sizes = {label: draw(st.integers(1, 12)) for label in labels}
    connections = []
    for _ in range(draw(st.integers(1, 4))):
        source, target = draw(st.sampled_from(labels)), draw(st.sampled_from(labels))
        ns, nt = sizes[source], sizes[target]
        topology = draw(st.sampled_from(
            ["all_to_all", "random_sparse", "random_sparse", "fixed_fan_in", "fixed_fan_out", "explicit"]
            + (["one_to_one"] if ns == nt else [])))
        conn = {"source": source, "target": target, "topology": topology,
                "weight": draw(st.integers(-5, 5)), "delay": draw(st.integers(0, 63))}
        if topology in ("random_sparse", "fixed_fan_in", "fixed_fan_out") and draw(st.booleans()):
            conn["p"] = draw(st.one_of(st.floats(0, 1), st.sampled_from([0, 1, 0.5, 2.0**-64])))
        if topology in ("fixed_fan_in", "fixed_fan_out") and draw(st.booleans()):
            conn["n"] = draw(st.integers(0, ns if topology == "fixed_fan_in" else nt))
        if topology == "explicit":
            conn["synapses"] = draw(st.lists(
                st.tuples(st.integers(0, ns - 1), st.integers(0, nt - 1), st.integers(-9, 9), st.integers(0, 63))
                .flatmap(lambda t: st.integers(2, 4).map(lambda k, t=t: list(t[:k]))), max_size=8))
        connections.append(conn)
    return {"populations": [{"label": label, "size": sizes[label]} for label in labels],
            "connections": connections, "seed": draw(st.integers(0, 2**32 - 1))}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_networks())
def test_expand_equals_the_documented_procedure(doc):
    network = parse_network(doc)
    assert netlist_connections(expand(network), network) == doc_expand(doc)


# --- at scale --------------------------------------------------------------------------------------

def test_large_fixed_fan_in():
    network = parse_network({"populations": [{"label": "exc", "size": 51200}, {"label": "inh", "size": 12800}],
                             "connections": [{"source": "exc", "target": "exc", "topology": "fixed_fan_in", "n": 64},
                                             {"source": "inh", "target": "exc", "topology": "fixed_fan_in", "n": 16},
                                             {"source": "exc", "target": "inh", "topology": "fixed_fan_in", "n": 80}],
                             "seed": 2})
    nl = expand(network)
    assert nl.n_neurons == 64000
    assert nl.connection_offsets.tolist() == [0, 64 * 51200, 80 * 51200, 80 * 51200 + 80 * 12800]
    # every target got exactly its k, and never a source twice
    assert np.bincount(nl.tgt, minlength=64000).tolist() == [80] * 64000
    for c in range(3):
        assert_source_then_target_order(*pairs_of(nl, c))


def test_large_random_sparse():
    n, p = 32768, 0.0025
    network = parse_network({"populations": [{"label": "x", "size": n}],
                             "connections": [{"source": "x", "target": "x", "topology": "random_sparse", "p": p}],
                             "seed": 77})
    nl = expand(network)
    mean, sigma = p * n * n, math.sqrt(n * n * p * (1 - p))
    assert abs(nl.n_synapses - mean) < 5 * sigma
    assert np.all(np.diff(nl.src.astype(np.int64) * n + nl.tgt) > 0)


def test_hand_built_networks_that_parsing_would_refuse_are_not_expanded():
    from dataclasses import replace

    network = net({"source": "a", "target": "b", "topology": "fixed_fan_in", "n": 2})
    too_many = replace(network, connections=(replace(network.connections[0], n=7),))
    with pytest.raises(ValueError, match="fixed_fan_in needs 0 <= k <= source size 6, not 7"):
        expand(too_many)
    with pytest.raises(ValueError, match="fixed_fan_out needs 0 <= k <= target size 4, not 5"):
        expand(replace(network, connections=(replace(network.connections[0], topology="fixed_fan_out", n=5),)))
    with pytest.raises(ValueError, match="one_to_one needs equal sizes, not 6 and 4"):
        expand(replace(network, connections=(replace(network.connections[0], topology="one_to_one", n=None),)))

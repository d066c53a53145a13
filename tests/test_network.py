"""Network documents: every validation rule with its exact message, null = omitted,
the normalised document, and agreement between the validator and its JSON Schema.

The expected ranges here are copied from docs/model.md, not from neurofab/schema.py,
so a wrong table is caught.
"""

# Exact error messages read best unbroken, so long lines are allowed here.
# ruff: noqa: E501

from __future__ import annotations

import copy
import json
import math
import re

import jsonschema_rs
import pytest
from docpaths import nulled_and_omitted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurofab.network as network_module
from neurofab.errors import ValidationError
from neurofab.network import Connection, Network, NeuronParams, Population, parse_network
from neurofab.schema import network_json_schema

# (field, lo, hi, default) from docs/model.md's table
PARAM_RANGES = [
    ("threshold", 1, 2**23 - 1, 1000),
    ("leak", 0, 65535, 3),
    ("resting", -(2**23), 2**23 - 1, 0),
    ("refrac", 0, 255, 3),
    ("dend_threshold", 0, 2**23 - 1, 500),
]
CONNECTION_RANGES = [
    ("weight", -32768, 32767, 200),
    ("delay", 0, 63, 0),
    ("compartment", 0, 3, 0),
]
TOPOLOGY_LIST = "all_to_all, one_to_one, random_sparse, fixed_fan_in, fixed_fan_out, explicit"


def two_populations(**connection):
    """excitatory (100) and inhibitory (25), one connection exc -> inh with ``connection``."""
    return {
        "populations": [
            {"label": "excitatory", "size": 100, "params": {"threshold": 1000, "leak": 10}},
            {"label": "inhibitory", "size": 25},
        ],
        "connections": [{"source": "excitatory", "target": "inhibitory", **connection}],
        "seed": 7,
    }


def error_of(doc, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_network(doc, **kwargs)
    return info.value


def assert_error(doc, path, message):
    error = error_of(doc)
    assert str(error) == message
    assert error.path == path


# --- the document as a whole ------------------------------------------------------------

def test_quickstart_parses_to_the_expected_network():
    with open("examples/quickstart/network.json", encoding="utf-8") as f:
        net = parse_network(json.load(f))
    assert net == Network(
        populations=(
            Population("excitatory", 100, NeuronParams(threshold=1000, leak=10), 0),
            Population("inhibitory", 25, NeuronParams(threshold=800, leak=5), 100),
        ),
        connections=(
            Connection("excitatory", "inhibitory", "random_sparse", weight=600, p=0.2),
            Connection("inhibitory", "excitatory", weight=-400),
        ),
        seed=42,
    )
    assert net.total_neurons == 125
    assert net.population("inhibitory").offset == 100
    with pytest.raises(KeyError):
        net.population("nope")


def test_defaults_fill_every_omitted_field():
    net = parse_network({"populations": [{"label": "a", "size": 3}], "connections": [
        {"source": "a", "target": "a"}], "seed": 0})
    assert net.populations[0].params == NeuronParams(1000, 3, 0, 3, 500)
    c = net.connections[0]
    assert (c.topology, c.weight, c.delay, c.compartment, c.p, c.n, c.plastic, c.synapses) == (
        "all_to_all", 200, 0, 0, None, None, True, None)


@pytest.mark.parametrize("doc, message", [
    ([], "the network must be an object, not []"),
    ("net", "the network must be an object, not 'net'"),
    (None, "the network must be an object, not null"),
])
def test_the_document_must_be_an_object(doc, message):
    assert_error(doc, "", message)


@pytest.mark.parametrize("populations, path, message", [
    (None, "populations", "populations is required"),
    ([], "populations", "populations must be a non-empty array, not []"),
    ({"label": "a"}, "populations", "populations must be an array, not {\"label\": \"a\"}"),
    ([5], "populations[0]", "populations[0] must be an object, not 5"),
    ([{"size": 3}], "populations[0].label", "populations[0].label is required"),
    ([{"label": "", "size": 3}], "populations[0].label", "populations[0].label must be a non-empty string, not ''"),
    ([{"label": 5, "size": 3}], "populations[0].label", "populations[0].label must be a non-empty string, not 5"),
    ([{"label": "a"}], "populations[0].size", "populations[0].size is required"),
    ([{"label": "a", "size": None}], "populations[0].size", "populations[0].size is required"),
    ([{"label": "a", "size": 0}], "populations[0].size", "populations[0].size must be an integer in 1..1048576, not 0"),
    ([{"label": "a", "size": 2**20 + 1}], "populations[0].size",
     "populations[0].size must be an integer in 1..1048576, not 1048577"),
    ([{"label": "a", "size": 3.0}], "populations[0].size", "populations[0].size must be an integer in 1..1048576, not 3.0"),
    ([{"label": "a", "size": True}], "populations[0].size",
     "populations[0].size must be an integer in 1..1048576, not true"),
    ([{"label": "a", "size": "3"}], "populations[0].size", "populations[0].size must be an integer in 1..1048576, not '3'"),
    ([{"label": "a", "size": 3, "params": 4}], "populations[0].params", "populations[0].params must be an object, not 4"),
    ([{"label": "a", "size": 3}, {"label": "b", "size": 1}, {"label": "a", "size": 2}], "populations[2].label",
     "populations[2].label duplicates populations[0].label ('a')"),
])
def test_population_errors(populations, path, message):
    doc = {"populations": populations} if populations is not None else {}
    assert_error(doc, path, message)


def test_leak_message_from_the_brief():
    doc = two_populations()
    doc["populations"][1]["params"] = {"leak": -4}
    assert_error(doc, "populations[1].params.leak", "populations[1].params.leak must be an integer in 0..65535, not -4")


@pytest.mark.parametrize("name, lo, hi, default", PARAM_RANGES)
def test_neuron_parameter_ranges(name, lo, hi, default):
    def with_value(value):
        # keep threshold > resting so that only the range is tested
        params = {name: value}
        if name == "resting":
            params["threshold"] = 2**23 - 1
        if name == "threshold":
            params["resting"] = -(2**23)
        return {"populations": [{"label": "a", "size": 1, "params": params}], "seed": 1}

    # resting = 2^23 - 1 is in range but no threshold exceeds it (see the threshold tests)
    for ok in (lo, hi if name != "resting" else hi - 1):
        assert getattr(parse_network(with_value(ok)).populations[0].params, name) == ok
    for bad in (lo - 1, hi + 1, float(lo), True, "1", [1]):
        error = error_of(with_value(bad))
        shown = json.dumps(bad) if not isinstance(bad, str) else repr(bad)
        assert str(error) == f"populations[0].params.{name} must be an integer in {lo}..{hi}, not {shown}"
    assert getattr(parse_network({"populations": [{"label": "a", "size": 1}]}).populations[0].params,
                   name) == default


@pytest.mark.parametrize("threshold, resting", [(1000, 1000), (5, 6), (1, 2**23 - 1)])
def test_threshold_must_exceed_resting(threshold, resting):
    doc = {"populations": [{"label": "a", "size": 1, "params": {"threshold": threshold, "resting": resting}}]}
    assert_error(doc, "populations[0].params.threshold",
                 f"populations[0].params.threshold must be greater than resting ({resting}), not {threshold}")


def test_threshold_against_default_resting():
    # threshold alone is checked against the default resting (0): 1 is fine
    doc = {"populations": [{"label": "a", "size": 1, "params": {"threshold": 1}}]}
    assert parse_network(doc).populations[0].params.threshold == 1
    doc = {"populations": [{"label": "a", "size": 1, "params": {"resting": 1000}}]}
    assert str(error_of(doc)) == "populations[0].params.threshold must be greater than resting (1000), not 1000"


# --- unknown keys -------------------------------------------------------------------------

@pytest.mark.parametrize("mutate, path, message", [
    (lambda d: d.update(conections=[]), "conections",
     "unknown key 'conections' in the network (did you mean 'connections'?)"),
    (lambda d: d.update(zzz=1), "zzz", "unknown key 'zzz' in the network"),
    (lambda d: d["populations"][0].update(lable="x"), "populations[0].lable",
     "unknown key 'lable' in populations[0] (did you mean 'label'?)"),
    (lambda d: d["populations"][0]["params"].update(lek=1), "populations[0].params.lek",
     "unknown key 'lek' in populations[0].params (did you mean 'leak'?)"),
    (lambda d: d["connections"][0].update(wieght=1), "connections[0].wieght",
     "unknown key 'wieght' in connections[0] (did you mean 'weight'?)"),
    (lambda d: d["connections"][0].update(stimulus=1), "connections[0].stimulus",
     "unknown key 'stimulus' in connections[0]"),
])
def test_unknown_keys_at_every_level(mutate, path, message):
    doc = two_populations()
    mutate(doc)
    assert_error(doc, path, message)


def test_unknown_key_even_when_null():
    doc = two_populations()
    doc["populations"][1]["colour"] = None
    assert str(error_of(doc)) == "unknown key 'colour' in populations[1]"


# --- connections ---------------------------------------------------------------------------

@pytest.mark.parametrize("connections", [None, []])
def test_connections_may_be_empty_or_omitted(connections):
    doc = {"populations": [{"label": "a", "size": 2}], "connections": connections}
    assert parse_network(doc).connections == ()
    del doc["connections"]
    assert parse_network(doc).connections == ()


@pytest.mark.parametrize("connection, path, message", [
    ({"source": "exc"}, "connections[0].source",
     "connections[0].source 'exc' is not a population of the network (populations: excitatory, inhibitory)"),
    ({"target": "inh"}, "connections[0].target",
     "connections[0].target 'inh' is not a population of the network (populations: excitatory, inhibitory)"),
    ({"source": None}, "connections[0].source", "connections[0].source is required"),
    ({"target": 3}, "connections[0].target", "connections[0].target must be a non-empty string, not 3"),
    ({"topology": "ring"}, "connections[0].topology",
     f"connections[0].topology must be one of {TOPOLOGY_LIST}, not 'ring'"),
    ({"topology": 1}, "connections[0].topology", f"connections[0].topology must be one of {TOPOLOGY_LIST}, not 1"),
    ({"plastic": 1}, "connections[0].plastic", "connections[0].plastic must be true or false, not 1"),
    ({"plastic": "yes"}, "connections[0].plastic", "connections[0].plastic must be true or false, not 'yes'"),
    ({"topology": "random_sparse", "p": 1.5}, "connections[0].p",
     "connections[0].p must be a number in 0.0..1.0, not 1.5"),
    ({"topology": "random_sparse", "p": -0.001}, "connections[0].p",
     "connections[0].p must be a number in 0.0..1.0, not -0.001"),
    ({"topology": "random_sparse", "p": True}, "connections[0].p",
     "connections[0].p must be a number in 0.0..1.0, not true"),
    ({"topology": "random_sparse", "p": "0.5"}, "connections[0].p",
     "connections[0].p must be a number in 0.0..1.0, not '0.5'"),
    ({"topology": "random_sparse", "p": math.nan}, "connections[0].p",
     "connections[0].p must be a number in 0.0..1.0, not nan"),
    ({"p": 0.5}, "connections[0].p",
     "connections[0].p is only allowed with topology random_sparse, fixed_fan_in, fixed_fan_out, "
     "not with 'all_to_all' (got 0.5)"),
    ({"topology": "one_to_one", "p": 0.5}, "connections[0].p",
     "connections[0].p is only allowed with topology random_sparse, fixed_fan_in, fixed_fan_out, "
     "not with 'one_to_one' (got 0.5)"),
    ({"topology": "explicit", "synapses": [], "p": 0}, "connections[0].p",
     "connections[0].p is only allowed with topology random_sparse, fixed_fan_in, fixed_fan_out, "
     "not with 'explicit' (got 0)"),
    ({"topology": "random_sparse", "n": 3}, "connections[0].n",
     "connections[0].n is only allowed with topology fixed_fan_in, fixed_fan_out, not with 'random_sparse' (got 3)"),
    ({"n": 3}, "connections[0].n",
     "connections[0].n is only allowed with topology fixed_fan_in, fixed_fan_out, not with 'all_to_all' (got 3)"),
    ({"topology": "fixed_fan_in", "n": 101}, "connections[0].n",
     "connections[0].n must be an integer in 0..100 (at most the source size for fixed_fan_in), not 101"),
    ({"topology": "fixed_fan_out", "n": 26}, "connections[0].n",
     "connections[0].n must be an integer in 0..25 (at most the target size for fixed_fan_out), not 26"),
    ({"topology": "fixed_fan_in", "n": -1}, "connections[0].n",
     "connections[0].n must be an integer in 0..100 (at most the source size for fixed_fan_in), not -1"),
    ({"topology": "fixed_fan_in", "n": 2.0}, "connections[0].n",
     "connections[0].n must be an integer in 0..100 (at most the source size for fixed_fan_in), not 2.0"),
    ({"topology": "one_to_one"}, "connections[0]",
     "connections[0] topology one_to_one needs populations of equal size, not source 'excitatory' (100) "
     "and target 'inhibitory' (25)"),
    ({"topology": "explicit"}, "connections[0].synapses",
     "connections[0].synapses is required with topology 'explicit'"),
    ({"topology": "explicit", "synapses": None}, "connections[0].synapses",
     "connections[0].synapses is required with topology 'explicit'"),
    ({"synapses": [[0, 0]]}, "connections[0].synapses",
     "connections[0].synapses is only allowed with topology explicit, not with 'all_to_all' (got [[0, 0]])"),
    ({"topology": "fixed_fan_in", "synapses": [[0, 0]]}, "connections[0].synapses",
     "connections[0].synapses is only allowed with topology explicit, not with 'fixed_fan_in' (got [[0, 0]])"),
    ({"topology": "explicit", "synapses": {"0": 1}}, "connections[0].synapses",
     "connections[0].synapses must be an array, not {\"0\": 1}"),
    ({"topology": "explicit", "synapses": [[0, 1], [1]]}, "connections[0].synapses[1]",
     "connections[0].synapses[1] must be an array [source, target], [source, target, weight] or "
     "[source, target, weight, delay], not [1]"),
    ({"topology": "explicit", "synapses": [[0, 1, 2, 3, 4]]}, "connections[0].synapses[0]",
     "connections[0].synapses[0] must be an array [source, target], [source, target, weight] or "
     "[source, target, weight, delay], not [0, 1, 2, 3, 4]"),
    ({"topology": "explicit", "synapses": ["0,1"]}, "connections[0].synapses[0]",
     "connections[0].synapses[0] must be an array [source, target], [source, target, weight] or "
     "[source, target, weight, delay], not '0,1'"),
    ({"topology": "explicit", "synapses": [[0, 1], [100, 0]]}, "connections[0].synapses[1][0]",
     "connections[0].synapses[1][0] must be an integer in 0..99 (source 'excitatory' has 100 neurons), not 100"),
    ({"topology": "explicit", "synapses": [[0, 25]]}, "connections[0].synapses[0][1]",
     "connections[0].synapses[0][1] must be an integer in 0..24 (target 'inhibitory' has 25 neurons), not 25"),
    ({"topology": "explicit", "synapses": [[-1, 0]]}, "connections[0].synapses[0][0]",
     "connections[0].synapses[0][0] must be an integer in 0..99 (source 'excitatory' has 100 neurons), not -1"),
    ({"topology": "explicit", "synapses": [[0, 1.0]]}, "connections[0].synapses[0][1]",
     "connections[0].synapses[0][1] must be an integer in 0..24 (target 'inhibitory' has 25 neurons), not 1.0"),
    ({"topology": "explicit", "synapses": [[0, 1, 32768]]}, "connections[0].synapses[0][2]",
     "connections[0].synapses[0][2] must be an integer in -32768..32767, not 32768"),
    ({"topology": "explicit", "synapses": [[0, 1, 5, 64]]}, "connections[0].synapses[0][3]",
     "connections[0].synapses[0][3] must be an integer in 0..63, not 64"),
    ({"topology": "explicit", "synapses": [[None, 1]]}, "connections[0].synapses[0][0]",
     "connections[0].synapses[0][0] must be an integer in 0..99 (source 'excitatory' has 100 neurons), not null"),
])
def test_connection_errors(connection, path, message):
    assert_error(two_populations(**connection), path, message)


def test_connection_must_be_an_object():
    doc = two_populations()
    doc["connections"] = "all"
    assert_error(doc, "connections", "connections must be an array, not 'all'")
    doc["connections"] = [[1]]
    assert_error(doc, "connections[0]", "connections[0] must be an object, not [1]")


@pytest.mark.parametrize("name, lo, hi, default", CONNECTION_RANGES)
def test_connection_ranges(name, lo, hi, default):
    for ok in (lo, hi):
        assert getattr(parse_network(two_populations(**{name: ok})).connections[0], name) == ok
    for bad in (lo - 1, hi + 1, 1.5, False):
        shown = json.dumps(bad)
        assert_error(two_populations(**{name: bad}), f"connections[0].{name}",
                     f"connections[0].{name} must be an integer in {lo}..{hi}, not {shown}")
    assert getattr(parse_network(two_populations()).connections[0], name) == default


def test_p_and_n_accepted_where_they_apply():
    c = parse_network(two_populations(topology="random_sparse", p=1)).connections[0]
    assert c.p == 1.0 and isinstance(c.p, float)
    c = parse_network(two_populations(topology="random_sparse")).connections[0]
    assert c.p is None  # the default 0.1 applies
    c = parse_network(two_populations(topology="fixed_fan_in", n=100, p=0.3)).connections[0]
    assert (c.n, c.p) == (100, 0.3)
    c = parse_network(two_populations(topology="fixed_fan_out", n=25)).connections[0]
    assert c.n == 25
    c = parse_network(two_populations(topology="fixed_fan_in", n=0)).connections[0]
    assert c.n == 0


def test_p_and_n_null_are_fine_with_any_topology():
    for topology in ("all_to_all", "random_sparse", "fixed_fan_in"):
        c = parse_network(two_populations(topology=topology, p=None, n=None)).connections[0]
        assert (c.p, c.n) == (None, None)


def test_one_to_one_with_equal_sizes():
    doc = {"populations": [{"label": "a", "size": 4}, {"label": "b", "size": 4}],
           "connections": [{"source": "a", "target": "b", "topology": "one_to_one"}]}
    assert parse_network(doc).connections[0].topology == "one_to_one"


def test_explicit_synapses_filled_with_connection_defaults():
    doc = two_populations(topology="explicit", weight=-7, delay=4,
                          synapses=[[0, 1], [2, 3, 9], [4, 5, -1, 62], [99, 24, 0, 0], [1, 1, None, 9],
                                    [2, 2, None, None], [3, 3, 8, None]])
    c = parse_network(doc).connections[0]
    assert c.synapses == ((0, 1, -7, 4), (2, 3, 9, 4), (4, 5, -1, 62), (99, 24, 0, 0), (1, 1, -7, 9),
                          (2, 2, -7, 4), (3, 3, 8, 4))
    empty = parse_network(two_populations(topology="explicit", synapses=[])).connections[0]
    assert empty.synapses == ()


# --- seed -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [-1, 2**32, 1.0, True, "7"])
def test_seed_range(seed):
    doc = two_populations()
    doc["seed"] = seed
    assert_error(doc, "seed", f"seed must be an integer in 0..4294967295, not {json.dumps(seed)}"
                 if not isinstance(seed, str) else "seed must be an integer in 0..4294967295, not '7'")


@pytest.mark.parametrize("seed", [0, 2**32 - 1])
def test_seed_bounds_accepted(seed):
    doc = two_populations()
    doc["seed"] = seed
    assert parse_network(doc, draw_seed=lambda: pytest.fail("must not draw")).seed == seed


def test_missing_seed_is_drawn():
    doc = two_populations()
    del doc["seed"]
    assert parse_network(doc, draw_seed=lambda: 123).seed == 123
    doc["seed"] = None
    assert parse_network(doc, draw_seed=lambda: 2**32 - 1).seed == 2**32 - 1


def test_default_seed_comes_from_secrets(monkeypatch):
    calls = []

    def randbits(bits):
        calls.append(bits)
        return 99

    monkeypatch.setattr(network_module.secrets, "randbits", randbits)
    doc = two_populations()
    del doc["seed"]
    assert parse_network(doc).seed == 99
    assert calls == [32]


def test_drawn_seed_is_checked():
    doc = two_populations()
    del doc["seed"]
    assert str(error_of(doc, draw_seed=lambda: 2**32)) == "seed must be an integer in 0..4294967295, not 4294967296"


# --- null means omitted -----------------------------------------------------------------------

OPTIONAL_PATHS = [
    ("populations", 0, "params"),
    ("populations", 1, "params", "leak"),
    ("populations", 1, "params", "threshold"),
    ("populations", 1, "params", "resting"),
    ("populations", 1, "params", "refrac"),
    ("populations", 1, "params", "dend_threshold"),
    ("connections",),
    ("connections", 0, "topology"),
    ("connections", 0, "weight"),
    ("connections", 0, "delay"),
    ("connections", 0, "compartment"),
    ("connections", 0, "plastic"),
    ("connections", 1, "p"),
    ("connections", 2, "n"),
    ("connections", 2, "p"),
]


def full_network():
    return {
        "populations": [
            {"label": "a", "size": 10, "params": {"threshold": 900}},
            {"label": "b", "size": 10, "params": {"threshold": 1500, "leak": 4, "resting": -3, "refrac": 2,
                                                  "dend_threshold": 100}},
        ],
        "connections": [
            {"source": "a", "target": "b", "topology": "one_to_one", "weight": 5, "delay": 3, "compartment": 2,
             "plastic": False},
            {"source": "b", "target": "a", "topology": "random_sparse", "p": 0.5},
            {"source": "a", "target": "a", "topology": "fixed_fan_in", "n": 3, "p": 0.2},
        ],
        "seed": 11,
    }


@pytest.mark.parametrize("path", OPTIONAL_PATHS, ids=lambda p: ".".join(map(str, p)))
def test_null_equals_omitted(path):
    with_null, omitted = nulled_and_omitted(full_network, path)
    assert parse_network(with_null) == parse_network(omitted)
    assert parse_network(with_null) != parse_network(full_network()) or path[-1] == "p"


def test_seed_null_equals_omitted():
    with_null, omitted = full_network(), full_network()
    with_null["seed"] = None
    del omitted["seed"]
    assert parse_network(with_null, draw_seed=lambda: 5) == parse_network(omitted, draw_seed=lambda: 5)


# --- the normalised document ------------------------------------------------------------------

def test_to_document_fills_every_default():
    doc = parse_network({"populations": [{"label": "a", "size": 2}], "connections": [
        {"source": "a", "target": "a", "topology": "explicit", "synapses": [[1, 0], [0, 1, 3]]},
        {"source": "a", "target": "a", "topology": "random_sparse"}]},
        draw_seed=lambda: 77).to_document()
    assert doc == {
        "populations": [{"label": "a", "size": 2, "params": {
            "threshold": 1000, "leak": 3, "resting": 0, "refrac": 3, "dend_threshold": 500}}],
        "connections": [
            {"source": "a", "target": "a", "topology": "explicit", "weight": 200, "delay": 0, "compartment": 0,
             "plastic": True, "synapses": [[1, 0, 200, 0], [0, 1, 3, 0]]},
            {"source": "a", "target": "a", "topology": "random_sparse", "weight": 200, "delay": 0,
             "compartment": 0, "plastic": True},
        ],
        "seed": 77,
    }


def test_to_document_round_trip_of_a_full_network():
    net = parse_network(full_network())
    doc = net.to_document()
    assert json.loads(json.dumps(doc)) == doc
    assert parse_network(doc, draw_seed=lambda: pytest.fail("seed is in the document")) == net
    assert parse_network(doc).to_document() == doc


# --- random documents: round trip, and the validator against its JSON Schema --------------------

LABELS = st.sampled_from(["a", "b", "exc", "inh", "x y", "ü"])


@st.composite
def valid_networks(draw):
    """Valid network documents (every rule met), with optional fields omitted, null or given."""
    labels = draw(st.lists(LABELS, min_size=1, max_size=3, unique=True))
    sizes = {label: draw(st.integers(1, 12)) for label in labels}

    def maybe(value_strategy):
        return draw(st.one_of(st.just("omit"), st.none(), value_strategy))

    populations = []
    for label in labels:
        pop = {"label": label, "size": sizes[label]}
        params = {}
        for name, lo, hi, _ in PARAM_RANGES:
            if name == "threshold":
                continue
            if name == "resting":
                hi -= 1  # leave room for a threshold above it
            value = maybe(st.integers(lo, hi))
            if value != "omit":
                params[name] = value
        resting = params.get("resting") or 0
        threshold = maybe(st.integers(max(1, resting + 1), 2**23 - 1))
        if threshold != "omit":
            params["threshold"] = threshold
        if resting >= 1000 and params.get("threshold") is None:
            params["threshold"] = resting + 1
        choice = draw(st.sampled_from(["omit", "null", "given"]))
        if choice == "given":
            pop["params"] = params
        elif choice == "null":
            pop["params"] = None
        populations.append(pop)

    connections = []
    for _ in range(draw(st.integers(0, 3))):
        source, target = draw(st.sampled_from(labels)), draw(st.sampled_from(labels))
        ns, nt = sizes[source], sizes[target]
        topologies = ["all_to_all", "random_sparse", "fixed_fan_in", "fixed_fan_out", "explicit"]
        if ns == nt:
            topologies.append("one_to_one")
        topology = draw(st.sampled_from(topologies))
        conn = {"source": source, "target": target}
        if topology != "all_to_all" or draw(st.booleans()):
            conn["topology"] = topology
        for name, lo, hi, _ in CONNECTION_RANGES:
            value = maybe(st.integers(lo, hi))
            if value != "omit":
                conn[name] = value
        plastic = maybe(st.booleans())
        if plastic != "omit":
            conn["plastic"] = plastic
        if topology in ("random_sparse", "fixed_fan_in", "fixed_fan_out"):
            p = maybe(st.one_of(st.floats(0, 1), st.sampled_from([0, 1])))
            if p != "omit":
                conn["p"] = p
        if topology in ("fixed_fan_in", "fixed_fan_out"):
            n = maybe(st.integers(0, ns if topology == "fixed_fan_in" else nt))
            if n != "omit":
                conn["n"] = n
        if topology == "explicit":
            entry = st.tuples(st.integers(0, ns - 1), st.integers(0, nt - 1), st.integers(-32768, 32767),
                              st.integers(0, 63)).flatmap(
                lambda t: st.integers(2, 4).map(lambda k, t=t: list(t[:k])))
            conn["synapses"] = draw(st.lists(entry, max_size=5))
        connections.append(conn)

    doc = {"populations": populations}
    choice = draw(st.sampled_from(["omit", "null", "given"]))
    if choice == "given":
        doc["connections"] = connections
    elif choice == "null":
        doc["connections"] = None
    seed = maybe(st.integers(0, 2**32 - 1))
    if seed != "omit":
        doc["seed"] = seed
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_networks())
def test_valid_documents_round_trip(doc):
    net = parse_network(doc, draw_seed=lambda: 3)
    normalised = net.to_document()
    assert json.loads(json.dumps(normalised)) == normalised
    assert parse_network(normalised) == net
    assert parse_network(normalised).to_document() == normalised


SCHEMA = jsonschema_rs.Draft202012Validator(network_json_schema())

# What only the validator can check (values related across the document); the schema
# accepts these documents. Anything else the validator refuses, the schema must refuse.
CROSS_FIELD_MARKERS = (
    "must be greater than resting",
    "is not a population of the network",
    "duplicates populations[",
    "topology one_to_one needs populations of equal size",
    "(at most the source size", "(at most the target size",
    "neurons), not",
)


def is_cross_field(error: ValidationError) -> bool:
    return any(marker in str(error) for marker in CROSS_FIELD_MARKERS)


def schema_cannot_say(error: ValidationError) -> bool:
    """Cross-field rules, and integral floats for integer fields (JSON Schema counts 5.0
    as an integer; the validator wants an integer literal)."""
    return is_cross_field(error) or re.search(r"must be an integer in \S+( \(.*\))?, not -?\d+\.0$",
                                              str(error)) is not None


def validator_verdict(doc):
    try:
        parse_network(doc, draw_seed=lambda: 0)
    except ValidationError as e:
        return e
    return None


def test_schemas_are_valid_json_schema():
    assert jsonschema_rs.meta.is_valid(network_json_schema())


def test_schema_states_ranges_defaults_and_closes_every_object():
    schema = network_json_schema()
    population = schema["properties"]["populations"]["items"]
    params = population["properties"]["params"]
    for name, lo, hi, default in PARAM_RANGES:
        field = params["properties"][name]
        assert (field["minimum"], field["maximum"], field["default"]) == (lo, hi, default)
        assert field["description"]
    connection = schema["properties"]["connections"]["items"]
    for name, lo, hi, default in CONNECTION_RANGES:
        field = connection["properties"][name]
        assert (field["minimum"], field["maximum"], field["default"]) == (lo, hi, default)
    assert "greater than resting" in params["properties"]["threshold"]["description"]
    assert schema["required"] == ["populations"]
    assert population["required"] == ["label", "size"]

    def objects(node):
        if isinstance(node, dict):
            if node.get("type") in ("object", ["object", "null"]):
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    found = list(objects(schema))
    assert len(found) == 4  # network, population, params, connection
    assert all(o["additionalProperties"] is False for o in found)


SAMPLES = [
    (two_populations(), True),
    (two_populations(topology="explicit", synapses=[[0, 0, 5], [1, 2]]), True),
    (two_populations(topology="explicit"), False),
    (two_populations(synapses=[[0, 0]]), False),
    (two_populations(topology="fixed_fan_in", n=3, p=None), True),
    (two_populations(n=3), False),
    (two_populations(p=0.5), False),
    (two_populations(p=None, n=None, synapses=None), True),
    (two_populations(topology=None, p=0.5), False),
    (two_populations(topology="random_sparse", p=1.01), False),
    (two_populations(topology="ring"), False),
    (two_populations(weight=True), False),
    (two_populations(plastic=0), False),
    (two_populations(topology="explicit", synapses=[[0]]), False),
    (two_populations(topology="explicit", synapses=[[0, 1, 2, 3, 4]]), False),
    ({"populations": []}, False),
    ({"populations": [{"label": "", "size": 1}]}, False),
    ({"populations": [{"label": "a", "size": 1}], "extra": 1}, False),
    ({"populations": [{"label": "a", "size": 1, "params": {"lek": 1}}]}, False),
    ({"populations": [{"label": "a", "size": 1}], "seed": 2**32}, False),
    ({"populations": [{"label": "a", "size": 1}], "seed": None, "connections": None}, True),
]


@pytest.mark.parametrize("doc, valid", SAMPLES)
def test_schema_and_validator_agree_on_samples(doc, valid):
    assert SCHEMA.is_valid(doc) is valid
    assert (validator_verdict(doc) is None) is valid


@pytest.mark.parametrize("doc", [
    {"populations": [{"label": "a", "size": 1, "params": {"resting": 2000}}]},
    {"populations": [{"label": "a", "size": 1}, {"label": "a", "size": 2}]},
    two_populations(source="nobody"),
    two_populations(topology="one_to_one"),
    two_populations(topology="fixed_fan_out", n=26),
    two_populations(topology="explicit", synapses=[[100, 0]]),
])
def test_cross_field_rules_are_only_in_descriptions(doc):
    assert SCHEMA.is_valid(doc)
    error = validator_verdict(doc)
    assert error is not None and is_cross_field(error)


# Values at and just past every range's ends, so that an off-by-one in either the
# validator or the schema shows up.
BOUNDARY_INTS = sorted({v + d for v in (0, 1, 3, 63, 255, 32767, -32768, 65535, 2**20, 2**23, -(2**23), 2**32)
                        for d in (-1, 0, 1)})
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**33), 2**33), st.sampled_from(BOUNDARY_INTS),
              st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()),
              st.floats(0, 1).filter(lambda x: not x.is_integer()),
              st.text(max_size=4), st.sampled_from(["all_to_all", "explicit", "fixed_fan_in", "a", "b"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6,
)
# Values an added key gets: often plausible, so that topology rules are what decides.
ADDED_VALUES = st.one_of(st.sampled_from([0, 1, 3, 0.5, [[0, 0]], [[0, 0, 1, 2]], [], "a"]), JSON_VALUES)


def _locations(node, path=()):
    """Every (container, key) in a document, for mutation."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path + (key,)
            yield from _locations(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield path + (i,)
            yield from _locations(value, path + (i,))


RANGES_BY_KEY = {name: (lo, hi) for name, lo, hi, _ in PARAM_RANGES + CONNECTION_RANGES}
RANGES_BY_KEY.update(size=(1, 2**20), seed=(0, 2**32 - 1), n=(0, 2**20), p=(0.0, 1.0))


def near_ends(key):
    lo, hi = RANGES_BY_KEY[key]
    if isinstance(lo, float):
        return st.sampled_from([lo, hi, -1e-9, 1.0000001, 0, 1, 0.5, True])
    return st.sampled_from([lo - 1, lo, hi, hi + 1, float(lo), True])


@st.composite
def mutated_networks(draw):
    """A valid document with one or two mutations: a value replaced (often by a value at
    or just past its range's ends), a key deleted, or a key added to some object."""
    doc = copy.deepcopy(draw(valid_networks()))
    for _ in range(draw(st.integers(1, 2))):
        locations = list(_locations(doc))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add_key", "add_key"]))
        if action == "add_key":
            objects = [doc] + [node for node in _nodes(doc) if isinstance(node, dict)]
            parent = draw(st.sampled_from(objects))
            key = draw(st.sampled_from(["n", "p", "synapses", "label", "size", "junk", "topology", "leak"]))
            parent[key] = copy.deepcopy(draw(ADDED_VALUES))  # sampled lists are shared between cases
            continue
        if not locations:
            break
        where = draw(st.sampled_from(locations))
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        if action == "delete":
            del parent[where[-1]]
        elif where[-1] in RANGES_BY_KEY and draw(st.booleans()):
            parent[where[-1]] = draw(near_ends(where[-1]))
        else:
            parent[where[-1]] = copy.deepcopy(draw(JSON_VALUES))
    return doc


def _nodes(node):
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _nodes(child)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_networks())
def test_schema_accepts_exactly_what_the_validator_accepts(doc):
    error = validator_verdict(doc)
    if error is None:
        assert SCHEMA.is_valid(doc), "validator accepts, schema refuses"
    elif not SCHEMA.is_valid(doc):
        pass  # both refuse
    else:
        assert schema_cannot_say(error), f"schema accepts, validator refuses: {error}"

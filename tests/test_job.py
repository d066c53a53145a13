"""Job documents: every validation rule with its exact message, null = omitted, binding
to a network, the normalised document, and agreement with the job's JSON Schema.

Expected ranges are copied from docs/model.md, not from neurofab/schema.py.
"""

# Exact error messages read best unbroken, so long lines are allowed here.
# ruff: noqa: E501

from __future__ import annotations

import copy
import json
import re

import jsonschema_rs
import numpy as np
import pytest
from docpaths import nulled_and_omitted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurofab.errors import ValidationError
from neurofab.job import Job, Learning, Reward, Stimulus, bind_job, parse_job, stimulus_schedule
from neurofab.network import parse_network
from neurofab.schema import job_json_schema

LEARNING_INTS = [("a_plus", 0, 32767, 16), ("a_minus", 0, 32767, 16), ("trace_shift", 0, 15, 3),
                 ("elig_shift", 0, 15, 3)]
LEARNING_BOOLS = ["enabled", "graded", "dendritic", "noise", "three_factor"]


def error_of(doc, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_job(doc, **kwargs)
    return info.value


def assert_error(doc, path, message, **kwargs):
    error = error_of(doc, **kwargs)
    assert str(error) == message
    assert error.path == path


def job(**fields):
    return {"timesteps": 100, **fields}


def stim(**fields):
    return job(stimuli=[{"population": "exc", "current": 10, **fields}])


def test_quickstart_job():
    with open("examples/quickstart/job.json", encoding="utf-8") as f:
        parsed = parse_job(json.load(f))
    assert parsed == Job(timesteps=1000, stimuli=(Stimulus("excitatory", 8000, (0, 1, 2, 3, 4), 0, 1000),))


def test_defaults():
    parsed = parse_job({"timesteps": 5, "stimuli": [{"population": "a", "current": -3}]})
    assert parsed == Job(timesteps=5, stimuli=(Stimulus("a", -3, None, start=0, stop=5),), learning=Learning(),
                         rewards=(), seed=0, network_id=None)
    assert parsed.learning == Learning(False, False, False, False, False, 16, 16, 3, 3)


@pytest.mark.parametrize("doc, message", [
    ([], "the job must be an object, not []"),
    (5, "the job must be an object, not 5"),
    (None, "the job must be an object, not null"),
])
def test_the_document_must_be_an_object(doc, message):
    assert_error(doc, "", message)


def test_unknown_key_message_from_the_brief():
    assert_error(job(stimulus=[]), "stimulus", "unknown key 'stimulus' in the job (did you mean 'stimuli'?)")


@pytest.mark.parametrize("doc, path, message", [
    (job(seeds=1), "seeds", "unknown key 'seeds' in the job (did you mean 'seed'?)"),
    (job(priority=1), "priority", "unknown key 'priority' in the job"),
    (stim(neuron=[1]), "stimuli[0].neuron", "unknown key 'neuron' in stimuli[0] (did you mean 'neurons'?)"),
    (stim(amplitude=None), "stimuli[0].amplitude", "unknown key 'amplitude' in stimuli[0]"),
    (job(learning={"enable": True}), "learning.enable", "unknown key 'enable' in learning (did you mean 'enabled'?)"),
    (job(rewards=[{"time": 1, "value": 2}]), "rewards[0].time", "unknown key 'time' in rewards[0] (did you mean 'timestep'?)"),
])
def test_unknown_keys_at_every_level(doc, path, message):
    assert_error(doc, path, message)


@pytest.mark.parametrize("doc, path, message", [
    ({}, "timesteps", "timesteps is required"),
    ({"timesteps": None}, "timesteps", "timesteps is required"),
    (job(timesteps=0), "timesteps", "timesteps must be an integer in 1..10000000, not 0"),
    (job(timesteps=10_000_001), "timesteps", "timesteps must be an integer in 1..10000000, not 10000001"),
    (job(timesteps=100.0), "timesteps", "timesteps must be an integer in 1..10000000, not 100.0"),
    (job(timesteps=True), "timesteps", "timesteps must be an integer in 1..10000000, not true"),
    (job(network_id=5), "network_id", "network_id must be a string, not 5"),
    (job(network_id=["net_1"]), "network_id", "network_id must be a string, not [\"net_1\"]"),
    (job(seed=-1), "seed", "seed must be an integer in 0..4294967295, not -1"),
    (job(seed=2**32), "seed", "seed must be an integer in 0..4294967295, not 4294967296"),
    (job(seed=False), "seed", "seed must be an integer in 0..4294967295, not false"),
    (job(stimuli={}), "stimuli", "stimuli must be an array, not {}"),
    (job(stimuli=[3]), "stimuli[0]", "stimuli[0] must be an object, not 3"),
    (job(stimuli=[{"current": 1}]), "stimuli[0].population", "stimuli[0].population is required"),
    (job(stimuli=[{"population": "", "current": 1}]), "stimuli[0].population", "stimuli[0].population must be a non-empty string, not ''"),
    (job(stimuli=[{"population": "a"}]), "stimuli[0].current", "stimuli[0].current is required"),
    (stim(current=2**23), "stimuli[0].current", "stimuli[0].current must be an integer in -8388608..8388607, not 8388608"),
    (stim(current=-(2**23) - 1), "stimuli[0].current", "stimuli[0].current must be an integer in -8388608..8388607, not -8388609"),
    (stim(current="5"), "stimuli[0].current", "stimuli[0].current must be an integer in -8388608..8388607, not '5'"),
    (stim(neurons=[]), "stimuli[0].neurons", "stimuli[0].neurons must be a non-empty array, not []"),
    (stim(neurons=3), "stimuli[0].neurons", "stimuli[0].neurons must be an array, not 3"),
    (stim(neurons=[0, 4, 2, 4]), "stimuli[0].neurons[3]", "stimuli[0].neurons[3] duplicates stimuli[0].neurons[1] (4)"),
    (stim(neurons=[0, -1]), "stimuli[0].neurons[1]", "stimuli[0].neurons[1] must be an integer in 0..1048575, not -1"),
    (stim(neurons=[2**20]), "stimuli[0].neurons[0]", "stimuli[0].neurons[0] must be an integer in 0..1048575, not 1048576"),
    (stim(neurons=[1.0]), "stimuli[0].neurons[0]", "stimuli[0].neurons[0] must be an integer in 0..1048575, not 1.0"),
    (stim(neurons=[None]), "stimuli[0].neurons[0]", "stimuli[0].neurons[0] must be an integer in 0..1048575, not null"),
    (stim(start=100), "stimuli[0].start", "stimuli[0].start must be an integer in 0..99 (start < stop <= timesteps), not 100"),
    (stim(start=-1), "stimuli[0].start", "stimuli[0].start must be an integer in 0..99 (start < stop <= timesteps), not -1"),
    (stim(stop=101), "stimuli[0].stop", "stimuli[0].stop must be an integer in 1..100 (start < stop <= timesteps), not 101"),
    (stim(stop=0), "stimuli[0].stop", "stimuli[0].stop must be an integer in 1..100 (start < stop <= timesteps), not 0"),
    (stim(start=5, stop=5), "stimuli[0].stop", "stimuli[0].stop must be an integer in 6..100 (start < stop <= timesteps), not 5"),
    (stim(start=50, stop=3), "stimuli[0].stop", "stimuli[0].stop must be an integer in 51..100 (start < stop <= timesteps), not 3"),
    (stim(start=1.5), "stimuli[0].start", "stimuli[0].start must be an integer in 0..99 (start < stop <= timesteps), not 1.5"),
    (stim(times=[100]), "stimuli[0].times[0]", "stimuli[0].times[0] must be an integer in 0..99 (below timesteps), not 100"),
    (stim(times=[3, -1]), "stimuli[0].times[1]", "stimuli[0].times[1] must be an integer in 0..99 (below timesteps), not -1"),
    (stim(times=[3, 7, 3]), "stimuli[0].times[2]", "stimuli[0].times[2] duplicates stimuli[0].times[0] (3)"),
    (stim(times=5), "stimuli[0].times", "stimuli[0].times must be an array, not 5"),
    (stim(times=[1], start=0), "stimuli[0].times", "stimuli[0].times cannot be given together with start (got times [1] and start 0)"),
    (stim(times=[1], stop=9), "stimuli[0].times", "stimuli[0].times cannot be given together with stop (got times [1] and stop 9)"),
    (job(learning=True), "learning", "learning must be an object, not true"),
    (job(rewards=[{"timestep": 100, "value": 1}]), "rewards[0].timestep", "rewards[0].timestep must be an integer in 0..99 (below timesteps), not 100"),
    (job(rewards=[{"timestep": -1, "value": 1}]), "rewards[0].timestep", "rewards[0].timestep must be an integer in 0..99 (below timesteps), not -1"),
    (job(rewards=[{"value": 1}]), "rewards[0].timestep", "rewards[0].timestep is required"),
    (job(rewards=[{"timestep": 1}]), "rewards[0].value", "rewards[0].value is required"),
    (job(rewards=[{"timestep": 1, "value": 32768}]), "rewards[0].value", "rewards[0].value must be an integer in -32768..32767, not 32768"),
    (job(rewards=[{"timestep": 1, "value": -32769}]), "rewards[0].value", "rewards[0].value must be an integer in -32768..32767, not -32769"),
    (job(rewards=5), "rewards", "rewards must be an array, not 5"),
    (job(rewards=[[1, 2]]), "rewards[0]", "rewards[0] must be an object, not [1, 2]"),
])
def test_job_errors(doc, path, message):
    assert_error(doc, path, message)


@pytest.mark.parametrize("name, lo, hi, default", LEARNING_INTS)
def test_learning_integers(name, lo, hi, default):
    for ok in (lo, hi):
        assert getattr(parse_job(job(learning={name: ok})).learning, name) == ok
    for bad in (lo - 1, hi + 1, 2.5, True):
        assert_error(job(learning={name: bad}), f"learning.{name}",
                     f"learning.{name} must be an integer in {lo}..{hi}, not {json.dumps(bad)}")
    assert getattr(parse_job(job()).learning, name) == default


@pytest.mark.parametrize("name", LEARNING_BOOLS)
def test_learning_booleans(name):
    assert getattr(parse_job(job(learning={name: True})).learning, name) is True
    assert getattr(parse_job(job(learning={name: False})).learning, name) is False
    for bad, shown in ((1, "1"), (0, "0"), ("true", "'true'"), ([], "[]")):
        assert_error(job(learning={name: bad}), f"learning.{name}", f"learning.{name} must be true or false, not {shown}")


def test_network_id():
    assert parse_job(job(network_id="net_1")).network_id == "net_1"
    assert parse_job(job(network_id="net_1"), require_network_id=True).network_id == "net_1"
    assert parse_job(job()).network_id is None
    assert_error(job(), "network_id", "network_id is required", require_network_id=True)
    assert_error(job(network_id=None), "network_id", "network_id is required", require_network_id=True)
    assert_error(job(network_id=7), "network_id", "network_id must be a string, not 7", require_network_id=True)


def test_stimulus_windows_and_times():
    parsed = parse_job(job(stimuli=[
        {"population": "a", "current": 1, "start": 99},
        {"population": "a", "current": 1, "stop": 1},
        {"population": "a", "current": 1, "start": 0, "stop": 100},
        {"population": "a", "current": 1, "times": [99, 0, 50]},
        {"population": "a", "current": 1, "times": [], "start": None, "stop": None},
        {"population": "a", "current": 1, "neurons": [5, 1, 2**20 - 1]},
    ]))
    assert parsed.stimuli == (
        Stimulus("a", 1, None, 99, 100),
        Stimulus("a", 1, None, 0, 1),
        Stimulus("a", 1, None, 0, 100),
        Stimulus("a", 1, None, None, None, (99, 0, 50)),
        Stimulus("a", 1, None, None, None, ()),
        Stimulus("a", 1, (5, 1, 2**20 - 1), 0, 100),
    )


def test_rewards_keep_their_order_and_may_share_a_step():
    parsed = parse_job(job(rewards=[{"timestep": 99, "value": -32768}, {"timestep": 0, "value": 32767},
                                    {"timestep": 99, "value": 1}]))
    assert parsed.rewards == (Reward(99, -32768), Reward(0, 32767), Reward(99, 1))


# --- null means omitted -----------------------------------------------------------------------

def full_job():
    return {
        "network_id": "net_x",
        "timesteps": 50,
        "stimuli": [
            {"population": "a", "current": 5, "neurons": [1, 2], "start": 3, "stop": 20},
            {"population": "b", "current": -5, "times": [4, 9]},
        ],
        "learning": {"enabled": True, "graded": True, "dendritic": True, "noise": True, "three_factor": True,
                     "a_plus": 1, "a_minus": 2, "trace_shift": 4, "elig_shift": 5},
        "rewards": [{"timestep": 3, "value": 9}],
        "seed": 12,
    }


OPTIONAL_PATHS = [
    ("network_id",), ("stimuli",), ("learning",), ("rewards",), ("seed",),
    ("stimuli", 0, "neurons"), ("stimuli", 0, "start"), ("stimuli", 0, "stop"), ("stimuli", 1, "times"),
] + [("learning", name) for name in LEARNING_BOOLS] + [("learning", name) for name, *_ in LEARNING_INTS]


@pytest.mark.parametrize("path", OPTIONAL_PATHS, ids=lambda p: ".".join(map(str, p)))
def test_null_equals_omitted(path):
    with_null, omitted = nulled_and_omitted(full_job, path)
    assert parse_job(with_null) == parse_job(omitted)
    assert parse_job(with_null) != parse_job(full_job())


# --- binding to a network -----------------------------------------------------------------------

NETWORK = parse_network({"populations": [{"label": "excitatory", "size": 100}, {"label": "inhibitory", "size": 25}],
                         "seed": 1})


def test_bind_accepts_known_populations_and_indices():
    bind_job(parse_job(job(stimuli=[{"population": "excitatory", "current": 1, "neurons": [0, 99]},
                                    {"population": "inhibitory", "current": 1}])), NETWORK.populations)


def test_bind_unknown_population():
    parsed = parse_job(job(stimuli=[{"population": "excitatory", "current": 1},
                                    {"population": "exc", "current": 1}]))
    with pytest.raises(ValidationError) as info:
        bind_job(parsed, NETWORK.populations)
    assert str(info.value) == "stimuli[1].population 'exc' is not a population of the network (populations: excitatory, inhibitory)"
    assert info.value.path == "stimuli[1].population"


def test_bind_neuron_index_beyond_the_population():
    parsed = parse_job(stim(population="excitatory", neurons=[0, 1, 2, 100]))
    with pytest.raises(ValidationError) as info:
        bind_job(parsed, NETWORK.populations)
    assert str(info.value) == "stimuli[0].neurons[3] must be an integer in 0..99, not 100"
    assert info.value.path == "stimuli[0].neurons[3]"


# --- the normalised document -----------------------------------------------------------------------

def test_to_document_fills_every_default():
    parsed = parse_job({"timesteps": 8, "stimuli": [{"population": "a", "current": 1},
                                                    {"population": "a", "current": 2, "times": [1]}]})
    assert parsed.to_document() == {
        "timesteps": 8,
        "stimuli": [{"population": "a", "current": 1, "start": 0, "stop": 8},
                    {"population": "a", "current": 2, "times": [1]}],
        "learning": {"enabled": False, "graded": False, "dendritic": False, "noise": False, "three_factor": False,
                     "a_plus": 16, "a_minus": 16, "trace_shift": 3, "elig_shift": 3},
        "rewards": [],
        "seed": 0,
    }


def test_to_document_of_a_hand_built_job_with_open_window():
    # start/stop None (as other layers may build a Stimulus) mean 0 and T
    built = Job(timesteps=10, stimuli=(Stimulus("a", 1),))
    assert built.to_document()["stimuli"] == [{"population": "a", "current": 1, "start": 0, "stop": 10}]


def test_full_round_trip():
    parsed = parse_job(full_job())
    doc = parsed.to_document()
    assert doc == full_job()
    assert parse_job(doc, require_network_id=True) == parsed


def test_schedule_of_a_parsed_job():
    parsed = parse_job(job(stimuli=[{"population": "inhibitory", "current": 7, "neurons": [2], "start": 10,
                                     "stop": 20}]))
    t, gid, delta = stimulus_schedule(parsed, NETWORK.populations)
    assert t.tolist() == [10, 20] and gid.tolist() == [102, 102] and delta.tolist() == [7, -7]
    assert (t.dtype, gid.dtype, delta.dtype) == (np.int64, np.int32, np.int64)


@st.composite
def valid_jobs(draw):
    T = draw(st.integers(1, 60))

    def maybe(strategy):
        return draw(st.one_of(st.just("omit"), st.none(), strategy))

    def put(obj, key, value):
        if value != "omit":
            obj[key] = value

    stimuli = []
    for _ in range(draw(st.integers(0, 3))):
        s = {"population": draw(st.sampled_from(["a", "b"])), "current": draw(st.integers(-(2**23), 2**23 - 1))}
        put(s, "neurons", maybe(st.lists(st.integers(0, 2**20 - 1), min_size=1, max_size=4, unique=True)))
        if draw(st.booleans()):
            put(s, "times", draw(st.lists(st.integers(0, T - 1), max_size=4, unique=True)))
        else:
            start = draw(st.integers(0, T - 1))
            if draw(st.booleans()):
                s["start"] = start
            else:
                start = 0
            put(s, "stop", maybe(st.integers(start + 1, T)))
        stimuli.append(s)
    doc = {"timesteps": T}
    put(doc, "network_id", maybe(st.text(max_size=5)))
    put(doc, "stimuli", draw(st.sampled_from(["omit", None, stimuli, stimuli, stimuli])))
    learning = {}
    for name in LEARNING_BOOLS:
        put(learning, name, maybe(st.booleans()))
    for name, lo, hi, _ in LEARNING_INTS:
        put(learning, name, maybe(st.integers(lo, hi)))
    put(doc, "learning", draw(st.one_of(st.just("omit"), st.none(), st.just(learning))))
    rewards = draw(st.lists(st.fixed_dictionaries({"timestep": st.integers(0, T - 1),
                                                    "value": st.integers(-32768, 32767)}), max_size=3))
    put(doc, "rewards", draw(st.one_of(st.just("omit"), st.none(), st.just(rewards))))
    put(doc, "seed", maybe(st.integers(0, 2**32 - 1)))
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_jobs())
def test_valid_jobs_round_trip(doc):
    parsed = parse_job(doc)
    normalised = parsed.to_document()
    assert json.loads(json.dumps(normalised)) == normalised
    assert parse_job(normalised) == parsed
    assert parse_job(normalised).to_document() == normalised


# --- the JSON Schema -------------------------------------------------------------------------------

SCHEMA = jsonschema_rs.Draft202012Validator(job_json_schema(require_network_id=False))
SCHEMA_WITH_ID = jsonschema_rs.Draft202012Validator(job_json_schema())


def test_job_schemas_are_valid_json_schema():
    assert jsonschema_rs.meta.is_valid(job_json_schema())
    assert jsonschema_rs.meta.is_valid(job_json_schema(require_network_id=False))


def test_schema_states_ranges_defaults_and_requirements():
    schema = job_json_schema()
    assert schema["required"] == ["network_id", "timesteps"]
    assert job_json_schema(require_network_id=False)["required"] == ["timesteps"]
    assert schema["additionalProperties"] is False
    learning = schema["properties"]["learning"]
    assert learning["additionalProperties"] is False
    for name, lo, hi, default in LEARNING_INTS:
        field = learning["properties"][name]
        assert (field["minimum"], field["maximum"], field["default"]) == (lo, hi, default)
    for name in LEARNING_BOOLS:
        assert learning["properties"][name]["default"] is False
    stimulus = schema["properties"]["stimuli"]["items"]
    assert stimulus["additionalProperties"] is False
    assert stimulus["required"] == ["population", "current"]
    assert stimulus["properties"]["neurons"]["uniqueItems"] is True
    assert stimulus["properties"]["neurons"]["minItems"] == 1
    assert "start < stop <= timesteps" in stimulus["properties"]["stop"]["description"]
    reward = schema["properties"]["rewards"]["items"]
    assert reward["required"] == ["timestep", "value"]
    assert (reward["properties"]["value"]["minimum"], reward["properties"]["value"]["maximum"]) == (-32768, 32767)
    assert schema["properties"]["timesteps"]["maximum"] == 10_000_000


def verdict(doc, **kwargs):
    try:
        parse_job(doc, **kwargs)
    except ValidationError as e:
        return e
    return None


SAMPLES = [
    (job(), True),
    (full_job(), True),
    (job(network_id=None, stimuli=None, learning=None, rewards=None, seed=None), True),
    (stim(times=[1, 2], start=None, stop=None), True),
    (stim(times=[1, 2], start=3), False),
    (stim(times=[1, 1]), False),
    (stim(neurons=[]), False),
    (stim(neurons=[1, 1]), False),
    (stim(current=None), False),
    (job(learning={"enabled": 1}), False),
    (job(learning={"a_plus": 32768}), False),
    (job(learning={"enabeld": True}), False),
    (stim(start=3, stop=None), True),
    (job(stimulus=[]), False),
    (job(timesteps=None), False),
    (job(network_id=3), False),
    (job(rewards=[{"timestep": 0, "value": 1, "x": 2}]), False),
]


@pytest.mark.parametrize("doc, valid", SAMPLES)
def test_schema_and_validator_agree_on_samples(doc, valid):
    assert SCHEMA.is_valid(doc) is valid
    assert (verdict(doc) is None) is valid


def test_network_id_required_by_the_request_schema():
    assert not SCHEMA_WITH_ID.is_valid(job())
    assert not SCHEMA_WITH_ID.is_valid(job(network_id=None))
    assert SCHEMA_WITH_ID.is_valid(job(network_id="n"))
    assert verdict(job(), require_network_id=True) is not None


@pytest.mark.parametrize("doc", [
    stim(start=100), stim(stop=101), stim(start=5, stop=5), stim(times=[100]),
    job(rewards=[{"timestep": 100, "value": 0}]),
])
def test_timestep_dependent_rules_are_only_in_descriptions(doc):
    assert SCHEMA.is_valid(doc)
    assert schema_cannot_say(verdict(doc))


def schema_cannot_say(error) -> bool:
    """Rules relative to timesteps, and integral floats for integer fields."""
    message = str(error)
    return ("(start < stop <= timesteps)" in message or "(below timesteps)" in message
            or re.search(r"must be an integer in \S+( \(.*\))?, not -?\d+\.0$", message) is not None)


BOUNDARY_INTS = sorted({v + d for v in (0, 1, 15, 32767, -32768, 2**20, 2**23, -(2**23), 2**32, 10_000_000)
                        for d in (-1, 0, 1)})
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**33), 2**33), st.sampled_from(BOUNDARY_INTS),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6,
)
ADDED_VALUES = st.one_of(st.sampled_from([0, 1, [0], [0, 1], [], "a", True]), JSON_VALUES)
ADDED_KEYS = ["times", "start", "stop", "neurons", "seed", "enabled", "timestep", "junk", "current"]


def _nodes(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _nodes(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _nodes(value, path + (i,))


@st.composite
def mutated_jobs(draw):
    doc = copy.deepcopy(draw(valid_jobs()))
    for _ in range(draw(st.integers(1, 2))):
        nodes = list(_nodes(doc))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add_key", "add_key", "repeat"]))
        lists = [node for _, node in nodes if isinstance(node, list) and node]
        if action == "repeat" and lists:
            target = draw(st.sampled_from(lists))
            target.append(copy.deepcopy(draw(st.sampled_from(target))))
            continue
        if action in ("add_key", "repeat"):
            parent = draw(st.sampled_from([node for _, node in nodes if isinstance(node, dict)]))
            # a stimulus mostly gets the keys whose combinations have rules
            keys = ["times", "start", "stop", "times", "neurons", "junk"] if "current" in parent else ADDED_KEYS
            parent[draw(st.sampled_from(keys))] = copy.deepcopy(draw(ADDED_VALUES))  # sampled lists are shared between cases
            continue
        located = [path for path, _ in nodes if path]
        if not located:
            break
        where = draw(st.sampled_from(located))
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        if action == "delete":
            del parent[where[-1]]
        else:
            parent[where[-1]] = copy.deepcopy(draw(st.one_of(st.sampled_from([0, 1, [0], True]), JSON_VALUES)))
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_jobs())
def test_schema_accepts_exactly_what_the_validator_accepts(doc):
    error = verdict(doc)
    if error is None:
        assert SCHEMA.is_valid(doc), "validator accepts, schema refuses"
    elif SCHEMA.is_valid(doc):
        assert schema_cannot_say(error), f"schema accepts, validator refuses: {error}"


_ELEMENTS = st.one_of(
    st.integers(-3, 2**20 + 2), st.integers(0, 120), st.booleans(), st.floats(0, 10), st.none(), st.just("7"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(neurons=st.lists(st.one_of(st.integers(0, 99), _ELEMENTS), max_size=12),
       times=st.lists(st.one_of(st.integers(0, 99), _ELEMENTS), max_size=12))
def test_the_fast_integer_array_check_agrees_with_the_element_by_element_one(monkeypatch, neurons, times):
    """schema._valid_int_array only accepts what the element-by-element check accepts, with
    the same result; everything else (and every error) comes from the slow path."""
    import neurofab.schema as schema

    docs = [stim(neurons=neurons), stim(neurons=[0, 1], times=times)]
    for doc in docs:
        outcomes = []
        for fast in (True, False):
            with monkeypatch.context() as m:
                if not fast:
                    m.setattr(schema, "_valid_int_array", lambda *a: None)
                try:
                    outcomes.append(("ok", parse_job(copy.deepcopy(doc))))
                except ValidationError as e:
                    outcomes.append(("error", e.path, str(e)))
        assert outcomes[0] == outcomes[1]


def test_a_long_neuron_list_is_checked_whole_and_its_errors_still_name_the_element():
    many = list(range(50_000))
    assert parse_job(stim(neurons=many)).stimuli[0].neurons == tuple(many)
    assert_error(stim(neurons=many + [True]), "stimuli[0].neurons[50000]",
                 "stimuli[0].neurons[50000] must be an integer in 0..1048575, not true")
    assert_error(stim(neurons=many + [17]), "stimuli[0].neurons[50000]",
                 "stimuli[0].neurons[50000] duplicates stimuli[0].neurons[17] (17)")
    assert_error(stim(times=[99, 100]), "stimuli[0].times[1]",
                 "stimuli[0].times[1] must be an integer in 0..99 (below timesteps), not 100")

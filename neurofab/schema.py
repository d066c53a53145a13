"""The one definition of the network and job documents: field tables, checks, JSON Schema.

Every field of a ``POST /v1/networks`` and ``POST /v1/jobs`` body is declared once,
in the tables below (name, type, range, default, whether it may be omitted, and a
description). Two things are derived from them:

- validation (:func:`check_object`, :func:`check_value`, :func:`check_array`), used by
  :mod:`neurofab.network` and :mod:`neurofab.job`, which add only the rules that span
  fields or depend on other values (threshold > resting, labels, ``timesteps``);
- JSON Schema 2020-12 (valid as an OpenAPI 3.1 schema object) for the two request
  bodies: :func:`network_json_schema` and :func:`job_json_schema`.

The JSON Schemas accept exactly what the per-field checks accept, including which
connection fields are allowed or required with which topology and that a stimulus
gives ``times`` or ``start``/``stop``. Rules that relate values to each other or to
other parts of the document (threshold > resting, start < stop <= timesteps, labels
known and unique, indices below a population's size, ``k`` at most the population
size) cannot be expressed per field; they are stated in the descriptions and the
schemas' static ranges are their widest form. One difference is inherent to JSON
Schema: it counts ``5.0`` as an integer, while the validator accepts only JSON
integer literals for integer fields (and never booleans).

Error messages name the field's path and the offending value:
``populations[1].params.leak must be an integer in 0..65535, not -4``.
``null`` is the same as omitting a field that may be omitted.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .errors import ValidationError

__all__ = [
    "REQUIRED",
    "OPTIONAL",
    "Field",
    "Table",
    "NEURON_PARAMS",
    "POPULATION",
    "SYNAPSE_ENTRY",
    "CONNECTION",
    "NETWORK",
    "STIMULUS",
    "LEARNING",
    "REWARD",
    "JOB",
    "JOB_WITH_NETWORK_ID",
    "job_table",
    "MAX_POPULATION_SIZE",
    "MAX_TIMESTEPS",
    "MAX_SEED",
    "describe",
    "range_error",
    "unknown_key_error",
    "check_value",
    "check_array",
    "check_object",
    "json_schema",
    "network_json_schema",
    "job_json_schema",
]


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: ``default`` of a field that must be given (and may not be ``null``).
REQUIRED = _Marker("REQUIRED")
#: ``default`` of an optional field whose default is not a constant (stated in its description).
OPTIONAL = _Marker("OPTIONAL")

MAX_POPULATION_SIZE = 2**20
MAX_TIMESTEPS = 10_000_000
MAX_SEED = 2**32 - 1
_I24 = (-(2**23), 2**23 - 1)
_I16 = (-32768, 32767)


@dataclass(frozen=True)
class Field:
    """One field of a document object.

    ``kind`` is one of ``integer`` (a JSON integer, never a boolean or a float),
    ``number`` (integer or float), ``boolean``, ``string``, ``label`` (a non-empty
    string), ``choice`` (one of ``choices``), ``object`` (the fields of ``table``),
    ``array`` (elements described by ``items``, at least ``min_items``, distinct if
    ``unique``) and ``tuple`` (an array whose elements are ``prefix`` in order, of which
    the first ``min_items`` are required).

    ``default`` is a constant, :data:`REQUIRED` or :data:`OPTIONAL`. A field that may be
    omitted may also be ``null``, which means the same (docs/model.md); a required field
    may not. ``only_with = (field, values)`` makes the field an error unless the sibling
    ``field`` has one of ``values``; ``required_with`` makes it required then.
    ``excludes`` names siblings that may not be given together with this field.
    """

    name: str
    kind: str
    description: str
    default: Any = OPTIONAL
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple[str, ...] = ()
    items: Field | None = None
    min_items: int = 0
    unique: bool = False
    table: Table | None = None
    prefix: tuple[Field, ...] = ()
    only_with: tuple[str, tuple[str, ...]] | None = None
    required_with: tuple[str, tuple[str, ...]] | None = None
    excludes: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def nullable(self) -> bool:
        """``null`` is accepted (and means omitted) exactly where the field may be omitted."""
        return not self.required

    @property
    def has_constant_default(self) -> bool:
        return self.default is not REQUIRED and self.default is not OPTIONAL


@dataclass(frozen=True)
class Table:
    """The fields of one kind of object, in the order they are checked."""

    name: str
    description: str
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


# --- the tables -------------------------------------------------------------------------

NEURON_PARAMS = Table(
    "params",
    "Neuron parameters of a population (docs/model.md); every field optional.",
    (
        Field("threshold", "integer", "Spike threshold; must be greater than resting.", 1000, 1, 2**23 - 1),
        Field("leak", "integer", "Leak toward resting per timestep.", 3, 0, 65535),
        Field("resting", "integer", "Resting (and reset) potential; below threshold.", 0, *_I24),
        Field("refrac", "integer", "Refractory period in timesteps.", 3, 0, 255),
        Field("dend_threshold", "integer", "Dendritic compartment threshold (with learning.dendritic).",
              500, 0, 2**23 - 1),
    ),
)

POPULATION = Table(
    "population",
    "A group of identical neurons.",
    (
        Field("label", "label", "Name of the population, unique within the network.", REQUIRED),
        Field("size", "integer", "Number of neurons (tier limits apply on top).", REQUIRED,
              1, MAX_POPULATION_SIZE),
        Field("params", "object", "Neuron parameters; omitted ones take their defaults.",
              table=NEURON_PARAMS),
    ),
)

_WEIGHT = Field("weight", "integer", "Synaptic weight; negative for inhibitory.", 200, *_I16)
_DELAY = Field("delay", "integer", "Synaptic delay in timesteps (a spike at s arrives at s + 1 + delay).",
               0, 0, 63)

SYNAPSE_ENTRY = (
    Field("source", "integer", "Source neuron, a local index below the source population's size.",
          REQUIRED, 0, MAX_POPULATION_SIZE - 1),
    Field("target", "integer", "Target neuron, a local index below the target population's size.",
          REQUIRED, 0, MAX_POPULATION_SIZE - 1),
    Field("weight", "integer", "Weight of this synapse; default: the connection's weight.", OPTIONAL, *_I16),
    Field("delay", "integer", "Delay of this synapse; default: the connection's delay.", OPTIONAL, 0, 63),
)

_RANDOM_TOPOLOGIES = ("random_sparse", "fixed_fan_in", "fixed_fan_out")

CONNECTION = Table(
    "connection",
    "Synapses from every neuron of one population to neurons of another (or the same).",
    (
        Field("source", "label", "Label of the source population.", REQUIRED),
        Field("target", "label", "Label of the target population.", REQUIRED),
        Field("topology", "choice", "How source and target neurons are connected. one_to_one needs equal "
              "sizes; explicit lists the synapses.", "all_to_all",
              choices=("all_to_all", "one_to_one", "random_sparse", "fixed_fan_in", "fixed_fan_out",
                       "explicit")),
        _WEIGHT,
        _DELAY,
        Field("compartment", "integer", "Dendritic compartment of the target neurons.", 0, 0, 3),
        Field("p", "number", "Connection probability (random_sparse); for fixed_fan_in/fixed_fan_out "
              "without n, k = floor(p * source/target size + 0.5). Only with random_sparse, fixed_fan_in, "
              "fixed_fan_out.", 0.1, 0.0, 1.0, only_with=("topology", _RANDOM_TOPOLOGIES)),
        Field("n", "integer", "Fan-in (fixed_fan_in: sources per target, at most the source size) or "
              "fan-out (fixed_fan_out: targets per source, at most the target size); default from p. "
              "Only with fixed_fan_in, fixed_fan_out.", OPTIONAL, 0, MAX_POPULATION_SIZE,
              only_with=("topology", ("fixed_fan_in", "fixed_fan_out"))),
        Field("plastic", "boolean", "Whether learning may change these synapses (those with initial "
              "weight > 0).", True),
        Field("synapses", "array", "The synapses of an explicit connection: [source, target], "
              "[source, target, weight] or [source, target, weight, delay] with local indices. Required "
              "with, and only with, topology explicit.", OPTIONAL,
              items=Field("synapse", "tuple", "[source, target, weight?, delay?]", REQUIRED,
                          prefix=SYNAPSE_ENTRY, min_items=2),
              only_with=("topology", ("explicit",)), required_with=("topology", ("explicit",))),
    ),
)

NETWORK = Table(
    "network",
    "A network definition (body of POST /v1/networks). Labels must be unique and every connection's "
    "source and target must be one of them.",
    (
        Field("populations", "array", "The populations; neurons are numbered in this order.", REQUIRED,
              items=Field("population", "object", POPULATION.description, REQUIRED, table=POPULATION),
              min_items=1),
        Field("connections", "array", "The connections; synapses are numbered in this order.", (),
              items=Field("connection", "object", CONNECTION.description, REQUIRED, table=CONNECTION)),
        Field("seed", "integer", "Seed of the random topologies; drawn and stored when omitted.",
              OPTIONAL, 0, MAX_SEED),
    ),
)

STIMULUS = Table(
    "stimulus",
    "A constant current into some neurons of a population, over a window or at listed steps.",
    (
        Field("population", "label", "Label of a population of the network.", REQUIRED),
        Field("current", "integer", "Current added to each neuron while active.", REQUIRED, *_I24),
        Field("neurons", "array", "Distinct local neuron indices, each below the population's size; "
              "default: every neuron.", OPTIONAL,
              items=Field("neuron", "integer", "A local neuron index.", REQUIRED, 0, MAX_POPULATION_SIZE - 1),
              min_items=1, unique=True),
        Field("start", "integer", "First active step; default 0; start < stop <= timesteps.", 0,
              0, MAX_TIMESTEPS - 1),
        Field("stop", "integer", "Step at which the stimulus stops (exclusive); default: timesteps; "
              "start < stop <= timesteps.", OPTIONAL, 1, MAX_TIMESTEPS),
        Field("times", "array", "Distinct steps in 0..timesteps-1 at which the stimulus is active, "
              "instead of start/stop.", OPTIONAL,
              items=Field("time", "integer", "A step below timesteps.", REQUIRED, 0, MAX_TIMESTEPS - 1),
              unique=True, excludes=("start", "stop")),
    ),
)

LEARNING = Table(
    "learning",
    "Learning and neuron-model options (docs/model.md); every field optional.",
    (
        Field("enabled", "boolean", "Pair-based STDP on plastic synapses.", False),
        Field("graded", "boolean", "Graded spikes (payload-scaled contributions).", False),
        Field("dendritic", "boolean", "Dendritic compartments with dend_threshold.", False),
        Field("noise", "boolean", "Membrane noise from each neuron's LFSR.", False),
        Field("three_factor", "boolean", "Reward-modulated STDP through eligibility traces (with enabled).",
              False),
        Field("a_plus", "integer", "Potentiation amplitude.", 16, 0, 32767),
        Field("a_minus", "integer", "Depression amplitude.", 16, 0, 32767),
        Field("trace_shift", "integer", "Decay shift of the spike traces.", 3, 0, 15),
        Field("elig_shift", "integer", "Decay shift of the eligibility traces.", 3, 0, 15),
    ),
)

REWARD = Table(
    "reward",
    "A reward delivered at one step (three-factor learning).",
    (
        Field("timestep", "integer", "Step of the reward, below timesteps.", REQUIRED, 0, MAX_TIMESTEPS - 1),
        Field("value", "integer", "Reward value; rewards on the same step add up.", REQUIRED, *_I16),
    ),
)

JOB = Table(
    "job",
    "A simulation job (body of POST /v1/jobs).",
    (
        Field("network_id", "string", "The network to run, from POST /v1/networks.", OPTIONAL),
        Field("timesteps", "integer", "Number of steps T (tier limits apply on top).", REQUIRED,
              1, MAX_TIMESTEPS),
        Field("stimuli", "array", "Stimuli; currents of overlapping stimuli add up.", (),
              items=Field("stimulus", "object", STIMULUS.description, REQUIRED, table=STIMULUS)),
        Field("learning", "object", "Learning and model options.", table=LEARNING),
        Field("rewards", "array", "Rewards for three-factor learning.", (),
              items=Field("reward", "object", REWARD.description, REQUIRED, table=REWARD)),
        Field("seed", "integer", "Seed of the neurons' noise sources.", 0, 0, MAX_SEED),
    ),
)

#: The job as ``POST /v1/jobs`` takes it: ``network_id`` required.
JOB_WITH_NETWORK_ID = Table(JOB.name, JOB.description, tuple(
    replace(f, default=REQUIRED) if f.name == "network_id" else f for f in JOB.fields))


def job_table(*, require_network_id: bool) -> Table:
    """:data:`JOB`, or :data:`JOB_WITH_NETWORK_ID` where ``network_id`` is required."""
    return JOB_WITH_NETWORK_ID if require_network_id else JOB


# --- messages ---------------------------------------------------------------------------

def describe(value) -> str:
    """A value as it appears in messages: JSON spelling, strings quoted, long ones cut short."""
    if value is None:
        text = "null"
    elif value is True or value is False:
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = repr(value if len(value) <= 60 else value[:57] + "...")
    elif isinstance(value, float):
        text = repr(value) if math.isfinite(value) else str(value)
    elif isinstance(value, int):
        text = str(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _fmt(bound) -> str:
    return repr(float(bound)) if isinstance(bound, float) else str(bound)


def range_error(path: str, lo, hi, value, note: str | None = None, *,
                kind: str = "integer") -> ValidationError:
    """``<path> must be an integer in lo..hi[ (note)], not <value>``."""
    article = "an" if kind == "integer" else "a"
    extra = f" ({note})" if note else ""
    return ValidationError(
        path, f"must be {article} {kind} in {_fmt(lo)}..{_fmt(hi)}{extra}, not {describe(value)}")


def unknown_key_error(path: str, where: str, key, known) -> ValidationError:
    """``unknown key 'stimulus' in the job (did you mean 'stimuli'?)``; ``.path`` is the key's path."""
    hint = ""
    if isinstance(key, str):
        close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    error = ValidationError("", f"unknown key {describe(key)} in {where}{hint}")
    error.path = _join(path, str(key))
    return error


# --- checks -----------------------------------------------------------------------------

#: ``bounds(rel, values)`` may narrow an integer field's range by context: ``rel`` is the
#: field's pattern inside the object being checked (``"start"``, ``"times[]"``,
#: ``"synapses[][0]"``), ``values`` the object's fields checked so far. It returns ``None``
#: (the table's range) or ``(lo, hi)`` or ``(lo, hi, note)``.
Bounds = Callable[[str, Mapping[str, Any]], tuple | None]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_value(f: Field, value, path: str, *, rel: str | None = None, bounds: Bounds | None = None,
                values: Mapping[str, Any] | None = None):
    """Check one non-null value against its field; return it cleaned (``number`` as float,
    arrays as lists, objects as dicts of checked values). Raises ValidationError."""
    rel = f.name if rel is None else rel
    kind = f.kind
    if kind == "integer":
        lo, hi, note = f.minimum, f.maximum, None
        if bounds is not None:
            narrowed = bounds(rel, values or {})
            if narrowed is not None:
                lo, hi = narrowed[0], narrowed[1]
                note = narrowed[2] if len(narrowed) > 2 else None
        if not _is_int(value) or not lo <= value <= hi:
            raise range_error(path, lo, hi, value, note)
        return value
    if kind == "number":
        # ``not lo <= v <= hi`` is also true for NaN.
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or not f.minimum <= value <= f.maximum:
            raise range_error(path, f.minimum, f.maximum, value, kind="number")
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValidationError(path, f"must be true or false, not {describe(value)}")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise ValidationError(path, f"must be a string, not {describe(value)}")
        return value
    if kind == "label":
        if not isinstance(value, str) or not value:
            raise ValidationError(path, f"must be a non-empty string, not {describe(value)}")
        return value
    if kind == "choice":
        if not isinstance(value, str) or value not in f.choices:
            raise ValidationError(path, f"must be one of {', '.join(f.choices)}, not {describe(value)}")
        return value
    if kind == "object":
        return check_object(value, f.table, path, bounds=bounds)
    if kind == "array":
        if f.items.kind == "integer":
            fast = _valid_int_array(f, value, rel + "[]", bounds, values)
            if fast is not None:
                return fast
        return check_array(f, value, path, lambda item, item_path, _i: check_value(
            f.items, item, item_path, rel=rel + "[]", bounds=bounds, values=values))
    if kind == "tuple":
        return _check_tuple(f, value, path, rel, bounds, values)
    raise AssertionError(f"unknown field kind {kind!r}")


def _valid_int_array(f: Field, value, rel: str, bounds: Bounds | None, values) -> list | None:
    """A copy of ``value`` if it is a valid array of integers for ``f``, else ``None``.

    The fast path for long integer arrays (a stimulus listing thousands of neurons): the
    element range is the same for every element, so the whole list is checked at C speed.
    It only ever accepts; anything it does not accept (a wrong type, an element out of
    range, a duplicate, too few elements, or an ``int`` subclass) goes to the element by
    element check, which finds the first offending element and names it.
    """
    if not isinstance(value, list) or len(value) < max(f.min_items, 1):
        return None
    lo, hi = f.items.minimum, f.items.maximum
    if bounds is not None:
        narrowed = bounds(rel, values or {})
        if narrowed is not None:
            lo, hi = narrowed[0], narrowed[1]
    if not all(type(v) is int for v in value) or min(value) < lo or max(value) > hi:
        return None
    if f.unique and len(set(value)) != len(value):
        return None
    return list(value)


def _check_tuple(f: Field, value, path, rel, bounds, values):
    if not isinstance(value, list) or not f.min_items <= len(value) <= len(f.prefix):
        forms = [
            "[" + ", ".join(p.name for p in f.prefix[:n]) + "]"
            for n in range(f.min_items, len(f.prefix) + 1)
        ]
        spelled = ", ".join(forms[:-1]) + " or " + forms[-1] if len(forms) > 1 else forms[0]
        raise ValidationError(path, f"must be an array {spelled}, not {describe(value)}")
    # As everywhere, null stands for an omitted optional element (it keeps its position).
    return [
        None if item is None and not p.required else
        check_value(p, item, f"{path}[{i}]", rel=f"{rel}[{i}]", bounds=bounds, values=values)
        for i, (p, item) in enumerate(zip(f.prefix, value, strict=False))
    ]


def check_array(f: Field, value, path: str, each: Callable[[Any, str, int], Any]) -> list:
    """Check that ``value`` is an array with at least ``f.min_items`` elements, check each
    with ``each(item, item_path, index)`` and, if ``f.unique``, that they are distinct."""
    if not isinstance(value, list):
        raise ValidationError(path, f"must be an array, not {describe(value)}")
    if len(value) < f.min_items:
        need = "a non-empty array" if f.min_items == 1 else f"an array of at least {f.min_items} elements"
        raise ValidationError(path, f"must be {need}, not {describe(value)}")
    cleaned = [each(item, f"{path}[{i}]", i) for i, item in enumerate(value)]
    if f.unique:
        first: dict = {}
        for i, item in enumerate(cleaned):
            j = first.setdefault(item, i)
            if j != i:
                raise ValidationError(f"{path}[{i}]", f"duplicates {path}[{j}] ({describe(item)})")
    return cleaned


def _rule_holds(rule, values) -> bool:
    """Whether the sibling named by an ``only_with``/``required_with`` rule has one of its values."""
    control, allowed = rule
    return values.get(control) in allowed


def check_object(doc, table: Table, path: str, *, where: str | None = None, bounds: Bounds | None = None,
                 parsers: Mapping[str, Callable] | None = None,
                 checks: Mapping[str, Callable] | None = None) -> dict:
    """Check an object against ``table``; return ``{name: value}`` for every field, with
    omitted (or null) fields set to their constant default, or ``None`` where the
    default is not a constant.

    Unknown keys are errors (naming the closest known key). Fields are checked in table
    order. ``parsers[name](value, path, values)`` replaces the generic check of a field's
    non-null value; ``checks[name](value, path, values)`` runs after it (both see the
    fields checked before). ``where`` names the object in messages (default: its path).
    """
    where = where or path
    if not isinstance(doc, dict):
        if path:
            raise ValidationError(path, f"must be an object, not {describe(doc)}")
        raise ValidationError("", f"{where} must be an object, not {describe(doc)}")
    known = table.names
    for key in doc:
        if key not in known:
            raise unknown_key_error(path, where, key, known)
    values: dict[str, Any] = {}
    for f in table.fields:
        fpath = _join(path, f.name)
        raw = doc.get(f.name)
        if raw is None:
            if f.required:
                raise ValidationError(fpath, "is required")
            if f.required_with is not None and _rule_holds(f.required_with, values):
                control, _ = f.required_with
                raise ValidationError(fpath, f"is required with {control} {values[control]!r}")
            values[f.name] = f.default if f.has_constant_default else None
            continue
        if f.only_with is not None and not _rule_holds(f.only_with, values):
            control, allowed = f.only_with
            raise ValidationError(
                fpath, f"is only allowed with {control} {', '.join(allowed)}, not with {values[control]!r} "
                f"(got {describe(raw)})")
        for other in f.excludes:
            if doc.get(other) is not None:
                raise ValidationError(fpath, f"cannot be given together with {other} (got {f.name} "
                                      f"{describe(raw)} and {other} {describe(doc[other])})")
        if parsers is not None and f.name in parsers:
            value = parsers[f.name](raw, fpath, values)
        else:
            value = check_value(f, raw, fpath, bounds=bounds, values=values)
        if checks is not None and f.name in checks:
            checks[f.name](value, fpath, values)
        values[f.name] = value
    return values


# --- JSON Schema --------------------------------------------------------------------------

def _nullable(schema: dict, f: Field) -> dict:
    if not f.nullable:
        return schema
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    t = schema["type"]
    schema["type"] = [t, "null"]
    return schema


def _field_schema(f: Field) -> dict:
    kind = f.kind
    if kind in ("integer", "number"):
        schema: dict = {"type": kind, "minimum": f.minimum, "maximum": f.maximum}
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "string":
        schema = {"type": "string"}
    elif kind == "label":
        schema = {"type": "string", "minLength": 1}
    elif kind == "choice":
        schema = {"type": "string", "enum": list(f.choices)}
    elif kind == "object":
        schema = _object_schema(f.table)
    elif kind == "array":
        schema = {"type": "array", "items": _field_schema(f.items)}
        if f.min_items:
            schema["minItems"] = f.min_items
        if f.unique:
            schema["uniqueItems"] = True
    elif kind == "tuple":
        schema = {
            "type": "array",
            "prefixItems": [_field_schema(p) for p in f.prefix],
            "items": False,
            "minItems": f.min_items,
            "maxItems": len(f.prefix),
        }
    else:
        raise AssertionError(f"unknown field kind {kind!r}")
    schema = _nullable(schema, f)
    schema["description"] = f.description
    if f.has_constant_default:
        schema["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
    return schema


def _control_values(table: Table, control: str, allowed) -> list:
    """The JSON values of ``control`` for which a rule applies; ``null`` (= omitted)
    counts as the control's default."""
    values = list(allowed)
    c = table.field(control)
    if c.has_constant_default and c.default in allowed:
        values.append(None)
    return values


def _object_schema(table: Table) -> dict:
    schema: dict = {
        "type": "object",
        "description": table.description,
        "properties": {f.name: _field_schema(f) for f in table.fields},
        "additionalProperties": False,
    }
    required = [f.name for f in table.fields if f.required]
    if required:
        schema["required"] = required
    rules = []
    for f in table.fields:
        if f.only_with is not None:
            control, allowed = f.only_with
            others = [v for v in table.field(control).choices if v not in allowed]
            # Where the control has a value outside ``allowed`` (an omitted control is its
            # default), the field must be absent or null.
            rules.append({
                "if": {"properties": {control: {"enum": _control_values(table, control, others)}}},
                "then": {"properties": {f.name: {"type": "null"}}},
            })
        if f.required_with is not None:
            control, allowed = f.required_with
            condition: dict = {"properties": {control: {"enum": list(allowed)}}, "required": [control]}
            if table.field(control).default in allowed:
                condition = {"properties": {control: {"enum": _control_values(table, control, allowed)}}}
            rules.append({
                "if": condition,
                "then": {"required": [f.name], "properties": {f.name: {"not": {"type": "null"}}}},
            })
        for other in f.excludes:
            rules.append({
                "if": {"properties": {f.name: {"not": {"type": "null"}}}, "required": [f.name]},
                "then": {"properties": {other: {"type": "null"}}},
            })
    if rules:
        schema["allOf"] = rules
    return schema


def json_schema(table: Table, *, title: str) -> dict:
    """JSON Schema 2020-12 of a document whose top level is ``table``."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title}
    schema.update(_object_schema(table))
    return schema


def network_json_schema() -> dict:
    """JSON Schema (2020-12, OpenAPI 3.1) of the ``POST /v1/networks`` body."""
    return json_schema(NETWORK, title="Network")


def job_json_schema(*, require_network_id: bool = True) -> dict:
    """JSON Schema (2020-12, OpenAPI 3.1) of the ``POST /v1/jobs`` body (``network_id``
    required unless ``require_network_id`` is false, as for the CLI's job files)."""
    return json_schema(job_table(require_network_id=require_network_id), title="Job")

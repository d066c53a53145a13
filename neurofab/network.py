"""Network documents: parse and validate a ``POST /v1/networks`` body, expand it to synapses.

The network document is the API's JSON; :func:`parse_network` checks every field
(ranges and defaults from docs/model.md) and returns a :class:`Network`;
:func:`expand` turns its connections into explicit synapses, a :class:`Netlist`
of flat arrays that the compiler and the emulator read.

INTERFACE CONTRACT (shared by every layer; change only together with all users):

- ``parse_network(doc, *, draw_seed=None) -> Network``. ``doc`` is the decoded JSON.
  Raises :class:`neurofab.errors.ValidationError` naming the path and the value.
  When ``doc`` has no ``seed`` (or ``null``), ``draw_seed()`` is called for one
  (default: a random 32-bit integer from ``secrets``); the result always has a seed.
- ``Network.to_document()`` returns the normalised document (defaults filled in,
  the seed included) that parses back to an equal ``Network``.
- ``synapse_counts(network) -> list[float]`` per connection, without expanding:
  exact for deterministic topologies, expected (``p * ns * nt``) for random_sparse.
- ``expand(network) -> Netlist``: deterministic for a given network and seed, on
  every machine.

Also here: ``fan_size(connection, n_source, n_target)`` (the ``k`` of a fixed_fan_*
connection) and ``DEFAULT_P``. Every field's type, range and default comes from the
tables in :mod:`neurofab.schema` (which also gives the JSON Schema); this module adds
the rules that span fields: unique labels, known source/target labels, threshold >
resting, one_to_one sizes, ``n`` at most the population size, explicit indices below
the sizes. The random topologies draw as docs/model.md "Drawing the random topologies
(draw version 1)" specifies (:mod:`neurofab.rng`); ``Netlist.extra["draw_version"]``
records the version.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field

import numpy as np

from .errors import ValidationError
from .rng import (
    DRAW_VERSION,
    connection_key,
    draw_fixed_fan_in,
    draw_fixed_fan_out,
    draw_random_sparse,
    sparse_threshold,
)
from .schema import (
    CONNECTION,
    NETWORK,
    NEURON_PARAMS,
    POPULATION,
    check_array,
    check_object,
    check_value,
    describe,
)

__all__ = [
    "TOPOLOGIES",
    "DEFAULT_P",
    "NeuronParams",
    "Population",
    "Connection",
    "Network",
    "Netlist",
    "parse_network",
    "fan_size",
    "synapse_counts",
    "expand",
]

TOPOLOGIES = ("all_to_all", "one_to_one", "random_sparse", "fixed_fan_in", "fixed_fan_out", "explicit")
assert TOPOLOGIES == CONNECTION.field("topology").choices

#: ``p`` where a random topology's connection gives none.
DEFAULT_P = CONNECTION.field("p").default


@dataclass(frozen=True)
class NeuronParams:
    threshold: int = 1000
    leak: int = 3
    resting: int = 0
    refrac: int = 3
    dend_threshold: int = 500


@dataclass(frozen=True)
class Population:
    label: str
    size: int
    params: NeuronParams
    #: global id of this population's neuron 0 (populations are numbered in order)
    offset: int


@dataclass(frozen=True)
class Connection:
    source: str
    target: str
    topology: str = "all_to_all"
    weight: int = 200
    delay: int = 0
    compartment: int = 0
    #: connection probability; ``None`` where the document gave none (default 0.1 applies)
    p: float | None = None
    #: fan-in/fan-out for the fixed_* topologies; ``None`` where not given
    n: int | None = None
    plastic: bool = True
    #: explicit topology only: tuples (source_index, target_index, weight, delay), filled in
    synapses: tuple[tuple[int, int, int, int], ...] | None = None


@dataclass(frozen=True)
class Network:
    populations: tuple[Population, ...]
    connections: tuple[Connection, ...]
    seed: int

    @property
    def total_neurons(self) -> int:
        return sum(p.size for p in self.populations)

    def population(self, label: str) -> Population:
        for p in self.populations:
            if p.label == label:
                return p
        raise KeyError(label)

    def to_document(self) -> dict:
        """The normalised document: every default filled in, the seed included, explicit
        synapses as full ``[source, target, weight, delay]``. ``p`` and ``n`` appear only
        where the document gave them (``None`` there means "from the default"), so the
        result parses back to an equal :class:`Network`."""
        populations = [
            {
                "label": p.label,
                "size": p.size,
                "params": {f.name: getattr(p.params, f.name) for f in NEURON_PARAMS.fields},
            }
            for p in self.populations
        ]
        connections = []
        for c in self.connections:
            doc = {
                "source": c.source,
                "target": c.target,
                "topology": c.topology,
                "weight": c.weight,
                "delay": c.delay,
                "compartment": c.compartment,
            }
            if c.p is not None:
                doc["p"] = c.p
            if c.n is not None:
                doc["n"] = c.n
            doc["plastic"] = c.plastic
            if c.synapses is not None:
                doc["synapses"] = [list(s) for s in c.synapses]
            connections.append(doc)
        return {"populations": populations, "connections": connections, "seed": self.seed}


@dataclass(eq=False)
class Netlist:
    """A network with every connection expanded: flat arrays, the emulator's input.

    Neuron arrays have one entry per global neuron id (``int32``). Synapse arrays have
    one entry per synapse, in *synapse order*: connection 0's synapses first, each
    connection's ordered by source local index then target local index (entries of an
    ``explicit`` list with the same pair keep their order). ``src``/``tgt`` are global
    ids (``int32``), ``weight`` ``int32`` (-32768..32767), ``delay`` ``uint8`` (0..63),
    ``compartment`` ``uint8`` (0..3), ``plastic`` ``bool`` (connection plastic and
    initial weight > 0). Synapses of connection ``c`` are
    ``connection_offsets[c]:connection_offsets[c + 1]``.
    """

    populations: tuple[Population, ...]
    threshold: np.ndarray
    leak: np.ndarray
    resting: np.ndarray
    refrac: np.ndarray
    dend_threshold: np.ndarray
    src: np.ndarray
    tgt: np.ndarray
    weight: np.ndarray
    delay: np.ndarray
    compartment: np.ndarray
    plastic: np.ndarray
    connection_offsets: np.ndarray
    seed: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def n_neurons(self) -> int:
        return int(self.threshold.shape[0])

    @property
    def n_synapses(self) -> int:
        return int(self.src.shape[0])


# --- parsing ------------------------------------------------------------------------------

def _labels_list(sizes: dict[str, int]) -> str:
    return ", ".join(sizes)


def _parse_params(raw, path: str) -> NeuronParams:
    values = check_object(raw, NEURON_PARAMS, path) if raw is not None else {
        f.name: f.default for f in NEURON_PARAMS.fields}
    if not values["threshold"] > values["resting"]:
        raise ValidationError(
            f"{path}.threshold",
            f"must be greater than resting ({values['resting']}), not {values['threshold']}")
    return NeuronParams(**values)


def _parse_populations(raw, path: str, _values) -> list[Population]:
    first_index: dict[str, int] = {}
    offset = 0
    populations = []

    def unique_label(label, label_path, _v):
        if label in first_index:
            first = f"{path}[{first_index[label]}].label"
            raise ValidationError(label_path, f"duplicates {first} ({describe(label)})")

    def each(item, item_path, index):
        nonlocal offset
        values = check_object(item, POPULATION, item_path, checks={"label": unique_label},
                              parsers={"params": lambda p, ppath, _v: p})
        params = _parse_params(values["params"], f"{item_path}.params")
        first_index[values["label"]] = index
        population = Population(values["label"], values["size"], params, offset)
        offset += values["size"]
        populations.append(population)
        return population

    check_array(NETWORK.field("populations"), raw, path, each)
    return populations


def fan_size(connection: Connection, n_source: int, n_target: int) -> int | None:
    """``k`` of a fixed_fan_in (sources per target) or fixed_fan_out (targets per source)
    connection: ``n``, else ``floor(p * size + 0.5)`` in binary64 arithmetic (``size`` the
    source size for fan-in, the target size for fan-out). ``None`` for other topologies."""
    if connection.topology not in ("fixed_fan_in", "fixed_fan_out"):
        return None
    if connection.n is not None:
        return connection.n
    size = n_source if connection.topology == "fixed_fan_in" else n_target
    p = DEFAULT_P if connection.p is None else connection.p
    return math.floor(p * size + 0.5)


def _parse_connections(raw, path: str, sizes: dict[str, int]) -> list[Connection]:
    def known_label(label, label_path, _v):
        if label not in sizes:
            raise ValidationError(
                label_path,
                f"{describe(label)} is not a population of the network (populations: {_labels_list(sizes)})")

    def bounds(rel, values):
        for end, column in (("source", "synapses[][0]"), ("target", "synapses[][1]")):
            if rel == column:
                label = values[end]
                return 0, sizes[label] - 1, f"{end} {label!r} has {sizes[label]} neurons"
        if rel == "n":
            if values["topology"] == "fixed_fan_in":
                return 0, sizes[values["source"]], "at most the source size for fixed_fan_in"
            return 0, sizes[values["target"]], "at most the target size for fixed_fan_out"
        return None

    def each(item, item_path, _index):
        values = check_object(item, CONNECTION, item_path, bounds=bounds,
                              checks={"source": known_label, "target": known_label})
        ns, nt = sizes[values["source"]], sizes[values["target"]]
        if values["topology"] == "one_to_one" and ns != nt:
            raise ValidationError(
                item_path,
                f"topology one_to_one needs populations of equal size, not source {values['source']!r} "
                f"({ns}) and target {values['target']!r} ({nt})")
        synapses = None
        if values["synapses"] is not None:
            defaults = (None, None, values["weight"], values["delay"])
            synapses = tuple(
                tuple(d if i >= len(s) or s[i] is None else s[i] for i, d in enumerate(defaults))
                for s in values["synapses"])
        # p stays None when omitted (the contract: None means "the default applies").
        p = values["p"] if item.get("p") is not None else None
        return Connection(
            source=values["source"], target=values["target"], topology=values["topology"],
            weight=values["weight"], delay=values["delay"], compartment=values["compartment"],
            p=p, n=values["n"], plastic=values["plastic"], synapses=synapses)

    return check_array(NETWORK.field("connections"), raw, path, each)


def parse_network(doc, *, draw_seed=None) -> Network:
    """Check a ``POST /v1/networks`` body and return the :class:`Network`.

    Raises :class:`~neurofab.errors.ValidationError` naming the path and the value.
    Without a ``seed`` (or with ``null``), ``draw_seed()`` gives one (default
    ``secrets.randbits(32)``).
    """
    state: dict = {}

    def populations(raw, path, _values):
        pops = _parse_populations(raw, path, _values)
        state["sizes"] = {p.label: p.size for p in pops}
        return pops

    values = check_object(
        doc, NETWORK, "", where="the network",
        parsers={
            "populations": populations,
            "connections": lambda raw, path, _v: _parse_connections(raw, path, state["sizes"]),
        })
    seed = values["seed"]
    if seed is None:
        seed = draw_seed() if draw_seed is not None else secrets.randbits(32)
        check_value(NETWORK.field("seed"), seed, "seed")
    return Network(tuple(values["populations"]), tuple(values["connections"]), seed)


# --- expansion ----------------------------------------------------------------------------

def synapse_counts(network: Network) -> list[float]:
    """Synapses per connection without expanding: exact, except random_sparse (the
    expected ``p * ns * nt``)."""
    sizes = {p.label: p.size for p in network.populations}
    counts = []
    for c in network.connections:
        ns, nt = sizes[c.source], sizes[c.target]
        if c.topology == "all_to_all":
            count = ns * nt
        elif c.topology == "one_to_one":
            count = ns
        elif c.topology == "random_sparse":
            count = (DEFAULT_P if c.p is None else c.p) * ns * nt
        elif c.topology == "fixed_fan_in":
            count = fan_size(c, ns, nt) * nt
        elif c.topology == "fixed_fan_out":
            count = fan_size(c, ns, nt) * ns
        else:
            count = len(c.synapses)
        counts.append(float(count))
    return counts


def _local_pairs(c: Connection, index: int, seed: int, ns: int, nt: int):
    """Local (source, target) indices of one connection in synapse order, plus per-synapse
    weights and delays for explicit connections (else ``None``)."""
    if c.topology == "all_to_all":
        src = np.repeat(np.arange(ns, dtype=np.int32), nt)
        tgt = np.tile(np.arange(nt, dtype=np.int32), ns)
    elif c.topology == "one_to_one":
        if ns != nt:  # parse_network refuses this; a hand-built Network might not
            raise ValueError(f"one_to_one needs equal sizes, not {ns} and {nt}")
        src = tgt = np.arange(ns, dtype=np.int32)
    elif c.topology == "random_sparse":
        p = DEFAULT_P if c.p is None else c.p
        src, tgt = draw_random_sparse(connection_key(seed, index), ns, nt, sparse_threshold(p))
    elif c.topology == "fixed_fan_in":
        src, tgt = draw_fixed_fan_in(connection_key(seed, index), ns, nt, fan_size(c, ns, nt))
    elif c.topology == "fixed_fan_out":
        src, tgt = draw_fixed_fan_out(connection_key(seed, index), ns, nt, fan_size(c, ns, nt))
    else:
        table = np.array(c.synapses, dtype=np.int64).reshape(-1, 4)
        # Stable, so entries with the same pair keep their list order.
        order = np.argsort(table[:, 0] * nt + table[:, 1], kind="stable")
        table = table[order]
        return (table[:, 0].astype(np.int32), table[:, 1].astype(np.int32),
                table[:, 2].astype(np.int32), table[:, 3].astype(np.uint8))
    return src, tgt, None, None


def expand(network: Network) -> Netlist:
    """Every connection as explicit synapses (see :class:`Netlist`), drawn as
    docs/model.md ("Drawing the random topologies", draw version 1) specifies."""
    if network.total_neurons > np.iinfo(np.int32).max:
        raise ValidationError("populations", f"total {network.total_neurons} neurons exceed 2^31 - 1")
    pops = {p.label: p for p in network.populations}

    def per_neuron(name):
        return np.concatenate([
            np.full(p.size, getattr(p.params, name), dtype=np.int32) for p in network.populations])

    parts = []
    offsets = np.zeros(len(network.connections) + 1, dtype=np.int64)
    for index, c in enumerate(network.connections):
        ps, pt = pops[c.source], pops[c.target]
        src, tgt, weight, delay = _local_pairs(c, index, network.seed, ps.size, pt.size)
        count = src.shape[0]
        if weight is None:
            weight = np.full(count, c.weight, dtype=np.int32)
            delay = np.full(count, c.delay, dtype=np.uint8)
        parts.append((src + np.int32(ps.offset), tgt + np.int32(pt.offset), weight, delay,
                      np.full(count, c.compartment, dtype=np.uint8), (weight > 0) & c.plastic))
        offsets[index + 1] = offsets[index] + count

    def joined(column, dtype):
        if not parts:
            return np.zeros(0, dtype=dtype)
        return np.concatenate([part[column] for part in parts]).astype(dtype, copy=False)

    return Netlist(
        populations=network.populations,
        threshold=per_neuron("threshold"),
        leak=per_neuron("leak"),
        resting=per_neuron("resting"),
        refrac=per_neuron("refrac"),
        dend_threshold=per_neuron("dend_threshold"),
        src=joined(0, np.int32),
        tgt=joined(1, np.int32),
        weight=joined(2, np.int32),
        delay=joined(3, np.uint8),
        compartment=joined(4, np.uint8),
        plastic=joined(5, np.bool_),
        connection_offsets=offsets,
        seed=network.seed,
        extra={"draw_version": DRAW_VERSION},
    )

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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "TOPOLOGIES",
    "NeuronParams",
    "Population",
    "Connection",
    "Network",
    "Netlist",
    "parse_network",
    "synapse_counts",
    "expand",
]

TOPOLOGIES = ("all_to_all", "one_to_one", "random_sparse", "fixed_fan_in", "fixed_fan_out", "explicit")


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
        raise NotImplementedError


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


def parse_network(doc, *, draw_seed=None) -> Network:
    raise NotImplementedError


def synapse_counts(network: Network) -> list[float]:
    raise NotImplementedError


def expand(network: Network) -> Netlist:
    raise NotImplementedError

"""Seeded random networks and jobs for the emulator-versus-reference proofs.

A case is drawn from one integer seed (``random.Random(seed)``), so every failure is
reproducible from the seed printed in its test id. The generator first writes the
API documents (a ``POST /v1/networks`` body and a ``POST /v1/jobs`` body) and then
turns them into a :class:`~neurofab.network.Netlist` and a :class:`~neurofab.job.Job`
in one of two ways:

- ``via="direct"``: this module's own small expansion (numpy, no project parsing
  code), so the proofs do not depend on the document layer;
- ``via="parser"``: ``neurofab.network.parse_network`` + ``expand`` and
  ``neurofab.job.parse_job``, so the real path from JSON to emulator is exercised.

Both paths feed the *same* netlist to the emulator and to the reference, so they
need not draw random topologies identically.

Features (each may be forced on or off, the rest are drawn): ``delays``,
``compartments``, ``dendritic``, ``noise``, ``graded``, ``stdp``, ``three_factor``,
``extreme`` (parameters at the ends of their ranges), ``stimulus_variants``
(neuron subsets, windows, times, several stimuli per neuron), ``job_seed``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from neurofab.job import Job, Learning, Reward, Stimulus
from neurofab.network import TOPOLOGIES, Netlist, NeuronParams, Population

__all__ = [
    "FEATURES",
    "Case",
    "SynapseSpec",
    "netlist_from_synapses",
    "random_documents",
    "netlist_from_document",
    "job_from_document",
    "random_case",
]

FEATURES = (
    "delays",
    "compartments",
    "dendritic",
    "noise",
    "graded",
    "stdp",
    "three_factor",
    "extreme",
    "stimulus_variants",
    "job_seed",
)

V_MIN = -(1 << 23)
V_MAX = (1 << 23) - 1


@dataclass(frozen=True)
class SynapseSpec:
    """One synapse by global ids, for hand-built netlists."""

    src: int
    tgt: int
    weight: int = 200
    delay: int = 0
    compartment: int = 0
    plastic: bool = True


def netlist_from_synapses(populations, connections, seed: int = 0) -> Netlist:
    """Build a :class:`Netlist` by hand.

    ``populations`` is a list of ``(label, size, NeuronParams)``; ``connections`` a list
    of lists of :class:`SynapseSpec` (one list per connection, already in synapse
    order). ``plastic`` follows the Netlist contract: the connection's flag and an
    initial weight > 0.
    """
    pops = []
    offset = 0
    for label, size, params in populations:
        pops.append(Population(label=label, size=size, params=params, offset=offset))
        offset += size
    per_neuron = {name: [] for name in ("threshold", "leak", "resting", "refrac", "dend_threshold")}
    for pop in pops:
        for name, values in per_neuron.items():
            values.extend([getattr(pop.params, name)] * pop.size)
    flat = [s for conn in connections for s in conn]
    offsets = np.cumsum([0] + [len(conn) for conn in connections]).astype(np.int64)
    return Netlist(
        populations=tuple(pops),
        **{name: np.array(values, dtype=np.int32) for name, values in per_neuron.items()},
        src=np.array([s.src for s in flat], dtype=np.int32),
        tgt=np.array([s.tgt for s in flat], dtype=np.int32),
        weight=np.array([s.weight for s in flat], dtype=np.int32),
        delay=np.array([s.delay for s in flat], dtype=np.uint8),
        compartment=np.array([s.compartment for s in flat], dtype=np.uint8),
        plastic=np.array([s.plastic and s.weight > 0 for s in flat], dtype=bool),
        connection_offsets=offsets,
        seed=seed,
    )


@dataclass
class Case:
    """One random case: its seed, the drawn features, the documents and the built inputs."""

    seed: int
    features: dict
    network_doc: dict
    job_doc: dict
    netlist: Netlist | None = None
    job: Job | None = None
    notes: list = field(default_factory=list)

    def describe(self) -> str:
        on = sorted(k for k, v in self.features.items() if v is True)
        topologies = sorted({c.get("topology", "all_to_all") for c in self.network_doc["connections"]})
        n = self.netlist.n_neurons if self.netlist is not None else "?"
        m = self.netlist.n_synapses if self.netlist is not None else "?"
        return (f"seed={self.seed} T={self.job_doc['timesteps']} neurons={n} synapses={m} "
                f"features={on} topologies={topologies}")


# --- drawing the documents ---------------------------------------------------------------------


def _draw_params(rng: random.Random, extreme: bool) -> dict:
    """Neuron params; sometimes omitted fields so defaults are exercised."""
    if extreme:
        threshold = rng.choice([1, 2, V_MAX, V_MAX - rng.randint(0, 2000), rng.randint(1, V_MAX),
                                rng.randint(1, 5000)])
        leak = rng.choice([0, 65535, rng.randint(0, 65535), rng.randint(0, 20)])
        resting = rng.choice([V_MIN, V_MIN + rng.randint(0, 1000), threshold - 1,
                              threshold - rng.randint(1, 5000), rng.randint(V_MIN, V_MAX), 0])
        refrac = rng.choice([0, 255, rng.randint(0, 255), 1])
        dend = rng.choice([0, V_MAX, rng.randint(0, V_MAX), rng.randint(0, 3000)])
    else:
        threshold = rng.randint(100, 3000)
        leak = rng.choice([0, rng.randint(0, 60), 3])
        resting = rng.choice([0, 0, rng.randint(-500, 500)])
        refrac = rng.choice([0, 1, 2, 3, rng.randint(0, 8)])
        dend = rng.choice([0, 500, rng.randint(0, 2000)])
    resting = max(V_MIN, min(resting, threshold - 1))  # threshold > resting
    params = {"threshold": threshold, "leak": leak, "resting": resting, "refrac": refrac,
              "dend_threshold": dend}
    # leave some fields out so the defaults are exercised, keeping threshold > resting
    for name in list(params):
        if rng.random() < 0.15:
            kept = {k: v for k, v in params.items() if k != name}
            if kept.get("threshold", 1000) > kept.get("resting", 0):
                params = kept
    return params


def _draw_weight(rng: random.Random, extreme: bool) -> int:
    if extreme and rng.random() < 0.6:
        return rng.choice([32767, -32768, -32767, 1, -1, 0, rng.randint(-32768, 32767)])
    return rng.choice([rng.randint(-1500, 3000), rng.randint(-400, 1200), 200])


def _draw_connection(rng, populations, features, topology, scale="small") -> dict:
    source = rng.choice(populations)
    if topology == "one_to_one":
        same = [p for p in populations if p["size"] == source["size"]]
        target = rng.choice(same)
    else:
        target = rng.choice(populations)
    ns, nt = source["size"], target["size"]
    conn = {"source": source["label"], "target": target["label"], "topology": topology,
            "weight": _draw_weight(rng, features["extreme"])}
    if features["delays"]:
        conn["delay"] = rng.choice([0, 63, 1, rng.randint(0, 63), rng.randint(0, 5)])
    if features["compartments"]:
        conn["compartment"] = rng.randint(0, 3)
    if rng.random() < 0.2:
        conn["plastic"] = rng.random() < 0.5
    # bigger cases keep the fan small so the reference stays around a second
    p_max = {"small": 1.0, "large": 0.1, "wide": 0.0005}[scale]
    n_max = {"small": 1 << 30, "large": 8, "wide": 3}[scale]
    if topology == "random_sparse":
        conn["p"] = rng.choice([0.0, p_max, round(rng.random() * p_max, 3), 0.3 * p_max])
    elif topology in ("fixed_fan_in", "fixed_fan_out"):
        limit = ns if topology == "fixed_fan_in" else nt
        if rng.random() < 0.5:
            conn["n"] = rng.randint(0, min(limit, n_max))
        else:
            conn["p"] = round(rng.random() * p_max, 3)
    elif topology == "explicit":
        entries = []
        for _ in range(rng.randint(0, min(40, 2 * ns * nt))):
            entry = [rng.randrange(ns), rng.randrange(nt)]
            form = rng.randint(2, 4)
            if form >= 3:
                entry.append(_draw_weight(rng, features["extreme"]))
            if form == 4:
                entry.append(rng.randint(0, 63) if features["delays"] else 0)
            entries.append(entry)
        conn["synapses"] = entries
    return conn


def _draw_stimulus(rng, pop, T, features) -> dict:
    span = max(1, pop["threshold_hint"] - pop["resting_hint"])
    if features["extreme"] and rng.random() < 0.3:
        current = rng.choice([V_MAX, V_MIN, rng.randint(V_MIN, V_MAX)])
    else:
        current = rng.choice([rng.randint(-span // 2, 2 * span), rng.randint(span // 4, span + span // 2),
                              span + rng.randint(0, 50)])
        current = max(V_MIN, min(V_MAX, current))  # the stimulus current range
    stim = {"population": pop["label"], "current": current}
    if not features["stimulus_variants"]:
        return stim
    if rng.random() < 0.5:
        # distinct local indices, in no particular order
        stim["neurons"] = rng.sample(range(pop["size"]), rng.randint(1, pop["size"]))
    kind = rng.randint(0, 2)
    if kind == 1:
        start = rng.randint(0, T - 1)
        stop = rng.randint(start + 1, T)
        if rng.random() < 0.7:
            stim["start"] = start
        if rng.random() < 0.7:
            stim["stop"] = stop
    elif kind == 2:
        # an empty list is valid and never active
        stim["times"] = sorted(rng.sample(range(T), rng.choice([0] + [rng.randint(1, min(T, 12))] * 9)))
    return stim


def random_documents(seed: int, force: dict | None = None, topologies=None, scale: str = "small") -> Case:
    """Draw a network document and a job document from ``seed``.

    ``force`` fixes some features (``{"noise": True}``); ``topologies`` restricts the
    connection topologies drawn from. ``scale`` is ``"small"`` (tens of neurons, up to 200
    steps), ``"large"`` (populations of 20 to 100 neurons, 200 to 400 steps) or ``"wide"``
    (two populations of 3050 to 3400 neurons, 160 to 200 steps, a few synapses per
    neuron: wide enough for the emulator's parallel kernels and several run chunks). The
    bigger scales keep connections sparse (no all_to_all) so the reference stays within
    seconds.
    """
    rng = random.Random(seed)
    features = {name: rng.random() < 0.5 for name in FEATURES}
    features.update(force or {})
    topologies = tuple(topologies or TOPOLOGIES)

    pop_docs = []
    hints = []
    for index in range(2 if scale == "wide" else rng.choice([1, 1, 2, 2, 3, 4])):
        size = rng.choice([1, 2, rng.randint(1, 6), rng.randint(3, 12), rng.randint(8, 24),
                           rng.randint(16, 32)])
        if scale == "large":
            size = rng.randint(20, 100)
        elif scale == "wide":
            size = rng.randint(3050, 3400)
        params = _draw_params(rng, features["extreme"])
        doc = {"label": f"p{index}", "size": size}
        if params or rng.random() < 0.5:
            doc["params"] = params
        pop_docs.append(doc)
        th = params.get("threshold", 1000)
        rest = params.get("resting", 0)
        hints.append({"label": doc["label"], "size": size, "threshold_hint": th, "resting_hint": rest})

    connections = []
    for _ in range(rng.choice([0, 1, 2, 2, 3, 4, 5])):
        connections.append(_draw_connection(rng, hints, features, rng.choice(topologies), scale))
    if features["dendritic"]:
        # make compartment sums land exactly on dend_threshold now and then (A_c >= passes)
        for conn in connections:
            weight = conn["weight"]
            if conn.get("compartment", 0) > 0 and weight > 0 and rng.random() < 0.8:
                target = next(p for p in pop_docs if p["label"] == conn["target"])
                target.setdefault("params", {})["dend_threshold"] = weight * rng.choice([1, 1, 2])
    network_doc = {"populations": pop_docs, "connections": connections, "seed": rng.getrandbits(32)}

    T = rng.choice([rng.choice([1, 2]), rng.randint(3, 40), rng.randint(20, 120), rng.randint(60, 200),
                    rng.randint(100, 200), rng.randint(3, 200), rng.randint(20, 200)])
    if scale == "large":
        T = rng.randint(200, 400)
    elif scale == "wide":
        T = rng.randint(160, 200)
    # learning needs pre and post activity: more stimuli when plasticity is on
    plastic = features["stdp"] or features["three_factor"]
    count = rng.choice([1, 2, 3, 4, 5, 6] if plastic else [0, 1, 1, 2, 3, 4])
    stimuli = [_draw_stimulus(rng, rng.choice(hints), T, features) for _ in range(count)]
    learning = {}
    # three_factor without enabled is legal and must do nothing: keep it, rarely
    if features["stdp"] or (features["three_factor"] and rng.random() < 0.9):
        learning["enabled"] = True
    elif rng.random() < 0.1:
        learning["enabled"] = False
    for name in ("graded", "dendritic", "noise", "three_factor"):
        if features[name]:
            learning[name] = True
    if learning.get("enabled"):
        if rng.random() < 0.7:
            pick = [rng.randint(0, 300), 16, 32767, 0, rng.randint(0, 32767)]
            learning["a_plus"] = rng.choice(pick)
            learning["a_minus"] = rng.choice(pick)
        if rng.random() < 0.6:
            # shift 0 empties a trace in one step (no pairing can happen): possible but rare
            shifts = [0, 1, 2, 3, 3, 4, 5, 6, 8, 15, rng.randint(1, 15), rng.randint(2, 6)]
            learning["trace_shift"] = rng.choice(shifts)
            learning["elig_shift"] = rng.choice(shifts)
    job_doc = {"timesteps": T, "stimuli": stimuli}
    if learning:
        job_doc["learning"] = learning
    if features["three_factor"]:
        rewards = []
        for _ in range(rng.choice([0, rng.randint(1, 4), rng.randint(3, 12), rng.randint(10, 30)])):
            step = rng.choice([rng.randrange(T), rewards[-1]["timestep"]] if rewards else [rng.randrange(T)])
            value = rng.choice([rng.randint(-32768, 32767), rng.randint(-300, 300), 32767, -32768])
            rewards.append({"timestep": step, "value": value})
        job_doc["rewards"] = rewards
    if features["job_seed"]:
        job_doc["seed"] = rng.choice([rng.getrandbits(32), 0xFFFFFFFF, 1])
    return Case(seed=seed, features=features, network_doc=network_doc, job_doc=job_doc)


# --- building inputs from the documents without the project's parser --------------------------


def _expand_connection(conn: dict, ns: int, nt: int, rng: np.random.Generator) -> list[tuple]:
    """(source local, target local, weight, delay) in synapse order, this module's own draws."""
    topology = conn.get("topology", "all_to_all")
    weight = conn.get("weight", 200)
    delay = conn.get("delay", 0)
    p = conn.get("p")
    p = 0.1 if p is None else p
    pairs: list[tuple[int, int]] = []
    if topology == "all_to_all":
        pairs = [(i, j) for i in range(ns) for j in range(nt)]
    elif topology == "one_to_one":
        pairs = [(i, i) for i in range(ns)]
    elif topology == "random_sparse":
        mask = rng.random((ns, nt)) < p
        pairs = [(int(i), int(j)) for i, j in zip(*np.nonzero(mask), strict=True)]
    elif topology == "fixed_fan_in":
        k = conn["n"] if conn.get("n") is not None else int(np.floor(p * ns + 0.5))
        pairs = sorted((int(i), j) for j in range(nt) for i in rng.choice(ns, size=k, replace=False))
    elif topology == "fixed_fan_out":
        k = conn["n"] if conn.get("n") is not None else int(np.floor(p * nt + 0.5))
        pairs = sorted((i, int(j)) for i in range(ns) for j in rng.choice(nt, size=k, replace=False))
    elif topology == "explicit":
        entries = [(e[0], e[1], e[2] if len(e) > 2 else weight, e[3] if len(e) > 3 else delay)
                   for e in conn["synapses"]]
        return sorted(entries, key=lambda s: (s[0], s[1]))  # stable: same pairs keep list order
    else:
        raise ValueError(f"unknown topology {topology!r}")
    return [(i, j, weight, delay) for i, j in pairs]


def netlist_from_document(doc: dict) -> Netlist:
    """This module's own expansion of a network document into a Netlist."""
    rng = np.random.default_rng(doc["seed"])
    populations = [(p["label"], p["size"], NeuronParams(**p.get("params", {}))) for p in doc["populations"]]
    offsets = {}
    sizes = {}
    offset = 0
    for label, size, _ in populations:
        offsets[label], sizes[label] = offset, size
        offset += size
    connections = []
    for conn in doc["connections"]:
        s, t = conn["source"], conn["target"]
        connections.append([
            SynapseSpec(src=offsets[s] + i, tgt=offsets[t] + j, weight=w, delay=d,
                        compartment=conn.get("compartment", 0), plastic=conn.get("plastic", True))
            for i, j, w, d in _expand_connection(conn, sizes[s], sizes[t], rng)
        ])
    return netlist_from_synapses(populations, connections, seed=doc["seed"])


def job_from_document(doc: dict) -> Job:
    """This module's own reading of a (valid) job document."""
    stimuli = tuple(
        Stimulus(population=s["population"], current=s["current"],
                 neurons=tuple(s["neurons"]) if s.get("neurons") is not None else None,
                 start=s.get("start"), stop=s.get("stop"),
                 times=tuple(s["times"]) if s.get("times") is not None else None)
        for s in doc.get("stimuli", ())
    )
    return Job(
        timesteps=doc["timesteps"],
        stimuli=stimuli,
        learning=Learning(**doc.get("learning", {})),
        rewards=tuple(Reward(timestep=r["timestep"], value=r["value"]) for r in doc.get("rewards", ())),
        seed=doc.get("seed", 0),
    )


def random_case(seed: int, force: dict | None = None, topologies=None, via: str = "direct",
                scale: str = "small") -> Case:
    """Draw a case and build its Netlist and Job (see the module doc for ``via``)."""
    if scale != "small" and "all_to_all" in (topologies or TOPOLOGIES):
        raise ValueError(f"scale {scale!r} needs sparse topologies, not all_to_all")
    case = random_documents(seed, force, topologies, scale)
    if via == "direct":
        case.netlist = netlist_from_document(case.network_doc)
        case.job = job_from_document(case.job_doc)
    elif via == "parser":
        from neurofab.job import bind_job, parse_job
        from neurofab.network import expand, parse_network

        network = parse_network(case.network_doc)
        case.netlist = expand(network)
        case.job = parse_job(case.job_doc)
        bind_job(case.job, network.populations)
    else:
        raise ValueError(f"via must be 'direct' or 'parser', not {via!r}")
    return case

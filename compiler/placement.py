"""Placement: which core holds which neurons, where each synapse lives, how spikes travel.

The placement is a partition of the global neuron ids into contiguous ranges, one per
core, filled greedily in gid order: a core takes neurons until the next one would
overflow one of its capacities (neurons, profiles, synapse words, axon entries). So
populations go onto as few cores as that order allows and a population is split only
where a core is full; since every capacity but the axon table only grows with the
range, greedy filling is optimal for them. Contiguous ranges keep the core's local
index a plain offset (``local = gid - first_gid``), which is all the host needs to
seed each neuron's LFSR.

A synapse lives on the core of its **target**. Its axon there is the source's own
axon (``local index``) when the source is on the same core, else a *remote* axon of
that core, numbered after the core's neurons in ascending source gid. A source with
synapses on other cores gets one route entry per such core, ascending by core.

Every capacity is checked here, before anything runs; :class:`CapacityError` names
what does not fit, by how much, and what would fit it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from neurofab.errors import ValidationError
from neurofab.hdl.config import PRESETS, CoreConfig

__all__ = ["CapacityError", "Placement", "place", "connection_labels", "describe_neuron", "counting_order"]


class CapacityError(ValidationError):
    """The network does not fit the core preset (or the number of cores) asked for.

    ``str(error)`` is the message alone (it names the thing that does not fit);
    ``path`` is ``"core"``, or the argument to blame (``"max_neurons_per_core"``).
    """

    def __init__(self, path: str, message: str):
        self.path = path
        ValueError.__init__(self, message)


@dataclass(eq=False)
class Placement:
    """Where everything goes (all arrays ``int64`` unless said otherwise).

    ``bounds[c] .. bounds[c + 1]`` are core ``c``'s neurons. ``profile`` is each
    neuron's global profile number (rows of ``profile_params``). ``axon_key`` gives each
    synapse its axon, numbered core after core (core ``c``'s axon ``a`` is
    ``axon_base[c] + a``): the synapse memories list the synapses in the stable order of
    this key. On one core it is the netlist's own ``src`` array (any integer dtype), the
    source being its own axon. ``syn_bounds[c] .. syn_bounds[c + 1]`` are core ``c``'s
    synapse words in that order. ``route_src``, ``route_core``, ``route_axon`` are the
    route entries sorted by source gid then core. ``n_axons[c]`` is core ``c``'s axon count.
    """

    config: CoreConfig
    bounds: np.ndarray
    profile: np.ndarray
    profile_params: np.ndarray
    axon_key: np.ndarray
    syn_bounds: np.ndarray
    route_src: np.ndarray
    route_core: np.ndarray
    route_axon: np.ndarray
    n_axons: np.ndarray
    #: the synapses grouped by core, in synapse order within a core (None on one core)
    by_core: np.ndarray | None = None

    @property
    def n_cores(self) -> int:
        return int(self.bounds.shape[0] - 1)

    @property
    def axon_base(self) -> np.ndarray:
        """``axon_base[c]``: the key of core ``c``'s axon 0 (and the total axons last)."""
        return np.concatenate([[0], np.cumsum(self.n_axons)]).astype(np.int64)


PARAM_NAMES = ("threshold", "leak", "resting", "refrac", "dend_threshold")


def _fmt(n: int) -> str:
    return f"{int(n):,}"


def connection_labels(netlist) -> list[str]:
    """``source->target`` for each connection, from its first synapse's populations."""
    offsets = np.asarray(netlist.connection_offsets, dtype=np.int64)
    labels = []
    starts = np.array([p.offset for p in netlist.populations], dtype=np.int64)
    for c in range(len(offsets) - 1):
        if offsets[c + 1] == offsets[c]:
            labels.append(f"connection {c}")
            continue
        k = int(offsets[c])
        s = netlist.populations[int(np.searchsorted(starts, netlist.src[k], "right") - 1)].label
        t = netlist.populations[int(np.searchsorted(starts, netlist.tgt[k], "right") - 1)].label
        labels.append(f"{s}->{t}")
    return labels


def describe_neuron(netlist, gid: int) -> str:
    """``exc[12]``: a neuron by population label and local index."""
    for p in netlist.populations:
        if p.offset <= gid < p.offset + p.size:
            return f"{p.label}[{gid - p.offset}]"
    return f"neuron {gid}"


def _connection_of(netlist, k: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(netlist.connection_offsets), k, side="right") - 1


def _check_fields(netlist, config: CoreConfig) -> None:
    """Per-synapse values the core's words cannot hold (delay slots, compartments)."""
    labels = None
    for name, limit, what in (
        ("delay", config.delay_slots, "delay slots"),
        ("compartment", config.compartments, "compartments"),
    ):
        values = np.asarray(getattr(netlist, name))
        if values.size and int(values.max()) >= limit:
            k = int(np.argmax(values))
            labels = labels or connection_labels(netlist)
            conn = labels[int(_connection_of(netlist, np.array([k]))[0])]
            raise CapacityError(
                "core", f"connection {conn} uses {name} {int(values[k])}; core preset {config.name} has "
                f"{limit} {what} ({name} 0 .. {limit - 1})")


def _profiles(netlist) -> tuple[np.ndarray, np.ndarray]:
    """Global profile number per neuron (first-use order) and the profiles' parameters."""
    params = np.stack([np.asarray(getattr(netlist, k), dtype=np.int64) for k in PARAM_NAMES], axis=1)
    if params.shape[0] == 0:
        return np.zeros(0, np.int64), params
    # neurons of a population share parameters, so compare runs rather than all rows
    change = np.r_[True, np.any(params[1:] != params[:-1], axis=1)]
    run_first = np.flatnonzero(change)
    # runs are few (about one per population): number their distinct rows in first-use order
    numbers: dict[tuple, int] = {}
    rows = params[run_first].tolist()
    run_profile = np.array([numbers.setdefault(tuple(row), len(numbers)) for row in rows], dtype=np.int64)
    profile = run_profile[np.cumsum(change) - 1]
    return profile, np.array(list(numbers), dtype=np.int64).reshape(-1, len(PARAM_NAMES))


def _profile_limit(profile: np.ndarray, run_starts: np.ndarray, start: int, end: int, cap: int) -> int:
    """The largest end ``<= end`` such that neurons ``start .. end - 1`` use at most ``cap`` profiles."""
    seen: set[int] = set()
    r = int(np.searchsorted(run_starts, start, side="right") - 1)
    while r < len(run_starts) and run_starts[r] < end:
        p = int(profile[max(start, int(run_starts[r]))])
        if p not in seen:
            if len(seen) == cap:
                return max(start, int(run_starts[r]))
            seen.add(p)
        r += 1
    return end


@njit(cache=True, nogil=True)
def counting_order(keys, n_keys):
    """The stable sort order of ``keys`` (integers in ``0 .. n_keys - 1``): O(len + n_keys)."""
    start = np.zeros(n_keys + 1, np.int64)
    for k in keys:
        start[k + 1] += 1
    for k in range(n_keys):
        start[k + 1] += start[k]
    order = np.empty(keys.shape[0], np.int64)
    for i in range(keys.shape[0]):
        k = keys[i]
        order[start[k]] = i
        start[k] += 1
    return order


@njit(cache=True, nogil=True)
def _starts(counts):
    """Exclusive prefix sums: where each group of ``counts`` starts."""
    out = np.zeros(counts.shape[0], np.int64)
    for i in range(1, counts.shape[0]):
        out[i] = out[i - 1] + counts[i - 1]
    return out


@njit(cache=True, nogil=True)
def _key_synapses(src, tgt, bounds, core_of, n_axons, syn_count, syn_axon):
    """Each synapse's global axon key and the synapses grouped by target core (stable).

    A core's axons are its neurons' (local index) then its remote axons (``syn_axon``,
    read only for cross-core synapses); keys number every core's axons in core order.
    """
    m, n_cores = src.shape[0], bounds.shape[0] - 1
    axon_base = np.zeros(n_cores + 1, np.int64)
    for c in range(n_cores):
        axon_base[c + 1] = axon_base[c] + n_axons[c]
    axon_key = np.empty(m, np.int64)
    by_core, place = np.empty(m, np.int64), _starts(syn_count)
    for k in range(m):
        s = src[k]
        c = core_of[tgt[k]]
        if core_of[s] == c:
            axon_key[k] = axon_base[c] + s - bounds[c]  # a local axon: the source's local index
        else:
            axon_key[k] = axon_base[c] + syn_axon[k]
        by_core[place[c]] = k
        place[c] += 1
    return axon_key, by_core


@njit(cache=True, nogil=True)
def _assign_axons_dense(src, tgt, bounds, core_of):
    """:func:`_assign_axons` through a table of every (source, core) pair: for few cores.

    The same results with no sort: one pass marks the pairs that cross cores (0), a
    walk over the table by source then core numbers them (a core's remote axons come
    after its neurons', so a number is never 0) and lists the routes, and one more pass
    over the synapses reads their axons.
    O(synapses + neurons x cores).
    """
    m, n_cores = src.shape[0], bounds.shape[0] - 1
    n = bounds[n_cores]
    syn_count = np.zeros(n_cores, np.int64)
    pair = np.full(n * n_cores, -1, np.int32)  # [source * n_cores + core]: its axon there
    n_pairs = 0
    for k in range(m):
        t_core = core_of[tgt[k]]
        syn_count[t_core] += 1
        i = src[k] * n_cores + t_core
        if core_of[src[k]] != t_core and pair[i] < 0:
            pair[i] = 0
            n_pairs += 1
    # by source, then core: each core's remote axons come in ascending source gid
    n_axons = bounds[1:] - bounds[:-1]
    route_src = np.empty(n_pairs, np.int64)
    route_core = np.empty(n_pairs, np.int64)
    route_axon = np.empty(n_pairs, np.int64)
    r = 0
    for s in range(n):
        for c in range(n_cores):
            i = s * n_cores + c
            if pair[i] == 0:
                pair[i] = n_axons[c]
                n_axons[c] += 1
                route_src[r] = s
                route_core[r] = c
                route_axon[r] = pair[i]
                r += 1
    syn_axon = np.empty(m, np.int64)  # a cross-core synapse's remote axon on its target's core
    for k in range(m):
        syn_axon[k] = pair[src[k] * n_cores + core_of[tgt[k]]]
    axon_key, by_core = _key_synapses(src, tgt, bounds, core_of, n_axons, syn_count, syn_axon)
    return axon_key, n_axons, syn_count, route_src, route_core, route_axon, by_core


@njit(cache=True, nogil=True)
def _assign_axons(src, tgt, bounds, core_of):
    """Every synapse's axon key, each core's axon and synapse counts, the route entries,
    and the synapses grouped by target core (a stable order: ``by_core``).

    One pass counts each core's synapses and each source's cross-core synapses; a
    counting sort groups the cross-core synapses by source; walking the sources in
    ascending gid then gives each distinct (core, source) pair the core's next remote
    axon (so remote axons are numbered in ascending source gid) and one route entry,
    the entries of a source sorted by core. O(synapses + neurons + cores).
    """
    m, n_cores = src.shape[0], bounds.shape[0] - 1
    n = bounds[n_cores]
    syn_count = np.zeros(n_cores, np.int64)
    start = np.zeros(n + 1, np.int64)  # cross-core synapses per source, then their offsets
    for k in range(m):
        t_core = core_of[tgt[k]]
        syn_count[t_core] += 1
        if core_of[src[k]] != t_core:
            start[src[k] + 1] += 1
    for s in range(n):
        start[s + 1] += start[s]
    n_remote = start[n]
    by_source = np.empty(n_remote, np.int64)
    fill = start[:n].copy()
    for k in range(m):
        s = src[k]
        if core_of[s] != core_of[tgt[k]]:
            by_source[fill[s]] = k
            fill[s] += 1

    n_local = bounds[1:] - bounds[:-1]
    n_axons = n_local.copy()
    last = np.full(n_cores, -1, np.int64)  # the source whose axon cur[c] is on core c
    cur = np.zeros(n_cores, np.int64)
    syn_axon = np.empty(m, np.int64)
    route_src = np.empty(n_remote, np.int64)
    route_core = np.empty(n_remote, np.int64)
    route_axon = np.empty(n_remote, np.int64)
    cores = np.empty(n_cores, np.int64)
    n_routes = 0
    for s in range(n):
        n_here = 0
        for i in range(start[s], start[s + 1]):
            k = by_source[i]
            c = core_of[tgt[k]]
            if last[c] != s:
                last[c] = s
                cur[c] = n_axons[c]
                n_axons[c] += 1
                cores[n_here] = c
                n_here += 1
            syn_axon[k] = cur[c]
        here = np.sort(cores[:n_here])
        for j in range(n_here):
            route_src[n_routes] = s
            route_core[n_routes] = here[j]
            route_axon[n_routes] = cur[here[j]]
            n_routes += 1

    axon_key, by_core = _key_synapses(src, tgt, bounds, core_of, n_axons, syn_count, syn_axon)
    return (axon_key, n_axons, syn_count, route_src[:n_routes], route_core[:n_routes],
            route_axon[:n_routes], by_core)


class _Fill:
    """Greedy contiguous filling of cores with one core shape."""

    def __init__(self, netlist, config: CoreConfig, per_core: int, explain: bool = True):
        # explain: name the presets that would fit (off while trying the presets themselves)
        self.netlist, self.config, self.per_core, self.explain = netlist, config, per_core, explain
        n = netlist.n_neurons
        self.src = np.asarray(netlist.src)
        self._indeg = self._cum = self._by_target = None  # per-synapse work, done when first needed
        self.profile, self.profile_params = _profiles(netlist)
        self.run_starts = np.flatnonzero(np.r_[True, self.profile[1:] != self.profile[:-1]]) \
            if n else np.zeros(0, np.int64)

    @property
    def indeg(self) -> np.ndarray:
        if self._indeg is None:
            self._indeg = np.bincount(self.netlist.tgt, minlength=self.netlist.n_neurons)
        return self._indeg

    @property
    def cum(self) -> np.ndarray:
        if self._cum is None:
            self._cum = np.concatenate([[0], np.cumsum(self.indeg)])
        return self._cum

    def fits_one_core(self) -> bool:
        """Whether every neuron fits one core: then greedy filling gives that one core.

        The greedy fill would reach the same answer, but only after counting every
        neuron's synapses; with all neurons on one core no source is remote, so the
        totals decide.
        """
        cfg, n = self.config, self.netlist.n_neurons
        return (0 < n <= self.per_core and self.netlist.n_synapses <= cfg.synapse_words
                and self.profile_params.shape[0] <= cfg.profiles and n <= cfg.axons)

    def remote_sources(self, start: int, end: int) -> int:
        """Distinct sources outside ``start .. end - 1`` of synapses into it, or a bound that fits.

        Exact only when needed: a bound (the synapses into the range, or every neuron
        outside it) is returned instead when even the bound fits the axon table.
        """
        n = self.netlist.n_neurons
        if start == 0 and end == n:
            return 0
        bound = min(int(self.cum[end] - self.cum[start]), n - (end - start))
        if bound <= self.config.axons - (end - start):
            return bound  # a bound is enough
        if self._by_target is None:  # synapses grouped by target, built when first needed
            self._by_target = counting_order(np.asarray(self.netlist.tgt), self.netlist.n_neurons)
        sources = self.src[self._by_target[self.cum[start]:self.cum[end]]]
        outside = sources[(sources < start) | (sources >= end)]
        if outside.size <= self.config.axons - (end - start):
            return int(outside.size)  # a bound is enough: it fits
        return int(np.unique(outside).size)

    def axons_fit(self, start: int, end: int) -> bool:
        return (end - start) + self.remote_sources(start, end) <= self.config.axons

    def bounds(self) -> np.ndarray:
        """Core boundaries; raises :class:`CapacityError` if a single neuron cannot fit."""
        cfg, n = self.config, self.netlist.n_neurons
        if self.fits_one_core():
            return np.array([0, n], dtype=np.int64)
        bounds, start = [0], 0
        while start < n:
            end = min(n, start + self.per_core)
            end = min(end, int(np.searchsorted(self.cum, self.cum[start] + cfg.synapse_words, "right") - 1))
            end = _profile_limit(self.profile, self.run_starts, start, end, cfg.profiles)
            if end > start and not self.axons_fit(start, end):
                lo, hi = start + 1, end  # lo fits (checked below), hi does not
                if self.axons_fit(start, lo):
                    while hi - lo > 1:
                        mid = (lo + hi) // 2
                        lo, hi = (mid, hi) if self.axons_fit(start, mid) else (lo, mid)
                    end = lo
                else:
                    end = start
            if end == start:
                self.single_neuron_error(start)
            bounds.append(end)
            start = end
        return np.array(bounds, dtype=np.int64)

    def single_neuron_error(self, gid: int):
        cfg, name = self.config, describe_neuron(self.netlist, gid)
        if not self.explain:
            raise CapacityError("core", f"neuron {name} does not fit a core of preset {cfg.name}")
        if self.indeg[gid] > cfg.synapse_words:
            need, what, cap = self.indeg[gid], "synapse words", cfg.synapse_words
            raise CapacityError("core", f"neuron {name} receives {_fmt(need)} synapses, so it needs "
                                f"{_fmt(need)} {what}; core preset {cfg.name} holds {_fmt(cap)} per core"
                                f"{_fitting_presets(self.netlist, cfg)}")
        remote = self.remote_sources(gid, gid + 1)
        raise CapacityError("core", f"neuron {name} receives synapses from {_fmt(remote)} other neurons, "
                            f"so it needs {_fmt(remote + 1)} axon entries; core preset {cfg.name} holds "
                            f"{_fmt(cfg.axons)} per core{_fitting_presets(self.netlist, cfg)}")


def _fitting_presets(netlist, config: CoreConfig, per_core: int | None = None) -> str:
    """``"; presets that fit it: sim"`` (or that none does), trying every other preset."""
    fits = []
    for preset in PRESETS.values():
        if preset.name == config.name:
            continue
        try:
            fill = _Fill(netlist, preset, min(preset.neurons, per_core or preset.neurons), explain=False)
            cores = fill.bounds().size - 1
        except CapacityError:
            continue
        if cores <= preset.max_cores:
            fits.append(f"{preset.name} ({cores} core{'s' if cores != 1 else ''})")
    return f"; presets that fit it: {', '.join(fits)}" if fits else "; no preset fits it"


def _too_many_cores(netlist, config: CoreConfig, needed: int, per_core: int, forced: bool) -> CapacityError:
    """The error for a network that needs more cores than the preset has, naming the cause."""
    cfg = config
    n, m = netlist.n_neurons, netlist.n_synapses
    total = f"the network needs {needed} cores of this shape; preset {cfg.name} has {cfg.max_cores}"
    if forced:
        lead = (f"{_fmt(n)} neurons at most {_fmt(per_core)} per core (--max-neurons-per-core) need "
                f"{needed} cores; core preset {cfg.name} has {cfg.max_cores}")
        return CapacityError("max_neurons_per_core", lead + _fitting_presets(netlist, cfg, per_core))
    # name the resource that overflows most, and within it the biggest contributor
    syn_ratio = m / (cfg.synapse_words * cfg.max_cores)
    neuron_ratio = n / (cfg.neurons * cfg.max_cores)
    if syn_ratio >= neuron_ratio and syn_ratio > 1:
        offsets = np.asarray(netlist.connection_offsets, dtype=np.int64)
        sizes = np.diff(offsets)
        c = int(np.argmax(sizes))
        label = connection_labels(netlist)[c]
        if sizes[c] > cfg.synapse_words * cfg.max_cores:
            lead = (f"connection {label} needs {_fmt(sizes[c])} synapse words; core preset {cfg.name} "
                    f"holds {_fmt(cfg.synapse_words)} per core")
        else:
            lead = (f"the network needs {_fmt(m)} synapse words (the largest, connection {label}, "
                    f"{_fmt(sizes[c])}); core preset {cfg.name} holds {_fmt(cfg.synapse_words)} per core")
    elif len(_profiles(netlist)[1]) > cfg.profiles * cfg.max_cores:
        lead = (f"the network has {_fmt(len(_profiles(netlist)[1]))} distinct neuron parameter sets "
                f"(profiles); core preset {cfg.name} holds {_fmt(cfg.profiles)} per core")
    elif neuron_ratio > 1:
        sizes = [p.size for p in netlist.populations]
        big = netlist.populations[int(np.argmax(sizes))]
        lead = (f"the network has {_fmt(n)} neurons (the largest population, {big.label}, "
                f"{_fmt(big.size)}); core preset {cfg.name} holds {_fmt(cfg.neurons)} per core")
    else:
        lead = (f"the network's neurons, synapses, profiles and axons do not fit together on "
                f"{cfg.max_cores} core{'s' if cfg.max_cores != 1 else ''} of preset {cfg.name}")
    return CapacityError("core", f"{lead} ({total}){_fitting_presets(netlist, cfg)}")


def place(netlist, config: CoreConfig, max_neurons_per_core: int | None = None) -> Placement:
    """Place ``netlist`` on cores of shape ``config``; raise :class:`CapacityError` if it cannot."""
    if max_neurons_per_core is not None and (
        isinstance(max_neurons_per_core, bool) or not isinstance(max_neurons_per_core, int | np.integer)
        or max_neurons_per_core < 1
    ):
        raise ValidationError("max_neurons_per_core",
                              f"must be a positive integer, not {max_neurons_per_core!r}")
    _check_fields(netlist, config)
    per_core = config.neurons
    if max_neurons_per_core is not None:
        per_core = min(config.neurons, int(max_neurons_per_core))
    fill = _Fill(netlist, config, per_core)
    bounds = fill.bounds()
    n_cores = bounds.size - 1
    if n_cores > config.max_cores:
        # blame the forced split only if the preset's own cores would have held the network
        forced = max_neurons_per_core is not None and (
            _Fill(netlist, config, config.neurons).bounds().size - 1 <= config.max_cores)
        raise _too_many_cores(netlist, config, n_cores, per_core, forced)

    n, m = netlist.n_neurons, netlist.n_synapses
    profile, profile_params = fill.profile, fill.profile_params
    if n_cores == 1:
        # one core: every axon is local (axon = source), no routes, nothing to derive
        none = np.zeros(0, np.int64)
        return Placement(
            config=config, bounds=bounds, profile=profile, profile_params=profile_params,
            axon_key=np.asarray(netlist.src), syn_bounds=np.array([0, m], np.int64),
            route_src=none, route_core=none, route_axon=none, n_axons=np.array([n], np.int64),
        )

    core_of = np.repeat(np.arange(n_cores, dtype=np.int64), np.diff(bounds))
    # the pair table costs neurons x cores: take it while that is no more than the synapses
    assign = _assign_axons_dense if n * n_cores <= m else _assign_axons
    axon_key, n_axons, syn_count, route_src, route_core, route_axon, by_core = assign(
        np.asarray(netlist.src), np.asarray(netlist.tgt), bounds, core_of)

    if n_axons.max() > config.axons:  # the greedy fill checked each core's axons: a bug, not bad input
        c = int(np.argmax(n_axons))
        raise AssertionError(f"core {c} has {n_axons[c]} axons, over {config.axons}")
    routes_per_core = np.bincount(core_of[route_src], minlength=n_cores) if route_src.size else \
        np.zeros(n_cores, np.int64)
    if n_cores and routes_per_core.max() > config.route_words:
        c = int(np.argmax(routes_per_core))
        raise CapacityError(
            "core", f"core {c} needs {_fmt(routes_per_core[c])} route entries (one per neuron and other "
            f"core it has synapses on); core preset {config.name} holds "
            f"{_fmt(config.route_words)} per core{_fitting_presets(netlist, config)}")

    # the synapse memories' order: by core, then axon, then synapse order (the packer's
    # stable counting sort keeps that); int32 keys when they fit, as on one core
    if int(n_axons.sum()) <= np.iinfo(np.int32).max:
        axon_key = axon_key.astype(np.int32)
    syn_bounds = np.concatenate([[0], np.cumsum(syn_count)]).astype(np.int64)
    return Placement(
        config=config, bounds=bounds, profile=profile, profile_params=profile_params,
        axon_key=axon_key, syn_bounds=syn_bounds,
        route_src=route_src, route_core=route_core, route_axon=route_axon, n_axons=n_axons,
        by_core=by_core,
    )

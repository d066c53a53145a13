"""Core memory images: compile a netlist into them, encode them to bytes and back.

An :class:`Image` is what every backend runs: per core, the contents of its profile
table, neuron memory, axon table, synapse memory and route table, as packed words of
the layouts in :mod:`neurofab.hdl.layouts`, plus the host-side facts a board cannot
hold (each core's first global neuron id, each synapse word's synapse-order index,
the connection boundaries, the network's seed). :meth:`Image.to_netlist` rebuilds the
netlist from the decoded memories alone, which is how the emulator runs an image.

The byte format is in docs/memory-map.md ("Image file").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from neurofab.errors import ValidationError
from neurofab.hdl.config import CoreConfig, get_preset
from neurofab.hdl.layouts import (
    Memory,
    core_layouts,
    pack_words,
    pack_words_by_key,
    unpack_words,
    word_bytes,
    word_lanes,
    words_from_bytes,
    words_to_bytes,
)
from neurofab.network import Netlist
from neurofab.rng import initial_lfsr

from .budget import core_bits
from .placement import PARAM_NAMES, Placement, place

__all__ = ["MAGIC", "FORMAT_VERSION", "Image", "compile_network", "decode_image", "initial_lfsr",
           "render_report"]

#: first 8 bytes of an image file; the last byte is the format version
MAGIC = b"NFIMAGE\x02"
#: 2: each section's words take ``bytes`` bytes (1 stored them as whole 64-bit lanes)
FORMAT_VERSION = 2
#: the memories an image stores for every core, in file order
IMAGE_MEMORIES = (Memory.PROFILE, Memory.NEURON, Memory.AXON, Memory.SYNAPSE, Memory.ROUTE,
                  Memory.SYNAPSE_ORDER)
_ALIGN = 8


@dataclass(eq=False)
class Image:
    """The memories of every core, and the host-side facts (see the module doc).

    ``memories[c][m]`` is core ``c``'s memory ``m`` (a :class:`Memory`) as packed words,
    ``uint64`` of shape ``(used words, lanes)``; only the used words are stored,
    from address 0 (the rest of a memory is zero). Core ``c`` holds neurons
    ``bounds[c] .. bounds[c + 1] - 1``. ``populations`` lists ``(label, size)``.
    """

    config: CoreConfig
    bounds: np.ndarray
    memories: list[dict]
    connection_offsets: np.ndarray
    seed: int
    populations: tuple[tuple[str, int], ...]

    @property
    def n_cores(self) -> int:
        return len(self.memories)

    @property
    def n_neurons(self) -> int:
        return int(self.bounds[-1])

    @property
    def n_synapses(self) -> int:
        return int(self.connection_offsets[-1]) if len(self.connection_offsets) else 0

    def core_of(self, gids) -> np.ndarray:
        """The core that holds each global neuron id."""
        return np.searchsorted(self.bounds, np.asarray(gids), side="right") - 1

    def fields(self, core: int, memory: Memory) -> dict:
        """Core ``core``'s memory ``memory`` unpacked: field name -> ``int64`` array."""
        layout = core_layouts(self.config).for_memory(memory)
        return unpack_words(layout, self.memories[core][memory])

    # -- bytes ----------------------------------------------------------------------
    def stored_bytes(self, memory: Memory) -> int:
        """Bytes one word of ``memory`` takes in the image file.

        A core memory's word takes ``ceil(size / 8)`` bytes of its layout; the synapse-order
        index, as many bytes as the largest synapse-order number (``n_synapses - 1``)
        needs: 1 up to 256 synapses, 2 up to 65,536, 3 up to 16,777,216, 4 beyond.
        """
        layout = core_layouts(self.config).for_memory(memory)
        if memory is Memory.SYNAPSE_ORDER:
            return max(1, -(-(max(self.n_synapses - 1, 0)).bit_length() // 8))
        return word_bytes(layout)

    def _header(self) -> tuple[dict, list[tuple[np.ndarray, int]]]:
        layouts = core_layouts(self.config)
        sections, blobs, offset = [], [], 0
        stored = {memory: self.stored_bytes(memory) for memory in IMAGE_MEMORIES}
        for c, mems in enumerate(self.memories):
            for memory in IMAGE_MEMORIES:
                words = mems[memory]
                lanes = word_lanes(layouts.for_memory(memory))
                sections.append({"core": c, "memory": memory.name, "offset": offset,
                                 "words": int(words.shape[0]), "lanes": lanes, "bytes": stored[memory]})
                blobs.append((words, stored[memory]))
                offset += int(words.shape[0]) * stored[memory]
        header = {
            "format": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "seed": int(self.seed),
            "bounds": [int(b) for b in self.bounds],
            "connection_offsets": [int(o) for o in self.connection_offsets],
            "populations": [[label, int(size)] for label, size in self.populations],
            "sections": sections,
        }
        return header, blobs

    def to_bytes(self) -> bytes:
        """The image file: magic, header length, JSON header, padding, then every section."""
        header, blobs = self._header()
        text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
        head = MAGIC + len(text).to_bytes(4, "little") + text
        head += b"\0" * (-len(head) % _ALIGN)
        return head + b"".join(words_to_bytes(words, nbytes) for words, nbytes in blobs)

    def sha256(self) -> str:
        """Hex SHA-256 of :meth:`to_bytes`: the image's identity for provenance."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    # -- back to a netlist ------------------------------------------------------------
    def to_netlist(self, populations) -> Netlist:
        """The netlist these memories run, rebuilt from the decoded memories alone.

        ``populations`` are the network's (labels and sizes must match the image's).
        Neurons come back in gid order with their profiles' parameters; synapses come back
        in synapse order (each synapse word's ``SYNAPSE_ORDER`` index) with their source
        from the axon that lists them: a local axon is its own neuron, a remote axon is the
        neuron whose route entry names it.
        """
        populations = tuple(populations)
        got = tuple((p.label, int(p.size)) for p in populations)
        if got != tuple(self.populations):
            raise ValidationError("populations",
                                  f"must be the image's {list(self.populations)}, not {list(got)}")
        n, m = self.n_neurons, self.n_synapses
        params = {k: np.zeros(n, np.int32) for k in PARAM_NAMES}
        src = np.full(m, -1, np.int32)
        tgt = np.zeros(m, np.int32)
        weight = np.zeros(m, np.int32)
        delay = np.zeros(m, np.uint8)
        compartment = np.zeros(m, np.uint8)
        plastic = np.zeros(m, bool)

        # remote axons' sources: every route entry (core, axon) names a neuron of its core;
        # axons numbered core after core, so one array maps them all
        n_axons = np.array([self.memories[c][Memory.AXON].shape[0] for c in range(self.n_cores)], np.int64)
        axon_base = np.concatenate([[0], np.cumsum(n_axons)]).astype(np.int64)
        axon_source = np.full(int(axon_base[-1]), -1, np.int64)
        for c in range(self.n_cores):
            neuron = self.fields(c, Memory.NEURON)
            route = self.fields(c, Memory.ROUTE)
            counts = neuron["route_count"]
            owner = self.bounds[c] + np.repeat(np.arange(counts.size), counts)
            pos = _ranges(neuron["route_base"], counts)
            if pos.size and pos.max() >= route["core"].size:
                raise ValidationError("image", f"core {c} routes reach entry {int(pos.max())} of "
                                      f"{route['core'].size}")
            dest_core, dest_axon = route["core"][pos], route["axon"][pos]
            wrong = dest_core >= self.n_cores
            wrong[~wrong] = dest_axon[~wrong] >= n_axons[dest_core[~wrong]]
            if wrong.any():
                k = int(np.argmax(wrong))
                raise ValidationError("image", f"core {c} has a route to core {int(dest_core[k])} axon "
                                      f"{int(dest_axon[k])}, which does not exist")
            axon_source[axon_base[dest_core] + dest_axon] = owner

        for c in range(self.n_cores):
            first = int(self.bounds[c])
            n_local = int(self.bounds[c + 1]) - first
            profile = self.fields(c, Memory.PROFILE)
            neuron = self.fields(c, Memory.NEURON)
            if neuron["profile"].size != n_local:
                raise ValidationError("image",
                                      f"core {c} has {neuron['profile'].size} neuron words, not {n_local}")
            for k in PARAM_NAMES:
                params[k][first:first + n_local] = profile[k][neuron["profile"]]
            axon = self.fields(c, Memory.AXON)
            axon_src = axon_source[axon_base[c]:axon_base[c + 1]].copy()
            axon_src[:n_local] = first + np.arange(n_local)
            if (axon_src < 0).any():
                raise ValidationError("image", f"core {c} axon {int(np.argmax(axon_src < 0))} is named by no "
                                      "route entry")
            syn = self.fields(c, Memory.SYNAPSE)
            order = self.fields(c, Memory.SYNAPSE_ORDER)["index"]
            word_src = np.full(syn["weight"].size, -1, np.int64)
            word_src[_ranges(axon["syn_base"], axon["syn_count"])] = np.repeat(axon_src, axon["syn_count"])
            if (word_src < 0).any():
                raise ValidationError("image", f"core {c} synapse word {int(np.argmax(word_src < 0))} "
                                      "belongs to no axon")
            if order.size and (order.max() >= m or (src[order] >= 0).any()):
                raise ValidationError("image", f"core {c} synapse order indices repeat or exceed {m}")
            src[order] = word_src
            tgt[order] = first + syn["target"]
            weight[order] = syn["weight"]
            delay[order] = syn["delay"]
            compartment[order] = syn["compartment"]
            plastic[order] = syn["plastic"].astype(bool)
        if (src < 0).any():
            raise ValidationError("image",
                                  f"synapse {int(np.argmax(src < 0))} is in no core's synapse memory")
        return Netlist(
            populations=populations, src=src, tgt=tgt, weight=weight, delay=delay,
            compartment=compartment, plastic=plastic,
            connection_offsets=np.asarray(self.connection_offsets, dtype=np.int64).copy(),
            seed=int(self.seed), **params,
        )

    # -- report -----------------------------------------------------------------------
    def report(self) -> dict:
        """Cores used and, per core, what it holds against its capacity (JSON-ready)."""
        cfg = self.config
        layouts = core_layouts(cfg)
        bounds = np.array([0] + [int(s) for _, s in self.populations]).cumsum()
        labels = [label for label, _ in self.populations]
        memory_bits = core_bits(cfg)  # the same for every core: its shape's memories, runtime ones too
        cores = []
        for c in range(self.n_cores):
            lo, hi = int(self.bounds[c]), int(self.bounds[c + 1])
            pops = {}
            for i, label in enumerate(labels):
                k = min(hi, int(bounds[i + 1])) - max(lo, int(bounds[i]))
                if k > 0:
                    pops[label] = k
            memories = {}
            used_bits = 0
            for memory in IMAGE_MEMORIES[:-1]:  # SYNAPSE_ORDER stays on the host
                width = layouts.for_memory(memory).size
                used, depth = int(self.memories[c][memory].shape[0]), layouts.depth(memory)
                memories[memory.name.lower()] = {"used": used, "capacity": depth, "width_bits": width}
                used_bits += used * width
            cores.append({
                "core": c, "first_gid": lo, "neurons": hi - lo, "populations": pops,
                "synapse_words": memories["synapse"]["used"], "profiles": memories["profile"]["used"],
                "remote_axons": memories["axon"]["used"] - (hi - lo),
                "route_words": memories["route"]["used"], "memories": memories,
                "image_bits": used_bits, "memory_bits": memory_bits,
            })
        return {
            "preset": cfg.name, "device": cfg.device, "cores_used": self.n_cores, "max_cores": cfg.max_cores,
            "neurons": self.n_neurons, "synapses": self.n_synapses,
            "capacity_per_core": {"neurons": cfg.neurons, "profiles": cfg.profiles,
                                  "synapse_words": cfg.synapse_words, "axons": cfg.axons,
                                  "route_words": cfg.route_words, "event_queue": cfg.event_queue,
                                  "acc_bits": cfg.acc_bits, "device_memory_bits": cfg.memory_bits},
            "image_bytes": len(self.to_bytes()), "sha256": self.sha256(), "cores": cores,
        }

    def report_text(self) -> str:
        return render_report(self.report())


def render_report(report: dict) -> str:
    """The text form of :meth:`Image.report`."""
    lines = [
        f"core preset {report['preset']} ({report['device']}): {report['cores_used']} of "
        f"{report['max_cores']:,} cores used; {report['neurons']:,} neurons, "
        f"{report['synapses']:,} synapses; "
        f"image {report['image_bytes']:,} bytes, sha256 {report['sha256'][:16]}",
    ]
    cap = report["capacity_per_core"]
    for core in report["cores"]:
        pops = ", ".join(f"{k} {v:,}" for k, v in core["populations"].items())
        last = core["first_gid"] + core["neurons"] - 1
        lines.append(f"core {core['core']}: gids {core['first_gid']:,}..{last:,} ({pops})")
        mem = core["memories"]
        for name, what in (("neuron", "neurons"), ("synapse", "synapse words"),
                           ("profile", "profile entries"), ("axon", "axon entries"),
                           ("route", "route entries")):
            used, total = mem[name]["used"], mem[name]["capacity"]
            pct = 100.0 * used / total if total else 0.0
            lines.append(f"  {what:16} {used:>12,} / {total:<12,} {pct:5.1f}%")
        budget = cap["device_memory_bits"]
        against = f" of a {budget:,}-bit device budget" if budget else ""
        lines.append(f"  memory bits      {core['image_bits']:>12,} in the image; the core shape needs "
                     f"{core['memory_bits']:,} with its runtime memories (accumulators, event queue, "
                     f"arrival lists, remote axons' traces){against}")
    return "\n".join(lines)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``starts[i] .. starts[i] + counts[i] - 1``."""
    starts = np.asarray(starts, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    first = np.cumsum(counts) - counts
    return np.repeat(starts - first, counts) + np.arange(total)


def _split(words: np.ndarray, bounds: np.ndarray) -> list[np.ndarray]:
    return [words[int(a):int(b)] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def compile_network(netlist: Netlist, config: CoreConfig | str, *,
                    max_neurons_per_core: int | None = None) -> Image:
    """Place ``netlist`` on cores of shape ``config`` and fill their memories.

    ``config`` is a :class:`CoreConfig` or a preset name. ``max_neurons_per_core`` caps
    the neurons per core below the preset's (to force a split). Raises
    :class:`~neurofab.compiler.placement.CapacityError` (a ``ValidationError``) naming
    what does not fit, and ``ValidationError`` for values no word can hold.
    """
    if isinstance(config, str):
        config = get_preset(config)
    placement = place(netlist, config, max_neurons_per_core)
    try:
        memories = _fill_memories(netlist, placement)
    except ValueError as e:  # a value outside its field: the netlist broke its own contract
        raise ValidationError("netlist", str(e)) from e
    return Image(
        config=config, bounds=placement.bounds, memories=memories,
        connection_offsets=np.asarray(netlist.connection_offsets, dtype=np.int64).copy(),
        seed=int(netlist.seed), populations=tuple((p.label, int(p.size)) for p in netlist.populations),
    )


def _fill_memories(netlist: Netlist, pl: Placement) -> list[dict]:
    cfg = pl.config
    layouts = core_layouts(cfg)
    n, n_cores, bounds = netlist.n_neurons, pl.n_cores, pl.bounds
    one = n_cores == 1

    # profile tables: each core's profiles in the order its neurons first use them
    if one:  # the global numbering is already in first-use order
        table_params, local_profile = pl.profile_params, pl.profile
        table_bounds = np.array([0, table_params.shape[0]], np.int64)
    else:
        core_of = np.repeat(np.arange(n_cores, dtype=np.int64), np.diff(bounds))
        n_profiles = max(1, pl.profile_params.shape[0])
        key = core_of * n_profiles + pl.profile
        change = np.r_[True, key[1:] != key[:-1]] if n else np.zeros(0, bool)
        run_first = np.flatnonzero(change)
        uniq, first = np.unique(key[run_first], return_index=True)
        table = uniq[np.argsort(first, kind="stable")]
        table = table[np.argsort(table // n_profiles, kind="stable")]  # by core, first use within a core
        table_core = table // n_profiles
        table_bounds = np.searchsorted(table_core, np.arange(n_cores + 1), side="left")
        sorter = np.argsort(table, kind="stable")
        local_profile = sorter[np.searchsorted(table, key, sorter=sorter)] - table_bounds[core_of]
        table_params = pl.profile_params[table % n_profiles]
    profile_words = pack_words(layouts.profile, {k: table_params[:, i] for i, k in enumerate(PARAM_NAMES)},
                               table_params.shape[0])

    # neuron memories; routes sorted by source gid (so by core), then destination core
    neuron_values = {"v": netlist.resting, "lfsr": initial_lfsr(0, np.arange(n)), "profile": local_profile}
    route_bounds = np.searchsorted(pl.route_src, bounds, side="left")
    if pl.route_src.size:  # else route_base and route_count stay 0
        route_count = np.bincount(pl.route_src, minlength=n)
        core_of = np.repeat(np.arange(n_cores, dtype=np.int64), np.diff(bounds))
        neuron_values["route_base"] = np.cumsum(route_count) - route_count - route_bounds[core_of]
        neuron_values["route_count"] = route_count
    neuron_words = pack_words(layouts.neuron, neuron_values, n)
    route_words = pack_words(layouts.route, {"core": pl.route_core, "axon": pl.route_axon}, pl.route_src.size)

    # synapse memories, all cores at once: sorted by axon key and packed in one pass,
    # which also counts each axon's synapses for the axon tables
    axon_base = pl.axon_base
    columns = {"weight": netlist.weight, "delay": netlist.delay, "compartment": netlist.compartment,
               "plastic": netlist.plastic}
    keys = pl.axon_key
    if one:
        columns["target"] = netlist.tgt
    else:
        # gathered core by core first (sequential reads from one stream per core), the
        # sort's writes stay within one core's words at a time instead of all over memory
        columns = {k: np.asarray(v)[pl.by_core] for k, v in columns.items()}
        keys = keys[pl.by_core]
        # the target's local index: gid minus its core's first gid
        core_of = np.repeat(np.arange(n_cores, dtype=np.int64), np.diff(bounds))
        local = (np.arange(n, dtype=np.int64) - bounds[core_of]).astype(netlist.tgt.dtype)
        columns["target"] = local[np.asarray(netlist.tgt)[pl.by_core]]
    synapse_words, order, syn_count = pack_words_by_key(layouts.synapse, columns, keys, int(axon_base[-1]))
    if not one:
        order = pl.by_core[order]
    syn_base = np.cumsum(syn_count) - syn_count
    if not one:
        syn_base -= pl.syn_bounds[np.repeat(np.arange(n_cores), pl.n_axons)]
    axon_words = pack_words(layouts.axon, {"syn_base": syn_base, "syn_count": syn_count}, syn_count.size)
    order_words = _order_words(layouts.synapse_order, order)

    per_memory = {
        Memory.PROFILE: _split(profile_words, table_bounds),
        Memory.NEURON: _split(neuron_words, bounds),
        Memory.AXON: _split(axon_words, axon_base),
        Memory.SYNAPSE: _split(synapse_words, pl.syn_bounds),
        Memory.ROUTE: _split(route_words, route_bounds),
        Memory.SYNAPSE_ORDER: _split(order_words, pl.syn_bounds),
    }
    return [{m: per_memory[m][c] for m in IMAGE_MEMORIES} for c in range(n_cores)]


def _order_words(layout, order: np.ndarray) -> np.ndarray:
    """The synapse-order memory: one word per synapse word, its synapse-order number.

    The layout is a single unsigned field at bit 0, so a word is the number itself: the
    packer's ``int64`` index, viewed as ``uint64`` words (no copy) once it is known to fit.
    """
    ((name, field),) = tuple(layout)
    if field.offset != 0 or field.shape.signed or word_lanes(layout) != 1:
        return pack_words(layout, {name: order}, order.size)  # a layout this shortcut does not know
    if order.size and order.size - 1 >= 1 << field.width:
        raise ValueError(f"field {name} holds 0 .. {(1 << field.width) - 1} ({field.shape}), "
                         f"not {order.size - 1}")
    return order.view(np.uint64).reshape(-1, 1)


def decode_image(data: bytes) -> Image:
    """The :class:`Image` in ``data`` (from :meth:`Image.to_bytes`); ``ValidationError`` if malformed."""
    data = bytes(data)
    if len(data) < 12 or data[:7] != MAGIC[:7]:
        raise ValidationError("image", "is not a NeuroFab image (bad magic)")
    if data[7] != FORMAT_VERSION:
        raise ValidationError("image", f"has format version {data[7]}; this build reads {FORMAT_VERSION}")
    length = int.from_bytes(data[8:12], "little")
    try:
        header = json.loads(data[12:12 + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValidationError("image", f"header is not valid JSON: {e}") from e
    start = 12 + length
    start += -start % _ALIGN
    view = memoryview(data)  # sections are read in place, not copied out first
    try:
        config = CoreConfig(**header["config"])
        layouts = core_layouts(config)
        bounds = np.array(header["bounds"], dtype=np.int64)
        memories: list[dict] = [{} for _ in range(len(bounds) - 1)]
        end = start
        for s in header["sections"]:
            memory = Memory[s["memory"]]
            layout = layouts.for_memory(memory)
            if s["lanes"] != word_lanes(layout):
                raise ValidationError("image", f"section {s} has {s['lanes']} lanes; the layout has "
                                      f"{word_lanes(layout)}")
            nbytes = s["bytes"]
            if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 1 <= nbytes <= 8 * s["lanes"]:
                raise ValidationError("image", f"section {s} stores words in {nbytes!r} bytes; a word of "
                                      f"{s['lanes']} lanes takes 1 .. {8 * s['lanes']}")
            a = start + s["offset"]
            b = a + s["words"] * nbytes
            if b > len(data):
                raise ValidationError("image", f"section {s} runs past the end ({len(data)} bytes)")
            memories[s["core"]][memory] = words_from_bytes(view[a:b], layout, s["words"], nbytes)
            end = max(end, b)
        if end != len(data):
            raise ValidationError("image", f"has {len(data) - end} bytes after its last section")
        for c, mems in enumerate(memories):
            missing = [m.name for m in IMAGE_MEMORIES if m not in mems]
            if missing:
                raise ValidationError("image", f"core {c} lacks memories {missing}")
        return Image(
            config=config, bounds=bounds, memories=memories,
            connection_offsets=np.array(header["connection_offsets"], dtype=np.int64),
            seed=int(header["seed"]), populations=tuple((str(a), int(b)) for a, b in header["populations"]),
        )
    except (KeyError, TypeError, IndexError) as e:
        raise ValidationError("image", f"header is incomplete or malformed: {e!r}") from e

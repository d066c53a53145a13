"""Netlists built directly with numpy, for the compiler's tests (no document parsing), and their check."""

from __future__ import annotations

import numpy as np

from neurofab.network import Netlist, NeuronParams, Population

__all__ = ["build_netlist", "all_to_all"]


def all_to_all(ns: int, nt: int) -> tuple[np.ndarray, np.ndarray]:
    """Local (source, target) pairs of an all-to-all connection, in synapse order."""
    return np.repeat(np.arange(ns), nt), np.tile(np.arange(nt), ns)


def build_netlist(populations, connections, seed: int = 0) -> Netlist:
    """``populations``: ``(label, size)`` or ``(label, size, NeuronParams)``.

    ``connections``: dicts with ``source``, ``target`` (labels), ``pairs`` (two local
    index arrays, in synapse order) and optional ``weight``, ``delay``, ``compartment``
    (scalars or arrays) and ``plastic`` (the connection's flag).
    """
    pops, offset = [], 0
    params = []
    for entry in populations:
        label, size = entry[0], entry[1]
        p = entry[2] if len(entry) > 2 else NeuronParams()
        pops.append(Population(label=label, size=size, params=p, offset=offset))
        params += [p] * size
        offset += size
    by_label = {p.label: p for p in pops}
    src, tgt, w, d, c, pl, offsets = [], [], [], [], [], [], [0]
    for conn in connections:
        s_local, t_local = (np.asarray(a, dtype=np.int64) for a in conn["pairs"])
        k = s_local.size
        src.append(s_local + by_label[conn["source"]].offset)
        tgt.append(t_local + by_label[conn["target"]].offset)
        weight = np.broadcast_to(np.asarray(conn.get("weight", 200), dtype=np.int64), (k,))
        w.append(weight)
        d.append(np.broadcast_to(np.asarray(conn.get("delay", 0)), (k,)))
        c.append(np.broadcast_to(np.asarray(conn.get("compartment", 0)), (k,)))
        pl.append(np.asarray(conn.get("plastic", True)) & (weight > 0))
        offsets.append(offsets[-1] + k)

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    def neuron(name):
        return np.array([getattr(p, name) for p in params], dtype=np.int32)

    return Netlist(
        populations=tuple(pops),
        threshold=neuron("threshold"), leak=neuron("leak"), resting=neuron("resting"),
        refrac=neuron("refrac"), dend_threshold=neuron("dend_threshold"),
        src=cat(src, np.int32), tgt=cat(tgt, np.int32), weight=cat(w, np.int32),
        delay=cat(d, np.uint8), compartment=cat(c, np.uint8), plastic=cat(pl, bool),
        connection_offsets=np.array(offsets, dtype=np.int64), seed=seed,
    )


def test_build_netlist_keeps_synapse_order_and_plastic_rule():
    net = build_netlist([("a", 2), ("b", 3)], [
        {"source": "a", "target": "b", "pairs": all_to_all(2, 3), "weight": [5, 0, -1, 7, 8, 9]},
        {"source": "b", "target": "a", "pairs": ([2], [1]), "plastic": False},
    ])
    assert net.src.tolist() == [0, 0, 0, 1, 1, 1, 4]
    assert net.tgt.tolist() == [2, 3, 4, 2, 3, 4, 1]
    assert net.plastic.tolist() == [True, False, False, True, True, True, False]
    assert net.connection_offsets.tolist() == [0, 6, 7]

"""The checker for whole-core runs: an RTL ``RunResult`` against the emulator's, field by field.

The driver and the monitor are the RTL backend's cocotb bench (``neurofab.host.rtl``:
host-port writes, ``step`` pulses, the spike monitor in ``RtlTop``); the model is
``neurofab.emulator.simulate``; this module only compares, and says what the core's
queue and cycle counters must read given the emulator's spikes:

- every step's spikes (neuron ids), the final ``v``, ``r``, ``lfsr``, ``x``, ``y`` of
  every neuron and the final weights;
- the events in flight after every step (the config's rule, from the spikes);
- each step's drain length, ``E + 4`` clocks for ``E > 0`` arriving events, else 2;
- each step's length, drain + ``(3 + compartments) * n + 5`` exactly when nothing
  spiked (no fan-out tail can follow the pass), at least that otherwise.

Each mismatch comes back as a line naming the case, so a batch reports all of them.
"""

from __future__ import annotations

import numpy as np
from core_run import events_held_per_step

__all__ = ["arrivals_per_step", "first_overflow_step", "mismatches"]


def arrivals_per_step(netlist, spike_times, spike_gids, timesteps: int) -> np.ndarray:
    """Events arriving at each step: one per synapse of each spike, at ``s + 1 + delay < T``."""
    src = np.asarray(netlist.src, np.int64)
    delay = np.asarray(netlist.delay, np.int64)
    order = np.argsort(src, kind="stable")
    src, delay = src[order], delay[order]
    starts = np.searchsorted(src, spike_gids, side="left")
    ends = np.searchsorted(src, spike_gids, side="right")
    counts = np.zeros(timesteps, np.int64)
    for s, a, b in zip(np.asarray(spike_times).tolist(), starts.tolist(), ends.tolist(), strict=True):
        arrival = s + 1 + delay[a:b]
        np.add.at(counts, arrival[arrival < timesteps], 1)
    return counts


def first_overflow_step(held: np.ndarray, capacity: int) -> int | None:
    """The first step after whose fan-out more than ``capacity`` events are held, if any."""
    over = np.flatnonzero(held > capacity)
    return int(over[0]) if over.shape[0] else None


def _first_step_difference(rtl, emu, timesteps: int) -> str | None:
    if np.array_equal(rtl.spike_times, emu.spike_times) and np.array_equal(rtl.spike_gids, emu.spike_gids):
        return None
    for t in range(timesteps):
        got = rtl.spike_gids[rtl.spike_times == t].tolist()
        want = emu.spike_gids[emu.spike_times == t].tolist()
        if got != want:
            return f"step {t}: rtl spikes {got[:12]} emulator {want[:12]}"
    return "spike lists differ in order"


def mismatches(label: str, netlist, job, rtl, emu, *, compartments: int) -> list[str]:
    """Every way ``rtl`` differs from ``emu`` (and from the counters' contract), as lines."""
    T = job.timesteps
    out = []
    spikes = _first_step_difference(rtl, emu, T)
    if spikes:
        out.append(f"{label}: {spikes}")
    for name in ("v", "r", "lfsr", "x", "y"):
        got = np.asarray(rtl.final_state[name], np.int64)
        want = np.asarray(emu.final_state[name], np.int64)
        if not np.array_equal(got, want):
            bad = np.flatnonzero(got != want)
            out.append(f"{label}: final {name} differs on {bad.shape[0]} neurons, first neuron "
                       f"{int(bad[0])}: rtl {int(got[bad[0]])} emulator {int(want[bad[0]])}")
    if not np.array_equal(rtl.final_weights, emu.final_weights):
        out.append(f"{label}: final weights differ")

    held = events_held_per_step(netlist, emu.spike_times, emu.spike_gids, T)
    if rtl.extra["events_held"] != held.tolist():
        t = int(np.flatnonzero(np.asarray(rtl.extra["events_held"]) != held)[0])
        out.append(f"{label}: step {t}: {rtl.extra['events_held'][t]} events held, "
                   f"the rule gives {int(held[t])}")
    arrivals = arrivals_per_step(netlist, emu.spike_times, emu.spike_gids, T)
    drain = np.asarray(rtl.extra["drain_cycles"])
    want_drain = np.where(arrivals > 0, arrivals + 4, 2)
    if not np.array_equal(drain, want_drain):
        t = int(np.flatnonzero(drain != want_drain)[0])
        out.append(f"{label}: step {t}: drain took {int(drain[t])} clocks for {int(arrivals[t])} events")
    cycles = np.asarray(rtl.extra["cycles"])
    floor = drain + (3 + compartments) * netlist.n_neurons + 5
    quiet = np.bincount(emu.spike_times, minlength=T) == 0
    if np.any(cycles < floor) or not np.array_equal(cycles[quiet], floor[quiet]):
        t = int(np.flatnonzero((cycles < floor) | (quiet & (cycles != floor)))[0])
        out.append(f"{label}: step {t}: {int(cycles[t])} clocks, the budget gives {int(floor[t])}"
                   f"{' exactly' if quiet[t] else ' at least'}")
    summary = rtl.extra["cycles_per_step"]
    if summary != {"mean": float(cycles.mean()), "max": int(cycles.max())}:
        out.append(f"{label}: cycles_per_step {summary} is not the cycles' mean and max")
    return out

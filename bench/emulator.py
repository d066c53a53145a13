"""Our emulator against Brian2: synaptic events per second on one E/I network at several sizes.

Usage (``make bench-emulator`` runs the first line)::

    .venv/bin/python bench/emulator.py --brian2-python .venv-brian2/bin/python
    .venv/bin/python bench/emulator.py --sizes 4000 --skip-brian2      # quick, ours only

For each size N the script writes the network and job as API documents (see
:func:`network_document` and :func:`job_document`) and runs, each in a process of its
own:

- ``bench/emulator_peer.py`` (this environment): ``parse_network`` + ``expand`` +
  ``parse_job`` (the build, timed apart), a warm-up on a tiny network (JIT
  compilation, not timed), then ``neurofab.emulator.simulate``; it exports the exact
  expanded synapses to an ``.npz``;
- ``bench/brian2_peer.py`` (Brian2's environment) on that ``.npz``, with the
  ``numpy`` and with the ``cython`` runtime target; code generation and
  compilation are part of its build time, not of its simulation time.

Synaptic events per second = (sum over spikes of the spiking neuron's out-degree) /
(wall time of the simulation). The engines take turns ``--rounds`` times, each time in
a fresh process that runs ``--repeats`` times from the same initial state; an engine's
fastest run counts (the machine is shared, so this keeps a burst of load elsewhere from
deciding the ratio). The script prints a table, then the ratio of our events/s to the
fastest Brian2 engine's at each size, and as its last line one JSON object::

    {"sizes": [...], "ours_events_per_s": [...], "brian2_best_events_per_s": [...],
     "ratio": [...], "peak_rss_mb": ...}

``peak_rss_mb`` is the largest peak resident memory of our emulator's process over
the sizes (the build included). Entries are ``null`` where an engine did not run.

The network (the same at every size; rates do not depend on N because the fan-out is
fixed):

- populations ``exc`` (0.8 N) and ``inh`` (0.2 N), threshold 1000, leak 3,
  resting 0, refrac 3;
- ``fixed_fan_out`` connections, non-plastic: every neuron reaches 64 ``exc`` and
  16 ``inh`` neurons (80 synapses per neuron, so in-degree averages 80 too), with
  weight +40 from ``exc`` and -160 from ``inh`` (inhibition balances excitation at
  equal rates: 64 * 40 = 16 * 160); each source-target population pair is split
  into eight connections with delays 0, 3, 6, 9, 11, 14, 17, 20 (fan-out 8 or 2
  each), so the delays cover 0..20 evenly;
- constant drive: neuron i of each population gets current 8 + (i mod 13), i.e.
  8..20 (net of the leak 5..17 per step, about 5..17 spikes per 1,000 steps without
  recurrence); the spread keeps the neurons from firing in lockstep. The network
  settles at about 11 spikes per neuron per 1,000 steps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = [
    "EXC_FRACTION",
    "DELAYS",
    "FAN_OUT",
    "WEIGHTS",
    "NEURON_PARAMS",
    "DRIVE_LEVELS",
    "network_document",
    "job_document",
    "run_peer",
    "main",
]

HERE = Path(__file__).resolve().parent

EXC_FRACTION = 0.8
#: one connection per delay for each population pair; spread evenly over 0..20
DELAYS = (0, 3, 6, 9, 11, 14, 17, 20)
#: synapses per source neuron into each target population (80 in all)
FAN_OUT = {"exc": 64, "inh": 16}
#: weight by source population
WEIGHTS = {"exc": 40, "inh": -160}
NEURON_PARAMS = {"threshold": 1000, "leak": 3, "resting": 0, "refrac": 3}
#: the constant stimulus currents; neuron i gets DRIVE_LEVELS[i % len(DRIVE_LEVELS)]
DRIVE_LEVELS = tuple(range(8, 21))
#: the smallest N whose populations can hold every connection's fan-out
MIN_SIZE = 100
WARMUP_SIZE = MIN_SIZE
WARMUP_STEPS = 50
RATE_WINDOW = (5.0, 20.0)  # spikes per neuron per 1,000 steps
TARGET_RATIO = 2.0
TARGET_RSS_MB = 1024.0


def _population_sizes(n: int) -> dict[str, int]:
    n_exc = round(n * EXC_FRACTION)
    return {"exc": n_exc, "inh": n - n_exc}


def network_document(n: int, seed: int = 1) -> dict:
    """The benchmark network with ``n`` neurons as a ``POST /v1/networks`` body."""
    sizes = _population_sizes(n)
    populations = [{"label": label, "size": size, "params": dict(NEURON_PARAMS)}
                   for label, size in sizes.items()]
    connections = []
    for source in sizes:
        for target in sizes:
            per_delay = FAN_OUT[target] // len(DELAYS)
            for delay in DELAYS:
                connections.append({
                    "source": source,
                    "target": target,
                    "topology": "fixed_fan_out",
                    "n": per_delay,
                    "weight": WEIGHTS[source],
                    "delay": delay,
                    "plastic": False,
                })
    return {"populations": populations, "connections": connections, "seed": seed}


def job_document(n: int, steps: int) -> dict:
    """The benchmark job: constant drive from step 0 to the end, one stimulus per drive level."""
    stimuli = []
    for label, size in _population_sizes(n).items():
        for k, current in enumerate(DRIVE_LEVELS):
            neurons = list(range(k, size, len(DRIVE_LEVELS)))
            if neurons:
                stimuli.append({"population": label, "neurons": neurons, "current": current})
    return {"timesteps": steps, "stimuli": stimuli, "seed": 0}


def run_peer(command: list[str], label: str) -> dict:
    """Run one peer process; its last stdout line is its JSON figures, or ``{"error": ...}``."""
    print(f"  running {label} ...", file=sys.stderr, flush=True)
    proc = subprocess.run(command, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        message = f"{label} failed (exit {proc.returncode})"
        print(f"  {message}:\n    " + "\n    ".join(tail), file=sys.stderr, flush=True)
        return {"error": message}
    return json.loads(lines[-1])


def _events_per_s(figures: dict) -> float | None:
    if "error" in figures or figures["run_seconds"] <= 0:
        return None
    return figures["synaptic_events"] / figures["run_seconds"]


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _table(rows: list[dict]) -> list[str]:
    header = (f"{'N':>7} {'engine':<14} {'steps':>6} {'build s':>8} {'sim s':>8} {'spikes':>9} "
              f"{'rate/1k':>7} {'events':>11} {'events/s':>9} {'RSS MB':>7}  same spikes as ours")
    lines = [header, "-" * len(header)]
    for row in rows:
        f = row["figures"]
        if "error" in f:
            lines.append(f"{row['n']:>7} {row['engine']:<14} {f['error']}")
            continue
        rate = 1000.0 * f["total_spikes"] / (row["n"] * f["steps"])
        steps = f"{f['steps']}{'*' if row.get('capped') else ''}"
        lines.append(
            f"{row['n']:>7} {row['engine']:<14} {steps:>6} {f['build_seconds']:>8.2f} "
            f"{f['run_seconds']:>8.3f} {f['total_spikes']:>9} {rate:>7.2f} {f['synaptic_events']:>11} "
            f"{_fmt(_events_per_s(f), '9.3g')} {f['peak_rss_mb']:>7.0f}  {row.get('same', '-')}"
        )
    return lines


def _merge(previous: dict | None, figures: dict) -> dict:
    """Fold one more process's figures into an engine's: fastest run, largest peak memory.

    Every process of an engine must give the same spikes; an error in any is kept.
    """
    if previous is None or "error" in previous:
        return figures if previous is None else previous
    if "error" in figures:
        return figures
    if figures["spike_counts_sha"] != previous["spike_counts_sha"]:
        return {"error": "different spike counts from one process to the next"}
    merged = dict(previous)
    merged["peak_rss_mb"] = max(previous["peak_rss_mb"], figures["peak_rss_mb"])
    merged["build_seconds"] = min(previous["build_seconds"], figures["build_seconds"])
    if figures["run_seconds"] < previous["run_seconds"]:
        merged["run_seconds"] = figures["run_seconds"]
        if "compute_seconds" in figures:
            merged["compute_seconds"] = figures["compute_seconds"]
    return merged


def _run_size(n: int, args, numpy_steps: int):
    """Run every engine on the network of size ``n``: ``(ours, {target: figures}, table rows)``.

    The engines take turns, ``args.rounds`` times (a fresh process each time), so that a
    burst of load from elsewhere on the machine does not fall on one engine only.
    """
    targets = () if args.skip_brian2 else ("numpy", "cython")
    results: dict[str, dict | None] = {"ours": None, **{target: None for target in targets}}
    with tempfile.TemporaryDirectory(prefix="neurofab-bench-") as tmp:
        directory = Path(tmp)
        documents = {
            "network.json": network_document(n, args.seed),
            "job.json": job_document(n, args.steps),
            "warmup_network.json": network_document(WARMUP_SIZE, args.seed),
            "warmup_job.json": job_document(WARMUP_SIZE, WARMUP_STEPS),
        }
        for name, doc in documents.items():
            (directory / name).write_text(json.dumps(doc), encoding="utf-8")
        netlist = directory / "netlist.npz"
        for round_ in range(1, args.rounds + 1):
            print(f"N = {n}, round {round_} of {args.rounds}", file=sys.stderr, flush=True)
            figures = run_peer([sys.executable, str(HERE / "emulator_peer.py"), tmp,
                                "--repeats", str(args.repeats)], "ours")
            results["ours"] = _merge(results["ours"], figures)
            if not netlist.exists():
                break
            for target in targets:
                steps = numpy_steps if target == "numpy" else args.steps
                command = [args.brian2_python, str(HERE / "brian2_peer.py"), str(netlist), "--target", target,
                           "--steps", str(steps), "--repeats", str(args.repeats)]
                figures = run_peer(command, f"brian2 {target}")
                results[target] = _merge(results[target], figures)

    ours = results.pop("ours")
    peers = {target: figures for target, figures in results.items() if figures is not None}
    rows = [{"n": n, "engine": "ours", "figures": ours}]
    for target, figures in peers.items():
        steps = numpy_steps if target == "numpy" else args.steps
        row = {"n": n, "engine": f"brian2-{target}", "figures": figures, "capped": steps < args.steps}
        if "error" not in figures and "error" not in ours and steps == args.steps:
            difference = figures["total_spikes"] - ours["total_spikes"]
            same = figures["spike_counts_sha"] == ours["spike_counts_sha"]
            row["same"] = "yes (every neuron)" if same else f"no ({difference:+d} spikes)"
        rows.append(row)
    return ours, peers, rows


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return value


def _sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    for n in sizes:
        if n < MIN_SIZE:
            raise argparse.ArgumentTypeError(f"every size must be at least {MIN_SIZE}, not {n}")
    if not sizes:
        raise argparse.ArgumentTypeError(f"need at least one size, not {text!r}")
    return sizes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, default=[4000, 16000, 64000],
                        help="comma-separated network sizes N (default 4000,16000,64000)")
    parser.add_argument("--steps", type=_positive_int, default=1000)
    parser.add_argument("--numpy-steps", type=_positive_int, default=None,
                        help="cap the Brian2 numpy run at this many steps (events/s stays a rate; "
                             "marked * in the table); default: --steps")
    parser.add_argument("--rounds", type=_positive_int, default=3,
                        help="times each engine's process is started, the engines taking turns")
    parser.add_argument("--repeats", type=_positive_int, default=3,
                        help="runs per process from the same initial state; the fastest run overall counts")
    parser.add_argument("--seed", type=int, default=1, help="the network seed (topology draw)")
    parser.add_argument("--brian2-python", default=".venv-brian2/bin/python")
    parser.add_argument("--skip-brian2", action="store_true", help="ours only (for quick development)")
    args = parser.parse_args(argv)

    brian2_python = Path(args.brian2_python)
    if not args.skip_brian2 and not brian2_python.exists():
        parser.error(f"--brian2-python {brian2_python} does not exist (make .venv-brian2/.installed)")
    numpy_steps = min(args.steps, args.numpy_steps or args.steps)

    rows: list[dict] = []
    summary = {"sizes": [], "ours_events_per_s": [], "brian2_best_events_per_s": [], "ratio": []}
    ratio_lines = []
    peak_rss = None
    for n in args.sizes:
        ours, peers, size_rows = _run_size(n, args, numpy_steps)
        rows.extend(size_rows)
        if "error" not in ours:
            peak_rss = max(peak_rss or 0.0, ours["peak_rss_mb"])
        ours_rate = _events_per_s(ours)
        best_engine, best_rate = None, None
        for target, figures in peers.items():
            rate = _events_per_s(figures)
            if rate is not None and (best_rate is None or rate > best_rate):
                best_engine, best_rate = target, rate
        ratio = ours_rate / best_rate if ours_rate is not None and best_rate is not None else None
        summary["sizes"].append(n)
        summary["ours_events_per_s"].append(ours_rate)
        summary["brian2_best_events_per_s"].append(best_rate)
        summary["ratio"].append(ratio)
        ratio_lines.append(f"N = {n:>6}: ours {_fmt(ours_rate, '.3g')} events/s, Brian2 best "
                           f"({best_engine or '-'}) {_fmt(best_rate, '.3g')} events/s, "
                           f"ratio {_fmt(ratio, '.2f')}")

    summary["peak_rss_mb"] = peak_rss
    print(f"network: exc {EXC_FRACTION:g} N / inh {1 - EXC_FRACTION:g} N, threshold "
          f"{NEURON_PARAMS['threshold']}, leak {NEURON_PARAMS['leak']}, refrac {NEURON_PARAMS['refrac']}; "
          f"fixed_fan_out {sum(FAN_OUT.values())} synapses per neuron, weights exc {WEIGHTS['exc']:+d} / inh "
          f"{WEIGHTS['inh']:+d}, delays {', '.join(map(str, DELAYS))}; "
          f"drive {DRIVE_LEVELS[0]}..{DRIVE_LEVELS[-1]}; "
          f"{args.steps} steps, fastest of {args.rounds} x {args.repeats} runs per engine")
    for line in _table(rows):
        print(line)
    if any(row.get("capped") for row in rows):
        print(f"* Brian2 numpy ran {numpy_steps} of {args.steps} steps (--numpy-steps); "
              "its events/s is measured over those steps")
    print("build s: document parsing and expansion (ours) or object creation and code generation/compilation "
          "(Brian2), not part of sim s")
    print()
    for line in ratio_lines:
        print(line)
    rates = [row for row in rows if row["engine"] == "ours" and "error" not in row["figures"]]
    for row in rates:
        rate = 1000.0 * row["figures"]["total_spikes"] / (row["n"] * row["figures"]["steps"])
        if not RATE_WINDOW[0] <= rate <= RATE_WINDOW[1]:
            print(f"WARNING: N = {row['n']}: our rate {rate:.2f} spikes per neuron per 1,000 steps "
                  f"is outside {RATE_WINDOW[0]:g}..{RATE_WINDOW[1]:g}")
    ratios = summary["ratio"]
    if ratios and all(r is not None for r in ratios):
        met = all(r >= TARGET_RATIO for r in ratios)
        print(f"target ratio >= {TARGET_RATIO:g} at every size: {'met' if met else 'NOT met'} "
              f"(lowest {min(ratios):.2f})")
    if peak_rss is not None:
        print(f"peak RSS of our emulator's process (largest N): {peak_rss:.0f} MB "
              f"(target < {TARGET_RSS_MB:g} MB: {'met' if peak_rss < TARGET_RSS_MB else 'NOT met'})")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

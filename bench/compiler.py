"""Compile time and image size, against emulating the same network for 1,000 steps.

Usage::

    .venv/bin/python bench/compiler.py                 # 4K, 16K, 64K neurons and the dense 1K x 1K
    .venv/bin/python bench/compiler.py --sizes 4096 --steps 200 --no-dense

Networks: the emulator benchmark's E/I network (``bench/emulator.py``: 80 synapses per
neuron, delays 0..20) at each size, and one dense network, a single population of 1,024
neurons connected all-to-all (1,048,576 synapses, weight 1, driven like the benchmark).
For each, measured in the same run, in this process, the fastest of ``--repeats`` runs.
Numba's first-call JIT compilation is not timed: a small network is simulated, compiled
(on one core and on several), encoded and decoded first, so every compiled kernel the
timed runs use is already loaded (``cache=True`` keeps them on disk between runs).

- ``compile``: ``compile_network(netlist, --core)``: the expanded netlist in, an
  :class:`Image` out with every core memory packed (profile, neuron, axon, synapse and
  route words, and the host's synapse-order words): what a board would be loaded with.
  Parsing and expanding the network document (topology draws) are not compilation;
- ``encode``: ``Image.to_bytes()``, the image file (header and sections), and
  ``image``: that file's size;
- ``emulate``: ``simulate(netlist, job)`` for ``--steps`` steps;
- ``from image``: ``simulate`` on ``decode_image(bytes).to_netlist(...)``, the way
  ``neurofab simulate`` runs an image; ``load`` is that decode and rebuild before it.

Split rows (``E/I 16,384 /1,024``): the same E/I networks (``--split-sizes``) compiled
with ``max_neurons_per_core`` of each ``--splits`` value, so placement across many cores
(remote axons, routes) is timed as well; their emulation is the same network's.

Targets: compile <= 1/4 of emulate (at most 1/2 for splits under 1,024 neurons a core),
and emulating from the image no slower than from the
netlist (``from image`` against ``emulate``; ``load`` is printed beside it). The script
prints a table, whether each target is met, and as its
last line one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

from neurofab.compiler import compile_network, decode_image
from neurofab.emulator import simulate
from neurofab.job import bind_job, parse_job
from neurofab.network import expand, parse_network

__all__ = ["COLUMNS", "dense_documents", "measure", "main"]

HERE = Path(__file__).resolve().parent
COMPILE_SHARE = 0.25
#: "well under emulation time" for splits finer than 1,024 neurons a core
FINE_SPLIT_SHARE = 0.5


def _emulator_bench():
    spec = importlib.util.spec_from_file_location("bench_emulator", HERE / "emulator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dense_documents(n: int, steps: int) -> tuple[dict, dict]:
    """One population of ``n`` neurons, all-to-all with weight 1, and a constant drive."""
    network = {
        "populations": [{"label": "dense", "size": n, "params": {"threshold": 1000, "leak": 3, "refrac": 3}}],
        "connections": [{"source": "dense", "target": "dense", "topology": "all_to_all", "weight": 1,
                         "plastic": False}],
        "seed": 1,
    }
    stimuli = [{"population": "dense", "neurons": list(range(k, n, 13)), "current": 8 + k} for k in range(13)]
    return network, {"timesteps": steps, "stimuli": stimuli, "seed": 0}


def _build(network_doc: dict, job_doc: dict):
    network = parse_network(network_doc)
    job = parse_job(job_doc)
    bind_job(job, network.populations)
    return expand(network), job


def _best(fn, repeats: int):
    """``(fastest wall time, last result)`` of ``repeats`` calls."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def measure(label: str, network_doc: dict, job_doc: dict, core: str, repeats: int = 5,
            split: int | None = None) -> dict:
    """One row: ``split`` is ``max_neurons_per_core`` (None: as few cores as the preset allows)."""
    netlist, job = _build(network_doc, job_doc)
    compile_s, image = _best(lambda: compile_network(netlist, core, max_neurons_per_core=split), repeats)
    encode_s, data = _best(image.to_bytes, repeats)
    load_s, rebuilt = _best(lambda: decode_image(data).to_netlist(netlist.populations), repeats)
    # interleave the two runs so that load on the machine hits both alike, and alternate
    # which goes first, so that neither always runs right after the other
    direct_s = image_s = float("inf")
    for r in range(repeats):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            if which == 0:
                t, direct = _best(lambda: simulate(netlist, job), 1)
                direct_s = min(direct_s, t)
            else:
                t, from_image = _best(lambda: simulate(rebuilt, job), 1)
                image_s = min(image_s, t)

    same = (np.array_equal(direct.spike_times, from_image.spike_times)
            and np.array_equal(direct.spike_gids, from_image.spike_gids)
            and np.array_equal(direct.final_weights, from_image.final_weights))
    return {
        "network": label, "neurons": netlist.n_neurons, "synapses": netlist.n_synapses,
        "max_neurons_per_core": split, "cores": image.n_cores, "compile_s": compile_s,
        "encode_s": encode_s, "image_bytes": len(data),
        "emulate_netlist_s": direct_s, "emulate_image_s": image_s, "load_s": load_s,
        "spikes": direct.total_spikes, "identical": bool(same),
        "compile_share": compile_s / direct_s if direct_s else None,
        "load_emulate_share": (load_s + image_s) / direct_s if direct_s else None,
    }


#: what each column of the table measures, printed under it
COLUMNS = (
    "  compile s     compile_network(netlist, core): placement and every core memory packed into an Image",
    "  encode s      Image.to_bytes(): the image file",
    "  image MB      the image file's size (10^6 bytes)",
    "  emulate s     simulate(netlist, job) for the job's steps",
    "  from image s  simulate(decode_image(file).to_netlist(populations), job): the image's own netlist",
    "  load s        decode_image(file).to_netlist(populations), before that run",
    "  compile/emu   compile s / emulate s (target <= 0.25; split rows at 256 per core: well under 1)",
    "  load+img/emu  (load s + from image s) / emulate s: running an image file, all in, against the netlist",
    "  cores         cores used; a split row (/K) forces at most K neurons per core (max_neurons_per_core)",
    "  same          spikes and final weights identical from the netlist and from the image",
)


def _table(rows: list[dict]) -> list[str]:
    head = (f"{'network':>20} {'neurons':>8} {'synapses':>10} {'cores':>5} {'compile s':>10} {'encode s':>9} "
            f"{'image MB':>9} {'emulate s':>10} {'from image s':>13} {'load s':>7} {'compile/emu':>12} "
            f"{'load+img/emu':>13} {'same':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['network']:>20} {r['neurons']:>8,} {r['synapses']:>10,} {r['cores']:>5,} "
            f"{r['compile_s']:>10.4f} "
            f"{r['encode_s']:>9.4f} {r['image_bytes'] / 1e6:>9.2f} {r['emulate_netlist_s']:>10.3f} "
            f"{r['emulate_image_s']:>13.3f} {r['load_s']:>7.3f} {r['compile_share']:>12.3f} "
            f"{r['load_emulate_share']:>13.3f} "
            f"{'yes' if r['identical'] else 'NO':>5}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4096,16384,65536", help="E/I network sizes (comma-separated)")
    parser.add_argument("--steps", type=int, default=1000, help="emulated steps (default 1000)")
    parser.add_argument("--core", default="sim", help="core preset to compile for (default sim)")
    parser.add_argument("--split-sizes", default="16384,65536",
                        help="E/I network sizes also compiled with a forced split "
                        "(comma-separated; empty: none)")
    parser.add_argument("--splits", default="4000,1024,256",
                        help="max_neurons_per_core for the split rows (comma-separated)")
    parser.add_argument("--no-dense", action="store_true", help="skip the dense 1,024 x 1,024 network")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of each measurement (compile, encode, load and both emulations alike); "
                        "the fastest counts (default 5)")
    args = parser.parse_args(argv)
    bench = _emulator_bench()

    # JIT warm-up, not timed: every compiled kernel the timed runs use is called once here
    warm = bench.WARMUP_SIZE
    warm_net, warm_job = _build(bench.network_document(warm), bench.job_document(warm, 20))
    simulate(warm_net, warm_job)
    for split in (None, 10):  # the compiler's compiled kernels too, on one core and on several
        decode_image(compile_network(warm_net, args.core, max_neurons_per_core=split).to_bytes())

    rows = []
    for n in [int(s) for s in args.sizes.split(",") if s]:
        docs = bench.network_document(n), bench.job_document(n, args.steps)
        rows.append(measure(f"E/I {n:,}", *docs, args.core, args.repeats))
        print(_table(rows[-1:])[-1], file=sys.stderr)
    for n in [int(s) for s in args.split_sizes.split(",") if s]:
        docs = bench.network_document(n), bench.job_document(n, args.steps)
        for split in [int(s) for s in args.splits.split(",") if s]:
            rows.append(measure(f"E/I {n:,} /{split:,}", *docs, args.core, args.repeats, split))
            print(_table(rows[-1:])[-1], file=sys.stderr)
    if not args.no_dense:
        rows.append(measure("dense 1K x 1K", *dense_documents(1024, args.steps), args.core, args.repeats))

    print(f"compile and emulation ({args.steps:,} steps, core preset {args.core}; fastest of "
          f"{args.repeats} runs each; JIT compilation warmed up on a {warm:,}-neuron network, not timed):")
    for line in _table(rows):
        print(line)
    for line in COLUMNS:
        print(line)
    # The issue's targets are set on its networks as placed by default (one core of the
    # preset each); forced splits are measured and judged by a looser rule of our own.
    issue_rows = [r for r in rows if r["max_neurons_per_core"] is None]
    split_rows = [r for r in rows if r["max_neurons_per_core"] is not None]

    def share_target(r):
        fine = r["max_neurons_per_core"] is not None and r["max_neurons_per_core"] < 1024
        return FINE_SPLIT_SHARE if fine else COMPILE_SHARE

    compile_ok = all(r["compile_s"] <= COMPILE_SHARE * r["emulate_netlist_s"] for r in issue_rows)
    image_ok = all(r["emulate_image_s"] <= r["emulate_netlist_s"] * 1.05 for r in issue_rows)
    split_ok = all(r["compile_s"] <= share_target(r) * r["emulate_netlist_s"] for r in split_rows)
    print(f"issue targets (benchmark networks and dense, default placement): compile <= {COMPILE_SHARE} x "
          f"emulate: {'met' if compile_ok else 'NOT met'}; emulate from image no slower than from netlist "
          f"(5% noise): {'met' if image_ok else 'NOT met'}")
    if split_rows:
        print(f"forced splits (our own rule: compile <= {COMPILE_SHARE} x emulate at >= 1,024 neurons "
              f"a core, {FINE_SPLIT_SHARE} x below): {'met' if split_ok else 'NOT met'}")
    print(f"identical results on every row: {'yes' if all(r['identical'] for r in rows) else 'NO'}")
    print(json.dumps({"steps": args.steps, "core": args.core, "rows": rows,
                      "compile_target_met": compile_ok, "image_target_met": image_ok,
                      "split_target_met": split_ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

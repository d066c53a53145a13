"""The ``neurofab`` command line: a thin shell over the layers (no logic of its own)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .compiler.cli import add_core_options
from .compiler.cli import register as register_compile_commands
from .errors import ValidationError
from .hdl.config import PRESETS
from .server.cli import register as register_server_commands

__all__ = ["main", "build_parser"]

#: the preset ``neurofab simulate`` compiles for, by backend, when ``--core`` is not given
_DEFAULT_CORE = {"emulator": "sim", "rtl": "icebreaker"}


def _load_json(path: str, what: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise ValidationError("", f"cannot read {what} file {path!r}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise ValidationError("", f"{what} file {path!r} is not valid JSON: {e}") from e


def _write_json(path: str, doc) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
    except OSError as e:
        raise ValidationError("", f"cannot write {path!r}: {e.strerror}") from e


def _check_writable(*paths: str | None) -> None:
    """Refuse an output path whose folder does not exist before a long run, not after it."""
    import os

    for path in paths:
        if path is None:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ValidationError("", f"cannot write {path!r}: folder {folder!r} does not exist")
        if os.path.isdir(path):
            raise ValidationError("", f"cannot write {path!r}: it is a folder")


class _ProgressBar:
    """A progress bar on stderr that appears only once a run has taken a second."""

    def __init__(self, stream=sys.stderr, delay=1.0):
        self.stream, self.delay = stream, delay
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed < self.delay or total <= 0:
            return
        self.shown = True
        width = 40
        filled = int(width * done / total)
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} steps"
            f"  {elapsed:5.1f}s  eta {eta:5.1f}s"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def cmd_simulate(args) -> int:
    from .job import bind_job, parse_job
    from .network import expand, parse_network
    from .results import final_weights, result_document, spike_trains

    _check_writable(args.output, args.spikes, args.weights, args.raster)
    network = parse_network(_load_json(args.network, "network"))
    job = parse_job(_load_json(args.job, "job"))
    bind_job(job, network.populations)
    netlist = expand(network)

    from .compiler import compile_network, decode_image
    from .emulator import QueueCapacity, simulate

    core = args.core or _DEFAULT_CORE[args.backend]
    # The emulator runs what the hardware would run: the network compiled for the
    # chosen core preset, encoded to an image, decoded and rebuilt from its memories.
    image = decode_image(
        compile_network(netlist, core, max_neurons_per_core=args.max_neurons_per_core).to_bytes()
    )
    netlist = image.to_netlist(network.populations)

    bar = _ProgressBar()
    try:
        if args.backend == "rtl":
            from .host.rtl import rtl_run

            result = rtl_run(image, job, populations=network.populations, progress=bar)
        else:
            # On a hardware preset the emulator also predicts the core's event-queue
            # overflow, so a job that would not run on the board fails here the same way.
            result = simulate(netlist, job, progress=bar, capacity=QueueCapacity.for_image(image))
    finally:
        bar.close()

    doc = result_document(result, network.populations)
    if args.backend == "rtl":
        cycles = result.extra["cycles_per_step"]
        doc["rtl"] = {"core": core, "cycles_per_step": cycles, "cycles": result.extra["cycles"]}
        print(f"neurofab: rtl: {core} core, {cycles['mean']:.1f} cycles per step on average, "
              f"{cycles['max']} at most", file=sys.stderr)
    if args.output:
        _write_json(args.output, doc)
    else:
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
    if args.spikes:
        _write_json(args.spikes, spike_trains(result, network.populations))
    if args.weights:
        _write_json(args.weights, final_weights(result, netlist.connection_offsets))
    if args.raster:
        from .raster import write_raster

        try:
            write_raster(args.raster, result, network.populations)
        except OSError as e:
            raise ValidationError("", f"cannot write {args.raster!r}: {e.strerror}") from e
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurofab", description="NeuroFab neuromorphic platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="run a network and a job (API JSON documents) on the emulator")
    p.add_argument("network", help="a POST /v1/networks body (JSON file)")
    p.add_argument("job", help="a POST /v1/jobs body (JSON file; network_id may be absent)")
    p.add_argument("-o", "--output", help="write the completed job (status, result, compute_seconds) here")
    p.add_argument("--spikes", help="write the spike trains (the body of GET /v1/jobs/{id}/spikes) here")
    p.add_argument("--weights", help="write the final weights, one list per connection, here")
    p.add_argument("--raster", help="write a raster plot with a population-rate panel (PNG) here")
    p.add_argument("--backend", choices=tuple(_DEFAULT_CORE), default="emulator",
                   help="emulator (default), or rtl: the core's Verilog under Verilator (single-core "
                        "presets, no learning yet); RESULT then holds an 'rtl' object with the core and "
                        "the clock cycles of every step (cycles, cycles_per_step mean and max)")
    add_core_options(p, "sim")
    # the default preset follows the backend
    p.set_defaults(func=cmd_simulate, core=None)
    for action in p._actions:
        if action.dest == "core":
            action.help = (f"core preset: {', '.join(PRESETS)} (default "
                           f"{' / '.join(f'{c} with {b}' for b, c in _DEFAULT_CORE.items())})")

    register_compile_commands(sub)
    register_server_commands(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except ValidationError as e:
        print(f"neurofab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurofab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

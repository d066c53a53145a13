"""Where jobs run: a small registry of backends and the rule that picks one per job.

A backend is a name, a ``run(netlist, job, progress) -> RunResult`` function with the
emulator's contract, a ``fits(network, job)`` check (``None`` when the job fits, else
the reason it does not), the figures it reports in a job's ``provenance``, and
optionally a ``prepare(netlist)`` hook that a worker calls on a network just created,
ahead of its first job (the emulator checks the netlist and builds its synapse layout).

The dispatcher (:func:`choose_backend`) runs at submission: among the backends the
operator enabled (``BACKENDS`` config, ``emulator`` by default), highest ``priority``
first, the first that says the job fits gets it; the emulator fits everything, so it
is the fallback. The chosen name is stored with the job and only workers serving that
backend claim it, which is how one worker can own a board's serial port while the rest
run the emulator. A board or RTL backend plugs in with one call, from any module that
the worker imports (``--backend-module`` on ``neurofab worker``)::

    register_backend(Backend(name="board", run=run_on_board, fits=board_fits,
                             priority=10, core_preset=lambda: "ice40-1k"))
"""

from __future__ import annotations

import importlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "Backend",
    "register_backend",
    "get_backend",
    "registered_backends",
    "choose_backend",
    "load_backend_modules",
]


def _fits_everything(network, job) -> str | None:
    return None


def _no_preset() -> str | None:
    return None


@dataclass(frozen=True)
class Backend:
    name: str
    #: ``run(netlist, job, progress) -> RunResult``; ``progress(done, total)`` may raise to stop.
    #: A backend may keep work per netlist object (the emulator keeps its setup): the
    #: netlists given must not change afterwards, as the service's never do
    run: Callable
    #: ``fits(network, job) -> None | str``: ``None`` if this backend can run the job
    fits: Callable = _fits_everything
    priority: int = 0
    #: the core configuration the backend runs (``None`` where there is none, as in the emulator)
    core_preset: Callable[[], str | None] = _no_preset
    #: ``image_hash(netlist) -> str``: what exactly ran (the compiled image). ``None``: the
    #: backend runs the expanded network itself, which the stored network document
    #: (defaults filled in, seed included) determines exactly, so its SHA-256 is used
    image_hash: Callable | None = None
    #: ``prepare(netlist) -> None``: do now, ahead of a first job, the per-network setup
    #: that ``run`` would otherwise do (a worker calls it on a network just created,
    #: while the client submits its job). Only ever an optimisation: ``run`` must work
    #: as well on a netlist never prepared, or whose preparation was dropped
    prepare: Callable | None = None


_REGISTRY: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    """Add (or replace) a backend under its name."""
    _REGISTRY[backend.name] = backend


def get_backend(name: str) -> Backend:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no backend named {name!r} (registered: {', '.join(sorted(_REGISTRY))})") from None


def registered_backends() -> list[str]:
    return sorted(_REGISTRY)


def choose_backend(network, job, enabled) -> str:
    """The backend a job goes to: the highest-priority enabled backend that fits it."""
    candidates = sorted((get_backend(name) for name in enabled), key=lambda b: -b.priority)
    reasons = []
    for backend in candidates:
        reason = backend.fits(network, job)
        if reason is None:
            return backend.name
        reasons.append(f"{backend.name}: {reason}")
    raise LookupError("no enabled backend can run this job (" + "; ".join(reasons) + ")")


#: Networks up to this many synapses keep their emulator setup between jobs (bigger
#: ones spend a sliver of a run on it, and their layouts take memory: about 6 bytes a
#: synapse). 4M covers the researcher tier's 16K-neuron networks (a sixth of such a
#: job's emulator time is its layout).
PREPARED_MAX_SYNAPSES = 1 << 22
#: The kept setups hold this many synapses at most, together (~25 MB of layouts; they
#: hold their netlists too, which a worker bounds alike: see worker.WORKER_CACHE_SYNAPSES).
PREPARED_TOTAL_SYNAPSES = 1 << 22
_prepared: OrderedDict[int, tuple] = OrderedDict()  # id(netlist) -> (netlist, PreparedNetlist)
_prepared_lock = threading.Lock()


def _prepared_netlist(netlist):
    """The emulator's setup of ``netlist`` (checked, layouts kept), or ``None`` for a large one.

    The service's netlists come from its network cache (:class:`.runner.NetworkCache`),
    one object per network id, and a network never changes once stored: so the setup
    can be kept with the object. Most recently used kept, bounded by synapse count.
    """
    from neurofab.emulator.engine import prepare

    with _prepared_lock:
        entry = _prepared.get(id(netlist))
        if entry is not None and entry[0] is netlist:
            _prepared.move_to_end(id(netlist))
            return entry[1]
    if netlist.n_synapses > PREPARED_MAX_SYNAPSES:
        return None
    prepared = prepare(netlist)
    with _prepared_lock:
        _prepared[id(netlist)] = (netlist, prepared)  # the entry holds the netlist: its id stays its own
        total = sum(p.n_synapses for _, p in _prepared.values())
        while len(_prepared) > 1 and total > PREPARED_TOTAL_SYNAPSES:
            _, (_, old) = _prepared.popitem(last=False)
            total -= old.n_synapses
    return prepared


def _prepare_emulator(netlist) -> None:
    """The emulator's setup of a network before its first job: checks and the layout of
    a job without learning (the common one), kept as :func:`_prepared_netlist` keeps it."""
    from neurofab.job import Job

    prepared = _prepared_netlist(netlist)
    if prepared is not None:
        prepared.ready_for(Job(timesteps=1))


def _run_emulator(netlist, job, progress):
    from neurofab.emulator import simulate
    from neurofab.emulator.engine import simulate_prepared

    prepared = _prepared_netlist(netlist)
    if prepared is None:
        return simulate(netlist, job, progress=progress)
    return simulate_prepared(prepared, job, progress=progress)


register_backend(Backend(name="emulator", run=_run_emulator, priority=0, prepare=_prepare_emulator))


#: The core preset the ``rtl`` backend compiles for (``NEUROFAB_RTL_PRESET``).
RTL_PRESET = os.environ.get("NEUROFAB_RTL_PRESET", "icebreaker")
_compiled: dict[int, tuple] = {}


def _rtl_image(netlist):
    """The netlist compiled for :data:`RTL_PRESET` (kept while the netlist lives)."""
    from neurofab.compiler import compile_network

    entry = _compiled.get(id(netlist))
    if entry is None or entry[0] is not netlist:
        _compiled.clear()  # one network at a time: images can be large
        entry = (netlist, compile_network(netlist, RTL_PRESET))
        _compiled[id(netlist)] = entry
    return entry[1]


def _rtl_fits(network, job) -> str | None:
    from neurofab.hdl.config import get_preset

    if job.learning.enabled:
        return "learning is not built in the core yet"
    preset = get_preset(RTL_PRESET)
    capacity = preset.neurons * preset.max_cores
    if network.total_neurons > capacity:
        return f"{network.total_neurons} neurons exceed the {RTL_PRESET} preset's {capacity}"
    return None


def _run_rtl(netlist, job, progress):
    from neurofab.host.rtl import rtl_run

    return rtl_run(_rtl_image(netlist), job, populations=netlist.populations, progress=progress)


# The core's own Verilog under Verilator: opt-in (NEUROFAB_BACKENDS=emulator,rtl), slow,
# for jobs that must run exactly as a board would. Preferred over the emulator when
# enabled and the job fits the preset (a compile that still does not fit fails the job).
register_backend(
    Backend(
        name="rtl",
        run=_run_rtl,
        fits=_rtl_fits,
        priority=5,
        core_preset=lambda: RTL_PRESET,
        image_hash=lambda nl: "sha256:" + _rtl_image(nl).sha256(),
    )
)


def load_backend_modules(modules) -> None:
    """Import modules that register further backends (for ``--backend-module``)."""
    for module in modules:
        importlib.import_module(module)

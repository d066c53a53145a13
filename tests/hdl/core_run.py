"""``rtl_run(image, job)``: a compiled single-core image run on its core top in the Amaranth simulator.

The host's side of a run, as a board's host link will do it, through the core's host
port only, on ``core_for(config)`` (``Core``, or ``SpramCore`` for ``config.spram``):
load the core's memories from the image (the neuron words with ``lfsr`` set for the
job's seed; ``neurofab.host.load.core_loads`` unless the caller gives its own words), then
for every step write the stimulus sums that change at that step
(``neurofab.job.stimulus_schedule``), pulse ``step`` and collect the step's spikes; at the
end read every neuron word back. Returns the emulator's
:class:`~neurofab.results.RunResult` (spikes sorted by time then gid, ``final_state``
``v``, ``r``, ``lfsr``) with the per-step figures in ``extra``.
"""

from __future__ import annotations

import random
from collections import namedtuple

import numpy as np
from amaranth.sim import Simulator

from neurofab.hdl.cores import core_for
from neurofab.hdl.layouts import Memory, core_layouts, unpack_words
from neurofab.host.load import core_loads
from neurofab.job import stimulus_schedule
from neurofab.results import RunResult

__all__ = ["rtl_run", "host_write", "as_int", "events_held_per_step", "arrivals_by_step", "profile_loads",
           "spram_step_bounds", "SPRAM_STEP_OVERHEAD"]

_Population = namedtuple("_Population", "label size offset")


def as_int(word) -> int:
    """A host word (an int, or ``uint64`` lanes low first) as one int."""
    return sum(int(lane) << (64 * i) for i, lane in enumerate(np.atleast_1d(word)))


def _populations(image):
    out, offset = [], 0
    for label, size in image.populations:
        out.append(_Population(label, size, offset))
        offset += size
    return out


async def host_write(ctx, core, which, address, value):
    """One host-port write: ``value`` into word ``address`` of memory ``which`` (one clock)."""
    ctx.set(core.host_memory, which)
    ctx.set(core.host_addr, address)
    ctx.set(core.host_wdata, value)
    ctx.set(core.host_we, 1)
    await ctx.tick()
    ctx.set(core.host_we, 0)


async def _host_read(ctx, core, which, address):
    ctx.set(core.host_memory, which)
    ctx.set(core.host_addr, address)
    ctx.set(core.host_re, 1)
    await ctx.tick()
    ctx.set(core.host_re, 0)
    for _ in range(core.host_read_latency - 1):  # the memory's read, then the core's registers
        await ctx.tick()
    return ctx.get(core.host_rdata)


def rtl_run(image, job, *, p_ready: float = 1.0, seed: int = 0, before_step=None, loads=None) -> RunResult:
    """Run ``job`` on ``image`` (one core, no learning) on its core top; see the module doc.

    ``p_ready`` is the chance per clock that the host takes a spike (backpressure on the
    spike stream); ``seed`` draws that. ``before_step(ctx, core, t)``, if given, is awaited
    before each step's ``step`` pulse. ``loads``: ``[(memory, words)]`` to write instead of
    ``core_loads(image, job)`` (a test's own derivation of the host words).
    """
    config = image.config
    if image.n_cores != 1:
        raise ValueError(f"rtl_run runs single-core images, not {image.n_cores} cores")
    if job.learning.enabled:
        raise ValueError("rtl_run has no learning sweep yet")
    layouts = core_layouts(config)
    n = image.n_neurons
    T = job.timesteps
    rng = random.Random(seed)
    loads = core_loads(image, job) if loads is None else loads
    st_t, st_gid, st_delta = stimulus_schedule(job, _populations(image))
    core = core_for(config)
    out = {"times": [], "gids": [], "cycles": [], "held": [], "words": None,
           "errors": None, "load_clocks": 0}

    async def testbench(ctx):
        for which, words in loads:
            for address, word in enumerate(words):
                await host_write(ctx, core, which, address, as_int(word))
                out["load_clocks"] += 1
        ctx.set(core.count, n)
        ctx.set(core.timesteps, T)
        ctx.set(core.dendritic, job.learning.dendritic)
        ctx.set(core.noise, job.learning.noise)
        ctx.set(core.graded, job.learning.graded)
        ctx.set(core.clear, 1)
        await ctx.tick()
        ctx.set(core.clear, 0)
        await ctx.tick().until(core.done)

        stimulus = [0] * n
        k = 0
        for t in range(T):
            changed = set()
            while k < len(st_t) and st_t[k] == t:
                stimulus[st_gid[k]] += int(st_delta[k])
                changed.add(int(st_gid[k]))
                k += 1
            for gid in sorted(changed):
                await host_write(ctx, core, Memory.STIMULUS, gid, stimulus[gid])
            if before_step is not None:
                await before_step(ctx, core, t)
            ctx.set(core.step, 1)
            ctx.set(core.spikes.ready, rng.random() < p_ready)
            await ctx.tick()
            ctx.set(core.step, 0)
            clocks = 1
            while True:
                ctx.set(core.spikes.ready, rng.random() < p_ready)
                _, _, done, valid, ready, spike = await ctx.tick().sample(
                    core.done, core.spikes.valid, core.spikes.ready, core.spikes.payload)
                clocks += 1
                if valid and ready:
                    out["times"].append(t)
                    out["gids"].append(spike.neuron)
                if done:
                    break
                assert clocks < 200_000, f"step {t} never finished"
            assert ctx.get(core.t) == t + 1
            out["cycles"].append(ctx.get(core.cycles))
            out["held"].append(ctx.get(core.events_held))
            assert out["cycles"][-1] == clocks, f"step {t}: cycles {out['cycles'][-1]}, counted {clocks}"
        out["errors"] = {name: ctx.get(getattr(core, name)) for name in (
            "queue_overflow", "queue_overflow_step", "acc_overflow", "acc_overflow_step")}
        out["words"] = [await _host_read(ctx, core, Memory.NEURON, address) for address in range(n)]

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()

    raw = np.array([[(w >> (64 * i)) & ((1 << 64) - 1) for i in range(max(1, -(-layouts.neuron.size // 64)))]
                    for w in out["words"]], dtype=np.uint64)
    state = unpack_words(layouts.neuron, raw)
    times = np.array(out["times"], np.int32)
    gids = np.array(out["gids"], np.int32)
    order = np.lexsort((gids, times))
    return RunResult(
        timesteps=T, spike_times=times[order], spike_gids=gids[order],
        final_weights=np.zeros(0, np.int32),
        final_state={name: state[name] for name in ("v", "r", "lfsr")},
        extra={"cycles": out["cycles"], "events_held": out["held"],
               "errors": out["errors"], "load_clocks": out["load_clocks"]},
    )


def _delays_by_source(netlist) -> dict[int, list[int]]:
    """``{source gid: [delay of each of its synapses]}``."""
    delays: dict[int, list[int]] = {}
    for src, d in zip(np.asarray(netlist.src).tolist(), np.asarray(netlist.delay).tolist(), strict=True):
        delays.setdefault(src, []).append(d)
    return delays


def events_held_per_step(netlist, spike_times, spike_gids, timesteps: int, banks: int = 2) -> np.ndarray:
    """The queue's ``held`` after each step, from a run's spikes (the core's rule).

    Two accumulator banks (Core): a spike at ``s`` over a synapse with delay ``d >= 1`` is
    held from the fan-out of ``s`` until the end of step ``s + d`` (whose drain delivered
    it for step ``s + 1 + d``), and not at all when ``s + 1 + d >= T``; delay-0 events go
    straight to the accumulators. So after step ``t`` the queue holds the events with
    arrival ``>= t + 2``. One bank (SpramCore): every event, delay 0 too, is held from
    the fan-out of ``s`` until the drain at the start of step ``s + 1 + d``: after step
    ``t`` the queue holds the events with arrival ``> t``.
    """
    change = np.zeros(timesteps + 1, np.int64)
    by_source = _delays_by_source(netlist)
    for s, gid in zip(np.asarray(spike_times).tolist(), np.asarray(spike_gids).tolist(), strict=True):
        for d in by_source.get(gid, ()):
            if (d >= 1 or banks == 1) and s + 1 + d < timesteps:
                change[s] += 1
                change[s + d + (banks == 1)] -= 1
    return np.cumsum(change)[:timesteps]


def arrivals_by_step(netlist, spike_times, spike_gids, timesteps: int) -> np.ndarray:
    """Events arriving at each step ``t < timesteps``: one per synapse of each spike at ``s``,
    at ``s + 1 + delay``."""
    arriving = np.zeros(timesteps + 65, np.int64)
    delays = _delays_by_source(netlist)
    for s, gid in zip(np.asarray(spike_times).tolist(), np.asarray(spike_gids).tolist(), strict=True):
        for d in delays.get(gid, ()):
            arriving[s + 1 + d] += 1
    return arriving[:timesteps]


#: SpramCore's clocks of a step beyond the drain and the pass/fan-out terms of
#: :func:`spram_step_bounds`: the spike list (3), the fan-out's pipeline from a spike to its
#: first push, the last push's write and the controller (the bound is met with equality in
#: some steps)
SPRAM_STEP_OVERHEAD = 16


def profile_loads(image) -> int:
    """Profile-cache loads of one pass over ``image``'s neurons (SpramCore's ``NeuronPass``):
    one at the start and one at each change of profile along the neurons."""
    profiles = image.fields(0, Memory.NEURON)["profile"][:image.n_neurons]
    return 1 + int(np.count_nonzero(np.diff(profiles))) if len(profiles) else 0


def spram_step_bounds(image, emu, arriving) -> list[int]:
    """The clocks each SpramCore step over ``image`` may take (the host always taking
    spikes), from the emulator's spikes; ``arriving`` from :func:`arrivals_by_step`.

    The drain: ``E_t + DRAIN_LATENCY + 3`` (``E_t`` events arriving at ``t``, then
    Accumulate's last write). Then the pass, ``n + NeuronPass.SPRAM_LATENCY``, with the
    fan-out under it: neuron ``g``'s spike leaves the pass ``g`` clocks after its first,
    and a spike of ``F >= 1`` synapses from synapse ``b`` costs the fan-out its pool-port
    clocks, ``F`` pushes, ``ceil((b mod 16 + F) / 16)`` compartment rows and its axon row,
    at least 4 (a spike of 0 or 1 synapses waits for its axon row's round trip, two in
    flight). So the pass/fan-out phase lasts ``SPRAM_LATENCY + max(n, max_i(g_i +
    sum_{j >= i} cost_j))`` with the step's spikes ``i`` in order, plus
    :data:`SPRAM_STEP_OVERHEAD`, plus the pass's profile loads (``RELOAD`` clocks each,
    :func:`profile_loads`, which delay every spike behind them). With spikes spread over
    the pass that is about ``E_t + max(n, 1.1 E + 2 S) + 34`` for ``E`` events made by
    ``S`` spikes.
    """
    from neurofab.hdl.chunk_queue import DRAIN_LATENCY
    from neurofab.hdl.layouts import COMPARTMENTS_PER_ROW
    from neurofab.hdl.neuron_pass import NeuronPass

    n = image.n_neurons
    axons = image.fields(0, Memory.AXON)
    base = np.asarray(axons["syn_base"], np.int64)
    count = np.asarray(axons["syn_count"], np.int64)
    rows = -(-(base % COMPARTMENTS_PER_ROW + count) // COMPARTMENTS_PER_ROW)
    cost = np.maximum(count + rows + 1, 4)
    reloads = NeuronPass.RELOAD * profile_loads(image)
    bounds = []
    for t in range(len(arriving)):
        gids = emu.spike_gids[emu.spike_times == t].tolist()
        costs = [int(cost[g]) for g in gids]
        fanout = max([g + sum(costs[i:]) for i, g in enumerate(gids)] + [n])
        bounds.append(int(arriving[t]) + DRAIN_LATENCY + 3 + NeuronPass.SPRAM_LATENCY + reloads + fanout
                      + SPRAM_STEP_OVERHEAD)
    return bounds

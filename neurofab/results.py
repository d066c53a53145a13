"""What a run returns, whatever the backend, and the API's shapes made from it.

Every backend (emulator, RTL, board) returns a :class:`RunResult`; the CLI and the
service turn it into the JSON bodies of ``GET /v1/jobs/{id}``,
``GET /v1/jobs/{id}/spikes`` and ``GET /v1/jobs/{id}/weights`` with the functions here,
so the shapes are defined once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["RunResult", "summary", "spike_trains", "final_weights", "result_document"]


@dataclass(eq=False)
class RunResult:
    """The outcome of one simulation.

    ``spike_times`` (``int32``) and ``spike_gids`` (``int32``) list every spike, sorted
    by time then global neuron id. ``final_weights`` (``int32``) has one entry per
    synapse in synapse order. ``final_state`` maps ``v``, ``r``, ``lfsr``, ``x``, ``y``
    (one ``int32``/``int64`` entry per neuron) and, with three-factor learning, ``e``
    (one per synapse) to their values after the last step. ``compute_seconds`` is the
    wall time of the simulation itself.
    """

    timesteps: int
    spike_times: np.ndarray
    spike_gids: np.ndarray
    final_weights: np.ndarray
    final_state: dict = field(default_factory=dict)
    compute_seconds: float = 0.0
    #: backend-specific figures (cycles per step, cores used, ...), JSON-serialisable
    extra: dict = field(default_factory=dict)

    @property
    def total_spikes(self) -> int:
        return int(self.spike_times.shape[0])


def _population_bounds(populations):
    return np.array([p.offset for p in populations] + [populations[-1].offset + populations[-1].size])


def summary(result: RunResult, populations) -> dict:
    """The ``result`` object of a completed job."""
    counts = np.bincount(
        np.searchsorted(_population_bounds(populations), result.spike_gids, side="right") - 1,
        minlength=len(populations),
    ) if len(populations) else np.zeros(0, np.int64)
    timeseries = np.bincount(result.spike_times, minlength=result.timesteps)
    return {
        "total_spikes": result.total_spikes,
        "firing_rates": {
            p.label: int(counts[i]) / (p.size * result.timesteps) for i, p in enumerate(populations)
        },
        "spike_count_timeseries": timeseries.tolist(),
    }


def spike_trains(result: RunResult, populations) -> dict:
    """The body of ``GET /v1/jobs/{id}/spikes``: ``{"spike_trains": {pop: {"i": [t, ...]}}}``."""
    trains: dict[str, dict[str, list[int]]] = {}
    if result.total_spikes == 0:
        return {"spike_trains": trains}
    order = np.lexsort((result.spike_times, result.spike_gids))  # by neuron, then time
    gids = result.spike_gids[order]
    times = result.spike_times[order]
    starts = np.flatnonzero(np.r_[True, gids[1:] != gids[:-1]])
    ends = np.r_[starts[1:], gids.shape[0]]
    bounds = _population_bounds(populations)
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        gid = int(gids[s])
        pop_index = int(np.searchsorted(bounds, gid, side="right") - 1)
        pop = populations[pop_index]
        trains.setdefault(pop.label, {})[str(gid - pop.offset)] = times[s:e].tolist()
    return {"spike_trains": trains}


def final_weights(result: RunResult, connection_offsets) -> dict:
    """The weights document: ``{"connections": [[w, ...], ...]}``, one list per connection."""
    offsets = np.asarray(connection_offsets).tolist()
    weights = result.final_weights
    return {"connections": [weights[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]}


def result_document(result: RunResult, populations) -> dict:
    """What ``GET /v1/jobs/{id}`` returns for a completed job, without ids."""
    return {
        "status": "completed",
        "result": summary(result, populations),
        "compute_seconds": round(result.compute_seconds, 6),
    }

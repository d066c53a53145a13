"""Job documents: parse and validate a ``POST /v1/jobs`` body, and bind it to a network.

INTERFACE CONTRACT (shared by every layer; change only together with all users):

- ``parse_job(doc, *, require_network_id=False) -> Job`` checks the document on its own
  (types, ranges, ranges that depend on ``timesteps``, unknown keys).
- ``bind_job(job, populations) -> None`` checks it against a network's populations
  (stimulus population labels, neuron indices < size); raises ValidationError.
- ``stimulus_schedule(job, populations) -> (t, gid, delta)``: the stimulus currents as
  change events, three arrays (``int64``, ``int32``, ``int64``) sorted by ``t``
  (stable): at step ``t`` the current of neuron ``gid`` changes by ``delta``.
  A start/stop stimulus gives ``+current`` at ``start`` and ``-current`` at ``stop``
  (omitted when ``stop == T``); a ``times`` stimulus gives ``+current`` at each
  listed step and ``-current`` at the step after (omitted at ``T``).
- ``reward_schedule(job) -> (t, value)``: ``int64`` arrays, one entry per distinct
  step that has rewards, ``value`` their sum, sorted by ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Stimulus", "Learning", "Reward", "Job", "parse_job", "bind_job", "stimulus_schedule",
           "reward_schedule"]


@dataclass(frozen=True)
class Stimulus:
    population: str
    current: int
    #: local neuron indices, or ``None`` for every neuron of the population
    neurons: tuple[int, ...] | None = None
    #: active from ``start`` to before ``stop``; both ``None`` when ``times`` is given
    start: int | None = None
    stop: int | None = None
    times: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Learning:
    enabled: bool = False
    graded: bool = False
    dendritic: bool = False
    noise: bool = False
    three_factor: bool = False
    a_plus: int = 16
    a_minus: int = 16
    trace_shift: int = 3
    elig_shift: int = 3


@dataclass(frozen=True)
class Reward:
    timestep: int
    value: int


@dataclass(frozen=True)
class Job:
    timesteps: int
    stimuli: tuple[Stimulus, ...] = ()
    learning: Learning = field(default_factory=Learning)
    rewards: tuple[Reward, ...] = ()
    seed: int = 0
    network_id: str | None = None

    def to_document(self) -> dict:
        raise NotImplementedError


def parse_job(doc, *, require_network_id=False) -> Job:
    raise NotImplementedError


def bind_job(job: Job, populations) -> None:
    raise NotImplementedError


def stimulus_schedule(job: Job, populations):
    """The stimuli as current changes ``(t, gid, delta)``, sorted by step (see module doc)."""
    offsets = {p.label: p for p in populations}
    T = job.timesteps
    ts, gids, deltas = [], [], []
    for stim in job.stimuli:
        pop = offsets[stim.population]
        local = np.arange(pop.size) if stim.neurons is None else np.asarray(stim.neurons, dtype=np.int64)
        gid = (local + pop.offset).astype(np.int32)
        if stim.times is not None:
            edges = [(t, stim.current) for t in stim.times] + [
                (t + 1, -stim.current) for t in stim.times if t + 1 < T
            ]
        else:
            start = 0 if stim.start is None else stim.start
            stop = T if stim.stop is None else stim.stop
            edges = [(start, stim.current)] + ([(stop, -stim.current)] if stop < T else [])
        for t, delta in edges:
            ts.append(np.full(gid.shape[0], t, dtype=np.int64))
            gids.append(gid)
            deltas.append(np.full(gid.shape[0], delta, dtype=np.int64))
    if not ts:
        return np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64)
    t = np.concatenate(ts)
    order = np.argsort(t, kind="stable")
    return t[order], np.concatenate(gids)[order], np.concatenate(deltas)[order]


def reward_schedule(job: Job):
    """The rewards summed per step: ``(t, value)``, one entry per distinct step, sorted."""
    sums: dict[int, int] = {}
    for reward in job.rewards:
        sums[reward.timestep] = sums.get(reward.timestep, 0) + reward.value
    steps = sorted(sums)
    return np.array(steps, dtype=np.int64), np.array([sums[t] for t in steps], dtype=np.int64)

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

from .errors import ValidationError
from .schema import (
    JOB,
    LEARNING,
    REWARD,
    STIMULUS,
    check_array,
    check_object,
    describe,
    job_table,
    range_error,
)

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
        """The normalised document: every default filled in (a start/stop stimulus with
        both bounds, the whole ``learning`` object), parsing back to an equal :class:`Job`.
        ``network_id`` appears when set, a stimulus's ``neurons`` when not "every neuron"."""
        doc: dict = {}
        if self.network_id is not None:
            doc["network_id"] = self.network_id
        doc["timesteps"] = self.timesteps
        stimuli = []
        for stim in self.stimuli:
            s: dict = {"population": stim.population, "current": stim.current}
            if stim.neurons is not None:
                s["neurons"] = list(stim.neurons)
            if stim.times is not None:
                s["times"] = list(stim.times)
            else:
                s["start"] = 0 if stim.start is None else stim.start
                s["stop"] = self.timesteps if stim.stop is None else stim.stop
            stimuli.append(s)
        doc["stimuli"] = stimuli
        doc["learning"] = {f.name: getattr(self.learning, f.name) for f in LEARNING.fields}
        doc["rewards"] = [{"timestep": r.timestep, "value": r.value} for r in self.rewards]
        doc["seed"] = self.seed
        return doc


_WINDOW_RULE = "start < stop <= timesteps"


def _parse_stimuli(raw, path: str, timesteps: int) -> list[Stimulus]:
    def bounds(rel, values):
        if rel == "start":
            return 0, timesteps - 1, _WINDOW_RULE
        if rel == "stop":
            return values["start"] + 1, timesteps, _WINDOW_RULE
        if rel == "times[]":
            return 0, timesteps - 1, "below timesteps"
        return None

    def each(item, item_path, _index):
        v = check_object(item, STIMULUS, item_path, bounds=bounds)
        neurons = None if v["neurons"] is None else tuple(v["neurons"])
        if v["times"] is not None:
            return Stimulus(v["population"], v["current"], neurons, times=tuple(v["times"]))
        stop = timesteps if v["stop"] is None else v["stop"]
        return Stimulus(v["population"], v["current"], neurons, start=v["start"], stop=stop)

    return check_array(JOB.field("stimuli"), raw, path, each)


def _parse_rewards(raw, path: str, timesteps: int) -> list[Reward]:
    def bounds(rel, _values):
        return (0, timesteps - 1, "below timesteps") if rel == "timestep" else None

    def each(item, item_path, _index):
        return Reward(**check_object(item, REWARD, item_path, bounds=bounds))

    return check_array(JOB.field("rewards"), raw, path, each)


def parse_job(doc, *, require_network_id=False) -> Job:
    """Check a ``POST /v1/jobs`` body on its own (not yet against a network).

    ``network_id`` must be a string when present, and is required with
    ``require_network_id``. Ranges that depend on ``timesteps`` (stimulus windows and
    times, reward steps) are checked here. Raises :class:`~neurofab.errors.ValidationError`.
    """
    values = check_object(
        doc, job_table(require_network_id=require_network_id), "", where="the job",
        parsers={
            "stimuli": lambda raw, path, v: _parse_stimuli(raw, path, v["timesteps"]),
            "rewards": lambda raw, path, v: _parse_rewards(raw, path, v["timesteps"]),
        })
    learning = Learning() if values["learning"] is None else Learning(**values["learning"])
    return Job(
        timesteps=values["timesteps"],
        stimuli=tuple(values["stimuli"]),
        learning=learning,
        rewards=tuple(values["rewards"]),
        seed=values["seed"],
        network_id=values["network_id"],
    )


def bind_job(job: Job, populations) -> None:
    """Check ``job`` against a network's populations: every stimulus names one of them
    and its neuron indices are below that population's size. Raises ValidationError."""
    sizes = {p.label: p.size for p in populations}
    for i, stim in enumerate(job.stimuli):
        if stim.population not in sizes:
            raise ValidationError(
                f"stimuli[{i}].population",
                f"{describe(stim.population)} is not a population of the network "
                f"(populations: {', '.join(sizes)})")
        size = sizes[stim.population]
        for j, neuron in enumerate(stim.neurons or ()):
            if not 0 <= neuron < size:
                raise range_error(f"stimuli[{i}].neurons[{j}]", 0, size - 1, neuron)


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

"""Plain models of the core's event side: fan-out, the delay event queue, the drain.

Shared by the Amaranth simulator tests of ``FanOut``, ``EventQueue`` and ``Core``. Each
function states the rule it implements in the words of docs/model.md and
docs/memory-map.md; none of them copies the hardware's structure (the queue is a
dictionary of per-slot lists, not a linked pool).
"""

from __future__ import annotations

import random

from neurofab.hdl.config import CoreConfig
from neurofab.hdl.layouts import core_layouts

__all__ = ["event_core", "graded_value", "fanout_events", "random_synapse_memories", "QueueModel"]


def event_core(*, neurons: int = 16, compartments: int = 4, synapse_words: int = 128, event_queue: int = 64,
               acc_bits: int = 32, delay_slots: int = 64) -> CoreConfig:
    """A small single-core shape for the event-side tests."""
    return CoreConfig(
        name="test", max_cores=1, neurons=neurons, compartments=compartments, profiles=4,
        synapse_words=synapse_words, axons=neurons, route_words=0, delay_slots=delay_slots,
        event_queue=event_queue, acc_bits=acc_bits)


def graded_value(weight: int, payload: int, graded: bool) -> int:
    """docs/model.md: "A contribution is ``w``, or with graded spikes ``(w * g) >> 7``"."""
    return (weight * payload) >> 7 if graded else weight


def fanout_events(config: CoreConfig, axons, synapses, spikes, slot: int, horizon: int, graded: bool):
    """The events of ``spikes`` ``[(neuron, payload)]`` as ``(slot, target, compartment, value)``.

    Every synapse of the spiking neuron's axon in memory order; one with ``delay >=
    horizon`` (arrival ``t + 1 + delay >= T``) gives none.
    """
    out = []
    for neuron, payload in spikes:
        axon = axons[neuron]
        for k in range(axon["syn_base"], axon["syn_base"] + axon["syn_count"]):
            s = synapses[k]
            if s["delay"] < horizon:
                out.append(((slot + 1 + s["delay"]) % config.delay_slots, s["target"], s["compartment"],
                            graded_value(s["weight"], payload, graded)))
    return out


def random_synapse_memories(rng: random.Random, config: CoreConfig, *, max_count: int = 9):
    """An axon table and a synapse memory: contiguous lists, some empty, random words."""
    layouts = core_layouts(config)
    axons, synapses = [], []
    for _ in range(config.axons):
        count = rng.choice([0, 1, rng.randint(0, max_count), rng.randint(0, max_count)])
        count = min(count, config.synapse_words - len(synapses))
        axons.append({"syn_base": len(synapses), "syn_count": count})
        for _ in range(count):
            synapses.append({
                "weight": rng.choice([rng.randint(-32768, 32767), -32768, 32767, 0, rng.randint(-300, 300)]),
                "elig": rng.randint(-32768, 32767),
                "delay": rng.choice([0, config.delay_slots - 1, rng.randrange(config.delay_slots)]),
                "target": rng.randrange(config.neurons),
                "compartment": rng.randrange(config.compartments),
                "plastic": rng.randrange(2),
            })
    # the rest of the synapse memory: words no axon lists, which must never be read
    width = layouts.synapse["target"].width
    while len(synapses) < config.synapse_words:
        synapses.append({"weight": 12345, "elig": 0, "delay": 0, "target": (1 << width) - 1 if width else 0,
                         "compartment": 0, "plastic": 0})
    return axons, synapses


class QueueModel:
    """docs/memory-map.md's event queue: events held per arrival slot, a capacity, two sticky errors.

    ``push`` during the fan-out of step ``s``: an event beyond ``event_queue`` held events
    overflows the queue at step ``s`` (the first such step is kept) and is not held.
    ``drain`` at step ``t`` adds slot ``t mod delay_slots``'s events into the accumulators;
    a partial sum outside the signed ``acc_bits`` range overflows at ``t`` (it is stored
    wrapped, as the hardware does; a run that overflowed is refused anyway).
    """

    def __init__(self, config: CoreConfig):
        self.config = config
        self.slots = [[] for _ in range(config.delay_slots)]
        self.held = 0
        self.queue_overflow_step = None
        self.acc_overflow_step = None

    def push(self, step: int, event) -> None:
        slot, target, compartment, value = event
        if self.held == self.config.event_queue:
            if self.queue_overflow_step is None:
                self.queue_overflow_step = step
            return
        self.slots[slot].append((target, compartment, value))
        self.held += 1

    def drain(self, step: int, accumulators: list[int], order=None) -> None:
        """Add slot ``step mod delay_slots`` into ``accumulators`` (``acc[target * C + c]``).

        ``order`` reverses the sums' order when ``"lifo"`` (the hardware pushes at a list's
        head); it matters only for which partial sum overflows first.
        """
        events = self.slots[step % self.config.delay_slots]
        self.slots[step % self.config.delay_slots] = []
        self.held -= len(events)
        bits = self.config.acc_bits
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        for target, compartment, value in (reversed(events) if order == "lifo" else events):
            k = target * self.config.compartments + compartment
            total = accumulators[k] + value
            if not lo <= total <= hi:
                if self.acc_overflow_step is None:
                    self.acc_overflow_step = step
                total = (total - lo) % (1 << bits) + lo
            accumulators[k] = total

"""Plain models of the core's event side: fan-out, the delay event queue, the accumulators.

Shared by the Amaranth simulator tests of ``FanOut``, ``EventQueue``, ``Accumulate`` and
``Core``. Each function states the rule it implements in the words of docs/model.md,
docs/memory-map.md and core v2 (docs/hardware.md); none of them copies the hardware's
structure (the queue is a list of events per slot, not a linked pool).
"""

from __future__ import annotations

import random
from typing import NamedTuple

from neurofab.hdl.config import CoreConfig
from neurofab.hdl.layouts import core_layouts

__all__ = [
    "event_core",
    "graded_value",
    "FanOutEvents",
    "fanout_events",
    "random_synapse_memories",
    "QueueModel",
    "AccumulatorModel",
]


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


class FanOutEvents(NamedTuple):
    """A fan-out's events, split as core v2 splits them."""

    #: ``(target, compartment, value)`` of every delay-0 event (arrival ``t + 1``)
    direct: list
    #: ``(slot, target, compartment, value)`` of every other event, ``slot = (t + 1 + delay) mod D``
    push: list


def fanout_events(config: CoreConfig, axons, synapses, spikes, slot: int, horizon: int,
                  graded: bool) -> FanOutEvents:
    """The events of ``spikes`` ``[(neuron, payload)]`` at the step whose slot is ``slot``.

    Every synapse of the spiking neuron's axon in memory order; one with ``delay >=
    horizon`` (arrival ``t + 1 + delay >= T``) gives none. A delay-0 event arrives at
    the next step and goes ``direct``; the others are ``push``ed into the queue.
    """
    out = FanOutEvents([], [])
    for neuron, payload in spikes:
        axon = axons[neuron]
        for k in range(axon["syn_base"], axon["syn_base"] + axon["syn_count"]):
            s = synapses[k]
            if s["delay"] >= horizon:
                continue
            value = graded_value(s["weight"], payload, graded)
            if s["delay"] == 0:
                out.direct.append((s["target"], s["compartment"], value))
            else:
                out.push.append(((slot + 1 + s["delay"]) % config.delay_slots, s["target"], s["compartment"],
                                 value))
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
    """Core v2's event queue: events per arrival slot, the ``held`` count, a sticky error.

    ``held`` is +1 per push and loses a step's drained events at that step's end
    (``step_end``), so during the fan-out of step ``s`` it counts the events with arrival
    ``> s`` except the delay-0 ones of step ``s`` (which never enter the queue). A push
    that finds ``held == event_queue`` is dropped; the first such push's step is kept.
    """

    def __init__(self, config: CoreConfig):
        self.config = config
        self.slots = [[] for _ in range(config.delay_slots)]
        self.held = 0
        self.drained = 0  # drained since the last step_end
        self.queue_overflow_step = None

    def push(self, step: int, event) -> bool:
        """Hold ``(slot, target, compartment, value)``; whether it was held (not dropped)."""
        slot, target, compartment, value = event
        if self.held == self.config.event_queue:
            if self.queue_overflow_step is None:
                self.queue_overflow_step = step
            return False
        self.slots[slot].append((target, compartment, value))
        self.held += 1
        return True

    def drain(self, slot: int) -> list:
        """The events of arrival slot ``slot`` as ``(target, compartment, value)``; the slot empties."""
        events, self.slots[slot] = self.slots[slot], []
        self.drained += len(events)
        return events

    def step_end(self) -> None:
        self.held -= self.drained
        self.drained = 0


class AccumulatorModel:
    """Accumulator words of ``compartments`` signed ``acc_bits`` sums, one word per neuron.

    ``add(step, target, compartment, value)`` adds into element ``compartment`` of word
    ``target``; a sum outside the signed range is stored wrapped (sums modulo
    ``2^acc_bits`` do not depend on the order of the adds) and the first step whose adds
    left the range is kept. Within one step that is order-independent only where a word
    element receives values of one sign, which the overflow tests keep to.
    """

    def __init__(self, config: CoreConfig):
        self.config = config
        self.words = [[0] * config.compartments for _ in range(config.neurons)]
        self.acc_overflow_step = None

    def add(self, step: int, target: int, compartment: int, value: int) -> None:
        bits = self.config.acc_bits
        lo = -(1 << (bits - 1))
        total = self.words[target][compartment] + value
        if not lo <= total <= -lo - 1:
            if self.acc_overflow_step is None:
                self.acc_overflow_step = step
            total = (total - lo) % (1 << bits) + lo
        self.words[target][compartment] = total

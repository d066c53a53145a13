"""The plain neuron model of tests/hdl agrees with the project's reference model.

The hardware tests trust ``neuron_model.neuron_update``; these tests tie it to
tests/reference.py, the suite's oracle: once rule by rule (its named helpers, in its
order) and once whole, by running random networks through both and comparing every
spike and the final ``v``, ``r`` and ``lfsr`` of every neuron.
"""

from __future__ import annotations

import random

import pytest
import reference
from netgen import random_case
from neuron_model import NeuronInput, neuron_update, random_input


def _reference_rules(x: NeuronInput) -> tuple[int, int, int, int, int]:
    """Steps 2 to 5 from reference.py's helpers, in reference_simulate's order."""
    current = reference.dendritic_input(list(x.a), bool(x.dendritic), x.dend_threshold)
    lfsr = reference.lfsr_step(x.lfsr)
    if x.r > 0:
        return x.resting, x.r - 1, lfsr, 0, 0
    v = reference.leak_toward_resting(x.v, x.resting, x.leak)
    v = reference.sat(v + current + x.s, reference.V_BITS)
    if x.noise:
        v = reference.sat(v + reference.noise_value(lfsr), reference.V_BITS)
    if v >= x.threshold:
        payload = reference.graded_payload(v, x.threshold) if x.graded else 0
        return x.resting, x.refrac, lfsr, 1, payload
    return v, 0, lfsr, 0, 0


def test_model_follows_reference_rules():
    rng = random.Random(11)
    for _ in range(20_000):
        x = random_input(rng, input_width=34, stimulus_width=34)
        got = neuron_update(x)
        assert (got.v, got.r, got.lfsr, got.spike, got.payload) == _reference_rules(x), x


def _run_with_model(netlist, job):
    """A whole network driven through ``neuron_update``: spikes and final state.

    Step 1 (inputs over delayed synapses) and step 3 (stimuli) are done here, plainly;
    steps 2 to 5 are the model under test. Learning is off, so weights are fixed.
    """
    n, T = netlist.n_neurons, job.timesteps
    flags = job.learning
    v = [int(x) for x in netlist.resting]
    r = [0] * n
    lfsr = [reference.initial_lfsr(job.seed, gid) for gid in range(n)]
    arriving: dict[int, list[list[int]]] = {}
    spikes = []
    for t in range(T):
        a = arriving.pop(t, None) or [[0, 0, 0, 0] for _ in range(n)]
        s = [0] * n
        for stim in job.stimuli:
            if reference.stimulus_active(stim, t, T):
                pop = next(p for p in netlist.populations if p.label == stim.population)
                for local in range(pop.size) if stim.neurons is None else stim.neurons:
                    s[pop.offset + local] += stim.current
        payloads = {}
        for gid in range(n):
            out = neuron_update(NeuronInput(
                tag=gid, dendritic=int(flags.dendritic), noise=int(flags.noise), graded=int(flags.graded),
                v=v[gid], r=r[gid], lfsr=lfsr[gid], threshold=int(netlist.threshold[gid]),
                leak=int(netlist.leak[gid]), resting=int(netlist.resting[gid]),
                refrac=int(netlist.refrac[gid]), dend_threshold=int(netlist.dend_threshold[gid]),
                a=tuple(a[gid]), s=s[gid]))
            v[gid], r[gid], lfsr[gid] = out.v, out.r, out.lfsr
            if out.spike:
                spikes.append((t, gid))
                payloads[gid] = out.payload
        for k in range(netlist.n_synapses):
            source = int(netlist.src[k])
            if source not in payloads:
                continue
            arrival = t + 1 + int(netlist.delay[k])
            if arrival >= T:
                continue
            w = int(netlist.weight[k])
            value = (w * payloads[source]) >> 7 if flags.graded else w
            slot = arriving.setdefault(arrival, [[0, 0, 0, 0] for _ in range(n)])
            slot[int(netlist.tgt[k])][int(netlist.compartment[k])] += value
    return spikes, v, r, lfsr


@pytest.mark.parametrize("seed", range(24))
def test_model_runs_networks_like_reference(seed):
    case = random_case(seed, force={"stdp": False, "three_factor": False})
    expected = reference.reference_simulate(case.netlist, case.job)
    spikes, v, r, lfsr = _run_with_model(case.netlist, case.job)
    assert spikes == list(zip(expected.spike_times.tolist(), expected.spike_gids.tolist(), strict=True)), \
        case.describe()
    assert v == expected.final_state["v"].tolist(), case.describe()
    assert r == expected.final_state["r"].tolist(), case.describe()
    assert lfsr == expected.final_state["lfsr"].tolist(), case.describe()

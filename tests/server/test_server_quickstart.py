"""The API reference's quickstart, through the SDK and through plain HTTP, against a real service.

Results through the API must equal the emulator's for the same network (with the seed
the service stored) and job.
"""

from __future__ import annotations

import json

import numpy as np
import requests
from servicekit import quickstart_job, quickstart_network, unique_email

import catalyst_cloud as cc
from neurofab.emulator import simulate
from neurofab.job import bind_job, parse_job
from neurofab.network import expand, parse_network
from neurofab.results import final_weights, result_document, spike_trains


def _bare_run(network_doc: dict, job_doc: dict):
    network = parse_network(network_doc)
    job = parse_job(job_doc)
    bind_job(job, network.populations)
    netlist = expand(network)
    return network, netlist, simulate(netlist, job)


def test_reference_sdk_quickstart_runs_unchanged_but_for_the_base_url(service):
    # The reference's Python quickstart, word for word, except base_url.
    account = cc.Client.signup(unique_email("quickstart"), base_url=service.base_url)
    client = cc.Client(account["api_key"], base_url=service.base_url)
    net = client.create_network(
        populations=[{"label": "input", "size": 100, "params": {"threshold": 1000}}],
        connections=[],
    )
    job = client.simulate(
        net["network_id"], timesteps=500, stimuli=[{"population": "input", "current": 5000}]
    )
    print(f"Spikes: {job['result']['total_spikes']}")

    assert account["tier"] == "free" and account["limits"]["max_neurons"] == 1024
    assert account["limits"]["max_timesteps"] == 1000
    assert job["status"] == "completed"
    stored = client.get_network(net["network_id"])["definition"]
    _, _, expected = _bare_run(
        stored, {"timesteps": 500, "stimuli": [{"population": "input", "current": 5000}]}
    )
    assert job["result"]["total_spikes"] == expected.total_spikes > 0
    assert job["provenance"]["backend"] == "emulator"


def test_sdk_base_url_comes_from_the_environment(service, monkeypatch):
    monkeypatch.setenv("CATALYST_API_URL", service.base_url)
    key = cc.Client.signup(unique_email("env"))["api_key"]
    assert cc.Client(key).usage()["jobs_today"] == 0
    monkeypatch.delenv("CATALYST_API_URL")
    assert cc.Client(key).base_url == "http://localhost:8000"


def test_rest_quickstart_and_results_equal_the_emulator(service):
    base = service.base_url
    signup = requests.post(f"{base}/v1/signup", json={"email": unique_email("rest"), "tier": "free"})
    assert signup.status_code == 201
    body = signup.json()
    assert body["api_key"].startswith("cn_live_") and body["tier"] == "free"
    headers = {"Content-Type": "application/json", "X-API-Key": body["api_key"]}

    network_doc = quickstart_network()
    del network_doc["seed"]  # as in the reference: the service draws and returns one
    r = requests.post(f"{base}/v1/networks", headers=headers, data=json.dumps(network_doc))
    assert r.status_code == 201
    net = r.json()
    assert net["network_id"].startswith("net_")
    assert {k: net[k] for k in ("total_neurons", "populations", "connections")} == {
        "total_neurons": 125,
        "populations": 2,
        "connections": 2,
    }

    job_doc = {**quickstart_job(), "network_id": net["network_id"]}
    r = requests.post(f"{base}/v1/jobs", headers=headers, data=json.dumps(job_doc))
    assert r.status_code == 202
    accepted = r.json()
    assert accepted["status"] == "queued" and accepted["job_id"].startswith("job_")
    assert set(accepted) == {"job_id", "status"}

    r = requests.get(f"{base}/v1/jobs/{accepted['job_id']}", params={"wait": 30}, headers=headers)
    assert r.status_code == 200
    job = r.json()
    assert job["status"] == "completed"

    network, netlist, expected = _bare_run({**network_doc, "seed": net["seed"]}, quickstart_job())
    reference = result_document(expected, network.populations)
    assert job["result"] == reference["result"]
    assert job["compute_seconds"] > 0
    assert job["provenance"] == {
        **job["provenance"],
        "backend": "emulator",
        "network_seed": net["seed"],
        "job_seed": 0,
        "model_version": 1,
    }
    assert job["provenance"]["image_hash"].startswith("sha256:")

    spikes = requests.get(f"{base}/v1/jobs/{job['job_id']}/spikes", headers=headers)
    assert spikes.status_code == 200
    assert spikes.json() == spike_trains(expected, network.populations)

    weights = requests.get(f"{base}/v1/jobs/{job['job_id']}/weights", headers=headers).json()
    assert weights == final_weights(expected, netlist.connection_offsets)

    synapses = []
    offset = 0
    while offset is not None:
        page = requests.get(
            f"{base}/v1/networks/{net['network_id']}/synapses",
            params={"offset": offset, "limit": 1000},
            headers=headers,
        ).json()
        synapses += page["synapses"]
        offset = page["next_offset"]
    assert len(synapses) == netlist.n_synapses
    by_label = {p.label: p.offset for p in network.populations}
    assert [by_label[s["source"]] + s["source_index"] for s in synapses] == netlist.src.tolist()
    assert [by_label[s["target"]] + s["target_index"] for s in synapses] == netlist.tgt.tolist()
    assert [s["weight"] for s in synapses] == netlist.weight.tolist()


def test_spike_filters_match_the_filtered_emulator_spikes(service):
    client = cc.Client(service.signup("free"), base_url=service.base_url)
    network_doc = quickstart_network()
    net = client.create_network(network_doc["populations"], network_doc["connections"], seed=7)
    job = client.simulate(net["network_id"], **quickstart_job())
    network, _, expected = _bare_run({**network_doc, "seed": 7}, quickstart_job())
    full = spike_trains(expected, network.populations)["spike_trains"]

    def filtered(pop, neurons=None, start=0, stop=1000):
        out = {}
        for index, times in full.get(pop, {}).items():
            if neurons is not None and int(index) not in neurons:
                continue
            kept = [t for t in times if start <= t < stop]
            if kept:
                out[index] = kept
        return {pop: out} if out else {}

    got = client.get_spikes(job["job_id"], population="inhibitory")
    assert got == {"spike_trains": filtered("inhibitory")}
    got = client.get_spikes(
        job["job_id"], population="excitatory", neurons=[0, 2, 4, 99], start=100, stop=400
    )
    assert got == {"spike_trains": filtered("excitatory", {0, 2, 4, 99}, 100, 400)}
    got = client.get_spikes(job["job_id"], population="excitatory", neurons="0-3", start=990)
    assert got == {"spike_trains": filtered("excitatory", {0, 1, 2, 3}, 990)}
    both = client.get_spikes(job["job_id"], start=500, stop=500)
    assert both == {"spike_trains": {}}
    assert client.get_spikes(job["job_id"], start=0) == {"spike_trains": full}


def test_raster_png(service):
    client = cc.Client(service.signup("free"), base_url=service.base_url)
    doc = quickstart_network()
    net = client.create_network(doc["populations"], doc["connections"], seed=1)
    job = client.simulate(net["network_id"], **quickstart_job())
    png = client.get_raster(job["job_id"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert client.get_raster(job["job_id"]) == png  # cached, same picture


def test_learning_job_weights_equal_the_emulator(service):
    client = cc.Client(service.signup("free"), base_url=service.base_url)
    populations = [{"label": "pre", "size": 20}, {"label": "post", "size": 10}]
    connections = [{"source": "pre", "target": "post", "topology": "random_sparse", "p": 0.5, "weight": 300}]
    net = client.create_network(populations, connections, seed=11)
    job_doc = {
        "timesteps": 300,
        "stimuli": [{"population": "pre", "current": 1500}],
        "learning": {"enabled": True},
        "seed": 5,
    }
    job = client.simulate(
        net["network_id"], job_doc["timesteps"], job_doc["stimuli"], job_doc["learning"], None, seed=5
    )
    network, netlist, expected = _bare_run(
        {"populations": populations, "connections": connections, "seed": 11}, job_doc
    )
    got = client.get_weights(job["job_id"])
    assert got == final_weights(expected, netlist.connection_offsets)
    assert not np.array_equal(np.concatenate([np.asarray(c) for c in got["connections"]]), netlist.weight)
    assert job["provenance"]["job_seed"] == 5

"""Many clients at once, a worker killed mid-job, and a whole-service restart: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import threading
import time

from servicekit import RunningService, quickstart_job, quickstart_network

import catalyst_cloud as cc
from neurofab.emulator import simulate
from neurofab.job import parse_job
from neurofab.network import expand, parse_network
from neurofab.results import RunResult, result_document, spike_trains

BUSY_NETWORK = {
    "populations": [{"label": "a", "size": 1000}],
    "connections": [{"source": "a", "target": "a", "topology": "fixed_fan_in", "n": 50, "weight": 10}],
    "seed": 1,
}
BUSY_JOB = {"timesteps": 40_000, "stimuli": [{"population": "a", "current": 1500}]}


def _bare(network_doc, job_doc):
    network = parse_network(network_doc)
    return network, simulate(expand(network), parse_job(job_doc))


def _wait_for(predicate, what: str, limit: float = 300.0):
    deadline = time.monotonic() + limit
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)
    return value


def test_200_jobs_from_8_clients_complete_exactly_once(service):
    doc = quickstart_network()
    network, expected = _bare(doc, quickstart_job())
    expected_result = result_document(expected, network.populations)["result"]
    keys = [service.signup("researcher") for _ in range(8)]
    results: dict[str, dict] = {}
    errors = []
    lock = threading.Lock()

    def client_thread(key):
        try:
            client = cc.Client(key, base_url=service.base_url)
            net = client.create_network(doc["populations"], doc["connections"], seed=doc["seed"])
            for _ in range(25):
                job = client.simulate(net["network_id"], **quickstart_job())
                with lock:
                    assert job["job_id"] not in results
                    results[job["job_id"]] = job
        except Exception as e:  # reported below, with the others
            errors.append(e)

    threads = [threading.Thread(target=client_thread, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 200
    assert all(job["status"] == "completed" and job["result"] == expected_result for job in results.values())
    marks = ",".join("?" * len(results))
    with service.db() as db:
        rows = db.execute(
            f"SELECT status, attempts FROM jobs WHERE id IN ({marks})", list(results)
        ).fetchall()
        stored = db.execute(
            f"SELECT count(*) FROM jobs WHERE id IN ({marks}) AND result_manifest IS NOT NULL", list(results)
        ).fetchone()[0]
    assert len(rows) == 200 and stored == 200
    assert {(r["status"], r["attempts"]) for r in rows} == {("completed", 1)}
    for key in keys:
        assert cc.Client(key, base_url=service.base_url).usage()["jobs_today"] == 25


def test_sigkilled_worker_loses_no_job(tmp_path):
    svc = RunningService(tmp_path / "kill", workers=1, lease_seconds=2.0).start()
    try:
        client = cc.Client(svc.signup("researcher"), base_url=svc.base_url)
        net = client.create_network(BUSY_NETWORK["populations"], BUSY_NETWORK["connections"], seed=1)
        job_id = client.submit_job(net["network_id"], **BUSY_JOB)["job_id"]
        _wait_for(lambda: client.get_job(job_id).get("progress", 0) > 0, "the job to make progress")
        with svc.db() as db:
            owner = db.execute("SELECT lease_owner FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
        pid = int(owner.split(":")[1])
        assert pid in svc.children()
        os.kill(pid, signal.SIGKILL)

        job = _wait_for(
            lambda: (j := client.get_job(job_id, wait=30))["status"] in ("completed", "failed") and j,
            "the job to be re-run",
        )
        assert job["status"] == "completed", job
        assert job["provenance"]["attempt"] == 2
        network, expected = _bare(BUSY_NETWORK, BUSY_JOB)
        assert job["result"] == result_document(expected, network.populations)["result"]
        got = client.get_spikes(job_id, population="a", neurons="0-9", start=39_000)
        mine = expected.spike_gids < 10
        late = expected.spike_times >= 39_000
        subset = RunResult(
            BUSY_JOB["timesteps"],
            expected.spike_times[mine & late],
            expected.spike_gids[mine & late],
            expected.final_weights,
        )
        assert got == spike_trains(subset, network.populations)
        assert pid not in svc.children()  # the supervisor started a new worker
    finally:
        svc.stop()


def test_restart_loses_nothing(tmp_path):
    data = tmp_path / "restart"
    svc = RunningService(data, workers=1, lease_seconds=2.0).start()
    try:
        key = svc.signup("researcher")
        client = cc.Client(key, base_url=svc.base_url)
        doc = quickstart_network()
        small = client.create_network(doc["populations"], doc["connections"], seed=3)
        done = client.simulate(small["network_id"], **quickstart_job())
        busy = client.create_network(BUSY_NETWORK["populations"], BUSY_NETWORK["connections"], seed=1)
        long_id = client.submit_job(busy["network_id"], **BUSY_JOB)["job_id"]
        queued = [client.submit_job(small["network_id"], **quickstart_job())["job_id"] for _ in range(3)]
        _wait_for(lambda: client.get_job(long_id)["status"] == "running", "the long job to start")
    finally:
        svc.stop()  # SIGTERM: the worker hands the running job back to the queue

    with _Restarted(data) as again:
        client = cc.Client(key, base_url=again.base_url)
        assert client.get_job(done["job_id"]) == done
        assert client.get_spikes(done["job_id"])["spike_trains"]
        for job_id in [long_id, *queued]:
            job = _wait_for(
                lambda j=job_id: (x := client.get_job(j, wait=30))["status"] == "completed" and x,
                f"{job_id} to complete",
            )
            assert job["provenance"]["attempt"] == 1  # handing back is not an attempt
        assert client.usage()["jobs_today"] == 5


class _Restarted:
    """The service started again on the same data directory (a context manager)."""

    def __init__(self, data):
        self.service = RunningService(data, workers=1, lease_seconds=2.0)

    def __enter__(self):
        return self.service.start()

    def __exit__(self, *exc):
        self.service.stop()

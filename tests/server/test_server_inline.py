"""Small submit-and-wait jobs run inline in the web process, with every guarantee a worker's job has.

The shared service runs jobs inline under the default threshold. A dedicated service
with the threshold raised (``NEUROFAB_INLINE_MAX_COST``) runs long jobs inline, so that
cancellation, the runtime limit and a SIGKILLed web process can be caught mid-job.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from servicekit import (
    RUNTIME_LIMITED_TIER,
    SHARED_TIERS,
    USAGE_ROUNDING,
    RunningService,
    quickstart_job,
    quickstart_network,
)

import catalyst_cloud as cc
from neurofab.emulator import simulate
from neurofab.job import parse_job
from neurofab.network import expand, parse_network
from neurofab.results import result_document, spike_trains

BUSY_NETWORK = {
    "populations": [{"label": "a", "size": 1000}],
    "connections": [{"source": "a", "target": "a", "topology": "fixed_fan_in", "n": 50, "weight": 10}],
    "seed": 1,
}
BUSY_STIMULI = [{"population": "a", "current": 1500}]


def _owner(service, job_id: str) -> tuple[str | None, int, str]:
    with service.db() as db:
        row = db.execute("SELECT lease_owner, attempts, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row["lease_owner"], row["attempts"], row["status"]


def _inline(owner: str | None) -> bool:
    return owner is not None and ":web-" in owner


def _wait_for(predicate, what: str, limit: float = 300.0):
    deadline = time.monotonic() + limit
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)
    return value


def test_small_waited_job_runs_inline_recorded_and_billed(service):
    client = cc.Client(service.signup("researcher"), base_url=service.base_url)
    doc = quickstart_network()
    net = client.create_network(doc["populations"], doc["connections"], seed=doc["seed"])
    jobs = [client.simulate(net["network_id"], **quickstart_job()) for _ in range(3)]

    network = parse_network(doc)
    expected = simulate(expand(network), parse_job(quickstart_job()))
    for job in jobs:
        owner, attempts, status = _owner(service, job["job_id"])
        assert _inline(owner) and attempts == 1 and status == "completed"
        assert job["result"] == result_document(expected, network.populations)["result"]
        assert job["provenance"]["attempt"] == 1 and job["provenance"]["backend"] == "emulator"
        assert client.get_job(job["job_id"]) == job  # recorded like any job
        assert client.get_spikes(job["job_id"]) == spike_trains(expected, network.populations)
    usage = client.usage()
    assert usage["jobs_today"] == 3
    assert usage["compute_seconds_this_month"] == pytest.approx(
        sum(j["compute_seconds"] for j in jobs), abs=USAGE_ROUNDING
    )
    assert [j["job_id"] for j in client.iter_jobs()] == [j["job_id"] for j in jobs[::-1]]


def test_unwaited_and_large_jobs_go_to_workers(service):
    client = cc.Client(service.signup("researcher"), base_url=service.base_url)
    doc = quickstart_network()
    small = client.create_network(doc["populations"], doc["connections"])
    queued = client.submit_job(small["network_id"], **quickstart_job())["job_id"]
    assert client.get_job(queued, wait=30)["status"] == "completed"
    # 1,000 neurons and 50,000 synapses for 1,000 steps: 51 million, over the 20 million threshold
    busy = client.create_network(BUSY_NETWORK["populations"], BUSY_NETWORK["connections"], seed=1)
    large = client.simulate(busy["network_id"], 1000, BUSY_STIMULI)
    for job_id in (queued, large["job_id"]):
        owner, attempts, status = _owner(service, job_id)
        assert owner is not None and not _inline(owner) and status == "completed"


def test_inline_jobs_count_towards_the_daily_limit(service):
    client = cc.Client(service.signup("free"), base_url=service.base_url, max_retries=0)
    doc = quickstart_network()
    net = client.create_network(doc["populations"], doc["connections"])
    for _ in range(10):
        client.simulate(net["network_id"], 50, quickstart_job()["stimuli"])
    with pytest.raises(cc.CatalystCloudError) as e:
        client.simulate(net["network_id"], 50, quickstart_job()["stimuli"])
    assert e.value.status_code == 429
    with service.db() as db:
        count = db.execute("SELECT count(*) FROM jobs WHERE network_id = ?", (net["network_id"],)).fetchone()
    assert count[0] == 10


@pytest.fixture(scope="module")
def inline_everything(tmp_path_factory):
    """A service that runs every waited job inline (so a long one can be caught running)."""
    svc = RunningService(tmp_path_factory.mktemp("inline"), workers=1, lease_seconds=2.0, tiers=SHARED_TIERS)
    svc.env["NEUROFAB_INLINE_MAX_COST"] = "1e15"
    svc.start()
    yield svc
    svc.stop()


def _running_inline_job(svc, network_id: str) -> str:
    def find():
        with svc.db() as db:
            row = db.execute(
                "SELECT id, lease_owner FROM jobs WHERE network_id = ? AND status = 'running'"
                " AND progress > 0",
                (network_id,),
            ).fetchone()
        return row is not None and _inline(row["lease_owner"]) and row["id"]

    return _wait_for(find, "the inline job to make progress")


def test_an_inline_job_can_be_cancelled(inline_everything):
    svc = inline_everything
    client = cc.Client(svc.signup("enterprise"), base_url=svc.base_url)
    net = client.create_network(BUSY_NETWORK["populations"], BUSY_NETWORK["connections"], seed=1)
    outcome = {}

    def run():
        try:
            client.simulate(net["network_id"], 1_000_000, BUSY_STIMULI, max_wait=120)
        except cc.JobFailedError as e:
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    job_id = _running_inline_job(svc, net["network_id"])
    assert client.cancel_job(job_id)["status"] == "cancelled"
    thread.join()
    error = outcome["error"]
    assert error.status_code == 409 and error.job["job_id"] == job_id
    # The web process stopped the run at its next progress check and billed what ran.
    job = _wait_for(lambda: (j := client.get_job(job_id)).get("compute_seconds") and j, "the bill")
    assert job["status"] == "cancelled" and job["compute_seconds"] > 0
    billed = client.usage()["compute_seconds_this_month"]
    assert billed == pytest.approx(job["compute_seconds"], abs=USAGE_ROUNDING)


def test_an_inline_job_stops_at_the_runtime_limit(inline_everything):
    svc = inline_everything
    client = cc.Client(svc.signup(RUNTIME_LIMITED_TIER), base_url=svc.base_url)
    net = client.create_network(BUSY_NETWORK["populations"], BUSY_NETWORK["connections"], seed=1)
    with pytest.raises(cc.JobFailedError) as e:
        client.simulate(net["network_id"], 1_000_000, BUSY_STIMULI, max_wait=120)
    job = e.value.job
    assert job["status"] == "failed" and "runtime limit" in job["error_message"]
    assert job["compute_seconds"] >= 1.0
    owner, attempts, _ = _owner(svc, job["job_id"])
    assert _inline(owner) and attempts == 1
    billed = client.usage()["compute_seconds_this_month"]
    assert billed == pytest.approx(job["compute_seconds"], abs=USAGE_ROUNDING)


def test_a_sigkilled_web_process_leaves_its_inline_job_to_a_worker(inline_everything):
    svc = inline_everything
    client = cc.Client(svc.signup("researcher"), base_url=svc.base_url)
    net = client.create_network(BUSY_NETWORK["populations"], BUSY_NETWORK["connections"], seed=1)
    job_doc = {"timesteps": 40_000, "stimuli": BUSY_STIMULI}
    outcome = {}

    def run():
        # The SDK's connection dies with the process; it retries with the same
        # Idempotency-Key, which finds the job and waits for it.
        try:
            outcome["job"] = client.simulate(net["network_id"], **job_doc, max_wait=240)
        except Exception as e:  # reported below
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    job_id = _running_inline_job(svc, net["network_id"])
    owner, _, _ = _owner(svc, job_id)
    pid = int(owner.split(":")[1])
    assert pid not in svc.children()  # a gunicorn worker (the job workers are the supervisor's children)
    os.kill(pid, signal.SIGKILL)
    thread.join()
    assert "error" not in outcome, outcome.get("error")
    job = outcome["job"]
    assert job["job_id"] == job_id and job["status"] == "completed"
    assert job["provenance"]["attempt"] == 2  # the lease ran out; a worker ran it again
    owner, attempts, _ = _owner(svc, job_id)
    assert owner is not None and not _inline(owner) and attempts == 2
    network = parse_network(BUSY_NETWORK)
    expected = simulate(expand(network), parse_job(job_doc))
    assert job["result"] == result_document(expected, network.populations)["result"]
    assert client.usage()["jobs_today"] == 1

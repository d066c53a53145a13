"""Job lifecycle through a real service: long poll, cancel, runtime limit, idempotency, listing, usage."""

from __future__ import annotations

import time

import pytest
from servicekit import RUNTIME_LIMITED_TIER, USAGE_ROUNDING, quickstart_job, quickstart_network

import catalyst_cloud as cc
from neurofab.network import parse_network
from neurofab.server.supervisor import process_role

# 1000 neurons that each fire every few steps: about 45 ms of emulator time per 1000
# steps, so a million steps run far longer than any test waits.
BUSY_NETWORK = {
    "populations": [{"label": "a", "size": 1000}],
    "connections": [{"source": "a", "target": "a", "topology": "fixed_fan_in", "n": 50, "weight": 10}],
    "seed": 1,
}
BUSY_STIMULI = [{"population": "a", "current": 1500}]


def _poll(client: cc.Client, job_id: str, condition, what: str, limit: float = 300.0) -> dict:
    deadline = time.monotonic() + limit
    while True:
        job = client.get_job(job_id)
        if condition(job):
            return job
        assert time.monotonic() < deadline, f"gave up waiting for {what}: {job}"
        time.sleep(0.05)


@pytest.fixture
def enterprise(service):
    return cc.Client(service.signup("enterprise"), base_url=service.base_url)


def test_long_poll_and_progress_and_cancel(enterprise, http):
    net = enterprise.create_network(**{k: BUSY_NETWORK[k] for k in ("populations", "connections", "seed")})
    running = enterprise.submit_job(net["network_id"], 1_000_000, BUSY_STIMULI)
    job = _poll(
        enterprise, running["job_id"], lambda j: j["status"] == "running" and j["progress"] > 0, "progress"
    )
    assert 0 < job["progress"] < 1 and "started_at" in job and "result" not in job
    # A long poll on a job that keeps running answers with it still running.
    assert enterprise.get_job(running["job_id"], wait=0.3)["status"] == "running"

    cancelled = enterprise.cancel_job(running["job_id"])
    assert cancelled["status"] == "cancelled" and "finished_at" in cancelled
    # The worker notices, stops and bills what ran; the job stays cancelled.
    job = _poll(enterprise, running["job_id"], lambda j: j.get("compute_seconds"), "the worker to stop")
    assert job["status"] == "cancelled" and job["compute_seconds"] > 0
    assert enterprise.cancel_job(running["job_id"])["status"] == "cancelled"  # idempotent
    r = http.get(f"/v1/jobs/{running['job_id']}/spikes", headers={"X-API-Key": enterprise.api_key})
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    with pytest.raises(cc.CatalystCloudError) as e:
        enterprise.get_weights(running["job_id"])
    assert e.value.status_code == 409


def test_cancel_a_queued_job(enterprise, service):
    net = enterprise.create_network(**{k: BUSY_NETWORK[k] for k in ("populations", "connections", "seed")})
    busy = [
        enterprise.submit_job(net["network_id"], 1_000_000, BUSY_STIMULI)["job_id"]
        for _ in range(service.workers)
    ]
    for job_id in busy:
        _poll(enterprise, job_id, lambda j: j["status"] == "running", "workers to be busy")
    waiting = enterprise.submit_job(net["network_id"], 100, BUSY_STIMULI)["job_id"]
    assert enterprise.get_job(waiting)["status"] == "queued"
    assert enterprise.cancel_job(waiting)["status"] == "cancelled"
    for job_id in busy:
        enterprise.cancel_job(job_id)
        _poll(enterprise, job_id, lambda j: j.get("compute_seconds"), "the worker to stop")
    with service.db() as db:
        assert db.execute("SELECT attempts FROM jobs WHERE id = ?", (waiting,)).fetchone()[0] == 0


def test_simulate_raises_on_a_cancelled_job(enterprise):
    net = enterprise.create_network(**{k: BUSY_NETWORK[k] for k in ("populations", "connections", "seed")})
    import threading

    def cancel_when_running():
        jobs = enterprise.list_jobs(limit=1)["jobs"]
        while not jobs or jobs[0]["status"] != "running":
            time.sleep(0.05)
            jobs = enterprise.list_jobs(limit=1)["jobs"]
        enterprise.cancel_job(jobs[0]["job_id"])

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    with pytest.raises(cc.JobFailedError) as e:
        enterprise.simulate(net["network_id"], 1_000_000, BUSY_STIMULI, max_wait=120)
    canceller.join()
    assert e.value.status_code == 409 and e.value.job["status"] == "cancelled"


def test_runtime_limit_fails_the_job_naming_the_limit(service):
    client = cc.Client(service.signup(RUNTIME_LIMITED_TIER), base_url=service.base_url)
    net = client.create_network(**{k: BUSY_NETWORK[k] for k in ("populations", "connections", "seed")})
    with pytest.raises(cc.JobFailedError) as e:
        client.simulate(net["network_id"], 1_000_000, BUSY_STIMULI, max_wait=120)
    job = e.value.job
    assert job["status"] == "failed" and e.value.status_code == 500
    assert "runtime limit" in job["error_message"] and RUNTIME_LIMITED_TIER in job["error_message"]
    assert "1 s" in job["error_message"]
    assert job["compute_seconds"] >= 1.0
    billed = client.usage()["compute_seconds_this_month"]
    assert billed == pytest.approx(job["compute_seconds"], abs=USAGE_ROUNDING)


def test_submit_and_wait_in_one_request(http, key):
    h = {"X-API-Key": key}
    net = http.post("/v1/networks", json=quickstart_network(), headers=h).json()
    r = http.post("/v1/jobs?wait=30", json={**quickstart_job(), "network_id": net["network_id"]}, headers=h)
    assert r.status_code == 200
    job = r.json()
    assert job["status"] == "completed" and job["result"]["total_spikes"] > 0
    assert r.headers["Location"] == f"/v1/jobs/{job['job_id']}"


def test_idempotency_key_repeats_the_first_answer(http, key):
    h = {"X-API-Key": key, "Idempotency-Key": "same-request-1"}
    doc = quickstart_network()
    del doc["seed"]
    first = http.post("/v1/networks", json=doc, headers=h).json()
    again = http.post("/v1/networks", json=doc, headers=h).json()
    assert first == again
    job = {**quickstart_job(), "network_id": first["network_id"]}
    a = http.post("/v1/jobs", json=job, headers=h)
    b = http.post("/v1/jobs", json=job, headers=h)
    assert a.status_code == b.status_code == 202
    assert a.json()["job_id"] == b.json()["job_id"]
    assert http.get("/v1/usage", headers={"X-API-Key": key}).json()["jobs_today"] == 1
    c = http.post("/v1/jobs", json=job, headers={"X-API-Key": key, "Idempotency-Key": "same-request-2"})
    assert c.json()["job_id"] != a.json()["job_id"]


def test_list_jobs_pages_newest_first(service):
    client = cc.Client(service.signup("free"), base_url=service.base_url)
    doc = quickstart_network()
    net = client.create_network(doc["populations"], doc["connections"])
    ids = [client.submit_job(net["network_id"], 20, quickstart_job()["stimuli"])["job_id"] for _ in range(5)]
    for job_id in ids:
        assert client.get_job(job_id, wait=30)["status"] == "completed"
    page = client.list_jobs(limit=2)
    assert [j["job_id"] for j in page["jobs"]] == ids[::-1][:2] and page["next_cursor"]
    assert [j["job_id"] for j in client.iter_jobs(page_size=2)] == ids[::-1]
    assert all("result" not in j for j in page["jobs"])
    assert [j["job_id"] for j in client.iter_jobs(status="completed")] == ids[::-1]
    assert list(client.iter_jobs(status="failed")) == []


def test_get_network_returns_definition_seed_and_counts(service):
    client = cc.Client(service.signup("free"), base_url=service.base_url)
    doc = quickstart_network()
    del doc["seed"]
    net = client.create_network(doc["populations"], doc["connections"])
    info = client.get_network(net["network_id"])
    assert info["seed"] == net["seed"] == info["definition"]["seed"]
    assert info["definition"] == parse_network({**doc, "seed": net["seed"]}).to_document()
    assert info["total_neurons"] == 125 and info["populations"] == 2 and info["connections"] == 2
    assert info["expected_synapses"] == pytest.approx(0.2 * 100 * 25 + 25 * 100)
    synapses = list(client.iter_synapses(net["network_id"], page_size=400))
    assert len(synapses) > 2500 and synapses[-1]["source"] == "inhibitory"


def test_usage_from_real_accounting(service):
    client = cc.Client(service.signup("researcher"), base_url=service.base_url)
    doc = quickstart_network()
    net = client.create_network(doc["populations"], doc["connections"])
    jobs = [client.simulate(net["network_id"], **quickstart_job()) for _ in range(3)]
    usage = client.usage()
    seconds = sum(j["compute_seconds"] for j in jobs)
    assert usage["jobs_today"] == 3 and usage["jobs_limit_today"] == 100 and usage["tier"] == "researcher"
    assert usage["compute_seconds_this_month"] == pytest.approx(seconds, rel=1e-6)
    assert usage["estimated_cost_gbp"] == pytest.approx(round(18.0 * seconds / 3600, 4))
    enterprise = cc.Client(service.signup("enterprise"), base_url=service.base_url).usage()
    assert enterprise["jobs_limit_today"] is None and enterprise["estimated_cost_gbp"] == 199.0


def _threads_by_role(pid: int, role: str = "supervisor") -> dict[str, list[int]]:
    """``{role: [nice of each thread]}`` over a process and its descendants (Linux /proc)."""
    from pathlib import Path

    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    own = process_role(cmdline)
    if own != "supervisor":  # else the parent's (a server's own children)
        role = own
    found: dict[str, list[int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        found.setdefault(role, []).append(int(fields[16]))  # stat's 19th field: nice
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        for child_role, nices in _threads_by_role(int(child), role).items():
            found.setdefault(child_role, []).extend(nices)
    return found


def test_a_bulky_submission_is_handled_below_the_workers_priority(service, http, researcher_key):
    """A 100 KB job body is decoded and checked in the web process's low-priority lane
    (ten nice steps down), and its job runs as any other; the job workers keep their
    priority."""
    h = {"X-API-Key": researcher_key}
    network = {"populations": [{"label": "a", "size": 16_384}], "connections": []}
    net = http.post("/v1/networks", json=network, headers=h).json()
    stimuli = [{"population": "a", "neurons": list(range(16_384)), "current": 2000}]
    r = http.post(
        "/v1/jobs?wait=30",
        json={"network_id": net["network_id"], "timesteps": 20, "stimuli": stimuli},
        headers=h,
    )
    assert r.status_code == 200 and len(r.request.body) > 65_536
    job = r.json()
    assert job["status"] == "completed" and job["result"]["total_spikes"] > 0
    threads = _threads_by_role(service.process.pid)
    base = min(threads["http"])
    assert min(19, base + 10) in threads["http"]  # the lane's threads
    assert set(threads["worker"]) == {base}

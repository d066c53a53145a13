"""A network is expanded by an idle worker as soon as it is created, ahead of its first job.

The queue's side (only one worker claims a network; the others leave its jobs to that
worker while the claim lasts, and no longer), and the worker's (the job finds the
network expanded and the emulator's setup made; a job runs all the same when the
network was never prepared, its preparation was dropped from the cache, or its
preparer died).
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

import neurofab.network
from neurofab.emulator import simulate
from neurofab.job import bind_job, parse_job
from neurofab.network import expand, parse_network
from neurofab.server import accounts, backends, jobqueue
from neurofab.server.config import Settings
from neurofab.server.worker import Worker

NETWORK = {
    "populations": [{"label": "exc", "size": 80}, {"label": "inh", "size": 20}],
    "connections": [
        {"source": "exc", "target": "inh", "topology": "random_sparse", "p": 0.3, "weight": 900},
        {"source": "inh", "target": "exc", "topology": "fixed_fan_in", "n": 5, "weight": -600},
        {"source": "exc", "target": "exc", "topology": "random_sparse", "p": 0.1, "weight": 400, "delay": 2},
    ],
    "seed": 11,
}
JOB = {"timesteps": 120, "stimuli": [{"population": "exc", "current": 1800}], "seed": 5}


@pytest.fixture
def settings(tmp_path):
    settings = Settings.load({"DATA_DIR": str(tmp_path), "LEASE_SECONDS": 30})
    settings.database().initialise()
    return settings


@pytest.fixture
def account_id(settings):
    return accounts.create_account(settings.database(), "warm@example.org", "researcher")[0].id


def _create_network(db, account_id, doc=NETWORK, network_id=None, created_at=None):
    network = parse_network(doc)
    network_id = network_id or f"net_{time.monotonic_ns()}"
    with db.write() as conn:
        conn.execute(
            "INSERT INTO networks (id, account_id, document, seed, total_neurons, expected_synapses,"
            " populations, connections, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                network_id,
                account_id,
                json.dumps(network.to_document(), separators=(",", ":")),
                network.seed,
                network.total_neurons,
                1000.0,
                len(network.populations),
                len(network.connections),
                time.time() if created_at is None else created_at,
            ),
        )
    return network_id


def _submit(db, account_id, network_id, backend="emulator"):
    job = parse_job({**JOB, "network_id": network_id})
    bind_job(job, parse_network(NETWORK).populations)
    return jobqueue.insert_job(
        db,
        account_id=account_id,
        jobs_per_day=None,
        network_id=network_id,
        document=json.dumps(job.to_document(), separators=(",", ":")),
        timesteps=job.timesteps,
        backend=backend,
        runtime_limit=300,
    )[0]


def _job(db, job_id):
    return db.connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()


def _expected_result():
    network = parse_network(NETWORK)
    result = simulate(expand(network), parse_job(JOB))
    from neurofab.results import result_document

    return result_document(result, network.populations)["result"]


@pytest.fixture
def expansions(monkeypatch):
    """The networks expanded from now on (the worker's cache imports ``expand`` per call)."""
    seen = []
    real = neurofab.network.expand

    def counting(network):
        seen.append(network.seed)
        return real(network)

    monkeypatch.setattr(neurofab.network, "expand", counting)
    return seen


# -- the queue -------------------------------------------------------------------------------


def test_one_worker_claims_a_new_network_and_the_others_leave_its_jobs_to_it(settings, account_id):
    db = settings.database()
    start = jobqueue.newest_network(db)
    network_id = _create_network(db, account_id)
    other_id = _create_network(db, account_id, network_id="net_other")
    claimed, after = jobqueue.claim_warm(db, "w1", ["emulator"], start, 30)
    assert claimed == network_id
    # w2 finds the first network taken and claims the next one
    assert jobqueue.claim_warm(db, "w2", ["emulator"], start, 30)[0] == other_id
    assert jobqueue.claim_warm(db, "w1", ["emulator"], after, 30)[0] is None  # nothing new

    job_id = _submit(db, account_id, network_id)
    assert jobqueue.claim(db, "w2", ["emulator"], 30) is None  # w1's network: left to w1
    # ... but a worker serving another backend does not hold back the emulator's jobs
    jobqueue.drop_warm(db, "w1", network_id)
    assert jobqueue.claim_warm(db, "w3", ["board"], start, 30)[0] == network_id
    assert jobqueue.claim(db, "w2", ["emulator"], 30)["id"] == job_id


def test_the_preparer_claims_the_job_and_its_claims_end_then(settings, account_id):
    db = settings.database()
    start = jobqueue.newest_network(db)
    network_id = _create_network(db, account_id)
    assert jobqueue.claim_warm(db, "w1", ["emulator"], start, 30)[0] == network_id
    jobqueue.warm_done(db, network_id, "w1", 30)
    first, second = _submit(db, account_id, network_id), _submit(db, account_id, network_id)
    assert jobqueue.claim(db, "w1", ["emulator"], 30)["id"] == first
    # busy now, w1 no longer holds the network's other jobs back
    assert db.connect().execute("SELECT count(*) FROM network_warm").fetchone()[0] == 0
    assert jobqueue.claim(db, "w2", ["emulator"], 30)["id"] == second


def test_a_claim_runs_out_like_a_lease(settings, account_id):
    """A preparer that died holds its network's jobs back for a lease at most."""
    db = settings.database()
    start = jobqueue.newest_network(db)
    network_id = _create_network(db, account_id)
    now = time.time()
    assert jobqueue.claim_warm(db, "dead", ["emulator"], start, 30, now=now)[0] == network_id
    job_id = _submit(db, account_id, network_id)
    assert jobqueue.claim(db, "w2", ["emulator"], 30, now=now + 29) is None
    assert jobqueue.claim(db, "w2", ["emulator"], 30, now=now + 31)["id"] == job_id
    # housekeeping forgets claims that ran out
    jobqueue.reap_expired(db, 3, now=now + 31)
    assert db.connect().execute("SELECT count(*) FROM network_warm").fetchone()[0] == 0


def test_old_and_huge_networks_are_not_prepared(settings, account_id):
    db = settings.database()
    start = jobqueue.newest_network(db)
    _create_network(db, account_id, network_id="net_old", created_at=time.time() - jobqueue.WARM_WINDOW - 1)
    huge = _create_network(db, account_id, network_id="net_huge")
    with db.write() as conn:
        conn.execute(
            "UPDATE networks SET expected_synapses = ? WHERE id = ?", (jobqueue.WARM_MAX_SYNAPSES + 1, huge)
        )
    claimed, after = jobqueue.claim_warm(db, "w1", ["emulator"], start, 30)
    assert claimed is None and after == jobqueue.newest_network(db)


# -- the worker ------------------------------------------------------------------------------


def test_a_worker_prepares_a_new_network_and_its_job_uses_it(settings, account_id, expansions):
    worker = Worker(settings, backends=["emulator"], worker_id="w1")
    db = worker.db
    network_id = _create_network(db, account_id)
    assert worker.warm_one()
    assert not worker.warm_one()  # one network, prepared once
    assert expansions == [NETWORK["seed"]]
    _, netlist, _ = worker.networks.get(network_id)
    prepared = backends._prepared_netlist(netlist)
    assert prepared is not None and len(prepared._layouts) == 1  # the plain job's layout is made
    job_id = _submit(db, account_id, network_id)
    assert jobqueue.claim(db, "w2", ["emulator"], 30) is None  # left to w1
    assert worker.run_one()
    assert expansions == [NETWORK["seed"]]  # not expanded again
    row = _job(db, job_id)
    assert row["status"] == "completed" and row["lease_owner"] == "w1"
    assert json.loads(row["result"]) == _expected_result()
    worker.stop.set()


def test_a_job_queued_during_the_preparation_runs_as_it_ends(settings, account_id, monkeypatch):
    """The common case: the client's job arrives while the worker expands its network;
    the worker claims it in the transaction that ends the preparation, and runs it."""
    worker = Worker(settings, backends=["emulator"], worker_id="w1")
    db = worker.db
    network_id = _create_network(db, account_id)
    real, submitted = neurofab.network.expand, []

    def expand_while_a_job_arrives(network):
        submitted.append(_submit(db, account_id, network_id))
        assert jobqueue.claim(db, "w2", ["emulator"], 30) is None  # the other worker leaves it
        return real(network)

    monkeypatch.setattr(neurofab.network, "expand", expand_while_a_job_arrives)
    assert worker.warm_one()
    row = _job(db, submitted[0])
    assert len(submitted) == 1  # expanded once, for the preparation
    assert row["status"] == "completed" and row["lease_owner"] == "w1" and row["attempts"] == 1
    assert json.loads(row["result"]) == _expected_result()
    worker.stop.set()


def test_a_job_runs_when_its_network_was_never_prepared_or_was_dropped(settings, account_id, expansions):
    worker = Worker(settings, backends=["emulator"], worker_id="w1")
    db = worker.db
    never = _create_network(db, account_id)  # nobody looked for new networks
    job_id = _submit(db, account_id, never)
    assert worker.run_one()
    assert _job(db, job_id)["status"] == "completed"
    # prepared, then evicted from the cache before its job came
    dropped = _create_network(db, account_id)
    assert worker.warm_one()
    worker.networks._entries.clear()
    job_id = _submit(db, account_id, dropped)
    assert worker.run_one()
    row = _job(db, job_id)
    assert row["status"] == "completed" and json.loads(row["result"]) == _expected_result()
    assert len(expansions) == 3  # the dropped one expanded again for its job
    worker.stop.set()


def test_a_failed_preparation_leaves_the_job_to_any_worker(settings, account_id, monkeypatch):
    worker = Worker(settings, backends=["emulator"], worker_id="w1")
    db = worker.db
    network_id = _create_network(db, account_id)

    def broken(network):
        raise MemoryError("no room")

    monkeypatch.setattr(neurofab.network, "expand", broken)
    assert worker.warm_one()
    job_id = _submit(db, account_id, network_id)
    assert jobqueue.claim(db, "w2", ["emulator"], 30)["id"] == job_id  # not held back
    worker.stop.set()


def test_a_running_worker_prepares_a_network_when_it_is_created(settings, account_id, expansions):
    """The loop: a network's creation rings the doorbell, the idle worker prepares it,
    and its job (submitted meanwhile or after) runs on the prepared network."""
    worker = Worker(settings, backends=["emulator"], worker_id="w1", poll_interval=0.05)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        db = settings.database()
        network_id = _create_network(db, account_id)
        jobqueue.ring_workers(db)
        deadline = time.monotonic() + 60
        while not expansions and time.monotonic() < deadline:
            time.sleep(0.01)
        job_id = _submit(db, account_id, network_id)
        while _job(db, job_id)["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(0.01)
        row = _job(db, job_id)
        assert row["status"] == "completed" and row["lease_owner"] == "w1"
        assert expansions == [NETWORK["seed"]]
        assert json.loads(row["result"]) == _expected_result()
    finally:
        worker.stop.set()
        worker.wake()
        thread.join(30)
    # stopping, the worker gave its claims up
    assert settings.database().connect().execute("SELECT count(*) FROM network_warm").fetchone()[0] == 0


def test_the_prepared_layout_gives_the_emulators_results():
    """``PreparedNetlist.ready_for`` builds exactly the layout a job then runs on."""
    from neurofab.emulator.engine import prepare, simulate_prepared
    from neurofab.job import Job

    netlist = expand(parse_network(NETWORK))
    prepared = prepare(netlist)
    prepared.ready_for(Job(timesteps=1))
    assert len(prepared._layouts) == 1
    for doc in (JOB, {**JOB, "learning": {"enabled": True}}):
        kept = simulate_prepared(prepared, parse_job(doc))
        fresh = simulate(netlist, parse_job(doc))
        assert np.array_equal(kept.spike_gids, fresh.spike_gids)
        assert np.array_equal(kept.spike_times, fresh.spike_times)
        assert np.array_equal(kept.final_weights, fresh.final_weights)
        # without learning, every run shares one read-only array of the weights as they were
        assert kept.final_weights.flags.writeable == ("learning" in doc)
    assert len(prepared._layouts) == 2  # learning's own layout, beside the plain one

"""The queue, the result store and the SDK's retry policy, each on its own."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import catalyst_cloud as cc
from neurofab.job import parse_job
from neurofab.results import RunResult
from neurofab.server import accounts, jobqueue
from neurofab.server.db import Database
from neurofab.server.store import INLINE_LIMIT, load_result, pack_result, write_result
from neurofab.server.worker import stored_job

# -- the emulator backend's kept setup ---------------------------------------------------------


@pytest.mark.parametrize(
    "learning",
    [None, {"enabled": True}, {"enabled": True, "three_factor": True}],
    ids=["plain", "stdp", "three-factor"],
)
def test_the_emulator_backend_keeps_its_setup_and_gives_the_emulators_results(learning):
    from neurofab.emulator import simulate
    from neurofab.network import expand, parse_network
    from neurofab.server import backends

    network = parse_network(
        {
            "populations": [{"label": "a", "size": 40}, {"label": "b", "size": 30}],
            "connections": [
                {"source": "a", "target": "b", "topology": "random_sparse", "p": 0.3, "weight": 900},
                {"source": "b", "target": "a", "topology": "random_sparse", "p": 0.2, "weight": 700,
                 "delay": 3},
            ],
            "seed": 7,
        }
    )
    netlist = expand(network)
    doc = {"timesteps": 60, "stimuli": [{"population": "a", "current": 1500}], "seed": 3}
    if learning:
        doc["learning"] = learning
        doc["rewards"] = [{"timestep": 30, "value": 100}]
    run = backends.get_backend("emulator").run
    for _ in range(3):  # the kept layout is reused, and learning must not have changed it
        kept = run(netlist, parse_job(doc), None)
        fresh = simulate(netlist, parse_job(doc))
        assert np.array_equal(kept.spike_times, fresh.spike_times)
        assert np.array_equal(kept.spike_gids, fresh.spike_gids)
        assert np.array_equal(kept.final_weights, fresh.final_weights)
        assert kept.spike_times.size > 0
    assert backends._prepared_netlist(netlist) is backends._prepared_netlist(netlist)


# -- the queue --------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path):
    database = Database(str(tmp_path / "q.sqlite3"))
    database.initialise()
    account, _ = accounts.create_account(database, "q@example.org", "free")
    with database.write() as conn:
        conn.execute(
            "INSERT INTO networks (id, account_id, document, seed, total_neurons, expected_synapses,"
            " populations, connections, created_at) VALUES ('net_1', ?, '{}', 1, 1, 0, 1, 0, 0)",
            (account.id,),
        )
    database.account_id = account.id
    return database


def _submit(db, n=1, per_day=None):
    return [
        jobqueue.insert_job(
            db,
            account_id=db.account_id,
            jobs_per_day=per_day,
            network_id="net_1",
            document="{}",
            timesteps=1,
            backend="emulator",
            runtime_limit=30,
        )[0]
        for _ in range(n)
    ]


def _status(db, job_id):
    return (
        db.connect()
        .execute("SELECT status, attempts, error_message FROM jobs WHERE id = ?", (job_id,))
        .fetchone()
    )


def test_claims_are_exclusive_and_in_order(db):
    ids = _submit(db, 3)
    first = jobqueue.claim(db, "w1", ["emulator"], 30)
    second = jobqueue.claim(db, "w2", ["emulator"], 30)
    assert (first["id"], second["id"]) == tuple(ids[:2])
    assert jobqueue.claim(db, "w3", ["board"], 30) is None  # only jobs of the backends a worker serves
    assert jobqueue.claim(db, "w3", ["emulator"], 30)["id"] == ids[2]
    assert jobqueue.claim(db, "w4", ["emulator"], 30) is None


def test_concurrent_claims_never_share_a_job(db):
    ids = set(_submit(db, 60))
    claimed, lock = [], threading.Lock()

    def claimer(name):
        while (row := jobqueue.claim(db, name, ["emulator"], 30)) is not None:
            with lock:
                claimed.append(row["id"])

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)


def test_expired_leases_are_requeued_then_failed_after_max_attempts(db):
    (job_id,) = _submit(db)
    for attempt in (1, 2):
        row = jobqueue.claim(db, f"w{attempt}", ["emulator"], 0.01)
        assert row["id"] == job_id and row["attempts"] == attempt
        time.sleep(0.02)
        assert jobqueue.reap_expired(db, max_attempts=3) == (1, 0)
        assert _status(db, job_id)["status"] == "queued"
        # The worker that lost its lease can no longer finish the job.
        assert jobqueue.complete(
            db,
            job_id,
            f"w{attempt}",
            result_json="{}",
            compute_seconds=1,
            provenance_json="{}",
            manifest="{}",
            blob=None,
        ) == (False, None)
    jobqueue.claim(db, "w3", ["emulator"], 0.01)
    time.sleep(0.02)
    assert jobqueue.reap_expired(db, max_attempts=3) == (0, 1)
    status = _status(db, job_id)
    assert status["status"] == "failed" and status["attempts"] == 3
    assert "stopped responding 3 times" in status["error_message"]


def test_completing_a_job_claims_the_next_in_the_same_transaction(db):
    first, second = _submit(db, 2)
    assert jobqueue.claim(db, "w1", ["emulator"], 30)["id"] == first
    done, following = jobqueue.complete(
        db,
        first,
        "w1",
        result_json="{}",
        compute_seconds=0.5,
        provenance_json="{}",
        manifest="{}",
        blob=None,
        claim_next=["emulator"],
    )
    assert done and following["id"] == second and following["lease_owner"] == "w1"
    assert _status(db, first)["status"] == "completed" and _status(db, second)["status"] == "running"
    assert jobqueue.complete(
        db,
        second,
        "w1",
        result_json="{}",
        compute_seconds=0.5,
        provenance_json="{}",
        manifest="{}",
        blob=None,
        claim_next=["emulator"],
    ) == (True, None)


#: The tables of a version-1 data directory that version 2 changed (results in their own
#: table, ``AUTOINCREMENT``), as version 1 created them.
_VERSION_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, tier TEXT NOT NULL,
    created_at REAL NOT NULL, approved_by TEXT);
INSERT INTO accounts VALUES (1, 'old@example.org', 'free', 0, NULL);
CREATE TABLE networks (id TEXT PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts(id),
    document TEXT NOT NULL, seed INTEGER NOT NULL, total_neurons INTEGER NOT NULL,
    expected_synapses REAL NOT NULL, populations INTEGER NOT NULL, connections INTEGER NOT NULL,
    created_at REAL NOT NULL, idempotency_key TEXT);
INSERT INTO networks VALUES ('net_1', 1, '{}', 1, 1, 0, 1, 0, 0, NULL);
CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts(id), network_id TEXT NOT NULL REFERENCES networks(id),
    document TEXT NOT NULL, timesteps INTEGER NOT NULL, backend TEXT NOT NULL, status TEXT NOT NULL,
    runtime_limit REAL NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_expires REAL, progress REAL,
    error_message TEXT, compute_seconds REAL, result TEXT, provenance TEXT, idempotency_key TEXT);
INSERT INTO jobs (id, account_id, network_id, document, timesteps, backend, status, runtime_limit,
    created_at, finished_at, attempts, result, provenance)
    VALUES ('job_done', 1, 'net_1', '{}', 4, 'emulator', 'completed', 30, 0, 1, 1, '{}', '{}');
INSERT INTO jobs (id, account_id, network_id, document, timesteps, backend, status, runtime_limit, created_at)
    VALUES ('job_queued', 1, 'net_1', '{}', 4, 'emulator', 'queued', 30, 2);
CREATE TABLE results (job_id TEXT PRIMARY KEY REFERENCES jobs(id), manifest TEXT NOT NULL, data BLOB);
INSERT INTO results VALUES ('job_done', '{"storage": "inline"}', x'0102');
"""


def test_a_version_1_database_is_migrated_in_place(tmp_path):
    import sqlite3

    path = str(tmp_path / "v1.sqlite3")
    with sqlite3.connect(path) as conn:
        conn.executescript(_VERSION_1)
    conn.close()
    database = Database(path)
    database.initialise()
    database.initialise()  # a second process starting on the migrated file changes nothing
    conn = database.connect()
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'results'").fetchone() is None
    moved = conn.execute("SELECT id, result_manifest, result_data FROM jobs ORDER BY seq").fetchall()
    assert [tuple(r) for r in moved] == [
        ("job_done", '{"storage": "inline"}', b"\x01\x02"),
        ("job_queued", None, None),
    ]
    # the queue carries on where it was: the old job first, new ones after it
    database.account_id = 1
    (new,) = _submit(database)
    assert jobqueue.claim(database, "w1", ["emulator"], 30)["id"] == "job_queued"
    assert jobqueue.claim(database, "w1", ["emulator"], 30)["id"] == new


def test_a_newer_database_is_refused(tmp_path):
    database = Database(str(tmp_path / "new.sqlite3"))
    database.initialise()
    with database.write() as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="schema version 99, newer"):
        Database(database.path).initialise()


_STORED = "SELECT result_manifest, result_data FROM jobs WHERE id = ?"


def test_a_completed_job_keeps_its_arrays_in_its_row(db):
    (job_id,) = _submit(db)
    jobqueue.claim(db, "w1", ["emulator"], 30)
    done, _ = jobqueue.complete(
        db, job_id, "w1", result_json="{}", compute_seconds=0.1, provenance_json="{}",
        manifest='{"storage": "inline"}', blob=b"\x05",
    )
    row = db.connect().execute(_STORED, (job_id,)).fetchone()
    assert done and tuple(row) == ('{"storage": "inline"}', b"\x05")
    # a late completion by a worker that lost the job writes nothing over it
    assert jobqueue.complete(
        db, job_id, "w2", result_json="{}", compute_seconds=0.1, provenance_json="{}",
        manifest='{"storage": "other"}', blob=b"\x06",
    ) == (False, None)
    row = db.connect().execute(_STORED, (job_id,)).fetchone()
    assert tuple(row) == ('{"storage": "inline"}', b"\x05")


def test_heartbeat_keeps_a_lease_and_cancel_ends_it(db):
    (job_id,) = _submit(db)
    jobqueue.claim(db, "w1", ["emulator"], 0.05)
    for _ in range(3):
        time.sleep(0.02)
        assert jobqueue.heartbeat(db, job_id, "w1", 0.05)
        assert jobqueue.reap_expired(db, 3) == (0, 0)
    assert jobqueue.cancel(db, db.account_id, job_id) == "cancelled"
    assert not jobqueue.heartbeat(db, job_id, "w1", 0.05)
    assert jobqueue.report_progress(db, job_id, "w1", 0.5) == "cancelled"
    assert jobqueue.cancel(db, db.account_id + 1, job_id) is None  # another account's: not found


def test_release_is_not_an_attempt(db):
    (job_id,) = _submit(db)
    jobqueue.claim(db, "w1", ["emulator"], 30)
    assert jobqueue.release(db, job_id, "w1")
    assert tuple(_status(db, job_id))[:2] == ("queued", 0)


def test_daily_limit_and_idempotency(db):
    _submit(db, 2, per_day=2)
    with pytest.raises(Exception) as e:
        _submit(db, 1, per_day=2)
    assert e.value.status == 429 and int(e.value.headers["Retry-After"]) > 0
    again = [
        jobqueue.insert_job(
            db,
            account_id=db.account_id,
            jobs_per_day=None,
            network_id="net_1",
            document="{}",
            timesteps=1,
            backend="emulator",
            runtime_limit=30,
            idempotency_key="k",
        )
        for _ in range(2)
    ]
    assert again[0] == (again[1][0], True) and again[1][1] is False


def test_utc_days():
    assert accounts.utc_day(86400 * 365) == "1971-01-01"
    assert accounts.seconds_to_next_utc_day(86400 * 10 + 3600) == 82800
    assert accounts.utc_month(86400 * 40) == "1970-02"


@pytest.mark.parametrize(
    "doc",
    [
        {"network_id": "net_1", "timesteps": 50},
        {
            "network_id": "net_1",
            "timesteps": 100,
            "seed": 7,
            "stimuli": [
                {"population": "a", "current": 5, "neurons": [3, 1]},
                {"population": "b", "current": -2, "times": [4, 9]},
                {"population": "a", "current": 1, "start": 10, "stop": 20},
            ],
            "learning": {"enabled": True, "three_factor": True, "a_plus": 3},
            "rewards": [{"timestep": 5, "value": -4}, {"timestep": 5, "value": 2}],
        },
    ],
)
def test_stored_job_equals_the_parsed_job(doc):
    parsed = parse_job(doc, require_network_id=True)
    stored = json.loads(json.dumps(parsed.to_document()))  # as the database keeps it
    assert stored_job(stored) == parsed == parse_job(stored, require_network_id=True)


# -- the result store -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_spikes", "n", "codec"),
    [
        (0, 70_000, "raw"),
        (5, 70_000, "raw"),
        (40, 200, "raw"),
        (20_000, 70_000, "zlib"),
        (600_000, 70_000, None),  # a file
    ],
)
def test_store_round_trip(tmp_path, n_spikes, n, codec):
    rng = np.random.default_rng(n_spikes)
    T = 2000
    times = np.sort(rng.integers(0, T, n_spikes)).astype(np.int32)
    gids = rng.integers(0, n, n_spikes).astype(np.int32)
    order = np.lexsort((gids, times))
    result = RunResult(T, times[order], gids[order], rng.integers(-32768, 32768, 1000).astype(np.int32))
    arrays = pack_result(result, n, [0, 400, 1000])
    manifest, blob = write_result(str(tmp_path), "job_x", arrays)
    raw = sum(a.nbytes for a in arrays.values())
    assert json.loads(manifest)["storage"] == ("inline" if raw <= INLINE_LIMIT else "file")
    assert (blob is None) == (raw > INLINE_LIMIT)
    assert json.loads(manifest).get("codec") == codec
    assert arrays["gids"].dtype == (np.uint8 if n <= 256 else np.uint32)
    if codec == "raw":  # uncompressed: the blob is the arrays' bytes
        assert len(blob) == raw
    stored = load_result(str(tmp_path), {"manifest": manifest, "data": blob})
    t, g = stored.spikes()
    assert np.array_equal(t, result.spike_times) and np.array_equal(g, result.spike_gids)
    assert np.array_equal(stored.weights(), result.final_weights)
    assert stored.connection_offsets().tolist() == [0, 400, 1000]
    t, g = stored.spikes(100, 900)
    window = (result.spike_times >= 100) & (result.spike_times < 900)
    assert np.array_equal(t, result.spike_times[window]) and np.array_equal(g, result.spike_gids[window])


def test_store_reads_results_stored_before_codecs(tmp_path):
    """Inline results written before the ``codec`` field existed are zlib: still readable."""
    import zlib

    counts = np.array([2, 0, 1], np.uint32)
    gids = np.array([3, 7, 1], np.uint16)
    parts = [zlib.compress(counts.tobytes(), 1), zlib.compress(gids.tobytes(), 1)]
    arrays = {
        "counts": {"dtype": "<u4", "length": 3, "offset": 0, "nbytes": len(parts[0])},
        "gids": {"dtype": "<u2", "length": 3, "offset": len(parts[0]), "nbytes": len(parts[1])},
    }
    manifest = json.dumps({"storage": "inline", "arrays": arrays})
    stored = load_result(str(tmp_path), {"manifest": manifest, "data": b"".join(parts)})
    t, g = stored.spikes()
    assert t.tolist() == [0, 0, 2] and g.tolist() == [3, 7, 1]


@pytest.mark.parametrize("to_scratch", [False, True])
def test_neuron_major_regrouping_in_chunks(tmp_path, monkeypatch, to_scratch):
    from neurofab.server import store

    rng = np.random.default_rng(3)
    T, n, n_spikes = 500, 300, 20_000
    times = np.sort(rng.integers(0, T, n_spikes)).astype(np.int32)
    gids = rng.integers(0, n, n_spikes).astype(np.int32)
    order = np.lexsort((gids, times))
    times, gids = times[order], gids[order]
    result = RunResult(T, times, gids, np.zeros(0, np.int32))
    manifest, blob = write_result(str(tmp_path), "job_y", pack_result(result, n, [0]))
    stored = load_result(str(tmp_path), {"manifest": manifest, "data": blob})
    monkeypatch.setattr(store, "SORT_CHUNK", 777)  # many chunks
    if to_scratch:
        monkeypatch.setattr(store, "INLINE_LIMIT", 1)  # the output goes to a scratch file
    offsets, grouped = stored.neuron_major(100, 400, 50, 250, str(tmp_path / "scratch"))
    assert isinstance(grouped, np.memmap) == to_scratch
    for i in range(200):
        mine = (gids == 50 + i) & (times >= 100) & (times < 400)
        assert grouped[offsets[i] : offsets[i + 1]].tolist() == times[mine].tolist()


# -- the SDK's retries ------------------------------------------------------------------------


class _Scripted(BaseHTTPRequestHandler):
    """Answers each request with the next scripted (status, headers, body)."""

    script: list = []
    seen: list = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
        status, headers, body = self.script.pop(0)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        data = json.dumps(body).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Scripted.script, _Scripted.seen = [], []
    yield f"http://127.0.0.1:{server.server_address[1]}", _Scripted
    server.shutdown()
    server.server_close()


def test_sdk_retries_5xx_and_429_honouring_retry_after(scripted):
    url, handler = scripted
    handler.script = [
        (503, {}, {"detail": "busy"}),
        (429, {"Retry-After": "0.2"}, {"detail": "slow down"}),
        (202, {}, {"job_id": "job_1", "status": "queued"}),
    ]
    client = cc.Client("cn_live_x", base_url=url, backoff=0.01)
    started = time.monotonic()
    assert client.submit_job("net_1", 10) == {"job_id": "job_1", "status": "queued"}
    assert time.monotonic() - started >= 0.2  # waited as told
    keys = {h["Idempotency-Key"] for _, _, h, _ in handler.seen}
    assert len(handler.seen) == 3 and len(keys) == 1  # one submission, retried under one key
    assert json.loads(handler.seen[0][3]) == {
        "network_id": "net_1",
        "timesteps": 10,
        "stimuli": [],
        "rewards": [],
    }


def test_sdk_raises_long_retry_after_and_client_errors_at_once(scripted):
    url, handler = scripted
    handler.script = [(429, {"Retry-After": "50000"}, {"detail": "daily job limit reached"})]
    client = cc.Client("cn_live_x", base_url=url, backoff=0.01)
    with pytest.raises(cc.CatalystCloudError) as e:
        client.submit_job("net_1", 10)
    assert (e.value.status_code, e.value.detail) == (429, "daily job limit reached")
    handler.script = [(404, {}, {"detail": "job 'job_9' not found"})]
    with pytest.raises(cc.CatalystCloudError) as e:
        client.get_job("job_9")
    assert str(e.value) == "HTTP 404: job 'job_9' not found" and len(handler.seen) == 2


def test_sdk_gives_up_after_max_retries(scripted):
    url, handler = scripted
    handler.script = [(502, {}, {"detail": "bad gateway"})] * 3
    client = cc.Client("cn_live_x", base_url=url, max_retries=2, backoff=0.01)
    with pytest.raises(cc.CatalystCloudError) as e:
        client.usage()
    assert e.value.status_code == 502 and len(handler.seen) == 3


def test_sdk_retries_connection_errors():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = cc.Client("cn_live_x", base_url=f"http://127.0.0.1:{port}", max_retries=2, backoff=0.01)
    import requests

    with pytest.raises(requests.ConnectionError):
        client.usage()


def test_sdk_sends_key_params_and_json_and_raises_requests_timeouts(scripted):
    url, handler = scripted
    handler.script = [(200, {}, {"spike_trains": {}})]
    client = cc.Client("cn_live_x", base_url=url + "/", max_retries=0, timeout=0.5)
    assert client.get_spikes("job_1", population=["exc", "inh"], neurons=[0, 2], start=5) == {
        "spike_trains": {}
    }
    method, path, headers, _ = handler.seen[0]
    assert (method, path) == ("GET", "/v1/jobs/job_1/spikes?population=exc%2Cinh&neurons=0%2C2&start=5")
    assert headers["X-API-Key"] == "cn_live_x"
    handler.script = [(201, {}, {"network_id": "net_1"})]
    client.create_network([{"label": "a", "size": 2}], seed=3)
    assert handler.seen[1][2]["Content-Type"] == "application/json"
    assert json.loads(handler.seen[1][3])["seed"] == 3

    import socket

    import requests

    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        quiet = cc.Client("cn_live_x", base_url=f"http://127.0.0.1:{port}", timeout=0.2, max_retries=0)
        with pytest.raises(requests.Timeout):
            quiet.usage()


def test_sdk_simulate_polls_a_service_without_long_poll(scripted):
    url, handler = scripted
    done = {"job_id": "job_1", "status": "completed", "result": {"total_spikes": 3}}
    handler.script = [
        (202, {}, {"job_id": "job_1", "status": "queued"}),
        (200, {}, {"job_id": "job_1", "status": "running", "progress": 0.5}),
        (200, {}, done),
    ]
    client = cc.Client("cn_live_x", base_url=url)
    assert client.simulate("net_1", 10, poll_interval=0.01) == done
    assert handler.seen[1][1].startswith("/v1/jobs/job_1")
    handler.script = [
        (202, {}, {"job_id": "job_2", "status": "queued"}),
        (200, {}, {"job_id": "job_2", "status": "failed", "error_message": "boom"}),
    ]
    with pytest.raises(cc.JobFailedError) as e:
        client.simulate("net_1", 10, poll_interval=0.01)
    assert e.value.detail == "boom" and e.value.job["status"] == "failed"


# -- doorbells ------------------------------------------------------------------------------


def test_doorbell_rings_wake_the_kind_rung_and_stale_fifos_go(tmp_path):
    import os
    import threading

    from neurofab.server.doorbell import Doorbell, ring

    data = str(tmp_path)
    worker, web = Doorbell(data, "worker"), Doorbell(data, "web")
    assert not worker.wait(0) and not web.wait(0)  # nobody rang
    ring(data, "worker")
    assert worker.wait(0) and not web.wait(0)  # only the kind rung
    assert not worker.wait(0)  # waiting cleared the ring

    woken = []
    sleeper = threading.Thread(target=lambda: woken.append(web.wait(600)))
    sleeper.start()
    ring(data, "web")
    sleeper.join()
    assert woken == [True]

    # A FIFO nobody reads any more (its process died) is removed by the next ring.
    stale = os.path.join(data, "run", "worker-1-dead00.fifo")
    os.mkfifo(stale)
    ring(data, "worker")
    assert not os.path.exists(stale) and worker.wait(0)
    worker.close()
    assert not os.path.exists(worker.path)
    ring(data, "worker")  # its own FIFO gone: nothing to ring, no error
    web.close()


def test_doorbell_without_fifos_falls_back_to_polling(tmp_path):
    from neurofab.server.doorbell import Doorbell

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    bell = Doorbell(str(blocker), "worker")  # DATA/run cannot be made
    assert bell.path is None
    assert bell.wait(600)  # sleeps the short fallback interval, then says "look"
    bell.close()


# -- light requests take turns ----------------------------------------------------------------


def test_a_long_poll_gives_its_turn_up_while_it_waits(tmp_path):
    """A ``?wait`` on a job nobody runs (no workers here) holds its request, but not the
    process's turn: a cancel (a light request, which takes a turn) gets through meanwhile,
    and the waiting poll answers with the cancelled job. Were the turn kept, the cancel
    would queue behind the poll until the poll gave up with the job still queued."""
    from neurofab.server.app import create_app

    app = create_app({"DATA_DIR": str(tmp_path), "ADMIN_TOKEN": "nf_admin_t", "INLINE_MAX_COST": 0})
    client = app.test_client()
    key = client.post("/v1/signup", json={"email": "t@example.org"}).json["api_key"]
    headers = {"X-API-Key": key}
    network = {"populations": [{"label": "a", "size": 2}], "connections": []}
    network_id = client.post("/v1/networks", json=network, headers=headers).json["network_id"]
    job_id = client.post(
        "/v1/jobs", json={"network_id": network_id, "timesteps": 5}, headers=headers
    ).json["job_id"]
    polled = {}

    def poll():
        polled.update(app.test_client().get(f"/v1/jobs/{job_id}?wait=30", headers=headers).json)

    poller = threading.Thread(target=poll)
    poller.start()
    watcher = app.extensions["neurofab"].watcher
    while job_id not in watcher._waiters:  # the poll is waiting (its turn given up)
        time.sleep(0.01)
    assert client.get("/health").json["queued"] == 1  # a light request gets its turn
    assert client.delete(f"/v1/jobs/{job_id}", headers=headers).json["status"] == "cancelled"
    poller.join()
    assert polled["status"] == "cancelled"
    assert not app.extensions["neurofab"].turns.held()


def test_light_requests_share_one_connection_and_heavy_ones_keep_their_own(tmp_path):
    from neurofab.server.app import create_app

    app = create_app({"DATA_DIR": str(tmp_path), "ADMIN_TOKEN": "nf_admin_t", "INLINE_MAX_COST": 0})
    db = app.extensions["neurofab"].db
    client = app.test_client()
    key = client.post("/v1/signup", json={"email": "s@example.org"}).json["api_key"]
    assert db._shared is None  # a sign-up is not a light request
    assert client.get("/v1/usage", headers={"X-API-Key": key}).status_code == 200
    shared = db._shared[1]
    threads = [threading.Thread(target=lambda: app.test_client().get("/health")) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db._shared[1] is shared and db.connect() is not shared


# -- a CPU-bound writer yields before it queues --------------------------------------------------


def test_a_worker_yields_the_cpu_just_before_it_takes_the_write_lock(tmp_path, monkeypatch):
    """A job worker's database gives the CPU up right before each write queues (so that
    the short hold starts on a fresh time slice), with neither write lock held yet; a web
    process's does not (its requests must not give their CPU away)."""
    import os

    from neurofab.server import db as db_module
    from neurofab.server.config import Settings
    from neurofab.server.worker import Worker

    settings = Settings.load({"DATA_DIR": str(tmp_path)})
    settings.database().initialise()
    worker = Worker(settings, backends=["emulator"])
    web = settings.database()
    assert worker.db.yield_before_write and not web.yield_before_write
    seen = []

    def sched_yield():
        lock = db_module.process_write_lock()
        free = lock.acquire(blocking=False)
        if free:
            lock.release()
        seen.append(free)

    monkeypatch.setattr(os, "sched_yield", sched_yield)
    with web.write() as conn:
        conn.execute("SELECT 1")
    assert seen == []
    jobqueue.touch_worker(worker.db, worker.worker_id, os.getpid(), worker.backends)
    assert seen == [True]  # yielded once, before the lock was taken
    worker.stop.set()


_FREED_BLOCK_KEPT = """
import ctypes, sys
import numpy as np
from neurofab.server.worker import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
took = keep_freed_memory() if sys.argv[1] == "kept" else None
block = np.ones(24 << 20, dtype=np.uint8)  # 24 MiB: glibc maps a block this big on its own by default
mapped = libc.mallinfo2().hblkhd
del block
print(took, mapped >= 24 << 20, libc.mallinfo2().fordblks >= 24 << 20)
"""


def test_a_worker_keeps_the_memory_it_frees_for_its_next_arrays():
    """keep_freed_memory (a worker's start) has glibc serve a 24 MiB array from the heap
    and keep it there once freed, ready for the next network; by default glibc maps
    such a block on its own and unmaps it when it is freed. Each side runs in a fresh
    interpreter (the setting is for the whole process)."""
    import subprocess
    import sys

    def run(mode):
        out = subprocess.run(
            [sys.executable, "-c", _FREED_BLOCK_KEPT, mode], capture_output=True, text=True, check=True
        )
        return out.stdout.split()

    assert run("default") == ["None", "True", "False"]  # mapped alone, handed back
    assert run("kept") == ["True", "False", "True"]  # from the heap, kept free in it


def test_a_worker_keeps_a_bounded_network_cache(tmp_path):
    from neurofab.server import backends
    from neurofab.server.config import Settings
    from neurofab.server.worker import WORKER_CACHE_SYNAPSES, Worker

    settings = Settings.load({"DATA_DIR": str(tmp_path)})
    settings.database().initialise()
    worker = Worker(settings, backends=["emulator"])
    assert worker.networks.max_synapses == WORKER_CACHE_SYNAPSES
    # the emulator's kept setups hold their netlists: no more than the cache itself
    assert backends.PREPARED_TOTAL_SYNAPSES <= WORKER_CACHE_SYNAPSES
    worker.stop.set()

# -- bulky submissions in the low-priority lane --------------------------------------------------


def test_the_low_priority_lane_runs_work_on_its_own_threads_ten_steps_lower():
    import os

    from neurofab.server.app import LowPriorityLane

    def priority():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    lane = LowPriorityLane(threads=1)
    mine = priority()
    tid, theirs = lane.run(lambda: (threading.get_native_id(), priority()))
    assert tid != threading.get_native_id() and theirs == min(19, mine + LowPriorityLane.NICENESS)
    assert priority() == mine  # the caller's own priority is untouched
    assert lane.run(lambda: threading.get_native_id()) == tid  # the same thread, kept

    def fails():
        raise ValueError("stimuli[0].neurons[3]: 99 is out of range")

    with pytest.raises(ValueError, match=r"neurons\[3\]"):
        lane.run(fails)


def test_a_bulky_submission_is_checked_and_queued_in_the_low_priority_lane(tmp_path):
    """A job body over TURN_MAX_BODY goes through the lane, small ones do not; the lane's
    answers are the request's (202 with the job, 400 naming a bad field, an idempotent
    repeat), and a long poll waits in the request's own thread."""
    from neurofab.server.app import TURN_MAX_BODY, create_app

    app = create_app({"DATA_DIR": str(tmp_path), "ADMIN_TOKEN": "nf_admin_t", "INLINE_MAX_COST": 0})
    svc = app.extensions["neurofab"]
    lane_threads = []
    through = svc.low_priority.run

    def run(fn):
        return through(lambda: (lane_threads.append(threading.get_native_id()), fn())[1])

    svc.low_priority.run = run
    client = app.test_client()
    key = client.post(
        "/v1/signup",
        json={"email": "b@example.org", "tier": "researcher"},
        headers={"X-Admin-Token": "nf_admin_t"},
    )
    headers = {"X-API-Key": key.json["api_key"]}
    network = {"populations": [{"label": "a", "size": 20_000}], "connections": []}
    network_id = client.post("/v1/networks", json=network, headers=headers).json["network_id"]
    stimuli = [{"population": "a", "neurons": list(range(20_000)), "current": 300}]
    body = {"network_id": network_id, "timesteps": 10, "stimuli": stimuli}
    assert len(json.dumps(body)) > TURN_MAX_BODY

    small = client.post("/v1/jobs", json={"network_id": network_id, "timesteps": 10}, headers=headers)
    assert small.status_code == 202 and lane_threads == []
    bulky = client.post("/v1/jobs", json=body, headers={**headers, "Idempotency-Key": "k1"})
    assert bulky.status_code == 202 and bulky.json["status"] == "queued"
    assert len(lane_threads) == 1 and lane_threads[0] != threading.get_native_id()
    again = client.post("/v1/jobs", json=body, headers={**headers, "Idempotency-Key": "k1"})
    assert again.status_code == 202 and again.json["job_id"] == bulky.json["job_id"]
    sql = "SELECT document FROM jobs WHERE id = ?"
    stored = json.loads(svc.db.connect().execute(sql, (bulky.json["job_id"],)).fetchone()[0])
    assert stored["stimuli"][0]["neurons"] == list(range(20_000))

    stimuli[0]["neurons"][19_999] = 20_000
    bad = client.post("/v1/jobs", json=body, headers=headers)
    assert bad.status_code == 400 and len(lane_threads) == 3
    assert "stimuli[0].neurons[19999]" in bad.json["detail"] and "20000" in bad.json["detail"]
    stimuli[0]["neurons"][19_999] = 19_999
    waited = client.post("/v1/jobs?wait=0.2", json=body, headers=headers)  # nobody runs it here
    assert waited.status_code == 202 and waited.json["status"] == "queued" and len(lane_threads) == 4

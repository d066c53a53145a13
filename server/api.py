"""The ``/v1`` endpoints (and ``/health``), wire-compatible with the Catalyst API.

The request path stays light: validate, check the tier, write one transaction,
answer. Simulation happens in the workers (:mod:`.worker`), except for a small job
submitted with ``?wait=S``, which the request runs itself, claimed with a lease like a
worker's job (:mod:`.runner`); results come back from compact storage (:mod:`.store`),
large bodies streamed.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import re
import time
from typing import NamedTuple

import numpy as np
from flask import (
    Blueprint,
    Response,
    copy_current_request_context,
    current_app,
    request,
    send_file,
    stream_with_context,
)

import neurofab
from neurofab.errors import ValidationError

from . import accounts, jobqueue
from .app import TURN_MAX_BODY, json_response, service
from .backends import choose_backend
from .config import MAX_WAIT_SECONDS
from .errors import ApiError
from .runner import INLINE_BACKENDS, inline_cost
from .store import load_result
from .tiers import TIER_NAMES

__all__ = ["api", "job_document"]

api = Blueprint("api", __name__)

_JSON_CHUNK = 1 << 16
_MAX_PAGE = 200
_MAX_SYNAPSE_PAGE = 10_000


# -- request helpers ---------------------------------------------------------------------


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


def json_body() -> dict:
    """The request body as a JSON object (400 naming what is wrong otherwise)."""
    raw = request.get_data(cache=False)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # A chunked body is cut at the limit without complaint; one more read says
        # whether there was more (Werkzeug then raises 413).
        request.stream.read(1)
    if not raw.strip():
        raise ApiError(400, "request body is empty: send a JSON object")
    try:
        doc = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, over-long integers
        raise ApiError(400, f"request body is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, f"request body must be a JSON object, not {type(doc).__name__}")
    return doc


def current_account() -> accounts.Account:
    return accounts.authenticate(service().db, request.headers.get("X-API-Key"))


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 200):
        raise ApiError(400, f"Idempotency-Key must be 1 to 200 characters, not {len(key)}")
    return key


_MAX_INT = 2**63 - 1  # SQLite's integers


def _int_arg(name: str, default: int | None, lo: int, hi: int = _MAX_INT) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"query parameter {name} must be an integer, not {value!r}") from None
    if not lo <= number <= hi:
        raise ApiError(400, f"query parameter {name} must be in {lo}..{hi}, not {number}")
    return number


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


# -- health ----------------------------------------------------------------------------


@api.get("/health")
def health():
    svc = service()
    counts = jobqueue.queue_counts(svc.db)
    workers = jobqueue.live_workers(svc.db, within=max(15.0, 3 * svc.settings.lease_seconds))
    return json_response(
        {
            "status": "ok",
            "version": neurofab.__version__,
            "model_version": neurofab.MODEL_VERSION,
            "backends": list(svc.settings.backends),
            "workers": len(workers),
            "queued": counts["queued"],
            "running": counts["running"],
        }
    )


# -- accounts ----------------------------------------------------------------------------


@api.post("/v1/signup")
def signup():
    svc = service()
    doc = json_body()
    unknown = sorted(set(doc) - {"email", "tier"})
    if unknown:
        raise ValidationError(
            unknown[0], f"is not a signup field (fields: email, tier), got {doc[unknown[0]]!r}"
        )
    if "email" not in doc:
        raise ValidationError("email", "is required")
    email = accounts.normalise_email(doc["email"])
    tier_name = doc.get("tier", "free")
    if tier_name is None:
        tier_name = "free"
    if tier_name not in TIER_NAMES:
        raise ValidationError("tier", f"must be one of {', '.join(TIER_NAMES)}, not {tier_name!r}")
    tier = svc.tiers[tier_name]
    admin = request.headers.get("X-Admin-Token")
    approved = admin is not None and hmac.compare_digest(admin.encode(), svc.settings.admin_token.encode())
    if not tier.open and not approved:
        accounts.record_tier_request(svc.db, email, tier_name)
        raise ApiError(
            403,
            f"the {tier_name} tier needs the operator's approval: your request for {email} is recorded "
            f"(the operator grants it with `neurofab accounts approve {email}`); "
            f"sign up for the free tier meanwhile",
        )
    account, key = accounts.create_account(
        svc.db, email, tier_name, approved_by="admin-token" if approved else None
    )
    return json_response({"api_key": key, "tier": account.tier, "limits": tier.limits()}, 201)


@api.get("/v1/usage")
def usage():
    svc = service()
    account = current_account()
    return json_response(accounts.usage(svc.db, account, svc.tiers[account.tier]))


# -- networks ----------------------------------------------------------------------------


@api.post("/v1/networks")
def create_network():
    from neurofab.network import parse_network, synapse_counts

    svc = service()
    account = current_account()
    doc = json_body()
    idempotency_key = _idempotency_key()
    network = parse_network(doc)
    tier = svc.tiers[account.tier]
    if network.total_neurons > tier.max_neurons:
        raise ApiError(
            403,
            f"network has {network.total_neurons} neurons; the {account.tier} tier allows "
            f"at most {tier.max_neurons} (tier limit max_neurons)",
        )
    synapses = float(sum(synapse_counts(network)))
    if synapses > tier.max_synapses:
        raise ApiError(
            403,
            f"network has {synapses:.0f} synapses (expected count); the {account.tier} tier "
            f"allows at most {tier.max_synapses} (tier limit max_synapses)",
        )
    network_id = "net_" + os.urandom(12).hex()
    document = json.dumps(network.to_document(), separators=(",", ":"))
    body = {
        "network_id": network_id,
        "total_neurons": network.total_neurons,
        "populations": len(network.populations),
        "connections": len(network.connections),
        "seed": network.seed,
    }
    with svc.db.write() as conn:
        replay = None
        if idempotency_key is not None:
            replay = conn.execute(
                "SELECT * FROM networks WHERE account_id = ? AND idempotency_key = ?",
                (account.id, idempotency_key),
            ).fetchone()
        if replay is not None:  # the same request again: answer as the first time
            network_id = replay["id"]
            body.update(
                network_id=network_id,
                total_neurons=replay["total_neurons"],
                populations=replay["populations"],
                connections=replay["connections"],
                seed=replay["seed"],
            )
        else:
            conn.execute(
                "INSERT INTO networks (id, account_id, document, seed, total_neurons, expected_synapses,"
                " populations, connections, created_at, idempotency_key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    network_id,
                    account.id,
                    document,
                    network.seed,
                    network.total_neurons,
                    synapses,
                    len(network.populations),
                    len(network.connections),
                    time.time(),
                    idempotency_key,
                ),
            )
    if replay is None:
        svc.remember_network(account.id, network_id, network, synapses)
        # An idle worker expands the network now, while the client sends its first job.
        jobqueue.ring_workers(svc.db)
    return json_response(body, 201, {"Location": f"/v1/networks/{network_id}"})


def _network_row(account, network_id: str):
    row = (
        service()
        .db.connect()
        .execute("SELECT * FROM networks WHERE id = ? AND account_id = ?", (network_id, account.id))
        .fetchone()
    )
    if row is None:
        raise ApiError(404, f"network {network_id!r} not found")
    return row


@api.get("/v1/networks/<network_id>")
def get_network(network_id: str):
    account = current_account()
    row = _network_row(account, network_id)
    return json_response(
        {
            "network_id": row["id"],
            "created_at": _iso(row["created_at"]),
            "total_neurons": row["total_neurons"],
            "populations": row["populations"],
            "connections": row["connections"],
            "expected_synapses": row["expected_synapses"],
            "seed": row["seed"],
            "definition": json.loads(row["document"]),
        }
    )


def _expanded_arrays(network_id: str, network) -> dict[str, np.ndarray]:
    """The network's synapse arrays, expanded once and kept as memory-mapped files."""
    from neurofab.network import expand

    directory = os.path.join(service().settings.data_dir, "netlists", network_id)
    names = ("src", "tgt", "weight", "delay", "compartment", "connection_offsets")
    if not os.path.isdir(directory):
        netlist = expand(network)
        tmp = f"{directory}.{os.getpid()}.{os.urandom(3).hex()}.tmp"
        os.makedirs(tmp)
        for name in names:
            np.save(os.path.join(tmp, f"{name}.npy"), np.asarray(getattr(netlist, name)))
        try:
            os.rename(tmp, directory)  # atomic: another request may have won the race
        except OSError:
            for name in names:
                os.remove(os.path.join(tmp, f"{name}.npy"))
            os.rmdir(tmp)
    return {name: np.load(os.path.join(directory, f"{name}.npy"), mmap_mode="r") for name in names}


@api.get("/v1/networks/<network_id>/synapses")
def get_synapses(network_id: str):
    svc = service()
    account = current_account()
    network = svc.network(account.id, network_id)
    offset = _int_arg("offset", 0, 0)
    limit = _int_arg("limit", 1000, 1, _MAX_SYNAPSE_PAGE)
    arrays = _expanded_arrays(network_id, network)
    total = int(arrays["src"].shape[0])
    stop = min(total, offset + limit)
    conn_offsets = np.asarray(arrays["connection_offsets"])
    populations = network.populations
    bounds = np.array([p.offset for p in populations])
    page = []
    if offset < stop:
        src = np.asarray(arrays["src"][offset:stop])
        tgt = np.asarray(arrays["tgt"][offset:stop])
        conn = np.searchsorted(conn_offsets, np.arange(offset, stop), side="right") - 1
        src_pop = np.searchsorted(bounds, src, side="right") - 1
        tgt_pop = np.searchsorted(bounds, tgt, side="right") - 1
        columns = zip(
            conn.tolist(),
            src_pop.tolist(),
            src.tolist(),
            tgt_pop.tolist(),
            tgt.tolist(),
            np.asarray(arrays["weight"][offset:stop]).tolist(),
            np.asarray(arrays["delay"][offset:stop]).tolist(),
            np.asarray(arrays["compartment"][offset:stop]).tolist(),
            strict=True,
        )
        for c, sp, s, tp, t, w, d, comp in columns:
            page.append(
                {
                    "connection": c,
                    "source": populations[sp].label,
                    "source_index": s - populations[sp].offset,
                    "target": populations[tp].label,
                    "target_index": t - populations[tp].offset,
                    "weight": w,
                    "delay": d,
                    "compartment": comp,
                }
            )
    return json_response(
        {
            "network_id": network_id,
            "total": total,
            "offset": offset,
            "limit": limit,
            "next_offset": stop if stop < total else None,
            "synapses": page,
        }
    )


# -- jobs ----------------------------------------------------------------------------------


def job_document(row, *, with_result: bool = True) -> str:
    """The JSON text of ``GET /v1/jobs/{id}`` for a job row.

    The stored summary is spliced in as text: a long run's ``spike_count_timeseries``
    is large, and decoding it only to encode it again would cost every poll.
    """
    status = row["status"]
    doc = {
        "job_id": row["id"],
        "network_id": row["network_id"],
        "status": status,
        "timesteps": row["timesteps"],
        "created_at": _iso(row["created_at"]),
    }
    if row["started_at"] is not None and status != "queued":
        doc["started_at"] = _iso(row["started_at"])
    if status == "running":
        doc["progress"] = row["progress"] if row["progress"] is not None else 0.0
    if row["finished_at"] is not None and status in jobqueue.TERMINAL:
        doc["finished_at"] = _iso(row["finished_at"])
    if status == "failed":
        doc["error_message"] = row["error_message"]
    if row["compute_seconds"] is not None and status in jobqueue.TERMINAL:
        doc["compute_seconds"] = row["compute_seconds"]
    if status == "completed":
        doc["provenance"] = json.loads(row["provenance"])
    text = json.dumps(doc, separators=(",", ":"))
    if status == "completed" and with_result:
        text = text[:-1] + ',"result":' + row["result"] + "}"
    return text


def _job_row(account, job_id: str):
    row = (
        service()
        .db.connect()
        .execute(
            f"SELECT {jobqueue.JOB_COLUMNS} FROM jobs WHERE id = ? AND account_id = ?", (job_id, account.id)
        )
        .fetchone()
    )
    if row is None:
        raise ApiError(404, f"job {job_id!r} not found")
    return row


class _Queued(NamedTuple):
    """What :func:`_queue_job` did with a submission."""

    account: accounts.Account
    job_id: str
    created: bool
    wait: float
    #: the job document to run in this request (inline), else ``None``
    inline_run: dict | None
    network: object
    job: object


@api.post("/v1/jobs")
def submit_job():
    svc = service()
    if (request.content_length or 0) > TURN_MAX_BODY:
        # A bulky submission is decoded, checked and queued below the job workers'
        # priority (see LowPriorityLane); its body is read here, by the server's thread.
        request.get_data()
        queued = svc.low_priority.run(copy_current_request_context(_queue_job))
    else:
        queued = _queue_job()
    account, job_id = queued.account, queued.job_id
    headers = {"Location": f"/v1/jobs/{job_id}"}
    if queued.inline_run is not None:
        svc.inline.execute(queued.inline_run, network=queued.network, job=queued.job, tier=account.tier)
    if queued.wait > 0:  # submit and long-poll in one round trip (an extension; see docs/api.md)
        row = _long_poll(svc, account, job_id, _job_row(account, job_id), time.monotonic() + queued.wait)
        return json_response(job_document(row), 200 if row["status"] in jobqueue.TERMINAL else 202, headers)
    status = "queued"
    if not queued.created:  # a repeated request (same Idempotency-Key): report the job as it is now
        status = svc.db.connect().execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
    return json_response({"job_id": job_id, "status": status}, 202, headers)


def _queue_job() -> _Queued:
    """Check the request's job and queue it (claimed by this process if it runs inline)."""
    from neurofab.job import bind_job, parse_job

    svc = service()
    account = current_account()
    doc = json_body()
    idempotency_key = _idempotency_key()
    wait = _wait_arg()
    job = parse_job(doc, require_network_id=True)
    network, synapses = svc.network_entry(account.id, job.network_id)
    bind_job(job, network.populations)
    tier = svc.tiers[account.tier]
    if job.timesteps > tier.max_timesteps:
        raise ApiError(
            403,
            f"job has {job.timesteps} timesteps; the {account.tier} tier allows at most "
            f"{tier.max_timesteps} (tier limit max_timesteps)",
        )
    try:
        backend = choose_backend(network, job, svc.settings.backends)
    except LookupError as e:
        raise ApiError(503, str(e)) from None
    # A small emulator job whose client waits anyway runs here, in this request, rather
    # than through a worker: no hand-over, no wake-up, no second process touching it.
    # It goes in claimed by this process, with a lease, so it is recorded, billed,
    # cancellable and recoverable exactly like a worker's job (see .runner).
    inline = (
        wait > 0
        and backend in INLINE_BACKENDS
        and inline_cost(job.timesteps, network.total_neurons, synapses) <= svc.settings.inline_max_cost
        and svc.inline is not None
    )
    document = json.dumps(job.to_document(), separators=(",", ":"))
    job_id, created = jobqueue.insert_job(
        svc.db,
        account_id=account.id,
        jobs_per_day=tier.jobs_per_day,
        network_id=job.network_id,
        document=document,
        timesteps=job.timesteps,
        backend=backend,
        runtime_limit=tier.max_runtime_seconds,
        idempotency_key=idempotency_key,
        claimed_by=svc.inline.owner if inline else None,
        lease_seconds=svc.settings.lease_seconds,
    )
    inline_run = None
    if inline and created:
        inline_run = {
            "id": job_id,
            "account_id": account.id,
            "network_id": job.network_id,
            "document": document,
            "backend": backend,
            "runtime_limit": tier.max_runtime_seconds,
            "attempts": 1,
        }
    return _Queued(account, job_id, created, wait, inline_run, network, job)


def _wait_arg() -> float:
    value = request.args.get("wait")
    if value is None or value == "":
        return 0.0
    try:
        wait = float(value)
    except ValueError:
        raise ApiError(400, f"query parameter wait must be a number of seconds, not {value!r}") from None
    if not 0 <= wait <= MAX_WAIT_SECONDS:  # also refuses nan
        raise ApiError(400, f"query parameter wait must be in 0..{MAX_WAIT_SECONDS:g} seconds, not {value}")
    return wait


@api.get("/v1/jobs/<job_id>")
def get_job(job_id: str):
    svc = service()
    account = current_account()
    wait = _wait_arg()
    row = _job_row(account, job_id)
    if wait > 0 and row["status"] not in jobqueue.TERMINAL:
        row = _long_poll(svc, account, job_id, row, time.monotonic() + wait)
    return json_response(job_document(row))


def _long_poll(svc, account, job_id, row, deadline: float):
    """Hold until the job ends or the deadline passes (see :class:`.app.JobWatcher`)."""
    while row["status"] not in jobqueue.TERMINAL:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        with svc.turns.paused():
            svc.watcher.wait(job_id, remaining)
        row = _job_row(account, job_id)
    return row


@api.delete("/v1/jobs/<job_id>")
def cancel_job(job_id: str):
    svc = service()
    account = current_account()
    status = jobqueue.cancel(svc.db, account.id, job_id)
    if status is None:
        raise ApiError(404, f"job {job_id!r} not found")
    if status != "cancelled":
        raise ApiError(
            409, f"job {job_id} has already {status}; only queued or running jobs can be cancelled"
        )
    return json_response(job_document(_job_row(account, job_id)))


@api.get("/v1/jobs")
def list_jobs():
    svc = service()
    account = current_account()
    limit = _int_arg("limit", 50, 1, _MAX_PAGE)
    cursor = _int_arg("cursor", None, 0)
    status = request.args.get("status")
    if status is not None and status not in ("queued", "running", *jobqueue.TERMINAL):
        raise ApiError(
            400,
            f"query parameter status must be one of queued, running, completed, failed, "
            f"cancelled, not {status!r}",
        )
    sql = f"SELECT {jobqueue.JOB_COLUMNS} FROM jobs WHERE account_id = ?"
    params: list = [account.id]
    if cursor is not None:
        sql += " AND seq < ?"
        params.append(cursor)
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    rows = svc.db.connect().execute(sql + " ORDER BY seq DESC LIMIT ?", (*params, limit + 1)).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    items = ",".join(job_document(r, with_result=False) for r in rows)
    next_cursor = json.dumps(str(rows[-1]["seq"]) if more else None)
    return json_response(f'{{"jobs":[{items}],"next_cursor":{next_cursor}}}')


def _completed_result(account, job_id: str):
    svc = service()
    row = _job_row(account, job_id)
    if row["status"] != "completed":
        raise ApiError(409, f"job {job_id} is {row['status']}; its results exist once it has completed")
    stored_row = (
        svc.db.connect()
        .execute("SELECT result_manifest AS manifest, result_data AS data FROM jobs WHERE id = ?", (job_id,))
        .fetchone()
    )
    return row, load_result(svc.settings.data_dir, stored_row), svc.network(account.id, row["network_id"])


def _parse_neurons(value: str, size: int, label: str) -> np.ndarray:
    """``"0,3,10-19"`` as sorted distinct local indices of a population of ``size``."""
    picked = set()
    for part in value.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ApiError(
                400, f"query parameter neurons must be indices or ranges like 0,3,10-19, not {value!r}"
            )
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) is not None else lo
        if lo > hi or hi >= size:
            raise ApiError(
                400,
                f"query parameter neurons has {part!r}, outside population {label!r} (indices 0..{size - 1})",
            )
        if hi - lo >= size:
            raise ApiError(400, f"query parameter neurons range {part!r} is larger than the population")
        picked.update(range(lo, hi + 1))
    return np.array(sorted(picked), dtype=np.int64)


@api.get("/v1/jobs/<job_id>/spikes")
def get_spikes(job_id: str):
    account = current_account()
    row, stored, network = _completed_result(account, job_id)
    populations = network.populations
    labels = [p.label for p in populations]
    if request.args.get("population"):
        chosen = [s.strip() for s in request.args["population"].split(",")]
        for label in chosen:
            if label not in labels:
                raise ApiError(
                    400,
                    f"query parameter population names {label!r}, which is not in this network "
                    f"(populations: {', '.join(labels)})",
                )
        selected = [p for p in populations if p.label in chosen]
    else:
        selected = list(populations)
    neurons = None
    if request.args.get("neurons"):
        if len(selected) != 1:
            raise ApiError(400, "query parameter neurons needs exactly one population (population=label)")
        neurons = _parse_neurons(request.args["neurons"], selected[0].size, selected[0].label)
    T = stored.timesteps
    start = _int_arg("start", 0, 0, T)
    stop = _int_arg("stop", T, 0, T)
    if start > stop:
        raise ApiError(400, f"query parameter start ({start}) must not be after stop ({stop})")

    service_data_dir = service().settings.data_dir

    def generate():
        buffer = ['{"spike_trains":{']
        size = 0
        first_population = True
        scratch = os.path.join(service_data_dir, "scratch")
        for pop in selected:
            offsets, pop_times = stored.neuron_major(start, stop, pop.offset, pop.offset + pop.size, scratch)
            counts = np.diff(offsets)
            spiking = np.flatnonzero(counts)
            if neurons is not None:
                spiking = np.intersect1d(spiking, neurons)
            if spiking.size == 0:
                continue  # a population with no spikes is absent
            buffer.append(("" if first_population else ",") + json.dumps(pop.label) + ":{")
            first_population = False
            first_neuron = True
            for i in spiking.tolist():
                train = pop_times[offsets[i] : offsets[i + 1]].tolist()
                text = f'{"" if first_neuron else ","}"{i}":[{",".join(map(str, train))}]'
                first_neuron = False
                buffer.append(text)
                size += len(text)
                if size >= _JSON_CHUNK:
                    yield "".join(buffer)
                    buffer, size = [], 0
            buffer.append("}")
        buffer.append("}}")
        yield "".join(buffer)

    return Response(stream_with_context(generate()), mimetype="application/json")


@api.get("/v1/jobs/<job_id>/weights")
def get_weights(job_id: str):
    account = current_account()
    row, stored, network = _completed_result(account, job_id)
    weights = stored.weights()
    if weights is None:  # no learning: the final weights are the network's initial ones
        weights = _expanded_arrays(row["network_id"], network)["weight"]
    offsets = np.asarray(stored.connection_offsets()).tolist()

    def generate():
        yield '{"connections":['
        for c, (a, b) in enumerate(zip(offsets[:-1], offsets[1:], strict=True)):
            yield ("," if c else "") + "["
            for chunk in range(a, b, 1 << 16):
                part = np.asarray(weights[chunk : min(b, chunk + (1 << 16))]).tolist()
                yield ("," if chunk > a else "") + ",".join(map(str, part))
            yield "]"
        yield "]}"

    return Response(stream_with_context(generate()), mimetype="application/json")


@api.get("/v1/jobs/<job_id>/raster.png")
def get_raster(job_id: str):
    from neurofab.raster import write_raster
    from neurofab.results import RunResult

    svc = service()
    account = current_account()
    row, stored, network = _completed_result(account, job_id)
    directory = os.path.join(svc.settings.data_dir, "rasters")
    path = os.path.join(directory, f"{job_id}.png")
    if not os.path.exists(path):
        os.makedirs(directory, exist_ok=True)
        times, gids = stored.spikes()
        result = RunResult(
            timesteps=stored.timesteps,
            spike_times=times,
            spike_gids=gids,
            final_weights=np.zeros(0, np.int32),  # the plot shows spikes only
        )
        tmp = f"{path}.{os.getpid()}.{os.urandom(3).hex()}.tmp"
        with open(tmp, "wb") as f:
            write_raster(f, result, network.populations, title=f"{job_id} ({row['timesteps']} steps)")
        os.replace(tmp, path)
    return send_file(path, mimetype="image/png", max_age=3600)

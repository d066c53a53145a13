"""Every error code of the reference, with the body ``{"detail": ...}`` naming what is wrong."""

from __future__ import annotations

import json
import time

import pytest
import requests
from servicekit import ADMIN_TOKEN, quickstart_job, quickstart_network, unique_email


def _detail(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str) and body["detail"]
    return body["detail"]


@pytest.fixture
def net_id(http, key):
    r = http.post("/v1/networks", json=quickstart_network(), headers={"X-API-Key": key})
    assert r.status_code == 201
    return r.json()["network_id"]


# -- 400 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, words",
    [
        ("{not json", ["not valid JSON"]),
        ("", ["empty"]),
        ("[1, 2]", ["JSON object", "list"]),
        ('{"populations": NaN}', ["NaN"]),
        ("\xff\xfe", ["not valid JSON"]),
    ],
)
def test_400_malformed_bodies(http, key, body, words):
    r = http.post("/v1/networks", data=body.encode("latin-1"), headers={"X-API-Key": key})
    detail = _detail(r, 400)
    assert all(w in detail for w in words), detail


def test_400_names_the_field_and_the_value(http, key):
    doc = quickstart_network()
    doc["populations"][1]["params"]["leak"] = -4
    detail = _detail(http.post("/v1/networks", json=doc, headers={"X-API-Key": key}), 400)
    assert "populations[1].params.leak" in detail and "-4" in detail


def test_400_job_fields(http, key, net_id):
    h = {"X-API-Key": key}
    detail = _detail(http.post("/v1/jobs", json={"network_id": net_id}, headers=h), 400)
    assert "timesteps" in detail and "required" in detail
    job = {**quickstart_job(), "network_id": net_id}
    job["stimuli"][0]["population"] = "nope"
    detail = _detail(http.post("/v1/jobs", json=job, headers=h), 400)
    assert "stimuli[0].population" in detail and "nope" in detail
    detail = _detail(http.post("/v1/jobs", json={"timesteps": 10}, headers=h), 400)
    assert "network_id" in detail


def test_400_query_parameters(http, key, net_id):
    h = {"X-API-Key": key}
    job_id = http.post("/v1/jobs", json={**quickstart_job(), "network_id": net_id}, headers=h).json()[
        "job_id"
    ]
    assert "wait" in _detail(http.get(f"/v1/jobs/{job_id}?wait=31", headers=h), 400)
    assert "wait" in _detail(http.get(f"/v1/jobs/{job_id}?wait=soon", headers=h), 400)
    assert "wait" in _detail(http.get(f"/v1/jobs/{job_id}?wait=nan", headers=h), 400)
    http.get(f"/v1/jobs/{job_id}?wait=30", headers=h)
    assert "population" in _detail(http.get(f"/v1/jobs/{job_id}/spikes?population=x", headers=h), 400)
    detail = _detail(http.get(f"/v1/jobs/{job_id}/spikes?population=inhibitory&neurons=0-25", headers=h), 400)
    assert "0-25" in detail and "inhibitory" in detail
    assert "exactly one" in _detail(http.get(f"/v1/jobs/{job_id}/spikes?neurons=1", headers=h), 400)
    assert "start" in _detail(http.get(f"/v1/jobs/{job_id}/spikes?start=9&stop=3", headers=h), 400)
    assert "stop" in _detail(http.get(f"/v1/jobs/{job_id}/spikes?stop=1001", headers=h), 400)
    assert "limit" in _detail(http.get("/v1/jobs?limit=0", headers=h), 400)
    assert "status" in _detail(http.get("/v1/jobs?status=done", headers=h), 400)


def test_400_signup_fields(http):
    assert "email" in _detail(http.post("/v1/signup", json={"email": "not-an-email"}), 400)
    assert "email" in _detail(http.post("/v1/signup", json={}), 400)
    detail = _detail(http.post("/v1/signup", json={"email": unique_email(), "tier": "gold"}), 400)
    assert "tier" in detail and "gold" in detail
    assert "plan" in _detail(http.post("/v1/signup", json={"email": unique_email(), "plan": "x"}), 400)


# -- 401 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/networks"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/job_x"),
        ("GET", "/v1/jobs/job_x/spikes"),
        ("GET", "/v1/usage"),
        ("GET", "/v1/jobs"),
        ("DELETE", "/v1/jobs/job_x"),
        ("GET", "/v1/networks/net_x"),
    ],
)
def test_401_missing_or_unknown_key(http, method, path):
    assert "missing" in _detail(http.request(method, path, json={}), 401)
    assert "invalid" in _detail(
        http.request(method, path, json={}, headers={"X-API-Key": "cn_live_nope"}), 401
    )


def test_401_revoked_and_rotated_keys(service, http):
    email = unique_email("rotate")
    key = service.signup("free", email)
    assert http.get("/v1/usage", headers={"X-API-Key": key}).status_code == 200
    rotated = service.cli("accounts", "rotate-key", email)
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip()
    assert new_key.startswith("cn_live_") and new_key != key
    _detail(http.get("/v1/usage", headers={"X-API-Key": key}), 401)
    assert http.get("/v1/usage", headers={"X-API-Key": new_key}).status_code == 200
    assert service.cli("accounts", "revoke", email).returncode == 0
    _detail(http.get("/v1/usage", headers={"X-API-Key": new_key}), 401)


# -- 403 ------------------------------------------------------------------------------------


def test_403_neurons_over_the_tier(http, key):
    doc = {"populations": [{"label": "big", "size": 1025}]}
    detail = _detail(http.post("/v1/networks", json=doc, headers={"X-API-Key": key}), 403)
    assert "1025" in detail and "1024" in detail and "free" in detail


def test_403_synapses_over_the_tier_before_expanding(http, key):
    # 1024 x 1024 all-to-all is 1,048,576 synapses: exactly the free cap, accepted.
    ok = {"populations": [{"label": "a", "size": 1024}], "connections": [{"source": "a", "target": "a"}]}
    assert http.post("/v1/networks", json=ok, headers={"X-API-Key": key}).status_code == 201
    # Two such connections: over the cap, refused from the counts alone.
    over = {**ok, "connections": ok["connections"] * 2}
    detail = _detail(http.post("/v1/networks", json=over, headers={"X-API-Key": key}), 403)
    assert "2097152" in detail and "max_synapses" in detail
    # random_sparse is judged by its expected count.
    sparse = {
        "populations": [{"label": "a", "size": 1024}],
        "connections": [{"source": "a", "target": "a", "topology": "random_sparse", "p": 1.0}] * 2,
    }
    assert "expected" in _detail(http.post("/v1/networks", json=sparse, headers={"X-API-Key": key}), 403)


def test_403_timesteps_over_the_tier(http, key, net_id):
    job = {**quickstart_job(), "network_id": net_id, "timesteps": 1001}
    detail = _detail(http.post("/v1/jobs", json=job, headers={"X-API-Key": key}), 403)
    assert "1001" in detail and "1000" in detail and "max_timesteps" in detail


@pytest.mark.parametrize("tier", ["researcher", "startup", "enterprise"])
def test_403_paid_tier_without_approval_then_approved(service, http, tier):
    email = unique_email(tier)
    detail = _detail(http.post("/v1/signup", json={"email": email, "tier": tier}), 403)
    assert tier in detail
    detail = _detail(
        http.post("/v1/signup", json={"email": email, "tier": tier}, headers={"X-Admin-Token": "wrong"}), 403
    )
    assert tier in detail
    listed = service.cli("accounts", "requests")
    assert email in listed.stdout and tier in listed.stdout
    approved = service.cli("accounts", "approve", email)
    assert approved.returncode == 0, approved.stderr
    key = approved.stdout.strip()
    usage = http.get("/v1/usage", headers={"X-API-Key": key}).json()
    assert usage["tier"] == tier
    # With the operator's token the sign-up goes through directly.
    r = http.post(
        "/v1/signup", json={"email": unique_email(tier), "tier": tier}, headers={"X-Admin-Token": ADMIN_TOKEN}
    )
    assert r.status_code == 201 and r.json()["tier"] == tier


# -- 404 ------------------------------------------------------------------------------------


def test_404_unknown_ids(http, key):
    h = {"X-API-Key": key}
    assert "net_nope" in _detail(
        http.post("/v1/jobs", json={"network_id": "net_nope", "timesteps": 5}, headers=h), 404
    )
    for path in (
        "/v1/jobs/job_nope",
        "/v1/jobs/job_nope/spikes",
        "/v1/jobs/job_nope/weights",
        "/v1/jobs/job_nope/raster.png",
        "/v1/networks/net_nope",
        "/v1/networks/net_nope/synapses",
    ):
        assert "not found" in _detail(http.get(path, headers=h), 404)
    _detail(http.delete("/v1/jobs/job_nope", headers=h), 404)
    _detail(http.get("/v1/nothing-here"), 404)


def test_404_other_accounts_networks_and_jobs(http, service, net_id, key):
    h = {"X-API-Key": key}
    job_id = http.post("/v1/jobs", json={**quickstart_job(), "network_id": net_id}, headers=h).json()[
        "job_id"
    ]
    assert http.get(f"/v1/jobs/{job_id}?wait=30", headers=h).json()["status"] == "completed"
    other = {"X-API-Key": service.signup("free")}
    _detail(http.post("/v1/jobs", json={**quickstart_job(), "network_id": net_id}, headers=other), 404)
    for path in (
        f"/v1/jobs/{job_id}",
        f"/v1/jobs/{job_id}/spikes",
        f"/v1/jobs/{job_id}/weights",
        f"/v1/jobs/{job_id}/raster.png",
        f"/v1/networks/{net_id}",
        f"/v1/networks/{net_id}/synapses",
    ):
        _detail(http.get(path, headers=other), 404)
    _detail(http.delete(f"/v1/jobs/{job_id}", headers=other), 404)
    assert http.get("/v1/jobs", headers=other).json() == {"jobs": [], "next_cursor": None}
    assert http.get(f"/v1/jobs/{job_id}", headers=h).json()["status"] == "completed"  # untouched


# -- 405, 409, 413 --------------------------------------------------------------------------


def test_405_is_json(http):
    r = http.put("/v1/jobs")
    assert "not allowed" in _detail(r, 405)
    assert "POST" in r.headers["Allow"]


def test_409_email_registered(http):
    email = unique_email("twice")
    assert http.post("/v1/signup", json={"email": email}).status_code == 201
    assert email in _detail(http.post("/v1/signup", json={"email": email.upper()}), 409)


def test_409_results_of_an_unfinished_job_and_cancel_of_a_finished_one(http, service, net_id, key):
    h = {"X-API-Key": key}
    job_id = http.post("/v1/jobs", json={**quickstart_job(), "network_id": net_id}, headers=h).json()[
        "job_id"
    ]
    assert http.get(f"/v1/jobs/{job_id}?wait=30", headers=h).json()["status"] == "completed"
    assert "completed" in _detail(http.delete(f"/v1/jobs/{job_id}", headers=h), 409)


def test_413_oversized_body(tmp_path):
    from servicekit import RunningService

    small = RunningService(tmp_path / "small", workers=1, max_body_bytes=10_000).start()
    try:
        key = small.signup("free")
        doc = {"populations": [{"label": f"p{i}", "size": 1} for i in range(2000)]}
        r = requests.post(
            small.base_url + "/v1/networks",
            data=json.dumps(doc),
            timeout=30,
            headers={"X-API-Key": key, "Content-Type": "application/json"},
        )
        assert "10000 bytes" in _detail(r, 413)

        def chunks():  # no Content-Length: the limit holds for a streamed body too
            for _ in range(100):
                yield b"x" * 1000

        r = requests.post(
            small.base_url + "/v1/networks", data=chunks(), timeout=30, headers={"X-API-Key": key}
        )
        _detail(r, 413)
    finally:
        small.stop()


# -- 429 ------------------------------------------------------------------------------------


def test_429_daily_limit_counts_only_accepted_jobs(http, key, net_id):
    h = {"X-API-Key": key}
    # Refused jobs do not count.
    for _ in range(3):
        assert (
            http.post("/v1/jobs", json={"network_id": net_id, "timesteps": 5000}, headers=h).status_code
            == 403
        )
        assert http.post("/v1/jobs", json={"network_id": net_id}, headers=h).status_code == 400
    for i in range(10):
        r = http.post("/v1/jobs", json={"network_id": net_id, "timesteps": 10}, headers=h)
        assert r.status_code == 202, (i, r.text)
    assert http.get("/v1/usage", headers=h).json()["jobs_today"] == 10
    r = http.post("/v1/jobs", json={"network_id": net_id, "timesteps": 10}, headers=h)
    detail = _detail(r, 429)
    assert "10 of 10" in detail
    seconds_to_midnight = 86400 - time.time() % 86400
    assert 0 < int(r.headers["Retry-After"]) <= seconds_to_midnight + 2
    usage = http.get("/v1/usage", headers=h).json()
    assert usage["jobs_today"] == 10 and usage["jobs_limit_today"] == 10

"""Accounts, keys and the operator's CLI; keys never stored in clear."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
import requests
from servicekit import unique_email

from neurofab.server.tiers import DEFAULT_TIERS, load_tiers


def _database_bytes(service) -> bytes:
    """Everything SQLite has on disk for the service: the file and its write-ahead log."""
    data = b""
    for suffix in ("", "-wal"):
        path = service.data_dir / f"neurofab.sqlite3{suffix}"
        if path.exists():
            data += path.read_bytes()
    return data


def test_keys_are_stored_only_as_hashes(service, http):
    email = unique_email("secret")
    key = service.signup("free", email)
    rotated = service.cli("accounts", "rotate-key", email).stdout.strip()
    created = service.cli("accounts", "create", unique_email("cli")).stdout.strip()
    for k in (key, rotated, created):
        assert http.get("/v1/usage", headers={"X-API-Key": k}).status_code in (200, 401)
    with service.db() as db:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    stored = _database_bytes(service)
    for k in (key, rotated, created):
        secret = k[len("cn_live_") :]
        assert k.encode() not in stored and secret.encode() not in stored
        assert secret[-20:].encode() not in stored  # no tail of it either
        assert hashlib.sha256(k.encode()).hexdigest().encode() in stored
    # The key is shown once: nothing in the API returns it again.
    assert key not in http.get("/v1/usage", headers={"X-API-Key": rotated}).text


def test_cli_create_list_set_tier(service, http):
    email = unique_email("ops")
    created = service.cli("accounts", "create", email, "--tier", "researcher")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("cn_live_") and "shown once" in created.stderr
    assert http.get("/v1/usage", headers={"X-API-Key": key}).json()["jobs_limit_today"] == 100
    listed = service.cli("accounts", "list").stdout
    line = next(row for row in listed.splitlines() if email in row)
    assert "researcher" in line and key[:14] in line and key not in listed
    assert service.cli("accounts", "set-tier", email, "startup").returncode == 0
    assert http.get("/v1/usage", headers={"X-API-Key": key}).json()["jobs_limit_today"] == 500
    bad = service.cli("accounts", "set-tier", email, "platinum")
    assert bad.returncode == 2 and "platinum" in bad.stderr
    missing = service.cli("accounts", "rotate-key", unique_email("nobody"))
    assert missing.returncode == 2 and "no account" in missing.stderr
    taken = service.cli("accounts", "create", email)
    assert taken.returncode == 2 and "already registered" in taken.stderr


def test_cli_admin_token_and_tiers(service):
    assert service.cli("accounts", "admin-token").stdout.strip() == service.env["NEUROFAB_ADMIN_TOKEN"]
    tiers = json.loads(service.cli("accounts", "tiers").stdout)
    assert tiers["free"]["jobs_per_day"] == 10 and tiers["enterprise"]["jobs_per_day"] is None
    assert tiers["startup"]["max_runtime_seconds"] == 1.0  # the test service's tiers.json


def test_signup_limits_follow_the_published_tiers(service):
    expected = {
        "free": (1024, 1000, 1_048_576, 10, 30),
        "researcher": (32768, 100_000, 33_554_432, 100, 300),
        "enterprise": (131072, 10_000_000, 268_435_456, None, 3600),
    }
    for tier, (neurons, steps, synapses, jobs, runtime) in expected.items():
        headers = {"X-Admin-Token": service.env["NEUROFAB_ADMIN_TOKEN"]}
        body = requests.post(
            service.base_url + "/v1/signup",
            json={"email": unique_email(), "tier": tier},
            headers=headers,
            timeout=30,
        ).json()
        assert body["limits"] == {
            "max_neurons": neurons,
            "max_timesteps": steps,
            "max_synapses": synapses,
            "max_jobs_per_day": jobs,
            "max_runtime_seconds": runtime,
        }


def test_default_tier_table():
    t = DEFAULT_TIERS
    assert (t["startup"].jobs_per_day, t["startup"].max_neurons, t["startup"].max_timesteps) == (
        500,
        131072,
        1_000_000,
    )
    assert (t["startup"].monthly_gbp, t["startup"].hourly_gbp, t["startup"].max_runtime_seconds) == (
        49,
        14.40,
        1800,
    )
    assert (t["enterprise"].monthly_gbp, t["enterprise"].hourly_gbp) == (199, 10.80)
    assert t["researcher"].cost_gbp(3600) == 18.0 and t["free"].cost_gbp(10_000) == 0.0
    assert [name for name, tier in t.items() if tier.open] == ["free"]


def test_tier_overrides_are_checked(tmp_path):
    (tmp_path / "tiers.json").write_text(
        json.dumps({"free": {"jobs_per_day": 20}, "researcher": {"open": True}})
    )
    tiers = load_tiers(str(tmp_path))
    assert tiers["free"].jobs_per_day == 20 and tiers["researcher"].open and tiers["free"].max_neurons == 1024
    with pytest.raises(ValueError, match="gold"):
        load_tiers(None, {"gold": {"jobs_per_day": 1}})
    with pytest.raises(ValueError, match="free.max_cores"):
        load_tiers(None, {"free": {"max_cores": 1}})
    with pytest.raises(ValueError, match="-1"):
        load_tiers(None, {"free": {"max_neurons": -1}})


def test_an_opened_paid_tier_needs_no_token(tmp_path):
    from neurofab.server import create_app

    app = create_app({"DATA_DIR": str(tmp_path), "TIERS": {"researcher": {"open": True}}})
    r = app.test_client().post("/v1/signup", json={"email": unique_email(), "tier": "researcher"})
    assert r.status_code == 201 and r.json["tier"] == "researcher"
    r = app.test_client().post("/v1/signup", json={"email": unique_email(), "tier": "startup"})
    assert r.status_code == 403 and "startup" in r.json["detail"]
    conn = sqlite3.connect(tmp_path / "neurofab.sqlite3")
    assert conn.execute("SELECT count(*) FROM tier_requests WHERE tier = 'startup'").fetchone()[0] == 1

"""Fixtures for the service tests: one real service per test session (per xdist worker).

The shared service has a 10 s lease (longer than any compile of the emulator's kernels,
during which a worker cannot heartbeat), and a tier table in
which the ``startup`` tier has a 1-second runtime limit: tests that need a job to
outrun its tier use a startup account, and no other test uses that tier.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servicekit import SHARED_TIERS, RunningService  # noqa: E402


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    running = RunningService(tmp_path_factory.mktemp("service"), tiers=SHARED_TIERS, lease_seconds=10).start()
    yield running
    running.stop()


@pytest.fixture
def base_url(service):
    return service.base_url


@pytest.fixture
def key(service):
    """A fresh free-tier account's API key."""
    return service.signup("free")


@pytest.fixture
def researcher_key(service):
    return service.signup("researcher")


@pytest.fixture
def http(service):
    """A requests session against the service (``http.get("/v1/...")``)."""

    class Http(requests.Session):
        def request(self, method, url, *args, **kwargs):
            kwargs.setdefault("timeout", 60)
            return super().request(method, service.base_url + url, *args, **kwargs)

    with Http() as session:
        yield session

"""Running the real service for tests: `neurofab serve` in a subprocess on a free port.

Tests talk to it over HTTP on 127.0.0.1 like any client; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

__all__ = [
    "ADMIN_TOKEN",
    "QUICKSTART",
    "RunningService",
    "free_port",
    "unique_email",
    "quickstart_network",
    "quickstart_job",
    "USAGE_ROUNDING",
]

ADMIN_TOKEN = "nf_admin_test-token"
#: the shared test service's tiers.json: the startup tier gets a 1-second runtime limit,
#: so tests can make a job outrun its tier (no other test uses that tier)
RUNTIME_LIMITED_TIER = "startup"
SHARED_TIERS = {RUNTIME_LIMITED_TIER: {"max_runtime_seconds": 1.0}}
#: GET /v1/usage reports compute seconds rounded to microseconds (accounts.usage), so a
#: job's unrounded compute_seconds matches it to half of that
USAGE_ROUNDING = 0.5e-6
QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.org"


def quickstart_network() -> dict:
    return json.loads((QUICKSTART / "network.json").read_text())


def quickstart_job() -> dict:
    return json.loads((QUICKSTART / "job.json").read_text())


class RunningService:
    """``neurofab serve`` with its own data directory; stop() ends it and its children."""

    def __init__(
        self,
        data_dir: Path,
        *,
        workers: int = 2,
        lease_seconds: float = 2.0,
        tiers: dict | None = None,
        http_workers: int = 2,
        threads: int = 16,
        max_body_bytes: int | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if tiers is not None:
            (self.data_dir / "tiers.json").write_text(json.dumps(tiers))
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ, NEUROFAB_LEASE_SECONDS=str(lease_seconds), NEUROFAB_ADMIN_TOKEN=ADMIN_TOKEN
        )
        if max_body_bytes is not None:
            self.env["NEUROFAB_MAX_BODY_BYTES"] = str(max_body_bytes)
        self.command = [
            sys.executable,
            "-m",
            "neurofab",
            "serve",
            "--port",
            str(self.port),
            "--data",
            str(self.data_dir),
            "--workers",
            str(workers),
            "--http-workers",
            str(http_workers),
            "--threads",
            str(threads),
        ]
        self.log_path = self.data_dir / "serve.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> RunningService:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited with {self.process.returncode}:\n{self.log()}")
            try:
                health = requests.get(self.base_url + "/health", timeout=2).json()
                if health["workers"] >= self.workers:
                    return
            except (requests.ConnectionError, requests.Timeout, ValueError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"service not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(40)
        except subprocess.TimeoutExpired:
            for pid in self.children():
                os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()
        self._log.close()

    def children(self) -> list[int]:
        """PIDs of the supervisor's children (gunicorn and the job workers)."""
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True
        )
        return [int(x) for x in out.stdout.split()]

    def db(self) -> sqlite3.Connection:
        """A read connection to the service's database (for checks tests cannot make over HTTP)."""
        conn = sqlite3.connect(self.data_dir / "neurofab.sqlite3", timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    def signup(self, tier: str = "free", email: str | None = None) -> str:
        headers = {"X-Admin-Token": ADMIN_TOKEN} if tier != "free" else {}
        r = requests.post(
            self.base_url + "/v1/signup",
            json={"email": email or unique_email(tier), "tier": tier},
            headers=headers,
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return r.json()["api_key"]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "neurofab", *args, "--data", str(self.data_dir)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )

"""The Catalyst Neuromorphic Cloud API client (also for NeuroFab's own service).

Needs only ``requests`` (it talks plain HTTP itself, :mod:`.http11`, and HTTPS and
proxies through ``urllib3``, which comes with requests). Every call returns the
decoded JSON body; an HTTP error raises :class:`CatalystCloudError` with the status
and the body's ``detail``.

Transient failures are retried with exponential backoff: connection errors, 429 and
5xx responses, honouring ``Retry-After`` (a 429 whose ``Retry-After`` is longer than
``max_retry_wait``, such as the daily job limit, is raised at once instead).
Submissions carry an ``Idempotency-Key``, so a retried ``POST`` never creates a
second network or job.
"""

from __future__ import annotations

import email.utils
import json as _json
import os
import random
import threading
import time
import urllib.parse
import uuid

import requests
import urllib3

from . import http11

__all__ = ["Client", "CatalystCloudError", "JobFailedError", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "http://localhost:8000"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TERMINAL = ("completed", "failed", "cancelled")
_LONG_POLL = 30.0


class CatalystCloudError(Exception):
    """The API answered with an error status (or a job ended badly)."""

    def __init__(self, status_code: int, detail: str):
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"HTTP {status_code}: {detail}")


class JobFailedError(CatalystCloudError):
    """:meth:`Client.simulate`'s job ended ``failed`` (500) or ``cancelled`` (409); ``job`` is its body."""

    def __init__(self, status_code: int, detail: str, job: dict):
        super().__init__(status_code, detail)
        self.job = job


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_from(response) -> CatalystCloudError:
    try:
        body = response.json()
        detail = body.get("detail", response.text) if isinstance(body, dict) else response.text
    except ValueError:
        detail = response.text or response.reason
    return CatalystCloudError(response.status_code, detail)


def _requests_error(error: Exception) -> requests.RequestException:
    """The ``requests`` exception for a urllib3 failure (what a ``requests.Session`` raises)."""
    x = urllib3.exceptions
    if isinstance(error, x.ConnectTimeoutError):
        return requests.ConnectTimeout(error)
    if isinstance(error, x.TimeoutError):
        return requests.ReadTimeout(error)
    if isinstance(error, x.ProxyError):
        return requests.exceptions.ProxyError(error)
    if isinstance(error, x.SSLError):
        return requests.exceptions.SSLError(error)
    return requests.ConnectionError(error)


class _Response:
    """What the SDK reads of a response (the subset of ``requests.Response`` it needs)."""

    __slots__ = ("status_code", "reason", "headers", "content")

    def __init__(self, raw):
        self.status_code = raw.status
        self.reason = raw.reason
        self.headers = raw.headers  # case-insensitive, like requests'
        self.content = raw.content if isinstance(raw, http11.Answer) else raw.data

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        try:
            return _json.loads(self.content)
        except _json.JSONDecodeError as e:  # the exception requests raises, for callers that catch it
            raise requests.JSONDecodeError(e.msg, e.doc, e.pos) from None


class _Transport:
    """Keep-alive connections with the retry policy.

    Plain ``http://`` without a proxy (a service on this machine or network) goes through
    :mod:`.http11`, one kept-alive socket per thread, with redirects followed here;
    HTTPS and proxies through one ``urllib3`` pool. Neither is a ``requests.Session``:
    requests' per-call machinery (hooks, cookie jars, adapters, prepared requests) cost
    a small call about as much CPU as the HTTP exchange itself, and urllib3's about half
    as much again. Behaviour callers see is the same: connection failures raise
    ``requests.ConnectionError``, timeouts ``requests.Timeout``, and a JSON body that
    does not parse ``requests.JSONDecodeError``. Proxies and the CA bundle are read from
    the environment once, here, as requests would on each call.
    """

    def __init__(
        self,
        base_url: str,
        timeout: float,
        headers: dict,
        max_retries: int,
        backoff: float,
        max_retry_wait: float,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_retry_wait = max_retry_wait
        self.headers = {"User-Agent": f"catalyst-cloud-python (urllib3/{urllib3.__version__})", **headers}
        tls = {}
        if self.base_url.startswith("https:"):
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if not bundle:
                import certifi  # requests' own CA bundle (certifi comes with requests)

                bundle = certifi.where()
            tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": bundle}
        proxy = requests.utils.get_environ_proxies(self.base_url).get(self.base_url.split(":", 1)[0])
        # One pool per client; a client shared by threads opens more connections than
        # maxsize rather than blocking, and keeps maxsize of them alive.
        if proxy:
            self.pool = urllib3.ProxyManager(proxy, num_pools=4, maxsize=8, **tls)
        else:
            self.pool = urllib3.PoolManager(num_pools=4, maxsize=8, **tls)
        base = urllib.parse.urlsplit(self.base_url)
        #: (host, port) served by the lean path: plain HTTP, no proxy
        self._plain = (base.hostname, base.port or 80) if base.scheme == "http" and not proxy else None
        self._plain_prefix = base.path
        self._local = threading.local()  # this thread's http11.Connection
        # No retries inside urllib3 (the loop below owns them); redirects are followed
        # as requests follows them.
        self._urllib3_retries = urllib3.Retry(
            total=None, connect=0, read=0, status=0, other=0, redirect=30, raise_on_redirect=False
        )

    def _plain_target(self, url: str) -> str | None:
        """The request target (path and query) if ``url`` is served by the lean path."""
        if self._plain is None:
            return None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or (parts.hostname, parts.port or 80) != self._plain:
            return None
        return (parts.path or "/") + ("?" + parts.query if parts.query else "")

    def _send(self, method: str, url: str, body, headers: dict, limits) -> _Response:
        """One exchange; urllib3's exceptions become the ``requests`` ones callers know."""
        target = self._plain_target(url)
        if target is not None:
            return self._send_plain(method, url, target, body, headers, limits)
        try:
            return _Response(
                self.pool.request(
                    method, url, body=body, headers=headers, timeout=limits, retries=self._urllib3_retries
                )
            )
        except urllib3.exceptions.MaxRetryError as e:  # connect=0/read=0: the first failure
            raise _requests_error(e.reason or e) from e
        except urllib3.exceptions.HTTPError as e:
            raise _requests_error(e) from e

    def _send_plain(self, method: str, url: str, target: str, body, headers: dict, limits) -> _Response:
        """One exchange on this thread's kept-alive connection, following redirects as
        requests does (a ``303``, and a ``301``/``302`` of a ``POST``, become a ``GET``);
        one leading elsewhere (another host, HTTPS) goes on through urllib3."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http11.Connection(*self._plain)
        for _ in range(31):
            answer = connection.request(method, target, headers, body, limits.read_timeout)
            location = answer.headers.get("Location")
            if answer.status not in _REDIRECTS or location is None:
                return _Response(answer)
            url = urllib.parse.urljoin(url, location)
            if answer.status == 303 and method != "HEAD" or answer.status in (301, 302) and method == "POST":
                method, body = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            target = self._plain_target(url)
            if target is None:
                return self._send(method, url, body, headers, limits)
        raise requests.TooManyRedirects(f"more than 30 redirects, the last to {url}")

    def request(
        self,
        method: str,
        path: str,
        *,
        json: dict | list | None = None,
        params: dict | None = None,
        headers: dict | None = None,
        timeout: float | None = None,
    ) -> _Response:
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        all_headers = dict(self.headers, **headers) if headers else self.headers
        body = None
        if json is not None:
            body = _json.dumps(json, allow_nan=False).encode()
            all_headers = dict(all_headers, **{"Content-Type": "application/json"})
        seconds = timeout or self.timeout
        limits = urllib3.Timeout(connect=seconds, read=seconds)
        attempt = 0
        while True:
            try:
                response = self._send(method, url, body, all_headers, limits)
            except (requests.ConnectionError, requests.Timeout):
                if attempt >= self.max_retries:
                    raise
                wait = None
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in _RETRY_STATUSES or attempt >= self.max_retries:
                    raise _error_from(response)
                wait = _retry_after(response)
                if wait is not None and wait > self.max_retry_wait:
                    raise _error_from(response)
            if wait is None:
                wait = min(30.0, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
            time.sleep(wait)
            attempt += 1


class Client:
    """A client for one account.

    ``base_url`` defaults to ``$CATALYST_API_URL``, else ``http://localhost:8000``.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 30,
        *,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_retry_wait: float = 60.0,
    ):
        self.api_key = api_key
        self.base_url = (base_url or os.environ.get("CATALYST_API_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self._transport = _Transport(
            self.base_url, timeout, {"X-API-Key": api_key}, max_retries, backoff, max_retry_wait
        )

    def _json(self, method: str, path: str, **kwargs):
        return self._transport.request(method, path, **kwargs).json()

    # -- accounts ----------------------------------------------------------------------

    @classmethod
    def signup(
        cls,
        email: str,
        tier: str = "free",
        base_url: str | None = None,
        *,
        admin_token: str | None = None,
        timeout: float = 30,
    ) -> dict:
        """Create an account: ``{"api_key", "tier", "limits"}``. The key is shown only now."""
        base = (base_url or os.environ.get("CATALYST_API_URL") or DEFAULT_BASE_URL).rstrip("/")
        headers = {"X-Admin-Token": admin_token} if admin_token else {}
        transport = _Transport(base, timeout, headers, max_retries=4, backoff=0.5, max_retry_wait=60.0)
        return transport.request("POST", "/v1/signup", json={"email": email, "tier": tier}).json()

    def usage(self) -> dict:
        """``jobs_today``, ``jobs_limit_today``, ``compute_seconds_this_month``, ``estimated_cost_gbp``."""
        return self._json("GET", "/v1/usage")

    def health(self) -> dict:
        return self._json("GET", "/health")

    # -- networks ----------------------------------------------------------------------

    def create_network(
        self, populations: list, connections: list | None = None, seed: int | None = None
    ) -> dict:
        """Store a network: ``{"network_id", "total_neurons", "populations", "connections", "seed"}``."""
        body = {"populations": populations, "connections": connections or []}
        if seed is not None:
            body["seed"] = seed
        return self._json("POST", "/v1/networks", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})

    def get_network(self, network_id: str) -> dict:
        """A stored network: definition (defaults filled in), seed and counts."""
        return self._json("GET", f"/v1/networks/{network_id}")

    def get_synapses(self, network_id: str, offset: int = 0, limit: int = 1000) -> dict:
        """One page of the expanded synapse list."""
        return self._json(
            "GET", f"/v1/networks/{network_id}/synapses", params={"offset": offset, "limit": limit}
        )

    def iter_synapses(self, network_id: str, page_size: int = 10_000):
        """Every synapse of the network, in synapse order, page by page."""
        offset = 0
        while offset is not None:
            page = self.get_synapses(network_id, offset, page_size)
            yield from page["synapses"]
            offset = page["next_offset"]

    # -- jobs ----------------------------------------------------------------------------

    def submit_job(
        self,
        network_id: str,
        timesteps: int,
        stimuli: list | None = None,
        learning: dict | None = None,
        rewards: list | None = None,
        seed: int | None = None,
        wait: float | None = None,
    ) -> dict:
        """Queue a job: ``{"job_id", "status": "queued"}``.

        With ``wait`` (at most 30 s; a NeuroFab extension that other services ignore)
        the service holds the request until the job ends or that much time passes and
        answers with the job as :meth:`get_job` shows it.
        """
        body = {
            "network_id": network_id,
            "timesteps": timesteps,
            "stimuli": stimuli or [],
            "rewards": rewards or [],
        }
        if learning:
            body["learning"] = learning
        if seed is not None:
            body["seed"] = seed
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        if not wait:
            return self._json("POST", "/v1/jobs", json=body, headers=headers)
        wait = min(float(wait), _LONG_POLL)
        return self._json(
            "POST",
            "/v1/jobs",
            json=body,
            headers=headers,
            params={"wait": f"{wait:g}"},
            timeout=self.timeout + wait,
        )

    def get_job(self, job_id: str, wait: float | None = None) -> dict:
        """The job's status (and, once completed, ``result`` and ``compute_seconds``).

        With ``wait`` (at most 30 s) the service holds the request until the job ends
        or that much time passes.
        """
        if not wait:
            return self._json("GET", f"/v1/jobs/{job_id}")
        wait = min(float(wait), _LONG_POLL)
        return self._json(
            "GET", f"/v1/jobs/{job_id}", params={"wait": f"{wait:g}"}, timeout=self.timeout + wait
        )

    def cancel_job(self, job_id: str) -> dict:
        """Cancel a queued or running job; returns it, ``status`` ``cancelled``."""
        return self._json("DELETE", f"/v1/jobs/{job_id}")

    def list_jobs(self, limit: int = 50, cursor: str | None = None, status: str | None = None) -> dict:
        """One page of this account's jobs, newest first: ``{"jobs", "next_cursor"}``."""
        params = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        if status is not None:
            params["status"] = status
        return self._json("GET", "/v1/jobs", params=params)

    def iter_jobs(self, status: str | None = None, page_size: int = 100):
        cursor = None
        while True:
            page = self.list_jobs(page_size, cursor, status)
            yield from page["jobs"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def get_spikes(
        self,
        job_id: str,
        population: str | list | None = None,
        neurons=None,
        start: int | None = None,
        stop: int | None = None,
    ) -> dict:
        """Spike trains: ``{"spike_trains": {population: {"index": [t, ...]}}}``, optionally filtered.

        ``population`` is a label or a list of labels; ``neurons`` (local indices, a
        list or a string like ``"0-9,20"``) needs exactly one population.
        """
        params = {}
        if population is not None:
            params["population"] = population if isinstance(population, str) else ",".join(population)
        if neurons is not None:
            params["neurons"] = (
                neurons if isinstance(neurons, str) else ",".join(str(int(n)) for n in neurons)
            )
        if start is not None:
            params["start"] = start
        if stop is not None:
            params["stop"] = stop
        return self._json("GET", f"/v1/jobs/{job_id}/spikes", params=params)

    def get_weights(self, job_id: str) -> dict:
        """Final weights: ``{"connections": [[w, ...], ...]}`` in synapse order."""
        return self._json("GET", f"/v1/jobs/{job_id}/weights")

    def get_raster(self, job_id: str) -> bytes:
        """The job's raster-plus-rate plot, PNG bytes."""
        return self._transport.request("GET", f"/v1/jobs/{job_id}/raster.png").content

    def simulate(
        self,
        network_id: str,
        timesteps: int,
        stimuli: list | None = None,
        learning: dict | None = None,
        rewards: list | None = None,
        seed: int | None = None,
        poll_interval: float = 0.5,
        max_wait: float = 300,
    ) -> dict:
        """Submit a job and wait for it; returns the completed job.

        Waits with the service's long poll (``?wait=``); a service that answers at
        once is polled every ``poll_interval`` seconds. Raises :class:`JobFailedError`
        if the job fails or is cancelled, ``TimeoutError`` after ``max_wait`` seconds.
        """
        deadline = time.monotonic() + max_wait
        asked = time.monotonic()
        wait = max(0.0, min(_LONG_POLL, max_wait))
        job = self.submit_job(network_id, timesteps, stimuli, learning, rewards, seed=seed, wait=wait or None)
        job_id = job["job_id"]
        while True:
            status = job["status"]
            if status == "completed":
                return job
            if status == "failed":
                raise JobFailedError(500, job.get("error_message") or "job failed", job)
            if status == "cancelled":
                raise JobFailedError(409, f"job {job_id} was cancelled", job)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} did not complete within {max_wait} s (status {status})")
            if time.monotonic() - asked < min(wait, poll_interval):  # the service did not hold the request
                time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))
            wait = max(0.0, min(_LONG_POLL, deadline - time.monotonic()))
            asked = time.monotonic()
            job = self.get_job(job_id, wait=wait or None)

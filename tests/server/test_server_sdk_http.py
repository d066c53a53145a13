"""The SDK's plain-HTTP path (catalyst_cloud.http11) against a server scripted byte by byte.

Each test hands the server the exact answers to write, per connection, and reads back
what arrived: requests in one piece, keep-alive, every way a body ends, redirects,
a kept connection the server dropped, and failures as requests' exceptions.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest
import requests

import catalyst_cloud as cc
from catalyst_cloud import http11


class RawServer:
    """Accepts connections; on each request (head + Content-Length body) writes the next
    scripted answer. An answer is bytes, or ``("close",)`` to close without answering, or
    ``("hang",)`` to never answer. ``closes_after``: close a connection after that many
    answers. Records ``(connection number, request head, body)``."""

    def __init__(self, answers, closes_after=None):
        self.answers = list(answers)
        self.closes_after = closes_after
        self.seen = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._threads = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn, number):
        f = conn.makefile("rb")
        answered = 0
        with conn:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = f.readline()
                    if not line:
                        return
                    head += line
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = f.read(length)
                self.seen.append((number, head.decode("latin-1"), body))
                answer = self.answers.pop(0)
                if answer == ("close",):
                    return
                if answer == ("hang",):
                    threading.Event().wait(5)
                    return
                conn.sendall(answer)
                answered += 1
                if self.closes_after is not None and answered >= self.closes_after:
                    return

    def close(self):
        self.sock.close()


def ok(body: dict, *headers: str, status: str = "200 OK", version: str = "HTTP/1.1") -> bytes:
    data = json.dumps(body).encode()
    lines = [f"{version} {status}", "Content-Type: application/json", f"Content-Length: {len(data)}"]
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def chunked(body: dict, sizes=(3, 1, 1000)) -> bytes:
    data = json.dumps(body).encode()
    out, i = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"], 0
    for size in sizes:
        piece = data[i : i + size]
        if piece:
            out.append(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
        i += size
    if data[i:]:
        out.append(b"%x\r\n%s\r\n" % (len(data) - i, data[i:]))
    out.append(b"0\r\nX-Trailer: yes\r\n\r\n")
    return b"".join(out)


@pytest.fixture
def serve():
    servers = []

    def make(answers, **kw):
        server = RawServer(answers, **kw)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_requests_go_in_one_piece_and_the_connection_is_kept(serve):
    server = serve([ok({"n": 1}), ok({"n": 2}), ok({"n": 3})])
    client = cc.Client("cn_live_k", base_url=server.url)
    assert client.create_network([{"label": "a", "size": 2}], seed=3) == {"n": 1}
    assert client.get_job("job_1") == {"n": 2}
    assert client.usage() == {"n": 3}
    assert server.connections == 1  # kept alive
    number, head, body = server.seen[0]
    lines = head.split("\r\n")
    assert lines[0] == "POST /v1/networks HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    assert headers["Host"] == f"127.0.0.1:{server.port}"
    assert headers["X-API-Key"] == "cn_live_k" and headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body) and json.loads(body)["seed"] == 3
    assert "Idempotency-Key" in headers
    assert server.seen[1][1].startswith("GET /v1/jobs/job_1 HTTP/1.1\r\n")
    assert "Content-Length" not in server.seen[1][1]  # no body on a GET


def test_a_base_url_path_prefixes_every_target(serve):
    server = serve([ok({"n": 1})])
    client = cc.Client("cn_live_k", base_url=server.url + "/api/")
    client.get_spikes("job_1", population="exc", start=2)
    assert server.seen[0][1].startswith("GET /api/v1/jobs/job_1/spikes?population=exc&start=2 HTTP/1.1\r\n")


def test_chunked_bodies_and_trailers_are_read_and_the_connection_reused(serve):
    big = {"spike_trains": {"exc": {str(i): list(range(i % 7)) for i in range(400)}}}
    server = serve([chunked(big), chunked({"n": 2}, sizes=(1,) * 8 + (100,))])
    client = cc.Client("cn_live_k", base_url=server.url)
    assert client.get_spikes("job_1") == big
    assert client.get_job("job_1") == {"n": 2}
    assert server.connections == 1


def test_http10_and_close_delimited_answers_end_the_connection(serve):
    body = json.dumps({"n": 1}).encode()
    close_delimited = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + body
    server = serve(
        [ok({"n": 0}, version="HTTP/1.0"), close_delimited, ok({"n": 2}, "Connection: close"), ok({"n": 3})],
        closes_after=1,
    )
    client = cc.Client("cn_live_k", base_url=server.url)
    assert [client.usage()["n"] for _ in range(4)] == [0, 1, 2, 3]
    assert server.connections == 4


def test_a_kept_connection_the_server_dropped_is_replaced_and_the_request_sent_once_more(serve):
    # the server closes after each answer without saying so (an idle timeout): the next
    # request finds the socket closed before use, or fails on it before any answer byte
    server = serve([ok({"n": 1}), ok({"n": 2}), ok({"n": 3})], closes_after=1)
    client = cc.Client("cn_live_k", base_url=server.url, max_retries=0)
    assert [client.usage()["n"] for _ in range(3)] == [1, 2, 3]
    assert server.connections == 3

    # and when the socket looks alive but the server drops the request unanswered
    server = serve([ok({"n": 1}), ("close",), ok({"n": 2})])
    connection = http11.Connection("127.0.0.1", server.port)
    assert json.loads(connection.request("GET", "/a", {}, None, 5).content) == {"n": 1}
    assert json.loads(connection.request("POST", "/b", {}, b"{}", 5).content) == {"n": 2}
    assert [s[0] for s in server.seen] == [1, 1, 2]  # sent again on a new connection


def test_a_fresh_connection_closed_unanswered_is_a_connection_error_not_a_resend(serve):
    server = serve([("close",)])
    client = cc.Client("cn_live_k", base_url=server.url, max_retries=0)
    with pytest.raises(requests.ConnectionError):
        client.usage()
    assert len(server.seen) == 1


def test_redirects_are_followed_as_requests_follows_them(serve):
    server = serve(
        [
            ok({}, "Location: /v1/jobs/job_9", status="303 See Other"),
            ok({"n": 1}),
            ok({}, "Location: /v1/other", status="307 Temporary Redirect"),
            ok({"n": 2}),
        ]
    )
    client = cc.Client("cn_live_k", base_url=server.url)
    assert client.submit_job("net_1", 5) == {"n": 1}
    assert server.seen[1][1].startswith("GET /v1/jobs/job_9 HTTP/1.1\r\n") and server.seen[1][2] == b""
    assert "Content-Type" not in server.seen[1][1]
    assert client.submit_job("net_1", 5) == {"n": 2}
    assert server.seen[3][1].startswith("POST /v1/other HTTP/1.1\r\n")  # 307 keeps the method and body
    assert json.loads(server.seen[3][2])["network_id"] == "net_1"


def test_a_redirect_to_another_origin_goes_on_through_urllib3(serve):
    other = serve([ok({"n": "elsewhere"})])
    server = serve([ok({}, f"Location: {other.url}/v1/usage", status="302 Found")])
    client = cc.Client("cn_live_k", base_url=server.url)
    assert client.usage() == {"n": "elsewhere"}
    assert other.seen[0][1].startswith("GET /v1/usage HTTP/1.1\r\n")


def test_error_answers_and_retry_after_reach_the_client(serve):
    server = serve([ok({"detail": "busy"}, "Retry-After: 0", status="503 Service Unavailable"), ok({"n": 1})])
    client = cc.Client("cn_live_k", base_url=server.url, backoff=0.01)
    assert client.usage() == {"n": 1}
    server = serve([ok({"detail": "job 'x' not found"}, status="404 NOT FOUND")])
    client = cc.Client("cn_live_k", base_url=server.url)
    with pytest.raises(cc.CatalystCloudError) as e:
        client.get_job("x")
    assert (e.value.status_code, e.value.detail) == (404, "job 'x' not found")


def test_cut_and_malformed_answers_are_connection_errors(serve):
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"n\":"
    bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    for answer in (cut, bad_chunk, b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"):
        server = serve([answer], closes_after=1)
        client = cc.Client("cn_live_k", base_url=server.url, max_retries=0)
        with pytest.raises(requests.ConnectionError):
            client.usage()


def test_timeouts_and_refused_connections_raise_requests_exceptions(serve):
    server = serve([("hang",)])
    client = cc.Client("cn_live_k", base_url=server.url, timeout=0.2, max_retries=0)
    with pytest.raises(requests.ReadTimeout):
        client.usage()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(requests.ConnectionError):
        cc.Client("cn_live_k", base_url=f"http://127.0.0.1:{port}", max_retries=0).usage()


def test_header_values_with_line_breaks_are_refused(serve):
    server = serve([ok({"n": 1})])
    client = cc.Client("cn_live_k\r\nX-Evil: 1", base_url=server.url, max_retries=0)
    with pytest.raises(ValueError, match="line break"):
        client.usage()
    assert server.seen == []


def test_threads_sharing_a_client_each_keep_their_own_connection(serve):
    server = serve([ok({"n": i}) for i in range(40)])
    client = cc.Client("cn_live_k", base_url=server.url)
    results = []

    def run():
        for _ in range(10):
            results.append(client.usage()["n"])

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(40)) and server.connections == 4

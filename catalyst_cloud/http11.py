"""A lean HTTP/1.1 exchange over one kept-alive socket: the SDK's path for plain ``http://``.

urllib3 (v2) spends about a quarter of a millisecond of Python on each small call, twice
the exchange below; a client that submits many small jobs (the service answers one in
about a millisecond) spent most of its CPU there. This module does exactly what the SDK
needs and no more:

- a request goes out in one write (head and body together, so no Nagle/delayed-ACK
  stall and one wake-up of the server instead of two);
- a response body is delimited by ``Content-Length``, ``Transfer-Encoding: chunked`` or
  the connection's close (HTTP/1.0 style), and the connection is kept for the next
  request unless either side said ``close``;
- a kept connection the server has closed meanwhile (its idle timeout) is noticed before
  reuse, or, if it fails before any byte of the answer, replaced once and the request
  sent again (the SDK's ``POST`` s carry an ``Idempotency-Key``, so this never submits
  twice);
- failures raise ``requests``' exceptions: ``ConnectTimeout``, ``ReadTimeout`` and
  ``ConnectionError``, as a ``requests.Session`` would.

It does not follow redirects (the caller does), decode compressed bodies (it asks for
none), speak TLS or go through proxies: the SDK uses urllib3 for those.
"""

from __future__ import annotations

import select
import socket

import requests
from requests.structures import CaseInsensitiveDict

__all__ = ["Connection", "Answer"]

#: longest status or header line read, and most header lines, before refusing the answer
_MAX_LINE = 65536
_MAX_HEADERS = 256


class Answer:
    """One response: ``status``, ``reason``, ``headers`` (case-insensitive) and ``content``."""

    __slots__ = ("status", "reason", "headers", "content")

    def __init__(self, status: int, reason: str, headers: CaseInsensitiveDict, content: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.content = content


class _Dropped(Exception):
    """A reused connection failed before any byte of the answer (the server had closed it)."""


class Connection:
    """A kept-alive HTTP/1.1 connection to ``host:port``; not thread-safe (one per thread)."""

    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port
        name = f"[{host}]" if ":" in host else host
        self.host_header = name if port == 80 else f"{name}:{port}"
        self._sock: socket.socket | None = None
        self._file = None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._file.close()
                self._sock.close()
            except OSError:
                pass
        self._sock = self._file = None

    def _connect(self, timeout: float) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except TimeoutError as e:
            raise requests.ConnectTimeout(f"connecting to {self.host_header}: {e}") from e
        except OSError as e:
            raise requests.ConnectionError(f"connecting to {self.host_header}: {e}") from e
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._file = sock, sock.makefile("rb", buffering=65536)

    def _usable(self) -> bool:
        """True if the kept socket has nothing to read: an idle server sent nothing, or it
        closed (EOF is readable) or broke the connection, and then it cannot be reused."""
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def request(self, method: str, target: str, headers: dict, body: bytes | None, timeout: float) -> Answer:
        """Send one request and read its whole answer.

        ``target`` is the path with its query; ``headers`` must not name ``Host`` or
        ``Content-Length`` (set here). Values with a line break are refused (``ValueError``).
        """
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {self.host_header}\r\n"]
        for name, value in headers.items():
            value = str(value)
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
                raise ValueError(f"invalid HTTP header {name!r}: it contains a line break")
            lines.append(f"{name}: {value}\r\n")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}\r\n")
        lines.append("\r\n")
        message = "".join(lines).encode("latin-1") + (body or b"")
        reused = self._sock is not None
        if reused and not self._usable():
            self.close()
            reused = False
        try:
            return self._exchange(message, method, timeout, reused)
        except _Dropped:
            self.close()
            return self._exchange(message, method, timeout, reused=False)

    def _exchange(self, message: bytes, method: str, timeout: float, reused: bool) -> Answer:
        if self._sock is None:
            self._connect(timeout)
        self._sock.settimeout(timeout)
        started = False  # any byte of the answer read
        try:
            self._sock.sendall(message)
            status_line = self._file.readline(_MAX_LINE + 1)
            if not status_line:
                raise ConnectionResetError("the server closed the connection without answering")
            started = True
            return self._read_answer(status_line, method)
        except TimeoutError as e:
            self.close()
            raise requests.ReadTimeout(f"{self.host_header}: no answer within {timeout} s") from e
        except (requests.ConnectionError, ValueError):
            self.close()
            raise
        except OSError as e:
            self.close()
            if reused and not started:
                raise _Dropped() from e
            raise requests.ConnectionError(f"{self.host_header}: {e}") from e

    def _read_answer(self, status_line: bytes, method: str) -> Answer:
        f = self._file
        version, _, rest = status_line.decode("latin-1").rstrip("\r\n").partition(" ")
        status, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/") or not status.isdigit() or len(status_line) > _MAX_LINE:
            raise requests.ConnectionError(f"{self.host_header}: not an HTTP answer: {status_line[:80]!r}")
        status = int(status)
        headers = CaseInsensitiveDict()
        for _ in range(_MAX_HEADERS + 1):
            line = f.readline(_MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                break
            if not line or len(line) > _MAX_LINE:
                raise requests.ConnectionError(f"{self.host_header}: the answer's headers were cut short")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise requests.ConnectionError(f"{self.host_header}: a malformed header line {line[:80]!r}")
            name, value = name.strip(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        else:
            raise requests.ConnectionError(f"{self.host_header}: more than {_MAX_HEADERS} header lines")
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            return self._read_answer(f.readline(_MAX_LINE + 1), method)
        connection = headers.get("Connection", "").lower()
        keep = ("keep-alive" in connection) if version == "HTTP/1.0" else ("close" not in connection)
        if method == "HEAD" or status in (204, 304):
            content = b""
        elif "chunked" in headers.get("Transfer-Encoding", "").lower():
            content = self._read_chunked()
        elif "Content-Length" in headers:
            try:
                length = int(headers["Content-Length"])
            except ValueError:
                raise requests.ConnectionError(
                    f"{self.host_header}: a bad Content-Length {headers['Content-Length']!r}"
                ) from None
            content = f.read(length)
            if len(content) != length:
                raise requests.ConnectionError(
                    f"{self.host_header}: the answer ended after {len(content)} of {length} bytes"
                )
        else:  # delimited by the server closing the connection
            content, keep = f.read(), False
        if not keep:
            self.close()
        return Answer(status, reason, headers, content)

    def _read_chunked(self) -> bytes:
        f, parts = self._file, []
        while True:
            line = f.readline(_MAX_LINE + 1)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise requests.ConnectionError(
                    f"{self.host_header}: a bad chunk size {line[:80]!r}"
                ) from None
            if size == 0:
                break
            chunk = f.read(size)
            if len(chunk) != size or f.read(2) != b"\r\n":
                raise requests.ConnectionError(f"{self.host_header}: a chunked answer was cut short")
            parts.append(chunk)
        while True:  # trailers, up to the empty line
            line = f.readline(_MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise requests.ConnectionError(f"{self.host_header}: a chunked answer was cut short")
        return b"".join(parts)

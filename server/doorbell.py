"""Wake-ups between the service's processes: a named pipe per listening process.

A job worker waits for new jobs and a web process's long polls wait for jobs to end.
Rather than polling the database every millisecond (which costs CPU all the time and,
on a small machine, slows the very jobs being waited for), each listening process
owns a FIFO in ``DATA/run/``, named ``<kind>-<pid>-<random>.fifo``, and sleeps in
``select`` on it; a process that changes something others wait for writes one byte
to every FIFO of that kind (:func:`ring`):

- ``worker``: a job was queued (or handed back to the queue);
- ``web``: a job ended (completed, failed or cancelled).

A ring is a hint, never the only signal: listeners still look at the database after
a timeout (a process on another machine sharing the data directory cannot ring), and
always look at the database itself after waking, so a lost or spurious ring costs
latency at worst, never correctness. A FIFO whose process died (nobody reads it any
more) is removed by the next ring that finds it so.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import select
import threading
import time

__all__ = ["Doorbell", "ring", "POLL_FALLBACK"]

log = logging.getLogger("neurofab.server.doorbell")

_RUN = "run"
#: how often a process without a doorbell looks at the database instead
POLL_FALLBACK = 0.005


class Doorbell:
    """This process's FIFO of one ``kind``: :meth:`wait` sleeps until someone rings."""

    def __init__(self, data_dir: str, kind: str):
        directory = os.path.join(data_dir, _RUN)
        self.path = os.path.join(directory, f"{kind}-{os.getpid()}-{os.urandom(3).hex()}.fifo")
        self._fd = -1
        try:
            os.makedirs(directory, exist_ok=True)
            os.mkfifo(self.path, 0o600)
            # Read-write, so the FIFO always has a writer (this process) and never reads
            # as closed; non-blocking, so draining it never waits.
            self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        except OSError as e:  # a file system without FIFOs: poll instead
            log.warning("no doorbell at %s (%s); polling every %g s instead", self.path, e, POLL_FALLBACK)
            self.path = None
        atexit.register(self.close)

    def wait(self, timeout: float) -> bool:
        """Sleep until rung or ``timeout`` seconds pass; true if rung. Clears the rings.

        Without a FIFO (see above) it sleeps :data:`POLL_FALLBACK` at most and says "rung",
        so that the caller looks at the database as it used to, by polling.
        """
        if self._fd < 0:
            time.sleep(max(0.0, min(timeout, POLL_FALLBACK)))
            return True
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            while os.read(self._fd, 4096):
                pass
        except BlockingIOError:
            pass
        return True

    def ring(self) -> None:
        """Wake this process's own waiter (from a signal handler or another thread)."""
        try:
            os.write(self._fd, b"\1")
        except (BlockingIOError, OSError):  # full: it is already rung; closed: nobody waits
            pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            _remove(self.path)


class _Ringer:
    """Write ends of the FIFOs of one data directory, kept open between rings."""

    def __init__(self, data_dir: str):
        self.directory = os.path.join(data_dir, _RUN)
        self._lock = threading.Lock()
        self._mtime = None
        self._names: list[str] = []
        self._fds: dict[str, int] = {}

    def _listing(self) -> list[str]:
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return []
        if mtime != self._mtime:  # someone started or stopped listening: list again
            self._mtime = mtime
            self._names = [n for n in os.listdir(self.directory) if n.endswith(".fifo")]
        return self._names

    def ring(self, kind: str) -> None:
        prefix = kind + "-"
        with self._lock:
            for name in self._listing():
                if name.startswith(prefix):
                    self._ring_one(name)

    def _ring_one(self, name: str) -> None:
        path = os.path.join(self.directory, name)
        fd = self._fds.get(name)
        if fd is None:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno == errno.ENXIO:  # nobody reads it: its process died
                    _remove(path)
                return
            self._fds[name] = fd
        try:
            os.write(fd, b"\1")
        except BlockingIOError:  # full: rung already
            pass
        except OSError:  # EPIPE: its reader is gone
            os.close(self._fds.pop(name))
            _remove(path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_ringers: dict[tuple[int, str], _Ringer] = {}
_ringers_lock = threading.Lock()


def ring(data_dir: str, kind: str) -> None:
    """Wake every process listening for ``kind`` on this data directory. Never raises."""
    key = (os.getpid(), data_dir)  # write ends are not shared across a fork
    ringer = _ringers.get(key)
    if ringer is None:
        with _ringers_lock:
            ringer = _ringers.setdefault(key, _Ringer(data_dir))
    try:
        ringer.ring(kind)
    except OSError:  # a hint only: the listeners' timeouts cover a failed ring
        pass

"""The service end to end against the bare emulator, in the same run on the same machine.

Usage::

    .venv/bin/python bench/server.py                 # starts `neurofab serve` itself
    .venv/bin/python bench/server.py --quick         # fewer jobs (a smoke run)

It starts the production service (the granian WSGI server and ``--workers`` job workers) on a free
loopback port with a fresh data directory, then measures:

1. **Small-job throughput.** The API reference's quickstart job (125 neurons, 1,000
   steps) through the SDK's ``Client.simulate`` (submit and long poll), completed jobs
   per second with 1, 4 and 16 concurrent clients (threads, one ``Client`` each),
   against the bare emulator running the same job back to back in this process
   (``parse_job`` + ``bind_job`` + ``simulate`` + ``result_document`` on an expanded
   network, i.e. what the service must do per job, minus everything a service adds).
   The target's figure, 16 clients, is measured in turns: each turn runs the bare
   emulator (400 jobs) and the service (400 jobs), in alternating order, back to back
   from a settled machine (:func:`settle`), and the ratio reported is the median of the
   turns' ratios, so that a burst of load elsewhere on a shared machine does not decide
   it. A turn counts only if other people's processes kept under a quarter of a core
   busy meanwhile (:func:`foreign_load`, from ``/proc``): the bare emulator uses one
   core and the service both, so a core taken by someone else halves the service and
   spares the bare emulator, and such a turn measures the other load, not the service.
   Turns go on until ``--turns`` of them were quiet (at most three times as many in
   all); with fewer than three quiet turns, all are judged and the result says so.
   Every turn's ratio and the other load during it are printed.
2. **Submit latency.** p50 and p99 of ``POST /v1/jobs`` (``submit_job``, no wait) with
   16 clients, each submitting and then waiting for its job.
3. **A large job.** 16,384 neurons x 1,000 steps (the E/I network of
   bench/emulator.py) on a researcher account: wall time from ``create_network`` to the
   completed job (a worker parses and expands the network as it is created, while the
   client submits the job, then runs the job and stores the result), against the
   bare emulator doing the same (``parse_network`` + ``expand`` + ``simulate`` +
   ``result_document``). Both sides are warmed up first (JIT compilation) and take
   turns ``--repeats`` times, in alternating order, back to back from a settled
   machine; the ratio reported is the median of the per-turn ratios (service / bare).
   Each side's median and range are printed too. For comparison only, after each
   turn the bare emulator also runs in a process of its own with the job workers'
   allocator settings (``worker.keep_freed_memory``), which a plain script lacks: the
   service's time against it says how much of the service's standing comes from those
   settings rather than from the work.

Settled (:func:`settle`) means the previous measurement's processes have gone quiet:
the service's database files are flushed to disk, the service's processes use almost
no CPU for two quarter-second windows (their SQLite checkpointers, which run every
second, have written the last phase's commits back), and, before each turn (not
between its two sides, which should see the same machine), that the machine is quiet
(waited for at most 5 s: others' work on a shared machine can outlast any wait; the
machine's busy cores when each measurement began are printed, with the load average
at the start).

With each throughput figure goes the CPU time per job of the bench's clients (this
process), the HTTP server (``http``: granian's processes) and the job workers (from
``/proc``; Linux only), which says where a job's cost lies; the bare emulator's is the
inverse of its rate.

Targets (printed with the figures): service throughput at 16 clients >= 0.5 x the bare
emulator's; large job within 10% of the bare emulator; p99 submit latency < 50 ms.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import catalyst_cloud as cc  # noqa: E402
from neurofab.emulator import simulate  # noqa: E402
from neurofab.job import bind_job, parse_job  # noqa: E402
from neurofab.network import expand, parse_network  # noqa: E402
from neurofab.results import result_document  # noqa: E402
from neurofab.server.supervisor import process_role  # noqa: E402

__all__ = ["main"]

ADMIN_TOKEN = "nf_admin_bench-" + uuid.uuid4().hex
QUICKSTART_NETWORK = json.loads((ROOT / "examples/quickstart/network.json").read_text())
QUICKSTART_JOB = json.loads((ROOT / "examples/quickstart/job.json").read_text())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """``neurofab serve`` in a subprocess, stopped with SIGTERM."""

    def __init__(self, workers: int, http_workers: int, threads: int):
        self.data = tempfile.mkdtemp(prefix="neurofab-bench-")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        env = dict(os.environ, NEUROFAB_ADMIN_TOKEN=ADMIN_TOKEN)
        self.log = open(os.path.join(self.data, "serve.log"), "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "neurofab",
                "serve",
                "--port",
                str(self.port),
                "--data",
                self.data,
                "--workers",
                str(workers),
                "--http-workers",
                str(http_workers),
                "--threads",
                str(threads),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 180.0) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the service exited ({self.process.returncode}); see {self.data}/serve.log"
                )
            try:
                if requests.get(self.url + "/health", timeout=2).json()["workers"] >= self.workers:
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.2)
        raise TimeoutError("the service did not become ready")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)


def _signup(url: str, tier: str) -> str:
    return cc.Client.signup(
        f"bench-{uuid.uuid4().hex[:10]}@example.org", tier, base_url=url, admin_token=ADMIN_TOKEN
    )["api_key"]


def _process_tree(pid: int) -> dict[int, str]:
    """``{pid: role}`` of a process and its descendants (Linux ``/proc``; empty elsewhere)."""
    tree = {}
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return tree
    tree[pid] = process_role(cmdline)
    for child in children:
        tree.update(_process_tree(int(child)))
    return tree


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_job(service_pid: int, run) -> dict[str, float]:
    """Milliseconds of CPU per job spent by the bench's clients, the HTTP server and the job workers
    while ``run()`` (which returns the number of jobs) runs."""
    tree = _process_tree(service_pid)
    before = {pid: _cpu_seconds(pid) for pid in tree}
    mine = time.process_time()
    jobs = run()
    spent = {"client": time.process_time() - mine, "http": 0.0, "worker": 0.0}
    for pid, role in tree.items():
        if role in spent:
            spent[role] += _cpu_seconds(pid) - before[pid]
    return {role: 1e3 * seconds / jobs for role, seconds in spent.items()}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- the bare emulator -----------------------------------------------------------------------


_BARE_NETWORK = []


def bare_small_jobs(n_jobs: int, warm_up: int = 20) -> float:
    """Quickstart jobs per second, back to back, on an already expanded network.

    The network is parsed and expanded once per bench run (as the service's workers
    and web processes keep it, keyed by network id); every job is parsed, bound, run and
    its result document encoded, as the service must.
    """
    if not _BARE_NETWORK:
        network = parse_network(QUICKSTART_NETWORK)
        _BARE_NETWORK.append((network, expand(network)))
    network, netlist = _BARE_NETWORK[0]
    for _ in range(warm_up):  # JIT compilation, caches
        simulate(netlist, parse_job(QUICKSTART_JOB))
    started = time.perf_counter()
    for _ in range(n_jobs):
        job = parse_job(QUICKSTART_JOB)
        bind_job(job, network.populations)
        json.dumps(result_document(simulate(netlist, job), network.populations))
    return n_jobs / (time.perf_counter() - started)


def bare_large_job(network_doc: dict, job_doc: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    network = parse_network(network_doc)
    job = parse_job(job_doc)
    bind_job(job, network.populations)
    result = simulate(expand(network), job)
    document = result_document(result, network.populations)
    json.dumps(document)
    return time.perf_counter() - started, document["result"]


class KeptMemoryBare:
    """The bare emulator in a process of its own with the job workers' allocator settings
    (``worker.keep_freed_memory``), for comparison only: it says how much of the service's
    time against the bare emulator comes from those settings rather than from the work.

    ``run()`` has it run the large job once and returns the seconds it took.
    """

    def __init__(self, neurons: int, steps: int):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--kept-memory-bare", str(neurons), str(steps)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self) -> float:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(60)

    @staticmethod
    def serve(neurons: int, steps: int) -> int:
        """The child's side: run the job once per line read, print the seconds each took."""
        from emulator import job_document, network_document
        from neurofab.server.worker import keep_freed_memory

        keep_freed_memory()
        network_doc, job_doc = network_document(neurons), job_document(neurons, steps)
        bare_large_job(network_doc, job_doc)  # JIT compilation
        print(flush=True)  # ready
        for _ in sys.stdin:
            print(bare_large_job(network_doc, job_doc)[0], flush=True)
        return 0


# -- the service -------------------------------------------------------------------------------


def service_throughput(url: str, key: str, network_id: str, clients: int, n_jobs: int) -> float:
    """Completed quickstart jobs per second with ``clients`` concurrent SDK clients (threads)."""
    remaining = [n_jobs]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client_loop():
        client = cc.Client(key, base_url=url)
        try:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                job = client.simulate(network_id, QUICKSTART_JOB["timesteps"], QUICKSTART_JOB["stimuli"])
                assert job["status"] == "completed", job
        except BaseException as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return n_jobs / elapsed


def submit_latencies(url: str, key: str, network_id: str, clients: int, n_jobs: int) -> list[float]:
    """Seconds each ``POST /v1/jobs`` took, with ``clients`` clients submitting and waiting."""
    latencies: list[float] = []
    remaining = [n_jobs]
    lock = threading.Lock()

    def client_loop():
        client = cc.Client(key, base_url=url)
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            began = time.perf_counter()
            job_id = client.submit_job(network_id, QUICKSTART_JOB["timesteps"], QUICKSTART_JOB["stimuli"])[
                "job_id"
            ]
            took = time.perf_counter() - began
            with lock:
                latencies.append(took)
            while client.get_job(job_id, wait=30)["status"] not in ("completed", "failed", "cancelled"):
                pass

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def service_large_job(url: str, key: str, network_doc: dict, job_doc: dict) -> tuple[float, dict]:
    client = cc.Client(key, base_url=url, timeout=120)
    started = time.perf_counter()
    net = client.create_network(
        network_doc["populations"], network_doc["connections"], seed=network_doc["seed"]
    )
    job = client.simulate(
        net["network_id"], job_doc["timesteps"], job_doc["stimuli"], seed=job_doc["seed"], max_wait=600
    )
    return time.perf_counter() - started, job["result"]


# -- a quiet start for every measurement -----------------------------------------------------


def _machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (``/proc/stat``)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _flush(data_dir: str) -> None:
    """Write the service's database files out now, so that the kernel's writeback of one
    phase's commits does not land in the next phase's measurement."""
    for name in ("neurofab.sqlite3", "neurofab.sqlite3-wal"):
        try:
            fd = os.open(os.path.join(data_dir, name), os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def settle(
    service: Service, *, window: float = 0.25, idle_cpu: float = 0.02, machine_wait: float = 5.0
) -> float:
    """Wait until the previous measurement's work has settled; returns the machine's busy cores then.

    Settled means: the service's processes (HTTP server, job workers) used under
    ``idle_cpu`` of a core over two windows in a row after the database files were
    flushed (their SQLite checkpointers run every second, so this also waits out the
    checkpoint of the last phase's commits); then, for at most ``machine_wait``
    seconds, that the machine as a whole is quiet (under :data:`QUIET_FOREIGN_CORES`
    busy; other people's work on a shared machine can only be waited for so long: the
    figure returned says how busy it was when the measurement began).
    """
    _flush(service.data)
    pids = list(_process_tree(service.process.pid))
    quiet_windows, busy, machine_deadline = 0, 0.0, None
    for _ in range(int(60 / window)):  # the service never goes quiet: measure anyway after a minute
        tree_before = sum(_cpu_seconds(pid) for pid in pids)
        machine_before = _machine_busy_seconds()
        time.sleep(window)
        tree = sum(_cpu_seconds(pid) for pid in pids) - tree_before
        busy = (_machine_busy_seconds() - machine_before) / window
        quiet_windows = quiet_windows + 1 if tree < idle_cpu * window else 0
        if quiet_windows < 2:
            continue
        machine_deadline = machine_deadline or time.monotonic() + machine_wait
        if busy <= QUIET_FOREIGN_CORES or time.monotonic() >= machine_deadline:
            break
    return busy


#: Other people's processes may keep this many cores busy during a turn that counts.
QUIET_FOREIGN_CORES = 0.25


def foreign_load(service_pid: int, run):
    """``(run(), cores kept busy by processes other than this one and the service's)``."""
    pids = list(_process_tree(service_pid))
    own_before = time.process_time() + sum(_cpu_seconds(pid) for pid in pids)
    machine_before = _machine_busy_seconds()
    began = time.perf_counter()
    value = run()
    wall = time.perf_counter() - began
    own = time.process_time() + sum(_cpu_seconds(pid) for pid in pids) - own_before
    return value, max(0.0, (_machine_busy_seconds() - machine_before - own) / wall)


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f} .. {max(values):.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="job workers of the service (default 2)")
    parser.add_argument("--http-workers", type=int, default=2, help="HTTP server processes (default 2)")
    parser.add_argument(
        "--threads", type=int, default=32, help="WSGI threads per HTTP server process (default 32)"
    )
    parser.add_argument("--neurons", type=int, default=16_384, help="size of the large job (default 16384)")
    parser.add_argument("--steps", type=int, default=1_000, help="steps of the large job (default 1000)")
    parser.add_argument("--repeats", type=int, default=15, help="turns of the large job (default 15)")
    parser.add_argument(
        "--turns", type=int, default=9, help="turns of bare vs service small-job throughput (default 9)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer jobs: a smoke run")
    args = parser.parse_args(argv)
    # The clients are threads of this process: let one whose response arrived take the
    # interpreter lock promptly (the default 5 ms switch interval would throttle them).
    sys.setswitchinterval(0.0005)
    scale = 0.25 if args.quick else 1.0
    jobs_at = {1: int(200 * scale), 4: int(400 * scale)}
    # a turn's two sides take about half a second each, so that both see much the same
    # machine (a burst of other people's work rarely covers one side and spares the other)
    bare_jobs, turn_jobs = int(400 * scale), int(400 * scale)

    from emulator import job_document, network_document  # bench/emulator.py: the same E/I network

    large_network = network_document(args.neurons)
    large_job = job_document(args.neurons, args.steps)
    load_at_start = os.getloadavg()[0]

    service = Service(args.workers, args.http_workers, args.threads)
    try:
        service.wait_ready()
        url = service.url
        small_key = _signup(url, "enterprise")  # no daily limit
        client = cc.Client(small_key, base_url=url)
        net = client.create_network(
            QUICKSTART_NETWORK["populations"],
            QUICKSTART_NETWORK["connections"],
            seed=QUICKSTART_NETWORK["seed"],
        )
        network_id = net["network_id"]
        # warm-up: JIT compilation and caches on both sides
        bare_small_jobs(50)
        service_throughput(url, small_key, network_id, 4, 40)

        # 1. Throughput. 1 and 4 clients once each (reported); then the target's figure,
        # 16 clients, in turns against the bare emulator running the same jobs: each
        # turn measures both sides (in alternating order) from a settled machine, and
        # the ratio is the median of the turns' ratios.
        rates, cpu, busy_at, turn_busy = {}, {}, {}, []
        for clients in (1, 4):
            busy_at[clients] = settle(service)
            print(f"service: {jobs_at[clients]} jobs with {clients} client(s) ...", file=sys.stderr)

            def run(clients=clients):
                rates[clients] = service_throughput(url, small_key, network_id, clients, jobs_at[clients])
                return jobs_at[clients]

            cpu[clients] = cpu_per_job(service.process.pid, run)
        # A turn counts when other people's processes kept under QUIET_FOREIGN_CORES busy
        # on both sides: the bare emulator uses one core and the service both, so one
        # core taken by someone else halves the service and spares the bare emulator,
        # and such a turn measures the other load, not the service. Turns go on until
        # --turns quiet ones (at most 3 x --turns in all); with fewer than 3 quiet turns
        # every turn is judged, and the line says so.
        turns = []  # (bare rate, service rate, foreign cores, cpu per job)
        while len(turns) < 3 * args.turns and sum(t[2] <= QUIET_FOREIGN_CORES for t in turns) < args.turns:
            print(
                f"turn {len(turns) + 1}: bare emulator {bare_jobs} jobs, "
                f"service {turn_jobs} jobs with 16 clients ...",
                file=sys.stderr,
            )
            measured, foreign = {}, []
            order = ("bare", "service") if len(turns) % 2 == 0 else ("service", "bare")
            for i, side in enumerate(order):
                # the machine is waited for before a turn, not between its sides
                turn_busy.append(settle(service, machine_wait=5.0 if i == 0 else 0.0))
                if side == "bare":
                    measured["bare"], others = foreign_load(
                        service.process.pid, lambda: bare_small_jobs(bare_jobs, warm_up=0)
                    )
                else:

                    def run(measured=measured):
                        measured["service"] = service_throughput(url, small_key, network_id, 16, turn_jobs)
                        return turn_jobs

                    measured["cpu"], others = foreign_load(
                        service.process.pid, lambda run=run: cpu_per_job(service.process.pid, run)
                    )
                foreign.append(others)
            turns.append((measured["bare"], measured["service"], max(foreign), measured["cpu"]))
        quiet_turns = [t for t in turns if t[2] <= QUIET_FOREIGN_CORES]
        judged = quiet_turns if len(quiet_turns) >= 3 else turns
        bare_rates = [t[0] for t in judged]
        service_rates = [t[1] for t in judged]
        turn_ratios = [t[1] / t[0] for t in judged]
        bare_rate = statistics.median(bare_rates)
        rates[16] = statistics.median(service_rates)
        cpu[16] = {role: statistics.median(t[3][role] for t in judged) for role in judged[0][3]}
        ratio_small = statistics.median(turn_ratios)

        # 2. Submit latency.
        busy_latency = settle(service)
        print("service: submit latency with 16 clients ...", file=sys.stderr)
        latencies = submit_latencies(url, small_key, network_id, 16, int(800 * scale))

        # 3. The large job.
        print(f"large job: {args.neurons} neurons x {args.steps} steps ...", file=sys.stderr)
        big_key = _signup(url, "researcher")
        # Warm-up on both sides: every job worker and this process compile their kernels.
        warm = [
            threading.Thread(target=service_large_job, args=(url, big_key, large_network, large_job))
            for _ in range(args.workers)
        ]
        for t in warm:
            t.start()
        kept_bare = KeptMemoryBare(args.neurons, args.steps)
        bare_large_job(large_network, large_job)
        kept_bare.process.stdout.readline()  # warmed up too
        for t in warm:
            t.join()
        service_times, bare_times, kept_times, large_busy = [], [], [], []
        for turn in range(args.repeats):
            for i, side in enumerate(("service", "bare") if turn % 2 == 0 else ("bare", "service")):
                large_busy.append(settle(service, machine_wait=5.0 if i == 0 else 0.0))
                if side == "service":
                    seconds, service_result = service_large_job(url, big_key, large_network, large_job)
                    service_times.append(seconds)
                else:
                    seconds, bare_result = bare_large_job(large_network, large_job)
                    bare_times.append(seconds)
            assert service_result == bare_result, "the service and the emulator disagree"
            large_busy.append(settle(service, machine_wait=0.0))
            kept_times.append(kept_bare.run())  # for comparison only (see KeptMemoryBare)
        kept_bare.close()
    finally:
        service.stop()

    p50, p99 = _percentile(latencies, 50) * 1e3, _percentile(latencies, 99) * 1e3
    service_large, bare_large = statistics.median(service_times), statistics.median(bare_times)
    large_ratios = [sv / bt for sv, bt in zip(service_times, bare_times, strict=True)]
    ratio_large = statistics.median(large_ratios)
    print()
    print(
        f"load average at start {load_at_start:.2f}; machine's busy cores when a measurement began: "
        f"{_spread(turn_busy + large_busy + [busy_latency, *busy_at.values()])}"
    )
    print()
    print("| measurement | value |")
    print("| --- | --- |")
    print(
        f"| bare emulator, quickstart jobs back to back (median of {len(judged)} judged turns; "
        f"{_spread(bare_rates)}) | {bare_rate:.1f} jobs/s |"
    )
    for clients, rate in rates.items():
        split = ", ".join(f"{role} {ms:.2f}" for role, ms in cpu[clients].items())
        label = f"median of {len(judged)} judged turns ({_spread(service_rates)}); " if clients == 16 else ""
        print(
            f"| service, {clients:>2} client(s) | {rate:.1f} jobs/s ({label}{rate / bare_rate:.2f} x bare); "
            f"CPU ms/job: {split} |"
        )
    per_turn = ", ".join(
        f"{sv / bt:.2f}" + ("" if others <= QUIET_FOREIGN_CORES else f" [others {others:.1f} cores]")
        for bt, sv, others, _ in turns
    )
    judged_what = (
        f"median of the {len(judged)} quiet turns"
        if judged is quiet_turns
        else f"the machine was quiet in {len(quiet_turns)} of {len(turns)} turns: median of all"
    )
    print(f"| service / bare, 16 clients, per turn | {per_turn} ({judged_what}: {ratio_small:.2f}) |")
    print(
        f"| POST /v1/jobs latency, 16 clients | p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"({len(latencies)} submits) |"
    )
    print(
        f"| {args.neurons} x {args.steps} job, bare emulator "
        f"(median of {args.repeats}; {_spread(bare_times)} s) "
        f"| {bare_large:.3f} s |"
    )
    print(
        f"| {args.neurons} x {args.steps} job, service end to end "
        f"(median; {_spread(service_times)} s) "
        f"| {service_large:.3f} s |"
    )
    print(
        f"| service / bare, large job, per turn | {', '.join(f'{r:.3f}' for r in large_ratios)} "
        f"(median {(ratio_large - 1) * 100:+.1f}%) |"
    )
    kept_ratio = statistics.median(sv / kt for sv, kt in zip(service_times, kept_times, strict=True))
    print(
        f"| {args.neurons} x {args.steps} job, bare emulator with the job workers' allocator settings "
        f"(its own process, after each turn; median of {args.repeats}; {_spread(kept_times)} s) "
        f"| {statistics.median(kept_times):.3f} s "
        f"(service / it, median of turns: {(kept_ratio - 1) * 100:+.1f}%) |"
    )
    print()
    print(
        f"target: 16-client throughput >= 0.5 x bare: {ratio_small:.2f} x "
        f"({judged_what}; {_spread(turn_ratios)}) -> {'met' if ratio_small >= 0.5 else 'MISSED'}"
    )
    print(
        f"target: large job within 10% of bare: {(ratio_large - 1) * 100:+.1f}% "
        f"(turns {(min(large_ratios) - 1) * 100:+.1f} .. {(max(large_ratios) - 1) * 100:+.1f}%) -> "
        f"{'met' if ratio_large <= 1.10 else 'MISSED'}"
    )
    print(f"target: p99 submit latency < 50 ms: {p99:.1f} ms -> {'met' if p99 < 50 else 'MISSED'}")
    print(
        json.dumps(
            {
                "load_average_at_start": round(load_at_start, 2),
                "bare_jobs_per_s": round(bare_rate, 2),
                "service_jobs_per_s": {str(k): round(v, 2) for k, v in rates.items()},
                "cpu_ms_per_job": {str(k): {r: round(ms, 3) for r, ms in v.items()} for k, v in cpu.items()},
                "throughput_ratio_16": round(ratio_small, 3),
                "throughput_turns": {
                    "bare_jobs_per_s": [round(t[0], 1) for t in turns],
                    "service_jobs_per_s": [round(t[1], 1) for t in turns],
                    "others_cores": [round(t[2], 2) for t in turns],
                    "ratios": [round(t[1] / t[0], 3) for t in turns],
                    "judged": "quiet" if judged is quiet_turns else "all",
                },
                "submit_p50_ms": round(p50, 2),
                "submit_p99_ms": round(p99, 2),
                "large_job": {
                    "neurons": args.neurons,
                    "steps": args.steps,
                    "bare_s": round(bare_large, 4),
                    "service_s": round(service_large, 4),
                    "ratio": round(ratio_large, 4),
                    "ratios": [round(r, 4) for r in large_ratios],
                    "bare_runs_s": [round(t, 4) for t in bare_times],
                    "service_runs_s": [round(t, 4) for t in service_times],
                    "bare_kept_memory_runs_s": [round(t, 4) for t in kept_times],
                    "ratio_to_bare_kept_memory": round(kept_ratio, 4),
                },
                "machine_busy_cores_at_measurements": [round(b, 2) for b in turn_busy + large_busy],
            }
        )
    )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--kept-memory-bare"]:
        sys.exit(KeptMemoryBare.serve(int(sys.argv[2]), int(sys.argv[3])))
    sys.exit(main())

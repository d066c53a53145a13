"""The dispatcher: with the RTL enabled, jobs that fit the core run on its Verilog, others emulated."""

from __future__ import annotations

from servicekit import RunningService

import catalyst_cloud as cc
from neurofab.emulator import simulate
from neurofab.job import parse_job
from neurofab.network import expand, parse_network
from neurofab.results import result_document, spike_trains
from neurofab.server.backends import choose_backend

QUIET = {
    "populations": [{"label": "in", "size": 8}, {"label": "out", "size": 4, "params": {"threshold": 600}}],
    "connections": [
        {"source": "in", "target": "out", "topology": "fixed_fan_in", "n": 2, "weight": 300, "delay": 2}
    ],
    "seed": 9,
}
QUIET_JOB = {
    "timesteps": 60,
    "stimuli": [{"population": "in", "neurons": [0, 3, 5], "current": 400, "start": 5, "stop": 40}],
}


def test_choose_backend_prefers_the_rtl_where_the_job_fits():
    network = parse_network(QUIET)
    assert choose_backend(network, parse_job(QUIET_JOB), ["emulator"]) == "emulator"
    assert choose_backend(network, parse_job(QUIET_JOB), ["emulator", "rtl"]) == "rtl"
    learning = parse_job({**QUIET_JOB, "learning": {"enabled": True}})
    assert choose_backend(network, learning, ["emulator", "rtl"]) == "emulator"
    big = parse_network({"populations": [{"label": "a", "size": 2000}]})
    assert choose_backend(big, parse_job({"timesteps": 5}), ["rtl", "emulator"]) == "emulator"


def test_service_runs_fitting_jobs_on_the_rtl(tmp_path):
    svc = RunningService(tmp_path / "rtl", workers=1, lease_seconds=30)
    svc.command += ["--backend", "emulator", "--backend", "rtl"]
    svc.start(timeout=600)  # the first run of the core's Verilog builds it (about 30 s)
    try:
        client = cc.Client(svc.signup("free"), base_url=svc.base_url)
        net = client.create_network(QUIET["populations"], QUIET["connections"], seed=QUIET["seed"])
        on_rtl = client.simulate(net["network_id"], **QUIET_JOB, max_wait=600)
        on_emulator = client.simulate(
            net["network_id"], **QUIET_JOB, learning={"enabled": True}, max_wait=600
        )
        assert client.health()["backends"] == ["emulator", "rtl"]
    finally:
        svc.stop()
    network = parse_network(QUIET)
    expected = simulate(expand(network), parse_job(QUIET_JOB))
    assert on_rtl["provenance"]["backend"] == "rtl" and on_rtl["provenance"]["core_preset"] == "icebreaker"
    assert on_rtl["result"] == result_document(expected, network.populations)["result"]
    assert expected.total_spikes > 0
    assert on_emulator["provenance"]["backend"] == "emulator"
    assert spike_trains(expected, network.populations)["spike_trains"]

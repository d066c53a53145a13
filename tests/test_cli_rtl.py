"""``neurofab simulate --backend rtl``: the core's Verilog gives the emulator's files, and clear errors."""

import json

from neurofab.cli import main
from neurofab.hdl.neuron_pass import NeuronPass

NETWORK = {
    "populations": [
        {"label": "exc", "size": 48,
         "params": {"threshold": 900, "leak": 4, "refrac": 2, "dend_threshold": 250}},
        {"label": "inh", "size": 12, "params": {"threshold": 700, "resting": -50}},
    ],
    "connections": [
        {"source": "exc", "target": "inh", "topology": "fixed_fan_in", "n": 8, "weight": 300, "delay": 2},
        {"source": "inh", "target": "exc", "topology": "random_sparse", "p": 0.3, "weight": -250,
         "compartment": 1},
        {"source": "exc", "target": "exc", "topology": "fixed_fan_out", "n": 5, "weight": 120, "delay": 63,
         "compartment": 2},
        {"source": "exc", "target": "exc", "topology": "one_to_one", "weight": 260, "compartment": 3},
    ],
    "seed": 11,
}
JOB = {
    "timesteps": 150,
    "stimuli": [
        {"population": "exc", "neurons": [0, 1, 2, 3, 9], "current": 2000, "start": 5, "stop": 120},
        {"population": "inh", "current": 400, "times": [7, 8, 30, 31, 90]},
    ],
    "learning": {"graded": True, "dendritic": True, "noise": True},
    "seed": 3,
}


def write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def run(tmp_path, backend, *extra, network=NETWORK, job=JOB):
    out = tmp_path / backend
    out.mkdir(exist_ok=True)
    code = main(["simulate", write(tmp_path, "net.json", network), write(tmp_path, "job.json", job),
                 "-o", str(out / "result.json"), "--spikes", str(out / "spikes.json"),
                 "--weights", str(out / "weights.json"), "--backend", backend, *extra])
    return code, out


def test_both_backends_write_the_same_files(tmp_path, capsys):
    code, emulator = run(tmp_path, "emulator")  # compiled for the sim preset
    assert code == 0
    code, rtl = run(tmp_path, "rtl")  # compiled for icebreaker, the rtl default
    assert code == 0
    assert (rtl / "spikes.json").read_bytes() == (emulator / "spikes.json").read_bytes()
    assert (rtl / "weights.json").read_bytes() == (emulator / "weights.json").read_bytes()
    want = json.loads((emulator / "result.json").read_text())
    got = json.loads((rtl / "result.json").read_text())
    assert got["result"] == want["result"] and got["result"]["total_spikes"] > 100
    assert set(got) == set(want) | {"rtl"}
    summary = got["rtl"]
    assert summary["core"] == "icebreaker" and len(summary["cycles"]) == JOB["timesteps"]
    assert summary["cycles_per_step"]["max"] == max(summary["cycles"])
    # 60 neurons of 4 compartments: at least (3 + 4) * 60 + 7 clocks a step
    assert min(summary["cycles"]) >= 60 + NeuronPass.LATENCY + 3  # one neuron a clock
    assert "neurofab: rtl: icebreaker core," in capsys.readouterr().err


def test_learning_jobs_are_refused(tmp_path, capsys):
    job = dict(JOB, learning={"enabled": True})
    code, out = run(tmp_path, "rtl", job=job)
    assert code == 2
    assert "learning is not supported on the rtl backend yet" in capsys.readouterr().err
    assert not (out / "result.json").exists()


def test_networks_beyond_the_preset_are_refused(tmp_path, capsys):
    network = {"populations": [{"label": "big", "size": 1500}], "connections": [], "seed": 1}
    code, _ = run(tmp_path, "rtl", network=network, job={"timesteps": 3})
    assert code == 2
    err = capsys.readouterr().err
    assert "neurofab: error:" in err and "icebreaker" in err and "1,500" in err, err


def test_multi_core_presets_are_refused(tmp_path, capsys):
    code, _ = run(tmp_path, "rtl", "--core", "sim")
    assert code == 2
    assert "the rtl backend runs single-core presets; 'sim'" in capsys.readouterr().err

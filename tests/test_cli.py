"""``neurofab simulate``: files in the API's shapes, one result whatever the core split, clear errors."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from neurofab.cli import _ProgressBar, main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "quickstart"

NETWORK = {
    "populations": [
        {"label": "exc", "size": 40, "params": {"threshold": 900, "leak": 4}},
        {"label": "inh", "size": 10, "params": {"threshold": 700}},
    ],
    "connections": [
        {"source": "exc", "target": "inh", "topology": "fixed_fan_in", "n": 8, "weight": 300, "delay": 2},
        {"source": "inh", "target": "exc", "topology": "random_sparse", "p": 0.3, "weight": -250},
        {"source": "exc", "target": "exc", "topology": "fixed_fan_out", "n": 5, "weight": 120, "delay": 7},
    ],
    "seed": 7,
}
JOB = {
    "timesteps": 120,
    "stimuli": [{"population": "exc", "neurons": [0, 1, 2, 3], "current": 2000, "start": 5, "stop": 100}],
    "learning": {"enabled": True, "graded": True},
    "seed": 3,
}


def write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def run(tmp_path, *extra, network=NETWORK, job=JOB):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    code = main(["simulate", write(tmp_path, "net.json", network), write(tmp_path, "job.json", job),
                 "-o", str(out / "result.json"), "--spikes", str(out / "spikes.json"),
                 "--weights", str(out / "weights.json"), *extra])
    assert code == 0
    return {name: json.loads((out / f"{name}.json").read_text()) for name in ("result", "spikes", "weights")}


def test_simulate_writes_the_api_shapes(tmp_path):
    docs = run(tmp_path, "--raster", str(tmp_path / "raster.png"))
    result = docs["result"]
    assert set(result) == {"status", "result", "compute_seconds"}
    assert result["status"] == "completed"
    assert set(result["result"]) == {"total_spikes", "firing_rates", "spike_count_timeseries"}
    assert len(result["result"]["spike_count_timeseries"]) == JOB["timesteps"]
    assert sum(result["result"]["spike_count_timeseries"]) == result["result"]["total_spikes"] > 0
    trains = docs["spikes"]["spike_trains"]
    assert sum(len(ts) for pop in trains.values() for ts in pop.values()) == result["result"]["total_spikes"]
    assert all(ts == sorted(ts) for pop in trains.values() for ts in pop.values())
    weights = docs["weights"]["connections"]
    assert [len(w) for w in weights][0] == 10 * 8 and len(weights) == 3
    assert (tmp_path / "raster.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("split", [["--core", "ulx3s-25f"], ["--max-neurons-per-core", "7"],
                                   ["--max-neurons-per-core", "1"], ["--core", "ulx3s-85f"]])
def test_any_core_split_gives_the_same_files(tmp_path, split):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    base = run(tmp_path / "a")
    other = run(tmp_path / "b", *split)
    for docs in (base, other):
        docs["result"].pop("compute_seconds")
    assert base == other


def test_quickstart_example_runs_from_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "neurofab", "simulate", str(EXAMPLES / "network.json"),
                           str(EXAMPLES / "job.json")], capture_output=True, text=True, check=True)
    doc = json.loads(proc.stdout)
    assert doc["status"] == "completed" and doc["result"]["total_spikes"] > 0


@pytest.mark.parametrize(("network", "job", "message"), [
    ({**NETWORK, "populations": [{"label": "exc", "size": 4, "params": {"leak": -4}}], "connections": []},
     JOB, "populations[0].params.leak must be an integer in 0..65535, not -4"),
    (NETWORK, {**JOB, "stimulus": []}, "unknown key 'stimulus' in the job (did you mean 'stimuli'?)"),
    (NETWORK, {**JOB, "stimuli": [{"population": "ex", "current": 5}]}, "stimuli[0].population 'ex'"),
])
def test_bad_input_prints_the_message_and_exits_nonzero(tmp_path, capsys, network, job, message):
    code = main(["simulate", write(tmp_path, "net.json", network), write(tmp_path, "job.json", job)])
    assert code == 2
    assert message in capsys.readouterr().err


def test_capacity_error_names_what_does_not_fit(tmp_path, capsys):
    big = {"populations": [{"label": "a", "size": 2000}], "connections": []}
    code = main(["simulate", write(tmp_path, "net.json", big),
                 write(tmp_path, "job.json", {"timesteps": 2}), "--core", "icebreaker"])
    assert code == 2
    assert ("the network has 2,000 neurons (the largest population, a, 2,000); core preset icebreaker "
            "holds 512 per core") in capsys.readouterr().err


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "nope.json"), str(tmp_path / "nope2.json")]) == 2
    assert "cannot read network file" in capsys.readouterr().err


def test_progress_bar_draws_only_after_its_delay():
    stream = io.StringIO()
    bar = _ProgressBar(stream, delay=3600.0)
    bar(10, 100)
    bar.close()
    assert stream.getvalue() == ""
    bar = _ProgressBar(stream, delay=0.0)
    bar(50, 100)
    bar.close()
    assert "50/100 steps" in stream.getvalue() and stream.getvalue().endswith("\n")


def test_a_job_beyond_the_boards_event_queue_fails_as_the_board_would(tmp_path, capsys):
    # The quickstart runs on the icebreaker core as on the emulator. Delayed by 8 steps,
    # the inhibitory neurons' events to all 100 excitatory ones pile up in the queue: more
    # than the ulx3s-25f core's 2,048 after step 9 (the icebreaker's 10,240 hold them).
    args = ["simulate", str(EXAMPLES / "network.json"), str(EXAMPLES / "job.json")]
    assert main([*args, "-o", str(tmp_path / "sim.json")]) == 0
    assert main([*args, "--core", "icebreaker", "-o", str(tmp_path / "board.json")]) == 0
    assert (json.loads((tmp_path / "board.json").read_text())["result"]
            == json.loads((tmp_path / "sim.json").read_text())["result"])
    network = json.loads((EXAMPLES / "network.json").read_text())
    network["connections"][1]["delay"] = 8
    delayed = write(tmp_path, "delayed.json", network)
    assert main(["simulate", delayed, str(EXAMPLES / "job.json"), "--core", "icebreaker"]) == 0
    assert main(["simulate", delayed, str(EXAMPLES / "job.json"), "--core", "ulx3s-25f"]) == 2
    assert ("the event queue overflowed at step 9: more than 2,048 events in flight on core 0 "
            "(preset ulx3s-25f)") in capsys.readouterr().err


@pytest.mark.parametrize("option", ["-o", "--spikes", "--weights", "--raster"])
def test_an_unwritable_output_is_refused_before_the_run(tmp_path, capsys, option):
    target = str(tmp_path / "missing" / "out")
    code = main(["simulate", write(tmp_path, "net.json", NETWORK), write(tmp_path, "job.json", JOB),
                 option, target])
    assert code == 2
    assert f"cannot write {target!r}: folder" in capsys.readouterr().err

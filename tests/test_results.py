"""The API shapes made from a RunResult (neurofab.results) and the raster plot."""

import io

import numpy as np

from neurofab.network import NeuronParams, Population
from neurofab.raster import write_raster
from neurofab.results import RunResult, final_weights, result_document, spike_trains, summary

POPS = (
    Population("exc", 4, NeuronParams(), 0),
    Population("inh", 2, NeuronParams(), 4),
    Population("quiet", 3, NeuronParams(), 6),
)


def make_result():
    # (t, gid): exc 0 at 1 and 3, exc 3 at 3, inh 1 (gid 5) at 0 and 4
    spikes = [(0, 5), (1, 0), (3, 0), (3, 3), (4, 5)]
    return RunResult(
        timesteps=5,
        spike_times=np.array([t for t, _ in spikes], np.int32),
        spike_gids=np.array([g for _, g in spikes], np.int32),
        final_weights=np.array([5, -3, 7, 0, 2], np.int32),
        compute_seconds=0.1234567,
    )


def test_summary_counts_rates_and_timeseries():
    doc = summary(make_result(), POPS)
    assert doc["total_spikes"] == 5
    assert doc["firing_rates"] == {"exc": 3 / (4 * 5), "inh": 2 / (2 * 5), "quiet": 0.0}
    assert doc["spike_count_timeseries"] == [1, 1, 0, 2, 1]


def test_spike_trains_group_by_population_and_local_index():
    assert spike_trains(make_result(), POPS) == {
        "spike_trains": {"exc": {"0": [1, 3], "3": [3]}, "inh": {"1": [0, 4]}}
    }


def test_spike_trains_of_a_silent_run_are_empty():
    silent = RunResult(3, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32))
    assert spike_trains(silent, POPS) == {"spike_trains": {}}
    assert summary(silent, POPS)["spike_count_timeseries"] == [0, 0, 0]


def test_final_weights_split_by_connection():
    assert final_weights(make_result(), [0, 2, 2, 5]) == {"connections": [[5, -3], [], [7, 0, 2]]}


def test_result_document_has_the_completed_job_shape():
    doc = result_document(make_result(), POPS)
    assert set(doc) == {"status", "result", "compute_seconds"}
    assert doc["status"] == "completed"
    assert doc["compute_seconds"] == 0.123457


def test_raster_is_a_png():
    buffer = io.BytesIO()
    write_raster(buffer, make_result(), POPS)
    assert buffer.getvalue().startswith(b"\x89PNG\r\n\x1a\n")

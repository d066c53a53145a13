"""Raster plot with a population-rate panel, as a PNG (CLI ``--raster`` and the service)."""

from __future__ import annotations

import numpy as np

__all__ = ["write_raster", "MAX_POINTS"]

#: At most this many spikes are drawn as dots; beyond it an even subsample is drawn
#: (said in the title) so that a job with millions of spikes still plots in seconds.
MAX_POINTS = 200_000


def _rate_window(timesteps: int) -> int:
    # About 200 bins across the run, never narrower than one step.
    return max(1, timesteps // 200)


def write_raster(target, result, populations, *, title: str | None = None) -> None:
    """Draw ``result`` (a :class:`neurofab.results.RunResult`) to ``target`` (a path or a binary file).

    Top panel: one dot per spike, time against global neuron id, a colour per
    population. Bottom panel: each population's rate (spikes per neuron per step),
    averaged over windows of ``timesteps // 200`` steps.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6), dpi=100)
    raster_ax, rate_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    times, gids = result.spike_times, result.spike_gids
    stride = max(1, -(-times.shape[0] // MAX_POINTS))
    colours = matplotlib.colormaps["tab10"]
    window = _rate_window(result.timesteps)
    n_bins = -(-result.timesteps // window)
    for i, pop in enumerate(populations):
        mine = (gids >= pop.offset) & (gids < pop.offset + pop.size)
        t_pop = times[mine]
        shown = t_pop[::stride]
        raster_ax.scatter(shown, gids[mine][::stride], s=1.0, marker="|", color=colours(i % 10),
                          label=pop.label, linewidths=0.6)
        counts = np.bincount(t_pop // window, minlength=n_bins)[:n_bins].astype(np.float64)
        widths = np.minimum(window, result.timesteps - np.arange(n_bins) * window)
        rate_ax.step(np.arange(n_bins) * window, counts / (pop.size * widths), where="post",
                     color=colours(i % 10), label=pop.label)
    total = sum(p.size for p in populations)
    raster_ax.set_xlim(0, result.timesteps)
    raster_ax.set_ylim(-0.5, total - 0.5)
    raster_ax.set_ylabel("neuron (global id)")
    heading = title or f"{result.total_spikes:,} spikes over {result.timesteps:,} steps"
    if stride > 1:
        heading += f" (every {stride}th spike drawn)"
    raster_ax.set_title(heading)
    if populations:
        raster_ax.legend(loc="upper right", markerscale=8, fontsize="small")
    rate_ax.set_xlabel("timestep" + (f" (rates in {window}-step bins)" if window > 1 else ""))
    rate_ax.set_ylabel("spikes per\nneuron per step")
    fig.tight_layout()
    fig.savefig(target, format="png")

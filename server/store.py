"""Compact storage of a run's arrays: spikes and final weights.

A run's spikes are stored as two arrays: ``counts`` (spikes per step, length T) and
``gids`` (neuron ids in time-then-id order, in the narrowest unsigned type that holds
them). Spike times are implied by ``counts`` (``np.repeat(arange(T), counts)``), so a
spike costs two bytes below 65,536 neurons and four above, and the spikes of any step
range ``[a, b)`` are the slice ``gids[cum[a]:cum[b]]``, no search needed. Final weights
are ``int16`` (the model's weight width).

Small runs (under :data:`INLINE_LIMIT` raw bytes) go into the job's row as one
BLOB: the arrays as they are (little-endian) up to :data:`RAW_LIMIT` bytes, where
compressing would cost more time than the bytes it saves, zlib-compressed above
(``"codec"`` in the manifest; manifests without it are zlib). Larger ones go to
``DATA/results/<job>.bin`` uncompressed, each array at a fixed offset, so the API
memory-maps them and streams slices without reading the whole file; a manifest (JSON in
the row) says where everything is.
"""

from __future__ import annotations

import json
import os
import tempfile
import zlib

import numpy as np

__all__ = [
    "INLINE_LIMIT",
    "RAW_LIMIT",
    "StoredResult",
    "pack_result",
    "write_result",
    "load_result",
    "delete_result",
]

#: runs up to this many raw bytes go (compressed) into the database; larger ones to a file
#: (uncompressed: written at disk speed, and memory-mapped to stream slices)
INLINE_LIMIT = 1 << 18
#: inline runs up to this many raw bytes are stored uncompressed
RAW_LIMIT = 1 << 15
#: spikes handled at once when regrouping them by neuron
SORT_CHUNK = 1 << 22
_ALIGN = 64


def _gid_dtype(n_neurons: int):
    if n_neurons <= 1 << 8:
        return np.uint8
    if n_neurons <= 1 << 16:
        return np.uint16
    return np.uint32


def pack_result(result, n_neurons: int, connection_offsets, *, weights: bool = True) -> dict[str, np.ndarray]:
    """The arrays to store for a :class:`neurofab.results.RunResult`.

    ``weights=False`` leaves the final weights out: without learning they are the
    network's initial weights, which the expanded network already holds.
    """
    times = np.asarray(result.spike_times)
    counts = (
        np.bincount(times, minlength=result.timesteps)
        if times.size
        else (np.zeros(result.timesteps, np.uint32))
    )
    # the narrowest type that holds the busiest step's count (readers take the manifest's)
    counts = counts.astype(np.uint16 if counts.size == 0 or counts.max() <= 0xFFFF else np.uint32)
    arrays = {
        "counts": counts,
        "gids": np.asarray(result.spike_gids).astype(_gid_dtype(n_neurons), copy=False),
        "connection_offsets": np.asarray(connection_offsets, dtype=np.int64),
    }
    if weights:
        arrays["weights"] = np.asarray(result.final_weights).astype(np.int16, copy=False)
    return arrays


def write_result(data_dir: str, job_id: str, arrays: dict[str, np.ndarray]) -> tuple[str, bytes | None]:
    """Store the arrays; returns the manifest (JSON) and the inline BLOB (or ``None``)."""
    # stored little-endian whatever the machine (a no-op on x86 and ARM)
    arrays = {name: a.astype(a.dtype.newbyteorder("<"), copy=False) for name, a in arrays.items()}
    raw_bytes = sum(a.nbytes for a in arrays.values())
    entries = {}
    if raw_bytes <= INLINE_LIMIT:
        codec = "raw" if raw_bytes <= RAW_LIMIT else "zlib"
        parts, offset = [], 0
        for name, array in arrays.items():
            data = np.ascontiguousarray(array).tobytes()
            packed = data if codec == "raw" else zlib.compress(data, 1)
            entries[name] = {
                "dtype": array.dtype.str,
                "length": int(array.shape[0]),
                "offset": offset,
                "nbytes": len(packed),
            }
            parts.append(packed)
            offset += len(packed)
        return json.dumps({"storage": "inline", "codec": codec, "arrays": entries}), b"".join(parts)

    directory = os.path.join(data_dir, "results")
    os.makedirs(directory, exist_ok=True)
    relative = os.path.join("results", f"{job_id}.bin")
    path = os.path.join(data_dir, relative)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        offset = 0
        for name, array in arrays.items():
            pad = -offset % _ALIGN
            f.write(b"\0" * pad)
            offset += pad
            entries[name] = {
                "dtype": array.dtype.str,
                "length": int(array.shape[0]),
                "offset": offset,
                "nbytes": int(array.nbytes),
            }
            np.ascontiguousarray(array).tofile(f)
            offset += array.nbytes
    os.replace(tmp, path)  # readers never see a half-written file
    return json.dumps({"storage": "file", "path": relative, "arrays": entries}), None


class StoredResult:
    """A stored run, read lazily: arrays come out of the BLOB or a memory-mapped file."""

    def __init__(self, data_dir: str, manifest: str, blob: bytes | None):
        self.manifest = json.loads(manifest)
        self._blob = blob
        self._data_dir = data_dir
        self._cache: dict[str, np.ndarray] = {}

    def array(self, name: str) -> np.ndarray:
        if name in self._cache:
            return self._cache[name]
        entry = self.manifest["arrays"][name]
        dtype = np.dtype(entry["dtype"])
        if self.manifest["storage"] == "inline":
            chunk = self._blob[entry["offset"] : entry["offset"] + entry["nbytes"]]
            if self.manifest.get("codec", "zlib") == "zlib":
                chunk = zlib.decompress(chunk)
            array = np.frombuffer(chunk, dtype=dtype)
        elif entry["length"] == 0:
            array = np.zeros(0, dtype)
        else:
            path = os.path.join(self._data_dir, self.manifest["path"])
            array = np.memmap(path, dtype=dtype, mode="r", offset=entry["offset"], shape=(entry["length"],))
        self._cache[name] = array
        return array

    @property
    def timesteps(self) -> int:
        return self.manifest["arrays"]["counts"]["length"]

    def step_offsets(self) -> np.ndarray:
        """``cum[t]`` = index of the first spike at step ``t`` (length T + 1)."""
        if "cum" not in self._cache:
            self._cache["cum"] = np.concatenate(([0], np.cumsum(self.array("counts"), dtype=np.int64)))
        return self._cache["cum"]

    def spikes(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(times int32, gids int32)`` of the spikes in steps ``[start, stop)``, time-then-id order."""
        stop = self.timesteps if stop is None else stop
        cum = self.step_offsets()
        counts = np.asarray(self.array("counts")[start:stop])
        times = np.repeat(np.arange(start, stop, dtype=np.int32), counts)
        gids = np.asarray(self.array("gids")[cum[start] : cum[stop]]).astype(np.int32)
        return times, gids

    def neuron_major(self, start: int, stop: int, lo: int, hi: int, scratch_dir: str | None = None):
        """The spikes of neurons ``[lo, hi)`` in steps ``[start, stop)``, grouped by neuron.

        Returns ``(offsets, times)``: neuron ``lo + i``'s spike times are
        ``times[offsets[i]:offsets[i + 1]]``, ascending. A counting sort in chunks of
        :data:`SORT_CHUNK` spikes: one pass counts each neuron's spikes, a second drops
        every spike into its neuron's slot. Memory stays bounded by the chunk (plus the
        output, which goes to a scratch file under ``scratch_dir`` when it is large), so
        a run with billions of spikes streams without loading them.
        """
        cum = self.step_offsets()
        first, last = int(cum[start]), int(cum[stop])
        gids = self.array("gids")
        counts = np.zeros(hi - lo, np.int64)
        for a in range(first, last, SORT_CHUNK):
            chunk = np.asarray(gids[a : min(last, a + SORT_CHUNK)])
            mine = chunk[(chunk >= lo) & (chunk < hi)].astype(np.int64) - lo
            counts += np.bincount(mine, minlength=hi - lo)
        offsets = np.concatenate(([0], np.cumsum(counts)))
        total = int(offsets[-1])
        if scratch_dir is not None and total * 4 > INLINE_LIMIT * 16:
            os.makedirs(scratch_dir, exist_ok=True)
            handle = tempfile.TemporaryFile(dir=scratch_dir)  # gone when closed, even on a crash
            times = np.memmap(handle, dtype=np.int32, mode="w+", shape=(total,))
        else:
            times = np.empty(total, np.int32)
        cursor = offsets[:-1].copy()
        for a in range(first, last, SORT_CHUNK):
            b = min(last, a + SORT_CHUNK)
            chunk = np.asarray(gids[a:b]).astype(np.int64)
            # the steps of spikes a..b-1: search the cumulative counts
            chunk_times = (np.searchsorted(cum, np.arange(a, b), side="right") - 1).astype(np.int32)
            keep = (chunk >= lo) & (chunk < hi)
            local, chunk_times = chunk[keep] - lo, chunk_times[keep]
            order = np.argsort(local, kind="stable")  # stable: each neuron's times stay ascending
            local, chunk_times = local[order], chunk_times[order]
            group_start = np.flatnonzero(np.r_[True, local[1:] != local[:-1]]) if local.size else local
            rank = np.arange(local.size) - np.repeat(group_start, np.diff(np.r_[group_start, local.size]))
            times[cursor[local] + rank] = chunk_times
            cursor += np.bincount(local, minlength=hi - lo)
        return offsets, times

    def weights(self) -> np.ndarray | None:
        """The final weights, or ``None`` where they were not stored (no learning: the initial ones)."""
        return self.array("weights") if "weights" in self.manifest["arrays"] else None

    def connection_offsets(self) -> np.ndarray:
        return self.array("connection_offsets")


def load_result(data_dir: str, row) -> StoredResult:
    return StoredResult(data_dir, row["manifest"], row["data"])


def delete_result(data_dir: str, manifest: str) -> None:
    info = json.loads(manifest)
    if info.get("storage") == "file":
        try:
            os.remove(os.path.join(data_dir, info["path"]))
        except FileNotFoundError:
            pass

"""NeuroFab hdl layer."""

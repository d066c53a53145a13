"""NeuroFab server layer."""

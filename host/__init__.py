"""NeuroFab host layer."""

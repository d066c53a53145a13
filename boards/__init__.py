"""NeuroFab boards layer."""

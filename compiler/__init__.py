"""NeuroFab compiler layer."""

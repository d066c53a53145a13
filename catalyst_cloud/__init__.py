"""Python SDK for the Catalyst Neuromorphic Cloud API (and NeuroFab's compatible service).

    import catalyst_cloud as cc
    client = cc.Client("cn_live_...")          # base URL: $CATALYST_API_URL, else localhost:8000
    net = client.create_network(populations=[...], connections=[...])
    job = client.simulate(net["network_id"], timesteps=500, stimuli=[...])

Needs only ``requests``.
"""

from .client import DEFAULT_BASE_URL, CatalystCloudError, Client, JobFailedError

__all__ = ["Client", "CatalystCloudError", "JobFailedError", "DEFAULT_BASE_URL"]

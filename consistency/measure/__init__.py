"""Measurement, one concern per module, each reading through the ports (``consistency.ports``)
and keeping only the state its concern needs between rounds:

- ``heartbeats``: the primary's emission record and how long it has stalled;
- ``log_positions``: Kafka end and committed offsets, record times, catch-up rate, retention;
- ``versions``: registry and model versions live per region (cached), and their skew;
- ``freshness``: the newest event time seen per region and view;
- ``divergence``: each region against the reference, per view (sampled or full);
- ``views``: the feature views' layouts from the manifest (cached).

``consistency.checker.Checker`` composes them; the arithmetic lives in ``consistency.core``.
"""

"""Reproducible benchmarks of the replication path (``make bench``; see BENCHMARKS.md).

One module per benchmark, each with ``NAME`` and ``run(ctx) -> list[Result]``:
``apply`` (worker rows/s into one Redis against Feast's own writer and a naive pipeline),
``e2e_lag`` (publish-to-applied latency in three regions at a paced rate), ``rebuild``
(rows/s replaying the log into an empty region) and ``cold_start`` (seconds from
``replicator worker`` start to the first row applied).
"""
